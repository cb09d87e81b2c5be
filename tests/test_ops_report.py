"""`leadscore report`: exact conversion numbers on a state DB with known outcomes, in the data,
in the terminal and in the self-contained HTML page."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import cli
from connector.ops.report import Funnel, Report, band_of, build_report, render_html
from connector.state.store import StateStore
from connector.types import Contact, Event, LifecycleDecision, ScoreResult

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
CRM = "hubspot"
EARLY = datetime(2026, 9, 1, tzinfo=UTC)
LATE = datetime(2026, 10, 15, tzinfo=UTC)
XSS = "<script>alert(1)</script> & co"


def result(
    cid: str, score: float, grade: str, mql: str | None, version: str, days_ago: float
) -> ScoreResult:
    return ScoreResult(
        contact_id=cid,
        score=score,
        engagement_points=score,
        fit_points=50,
        grade=grade,
        lifecycle=LifecycleDecision(None, None, mql=mql is not None, mql_reason=mql),
        profile_mismatch=False,
        model_version=version,
        model_fingerprint=f"fp-{version}",
        scored_at=NOW - timedelta(days=days_ago),
        next_change_at=None,
    )


def ev(cid: str, n: int, type_: str, days_ago: float, **attrs: object) -> Event:
    return Event("web", f"{cid}-{n}", cid, type_, NOW - timedelta(days=days_ago), attrs)


def build_fixture(store: StateStore) -> None:
    """Ten live contacts with known stages, hand-off scores and programs (see the test)."""
    stages = {
        "1": "customer",
        "2": "salesqualifiedlead",
        "3": "marketingqualifiedlead",
        "4": "marketingqualifiedlead",
        "5": "lead",  # an MQL that sales recycled: mql_at stays
        "6": "lead",
        "7": "lead",
        "8": "subscriber",
        "9": "evangelist",
        "10": "other",
        "11": "customer",  # archived below: not in the report
    }
    contacts = [
        Contact(
            id=cid,
            email=f"c{cid}@acme.example",
            lifecycle_stage=stage,
            created_at=EARLY if int(cid) <= 5 else LATE,
            mql_at=NOW - timedelta(days=20) if cid == "5" else None,
            properties={"hs_analytics_source": "ORGANIC_SEARCH"} if cid == "5" else {},
        )
        for cid, stage in stages.items()
    ]
    store.upsert_contacts(CRM, contacts, at=NOW)
    store.mark_archived(CRM, "11", NOW)
    # contact 1: B 60 (no MQL), then A 110 MQL with v1 (the hand-off), now A 40 with v2
    store.save_scores(CRM, [result("1", 60, "B", None, "v1", 50)])
    store.save_scores(CRM, [result("1", 110, "A", "threshold", "v1", 40)])
    store.save_scores(CRM, [result("1", 40, "A", None, "v2", 1)])
    store.save_scores(
        CRM,
        [
            result("2", 105, "A", "threshold", "v1", 30),
            result("3", 120, "A", "threshold", "v1", 30),
            result("4", 100, "B", "hand-raiser: Contact Us", "v2", 10),
            result("5", 130, "B", "threshold", "v1", 30),
            result("6", 30, "C", None, "v2", 10),
            result("7", -10, "D", None, "v2", 10),
            result("9", 100, "D", "hand-raiser: Request a demo", "v2", 10),
            result("10", 55, "C", None, "v2", 10),
            result("11", 150, "A", "threshold", "v1", 30),
        ],
    )
    store.insert_events(
        CRM,
        [
            ev("1", 1, "form_submit", 30, form="Request a demo"),
            ev("1", 2, "webinar_attended", 20, name="Scoring that sales trusts"),
            ev("2", 1, "email_open", 40, campaign=2003),
            ev("2", 2, "form_submit", 10, form="Contact Us"),
            ev("3", 1, "webinar_attended", 15, name="Scoring that sales trusts"),
            ev("4", 1, "email_click", 12, campaign="2003"),
            ev("6", 1, "form_submit", 5, form="Request a demo"),
            ev("7", 1, "form_submit", 5, form=XSS),
            ev("8", 1, "page_view", 5, url="https://acme.example/blog"),
        ],
    )


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    s = StateStore.open(tmp_path / "state.db")
    build_fixture(s)
    return s


def counts(f: Funnel) -> tuple[int, int, int, int]:
    return (f.contacts, f.mqls, f.sqls, f.customers)


def by_key(rows: list[Funnel]) -> dict[str, tuple[int, int, int, int]]:
    return {f.key: counts(f) for f in rows}


def test_conversion_numbers_by_grade_band_program_and_model(store: StateStore) -> None:
    r = build_report(store, CRM, NOW)
    assert counts(r.total) == (10, 6, 3, 2)
    assert (r.total.mql_to_sql, r.total.sql_to_customer) == (0.5, 2 / 3)
    assert r.total.mql_to_customer == 2 / 6
    # grade at hand-off: contact 1 counts as A (its MQL score), not by its current score
    assert by_key(r.by_grade) == {
        "A": (3, 3, 2, 1),
        "B": (2, 2, 0, 0),
        "C": (2, 0, 0, 0),
        "D": (2, 1, 1, 1),
        "unscored": (1, 0, 0, 0),
    }
    assert by_key(r.by_band) == {
        "<25": (1, 0, 0, 0),
        "25–49": (1, 0, 0, 0),
        "50–99": (1, 0, 0, 0),
        "100+": (6, 6, 3, 2),
        "unscored": (1, 0, 0, 0),
    }
    assert [(f.key, counts(f)) for f in r.by_program] == [
        ("form: Request a demo", (2, 1, 1, 1)),
        ("e-mail campaign 2003", (1, 1, 0, 0)),
        ("form: Contact Us", (1, 1, 1, 0)),  # the form wins over the earlier e-mail
        ("source: ORGANIC_SEARCH", (1, 1, 0, 0)),
        ("webinar: Scoring that sales trusts", (1, 1, 0, 0)),
        (f"form: {XSS}", (1, 0, 0, 0)),
        ("(no program)", (3, 1, 1, 1)),
    ]
    assert by_key(r.by_model) == {"v1": (4, 4, 2, 1), "v2": (5, 2, 1, 1)}
    assert r.models_in_scores == [("v2", 6), ("v1", 4)]  # includes the archived 11's v1
    assert r.unscored == 1
    grade_a = r.by_grade[0]
    assert (grade_a.mql_to_sql, grade_a.sql_to_customer) == (2 / 3, 0.5)
    assert r.by_grade[1].sql_to_customer is None  # no SQLs: nothing to divide by


def test_since_keeps_contacts_created_on_or_after_the_date(store: StateStore) -> None:
    r = build_report(store, CRM, NOW, since=datetime(2026, 10, 15, tzinfo=UTC))
    assert counts(r.total) == (5, 1, 1, 1)
    assert by_key(r.by_grade)["D"] == (2, 1, 1, 1)
    assert by_key(r.by_grade)["A"] == (0, 0, 0, 0)


def test_score_bands_edges() -> None:
    assert [band_of(s) for s in (-40, 24.9, 25, 49.99, 50, 99.5, 100, 1000)] == [
        "<25",
        "<25",
        "25–49",
        "25–49",
        "50–99",
        "50–99",
        "100+",
        "100+",
    ]


def row(key: str, *cells: str, sales: str = "0") -> str:
    """An HTML table row: contacts, MQL, SQL, customers, then the rates (sales-sourced: 0)."""
    nums = "".join(f"<td>{c}</td>" for c in (*cells[:4], sales))
    rates = "".join(f"<td class='rate'>{c}</td>" for c in cells[4:])
    return f"<tr><td>{key}</td>{nums}{rates}</tr>"


def test_html_shows_the_exact_numbers_and_is_self_contained(store: StateStore) -> None:
    page = render_html(
        build_report(store, CRM, NOW),
        extra_sections=['<section id="calibration"><h2>Calibration</h2></section>'],
    )
    assert page.startswith("<!DOCTYPE html>")
    # headline cards
    for card in (
        '<div class="n">10</div><div class="l">contacts</div>',
        '<div class="n">6</div><div class="l">MQLs</div>',
        '<div class="n">50%</div><div class="l">MQL → SQL</div><div class="s">3 of 6 MQLs',
        '<div class="n">67%</div><div class="l">SQL → customer</div><div class="s">2 of 3 SQLs',
        '<div class="n">33%</div><div class="l">MQL → customer</div>',
    ):
        assert card in page
    assert row("A", "3", "3", "2", "1", "67%", "50%", "33%") in page
    assert row("B", "2", "2", "0", "0", "0%", "—", "0%") in page
    assert row("D", "2", "1", "1", "1", "100%", "100%", "100%") in page
    assert row("100+", "6", "6", "3", "2", "50%", "67%", "33%") in page
    assert row("v1", "4", "4", "2", "1", "50%", "50%", "25%") in page
    assert row("form: Request a demo", "2", "1", "1", "1", "100%", "100%", "100%") in page
    # charts: one bar per (group, series) with its counts in the tooltip
    assert page.count("<svg") == 3
    assert "<title>A: MQL → SQL 2 of 3</title>" in page
    assert "<title>100+: MQL → customer 2 of 6</title>" in page
    # model version, generated-at, the extra section before the footnote
    assert "v2 (6 contacts), v1 (4 contacts)" in page
    assert "generated 2026-11-01 12:00 UTC" in page
    assert page.index('<section id="calibration">') < page.index("<footer>")
    # data is escaped; nothing is fetched or run
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
    assert "<script" not in page
    for marker in ("src=", "href=", "<link", "@import", "url(", "<iframe", "javascript:"):
        assert marker not in page
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) == {"http://www.w3.org/2000/svg"}


def test_empty_db_renders_dashes_not_errors(tmp_path: Path) -> None:
    with StateStore.open(tmp_path / "empty.db") as s:
        r = build_report(s, CRM, NOW)
    assert counts(r.total) == (0, 0, 0, 0)
    page = render_html(r)
    assert '<div class="n">—</div><div class="l">MQL → SQL</div>' in page
    assert isinstance(r, Report)


def test_cli_prints_tables_writes_html_and_never_a_secret(
    store: StateStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.close()
    secret = "pat-na1-11111111-2222-3333-4444-555555555555"
    monkeypatch.setenv("LEADSCORE_HUBSPOT_TOKEN", secret)
    html = tmp_path / "out" / "report.html"
    html.parent.mkdir()
    res = CliRunner().invoke(
        cli, ["--state", str(tmp_path / "state.db"), "report", "--html", str(html)]
    )
    assert res.exit_code == 0, res.output
    assert "10 contact(s) · 6 MQL · 3 SQL · 2 customer(s) · MQL→SQL 50%" in res.output
    assert "By grade at hand-off" in res.output
    page = html.read_text(encoding="utf-8")
    assert row("A", "3", "3", "2", "1", "67%", "50%", "33%") in page
    assert secret not in page and secret not in res.output
    assert "state.db" not in page  # no paths or settings in what goes in front of sales


def test_cli_since_and_bad_input(store: StateStore, tmp_path: Path) -> None:
    store.close()
    state = str(tmp_path / "state.db")
    res = CliRunner().invoke(cli, ["--state", state, "report", "--since", "2026-10-15"])
    assert res.exit_code == 0, res.output
    assert "contacts created since 2026-10-15" in res.output
    assert "5 contact(s) · 1 MQL" in res.output
    bad = CliRunner().invoke(cli, ["--state", state, "report", "--since", "last tuesday"])
    assert bad.exit_code == 2
    assert "--since" in bad.output
    missing = CliRunner().invoke(cli, ["--state", str(tmp_path / "nope.db"), "report"])
    assert missing.exit_code == 1
    assert missing.output.strip().startswith("error: no state DB at")
    assert len(missing.output.strip().splitlines()) == 1
    assert not (tmp_path / "nope.db").exists()


def test_sqls_that_never_were_mqls_are_sales_sourced_not_in_the_funnel(tmp_path: Path) -> None:
    """A contact sales created as an SQL did not convert from MQL: counting it as an MQL would
    inflate MQL -> SQL. Went through MQL: made MQL by us (`mql_at`), called MQL by the model
    (history), or dated MQL by HubSpot (the property its portals stamp)."""
    store = StateStore.open(tmp_path / "s.db")
    mql_date = {"hs_lifecyclestage_marketingqualifiedlead_date": "2026-08-01T00:00:00.000Z"}
    contacts = [
        Contact(id="sales-sql", email="a@x.example", lifecycle_stage="salesqualifiedlead"),
        Contact(id="sales-cust", email="b@x.example", lifecycle_stage="customer"),
        Contact(
            id="crm-mql", email="c@x.example", lifecycle_stage="opportunity", properties=mql_date
        ),
        Contact(id="model-mql", email="d@x.example", lifecycle_stage="salesqualifiedlead"),
        Contact(
            id="ours",
            email="e@x.example",
            lifecycle_stage="customer",
            mql_at=NOW - timedelta(days=40),
        ),
        Contact(id="lead", email="f@x.example", lifecycle_stage="lead"),
    ]
    store.upsert_contacts(CRM, contacts, at=NOW)
    store.save_scores(
        CRM,
        [
            result("sales-sql", 40, "C", None, "v1", 5),
            result("sales-cust", 70, "B", None, "v1", 5),
            result("model-mql", 110, "A", "threshold", "v1", 20),
            result("lead", 10, "C", None, "v1", 5),
        ],
    )
    # a customer sales brought in, whom the model calls an MQL only afterwards (a form):
    # no MQL evidence; and an SQL sales created that was never scored
    store.upsert_contacts(
        CRM,
        [
            Contact(id="late", email="g@x.example", lifecycle_stage="customer"),
            Contact(id="unscored", email="h@x.example", lifecycle_stage="salesqualifiedlead"),
        ],
        at=NOW,
    )
    late = result("late", 120, "A", "hand-raiser: Contact Us", "v1", 2)
    store.save_scores(
        CRM, [replace(late, lifecycle=replace(late.lifecycle, current_stage="customer"))]
    )
    assert [h["mql"] for h in store.score_history(CRM, "late")] == [1]
    r = build_report(store, CRM, NOW)
    t = r.total
    assert (t.contacts, t.mqls, t.sqls, t.customers, t.sales_sourced) == (8, 3, 3, 1, 4)
    assert by_key(r.by_band)["unscored"] == by_key(r.by_grade)["unscored"] == (3, 2, 2, 1)
    assert [f.sales_sourced for f in r.by_band if f.key == "unscored"] == [1]
    assert [f.sales_sourced for f in r.by_grade if f.key == "unscored"] == [1]
    assert (t.mql_to_sql, t.sql_to_customer) == (1.0, 1 / 3)
    grades = {f.key: (f.contacts, f.mqls, f.sales_sourced) for f in r.by_grade}
    assert grades["C"] == (2, 0, 1) and grades["B"] == (1, 0, 1) and grades["A"] == (2, 1, 1)
    page = render_html(r)
    assert '<div class="n">4</div><div class="l">sales-sourced</div>' in page
    assert row("C", "2", "0", "0", "0", "—", "—", "—", sales="1") in page
    store.close()


def test_report_terminal_shows_a_program_name_cleaned_and_shortened() -> None:
    """A program is CRM text (a form, webinar or campaign name): no control character reaches
    the terminal, its markup stays literal, and a 10 kB name takes a few lines, not hundreds."""
    from io import StringIO

    from rich.console import Console

    from connector.ops.report import _table

    out = StringIO()
    rows = [
        Funnel("form: Demo\x1b[2J\x00\r\nRequest [bold]x", 3, 2, 1),
        Funnel("webinar: " + "W" * 10_000, 1, 1),
    ]
    Console(file=out, width=120).print(_table("By program", "program", rows))
    assert [line.rstrip() for line in out.getvalue().splitlines()] == [
        "By program",
        "┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━┳━━━━━┳━━━━━┳━━━━━━━━━━━┳━━━━━━━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━━━┳━━━━━━━━━━━┓",
        "┃ program                         ┃ contacts ┃ MQL ┃ SQL ┃ customers ┃ sales-sourced ┃ MQL→SQL ┃ SQL→cust. ┃ MQL→cust. ┃",  # noqa: E501
        "┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━╇━━━━━╇━━━━━╇━━━━━━━━━━━╇━━━━━━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━━╇━━━━━━━━━━━┩",
        "│ form: Demo[2J  Request [bold]x  │        3 │   2 │   1 │         0 │             0 │     50% │        0% │        0% │",  # noqa: E501
        "│ webinar:                        │        1 │   1 │   0 │         0 │             0 │      0% │         — │        0% │",  # noqa: E501
        "│ WWWWWWWWWWWWWWWWWWWWWWWWWWWWWWW │          │     │     │           │               │         │           │           │",  # noqa: E501
        "│ WWWWWWWWWWWWWWWWWWWWWWWWWWWWWWW │          │     │     │           │               │         │           │           │",  # noqa: E501
        "│ WWWWWWWWWWWWWWWWWWWWWWWW…       │          │     │     │           │               │         │           │           │",  # noqa: E501
        "└─────────────────────────────────┴──────────┴─────┴─────┴───────────┴───────────────┴─────────┴───────────┴───────────┘",
    ]
