"""`leadscore dead-letters`: list them; `--retry` re-sends the writes diff-only and resolves
what succeeds, bumping the attempts of what fails again."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from connector.cli import cli
from connector.crm.base import BadRecord, ContactPage, EventPage
from connector.ops import analysis
from connector.ops.dead_letters import list_dead_letters, retry_write_dead_letters
from connector.pipeline import SyncOptions, SyncSummary
from connector.sandbox.base import Faults
from connector.sandbox.demo_portal import build_demo_portal
from connector.state.store import StateStore
from connector.types import Contact

from .conftest import NOW, Harness

CRM = "hubspot"


def test_retry_writes_the_dead_letters_once_the_crm_accepts_them(
    demo: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an admin removed option D from the grade property: HubSpot rejects D records alone
    grade = demo.sb.portal.properties["leadscore_grade"]
    options = list(grade.options)
    grade.options = [o for o in options if o[0] != "D"]
    first = demo.pipeline.sync()
    d_ids = {s.contact_id for s in demo.store.iter_scores(CRM) if s.grade == "D"}
    assert d_ids and first.dead_lettered == len(d_ids)
    letters = list_dead_letters(demo.store, CRM, "write")
    assert {d.contact_id for d in letters} == d_ids
    assert {d.attempts for d in letters} == {1}
    assert list_dead_letters(demo.store, CRM, "input") == []
    state = str(tmp_path / "state.db")

    listing = CliRunner().invoke(cli, ["--state", state, "dead-letters", "--kind", "write"])
    assert listing.exit_code == 0, listing.output
    assert f"Open dead letters: {len(d_ids)}" in listing.output
    assert "INVALID_OPTION" in listing.output

    # still broken: every retry fails again, and its attempts go up
    demo.clock[0] = NOW + timedelta(minutes=5)
    demo.sb.clear_log()
    failed = retry_write_dead_letters(demo.pipeline)
    assert failed.count("failed") == failed.still_open == len(d_ids)
    assert {d.attempts for d in list_dead_letters(demo.store, CRM, "write")} == {2}
    assert set(demo.sb.contact(c).properties.get("leadscore_grade") or "" for c in d_ids) == {""}
    run = demo.store.last_runs(CRM, 1)[0]
    assert (run.kind, run.status, run.errors) == ("dead-letters", "ok", len(d_ids))
    assert failed.summary is not None and failed.summary.dead_lettered == len(d_ids)

    # the option is back, plus a dead letter whose values already reached the CRM
    grade.options = options
    demo.store.add_dead_letter(CRM, "write", "101", {}, "timeout", NOW)
    demo.sb.clear_log()
    monkeypatch.setenv("LEADSCORE_HUBSPOT_TOKEN", demo.sb.token)
    monkeypatch.setenv("LEADSCORE_HUBSPOT_BASE_URL", demo.sb.url)
    res = CliRunner().invoke(cli, ["--state", state, "dead-letters", "--retry"])
    assert res.exit_code == 0, res.output
    assert f"{len(d_ids)} written, 1 already up to date" in res.output
    assert sorted(demo.written_ids()) == sorted(d_ids)  # diff-only: 101 not re-sent
    assert list_dead_letters(demo.store, CRM) == []
    for cid in d_ids:
        stored = demo.store.get_score(CRM, cid)
        assert stored is not None
        props = demo.sb.contact(cid).properties
        assert props["leadscore_grade"] == "D"
        assert props["leadscore_score"] == str(round(stored.score))
        assert demo.store.get_written(CRM, cid)["grade"] == "D"
    run = demo.store.last_runs(CRM, 1)[0]
    assert (run.kind, run.status, run.errors, run.counts["written"]) == (
        "dead-letters",
        "ok",
        0,
        len(d_ids),
    )
    # nothing is left over for the next sync
    demo.sb.clear_log()
    demo.clock[0] = NOW + timedelta(minutes=15)
    again = demo.pipeline.sync()
    assert (again.written, again.dead_lettered) == (0, 0)

    nothing = CliRunner().invoke(cli, ["--state", state, "dead-letters"])
    assert nothing.exit_code == 0 and "No open dead letters." in nothing.output


def test_retry_of_input_dead_letters_is_refused(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        cli, ["--state", str(tmp_path / "s.db"), "dead-letters", "--retry", "--kind", "input"]
    )
    assert res.exit_code == 2
    assert res.output.startswith("error: input dead letters")
    assert len(res.output.strip().splitlines()) == 1


def test_retry_with_no_dead_letters_makes_no_call(demo: Harness) -> None:
    demo.pipeline.sync()
    demo.sb.clear_log()
    result = retry_write_dead_letters(demo.pipeline)
    assert result.outcomes == [] and demo.sb.requests == []


def test_retry_resends_the_company_fields_the_failed_write_carried(harness_factory: Any) -> None:
    """With company write-back on, a dead-lettered write held company fields too: the retry
    sends them (what a sync would send now), not only the score properties."""
    options = SyncOptions(write_company_fields=True)
    for h in harness_factory(build_demo_portal(), options=options):
        h.sb.set_property("112", "company", "")  # blank: enrichment fills it
        h.sb.faults = Faults(
            error_rate=1.0,
            error_statuses=(503,),
            methods=("POST",),
            path_prefixes=("/crm/v3/objects/contacts/batch/update",),
        )
        first = h.pipeline.sync()
        assert first.written == 0 and first.dead_lettered > 0
        assert "112" in {d.contact_id for d in list_dead_letters(h.store, CRM, "write")}
        assert h.sb.contact("112").properties.get("company") in (None, "")
        h.sb.faults = Faults()
        h.sb.clear_log()
        retried = retry_write_dead_letters(h.pipeline)
        assert retried.still_open == 0
        robin = {w["id"]: w["properties"] for w in h.writes()}["112"]
        assert (robin["company"], robin["industry"], robin["country"]) == (
            "Acme Analytics",
            "computer software",
            "US",
        )
        assert robin["leadscore_grade"] == h.store.get_score(CRM, "112").grade
        assert h.sb.contact("112").properties["company"] == "Acme Analytics"
        h.sb.clear_log()
        assert h.pipeline.sync().written == 0  # nothing left for the next sync


def _letters_db(path: Path) -> None:
    """A state DB with an input dead letter of a contact (1), one of an event (2), a write
    dead letter (3), a resolved input one (4) and another CRM's (5)."""
    with StateStore.open(path) as store:
        store.upsert_contacts(CRM, [Contact(id="102", email="riley@x.com")], at=NOW)
        store.add_dead_letter(CRM, "input", "102", {"id": "102"}, "contact 102: bad date", NOW)
        store.add_dead_letter(
            CRM, "input", "ev-9", {"id": "ev-9", "contact_id": "102"}, "event ev-9: future", NOW
        )
        store.add_dead_letter(CRM, "write", "102", {"leadscore_grade": "D"}, "INVALID", NOW)
        store.add_dead_letter(CRM, "input", "103", {"id": "103"}, "contact 103: bad", NOW)
        store.resolve_input_dead_letters(CRM, ["103"], NOW)
        store.add_dead_letter("marketo", "input", "7", {}, "lead 7: bad", NOW)


def test_dismiss_names_each_id_and_fails_on_unknown_ones_after_dismissing_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`dead-letters dismiss ID...`: one line per id, in order; an unknown id (another CRM's,
    none, no number) or a write dead letter is an error line naming it, exit 1, the others
    dismissed all the same; again, exit 0. The listing leaves the dismissed ones out (a line
    says how many), `--all` and `--json` show them with their state."""
    monkeypatch.setattr(analysis, "_now", lambda: NOW + timedelta(hours=1))
    state = tmp_path / "state.db"
    _letters_db(state)
    base = ["--state", str(state), "dead-letters"]
    res = CliRunner().invoke(cli, [*base, "dismiss", "1", "9", "2", "3", "4", "5", "x1"])
    assert res.exit_code == 1
    assert res.stdout.splitlines() == [
        "dismissed dead letter 1 (riley@x.com (102))",
        "dismissed dead letter 2 (event of riley@x.com (102))",
        "dead letter 4 is resolved already (its record read cleanly)",
    ]
    assert res.stderr.splitlines() == [
        "error: no dead letter 9 in the state DB for hubspot",
        "error: dead letter 3 is not an input dead letter: only those are dismissed "
        "(`leadscore dead-letters --retry` re-sends writes)",
        "error: no dead letter 5 in the state DB for hubspot",
        "error: no dead letter x1 in the state DB for hubspot",
    ]
    with StateStore.open(state) as store:
        assert store.db.execute(
            "SELECT id, crm, kind, attempts, resolved_at, dismissed_at FROM dead_letters "
            "ORDER BY id"
        ).fetchall() == [
            (1, CRM, "input", 1, None, "2026-11-01T13:00:00.000000+00:00"),
            (2, CRM, "input", 1, None, "2026-11-01T13:00:00.000000+00:00"),
            (3, CRM, "write", 1, None, None),
            (4, CRM, "input", 1, "2026-11-01T12:00:00.000000+00:00", None),
            (5, "marketo", "input", 1, None, None),
        ]

    monkeypatch.setattr(analysis, "_now", lambda: NOW + timedelta(hours=2))
    again = CliRunner().invoke(cli, [*base, "dismiss", "2"])
    assert (again.exit_code, again.stdout, again.stderr) == (
        0,
        "dead letter 2 (event of riley@x.com (102)) was dismissed already, at "
        "2026-11-01 13:00 UTC\n",
        "",
    )

    listing = CliRunner().invoke(cli, base, env={"COLUMNS": "200"})
    assert listing.exit_code == 0
    lines = listing.stdout.splitlines()
    assert lines[0].strip() == "Open dead letters: 1"
    assert lines[-1] == "2 dismissed dead letter(s) not shown (`--all` lists them)."
    assert "INVALID" in listing.stdout and "future" not in listing.stdout
    inputs = CliRunner().invoke(cli, [*base, "--kind", "input"])
    assert inputs.stdout.splitlines() == [
        "No open input dead letters.",
        "2 dismissed input dead letter(s) not shown (`--all` lists them).",
    ]
    every = CliRunner().invoke(cli, [*base, "--all"], env={"COLUMNS": "200"})
    assert every.stdout.splitlines()[0].strip() == "Dead letters: 1 open, 2 dismissed"
    assert "dismissed (UTC)" in every.stdout and "2026-11-01 13:00" in every.stdout

    doc = json.loads(CliRunner().invoke(cli, [*base, "--json"]).stdout)
    assert (doc["open"], doc["dismissed"]) == (1, 2)
    assert [(d["id"], d["state"], d["dismissed_at"]) for d in doc["dead_letters"]] == [
        (3, "open", None)
    ]
    doc = json.loads(CliRunner().invoke(cli, [*base, "--all", "--json"]).stdout)
    assert [(d["id"], d["state"], d["dismissed_at"]) for d in doc["dead_letters"]] == [
        (1, "dismissed", "2026-11-01T13:00:00+00:00"),
        (2, "dismissed", "2026-11-01T13:00:00+00:00"),
        (3, "open", None),
    ]


def test_dismiss_all_input_and_its_usage_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--all-input` dismisses every open input dead letter (never a write one); ids and
    `--all-input` together, or neither, or a listing option before `dismiss`: one line, exit
    2, nothing dismissed."""
    monkeypatch.setattr(analysis, "_now", lambda: NOW + timedelta(hours=1))
    state = tmp_path / "state.db"
    _letters_db(state)
    base = ["--state", str(state), "dead-letters"]
    for args, error in (
        (["dismiss"], "error: name the dead letters to dismiss by id (`leadscore dead-letters` "
         "lists them), or give --all-input alone"),
        (["dismiss", "1", "--all-input"], "error: name the dead letters to dismiss by id "
         "(`leadscore dead-letters` lists them), or give --all-input alone"),
        (["--json", "dismiss", "1"], "error: --retry, --kind, --all and --json list or "
         "retry; `dismiss` takes its own options"),
    ):  # fmt: skip
        res = CliRunner().invoke(cli, [*base, *args])
        assert (res.exit_code, res.stdout, res.stderr.splitlines()) == (2, "", [error]), args
    with StateStore.open(state) as store:
        assert len(store.open_dead_letters(CRM)) == 3
    res = CliRunner().invoke(cli, [*base, "dismiss", "--all-input"])
    assert (res.exit_code, res.stderr) == (0, "")
    assert res.stdout.splitlines() == [
        "dismissed dead letter 1 (riley@x.com (102))",
        "dismissed dead letter 2 (event of riley@x.com (102))",
    ]
    with StateStore.open(state) as store:
        assert [d.id for d in store.open_dead_letters(CRM)] == [3]
        assert [d.id for d in store.open_dead_letters("marketo")] == [5]
    res = CliRunner().invoke(cli, [*base, "dismiss", "--all-input", "--state", str(state)])
    assert (res.exit_code, res.stdout) == (0, "No open input dead letters to dismiss.\n")


def test_a_page_s_bad_records_count_once_until_their_payload_changes(
    demo: Harness,
) -> None:
    """A page's bad records (contacts', events', companies' alike) count as the run's bad
    input when they are news: one read again with the same payload (open: its attempt is
    counted on the dead letter; dismissed: left as it is) is not counted again (the events'
    re-read margin reads a bad event at every sync for days); read with another payload, it
    counts, and a dismissed one is open again."""
    bad = [
        BadRecord("900", "contact 900: bad date", {"id": "900", "createdate": "x"}),
        BadRecord("901", "contact 901: bad date", {"id": "901", "createdate": "y"}),
    ]
    first = SyncSummary(CRM)
    demo.pipeline.save_contact_page(ContactPage([], None, bad=bad), first)
    assert first.bad_records == 2
    assert demo.store.dismiss_dead_letters(CRM, [1], NOW) == {1: "dismissed"}
    again = SyncSummary(CRM)
    demo.pipeline.save_event_page(EventPage([], None, None, bad=bad), again)
    assert again.bad_records == 0
    assert [(d.id, d.attempts) for d in demo.store.open_dead_letters(CRM)] == [(2, 2)]
    changed = [BadRecord("900", "contact 900: bad date", {"id": "900", "createdate": "z"})]
    third = SyncSummary(CRM)
    demo.pipeline.save_contact_page(ContactPage([], None, bad=changed), third)
    assert third.bad_records == 1
    assert [(d.id, d.attempts) for d in demo.store.open_dead_letters(CRM)] == [(1, 2), (2, 2)]
