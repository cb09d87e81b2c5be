"""`leadscore run` as a real process: SIGTERM in the middle of a sync stops it at a committed
page, exits 0, and the next sync finishes the job with nothing written twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from connector.cli import cli
from connector.crm.hubspot import HubSpotAdapter
from connector.model.loader import load_model
from connector.pipeline import Pipeline
from connector.retry import RetryPolicy
from connector.sandbox.demo_portal import build_portal
from connector.sandbox.hubspot import HubSpotSandbox
from connector.state.store import StateStore

TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
N_CONTACTS = 200
PAGE = 10  # 20 search pages at 4 per second: a sync that takes ~5 s


@pytest.fixture
def sandbox() -> Iterator[HubSpotSandbox]:
    portal = build_portal(N_CONTACTS, events_per_contact=1, seed=5)
    with HubSpotSandbox.start(
        portal, token=TOKEN, rate_limit=100_000, search_rate_limit=100_000
    ) as sb:
        adapter = HubSpotAdapter(SecretStr(TOKEN), sb.url, timeout_s=5)
        try:
            adapter.ensure_properties()
        finally:
            adapter.close()
        sb.clear_log()
        yield sb


def searches(sb: HubSpotSandbox) -> list[int | None]:
    return [r.status for r in sb.requests if r.path.endswith("/contacts/search")]


def worker_env(tmp_path: Path, sb: HubSpotSandbox) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADSCORE_")}
    env.update(
        {
            "LEADSCORE_ENV_FILE": str(tmp_path / "none.env"),
            "LEADSCORE_HUBSPOT_BASE_URL": sb.url,
            "LEADSCORE_HUBSPOT_TOKEN": TOKEN,
            "LEADSCORE_STATE_PATH": str(tmp_path / "state.db"),
            "LEADSCORE_HTTP_PORT": "0",
            "LEADSCORE_HUBSPOT_SEARCH_PAGE_SIZE": str(PAGE),
            "LEADSCORE_HUBSPOT_SEARCH_PER_SECOND": "4",
            "LEADSCORE_SYNC_INTERVAL_MINUTES": "60",
            "LEADSCORE_LOG_JSON": "true",
        }
    )
    return env


def test_sigterm_mid_sync_exits_0_at_a_committed_page_and_the_next_sync_finishes(
    tmp_path: Path, sandbox: HubSpotSandbox
) -> None:
    sb = sandbox
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from connector.cli import main; main()", "run"],
            env=worker_env(tmp_path, sb),
            cwd=tmp_path,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while len(searches(sb)) < 3 and time.monotonic() < deadline:
                assert proc.poll() is None, log_path.read_text()
                time.sleep(0.02)
            assert len(searches(sb)) >= 3, log_path.read_text()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    output = log_path.read_text()
    assert code == 0, output
    answered = searches(sb)
    assert all(s == 200 for s in answered)
    assert len(answered) < N_CONTACTS // PAGE  # it really stopped in the middle
    assert TOKEN not in output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    runs = [ln["summary"] for ln in lines if "summary" in ln]
    assert [(r["kind"], r["status"]) for r in runs] == [("sync", "stopped")]
    assert any("stopped cleanly" in ln["message"] for ln in lines)

    store = StateStore.open(tmp_path / "state.db")
    adapter = HubSpotAdapter(
        SecretStr(TOKEN),
        sb.url,
        timeout_s=5,
        search_per_second=1000,
        retry=RetryPolicy(attempts=3, base_seconds=0.01, max_seconds=0.05, seed=1),
    )
    try:
        stored = sorted(int(c.id) for c in store.iter_contacts("hubspot"))
        # every answered page was committed with its cursor, and nothing after it
        assert len(stored) == PAGE * len(answered)
        cursor = json.loads(store.get_cursor("hubspot", "contacts") or "{}")
        assert cursor["position"] == str(stored[-1])
        assert store.last_runs("hubspot", 1)[0].status == "stopped"
        assert sorted(int(i) for i in store.pending_write_ids("hubspot")) == stored
        written_before = [r for r in sb.requests if r.path.endswith("/batch/update")]

        resumed = Pipeline(store, adapter, load_model()).sync()
        assert resumed.status == "ok", resumed.message
        assert resumed.pulled == N_CONTACTS - len(stored)  # resumed after the committed page
    finally:
        adapter.close()
        store.close()
    ids = [
        str(i["id"])
        for r in sb.requests
        if r.path.endswith("/batch/update") and r.status in (200, 207) and isinstance(r.body, dict)
        for i in r.body.get("inputs", [])
    ]
    counts = Counter(ids)
    assert len(counts) == N_CONTACTS
    assert set(counts.values()) == {1}, [k for k, v in counts.items() if v > 1][:5]
    assert not written_before  # stopped while pulling: nothing had been written yet


def test_run_with_webhooks_needs_the_client_secret(
    tmp_path: Path, sandbox: HubSpotSandbox, no_log_handler: None
) -> None:
    env = worker_env(tmp_path, sandbox)
    result = CliRunner().invoke(cli, ["run", "--webhooks"], env=env, catch_exceptions=False)
    assert result.exit_code == 2
    assert "LEADSCORE_HUBSPOT_CLIENT_SECRET" in result.output
