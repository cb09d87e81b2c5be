"""`leadscore run` and the parallel rescore: nothing forks inside the threaded worker (a fork
copies one thread and every lock the others held), and `leadscore rescore` does not apply
beside a running worker (it holds a lease on the state DB)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import cli
from connector.ops import parallel
from connector.ops.parallel import by_id_range, plan_workers
from connector.state.codec import encode_dt
from connector.state.leases import process_start
from connector.state.store import RUN_WORKER_JOB, StateStore
from connector.synth import synth_dataset
from connector.worker.scheduler import Worker

from .conftest import NOW, Harness
from .test_ops_rescore import THRESHOLD_80, model_file

CRM = "hubspot"


@pytest.fixture
def other_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StateStore]:
    """40 contacts in a state DB of their own, and a process per contact allowed: by_id_range
    with 2 workers forks, where forking is safe."""
    monkeypatch.setattr(parallel, "MIN_CONTACTS_PER_WORKER", 1)
    store = StateStore.open(tmp_path / "other.db")
    contacts = [c for c, _, _ in synth_dataset(40, 0, NOW, seed=3)]
    with store.transaction():
        store.upsert_contacts(CRM, contacts, at=NOW)
    yield store
    store.close()


def pids(store: StateStore) -> list[int]:
    return by_id_range(store, CRM, lambda st, lo, hi: os.getpid(), 2)


def test_nothing_forks_inside_the_run_worker_and_its_scheduled_rescore_runs(
    demo: Harness, other_store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    me = os.getpid()
    forked = pids(other_store)  # the control: from the main thread of a plain process
    assert len(forked) == 2 and me not in forked

    # from any thread but the main one: one process
    seen: list[object] = []
    t = threading.Thread(target=lambda: seen.append((plan_workers(other_store, CRM, 2),)))
    t.start()
    t.join()
    assert seen == [(1,)]

    forks: list[str] = []

    def no_fork() -> int:
        forks.append(threading.current_thread().name)
        raise AssertionError("forked inside the run worker")

    assert demo.pipeline.sync().status == "ok"
    worker = Worker(demo.pipeline, sync_interval_s=3600, rescore_interval_s=0.05)
    worker.first_sync_delay_s = 3600
    monkeypatch.setattr(os, "fork", no_fork)
    worker.start()
    try:
        # even from the main thread while the worker's threads run
        assert plan_workers(other_store, CRM, 2) == 1
        assert pids(other_store) == [me]
        deadline = time.monotonic() + 10
        while not any(s.kind == "rescore" for s in list(worker.history)):
            assert time.monotonic() < deadline, "no scheduled rescore ran"
            time.sleep(0.02)
    finally:
        worker.shutdown()
    rescore = next(s for s in worker.history if s.kind == "rescore")
    assert rescore.status == "ok"
    assert forks == []
    monkeypatch.undo()  # os.fork back, and the real minimum of contacts per process
    monkeypatch.setattr(parallel, "MIN_CONTACTS_PER_WORKER", 1)
    again = pids(other_store)  # the worker stopped: forking is safe again
    assert len(again) == 2 and me not in again


def test_rescore_refuses_to_apply_while_a_run_worker_holds_the_state_db(
    demo: Harness, tmp_path: Path
) -> None:
    assert demo.pipeline.sync().status == "ok"
    state = str(tmp_path / "state.db")
    model = str(model_file(tmp_path, "t80", THRESHOLD_80))
    env = {"LEADSCORE_HUBSPOT_TOKEN": demo.sb.token, "LEADSCORE_HUBSPOT_BASE_URL": demo.sb.url}
    worker = Worker(demo.pipeline, sync_interval_s=3600, rescore_interval_s=3600)
    worker.first_sync_delay_s = 3600
    worker.start()
    try:
        assert demo.store.get_job(RUN_WORKER_JOB) == {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "start": process_start(os.getpid()),  # a later process of the same pid is another
            "lease_s": 10800.0,  # 3 x the longer interval (at least 2 hours)
        }
        demo.sb.clear_log()
        res = CliRunner().invoke(cli, ["--state", state, "rescore", "--model", model], env=env)
        assert res.exit_code == 6, res.output
        assert res.output == (
            f"error: a `leadscore run` worker (pid {os.getpid()} on {socket.gethostname()}) is "
            f"using {state}; stop it, apply the rescore, then start it again (it resumes where "
            "it stopped). `leadscore rescore --dry-run` previews meanwhile\n"
        )
        assert demo.sb.requests == []  # no sync, no write
        preview = CliRunner().invoke(
            cli, ["--state", state, "rescore", "--dry-run", "--model", model], env=env
        )
        assert preview.exit_code == 0, preview.output
        assert "Would update" in preview.output
    finally:
        worker.shutdown()
    assert demo.store.get_job(RUN_WORKER_JOB) is None  # released on a clean stop
    res = CliRunner().invoke(cli, ["--state", state, "rescore", "--model", model], env=env)
    assert res.exit_code == 0, res.output
    assert "rescored with model" in res.output


def test_a_lease_counts_while_its_process_lives_or_within_its_term_elsewhere(
    tmp_path: Path,
) -> None:
    with StateStore.open(tmp_path / "s.db") as store:
        assert store.run_lease_holder() is None
        store.hold_run_lease(timedelta(hours=2))
        holder = store.run_lease_holder()
        assert holder is not None
        assert (holder["pid"], holder["host"]) == (os.getpid(), socket.gethostname())

        # the lease records when its process started: a restarted container's pid 1 (the
        # same pid on the same host, started later) is not the worker that took it
        start = store.get_job(RUN_WORKER_JOB)
        assert start is not None and start["start"] == process_start(os.getpid()) is not None

        def put(host: str, pid: int, age: timedelta, **more: int) -> None:
            store.db.execute(
                "UPDATE jobs SET state = ?, updated_at = ? WHERE name = ?",
                (
                    json.dumps({"pid": pid, "host": host, "lease_s": 7200.0, **more}),
                    encode_dt(datetime.now(UTC) - age),
                    RUN_WORKER_JOB,
                ),
            )

        dead = dead_pid()
        put(socket.gethostname(), dead, timedelta(0))  # this host, its process gone
        assert store.run_lease_holder() is None
        here = socket.gethostname()
        put(here, os.getpid(), timedelta(0), start=start["start"])  # this very process
        assert store.run_lease_holder() is not None
        put(here, os.getpid(), timedelta(0), start=start["start"] - 1)  # its pid, reused
        assert store.run_lease_holder() is None
        put("another-host", dead, timedelta(hours=1))  # elsewhere, renewed an hour ago
        other = store.run_lease_holder()
        assert other is not None and (other["pid"], other["host"]) == (dead, "another-host")
        put("another-host", dead, timedelta(hours=3))  # elsewhere, its term is over
        assert store.run_lease_holder() is None
        put("another-host", dead, timedelta(0))
        assert store.release_run_lease() is False  # not ours to release
        assert store.run_lease_holder() is not None


def dead_pid() -> int:
    """A pid that no process has: a child that has exited and been reaped."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_second_run_worker_on_the_same_state_db_refuses_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers would sync the same contacts; and before, the second's lease replaced the
    first's and its clean stop removed it, so `rescore` applied beside the first."""
    from connector.errors import StateError
    from connector.model.loader import load_model
    from connector.sandbox.demo_portal import build_portal
    from connector.sandbox.hubspot import HubSpotSandbox
    from connector.settings import load_settings
    from connector.worker.cli import run_worker

    path = tmp_path / "state.db"
    first = subprocess.Popen(["sleep", "60"])  # a live process on this host: worker A
    try:
        with StateStore.open(path) as store:
            store.hold_run_lease(timedelta(hours=2))
            store.db.execute(  # as worker A records itself: its pid and its start
                "UPDATE jobs SET state = json_set(state, '$.pid', ?, '$.start', ?) WHERE name = ?",
                (first.pid, process_start(first.pid), RUN_WORKER_JOB),
            )
            lease_a = store.get_job(RUN_WORKER_JOB)
        monkeypatch.setenv("LEADSCORE_ENV_FILE", str(tmp_path / "none.env"))
        with HubSpotSandbox.start(build_portal(5, events_per_contact=1, seed=5)) as sb:
            settings = load_settings(
                crm="hubspot",
                hubspot_base_url=sb.url,
                hubspot_token=sb.token,
                state_path=path,
                http_port=0,
            )
            stop = threading.Event()
            stop.set()  # without the refusal, the worker would start and stop at once (exit 0)
            with pytest.raises(StateError) as err:
                run_worker(settings, load_model(), stop=stop)
            assert str(err.value) == (
                f"another `leadscore run` worker (pid {first.pid} on {socket.gethostname()}) is "
                f"using {path}: one worker per state DB; stop it first"
            )
            assert err.value.exit_code == 6
            assert [r.path for r in sb.requests if r.method != "GET"] == []  # nothing synced
        with StateStore.open(path) as store:
            assert store.get_job(RUN_WORKER_JOB) == lease_a  # worker A's lease, untouched
        first.kill()
        first.wait()
        with StateStore.open(path) as store:  # A gone: its lease no longer counts
            store.claim_run_lease(timedelta(hours=2))
            job = store.get_job(RUN_WORKER_JOB)
            assert job is not None and job["pid"] == os.getpid()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
