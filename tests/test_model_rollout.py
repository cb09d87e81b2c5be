"""Issue 24: a model rollout is the state DB's record, and the next sync keeps it.

`leadscore rescore --model v2` makes v2 the model in force; a plain sync afterwards scores with
v2 (rebuilt from the state DB, even with the file gone) and writes nothing; a configured model
file that is not the model in force is refused before any CRM call; a running worker follows a
rollout made by another process; a model edited without a version bump is called out.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from connector.active_model import activate, model_in_force
from connector.app import open_app
from connector.cli import cli
from connector.crm.hubspot import HubSpotAdapter
from connector.model.loader import load_model
from connector.model.snapshot import model_content, model_from_content
from connector.offline import score_files
from connector.pipeline import Pipeline
from connector.sandbox.demo_portal import build_demo_portal
from connector.sandbox.hubspot import HubSpotSandbox
from connector.settings import load_settings
from connector.state.store import StateStore

from .conftest import NOW, Harness
from .test_ops_rescore import DEFAULT_VERSION, THRESHOLD_80, model_file

CRM = "hubspot"
V2 = 'version: "2026.12-v2"'
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubSpotSandbox]:
    """The demo portal in the HubSpot sandbox, our properties created, the CLI configured by
    environment (no LEADSCORE_MODEL_PATH: the default model file)."""
    monkeypatch.delenv("LEADSCORE_MODEL_PATH", raising=False)
    with HubSpotSandbox.start(build_demo_portal()) as sb:
        monkeypatch.setenv("LEADSCORE_HUBSPOT_BASE_URL", sb.url)
        monkeypatch.setenv("LEADSCORE_HUBSPOT_TOKEN", sb.token)
        monkeypatch.setenv("LEADSCORE_STATE_PATH", str(tmp_path / "state.db"))
        assert CliRunner().invoke(cli, ["init-properties"]).exit_code == 0
        sb.clear_log()
        yield sb


def write_calls(sb: HubSpotSandbox) -> list[str]:
    return [
        f"{r.method} {r.path}"
        for r in sb.requests
        if r.method != "GET" and "/batch/update" in r.path
    ]


def crm_versions(sb: HubSpotSandbox, state: Path) -> set[str]:
    """The model version HubSpot shows on every live contact leadscore knows."""
    ids = db_rows(
        state, "SELECT id FROM contacts WHERE archived_at IS NULL AND merged_into IS NULL"
    )
    assert len(ids) == 54
    return {sb.contact(str(cid)).properties.get("leadscore_model_version", "") for (cid,) in ids}


def db_rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_a_rollout_is_not_undone_by_the_next_sync(
    sandbox: HubSpotSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    state = tmp_path / "state.db"
    v1 = load_model()
    first = runner.invoke(cli, ["sync"])
    assert first.exit_code == 0, first.output
    assert ", written 54," in first.output
    # the first run makes the configured model the model in force
    assert db_rows(state, "SELECT version, fingerprint, applied_by FROM active_model") == [
        (v1.version, v1.fingerprint, "first run")
    ]

    path = model_file(tmp_path, "model.v2", (DEFAULT_VERSION, V2), THRESHOLD_80)
    v2 = load_model(path)
    sandbox.clear_log()
    rollout = runner.invoke(cli, ["rescore", "--model", str(path)])
    assert rollout.exit_code == 0, rollout.output
    m = re.search(r"wrote (\d+) contact\(s\) \(the preview said (\d+)\)", rollout.output)
    assert m is not None and m.group(1) == m.group(2), rollout.output
    assert int(m.group(1)) == 54  # the model version changes on every contact
    assert f"model 2026.12-v2 ({v2.fingerprint}) is now the model in force" in rollout.output
    assert crm_versions(sandbox, state) == {"2026.12-v2"}
    assert db_rows(
        state, "SELECT version, fingerprint, source_path, applied_by FROM active_model"
    ) == [("2026.12-v2", v2.fingerprint, str(path.resolve()), "rescore")]
    crm_after_rollout = {
        cid: dict(sandbox.contact(cid).properties) for cid in ("101", "102", "105")
    }

    # the next plain sync (what `run` does every 15 minutes), LEADSCORE_MODEL_PATH untouched and
    # the v2 file even gone: scores with v2 from the state DB and writes nothing
    path.unlink()
    sandbox.clear_log()
    sync = runner.invoke(cli, ["sync"])
    assert sync.exit_code == 0, sync.output
    assert ", written 0," in sync.output
    assert write_calls(sandbox) == []
    assert f"note: scoring with the model in force 2026.12-v2 ({v2.fingerprint})" in sync.output
    assert (
        f"the default model file {v1.path} ({v1.version} ({v1.fingerprint})) is not in force"
        in (sync.output)
    )
    assert crm_versions(sandbox, state) == {"2026.12-v2"}
    assert {cid: dict(sandbox.contact(cid).properties) for cid in crm_after_rollout} == (
        crm_after_rollout
    )
    assert db_rows(state, "SELECT DISTINCT model_fingerprint FROM scores") == [(v2.fingerprint,)]

    status = runner.invoke(cli, ["status"])
    assert status.exit_code == 0, status.output
    assert (
        f"model in use: 2026.12-v2 ({v2.fingerprint}); "
        f"scores stored: 54 from 2026.12-v2 ({v2.fingerprint})" in status.output
    )
    assert f"model in force (state DB): 2026.12-v2 ({v2.fingerprint}), rolled out " in status.output
    assert (
        f"configured model file: {v1.path}: {v1.version} ({v1.fingerprint}) — not in force"
        in status.output
    )
    assert "come from another model" not in status.output

    # the commands that only read use the model in force too
    sim = runner.invoke(cli, ["simulate", "--threshold", "100"])
    assert sim.exit_code == 0, sim.output
    assert "with model 2026.12-v2, threshold 80 →" in " ".join(sim.output.split())
    dana = runner.invoke(cli, ["explain", "dana.whitfield@acme-analytics.com"])
    assert dana.exit_code == 0, dana.output
    assert f"model 2026.12-v2 ({v2.fingerprint})" in dana.output
    assert "the stored score used model" not in dana.output

    # LEADSCORE_MODEL_PATH names the old model: refused before any CRM call or DB write
    monkeypatch.setenv("LEADSCORE_MODEL_PATH", v1.path)
    before = dump(state)
    sandbox.clear_log()
    refused = runner.invoke(cli, ["sync"])
    assert refused.exit_code == 2
    lines = refused.output.strip().splitlines()
    assert len(lines) == 1, refused.output
    assert lines[0].startswith(
        f"error: the configured model {v1.path} ({v1.version} ({v1.fingerprint})) is not the "
        f"model in force (2026.12-v2 ({v2.fingerprint}), rolled out "
    )
    assert f"Roll it out with `leadscore rescore --model {v1.path}`" in lines[0]
    assert sandbox.requests == []
    assert dump(state) == before
    for command in (["run"], ["backfill", "--since", "2026-01-01"], ["sync", "--dry-run"]):
        res = runner.invoke(cli, command)
        assert res.exit_code == 2, (command, res.output)
        assert "is not the model in force" in res.output
    assert sandbox.requests == []
    assert dump(state) == before
    status = runner.invoke(cli, ["status"])
    assert "refuse to start while LEADSCORE_MODEL_PATH names it" in status.output
    # ... and `--model` the same
    monkeypatch.delenv("LEADSCORE_MODEL_PATH")
    res = runner.invoke(cli, ["sync", "--model", v1.path])
    assert res.exit_code == 2 and "is not the model in force" in res.output
    assert sandbox.requests == []


def test_a_running_worker_follows_a_rollout_made_by_another_process(
    sandbox: HubSpotSandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings()
    state = tmp_path / "state.db"
    v1 = load_model()
    path = model_file(tmp_path, "model.v2", (DEFAULT_VERSION, V2), THRESHOLD_80)
    v2 = load_model(path)
    with open_app(settings, v1) as app:  # the worker, started before the rollout
        assert app.pipeline.sync().written == 54
        res = CliRunner().invoke(cli, ["rescore", "--model", str(path)])
        assert res.exit_code == 0, res.output
        assert crm_versions(sandbox, state) == {"2026.12-v2"}
        sandbox.clear_log()
        with caplog.at_level(logging.WARNING, logger="connector.active_model"):
            summary = app.pipeline.sync()  # its next pass
        assert summary.status == "ok" and summary.written == 0
        assert write_calls(sandbox) == []
        assert app.pipeline.model.fingerprint == v2.fingerprint
        assert f"model in force changed to 2026.12-v2 ({v2.fingerprint})" in caplog.text
        assert crm_versions(sandbox, state) == {"2026.12-v2"}


def test_stored_scores_from_another_model_are_announced_before_any_write(
    sandbox: HubSpotSandbox, tmp_path: Path
) -> None:
    """A rollout that stopped after making v2 the model in force (before the recompute): the
    next sync says so, first."""
    runner = CliRunner()
    assert runner.invoke(cli, ["sync"]).exit_code == 0
    v2 = load_model(model_file(tmp_path, "model.v2", (DEFAULT_VERSION, V2), THRESHOLD_80))
    v1 = load_model()
    with StateStore.open(tmp_path / "state.db") as store:
        activate(store, CRM, v2, now=NOW)
    status = runner.invoke(cli, ["status"])
    assert "54 stored score(s) come from another model" in status.output
    res = runner.invoke(cli, ["sync"])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    warning = (
        f"warning: 54 stored score(s) come from another model than the one in force 2026.12-v2 "
        f"({v2.fingerprint}) ({v1.version} ({v1.fingerprint}): 54); this run rescores only the "
        "contacts that change: `leadscore rescore` rescores everybody with the model in force"
    )
    assert warning in lines
    assert lines.index(warning) < next(
        i for i, x in enumerate(lines) if x.startswith("sync hubspot")
    )


def test_an_edited_model_without_a_version_bump_is_called_out(
    sandbox: HubSpotSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["sync"]).exit_code == 0
    v1 = load_model()
    same = runner.invoke(cli, ["validate-model"])
    assert same.exit_code == 0
    assert same.output.splitlines() == [
        f"OK {v1.version} {v1.fingerprint}",
        "note: this is the model in force",
    ]
    edited = model_file(tmp_path, "edited", THRESHOLD_80)  # same version, other content
    e = load_model(edited)
    res = runner.invoke(cli, ["validate-model", str(edited)])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[0] == f"OK {v1.version} {e.fingerprint}"
    assert (
        f"warning: version not bumped: {edited} is version {v1.version} like the model in force, "
        f"but its content differs (fingerprint {v1.fingerprint} → {e.fingerprint})"
    ) in res.output
    dry = runner.invoke(cli, ["rescore", "--dry-run", "--model", str(edited)])
    assert dry.exit_code == 0, dry.output
    assert "warning: version not bumped" in dry.output
    bumped = model_file(tmp_path, "bumped", (DEFAULT_VERSION, V2), THRESHOLD_80)
    ok = runner.invoke(cli, ["validate-model", str(bumped)])
    assert ok.exit_code == 0 and "version not bumped" not in ok.output
    assert f"note: the model in force is {v1.version} ({v1.fingerprint})" in ok.output

    monkeypatch.setenv("LEADSCORE_MODEL_PATH", str(edited))
    status = runner.invoke(cli, ["status"])
    assert status.exit_code == 0, status.output
    out = " ".join(status.output.split())
    assert f"model in force (state DB): {v1.version} ({v1.fingerprint}), rolled out " in out
    assert f"configured model file: {edited}: {v1.version} ({e.fingerprint})" in out
    assert "version not bumped" in out


def test_a_dry_run_on_a_new_state_db_records_no_model(
    sandbox: HubSpotSandbox, tmp_path: Path
) -> None:
    res = CliRunner().invoke(cli, ["sync", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert db_rows(tmp_path / "state.db", "SELECT count(*) FROM active_model") == [(0,)]


def test_the_first_real_run_rescores_what_a_dry_run_with_another_model_stored(
    sandbox: HubSpotSandbox, tmp_path: Path
) -> None:
    """`sync --dry-run --model v2` on a new state DB stores v2's scores but records no model;
    the first real sync (the default model, now in force) rescores every one of them with the
    default model and says so, instead of warning that it rescores only what changes."""
    runner = CliRunner()
    state = tmp_path / "state.db"
    v2 = load_model(model_file(tmp_path, "model.v2", (DEFAULT_VERSION, V2), THRESHOLD_80))
    v1 = load_model()
    dry = runner.invoke(cli, ["sync", "--dry-run", "--model", str(v2.path)])
    assert dry.exit_code == 0, dry.output
    assert db_rows(state, "SELECT model_version, count(*) FROM scores GROUP BY 1") == [
        ("2026.12-v2", 54)
    ]
    res = runner.invoke(cli, ["sync"])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert (
        f"note: 54 stored score(s) come from another model (2026.12-v2 ({v2.fingerprint}): "
        "54), scored before this state DB had a model in force (a dry run): this run rescores "
        f"them with the model in force {v1.version} ({v1.fingerprint})"
    ) in lines
    assert not any("come from another model than" in line for line in lines)
    assert "scored 54," in lines[-1] and "written 54," in lines[-1]
    assert db_rows(state, "SELECT model_fingerprint, count(*) FROM scores GROUP BY 1") == [
        (v1.fingerprint, 54)
    ]
    assert crm_versions(sandbox, state) == {v1.version}
    again = runner.invoke(cli, ["sync"])  # nothing written twice
    assert again.exit_code == 0, again.output
    assert "written 0," in again.output and "unchanged 54," in again.output, again.output


def test_the_stored_model_rebuilds_exactly(tmp_path: Path) -> None:
    """The state DB's content is all the worker needs: same fingerprint, same scores."""
    path = model_file(tmp_path, "model.v2", (DEFAULT_VERSION, V2), THRESHOLD_80)
    v2 = load_model(path)
    content = model_content(v2)
    path.unlink()
    (path.parent / "titles.yaml").unlink()
    rebuilt = model_from_content(content, "from the state DB")
    assert (rebuilt.version, rebuilt.fingerprint) == ("2026.12-v2", v2.fingerprint)
    contacts = next((FIXTURES / "offline").glob("*contacts*.jsonl"))
    events = next((FIXTURES / "offline").glob("*events*.jsonl"))
    a = score_files(contacts, events, v2, NOW).scored
    b = score_files(contacts, events, rebuilt, NOW).scored
    assert len(a) > 0 and [r for _, r in a] == [r for _, r in b]
    with StateStore.open(tmp_path / "s.db") as store:
        found = model_in_force(store, CRM, v2, explicit=True)
        assert found.active is not None and found.active.content == content
        assert found.notes == []


def test_a_rollout_whose_first_sync_stops_leaves_the_model_in_force(
    demo: Harness, tmp_path: Path
) -> None:
    """The token is refused: nothing was rescored, so the old model stays in force."""
    from connector.ops.rescore import apply_rescore

    assert demo.pipeline.sync().status == "ok"
    v1 = demo.pipeline.model
    activate(demo.store, CRM, v1, now=NOW)
    v2 = load_model(model_file(tmp_path, "model.v2", (DEFAULT_VERSION, V2), THRESHOLD_80))
    refused = HubSpotAdapter(SecretStr("pat-na1-wrong"), demo.sb.url, timeout_s=5)
    try:
        pipeline = Pipeline(demo.store, refused, v1, clock=lambda: NOW)
        applied = apply_rescore(pipeline, v2)
    finally:
        refused.close()
    assert applied.rescore is None and applied.sync.status == "auth"
    active = demo.store.get_active_model(CRM)
    assert active is not None and active.fingerprint == v1.fingerprint
    assert {s.model_fingerprint for s in demo.store.iter_scores(CRM)} == {v1.fingerprint}

    applied = apply_rescore(demo.pipeline, v2)  # with the right token
    assert applied.rescore is not None and applied.rescore.status == "ok"
    active = demo.store.get_active_model(CRM)
    assert active is not None and (active.version, active.fingerprint) == (
        "2026.12-v2",
        v2.fingerprint,
    )
    assert active.applied_at == NOW and active.applied_by == "rescore"
    assert {s.model_fingerprint for s in demo.store.iter_scores(CRM)} == {v2.fingerprint}


def test_calibrate_starts_from_the_model_in_force(sandbox: HubSpotSandbox, tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["sync"]).exit_code == 0
    path = model_file(tmp_path, "model.v2", (DEFAULT_VERSION, V2), THRESHOLD_80)
    v2 = load_model(path)
    assert runner.invoke(cli, ["rescore", "--model", str(path)]).exit_code == 0
    out = tmp_path / "suggested.yaml"
    res = runner.invoke(cli, ["calibrate", "--out", str(out)])
    assert res.exit_code == 3, res.output  # 54 demo contacts: too little data to suggest
    assert f"Model 2026.12-v2 ({v2.fingerprint})" in res.output
    assert "note: calibrating" not in res.output
    path.write_text(path.read_text().replace("threshold: 80", "threshold: 85"))  # edited since
    res = runner.invoke(cli, ["calibrate", "--out", str(out)])
    v1 = load_model()
    assert (
        f"note: calibrating {v1.path} ({v1.version}, {v1.fingerprint}); the model in force is "
        f"2026.12-v2 ({v2.fingerprint}), rolled out "
    ) in res.output


def test_a_rollout_while_leadscore_model_path_names_the_old_file(
    sandbox: HubSpotSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's words: the rescore notes that LEADSCORE_MODEL_PATH still names the old file;
    the next sync then refuses instead of writing the old model back."""
    runner = CliRunner()
    v1 = load_model()
    monkeypatch.setenv("LEADSCORE_MODEL_PATH", v1.path)
    assert runner.invoke(cli, ["sync"]).exit_code == 0
    path = model_file(tmp_path, "model.v2", (DEFAULT_VERSION, V2), THRESHOLD_80)
    res = runner.invoke(cli, ["rescore", "--model", str(path)])
    assert res.exit_code == 0, res.output
    assert (
        f"note: LEADSCORE_MODEL_PATH still names {v1.path}, another model: sync, run and "
        f"backfill refuse to start until it names {path} or is unset"
    ) in res.output
    sandbox.clear_log()
    refused = runner.invoke(cli, ["sync"])
    assert refused.exit_code == 2 and "is not the model in force" in refused.output
    assert sandbox.requests == []
    monkeypatch.setenv("LEADSCORE_MODEL_PATH", str(path))  # the admin follows the advice
    ok = runner.invoke(cli, ["sync"])
    assert ok.exit_code == 0, ok.output
    assert ", written 0," in ok.output
    assert "note:" not in ok.output and "warning:" not in ok.output
    state = tmp_path / "state.db"
    assert crm_versions(sandbox, state) == {"2026.12-v2"}
