"""A company's firmographics edited in HubSpot (the official SDK against the sandbox, the demo
portal, accounts on): the next sync writes the company record and every member's account
values in the same pass, and the sync after it writes nothing, whether the members are pulled
again in that pass (our own writes bumped them less than the lookback ago) or not.

Acme Analytics (company 9001) has six members: 101, 112, 136, 138, 139 and 149; its account is
an MQA of 375 points, grade A (target account +30, 850 people +20, software +15, $120M +10,
US +5)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hubspot import HubSpot
from hubspot.crm.companies import SimplePublicObjectInput

from connector.sandbox.hubspot.sandbox import HubSpotSandbox
from connector.types import MQL

from .conftest import NOW, Harness
from .test_sync_accounts import company_writes, contact_writes

ACME = "9001"
MEMBERS = {"101", "112", "136", "138", "139", "149"}
WRITE_PATHS = ("/batch/update", "/batch/upsert", "/batch/create")


def sdk(sb: HubSpotSandbox) -> HubSpot:
    return HubSpot(access_token=sb.token, host=sb.url)


def edit_company(h: Harness, **properties: str) -> None:
    """What the tester did: `crm.companies.basic_api.update` with the official SDK."""
    sdk(h.sb).crm.companies.basic_api.update(ACME, SimplePublicObjectInput(properties=properties))


def move_to(h: Harness, minutes: float) -> None:
    """Both clocks to NOW + `minutes`: the pipeline's, and the portal's (a second behind, so
    an edit made now is older than the sync that follows)."""
    h.clock[0] = NOW + timedelta(minutes=minutes)
    behind = (h.clock[0] - timedelta(seconds=1) - h.sb.portal.now()).total_seconds()
    h.sb.portal.advance(max(0.0, behind))


def sync_at(h: Harness, minutes: float | None = None) -> tuple[list[tuple[str, str]], int]:
    """One sync (at NOW + `minutes`, else now): the write requests the sandbox saw (method,
    path) and the contacts it pulled."""
    h.sb.clear_log()
    if minutes is not None:
        move_to(h, minutes)
    summary = h.pipeline.sync()
    assert summary.status == "ok", summary.message
    assert summary.dead_lettered == 0
    writes = [
        (r.method, r.path)
        for r in h.sb.requests
        if r.method in ("PATCH", "PUT", "DELETE")
        or (r.method == "POST" and r.path.rstrip("/").endswith(WRITE_PATHS))
    ]
    return writes, summary.pulled


# The minutes of the idle sync after the first one and of the sync after the edit: a contact
# cursor starts at the previous run's start minus the 10-minute lookback, so at 5/10 the
# members (last written at NOW) are pulled again with the edit; at 15/30 they are not.
TIMINGS = {"members pulled again": (5, 10), "members not pulled": (15, 30)}


def settled(h: Harness, idle_at: int) -> None:
    """The first sync and an idle resync that writes nothing."""
    first, _ = sync_at(h, 0)
    assert first
    idle, _ = sync_at(h, idle_at)
    assert idle == []
    acme = h.store.account_score("hubspot", f"company:{ACME}")
    assert acme is not None and (acme.score, acme.grade, acme.mqa) == (375, "A", True)
    for cid in MEMBERS:
        assert h.sb.contact(cid).properties["leadscore_account_grade"] == "A", cid


def assert_members_show(h: Harness, score: str, grade: str) -> None:
    for cid in sorted(MEMBERS):
        props = h.sb.contact(cid).properties
        assert (props["leadscore_account_score"], props["leadscore_account_grade"]) == (
            score,
            grade,
        ), cid


@pytest.mark.parametrize("timing", list(TIMINGS))
def test_a_firmographic_edit_writes_the_company_and_its_members_in_the_same_pass(
    demo_accounts: Harness, timing: str
) -> None:
    h = demo_accounts
    idle_at, edit_at = TIMINGS[timing]
    settled(h, idle_at)
    move_to(h, edit_at)
    edit_company(h, numberofemployees="12", industry="RETAIL")  # 80 fit points -> 45: B
    writes, pulled = sync_at(h)
    assert (pulled >= len(MEMBERS)) == (timing == "members pulled again")
    acme = h.store.account_score("hubspot", f"company:{ACME}")
    assert acme is not None and (acme.score, acme.grade, acme.mqa) == (375, "B", True)
    # one company batch and one contact batch: the company and its six members, once each
    assert writes == [
        ("POST", "/crm/v3/objects/contacts/batch/update"),
        ("POST", "/crm/v3/objects/companies/batch/update"),
    ]
    assert {k: v["leadscore_account_grade"] for k, v in company_writes(h).items()} == {ACME: "B"}
    contacts = contact_writes(h)
    assert set(contacts) == MEMBERS
    for cid, props in contacts.items():
        assert set(props) == {"leadscore_account_grade", "leadscore_scored_at"}, cid
        assert props["leadscore_account_grade"] == "B", cid
    assert_members_show(h, "375", "B")
    # nothing changed since: nothing written
    again, _ = sync_at(h, edit_at + 15)
    assert again == []
    assert_members_show(h, "375", "B")


def test_an_edit_flipping_back_and_forth_writes_each_grade_in_its_own_pass(
    demo_accounts: Harness,
) -> None:
    h = demo_accounts
    settled(h, 5)
    for i, (employees, industry, grade) in enumerate(
        [("12", "RETAIL", "B"), ("850", "COMPUTER_SOFTWARE", "A"), ("12", "RETAIL", "B")]
    ):
        move_to(h, 10 + 5 * i)  # the members are pulled again every time
        edit_company(h, numberofemployees=employees, industry=industry)
        writes, _ = sync_at(h)
        assert len(writes) == 2, (grade, writes)  # a contact batch and a company batch
        assert company_writes(h)[ACME]["leadscore_account_grade"] == grade
        assert {c: p["leadscore_account_grade"] for c, p in contact_writes(h).items()} == (
            dict.fromkeys(MEMBERS, grade)
        )
        assert_members_show(h, "375", grade)
    idle, _ = sync_at(h, 30)
    assert idle == []


@pytest.mark.parametrize("timing", list(TIMINGS))
def test_a_firmographic_edit_that_keeps_the_grade_and_score_writes_nothing(
    demo_accounts: Harness, timing: str
) -> None:
    """850 -> 900 people: the same rules fire (the company's reasons name the rules, not the
    head count), so the account's values are unchanged: rescored, nothing written."""
    h = demo_accounts
    idle_at, edit_at = TIMINGS[timing]
    settled(h, idle_at)
    move_to(h, edit_at)
    edit_company(h, numberofemployees="900")
    writes, _ = sync_at(h)
    assert writes == []
    stage = h.pipeline.accounts
    assert stage is not None and f"company:{ACME}" in stage.state.scored
    assert h.store.accounts_due("hubspot") == []
    again, _ = sync_at(h, edit_at + 15)
    assert again == []


@pytest.mark.parametrize("timing", list(TIMINGS))
def test_an_edit_that_ends_the_mqa_writes_company_and_members_in_the_same_pass(
    demo_accounts: Harness, timing: str
) -> None:
    """12 people, retail, $1M: 35 fit points, grade C, no MQA any more (the target-account
    list's +30 alone). Robin Hale (112, 60 points, grade B) was an MQL only by the MQA's lower
    bar; HubSpot keeps the MQL stage (lifecycle moves forward only)."""
    h = demo_accounts
    idle_at, edit_at = TIMINGS[timing]
    settled(h, idle_at)
    robin = h.store.get_score("hubspot", "112")
    assert robin is not None and robin.mql and robin.score == 60
    move_to(h, edit_at)
    edit_company(h, numberofemployees="12", industry="RETAIL", annualrevenue="1000000")
    writes, _ = sync_at(h)
    acme = h.store.account_score("hubspot", f"company:{ACME}")
    assert acme is not None and (acme.score, acme.grade, acme.mqa) == (375, "C", False)
    assert len(writes) == 2, writes  # a contact batch and a company batch
    company = company_writes(h)[ACME]
    assert (company["leadscore_account_grade"], company["leadscore_mqa_reason"]) == ("C", "")
    assert set(contact_writes(h)) == MEMBERS
    assert_members_show(h, "375", "C")
    assert h.sb.contact("112").properties["lifecyclestage"] == MQL
    again, _ = sync_at(h, edit_at + 15)
    assert again == []


def test_an_account_scored_again_by_a_later_chunk_rewrites_the_members_of_an_earlier_one(
    tmp_path: Path,
) -> None:
    """Northwind Data's members 201-204 in two score chunks (2 contacts a chunk), a new event
    in each: the first chunk scores the account with 204's old points and plans 201 and 202
    with that; the second scores it again. Every member ends the pass showing the final
    score, and the sync after writes nothing."""
    from .test_sync_accounts import NORTHWIND, accounts_harness

    for h in accounts_harness(tmp_path):
        h.pipeline.options.score_batch = 2
        assert h.pipeline.sync().status == "ok"
        url = "https://www.leadscore-demo.com/product/explain"
        move_to(h, 5)
        h.sb.add_event("202", "e_visited_page", {"hs_url": url}, h.clock[0])
        h.sb.add_event("204", "e_visited_page", {"hs_url": url}, h.clock[0])
        writes, _ = sync_at(h)
        nw = h.store.account_score("hubspot", f"company:{NORTHWIND}")
        assert nw is not None
        assert company_writes(h)[NORTHWIND]["leadscore_account_score"] == str(round(nw.score))
        for cid in ("201", "202", "203", "204"):
            shown = h.sb.contact(cid).properties["leadscore_account_score"]
            assert shown == str(round(nw.score)), cid
        assert writes.count(("POST", "/crm/v3/objects/companies/batch/update")) == 1
        again, _ = sync_at(h, 20)
        assert again == []


def test_an_account_scored_in_two_chunks_counts_once_in_the_summary(tmp_path: Path) -> None:
    """Northwind Data's members 202 and 204 in two score chunks (2 contacts a chunk), a new
    event each: the account is scored in each chunk (the calls counted), and the run's
    summary, its note and the metric count it once (a synthetic portal's sync said "402
    scored" for 400 accounts)."""
    from .test_sync_accounts import NORTHWIND, accounts_harness

    for h in accounts_harness(tmp_path):
        h.pipeline.options.score_batch = 2
        assert h.pipeline.sync().status == "ok"
        stage = h.pipeline.accounts
        assert stage is not None
        url = "https://www.leadscore-demo.com/product/explain"
        move_to(h, 5)
        h.sb.add_event("202", "e_visited_page", {"hs_url": url}, h.clock[0])
        h.sb.add_event("204", "e_visited_page", {"hs_url": url}, h.clock[0])
        move_to(h, 10)
        summary = h.pipeline.sync()
        assert summary.status == "ok"
        assert stage.state.accounts_scored == 2  # one account, scored by two chunks
        assert stage.state.distinct == {f"company:{NORTHWIND}"}
        assert summary.accounts_scored == summary.counts()["accounts_scored"] == 1
        assert "accounts: 1 scored" in summary.notes


def test_the_demo_s_industry_codes_are_stored_as_the_words_of_their_label(
    demo_accounts: Harness,
) -> None:
    """The demo portal holds HubSpot's industry codes, as a real portal does; the sync stores
    each company's industry as its label's words, the words of the model's target industries
    and of fixtures/firmographics.csv (Acme's software earns its +15)."""
    h = demo_accounts
    assert h.sb.company("9005").properties["industry"] == "HOSPITAL_HEALTH_CARE"
    assert h.sb.company(ACME).properties["industry"] == "COMPUTER_SOFTWARE"
    sync_at(h, 0)
    stored = dict(
        h.store.db.execute(
            "SELECT id, industry FROM crm_companies WHERE crm = 'hubspot' AND id IN (?, ?)",
            (ACME, "9005"),
        ).fetchall()
    )
    assert stored == {ACME: "computer software", "9005": "hospital & health care"}
    acme = h.store.account_score("hubspot", f"company:{ACME}")
    assert acme is not None
    assert [(r.rule, r.text) for r in acme.reasons if r.rule == "account_industry"] == [
        ("account_industry", "+15 target industry (industry computer software)")
    ]
