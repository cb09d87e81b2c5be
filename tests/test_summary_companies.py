"""With accounts on, the run summary counts contacts as `written` and the company records
written beside them apart, `written 54 (+12 companies)`, the same in sync, backfill, the dry
run, `--json`, `status` and the metrics (the line said `written 66` for 54 contacts and 12
companies)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from connector.cli import cli
from connector.ops.status import run_counts
from connector.pipeline import SyncSummary
from connector.sandbox.demo_portal import build_demo_portal
from connector.sandbox.hubspot import HubSpotSandbox
from connector.state.store import RunRecord
from connector.worker.metrics import WorkerMetrics

from .conftest import NOW

LINE_TAIL = re.compile(r", API calls \d+ \(\d+ rate-limited\), \d+\.\ds$")


def summary_lines(res: Result, kind: str) -> list[str]:
    """The output's summary lines, their API calls and duration cut off (they vary)."""
    return [
        LINE_TAIL.sub("", line)
        for line in res.output.splitlines()
        if line.startswith(f"{kind} hubspot ")
    ]


def on_the_demo_portal(monkeypatch: pytest.MonkeyPatch, sb: HubSpotSandbox, db: Path) -> None:
    monkeypatch.setenv("LEADSCORE_HUBSPOT_BASE_URL", sb.url)
    monkeypatch.setenv("LEADSCORE_HUBSPOT_TOKEN", sb.token)
    monkeypatch.setenv("LEADSCORE_STATE_PATH", str(db))
    monkeypatch.setenv("LEADSCORE_ACCOUNTS", "true")
    monkeypatch.delenv("LEADSCORE_LOG_JSON", raising=False)


def test_sync_says_contacts_and_companies_written_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    with HubSpotSandbox.start(build_demo_portal()) as sb:
        on_the_demo_portal(monkeypatch, sb, tmp_path / "s.db")
        assert runner.invoke(cli, ["init-properties"]).exit_code == 0
        dry = runner.invoke(cli, ["sync", "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert (
            "Would update 54 contact(s) and 12 company record(s) (dry run, nothing written)."
            in dry.output
        )
        assert "…and 34 more" in dry.output  # 54 contacts, the first 20 shown
        real = runner.invoke(cli, ["sync"])
        assert real.exit_code == 0, real.output
        assert summary_lines(real, "sync") == [  # the dry run pulled and stored them
            "sync hubspot ok: pulled 0, new events 0, scored 54, written 54 (+12 companies), "
            "repaired 0, unchanged 0, dead-lettered 0"
        ]
        again = runner.invoke(cli, ["sync", "--json"])
        assert again.exit_code == 0, again.output
        doc = json.loads(again.stdout)
        assert (doc["written"], doc["companies_written"]) == (0, 0)
        assert (doc["to_write"], doc["companies_to_write"]) == (0, 0)
        status = runner.invoke(cli, ["status", "--json"])
        assert status.exit_code == 0, status.output
        first = [r for r in json.loads(status.stdout)["runs"] if r["counts"].get("written")]
        assert [(r["counts"]["written"], r["counts"]["companies_written"]) for r in first] == [
            (54, 12)
        ]


def test_backfill_and_sync_json_say_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    with HubSpotSandbox.start(build_demo_portal()) as sb:
        on_the_demo_portal(monkeypatch, sb, tmp_path / "b.db")
        assert runner.invoke(cli, ["init-properties"]).exit_code == 0
        res = runner.invoke(cli, ["backfill", "--since", "2020-01-01"])
        assert res.exit_code == 0, res.output
        [line] = summary_lines(res, "backfill")
        assert re.fullmatch(
            r"backfill hubspot ok: pulled 54, new events [0-9,]+, scored 54, "
            r"written 54 \(\+12 companies\), repaired 0, unchanged 0, dead-lettered 0",
            line,
        ), line
    with HubSpotSandbox.start(build_demo_portal()) as sb:
        on_the_demo_portal(monkeypatch, sb, tmp_path / "j.db")
        assert runner.invoke(cli, ["init-properties"]).exit_code == 0
        res = runner.invoke(cli, ["sync", "--json"])
        assert res.exit_code == 0, res.output
        doc = json.loads(res.stdout)
        assert (doc["written"], doc["companies_written"]) == (54, 12)
        assert (doc["to_write"], doc["companies_to_write"]) == (54, 12)


def test_status_and_metrics_count_companies_apart() -> None:
    def run(counts: dict[str, int]) -> RunRecord:
        return RunRecord(1, "hubspot", "sync", NOW, NOW, "ok", counts)

    assert run_counts(run({"pulled": 5, "written": 4, "companies_written": 2})) == (
        "pulled 5, written 4 (+2 companies)"
    )
    assert run_counts(run({"written": 0, "companies_written": 1})) == "written 0 (+1 company)"
    assert run_counts(run({"pulled": 5, "written": 4})) == "pulled 5, written 4"
    assert run_counts(run({"scored": 54, "accounts_scored": 12, "written": 54})) == (
        "scored 54, accounts scored 12, written 54"
    )
    # dead letters as the summary line counts them: both kinds, the bad input named
    assert run_counts(run({"pulled": 9, "dead_lettered": 1, "bad_records": 2})) == (
        "pulled 9, dead-lettered 3 (2 bad input)"
    )
    assert run_counts(run({"bad_records": 2})) == "dead-lettered 2 (2 bad input)"
    summary = SyncSummary("hubspot", pulled=9, dead_lettered=1, bad_records=2)
    assert ", dead-lettered 3 (2 bad input), " in summary.line()
    assert (summary.counts()["dead_letters"], summary.counts()["dead_lettered"]) == (3, 1)
    summary = SyncSummary("hubspot", written=4, companies_written=2)
    assert ", written 4 (+2 companies), repaired 0," in summary.line()
    metrics = WorkerMetrics("hubspot")
    metrics.observe_run(summary)
    text = metrics.registry.get_sample_value
    assert text("leadscore_contacts_written_total", {"crm": "hubspot"}) == 4
    assert text("leadscore_companies_written_total", {"crm": "hubspot"}) == 2
