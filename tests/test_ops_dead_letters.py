"""`leadscore dead-letters`: list them; `--retry` re-sends the writes diff-only and resolves
what succeeds, bumping the attempts of what fails again."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from connector.cli import cli
from connector.ops.dead_letters import list_dead_letters, retry_write_dead_letters
from connector.pipeline import SyncOptions
from connector.sandbox.base import Faults
from connector.sandbox.demo_portal import build_demo_portal

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
