"""Account-based scoring end to end against the HubSpot sandbox (issue 21): companies and
associations v4 read with the official SDK, account scores, the MQA's lower MQL bar, company
and contact writes seen by the sandbox, diff-only resyncs, moves, archived and merged
companies, several companies, a company with no domain."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from connector.account_stage import AccountStage
from connector.crm.hubspot import HubSpotAdapter
from connector.enrich.enricher import build_enricher
from connector.model.loader import load_model
from connector.pipeline import Pipeline, SyncOptions
from connector.retry import RetryPolicy
from connector.sandbox.demo_portal import PRICING, PRODUCT, _Builder
from connector.sandbox.hubspot import HubSpotSandbox
from connector.sandbox.hubspot.object_types import COMPANIES
from connector.settings import load_settings
from connector.state.accounts import StoredAccountScore
from connector.state.store import StateStore
from connector.types import MQL

from .conftest import NOW, Harness

ROOT = Path(__file__).resolve().parent.parent
NORTHWIND = "9002"
ACME = "9001"
GLOBEX = "9003"
STEALTH = "9004"  # no domain
ACME_DUP = "9005"  # merged into Acme before the first sync


def _portal() -> dict[str, Any]:
    b = _Builder(seed=21)
    # Northwind Data: a buying committee, none of them hot alone
    b.contact("201", "Dana", "Whitfield", "dana@northwind-data.com", "VP Marketing", "lead",
              company="Northwind Data", country="US")  # fmt: skip
    b.contact("202", "Robin", "Hale", "robin@northwind-data.com", "Marketing Manager", "lead",
              company="Northwind Data", country="US")  # fmt: skip
    b.contact("203", "Rowan", "Okafor", "rowan@northwind-data.com", "Marketing Analyst",
              "lead", company="Northwind Data", country="US")  # fmt: skip
    b.contact("204", "Sam", "Quiet", "sam@northwind-data.com", "Engineer", "lead",
              company="Northwind Data", country="US")  # fmt: skip
    b.webinar("201", -5, "Scoring that sales trusts", 60)  # +50
    b.view("201", -4, PRODUCT[0])
    b.view("201", -3, PRODUCT[1])  # +20
    b.view("202", -6, PRICING)
    b.view("202", -5, PRICING)  # pricing twice in 7 days: +25
    b.view("202", -5, PRODUCT[2])  # +10
    b.view("203", -16, PRODUCT[0])
    b.view("203", -12, PRODUCT[3])
    b.view("203", -8, PRODUCT[2])  # +30 (never 3 days within 3 days)
    b.webinar("203", -10, "Pipeline forecasting basics", 35)  # half: +25
    # Acme: one person, two companies (Globex primary)
    b.contact("301", "Alex", "Moreau", "alex@acme-analytics.com", "Director of Sales", "lead",
              company="Acme Analytics", country="US")  # fmt: skip
    b.view("301", -2, PRODUCT[0])
    b.contact("302", "Kim", "Lee", "kim@globex.co.uk", "Head of Marketing", "lead",
              company="Globex", country="GB")  # fmt: skip
    b.view("302", -3, PRICING)
    # a company with no domain; a contact with no company (corporate domain); free mail
    b.contact("303", "Lou", "Stone", "lou@stealth.dev", "Founder", "lead")
    b.view("303", -2, PRODUCT[1])
    b.contact("304", "Pat", "Ng", "pat@initech.com", "Marketing Manager", "lead",
              company="Initech", country="CA")  # fmt: skip
    b.view("304", -2, PRODUCT[1])
    b.contact("305", "Jo", "Free", "jo.free@gmail.com", "Marketing Manager", "lead")
    b.view("305", -2, PRODUCT[1])
    data = b.fixture(forms=True)
    data["companies"] = [
        {"id": ACME, "properties": {"name": "Acme Analytics", "domain": "acme-analytics.com",
                                    "industry": "COMPUTER_SOFTWARE", "numberofemployees": "850",
                                    "annualrevenue": "120000000", "country": "US"}},
        {"id": NORTHWIND, "properties": {"name": "Northwind Data", "domain": "northwind-data.com",
                                         "industry": "COMPUTER_SOFTWARE",
                                         "numberofemployees": "400",
                                         "annualrevenue": "60000000", "country": "US"}},
        {"id": GLOBEX, "properties": {"name": "Globex", "domain": "globex.co.uk",
                                      "industry": "FINANCIAL_SERVICES",
                                      "numberofemployees": "12000", "country": "GB"}},
        {"id": STEALTH, "properties": {"name": "Stealth Startup"}},
        {"id": ACME_DUP, "properties": {"name": "Acme (dup)", "domain": "acmeanalytics.io"}},
    ]  # fmt: skip
    data["associations"] = [
        *({"contact": c, "company": NORTHWIND, "primary": True} for c in ("201", "202", "203")),
        {"contact": "204", "company": NORTHWIND, "primary": True},
        {"contact": "301", "company": ACME_DUP, "primary": True},
        {"contact": "302", "company": ACME, "primary": False},
        {"contact": "302", "company": GLOBEX, "primary": True},
        {"contact": "303", "company": STEALTH, "primary": True},
    ]
    return data


@pytest.fixture
def acc(tmp_path: Path) -> Iterator[Harness]:
    yield from accounts_harness(tmp_path)


def accounts_harness(
    tmp_path: Path, *, firmographics: bool = True, portal: dict[str, Any] | None = None
) -> Iterator[Harness]:
    """The portal above (or `portal`) on the sandbox, accounts on. `firmographics=False`: an
    empty firmographics file (the companies' own records only)."""
    firmo = tmp_path / "firmographics.csv"
    shutil.copy(ROOT / "fixtures" / "firmographics.csv", firmo)
    if not firmographics:
        header = firmo.read_text(encoding="utf-8").splitlines()[0]
        firmo.write_text(header + "\n", encoding="utf-8")
    with firmo.open("a", encoding="utf-8") as f:
        f.write(
            "northwind-data.com,Northwind Data,computer software,technology,400,201-500,"
            "60000000,$50M-$100M,US,2012,,local_csv,2026-10-01\n"
        )
    data = _portal() if portal is None else portal
    with HubSpotSandbox.start(data, now=NOW, search_rate_limit=10_000, time_scale=0.01) as sb:
        if portal is None:
            sb.portal.merge(ACME, ACME_DUP, touch=False, ot=COMPANIES)
        adapter = HubSpotAdapter(
            SecretStr(sb.token),
            sb.url,
            search_per_second=10_000,
            timeout_s=5,
            retry=RetryPolicy(attempts=4, base_seconds=0.01, max_seconds=0.05, seed=1),
            accounts=True,
        )
        created = adapter.ensure_properties()
        assert "company group lead_scoring" in created
        assert "company leadscore_account_score" in created
        assert "leadscore_account_grade" in created
        sb.clear_log()
        store = StateStore.open(tmp_path / "state.db")
        clock = [NOW]
        enricher = build_enricher(
            load_settings(firmographics_path=firmo), cache=store.company_cache
        )
        pipeline = Pipeline(
            store, adapter, load_model(), enricher=enricher, options=SyncOptions(),
            clock=lambda: clock[0],
        )  # fmt: skip
        pipeline.accounts = AccountStage(pipeline)
        try:
            yield Harness(sb, adapter, store, pipeline, clock)
        finally:
            adapter.close()
            store.close()


def company_writes(h: Harness) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for r in h.sb.requests:
        if r.path.rstrip("/") == "/crm/v3/objects/companies/batch/update" and r.status in (
            200,
            207,
        ):
            for item in r.body["inputs"]:
                out.setdefault(str(item["id"]), {}).update(item["properties"])
    return out


def contact_writes(h: Harness) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for r in h.sb.requests:
        if r.path.rstrip("/") == "/crm/v3/objects/contacts/batch/update" and r.status in (
            200,
            207,
        ):
            for item in r.body["inputs"]:
                out.setdefault(str(item["id"]), {}).update(item["properties"])
    return out


def test_northwind_committee_is_an_mqa_and_writes_land_on_companies_and_contacts(
    acc: Harness,
) -> None:
    first = acc.pipeline.sync()
    assert first.status == "ok", first.message
    assert first.dead_lettered == 0
    assert first.notes == ["accounts: 5 scored"]  # 4 companies and initech.com
    store = acc.store
    nw = store.account_score("hubspot", f"company:{NORTHWIND}")
    assert nw is not None
    # none of the people is an MQL alone (threshold 100)
    scores = store.get_scores_many("hubspot", ["201", "202", "203", "204"])
    assert {c: s.score for c, s in scores.items()} == {
        "201": 70.0,
        "202": 35.0,
        "203": 55.0,
        "204": 0.0,
    }
    assert nw.grade == "A" and nw.mqa
    assert nw.engaged_contacts == ("201", "203", "202")
    # roll-up 50 (of 70) + 50 (of 55) + 35; breadth 3 people 30; committee 3 roles 20;
    # pricing/product pages by 2+ people within 7 days 25
    assert nw.engagement_points == 135
    assert nw.score == 210
    assert nw.mqa_reason == "score 210 ≥ 100, grade A, 3 people engaged"
    # the lower bar (60 at an MQA, grade A/B) makes exactly Dana an MQL
    mql = {c for c, s in store.get_scores_many("hubspot", ["201", "202", "203", "204"]).items()
           if s.mql}  # fmt: skip
    assert mql == {"201"}
    dana = acc.sb.contact("201").properties
    assert dana["lifecyclestage"] == MQL
    assert dana["leadscore_mql_reason"] == ("account MQA: company:9002 (score 70 ≥ 60 at an MQA)")
    assert acc.sb.contact("203").properties["lifecyclestage"] == "lead"

    companies = company_writes(acc)
    assert set(companies) == {NORTHWIND, ACME, GLOBEX, STEALTH}  # not the merged-away 9005
    assert companies[NORTHWIND] == {
        "leadscore_account_score": "210",
        "leadscore_account_grade": "A",
        "leadscore_account_reasons": (
            "+135 engagement of 3 people (at most 50 each): Dana Whitfield +50 (of 70), "
            "Rowan Okafor +50 (of 55), Robin Hale +35; +30 3 people engaged in 30 days: Dana "
            "Whitfield (VP Marketing), Rowan Okafor (Marketing Analyst), Robin Hale (Marketing "
            "Manager); +25 pricing or product pages by 2+ people within 7 days: Dana "
            "Whitfield, Rowan Okafor, Robin Hale; account grade A: target account, company "
            "size 51-5,000; … +1 more"  # the committee (+20): in the state DB and explain
        ),
        "leadscore_engaged_contacts": "3",
        "leadscore_mqa_reason": "score 210 ≥ 100, grade A, 3 people engaged",
        "leadscore_model_version": "2026.12-default",
    }
    assert companies[ACME]["leadscore_account_reasons"] == (
        "+10 engagement of 1 person (at most 50 each): Alex Moreau +10; account grade A: "
        "target account, company size 51-5,000"
    )
    assert acc.sb.company(NORTHWIND).properties["leadscore_account_score"] == "210"
    # every member shows the account's heat
    for cid in ("201", "202", "203", "204"):
        props = acc.sb.contact(cid).properties
        assert props["leadscore_account_score"] == "210", cid
        assert props["leadscore_account_grade"] == "A", cid
    # merged company: 301's primary 9005 was merged into Acme: the survivor's account
    assert store.contact_accounts_many("hubspot", ["301"])["301"].account_id == f"company:{ACME}"
    # several companies: the primary (Globex) wins; both ids kept
    link = store.contact_accounts_many("hubspot", ["302"])["302"]
    assert (link.account_id, link.source) == (f"company:{GLOBEX}", "primary_company")
    assert set(link.company_ids) == {ACME, GLOBEX}
    # a company with no domain: scored on what it has (grade D), written on its record
    stealth = store.account_score("hubspot", f"company:{STEALTH}")
    assert stealth is not None and stealth.grade == "D" and stealth.domain is None
    assert companies[STEALTH]["leadscore_account_grade"] == "D"
    # no company, corporate domain: a domain account, stored and shown on the contact only
    ini = store.get_account("hubspot", "initech.com")
    assert ini is not None and ini.account_id == "domain:initech.com"
    # its firmographics from the contact's enrichment (300 people, IT services, CA)
    assert (ini.grade, ini.fit_points, ini.score) == ("B", 50, 10)
    assert acc.sb.contact("304").properties["leadscore_account_score"] == str(round(ini.score))
    # free mail never forms an account
    assert store.contact_accounts_many("hubspot", ["305"]) == {}
    assert "leadscore_account_score" not in acc.sb.contact("305").properties
    # every contact written once, every company once
    ids = acc.written_ids()
    assert len(ids) == len(set(ids))

    acc.sb.clear_log()
    acc.clock[0] = NOW + timedelta(minutes=15)
    second = acc.pipeline.sync()
    assert second.status == "ok", second.message
    assert second.written == 0
    assert company_writes(acc) == {}
    assert acc.writes() == []
    assert acc.pipeline.accounts is not None
    assert acc.pipeline.accounts.state.accounts_scored == 0


VENDOR = "9100"


def _vendor_portal() -> dict[str, Any]:
    """A vendor's company (config/model.yaml `lists.vendors`) whose three people engage as
    Northwind Data's buying committee does above."""
    b = _Builder(seed=21)
    for cid, first, last, title in (
        ("401", "Dana", "Whitfield", "VP Marketing"),
        ("402", "Robin", "Hale", "Marketing Manager"),
        ("403", "Rowan", "Okafor", "Marketing Analyst"),
    ):
        b.contact(cid, first, last, f"{first.lower()}@cloudhostco.com", title, "lead",
                  company="CloudHost Co", country="US")  # fmt: skip
    b.webinar("401", -5, "Scoring that sales trusts", 60)
    b.view("401", -4, PRODUCT[0])
    b.view("401", -3, PRODUCT[1])
    b.view("402", -6, PRICING)
    b.view("402", -5, PRICING)
    b.view("402", -5, PRODUCT[2])
    b.view("403", -16, PRODUCT[0])
    b.view("403", -12, PRODUCT[3])
    b.view("403", -8, PRODUCT[2])
    b.webinar("403", -10, "Pipeline forecasting basics", 35)
    data = b.fixture(forms=True)
    data["companies"] = [
        {"id": VENDOR, "properties": {"name": "CloudHost Co", "domain": "cloudhostco.com",
                                      "industry": "COMPUTER_SOFTWARE",
                                      "numberofemployees": "400",
                                      "annualrevenue": "60000000", "country": "US"}},
    ]  # fmt: skip
    data["associations"] = [
        {"contact": c, "company": VENDOR, "primary": True} for c in ("401", "402", "403")
    ]
    return data


def test_a_vendor_s_engaged_company_is_grade_d_and_no_mqa_on_its_record(tmp_path: Path) -> None:
    """The default model's account force rule: a vendor's company with three engaged people
    (hot on its points, grade B on its firmographics) is written grade D with no MQA reason,
    and its people (each forced D and blocked from MQL by the contact model) get no MQL
    through it."""
    for h in accounts_harness(tmp_path, portal=_vendor_portal()):
        summary = h.pipeline.sync()
        assert summary.status == "ok", summary.message
        assert summary.dead_lettered == 0
        stored = h.store.account_score("hubspot", f"company:{VENDOR}")
        assert stored is not None
        # the points of Northwind Data's committee above, fit 50 (B on its points), forced D
        assert (stored.score, stored.engagement_points, stored.fit_points) == (210, 135, 50)
        assert (stored.grade, stored.mqa, stored.mqa_reason) == ("D", False, None)
        assert stored.engaged_contacts == ("401", "403", "402")
        written = company_writes(h)[VENDOR]
        assert written["leadscore_account_score"] == "210"
        assert written["leadscore_account_grade"] == "D"
        assert written["leadscore_mqa_reason"] == ""
        assert written["leadscore_account_reasons"] == (
            "+135 engagement of 3 people (at most 50 each): Dana Whitfield +50 (of 70), "
            "Rowan Okafor +50 (of 55), Robin Hale +35; +30 3 people engaged in 30 days: Dana "
            "Whitfield (VP Marketing), Rowan Okafor (Marketing Analyst), Robin Hale (Marketing "
            "Manager); +25 pricing or product pages by 2+ people within 7 days: Dana "
            "Whitfield, Rowan Okafor, Robin Hale; account grade D: vendor domain; … +1 more"
        )
        company = h.sb.company(VENDOR).properties
        assert company["leadscore_account_grade"] == "D"
        assert company["leadscore_mqa_reason"] == ""
        for cid in ("401", "402", "403"):
            props = h.sb.contact(cid).properties
            assert props["leadscore_account_grade"] == "D", cid
            assert props["leadscore_grade"] == "D", cid
            assert props["lifecyclestage"] == "lead", cid
            assert not props.get("leadscore_mql_reason"), cid


def test_one_new_event_rescores_only_its_account(acc: Harness) -> None:
    acc.pipeline.sync()
    acc.sb.clear_log()
    acc.clock[0] = NOW + timedelta(minutes=15)
    url = "https://www.leadscore-demo.com/product/explain"
    acc.sb.add_event("202", "e_visited_page", {"hs_url": url}, NOW + timedelta(minutes=5))
    summary = acc.pipeline.sync()
    assert summary.status == "ok", summary.message
    stage = acc.pipeline.accounts
    assert stage is not None
    assert stage.state.accounts_scored == 1
    assert list(stage.state.scored) == [f"company:{NORTHWIND}"]
    assert acc.store.get_score("hubspot", "202").score == 45  # type: ignore[union-attr]
    nw = acc.store.account_score("hubspot", f"company:{NORTHWIND}")
    assert nw is not None and nw.score == 220
    # writes: Robin's score and every Northwind member's account score; Northwind's record
    companies = company_writes(acc)
    assert list(companies) == [NORTHWIND]
    assert companies[NORTHWIND]["leadscore_account_score"] == "220"
    written = contact_writes(acc)
    assert set(written) == {"201", "202", "203", "204"}
    assert set(written["201"]) == {"leadscore_account_score", "leadscore_scored_at"}
    assert written["201"]["leadscore_account_score"] == "220"
    assert written["202"]["leadscore_score"] == "45"


def test_a_contact_moving_company_rescores_both_accounts(acc: Harness) -> None:
    acc.pipeline.sync()
    before = acc.store.account_score("hubspot", f"company:{NORTHWIND}")
    assert before is not None and before.members == 4
    acc.sb.clear_log()
    acc.clock[0] = NOW + timedelta(minutes=15)
    acc.sb.associate("203", ACME, primary=True)  # Rowan moves to Acme (primary)
    summary = acc.pipeline.sync()
    assert summary.status == "ok", summary.message
    stage = acc.pipeline.accounts
    assert stage is not None
    assert sorted(stage.state.scored) == [f"company:{ACME}", f"company:{NORTHWIND}"]
    link = acc.store.contact_accounts_many("hubspot", ["203"])["203"]
    assert (link.account_id, set(link.company_ids)) == (f"company:{ACME}", {ACME, NORTHWIND})
    nw = acc.store.account_score("hubspot", f"company:{NORTHWIND}")
    acme = acc.store.account_score("hubspot", f"company:{ACME}")
    assert nw is not None and acme is not None
    assert (nw.members, nw.engaged_contacts) == (3, ("201", "202"))
    assert (acme.members, acme.engaged_contacts) == (2, ("203", "301"))
    companies = company_writes(acc)
    assert set(companies) == {ACME, NORTHWIND}
    assert companies[NORTHWIND]["leadscore_account_score"] == str(round(nw.score))
    assert companies[ACME]["leadscore_account_score"] == str(round(acme.score))
    # Rowan shows Acme's heat now; Northwind's members its new score
    assert acc.sb.contact("203").properties["leadscore_account_score"] == str(round(acme.score))
    assert acc.sb.contact("201").properties["leadscore_account_score"] == str(round(nw.score))


def test_a_company_gone_at_write_time_is_marked_archived_and_its_contact_moves_on(
    acc: Harness,
) -> None:
    acc.pipeline.sync()
    acc.sb.clear_log()
    acc.clock[0] = NOW + timedelta(minutes=15)
    url = "https://www.leadscore-demo.com/product/scoring"
    acc.sb.add_event("303", "e_visited_page", {"hs_url": url}, NOW + timedelta(minutes=5))
    archived: list[str] = []

    def archive_stealth(where: str) -> None:  # archived by someone between read and write
        if where == "write" and not archived:
            acc.sb.portal.archive(STEALTH, ot=COMPANIES)
            archived.append(STEALTH)

    acc.pipeline.checkpoint = archive_stealth
    summary = acc.pipeline.sync()
    acc.pipeline.checkpoint = None
    assert summary.status == "ok", summary.message
    assert summary.archived == 1 and summary.dead_lettered == 0
    gone = acc.store.get_crm_companies("hubspot", [STEALTH])[STEALTH]
    assert gone.archived
    assert acc.store.pending_write_ids("hubspot") == ["303"]  # resolved again next pass
    # the next pass: no live company left; 303 falls back to its corporate domain
    acc.sb.clear_log()
    acc.clock[0] = NOW + timedelta(minutes=30)
    again = acc.pipeline.sync()
    assert again.status == "ok", again.message
    link = acc.store.contact_accounts_many("hubspot", ["303"])["303"]
    assert (link.account_id, link.source) == ("domain:stealth.dev", "email_domain")
    assert acc.store.account_score("hubspot", f"company:{STEALTH}") is None  # nobody left
    assert company_writes(acc) == {}  # never written again


def test_a_merged_company_moves_its_contacts_to_the_survivor(acc: Harness) -> None:
    acc.pipeline.sync()
    acc.sb.clear_log()
    acc.clock[0] = NOW + timedelta(minutes=15)
    acc.sb.portal.merge(ACME, GLOBEX, ot=COMPANIES)  # Globex merged into Acme
    summary = acc.pipeline.sync()
    assert summary.status == "ok", summary.message
    assert acc.store.get_crm_companies("hubspot", [GLOBEX])[GLOBEX].merged_into == ACME
    link = acc.store.contact_accounts_many("hubspot", ["302"])["302"]
    assert link.account_id == f"company:{ACME}"
    assert acc.store.account_score("hubspot", f"company:{GLOBEX}") is None
    acme = acc.store.account_score("hubspot", f"company:{ACME}")
    assert acme is not None and acme.members == 2
    assert set(company_writes(acc)) <= {ACME}  # the merged-away record is never written


MARKETO_DEMO = ROOT / "fixtures" / "marketo_demo_instance.json"


def test_marketo_account_values_land_on_lead_fields(tmp_path: Path) -> None:
    """Marketo: the demo instance's leads carry their company record (`externalCompanyId`,
    firmographics read from companies.json); the account's values are written on each lead's
    mapped fields (accountScore__c, accountGrade__c), never on the company."""
    with marketo_accounts(tmp_path, [NOW]) as (sb, pipeline):
        store = pipeline.store
        summary = pipeline.sync()
        assert summary.status == "ok", summary.message
        acme = store.account_score("marketo", "company:ACC-9001")
        assert acme is not None
        # six engaged people: roll-up 6 x 50 (capped), breadth 30, committee 20, pricing
        # together 25; grade A from the company record (acme-analytics.com, 850 people)
        assert (acme.score, acme.grade, acme.mqa, acme.fit_points) == (375, "A", True, 80)
        assert acme.engaged_contacts == ("139", "149", "138", "136", "101", "112")
        members = store.account_members("marketo", "company:ACC-9001")
        assert [(m.contact_id, m.score, m.source) for m in members] == [
            ("139", 129, "company_record"),
            ("149", 126, "company_record"),
            ("138", 122, "company_record"),
            ("136", 117, "company_record"),
            ("101", 110, "company_record"),
            ("112", 60, "company_record"),
        ]
        for lead_id in (101, 112):
            values = sb.lead(lead_id).values
            assert values["accountScore__c"] == round(acme.score), lead_id
            assert values["accountGrade__c"] == acme.grade, lead_id
        # Robin Hale (60 points, grade B) is an MQL only through the MQA's lower bar
        robin = store.get_score("marketo", "112")
        assert robin is not None and robin.mql and robin.score == 60
        assert robin.mql_reason == "account MQA: company:ACC-9001 (score 60 ≥ 60 at an MQA)"
        assert sb.lead(112).values["leadStatus"] == "MQL"
        # free mail and no company field: no account, nothing written
        assert store.contact_accounts_many("marketo", ["102"]) == {}
        assert "accountScore__c" not in sb.lead(102).values
        # the Northwind Data committee: an MQA, but nobody reaches even the lower bar
        nw = store.account_score("marketo", "company:ACC-9012")
        assert nw is not None and (nw.score, nw.grade, nw.mqa) == (174, "A", True)
        assert [(m.contact_id, m.score, m.mql) for m in store.account_members(
            "marketo", "company:ACC-9012")] == [
            ("154", 40, False), ("153", 24, False), ("155", 20, False), ("156", 15, False)
        ]  # fmt: skip
        # no company write on Marketo: its companies API was only read
        assert sb.calls("/rest/v1/companies/sync.json") == []


@contextmanager
def marketo_accounts(tmp_path: Path, clock: list[datetime]) -> Iterator[tuple[Any, Pipeline]]:
    """The Marketo demo instance on its sandbox with the account fields, and a pipeline with
    accounts on at `clock[0]`."""
    import json

    from connector.crm.marketo import MarketoAdapter
    from connector.sandbox.marketo import MarketoSandbox

    demo = json.loads(MARKETO_DEMO.read_text(encoding="utf-8"))
    with (
        MarketoSandbox.start(demo, now=NOW) as sb,
        StateStore.open(tmp_path / "state.db") as store,
    ):
        sb.instance.add_field({"name": "accountScore__c", "dataType": "integer"})
        sb.instance.add_field({"name": "accountGrade__c", "dataType": "string", "length": 10})
        adapter = MarketoAdapter(
            sb.url,
            SecretStr(sb.client_id),
            SecretStr(sb.client_secret),
            retry=RetryPolicy(attempts=4, base_seconds=0.001, max_seconds=0.02, seed=1),
            accounts=True,
        )
        enricher = build_enricher(
            load_settings(pdl_api_key=None, apollo_api_key=None), cache=store.company_cache
        )
        pipeline = Pipeline(store, adapter, load_model(), enricher=enricher, clock=lambda: clock[0])
        pipeline.accounts = AccountStage(pipeline)
        try:
            yield sb, pipeline
        finally:
            adapter.close()


def test_company_writes_that_keep_failing_are_dead_lettered_and_written_next_pass(
    acc: Harness,
) -> None:
    from connector.sandbox.faults import Faults

    acc.sb.faults = Faults(
        error_rate=1.0,
        methods=("POST",),
        path_prefixes=("/crm/v3/objects/companies/batch/update",),
    )
    first = acc.pipeline.sync()
    assert first.status == "ok", first.message
    assert first.dead_lettered == 4  # the four live companies; contacts all written
    assert first.notes == ["accounts: 5 scored, 4 company write(s) failed (kept for the next sync)"]
    letters = acc.store.open_dead_letters("hubspot", "company_write")
    assert sorted((d.contact_id for d in letters), key=str) == [ACME, NORTHWIND, GLOBEX, STEALTH]
    assert all(
        d.reason is not None and d.reason.startswith(f"company {d.contact_id}: ") for d in letters
    )
    assert company_writes(acc) == {}
    due = acc.store.accounts_due("hubspot")
    assert due == [f"company:{i}" for i in sorted((ACME, NORTHWIND, GLOBEX, STEALTH))]
    acc.sb.faults = Faults()
    acc.sb.clear_log()
    acc.clock[0] = NOW + timedelta(minutes=15)
    second = acc.pipeline.sync()
    assert second.status == "ok", second.message
    assert set(company_writes(acc)) == {ACME, NORTHWIND, GLOBEX, STEALTH}
    assert acc.sb.company(NORTHWIND).properties["leadscore_account_score"] == "210"
    assert acc.store.open_dead_letters("hubspot", "company_write") == []
    assert acc.store.accounts_due("hubspot") == []
    assert acc.writes() and all(  # contacts were written the first time: not again
        "leadscore_score" not in i["properties"] for i in acc.writes()
    )


def test_marketo_without_company_records_falls_back_to_the_company_field() -> None:
    """An instance that answers companies.json with 610/404 offers no company records:
    `companies_available` goes False once and no further call is made."""
    import json

    from connector.crm.marketo import MarketoAdapter
    from connector.sandbox.marketo import MarketoSandbox

    demo = json.loads(MARKETO_DEMO.read_text(encoding="utf-8"))
    with MarketoSandbox.start(demo, now=NOW) as sb:
        adapter = MarketoAdapter(
            sb.url,
            SecretStr(sb.client_id),
            SecretStr(sb.client_secret),
            retry=RetryPolicy(attempts=2, base_seconds=0.001, max_seconds=0.01, seed=1),
            accounts=True,
        )
        sb.inject("610", path="/rest/v1/companies.json")
        try:
            assert adapter.get_companies(["ACC-9001"]) == []
            assert adapter.companies_available is False
            calls = len(sb.calls("/rest/v1/companies.json"))
            assert calls == 1
            assert adapter.get_companies(["ACC-9001"]) == []
            assert len(sb.calls("/rest/v1/companies.json")) == calls  # not asked again
        finally:
            adapter.close()


CANNED = "https://123-abc-456.mktorest.com"


def test_marketo_company_records_are_read_by_external_company_id() -> None:
    import responses

    from connector.crm.base import CrmCompany
    from connector.crm.marketo import MarketoAdapter

    with responses.RequestsMock() as rsps:
        rsps.post(
            f"{CANNED}/identity/oauth/token",
            json={"access_token": "tok", "token_type": "bearer", "expires_in": 3600},
        )
        rsps.get(
            f"{CANNED}/rest/v1/companies.json",
            json={
                "requestId": "1",
                "success": True,
                "result": [
                    {
                        "seq": 0,
                        "id": 7,
                        "externalCompanyId": "NW-1",
                        "company": "Northwind Data",
                        "industry": "computer software",
                        "numberOfEmployees": 400,
                        "annualRevenue": 60000000,
                        "billingCountry": "US",
                        "website": "https://www.northwind-data.com/about",
                    },
                ],
            },
        )
        adapter = MarketoAdapter(
            CANNED, SecretStr("id"), SecretStr("secret"), accounts=True,
            retry=RetryPolicy(attempts=1, base_seconds=0.001, max_seconds=0.01, seed=1),
        )  # fmt: skip
        try:
            got = adapter.get_companies(["NW-1"])
        finally:
            adapter.close()
        query = rsps.calls[1].request.url
    assert query is not None
    # Marketo's own number is kept: `explain --account 7` finds it
    assert got == [
        CrmCompany("NW-1", "northwind-data.com", "Northwind Data", "computer software", 400,
                   60_000_000.0, "US", properties={"id": "7"})
    ]  # fmt: skip
    assert "filterType=externalCompanyId" in query and "filterValues=NW-1" in query
    assert "fields=id%2CexternalCompanyId%2C" in query


def test_demo_portal_accounts_northwind_data_is_an_mqa_and_the_lower_bar_makes_three_mqls(
    demo_accounts: Harness,
) -> None:
    h = demo_accounts
    first = h.pipeline.sync()
    assert first.status == "ok", first.message
    assert (first.written, first.companies_written, first.dead_lettered) == (54, 12, 0)
    assert first.line().startswith(
        "sync hubspot ok: pulled 54, new events 2,342, scored 54, written 54 (+12 companies), "
        "repaired 0, unchanged 0, dead-lettered 0, API calls "
    )
    assert first.notes == ["accounts: 12 scored"]
    top = [(a.account_id, a.score, a.grade, a.mqa) for a in h.store.top_accounts("hubspot", 5)]
    assert top == [
        ("company:9001", 375, "A", True),
        ("company:9004", 315, "C", False),
        ("company:9007", 308, "C", False),
        ("company:9002", 275, "B", True),
        ("company:9012", 174, "A", True),
    ]
    # Northwind Data: an MQA from four people, none of them an MQL (alone or by the bar)
    members = h.store.account_members("hubspot", "company:9012")
    assert [(m.contact_id, m.score, m.grade, m.mql) for m in members] == [
        ("154", 40, "B", False),
        ("153", 24, "A", False),
        ("155", 20, "C", False),
        ("156", 15, "B", False),
    ]
    nw = company_writes(h)["9012"]
    assert nw["leadscore_account_score"] == "174"
    assert nw["leadscore_account_grade"] == "A"
    assert nw["leadscore_engaged_contacts"] == "4"
    assert nw["leadscore_mqa_reason"] == "score 174 ≥ 100, grade A, 4 people engaged"
    assert nw["leadscore_account_reasons"].startswith(
        "+99 engagement of 4 people (at most 50 each): Marcus Lee +40, Elena Marsh +24, "
        "Nadia Okafor +20, Tom Becker +15; +30 4 people engaged in 30 days: "
    )
    assert h.sb.company("9012").properties["leadscore_account_score"] == "174"
    for cid in ("153", "154", "155", "156"):
        assert h.sb.contact(cid).properties["leadscore_account_score"] == "174", cid
        assert h.sb.contact(cid).properties["lifecyclestage"] == "lead", cid
    # the lower bar at an MQA (60, grade A/B) makes exactly these MQLs in the whole portal
    by_account = sorted(
        (s.contact_id, s.score, s.mql_reason)
        for s in h.store.iter_scores("hubspot")
        if s.mql_reason and s.mql_reason.startswith("account MQA")
    )
    assert by_account == [
        ("112", 60, "account MQA: company:9001 (score 60 ≥ 60 at an MQA)"),
        ("124", 92, "account MQA: company:9006 (score 92 ≥ 60 at an MQA)"),
        ("148", 97, "account MQA: company:9002 (score 97 ≥ 60 at an MQA)"),
    ]
    assert h.sb.contact("112").properties["lifecyclestage"] == MQL
    # Taylor (108) is on Globex (primary) and Wayne Enterprises: the primary wins
    link = h.store.contact_accounts_many("hubspot", ["108"])["108"]
    assert (link.account_id, link.company_ids) == ("company:9003", ("9003", "9008"))
    # Vandelay Industries (no domain, no contacts) has no account to score
    assert "9013" not in company_writes(h)

    h.sb.clear_log()
    h.clock[0] = NOW + timedelta(minutes=15)
    idle = h.pipeline.sync()
    assert (idle.status, idle.written, idle.notes) == ("ok", 0, [])
    assert [r.path for r in h.sb.requests if r.path.endswith("/batch/update")] == []


def test_a_rescore_outside_the_sync_keeps_the_firmographics_file_s_accounts(
    acc: Harness,
) -> None:
    """The local firmographics file is not cached (only remote answers are): a roll-up outside
    a sync (the rescore's dry run and its applied roll-up, simulate, calibrate) asks the local
    providers for an account's domain, as the sync's enrichment did. Right after a sync, a
    dry run with the same model changes no account; the applied rescore writes nothing."""
    from connector.ops.rescore import apply_rescore, preview_rescore

    assert acc.pipeline.sync().status == "ok"
    stored = {a: (r.score, r.grade) for a, r in _account_scores(acc).items()}
    grades = sorted(g for _, g in stored.values())
    assert "B" in grades  # Globex and Initech are B from the file (industry, size)
    model = acc.pipeline.model
    preview = preview_rescore(acc.store, "hubspot", model, acc.pipeline.enricher, NOW, workers=1)
    a = preview.accounts
    assert a is not None
    assert (a.score_changes, a.grade_changes, a.became_mqa, a.stopped_mqa) == (0, 0, 0, 0)
    acc.sb.clear_log()
    apply_rescore(acc.pipeline, model, workers=1)
    after = {a: (r.score, r.grade) for a, r in _account_scores(acc).items()}
    assert after == stored
    assert [r.path for r in acc.sb.requests if "batch/update" in r.path] == []


def _account_scores(h: Harness) -> dict[str, StoredAccountScore]:
    return h.store.account_scores_many("hubspot", h.store.account_ids("hubspot"))
