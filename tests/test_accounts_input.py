"""Company records as people fill them, against the HubSpot sandbox driven with the official
SDK (accounts on): numbers too large to be a company's (a crash before), domains written every
way (`ACME.COM.`, `www.`, a URL, an address, IDN) read as the registrable domain an e-mail
address gives, values that are no domain read as none; input dead letters counted by the run
and by `LEADSCORE_FAIL_ON_DEAD_LETTERS`, resolved once the record reads cleanly, and shown as
what they are (a company is not a contact of the same number)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hubspot import HubSpot
from hubspot.crm.companies import SimplePublicObjectInput as CompanyInput
from hubspot.crm.contacts import SimplePublicObjectInput as ContactInput
from pydantic import SecretStr

from connector.account_stage import AccountStage
from connector.cli import cli
from connector.crm.hubspot import HubSpotAdapter
from connector.crm.hubspot.companies import _company_from
from connector.crm.hubspot.events import _rollup_events
from connector.crm.marketo.companies import _company
from connector.enrich.email import company_domain, parse_email
from connector.enrich.enricher import build_enricher
from connector.errors import InputError
from connector.model.loader import load_model
from connector.pipeline import Pipeline, SyncOptions
from connector.retry import RetryPolicy
from connector.sandbox.base import Request, Response
from connector.sandbox.hubspot import HubSpotSandbox
from connector.sandbox.hubspot.events import WebEvent
from connector.sandbox.hubspot.object_types import COMPANIES
from connector.settings import load_settings
from connector.state.store import StateStore
from connector.text import industry_words
from connector.types import CrmCompany

from .conftest import NOW, Harness
from .test_sync_accounts import ACME, ACME_DUP, GLOBEX, NORTHWIND, STEALTH, _portal, company_writes

ROOT = Path(__file__).resolve().parent.parent
CRM = "hubspot"
BUECHER = "9006"
FIRMO_ROWS = (
    "bücher.de,Bücher Online,computer software,technology,300,201-500,"
    "30000000,$25M-$50M,US,2004,,local_csv,2026-10-01",
)
# what a clean run of test_sync_accounts' portal writes: company grade and score, by company
CLEAN_COMPANIES: dict[str, tuple[str | None, str | None]] = {
    ACME: ("A", "10"),
    NORTHWIND: ("A", "210"),
    GLOBEX: ("B", "0"),
    STEALTH: ("D", "10"),
}
ACME_REASONS = (
    "+10 engagement of 1 person (at most 50 each): Alex Moreau +10; "
    "account grade A: target account, company size 51-5,000"
)


@contextmanager
def harness(tmp_path: Path, portal: dict[str, Any] | None = None) -> Iterator[Harness]:
    """test_sync_accounts' portal (Acme Dup merged into Acme) or `portal`, accounts on, and a
    firmographics file that also knows `bücher.de`."""
    firmo = tmp_path / "firmographics.csv"
    shutil.copy(ROOT / "fixtures" / "firmographics.csv", firmo)
    with firmo.open("a", encoding="utf-8") as f:
        f.write("\n".join(FIRMO_ROWS) + "\n")
    with HubSpotSandbox.start(
        portal or _portal(), now=NOW, search_rate_limit=10_000, time_scale=0.01
    ) as sb:
        sb.portal.merge(ACME, ACME_DUP, touch=False, ot=COMPANIES)
        adapter = HubSpotAdapter(
            SecretStr(sb.token),
            sb.url,
            search_per_second=10_000,
            timeout_s=5,
            retry=RetryPolicy(attempts=4, base_seconds=0.01, max_seconds=0.05, seed=1),
            accounts=True,
        )
        adapter.ensure_properties()
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
        sb.clear_log()
        try:
            yield Harness(sb, adapter, store, pipeline, clock)
        finally:
            adapter.close()
            store.close()


def sdk(h: Harness) -> HubSpot:
    return HubSpot(access_token=h.sb.token, host=h.sb.url)


def set_company(h: Harness, cid: str, **props: str) -> None:
    sdk(h).crm.companies.basic_api.update(cid, CompanyInput(properties=props))


def stored_company(h: Harness, cid: str) -> tuple[Any, ...] | None:
    """The company's row in the state DB (domain, name, industry, employees, revenue)."""
    row = h.store.db.execute(
        "SELECT domain, name, industry, employee_count, annual_revenue_usd FROM crm_companies "
        "WHERE crm = ? AND id = ?",
        (CRM, cid),
    ).fetchone()
    return None if row is None else tuple(row)


def open_letters(h: Harness) -> list[tuple[str, str | None, str | None, int]]:
    return [(d.kind, d.contact_id, d.reason, d.attempts) for d in h.store.open_dead_letters(CRM)]


def grades(h: Harness) -> dict[str, tuple[str | None, str | None]]:
    """Each company's account grade and score as the sandbox holds them."""
    out = {}
    for cid in CLEAN_COMPANIES:
        props = h.sb.portal.store(COMPANIES).records[cid].properties
        out[cid] = (props.get("leadscore_account_grade"), props.get("leadscore_account_score"))
    return out


# -- 1. numbers no company has -------------------------------------------------------------
@pytest.mark.parametrize("employees", ["1e20", "99999999999999999999999", "1e308"])
def test_a_huge_employee_count_is_dead_lettered_and_the_sync_goes_on(
    tmp_path: Path, employees: str
) -> None:
    """HubSpot takes these (finite numbers); `int(float(...))` of them once crashed every sync
    with `OverflowError: Python int too large to convert to SQLite INTEGER`."""
    with harness(tmp_path) as h:
        set_company(h, ACME, numberofemployees=employees)
        summary = h.pipeline.sync()
        assert (summary.status, summary.exit_code, summary.bad_records) == ("ok", 0, 1)
        assert ", dead-lettered 1 (1 bad input), " in summary.line()
        assert open_letters(h) == [
            (
                "input",
                f"company:{ACME}",
                f"company {ACME}: numberofemployees: not a plausible number "
                f"({employees!r}: expected 0 to 10,000,000)",
                1,
            )
        ]
        assert stored_company(h, ACME) is None  # never stored half-read
        # every other company flows as in a clean run; Acme's one person is scored by his
        # corporate domain meanwhile (its record is not readable)
        assert {c: g for c, g in grades(h).items() if c != ACME} == {
            c: g for c, g in CLEAN_COMPANIES.items() if c != ACME
        }
        assert ACME not in company_writes(h)
        by_domain = h.store.account_score(CRM, "domain:acme-analytics.com")
        assert by_domain is not None and (by_domain.grade, by_domain.members) == ("A", 1)


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"numberofemployees": "lots"}, "numberofemployees: not a number ('lots')"),
        ({"numberofemployees": "NaN"}, "numberofemployees: not a number ('NaN')"),
        ({"numberofemployees": "inf"}, "numberofemployees: not a number ('inf')"),
        ({"numberofemployees": "1e400"}, "numberofemployees: not a number ('1e400')"),
        (
            {"numberofemployees": "-5"},
            "numberofemployees: not a plausible number ('-5': expected 0 to 10,000,000)",
        ),
        ({"annualrevenue": "1e400"}, "annualrevenue: not a number ('1e400')"),
        ({"annualrevenue": "-Infinity"}, "annualrevenue: not a number ('-Infinity')"),
        (
            {"annualrevenue": "1e308"},
            "annualrevenue: not a plausible number ('1e308': expected 0 to 1,000,000,000,000,000)",
        ),
    ],
)
def test_company_numbers_that_cannot_be_a_company_s_are_input_errors(
    props: dict[str, str], message: str
) -> None:
    """What the sandbox (and HubSpot) refuse on write, a proxy or an import may still send."""
    with pytest.raises(InputError) as err:
        _company_from("9001", props)
    assert str(err.value) == message


@pytest.mark.parametrize("views", ["inf", "1e400", "NaN"])
def test_a_page_view_roll_up_that_is_no_number_is_an_input_error(views: str) -> None:
    """The same parse on contacts (roll-up mode): `int(float("inf"))` raised OverflowError."""
    props = {"hs_analytics_num_page_views": views, "hs_analytics_last_visit_timestamp": "0"}
    with pytest.raises(InputError) as err:
        _rollup_events("301", props)
    assert str(err.value) == f"hs_analytics_num_page_views: not a number ({views!r})"


def test_plausible_company_numbers_are_read() -> None:
    company, _ = _company_from(
        "9001", {"numberofemployees": "10000000", "annualrevenue": "1.2e8", "domain": ""}
    )
    assert (company.employee_count, company.annual_revenue_usd, company.domain) == (
        10_000_000,
        120_000_000.0,
        None,
    )


def test_marketo_company_numbers_that_cannot_be_read_are_blank_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Marketo's companies.json answer, parsed as JSON: 1e400 is inf, NaN is nan."""
    records = json.loads(
        '[{"externalCompanyId": "C1", "numberOfEmployees": 100000000000000000000, '
        '"annualRevenue": 1e400, "website": "https://www.Acme-Analytics.com/about"}, '
        '{"externalCompanyId": "C2", "numberOfEmployees": "850", "annualRevenue": NaN, '
        '"website": "one.com, two.com"}]'
    )
    assert [_company(r) for r in records] == [
        CrmCompany("C1", domain="acme-analytics.com"),
        CrmCompany("C2", employee_count=850),
    ]
    assert [r.getMessage() for r in caplog.records] == [
        "marketo company C1: numberOfEmployees: not a plausible number "
        "(100000000000000000000: expected 0 to 10,000,000): read as blank",
        "marketo company C1: annualRevenue: not a number (inf): read as blank",
        "marketo company C2: website 'one.com, two.com' is not a domain: read as none",
        "marketo company C2: annualRevenue: not a number (nan): read as blank",
    ]


# -- 2. domains as people write them --------------------------------------------------------
@pytest.mark.parametrize(
    "written",
    [
        "acme-analytics.com.",
        "ACME-ANALYTICS.COM",
        "www.acme-analytics.com",
        "https://acme-analytics.com/about",
        "info@acme-analytics.com",
    ],
)
def test_a_company_domain_written_any_way_is_stored_registrable_and_keeps_its_grade(
    tmp_path: Path, written: str
) -> None:
    with harness(tmp_path) as h:
        set_company(h, ACME, domain=written)
        first = h.pipeline.sync()
        assert (first.status, first.dead_letters) == ("ok", 0)
        assert stored_company(h, ACME) == (
            "acme-analytics.com",
            "Acme Analytics",
            "computer software",
            850,
            120_000_000.0,
        )
        # on the target-account list (+30): grade A, as with the plain domain
        assert grades(h) == CLEAN_COMPANIES
        assert company_writes(h)[ACME]["leadscore_account_reasons"] == ACME_REASONS
        acme = h.store.get_account(CRM, "acme-analytics.com")
        assert acme is not None and (acme.account_id, acme.domain, acme.fit_points) == (
            f"company:{ACME}",
            "acme-analytics.com",
            80.0,
        )
        h.sb.clear_log()
        h.clock[0] = NOW + timedelta(minutes=15)
        again = h.pipeline.sync()
        assert (again.written, h.writes()) == (0, [])  # nothing rewritten


def _idn_portal(domain: str, email: str) -> dict[str, Any]:
    data = _portal()
    data["contacts"].append(
        {
            "id": "306",
            "properties": {
                "email": email,
                "firstname": "Anna",
                "lastname": "Weber",
                "jobtitle": "Marketing Manager",
                "lifecyclestage": "lead",
                "createdate": "2026-09-01T00:00:00Z",
                "lastmodifieddate": "2026-10-30T00:00:00Z",
            },
        }
    )
    data["companies"].append({"id": BUECHER, "properties": {"name": "Bücher", "domain": domain}})
    data["associations"].append({"contact": "306", "company": BUECHER, "primary": True})
    return data


@pytest.mark.parametrize(
    ("domain", "email"),
    [("bücher.de", "anna@xn--bcher-kva.de"), ("xn--bcher-kva.de", "anna@bücher.de")],
)
def test_an_idn_company_domain_meets_its_punycode_contacts_and_firmographics(
    tmp_path: Path, domain: str, email: str
) -> None:
    with harness(tmp_path, _idn_portal(domain, email)) as h:
        summary = h.pipeline.sync()
        assert (summary.status, summary.dead_letters) == ("ok", 0)
        assert parse_email(email).domain == "xn--bcher-kva.de"
        assert stored_company(h, BUECHER) == ("xn--bcher-kva.de", "Bücher", None, None, None)
        buecher = h.store.account_score(CRM, f"company:{BUECHER}")
        assert buecher is not None
        # the firmographics file's bücher.de filled the record's blanks
        assert [r.text for r in buecher.reasons if r.kind == "fit"] == [
            "+20 company size 51-5,000 (300 employees)",
            "+15 target industry (industry computer software)",
            "+10 revenue of $10M or more (revenue $30M)",
            "+5 target country (country US)",
            "account grade B: company size 51-5,000, target industry",
        ]
        assert (buecher.grade, buecher.domain, buecher.members) == ("B", "xn--bcher-kva.de", 1)


@pytest.mark.parametrize("written", ["one.com, two.com", "two words.com", "acme\x00.com"])
def test_a_company_domain_that_is_no_domain_is_read_as_none(
    tmp_path: Path, written: str, caplog: pytest.LogCaptureFixture
) -> None:
    with harness(tmp_path) as h:
        set_company(h, STEALTH, domain=written)
        summary = h.pipeline.sync()
        assert (summary.status, summary.dead_letters) == ("ok", 0)
        assert stored_company(h, STEALTH) == (None, "Stealth Startup", None, None, None)
        stealth = h.store.account_score(CRM, f"company:{STEALTH}")
        assert stealth is not None and (stealth.domain, stealth.grade) == (None, "D")
        assert grades(h) == CLEAN_COMPANIES
        assert f"hubspot company {STEALTH}: domain {written!r} is not a domain: read as none" in [
            r.getMessage() for r in caplog.records
        ]
        accounts = [r[0] for r in h.store.db.execute("SELECT account_id FROM account_scores")]
        assert not [a for a in accounts if "one.com" in a or "words" in a or "\x00" in a]


def test_company_domain_is_the_e_mail_path_s_registrable_domain() -> None:
    cases = {
        "acme-analytics.com.": "acme-analytics.com",
        "HTTP://WWW.Acme-Analytics.com:8080/x?y=1": "acme-analytics.com",
        "acme-analytics.com/about": "acme-analytics.com",
        "info@emaildom.com": "emaildom.com",
        "mail.eu.acme.co.uk": "acme.co.uk",
        "Bücher.de": "xn--bcher-kva.de",
        "one.com, two.com": None,
        "two words.com": None,
        "acme\x00.com": None,
        "co.uk": None,
        "acme.notatld": None,
        "": None,
    }
    assert {text: company_domain(text) for text in cases} == cases
    for text, want in cases.items():  # what an address at that host reads as
        if want is not None and "@" not in text and "/" not in text:
            assert parse_email(f"x@{text.rstrip('.')}").domain == want


# -- 3./4. input dead letters count, fail the run when asked, and resolve once fixed ---------
def test_input_dead_letters_fail_the_run_when_asked_and_resolve_once_the_company_is_fixed(
    tmp_path: Path,
) -> None:
    with harness(tmp_path) as h:
        h.pipeline.options.fail_on_dead_letters = True
        set_company(h, ACME, numberofemployees="1e20")
        bad = h.pipeline.sync()
        assert (bad.status, bad.exit_code, bad.dead_lettered, bad.bad_records) == (
            "partial",
            1,
            0,
            1,
        )
        [letter] = h.store.open_dead_letters(CRM, "input")
        assert letter.contact_id == f"company:{ACME}"
        run = h.store.last_runs(CRM, 1)[0]
        assert (run.status, run.errors) == ("partial", 1)

        # fixed in the CRM: read cleanly, its dead letter resolved, Acme as in a clean run
        set_company(h, ACME, numberofemployees="850")
        h.clock[0] = NOW + timedelta(minutes=15)
        fixed = h.pipeline.sync()
        assert (fixed.status, fixed.exit_code, fixed.bad_records) == ("ok", 0, 0)
        assert ", dead-lettered 0, " in fixed.line()
        assert open_letters(h) == []
        row = h.store.db.execute(
            "SELECT kind, contact_id, attempts, resolved_at FROM dead_letters"
        ).fetchall()
        assert [tuple(r) for r in row] == [
            ("input", f"company:{ACME}", 1, "2026-11-01T12:15:00.000000+00:00")
        ]
        assert stored_company(h, ACME) == (
            "acme-analytics.com",
            "Acme Analytics",
            "computer software",
            850,
            120_000_000.0,
        )
        assert grades(h) == CLEAN_COMPANIES


def _bad_deals_for(sb: HubSpotSandbox, contact_id: str) -> Callable[[], None]:
    """The contacts search answers `num_associated_deals: "many"` for the contact (as a broken
    proxy or import would); returns the function that stops it."""
    real = sb.app.route

    def route(req: Request) -> Response:
        resp = real(req)
        if req.path.endswith("/contacts/search") and isinstance(resp.body, dict):
            for rec in resp.body.get("results") or []:
                if rec.get("id") == contact_id:
                    rec["properties"]["num_associated_deals"] = "many"
        return resp

    sb.app.route = route  # type: ignore[method-assign]

    def stop() -> None:
        sb.app.route = real  # type: ignore[method-assign]

    return stop


def test_a_contact_s_input_dead_letter_resolves_once_it_reads_cleanly(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        stop = _bad_deals_for(h.sb, "304")
        first = h.pipeline.sync()
        assert (first.status, first.bad_records) == ("ok", 1)
        assert ", dead-lettered 1 (1 bad input), " in first.line()
        assert open_letters(h) == [
            ("input", "304", "contact 304: num_associated_deals: not a number ('many')", 1)
        ]
        stop()
        sdk(h).crm.contacts.basic_api.update("304", ContactInput(properties={"jobtitle": "CMO"}))
        h.clock[0] = NOW + timedelta(minutes=15)
        fixed = h.pipeline.sync()
        assert (fixed.status, fixed.bad_records, open_letters(h)) == ("ok", 0, [])
        assert h.store.get_score(CRM, "304") is not None


# -- 5. a company's dead letter shows the company ------------------------------------------
def test_dead_letters_show_a_company_as_a_company_not_the_contact_of_the_same_id(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state.db"
    with StateStore.open(state) as store:
        store.upsert_contacts(CRM, [_contact("9050", "innocent@goodcorp.com")], at=NOW)
        store.upsert_crm_companies(CRM, [CrmCompany("9050", name="Bad Corp")], NOW)
        store.add_dead_letter(
            CRM, "input", "company:9050", {}, "company 9050: numberofemployees: not a number "
            "('lots')", NOW,
        )  # fmt: skip
        store.add_dead_letter(
            CRM, "input", "9050", {}, "contact 9050: createdate: not an ISO-8601", NOW
        )
        store.add_dead_letter(CRM, "company_write", "9050", {}, "company 9050: refused", NOW)
    table = CliRunner().invoke(cli, ["--state", str(state), "dead-letters"], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    rows = [line for line in table.output.splitlines() if "9050" in line]
    assert len(rows) == 3
    assert "company 9050 (Bad Corp)" in rows[0] and "innocent" not in rows[0]
    assert "innocent@goodcorp.com (9050)" in rows[1]
    assert "company 9050 (Bad Corp)" in rows[2] and "innocent" not in rows[2]
    doc = json.loads(
        CliRunner().invoke(cli, ["--state", str(state), "dead-letters", "--json"]).output
    )
    assert [
        (d["kind"], d["contact_id"], d["contact"], d["company_id"], d["company"])
        for d in doc["dead_letters"]
    ] == [
        ("input", None, None, "9050", "Bad Corp"),
        ("input", "9050", "innocent@goodcorp.com", None, None),
        ("company_write", None, None, "9050", "Bad Corp"),
    ]


def _contact(cid: str, email: str) -> Any:
    from connector.types import Contact

    return Contact(id=cid, email=email)


def test_dead_letters_name_an_event_s_contact_and_an_unread_company_s_name(
    tmp_path: Path,
) -> None:
    """An engagement record that could not be read names the contact its payload names (a
    HubSpot event's objectId, an e-mail event's recipient, a Marketo activity's leadId), not
    the event id as a contact; a company never stored names itself from the record the CRM
    sent (found reading `dead-letters` after a future-dated event and a -5 revenue)."""
    state = tmp_path / "state.db"
    with StateStore.open(state) as store:
        store.upsert_contacts(CRM, [_contact("161", "ed@numericdomain.io")], at=NOW)
        store.add_dead_letter(
            CRM, "input", "5da31974-399a", {"objectId": "161", "eventType": "e_visited_page"},
            "event 5da31974-399a: occurred_at is more than 1 day(s) in the future", NOW,
        )  # fmt: skip
        store.add_dead_letter(
            CRM, "input", "77", {"recipient": "pat@elsewhere.com", "type": "OPEN"},
            "e-mail event 77: created: not a timestamp", NOW,
        )  # fmt: skip
        store.add_dead_letter(
            CRM, "input", "company:9015",
            {"id": "9015", "properties": {"name": "Negative Revenue LLC", "annualrevenue": "-5"}},
            "company 9015: annualrevenue: not a plausible number", NOW,
        )  # fmt: skip
    table = CliRunner().invoke(cli, ["--state", str(state), "dead-letters"], env={"COLUMNS": "220"})
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert any("event of ed@numericdomain.io (161)" in line for line in lines), table.output
    assert any("event of pat@elsewhere.com" in line for line in lines), table.output
    assert any("company 9015 (Negative Revenue LLC)" in line for line in lines), table.output
    doc = json.loads(
        CliRunner().invoke(cli, ["--state", str(state), "dead-letters", "--json"]).output
    )
    assert [
        (d["contact_id"], d["contact"], d["event_id"], d["company_id"], d["company"])
        for d in doc["dead_letters"]
    ] == [
        ("161", "ed@numericdomain.io", "5da31974-399a", None, None),
        (None, "pat@elsewhere.com", "77", None, None),
        (None, None, None, "9015", "Negative Revenue LLC"),
    ]


def test_a_future_dated_event_s_dead_letter_names_its_contact(tmp_path: Path) -> None:
    """The dead letter of an event dated a year ahead (kept under the event's id, its payload
    naming the contact as `contact_id`) shows the contact, in the table and in --json."""
    with harness(tmp_path) as h:
        url = {"hs_url": "https://www.leadscore-demo.com/pricing"}
        h.sb.add_event("302", "e_visited_page", url, NOW + timedelta(days=400))
        summary = h.pipeline.sync()
        assert summary.bad_records == 1
        email = h.store.get_contact(CRM, "302")
        assert email is not None and email.email
        state = str(h.store.path)
        doc = json.loads(
            CliRunner().invoke(cli, ["--state", state, "dead-letters", "--json"]).output
        )
        [letter] = doc["dead_letters"]
        assert (letter["contact_id"], letter["contact"]) == ("302", email.email)
        assert letter["event_id"] and letter["event_id"] != "302"
        table = CliRunner().invoke(cli, ["--state", state, "dead-letters"], env={"COLUMNS": "200"})
        assert f"event of {email.email} (302)" in table.output, table.output


def _move_event(h: Harness, ev: WebEvent, when: datetime) -> None:
    """The event `ev` dated `when` in the sandbox (as an edit in the CRM would)."""
    portal = h.sb.portal
    with portal.lock:
        for bucket in (
            portal.events,
            portal.events_by_contact[ev.object_id],
            portal.events_by_type[ev.event_type],
        ):
            bucket.remove(ev)
        ev.occurred_ms = int(when.timestamp() * 1000)
        portal._insert_event(ev)


def test_a_dismissed_future_dated_event_fails_no_sync_until_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An event dated a year ahead is read again by every sync (no cursor passes now). With
    LEADSCORE_FAIL_ON_DEAD_LETTERS it fails the sync that first reads it; read again the same
    it is no news (its dead letter counts the attempt, open; before, it failed every sync).
    Dismissed (`leadscore dead-letters dismiss`), the next sync reads it again and the dead
    letter stays dismissed, untouched, counted nowhere (summary, run, status, the listing).
    The event moved in the CRM (another payload, still in the future) reopens it and fails
    the sync again."""
    from connector.ops import analysis
    from connector.ops.status import build_status

    dismissed_at = NOW + timedelta(minutes=20)
    monkeypatch.setattr(analysis, "_now", lambda: dismissed_at)
    with harness(tmp_path) as h:
        h.pipeline.options.fail_on_dead_letters = True
        url = {"hs_url": "https://www.leadscore-demo.com/pricing"}
        ev = h.sb.add_event("302", "e_visited_page", url, NOW + timedelta(days=400))
        first = h.pipeline.sync()
        assert (first.status, first.exit_code, first.bad_records) == ("partial", 1, 1)
        h.clock[0] = NOW + timedelta(minutes=15)
        again = h.pipeline.sync()  # read again, the same: no news
        assert (again.status, again.exit_code, again.bad_records) == ("ok", 0, 0)
        [letter] = h.store.open_dead_letters(CRM)
        assert (letter.contact_id, letter.attempts) == (f"event:{ev.id}", 2)
        contact = h.store.get_contact(CRM, "302")
        assert contact is not None
        state = str(h.store.path)
        res = CliRunner().invoke(cli, ["--state", state, "dead-letters", "dismiss", str(letter.id)])
        assert (res.exit_code, res.stdout, res.stderr) == (
            0,
            f"dismissed dead letter {letter.id} (event of {contact.email} (302))\n",
            "",
        )
        row = (
            "SELECT id, kind, contact_id, payload, reason, attempts, first_seen_at, "
            "last_tried_at, resolved_at, dismissed_at FROM dead_letters"
        )
        payload = (
            f'{{"source":"hubspot_events","id":"{ev.id}","contact_id":"302","type":"page_view",'
            '"occurred_at":"2027-12-06T12:00:00.000Z"}'
        )
        reason = (
            f"event {ev.id}: occurred_at 2027-12-06T12:00:00.000Z is more than 1 day(s) in "
            "the future"
        )
        dismissed = (letter.id, "input", f"event:{ev.id}", payload, reason, 2,
                     "2026-11-01T12:00:00.000000+00:00", "2026-11-01T12:15:00.000000+00:00",
                     None, "2026-11-01T12:20:00.000000+00:00")  # fmt: skip
        assert h.store.db.execute(row).fetchall() == [dismissed]

        h.clock[0] = NOW + timedelta(minutes=30)
        h.sb.clear_log()
        quiet = h.pipeline.sync()
        assert (quiet.status, quiet.exit_code, quiet.bad_records, quiet.dead_letters) == (
            "ok",
            0,
            0,
            0,
        )
        assert ", dead-lettered 0, " in quiet.line()
        assert any("/events/v3/events" in r.path for r in h.sb.requests)  # it was read again
        assert h.store.db.execute(row).fetchall() == [dismissed]
        run = h.store.last_runs(CRM, 1)[0]
        assert (run.status, run.errors, run.counts["bad_records"]) == ("ok", 0, 0)
        st = build_status(h.store, CRM, h.clock[0], load_model())
        assert (st.dead_letters, st.open_dead_letters) == ({}, 0)
        listing = CliRunner().invoke(cli, ["--state", state, "dead-letters"])
        assert listing.stdout.splitlines() == [
            "No open dead letters.",
            "1 dismissed dead letter(s) not shown (`--all` lists them).",
        ]

        # moved a day on in the CRM, still a year ahead: another payload, reopened
        _move_event(h, ev, NOW + timedelta(days=401))
        h.clock[0] = NOW + timedelta(minutes=45)
        moved = h.pipeline.sync()
        assert (moved.status, moved.exit_code, moved.bad_records) == ("partial", 1, 1)
        assert h.store.db.execute(row).fetchall() == [
            (letter.id, "input", f"event:{ev.id}", payload.replace("12-06", "12-07"),
             reason.replace("12-06", "12-07"), 3, "2026-11-01T12:00:00.000000+00:00",
             "2026-11-01T12:45:00.000000+00:00", None, None)
        ]  # fmt: skip
        assert open_letters(h) == [("input", f"event:{ev.id}", reason.replace("12-06", "12-07"), 3)]


@pytest.mark.parametrize(
    ("industry", "stored"),
    [
        ("COMPUTER_SOFTWARE", "computer software"),  # HubSpot's dropdown code
        ("INFORMATION_TECHNOLOGY_AND_SERVICES", "information technology and services"),
        ("HOSPITAL_HEALTH_CARE", "hospital & health care"),  # its label, as the files name it
        ("RETAIL", "retail"),
    ],
)
def test_hubspot_s_industry_codes_read_as_the_words_of_their_label(
    tmp_path: Path, industry: str, stored: str
) -> None:
    """Real HubSpot answers `industry` with its dropdown's internal values; the model's
    industry lists name the industries in words: `COMPUTER_SOFTWARE` is read as `computer
    software` and earns the target-industry points (before, it never matched). The sandbox's
    `industry` is that dropdown too, so free text cannot be written (see
    test_industry_words_reads_a_code_as_its_label_and_text_as_it_is)."""
    with harness(tmp_path) as h:
        set_company(h, NORTHWIND, industry=industry)
        assert h.pipeline.sync().status == "ok"
        row = stored_company(h, NORTHWIND)
        assert row is not None and row[2] == stored
        account = h.store.account_score(CRM, f"company:{NORTHWIND}")
        assert account is not None
        target = [r for r in account.reasons if r.rule == "account_industry"]
        assert bool(target) == (
            stored.lower() in ("computer software", "information technology and services")
        )


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("HOSPITAL_HEALTH_CARE", "hospital & health care"),  # the label, not "hospital health"
        ("HEALTH_WELLNESS_AND_FITNESS", "health, wellness and fitness"),
        ("MY_OWN_OPTION", "my own option"),  # a code of no HubSpot option: its words
        ("computer software", "computer software"),  # text (Marketo, a stored row): as it is
        ("Retail", "Retail"),
        (None, None),
    ],
)
def test_industry_words_reads_a_code_as_its_label_and_text_as_it_is(
    raw: str | None, words: str | None
) -> None:
    """HubSpot's code → its label in lower case, the words fixtures/firmographics.csv and the
    enrichers use (`hospital & health care`: before, the underscores became spaces and the
    `&` was lost)."""
    assert industry_words(raw) == words


def test_dead_letters_show_crm_text_as_plain_text(tmp_path: Path) -> None:
    """A company name from the record that failed to read, and the reason quoting its value,
    are shown as text: `[/]` is no markup (the command once ended in a markup error with no
    output) and a right-to-left override does not reach the terminal."""
    state = tmp_path / "state.db"
    with StateStore.open(state) as store:
        store.add_dead_letter(
            CRM, "input", "company:9016",
            {"id": "9016", "properties": {"name": "Evil [/] Corp\u202e", "annualrevenue": "[b]"}},
            "company 9016: annualrevenue: not a number ('[b]')", NOW,
        )  # fmt: skip
    out = CliRunner().invoke(cli, ["--state", str(state), "dead-letters"], env={"COLUMNS": "220"})
    assert out.exit_code == 0, out.output
    assert "company 9016 (Evil [/] Corp)" in out.output
    assert "not a number ('[b]')" in out.output
    assert "\u202e" not in out.output


def test_an_industry_code_stored_before_is_read_as_its_words_when_scored(tmp_path: Path) -> None:
    """A company stored by an earlier version with HubSpot's code (`COMPUTER_SOFTWARE`) is
    scored as `computer software` (a rescore reads no company again)."""
    with harness(tmp_path) as h:
        assert h.pipeline.sync().status == "ok"
        h.clock[0] = NOW + timedelta(hours=1)
        assert h.pipeline.sync().status == "ok"  # the companies our writes touched, read back
        account = f"company:{NORTHWIND}"
        h.store.db.execute(
            "UPDATE crm_companies SET industry = 'COMPUTER_SOFTWARE' WHERE crm = ? AND id = ?",
            (CRM, NORTHWIND),
        )
        h.store.add_accounts_due(CRM, [account], "test: scored again")
        h.clock[0] = NOW + timedelta(hours=3)
        synced = h.pipeline.sync()
        assert synced.status == "ok" and synced.accounts_scored == 1  # nothing read again
        assert stored_company(h, NORTHWIND)[2] == "COMPUTER_SOFTWARE"  # type: ignore[index]
        stored = h.store.account_score(CRM, account)
        assert stored is not None
        assert [r.rule for r in stored.reasons if r.rule == "account_industry"] == [
            "account_industry"
        ]
