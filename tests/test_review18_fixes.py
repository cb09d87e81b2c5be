"""Defects a review of the eighteenth session's changes reproduced, each with its test: a
company name compared in Unicode, a chained Marketo merge recorded once, an account's "not an
MQA" and a verdict's reason that never contradict their own comparison, a Marketo lead
change's bad record kept as an event's."""

from __future__ import annotations

from pathlib import Path

from connector.model.loader import load_model
from connector.ops.accounts import find_account
from connector.sandbox.marketo import MarketoSandbox
from connector.state.store import StateStore

from .test_marketo_e2e import ANCHOR, CRM, DEMO, pipeline_for

_ROW = ("hubspot", "", "", None, "", 120.0, 100.0, 20.0, "A", 1, "x", 3, "[]", "[]", "v", "fp",
        "2026-11-01T12:00:00.000000+00:00", None)  # fmt: skip


def test_a_company_name_is_found_in_any_case_and_spacing_unicode_too() -> None:
    """`explain --account NAME` compared names with SQLite's `lower` (ASCII only) and as
    stored (spacing): "ÉCOLE Polytechnique" and "Acme  Analytics" were not found even typed
    exactly as stored."""
    store = StateStore.memory()
    names = {"9001": "ÉCOLE Polytechnique", "9002": "Acme  Analytics", "9003": "Plain Name"}
    for cid, name in names.items():
        row = list(_ROW)
        row[1], row[2], row[4] = f"company:{cid}", cid, name
        store._conn.execute("INSERT INTO account_scores VALUES (" + ",".join("?" * 18) + ")", row)
    model = load_model()
    typed = ("ÉCOLE Polytechnique", "école  polytechnique", "Acme  Analytics", "ACME analytics",
             "plain name", "nobody")  # fmt: skip
    lookups = {t: find_account(store, "hubspot", t, model).account for t in typed}
    found = {t: a.account_id if a is not None else None for t, a in lookups.items()}
    assert found == {
        "ÉCOLE Polytechnique": "company:9001",
        "école  polytechnique": "company:9001",
        "Acme  Analytics": "company:9002",
        "ACME analytics": "company:9002",
        "plain name": "company:9003",
        "nobody": None,
    }


def test_a_chained_marketo_merge_is_recorded_once() -> None:
    """102 merged into 103, then 103 into 101: Marketo moves 103's history, its Merge Leads
    activity naming 102 among it, to 101; the sync reading it again recorded 102 -> 101 as a
    new merge (merged 2 for one)."""
    with (
        MarketoSandbox.start(DEMO, now=ANCHOR) as sb,
        StateStore.memory() as store,
        pipeline_for(sb, store) as p,
    ):
        assert p.sync().status == "ok"
        sb.instance.advance(60)
        sb.merge_leads(103, 102)
        first = p.sync()
        sb.instance.advance(60)
        sb.merge_leads(101, 103)
        second = p.sync()
        sb.instance.advance(60)
        third = p.sync()
        assert (first.merged, second.merged, third.merged) == (1, 1, 0)
        assert (store.resolve_id(CRM, "102"), store.resolve_id(CRM, "103")) == ("101", "101")


def test_a_lead_change_without_a_lead_is_dead_lettered_as_an_activity() -> None:
    """Its id is an activity's: kept under `event:<id>`, never a lead's number."""
    with (
        MarketoSandbox.start(DEMO, now=ANCHOR) as sb,
        StateStore.memory() as store,
        pipeline_for(sb, store) as p,
    ):
        assert p.sync().status == "ok"
        sb.instance.advance(60)
        sb.set_field(104, "title", "VP Sales")
        change = [a for a in sb.instance.activities if a.type_id == 13][-1]
        change.lead_id = None  # type: ignore[assignment]
        sb.instance.advance(60)
        p.sync()
        letters = [(d.contact_id, d.reason) for d in store.open_dead_letters(CRM, "input")]
    assert letters == [(f"event:{change.id}", "lead change: no leadId")]


def test_no_reason_contradicts_its_own_comparison() -> None:
    """An account at 99.6 against 100 said "not an MQA (score 100 < 100)"; a contact at 60.44
    against an MQA's bar of 60.4 would have read "score 60 ≥ 60.4"."""
    from connector.model.schema import AccountsModel
    from connector.ops.accounts import _not_mqa
    from connector.scoring.accounts import _shown
    from connector.state.accounts import _account_row

    row = list(_ROW)
    row[1], row[5], row[12] = "company:1", 99.6, '["1", "2"]'
    stored = _account_row(row)
    section = load_model().model.accounts
    assert isinstance(section, AccountsModel)
    assert _not_mqa(stored, section) == ("score 99.6 < 100",)
    # as the CRM's whole-number score shows it: rounded down (`types.crm_score`)
    assert (_shown(64.94, 60), _shown(60.44, 60.4), _shown(100.6, 100)) == ("64", "60.4", "100")


def test_calibrate_prints_a_company_name_that_looks_like_markup_as_it_is(tmp_path: Path) -> None:
    """The accounts a suggestion would make or unmake MQAs are named in the terminal report:
    a company named "Co 13 [/] Holdings" ended `leadscore calibrate` in a MarkupError after
    all its work."""
    import dataclasses
    import io
    from datetime import timedelta

    from rich.console import Console

    from connector.calibrate import CalibrationOptions, calibrate
    from connector.calibrate.render import print_calibration

    from .test_calibrate import CRM as CAL_CRM
    from .test_calibrate import NOW as CAL_NOW
    from .test_calibrate import misset_model
    from .test_calibrate_accounts_refit import build_accounts

    store = StateStore.memory()
    build_accounts(store)
    c13 = store.get_crm_companies(CAL_CRM, ["9013"])["9013"]
    renamed = dataclasses.replace(c13, name="Co 13 [/] Holdings\x1b[31m")
    store.upsert_crm_companies(CAL_CRM, [renamed], CAL_NOW - timedelta(days=400))
    options = CalibrationOptions(accounts=True, rate_tolerance=0.0)
    r = calibrate(store, CAL_CRM, misset_model(tmp_path), now=CAL_NOW, options=options)
    assert r.suggestion is not None and r.suggestion.accounts is not None
    assert "Co 13 [/] Holdings\x1b[31m (co13.com)" in r.suggestion.accounts.gained
    out = io.StringIO()
    print_calibration(Console(width=400, file=out), r)
    line = next(x for x in out.getvalue().splitlines() if "would become MQAs" in x)
    assert "Co 13 [/] Holdings[31m" in line and "\x1b" not in line


def test_a_merge_that_reverses_an_earlier_one_is_recorded() -> None:
    """A merged into B is recorded; the CRM then says B was merged into A: the newer fact
    wins (the store's reversal), where the chain check above had skipped it (a second
    review found it)."""
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from connector.pipeline import SyncSummary
    from connector.pipeline.pull import Puller
    from connector.types import Contact

    at = datetime(2026, 11, 1, 12, tzinfo=UTC)
    with StateStore.memory() as store:
        contacts = [Contact(id="A", email="a@acme.com"), Contact(id="B", email="b@acme.com")]
        store.upsert_contacts("hubspot", contacts, at=at)
        store.merge_contacts("hubspot", "A", "B", at)
        stage = SimpleNamespace(store=store, crm="hubspot")  # what the method reads of it
        touched: set[str] = set()
        summary = SyncSummary("hubspot")
        Puller._apply_merges(stage, {"B": "A"}, touched, summary, at)  # type: ignore[arg-type]
        assert (summary.merged, touched) == (1, {"A"})
        assert (store.resolve_id("hubspot", "A"), store.resolve_id("hubspot", "B")) == ("A", "A")


def test_an_account_just_under_the_bar_never_reads_as_at_it() -> None:
    """99.96 under 100 read "score 100.0 < 100" (now "99.9": shown rounded down); a verdict
    against a bar that is no whole number keeps the whole number while it still reads over
    the bar (the reason then moves with the score property only)."""
    from connector.model.schema import AccountsModel
    from connector.ops.accounts import _not_mqa
    from connector.scoring.accounts import _shown
    from connector.state.accounts import _account_row

    section = load_model().model.accounts
    assert isinstance(section, AccountsModel)
    got = []
    for score in (99.96, 99.6, 12.0):
        row = list(_ROW)
        row[1], row[5], row[12] = "company:1", score, '["1", "2"]'
        got.append(_not_mqa(_account_row(row), section))
    assert got == [("score 99.9 < 100",), ("score 99.6 < 100",), ("score 12 < 100",)]
    assert (_shown(72.31, 60.4), _shown(72.24, 60.4), _shown(60.44, 60.4)) == ("72", "72", "60.4")
    # rounded down, never up past the CRM's whole number, and two decimals where a tenth would
    # read under a bar of two decimals
    assert (_shown(60.96, 60.4), _shown(60.46, 60.45)) == ("60.9", "60.46")
    section = section.model_copy(
        update={"mqa": section.mqa.model_copy(update={"threshold": 60.45})}
    )
    row = list(_ROW)
    row[1], row[5], row[12] = "company:1", 60.42, '["1", "2"]'
    assert _not_mqa(_account_row(row), section) == ("score 60.4 < 60.45",)
