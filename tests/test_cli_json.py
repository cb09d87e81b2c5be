"""`--json` on every command that reports: one JSON document alone on stdout, exact values."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from connector.cli import cli
from connector.model.loader import load_model
from connector.ops import analysis
from connector.sandbox.demo_portal import build_demo_portal
from connector.sandbox.hubspot import HubSpotSandbox

from .conftest import NOW, Harness

CRM = "hubspot"


def _json(res: Result) -> Any:
    assert res.stdout.count("\n") == 1, res.stdout  # one document, one line, nothing else
    return json.loads(res.stdout)


@pytest.fixture
def synced(demo: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The demo portal synced at NOW, with option D removed from the grade property (so the
    D contacts are write dead letters); the commands' clock at NOW."""
    grade = demo.sb.portal.properties["leadscore_grade"]
    grade.options = [o for o in grade.options if o[0] != "D"]
    summary = demo.pipeline.sync()
    assert summary.dead_lettered == 16
    monkeypatch.setattr(analysis, "_now", lambda: NOW)
    return ["--state", str(tmp_path / "state.db")]


def test_status_json(synced: list[str], demo: Harness) -> None:
    doc = _json(CliRunner().invoke(cli, [*synced, "status", "--json"]))
    model = load_model()
    assert doc["crm"] == CRM and doc["now"] == NOW.isoformat()
    assert (doc["contacts"], doc["scored"], doc["pending_writes"], doc["due"]) == (54, 54, 0, 0)
    assert doc["events"] == demo.store.count_events(CRM)
    assert doc["dead_letters"] == {"write": 16} and doc["open_dead_letters"] == 16
    assert doc["model_in_use"] == f"{model.version} ({model.fingerprint})"
    assert doc["stored_models"] == [
        {"version": model.version, "fingerprint": model.fingerprint, "contacts": 54}
    ]
    [run] = doc["runs"]
    assert (run["kind"], run["status"], run["counts"]["written"]) == ("sync", "ok", 38)
    assert run["counts"]["dead_lettered"] == 16
    assert [c["stream"] for c in doc["cursors"]] == ["contacts", "events:email", "events:events"]


def test_dead_letters_json(synced: list[str], demo: Harness) -> None:
    doc = _json(CliRunner().invoke(cli, [*synced, "dead-letters", "--json"]))
    assert doc["open"] == 16 == len(doc["dead_letters"])
    d_ids = {s.contact_id for s in demo.store.iter_scores(CRM) if s.grade == "D"}
    assert {d["contact_id"] for d in doc["dead_letters"]} == d_ids
    riley = next(d for d in doc["dead_letters"] if d["contact_id"] == "102")
    assert riley["contact"] == "riley.chen1987@gmail.com"
    assert (riley["kind"], riley["attempts"]) == ("write", 1)
    assert "INVALID_OPTION" in riley["reason"]


def test_explain_json(synced: list[str]) -> None:
    doc = _json(
        CliRunner().invoke(
            cli,
            [
                *synced,
                "explain",
                "dana.whitfield@acme-analytics.com",
                "--json",
                "--now",
                NOW.isoformat(),
            ],
        )
    )
    assert (doc["id"], doc["score"], doc["grade"], doc["mql"]) == ("101", 110, "A", True)
    assert doc["mql_reason"] == "threshold"
    got = {r["rule"]: r["points"] for r in doc["reasons"] if r["kind"] == "engagement"}
    assert got == {
        "webinar_attended": 50,
        "pricing_repeat": 25,
        "return_visits": 25,
        "pages_30": 10,
    }
    assert doc["not_counted"] == []
    [row] = doc["history"]
    assert (row["score"], row["grade"], row["mql"]) == (110, "A", True)
    assert row["scored_at"] == NOW.isoformat()


def test_simulate_json(synced: list[str]) -> None:
    doc = _json(CliRunner().invoke(cli, [*synced, "simulate", "--threshold", "90", "--json"]))
    assert (doc["contacts"], doc["current_mqls"], doc["simulated_mqls"]) == (54, 16, 18)
    assert (doc["gained"], doc["lost"]) == (2, 0)
    assert (doc["current_threshold"], doc["simulated_threshold"]) == (100, 90)
    assert doc["by_grade"] == {
        "A": {"current": 2, "simulated": 3},
        "B": {"current": 9, "simulated": 10},
        "C": {"current": 4, "simulated": 4},
        "D": {"current": 1, "simulated": 1},
    }
    assert {"threshold": 90, "mqls": 18} in doc["curve"]
    assert {"threshold": 100, "mqls": 16} in doc["curve"]
    flips = {f["label"]: (f["current"], f["simulated"]) for f in doc["flips"]}
    assert flips == {
        "finley.bennett@initech.com": (
            {"grade": "A", "mql": None, "score": 97},
            {"grade": "A", "mql": "threshold", "score": 97},
        ),
        "skyler.bennett@hooli.io": (
            {"grade": "B", "mql": None, "score": 92},
            {"grade": "B", "mql": "threshold", "score": 92},
        ),
    }


def test_rescore_dry_run_json(synced: list[str], demo: Harness) -> None:
    before = len(demo.sb.requests)
    res = CliRunner().invoke(cli, [*synced, "rescore", "--dry-run", "--json"])
    doc = _json(res)
    assert len(demo.sb.requests) == before  # a preview: no CRM call
    assert (doc["contacts"], doc["score_changes"], doc["grade_changes"]) == (54, 0, 0)
    assert doc["transitions"] == {"A→A": 6, "B→B": 19, "C→C": 13, "D→D": 16}
    assert (doc["mql_before"], doc["mql_after"], doc["new_mqls"], doc["lost_mqls"]) == (
        16,
        16,
        0,
        0,
    )
    # the 16 dead-lettered D contacts still differ in the CRM: a rescore would write them
    assert doc["to_write"] == 16 and doc["write_properties"]["grade"] == 16
    model = load_model()
    assert doc["stored_versions"] == {f"{model.version} ({model.fingerprint})": 54}
    assert len(doc["sample"]) == 10 and doc["sample"][0]["label"] == "riley.chen1987@gmail.com"
    assert doc["dry_run"] is True and "after" not in doc and "write_ids" not in doc
    apply = CliRunner().invoke(cli, [*synced, "rescore", "--json"])
    assert apply.exit_code == 2 and "--json goes with --dry-run" in apply.stderr


def test_report_json(synced: list[str]) -> None:
    doc = _json(CliRunner().invoke(cli, [*synced, "report", "--json"]))
    assert doc["total"] == {
        "key": "all contacts",
        "contacts": 54,
        "mqls": 15,
        "sqls": 0,
        "customers": 0,
        "sales_sourced": 1,
        "mql_rate": 15 / 54,
        "mql_to_sql": 0.0,
        "sql_to_customer": None,
        "mql_to_customer": 0.0,
    }
    assert [(f["key"], f["contacts"], f["mqls"]) for f in doc["by_grade"]] == [
        ("A", 6, 2),
        ("B", 19, 9),
        ("C", 13, 4),
        ("D", 16, 0),
    ]
    assert doc["models_in_scores"] == [{"version": "2026.12-default", "contacts": 54}]
    assert doc["unscored"] == 0 and doc["since"] is None


def test_validate_model_json(tmp_path: Path) -> None:
    from connector.model.loader import DEFAULT_MODEL_PATH

    model = load_model()
    ok = CliRunner().invoke(cli, ["validate-model", "--json"])
    assert ok.exit_code == 0
    assert _json(ok) == {
        "path": str(DEFAULT_MODEL_PATH),
        "ok": True,
        "version": model.version,
        "fingerprint": model.fingerprint,
        "problems": [],
        "notes": [],  # no state DB: nothing to compare with
    }
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nfit: [\n")
    res = CliRunner().invoke(cli, ["validate-model", str(bad), "--json"])
    assert res.exit_code == 1
    doc = _json(res)
    assert (doc["ok"], doc["version"], doc["fingerprint"]) == (False, None, None)
    [problem] = doc["problems"]
    assert problem.startswith("line 3: not valid YAML")


def test_sync_json_and_json_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with HubSpotSandbox.start(build_demo_portal()) as sb:
        monkeypatch.setenv("LEADSCORE_HUBSPOT_BASE_URL", sb.url)
        monkeypatch.setenv("LEADSCORE_HUBSPOT_TOKEN", sb.token)
        monkeypatch.setenv("LEADSCORE_STATE_PATH", str(tmp_path / "h.db"))
        runner = CliRunner()
        assert runner.invoke(cli, ["init-properties"]).exit_code == 0
        dry = runner.invoke(cli, ["sync", "--dry-run", "--json"])
        assert dry.exit_code == 0, dry.output
        doc = _json(dry)
        assert (doc["status"], doc["exit_code"], doc["dry_run"]) == ("ok", 0, True)
        assert (doc["pulled"], doc["scored"], doc["written"]) == (54, 54, 0)
        changes = {c["id"]: c["properties"] for c in doc["changes"]}
        assert len(changes) == 54
        assert changes["102"]["mql_reason"] == "hand-raiser: Request a demo"
        assert changes["101"]["grade"] == "A"
        monkeypatch.setenv("LEADSCORE_LOG_JSON", "true")
        real = runner.invoke(cli, ["sync", "--json"])
        assert real.exit_code == 0, real.output
        doc = _json(real)
        assert (doc["status"], doc["dry_run"], doc["written"]) == ("ok", False, 54)
        assert "changes" not in doc
        logged = [json.loads(line) for line in real.stderr.splitlines()]
        summaries = [r["summary"] for r in logged if "summary" in r]
        assert [(s["kind"], s["status"], s["exit_code"]) for s in summaries] == [("sync", "ok", 0)]
        assert sb.token not in real.stderr + real.stdout
        assert not [h for h in logging.getLogger().handlers if h.get_name() == "leadscore"]


def test_a_dry_run_before_init_properties_notes_in_json_and_in_json_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The note of what is missing reaches a machine reader: in the --json document, and in
    JSON log mode as a warning record (every line of stderr JSON, none plain text)."""
    with HubSpotSandbox.start(build_demo_portal()) as sb:
        monkeypatch.setenv("LEADSCORE_HUBSPOT_BASE_URL", sb.url)
        monkeypatch.setenv("LEADSCORE_HUBSPOT_TOKEN", sb.token)
        monkeypatch.setenv("LEADSCORE_STATE_PATH", str(tmp_path / "h.db"))
        note = (
            "the CRM lacks 9 of our properties (leadscore_fit_score, leadscore_grade, "
            "leadscore_model_version, …): run `leadscore init-properties` before a real sync "
            "(this dry run writes nothing)"
        )
        plain = CliRunner().invoke(cli, ["sync", "--dry-run", "--json"])
        assert plain.exit_code == 0, plain.output
        assert _json(plain)["notes"] == [note]
        assert plain.stderr.splitlines() == [f"note: {note}"]
        monkeypatch.setenv("LEADSCORE_LOG_JSON", "true")
        logged = CliRunner().invoke(cli, ["sync", "--dry-run", "--json"])
        assert logged.exit_code == 0, logged.output
        assert _json(logged)["notes"] == [note]
        records = [json.loads(line) for line in logged.stderr.splitlines()]
        assert [r["message"] for r in records if r["level"] == "warning"] == [note]
