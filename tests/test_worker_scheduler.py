"""The worker's scheduler on a fast clock against the sandbox, and its /metrics and /healthz."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from connector.pipeline import SyncSummary
from connector.sandbox.demo_portal import build_demo_portal
from connector.worker.scheduler import SYNC_JOB
from connector.worker.server import HealthCheck
from connector.worker.service import WorkerService

from .conftest import NOW, Harness, make_harness


def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Harness]:
    yield from make_harness(tmp_path, build_demo_portal())


def service_for(h: Harness, tmp_path: Path, **kw: Any) -> WorkerService:
    args: dict[str, Any] = {
        "state_path": tmp_path / "state.db",
        "sync_interval_s": 3600,
        "rescore_interval_s": 3600,
    }
    args.update(kw)
    return WorkerService(h.pipeline, **args)


def runs(service: WorkerService, kind: str) -> list[SyncSummary]:
    return [s for s in list(service.worker.history) if s.kind == kind]


def test_scheduler_runs_two_syncs_then_a_decay_rescore_that_pulls_nothing(
    demo: Harness, tmp_path: Path
) -> None:
    service = service_for(demo, tmp_path, sync_interval_s=0.3, rescore_interval_s=0.45)
    with service:
        service.start()
        assert wait_for(lambda: len(runs(service, "sync")) >= 2), list(service.worker.history)
        first, second = runs(service, "sync")[:2]
        assert first.status == second.status == "ok"
        assert first.written > 0
        assert second.written == 0 and second.unchanged > 0  # idle resync writes nothing
        # every rescore so far found nothing due: no API call at all
        assert all(s.api_calls == 0 for s in runs(service, "rescore"))
        # now only the rescore job runs; the clock jumps past the 60-day window
        service.worker.scheduler.pause_job(SYNC_JOB)
        with service.worker.lock:  # the sync in flight (if any) has finished
            demo.clock[0] = NOW + timedelta(days=70)
            demo.sb.clear_log()
            before = len(service.worker.history)
        assert wait_for(
            lambda: any(s.kind == "rescore" for s in list(service.worker.history)[before:])
        )
        decay = next(s for s in list(service.worker.history)[before:] if s.kind == "rescore")
    assert decay.status == "ok", decay.message
    assert decay.pulled == 0 and decay.new_events == 0
    assert decay.scored > 0 and decay.written > 0
    requests = demo.sb.requests
    assert requests and all(r.path.endswith("/batch/update") for r in requests)
    by_id = {w["id"]: w["properties"] for w in demo.writes()}
    assert by_id["101"]["leadscore_score"] == "0"  # Dana's engagement has decayed away
    assert demo.sb.contact("101").properties["lifecyclestage"] == "marketingqualifiedlead"
    assert service.worker.max_concurrent == 1
    runs_in_db = demo.store.last_runs("hubspot", 50)
    assert {r.kind for r in runs_in_db} == {"sync", "rescore"}
    assert all(r.status in ("ok", "stopped") for r in runs_in_db)


def test_two_jobs_never_use_the_pipeline_at_once(demo: Harness, tmp_path: Path) -> None:
    inside = [0]
    peak = [0]
    kinds: list[str] = []
    real_run_pass = demo.pipeline.run_pass

    def slow_run_pass(kind: str, body: Any) -> SyncSummary:
        inside[0] += 1
        peak[0] = max(peak[0], inside[0])
        kinds.append(kind)
        try:
            time.sleep(0.15)  # both jobs are due again long before this returns
            return real_run_pass(kind, body)
        finally:
            inside[0] -= 1

    demo.pipeline.run_pass = slow_run_pass  # type: ignore[method-assign]
    service = service_for(demo, tmp_path, sync_interval_s=0.05, rescore_interval_s=0.05)
    with service:
        service.start()
        assert wait_for(lambda: kinds.count("rescore") >= 2 and kinds.count("sync") >= 2)
    assert peak[0] == 1
    assert service.worker.max_concurrent == 1


def test_a_crashing_run_is_recorded_as_failed_and_the_worker_goes_on(
    demo: Harness, tmp_path: Path
) -> None:
    service = service_for(demo, tmp_path)
    calls = [0]
    real = demo.pipeline.save_contact_page

    def flaky(page: Any, summary: Any) -> set[str]:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("boom")
        return real(page, summary)

    demo.pipeline.save_contact_page = flaky  # type: ignore[method-assign]
    with service:
        assert service.worker.run_sync() is None  # logged, not raised
        last = demo.store.last_runs("hubspot", 1)[0]
        assert last.status == "failed" and "RuntimeError: boom" in (last.message or "")
        code, _ = service.health()
        assert code == 503  # a crashed sync never counts as a success
        again = service.worker.run_sync()
        assert again is not None and again.status == "ok"
        assert service.health()[0] == 200


def test_metrics_endpoint_counts_a_sync(demo: Harness, tmp_path: Path) -> None:
    service = service_for(demo, tmp_path)
    with service:
        service.start(schedule=False)
        summary = service.worker.run_sync()
        assert summary is not None and summary.status == "ok"
        code, body = get(service.url + "/metrics")
    assert code == 200
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted({"crm": "hubspot", **labels}.items())))]

    assert value("leadscore_contacts_scored_total") == summary.scored > 0
    assert value("leadscore_contacts_written_total") == summary.written > 0
    assert value("leadscore_write_unchanged_total") == summary.unchanged
    assert value("leadscore_api_rate_limited_total") == summary.rate_limited == 0
    api = {
        dict(labels)["kind"]: v
        for (name, labels), v in samples.items()
        if name == "leadscore_api_calls_total"
    }
    assert api == {k: float(v) for k, v in summary.api_calls_by_kind.items()}
    assert sum(api.values()) == summary.api_calls
    assert value("leadscore_dead_letters_total", kind="write") == summary.dead_lettered == 0
    assert value("leadscore_dead_letters_open") == 0
    assert value("leadscore_runs_total", kind="sync", status="ok") == 1
    assert value("leadscore_run_duration_seconds_count", kind="sync") == 1
    assert value("leadscore_last_success_timestamp_seconds", kind="sync") == NOW.timestamp()


def metric_samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    code, body = get(url + "/metrics")
    assert code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_metrics_count_the_accounts_scored_and_the_mqas(
    demo_accounts: Harness, tmp_path: Path
) -> None:
    """With accounts on: `leadscore_accounts_scored_total` counts the accounts each run scored
    and `leadscore_mqa_accounts` is the state DB's MQA count after a run that scored some; an
    idle sync scores none and leaves both as they were. Accounts off: both 0."""
    store = demo_accounts.store
    crm = (("crm", "hubspot"),)
    service = service_for(demo_accounts, tmp_path)
    with service:
        service.start(schedule=False)
        first = service.worker.run_sync()
        assert first is not None and first.status == "ok"
        after_first = metric_samples(service.url)
        demo_accounts.clock[0] += timedelta(minutes=5)
        idle = service.worker.run_sync()
        assert idle is not None and idle.status == "ok"
        after_idle = metric_samples(service.url)
    mqas = store.count_mqas("hubspot")
    scored = store.count_account_scores("hubspot")
    assert (first.accounts_scored, mqas, scored) == (12, 6, 12)
    assert first.counts()["accounts_scored"] == 12
    assert after_first[("leadscore_accounts_scored_total", crm)] == 12
    assert after_first[("leadscore_mqa_accounts", crm)] == 6
    assert idle.accounts_scored == 0
    assert after_idle[("leadscore_accounts_scored_total", crm)] == 12
    assert after_idle[("leadscore_mqa_accounts", crm)] == 6


def test_a_restarted_worker_shows_the_mqas_after_a_first_pass_that_scores_none(
    demo_accounts: Harness, tmp_path: Path
) -> None:
    """The MQA gauge is the state DB's count from the first pass on, also when that pass
    scores no account (a restart on a settled portal): before, it stayed unset until some
    pass scored an account, and a dashboard showed no data after every restart."""
    assert demo_accounts.pipeline.sync().accounts_scored == 12  # scored before the restart
    demo_accounts.clock[0] += timedelta(minutes=5)
    service = service_for(demo_accounts, tmp_path)
    with service:
        service.start(schedule=False)
        first = service.worker.run_sync()
        assert first is not None and first.status == "ok" and first.accounts_scored == 0
        samples = metric_samples(service.url)
    crm = (("crm", "hubspot"),)
    assert samples[("leadscore_mqa_accounts", crm)] == 6
    assert samples[("leadscore_accounts_scored_total", crm)] == 0


def test_the_mqa_gauge_follows_a_run_that_only_drops_an_account(tmp_path: Path) -> None:
    """Marketo: both members of an MQA of two are deleted; the next run scores no account,
    only drops that account's score, and the gauge shows the state DB's count after it
    (before, it kept the count of the last run that scored an account)."""
    from .test_sync_accounts import marketo_accounts

    clock = [NOW]
    crm = (("crm", "marketo"),)
    with marketo_accounts(tmp_path, clock) as (sb, pipeline):
        store = pipeline.store
        service = WorkerService(
            pipeline, state_path=tmp_path / "state.db", sync_interval_s=3600,
            rescore_interval_s=3600,
        )  # fmt: skip
        with service:
            service.start(schedule=False)
            first = service.worker.run_sync()
            assert first is not None and first.status == "ok"
            mqas = store.count_mqas("marketo")
            assert metric_samples(service.url)[("leadscore_mqa_accounts", crm)] == mqas
            pair = next(
                a.account_id for a in store.top_accounts("marketo", 100) if a.mqa and a.members == 2
            )
            sb.instance.advance(14 * 60)
            for m in store.account_members("marketo", pair):
                sb.delete_lead(int(m.contact_id))
            clock[0] = NOW + timedelta(minutes=15)
            dropped = service.worker.run_sync()
            assert dropped is not None and dropped.status == "ok"
            samples = metric_samples(service.url)
        assert (dropped.archived, dropped.accounts_scored) == (2, 0)
        assert store.account_score("marketo", pair) is None
        assert store.count_mqas("marketo") == mqas - 1
        assert samples[("leadscore_mqa_accounts", crm)] == mqas - 1


def test_metrics_show_no_account_without_accounts(demo: Harness, tmp_path: Path) -> None:
    service = service_for(demo, tmp_path)
    with service:
        service.start(schedule=False)
        summary = service.worker.run_sync()
        assert summary is not None and summary.status == "ok" and summary.scored > 0
        samples = metric_samples(service.url)
    crm = (("crm", "hubspot"),)
    assert summary.accounts_scored == 0
    assert samples[("leadscore_accounts_scored_total", crm)] == 0
    assert ("leadscore_mqa_accounts", crm) not in samples  # never set: no account scored


def test_healthz_is_200_after_a_sync_and_503_when_stale_or_never_synced(
    demo: Harness, tmp_path: Path
) -> None:
    service = service_for(demo, tmp_path, sync_interval_s=60)  # stale after 3 minutes
    with service:
        service.start(schedule=False)
        code, body = get(service.url + "/healthz")
        assert code == 503
        assert json.loads(body)["status"] == "no successful sync yet"
        assert service.worker.run_sync() is not None
        code, body = get(service.url + "/healthz")
        answer = json.loads(body)
        assert code == 200, answer
        assert answer["status"] == "ok" and answer["db"] == "ok"
        assert answer["last_successful_sync_age_seconds"] == 0
        demo.clock[0] = NOW + timedelta(minutes=2)
        assert get(service.url + "/healthz")[0] == 200
        demo.clock[0] = NOW + timedelta(minutes=3, seconds=1)
        code, body = get(service.url + "/healthz")
        answer = json.loads(body)
        assert code == 503
        assert answer["status"] == "stale" and answer["last_successful_sync_age_seconds"] == 181
        assert get(service.url + "/nope")[0] == 404


def test_healthz_is_503_when_the_db_does_not_answer(tmp_path: Path) -> None:
    (tmp_path / "not-a-db").write_bytes(b"this is not sqlite" * 100)
    check = HealthCheck(tmp_path / "not-a-db", "hubspot", timedelta(minutes=45))
    try:
        code, body = check()
    finally:
        check.close()
    assert code == 503
    assert body["db"].startswith("error") and body["status"] == "db error"
