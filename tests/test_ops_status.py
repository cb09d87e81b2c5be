"""`leadscore status`: runs, cursors, queues and model versions, from the state DB alone."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import cli
from connector.model.loader import load_model
from connector.ops.status import build_status, run_counts, run_duration
from connector.state.store import StateStore

from .conftest import NOW, Harness
from .test_ops_rescore import DEFAULT_VERSION, changed_model, dump

CRM = "hubspot"


def test_status_after_a_sync_with_dead_letters(demo: Harness, tmp_path: Path) -> None:
    grade = demo.sb.portal.properties["leadscore_grade"]
    grade.options = [o for o in grade.options if o[0] != "D"]
    summary = demo.pipeline.sync()
    model = load_model()
    st = build_status(demo.store, CRM, NOW, model)
    assert len(st.runs) == 1
    run = st.runs[0]
    assert (run.kind, run.status, run.api_calls) == ("sync", "ok", summary.api_calls)
    assert run_counts(run).startswith(f"pulled {summary.pulled}, events {summary.new_events}")
    assert f"dead {summary.dead_lettered}" in run_counts(run)
    assert run_duration(run).endswith("s")
    assert [c.stream for c in st.cursors] == ["contacts", "events:email", "events:events"]
    assert all(c.position is None and c.since is not None for c in st.cursors)
    assert st.contacts == demo.store.count_contacts(CRM)
    assert st.events == demo.store.count_events(CRM) > 0
    assert st.scored == st.contacts
    assert st.pending_writes == 0
    assert st.dead_letters == {"write": summary.dead_lettered}
    assert st.due == len(demo.store.due_contact_ids(CRM, NOW)) == 0
    later = build_status(demo.store, CRM, NOW + timedelta(days=90), model)
    assert later.due > 0  # events leave the 60-day window: those contacts are due
    assert st.model_in_use == f"{model.version} ({model.fingerprint})"
    assert st.stored_models == [(model.version, model.fingerprint, st.scored)]
    assert st.scored_with_other_models == 0
    other = changed_model(tmp_path, "v2", (DEFAULT_VERSION, 'version: "2026.12-next"'))
    assert build_status(demo.store, CRM, NOW, other).scored_with_other_models == st.scored

    before = dump(demo.store)
    res = CliRunner().invoke(cli, ["--state", str(tmp_path / "state.db"), "status"])
    assert res.exit_code == 0, res.output
    out = res.output
    assert f"model in use: {model.version} ({model.fingerprint})" in out
    assert f"open dead letters {summary.dead_lettered} (write {summary.dead_lettered})" in out
    assert "pending writes 0" in out and "due for rescore" in out
    assert "events:email" in out and "Last 1 run(s)" in out
    assert dump(demo.store) == before  # status only reads


def test_status_without_a_state_db_is_one_line_exit_1(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["--state", str(tmp_path / "none.db"), "status"])
    assert res.exit_code == 1
    assert res.output.startswith("error: no state DB at")
    assert len(res.output.strip().splitlines()) == 1


def test_status_on_a_fresh_db_and_a_broken_model_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with StateStore.open(tmp_path / "s.db"):
        pass
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: [\n")
    monkeypatch.setenv("LEADSCORE_MODEL_PATH", str(bad))
    res = CliRunner().invoke(cli, ["--state", str(tmp_path / "s.db"), "status"])
    assert res.exit_code == 0, res.output
    assert "invalid model file" in res.output
    assert "no sync has run yet" in res.output
    assert "no scores yet" in res.output
