"""`leadscore backfill --dry-run`: nothing written to the CRM, and the same preview as `sync
--dry-run` (the `Would update N contact(s)` line, the table, `--json`'s `to_write` and
`changes`). A real run afterwards writes exactly what the preview said.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import cli
from connector.sandbox.demo_portal import build_demo_portal
from connector.sandbox.hubspot import HubSpotSandbox

from .test_ops_rescore import DEFAULT_VERSION, THRESHOLD_80, model_file

V2 = 'version: "2026.12-v2"'
# until now: the demo portal is dated from now
BACKFILL = ["backfill", "--since", "2020-01-01T00:00:00Z"]
# the computed rows a real run after the dry run leaves
COMPUTED = (
    "scores",
    "score_history",
    "named_scores",
    "written",
    "account_scores",
    "account_written",
    "active_model",
)


@pytest.fixture
def sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_log_handler: None
) -> Iterator[HubSpotSandbox]:
    """The demo portal in the HubSpot sandbox, our properties created, the CLI configured by
    environment (no LEADSCORE_MODEL_PATH: the default model file)."""
    monkeypatch.delenv("LEADSCORE_MODEL_PATH", raising=False)
    monkeypatch.setenv("LEADSCORE_ENV_FILE", str(tmp_path / "none.env"))
    with HubSpotSandbox.start(build_demo_portal()) as sb:
        monkeypatch.setenv("LEADSCORE_HUBSPOT_BASE_URL", sb.url)
        monkeypatch.setenv("LEADSCORE_HUBSPOT_TOKEN", sb.token)
        monkeypatch.setenv("LEADSCORE_STATE_PATH", str(tmp_path / "state.db"))
        assert CliRunner().invoke(cli, ["init-properties"]).exit_code == 0
        sb.clear_log()
        yield sb


@pytest.fixture
def model_v2(tmp_path: Path) -> Path:
    """Another model than the default one (MQL from 80 points), named with --model."""
    return model_file(tmp_path, "model.v2", (DEFAULT_VERSION, V2), THRESHOLD_80)


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def counts(path: Path) -> dict[str, int]:
    tables = ("contacts", "events", "write_backlog", *COMPUTED)
    return {t: int(str(rows(path, f"SELECT count(*) FROM {t}")[0][0])) for t in tables}


def sent(sb: HubSpotSandbox) -> dict[str, dict[str, str]]:
    """The properties HubSpot was sent per contact (the time of scoring left out)."""
    out: dict[str, dict[str, str]] = {}
    for r in sb.requests:
        if r.method != "GET" and r.path.endswith("/contacts/batch/update"):
            assert isinstance(r.body, dict)
            for item in r.body["inputs"]:
                props = dict(item["properties"])
                props.pop("leadscore_scored_at", None)
                out[str(item["id"])] = props
    return out


def writes_seen(sb: HubSpotSandbox) -> list[str]:
    """Every request that could change the portal (searches are POSTs that read)."""
    return [
        f"{r.method} {r.path}"
        for r in sb.requests
        if r.method != "GET" and not r.path.endswith("/search")
    ]


def test_a_dry_run_backfill_with_a_model_previews_what_it_would_write(
    sandbox: HubSpotSandbox, tmp_path: Path, model_v2: Path
) -> None:
    res = CliRunner().invoke(cli, [*BACKFILL, "--dry-run", "--model", str(model_v2)])
    assert res.exit_code == 0, res.output
    lines = [line.rstrip() for line in res.output.splitlines()]
    assert "Would update 54 contact(s): the first 20" in lines
    assert lines[-4:-2] == [
        "…and 34 more",
        "Would update 54 contact(s) (dry run, nothing written).",
    ]
    assert re.fullmatch(
        r"backfill hubspot ok: pulled 54, new events 2,342, scored 54, written 0, repaired 0, "
        r"unchanged 0, dead-lettered 0, API calls 4 \(0 rate-limited\), [0-9.]+s",
        lines[-2],
    ), lines[-2]
    assert re.fullmatch(
        r"Backfill 2020-01-01 00:00 UTC → [0-9-]+ [0-9:]+ UTC done: 4 page\(s\), 54 contact\(s\), "
        r"2342 event\(s\); live cursors untouched\.",
        lines[-1],
    ), lines[-1]
    assert "dana.whitfield@acme-analytics.com" in res.output  # the table's first row
    assert writes_seen(sandbox) == []


@pytest.mark.parametrize("real", ["backfill", "sync"])
def test_the_run_after_a_dry_run_backfill_writes_what_it_previewed(
    sandbox: HubSpotSandbox, tmp_path: Path, model_v2: Path, real: str
) -> None:
    runner = CliRunner()
    model = ["--model", str(model_v2)]
    dry = runner.invoke(cli, [*BACKFILL, "--dry-run", "--json", *model])
    assert dry.exit_code == 0, dry.output
    doc = json.loads(dry.stdout)
    assert (doc["kind"], doc["status"], doc["dry_run"]) == ("backfill", "ok", True)
    assert (doc["to_write"], doc["written"], doc["companies_to_write"]) == (54, 0, 0)
    assert doc["backfill"]["stage"] == "done" and doc["backfill"]["contacts"] == 54
    previewed = {
        c["id"]: {k: v for k, v in c["properties"].items() if k != "scored_at"}
        for c in doc["changes"]
    }
    assert len(previewed) == 54
    assert writes_seen(sandbox) == []
    again = runner.invoke(cli, [*(BACKFILL if real == "backfill" else [real]), *model])
    assert again.exit_code == 0, again.output
    assert "written 54," in again.output
    got = sent(sandbox)
    assert set(got) == set(previewed)
    # the preview names properties by their score fields, the CRM by its property names:
    # the same values, contact by contact
    for cid, props in previewed.items():
        assert sorted(got[cid].values()) == sorted(props.values()), cid
    state = tmp_path / "state.db"
    assert rows(state, "SELECT version FROM active_model") == [("2026.12-v2",)]
    assert counts(state)["scores"] == 54 and counts(state)["write_backlog"] == 0
