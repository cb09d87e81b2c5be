"""The worker's schedule: an incremental sync every `sync_interval`, a due-contacts rescore every
`rescore_interval` (APScheduler 3, `BackgroundScheduler`).

- At most one instance of each job (`max_instances=1`, missed runs coalesced into one), and the
  two never touch the pipeline at the same time: every use of the pipeline (its SQLite
  connection and CRM adapter are not thread-safe) holds `Worker.lock`, which webhook
  refreshes share.
- Stopping is cooperative: `request_stop()` makes the pipeline's next checkpoint (after a
  committed page, before a score chunk or a write batch) raise `StopRunError`, so the run in
  flight ends with everything committed up to that boundary and nothing half-done; the next
  run resumes from the committed cursor. `shutdown()` then waits for it.
- While it runs, the worker holds a lease on the state DB (a `jobs` row with its pid and host,
  renewed after each run and every few minutes within one), so `leadscore rescore` refuses to
  apply meanwhile; and nothing in this process forks (`connector.ops.parallel.single_process`):
  a parallel rescore asked for here runs in one process.
- Intervals are plain seconds (`sync_interval_s`, `rescore_interval_s`), so tests run the real
  scheduler on a fast clock; the pipeline's own clock (scoring's `now`) is injectable as well.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from connector.errors import ConnectorError, StopRunError
from connector.ops.parallel import single_process
from connector.pipeline import Pipeline, SyncSummary
from connector.worker.metrics import WorkerMetrics
from connector.worker.passes import rescore_due

log = logging.getLogger(__name__)

SYNC_JOB = "sync"
RESCORE_JOB = "rescore"
MIN_LEASE = timedelta(hours=2)  # what another host waits after the worker's last renewal
LEASE_RENEW_S = 300.0  # renewed at most this often within a long run


class Worker:
    def __init__(
        self,
        pipeline: Pipeline,
        *,
        sync_interval_s: float,
        rescore_interval_s: float,
        metrics: WorkerMetrics | None = None,
        lock: threading.RLock | None = None,
        first_sync_delay_s: float = 0.0,
        history: int = 100,
    ) -> None:
        if sync_interval_s <= 0 or rescore_interval_s <= 0:
            raise ValueError("intervals must be positive")
        self.pipeline = pipeline
        self.sync_interval_s = sync_interval_s
        self.rescore_interval_s = rescore_interval_s
        self.first_sync_delay_s = first_sync_delay_s
        self.metrics = metrics
        self.lock = lock or threading.RLock()
        self.stopping = threading.Event()
        # work allowed to run inside a sync between two committed pages (webhook refreshes)
        self.interleave: Callable[[], object] | None = None
        self.history: deque[SyncSummary] = deque(maxlen=history)
        self.listeners: list[Callable[[SyncSummary], None]] = []
        self.max_concurrent = 0  # how many passes ever ran at once (stays 1)
        self._active = 0
        self._count_lock = threading.Lock()
        self._started = contextlib.ExitStack()
        self._holds_lease = False
        self._lease_renewed = 0.0
        self.lease = max(MIN_LEASE, timedelta(seconds=3 * max(sync_interval_s, rescore_interval_s)))
        pipeline.checkpoint = self._checkpoint
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(max_workers=2)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._started.enter_context(single_process("inside the leadscore run worker's threads"))
        with self.lock:
            # a StateError when another worker holds it: nothing scheduled
            self.pipeline.store.claim_run_lease(self.lease)
            self._holds_lease = True
            self._lease_renewed = time.monotonic()
        now = datetime.now(UTC)
        self.scheduler.add_job(
            self.run_sync,
            IntervalTrigger(seconds=self.sync_interval_s, timezone=UTC),
            id=SYNC_JOB,
            name="incremental sync",
            next_run_time=now + timedelta(seconds=self.first_sync_delay_s),
            max_instances=1,
            coalesce=True,
            replace_existing=True,
        )
        self.scheduler.add_job(
            self.run_rescore,
            IntervalTrigger(seconds=self.rescore_interval_s, timezone=UTC),
            id=RESCORE_JOB,
            name="due-contacts rescore",
            max_instances=1,
            coalesce=True,
            replace_existing=True,
        )
        self.scheduler.start()

    def request_stop(self) -> None:
        """Ask the run in flight to stop at its next committed boundary (signal-safe)."""
        self.stopping.set()

    def shutdown(self, wait: bool = True) -> None:
        """Stop scheduling and wait for the run in flight to reach a committed boundary."""
        self.stopping.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)
        if self._holds_lease:
            with self.lock:
                self._holds_lease = False
                try:
                    self.pipeline.store.release_run_lease()
                except ConnectorError as exc:  # a dead pid's lease is ignored anyway
                    log.warning("could not release the state DB lease: %s", exc)
        self._started.close()

    @property
    def busy(self) -> bool:
        return self._active > 0

    # -- the jobs --------------------------------------------------------------------------
    def run_sync(self) -> SyncSummary | None:
        return self._run(SYNC_JOB, self.pipeline.sync)

    def run_rescore(self) -> SyncSummary | None:
        return self._run(RESCORE_JOB, lambda: rescore_due(self.pipeline))

    def _run(self, kind: str, fn: Callable[[], SyncSummary]) -> SyncSummary | None:
        with self.lock:
            if self.stopping.is_set():
                return None
            with self._count_lock:
                self._active += 1
                self.max_concurrent = max(self.max_concurrent, self._active)
            try:
                summary = fn()
            except Exception:  # a bug must not kill the worker: the next run tries again
                log.exception("%s run crashed; the next run resumes from the committed state", kind)
                if self.metrics is not None:
                    self.metrics.runs.labels(self.metrics.crm, kind, "crashed").inc()
                    self.metrics.observe_api(self.pipeline.adapter.stats)
                return None
            finally:
                with self._count_lock:
                    self._active -= 1
            self.record(summary)
            return summary

    def _renew_lease(self, force: bool = False) -> None:
        """Hold the state DB's run lease (caller holds the lock)."""
        now = time.monotonic()
        if not self._holds_lease or (not force and now - self._lease_renewed < LEASE_RENEW_S):
            return
        try:
            self.pipeline.store.hold_run_lease(self.lease)
        except ConnectorError as exc:  # the runs report a DB that stays unusable
            log.warning("could not renew the state DB lease: %s", exc)
            return
        self._lease_renewed = now

    def record(self, summary: SyncSummary) -> None:
        """Metrics, history and listeners for a finished run (caller holds the lock)."""
        self._renew_lease(force=True)
        if self.metrics is not None:
            self.metrics.observe_run(summary, finished_at=self.pipeline.clock())
            self.metrics.observe_api(self.pipeline.adapter.stats)
            store, crm = self.pipeline.store, self.pipeline.crm
            _gauge(
                "dead letters",
                store.count_open_dead_letters,
                crm,
                self.metrics.set_open_dead_letters,
            )
            # the state DB's MQA count after every run: a run may score none and still move
            # it (one that only drops accounts whose members all left; a rescore run by
            # another process), and a worker's first pass may score none. One count of a
            # partial index of the MQAs (migration 013: ~2 ms at 100,000 accounts)
            stage = self.pipeline.accounts
            if stage is not None and stage.enabled():
                _gauge("MQAs", store.count_mqas, crm, self.metrics.set_mqa_accounts)
        if summary.status not in ("ok", "stopped"):
            log.error("%s run ended %s: %s", summary.kind, summary.status, summary.message)
        self.history.append(summary)
        for listener in list(self.listeners):
            try:
                listener(summary)
            except Exception:
                log.exception("run listener failed")

    def _checkpoint(self, where: str) -> None:
        if self.stopping.is_set():
            raise StopRunError(
                "shutdown requested: stopped at a committed boundary; the next run resumes here"
            )
        self._renew_lease()
        if where == "page" and self.interleave is not None:
            self.interleave()


def _gauge(what: str, count: Callable[[str], int], crm: str, put: Callable[[int], None]) -> None:
    """A gauge set from a count of the state DB; a count that fails is logged, and never
    fails the run."""
    try:
        n = count(crm)
    except Exception:
        log.debug("could not count %s", what, exc_info=True)
    else:
        put(n)
