"""Everything `leadscore run` starts, wired around one pipeline: the scheduler (`Worker`), the
HTTP endpoint, the metrics, the health check and, with webhooks, the receiver and its
hand-raiser thread. `leadscore run` and the tests build it the same way."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from connector.pipeline import Pipeline, SyncSummary
from connector.worker.metrics import WorkerMetrics
from connector.worker.passes import refresh_contacts
from connector.worker.scheduler import Worker
from connector.worker.server import WEBHOOK_PATH, HealthCheck, WorkerServer
from connector.worker.webhooks import ContactQueue, HandRaiserWorker, StoredIds, WebhookReceiver

log = logging.getLogger(__name__)


class WorkerService:
    def __init__(
        self,
        pipeline: Pipeline,
        *,
        state_path: str | Path,
        sync_interval_s: float,
        rescore_interval_s: float,
        http_host: str = "127.0.0.1",
        http_port: int = 0,
        client_secret: str | None = None,
        webhook_url: str | None = None,
        health_max_age: timedelta | None = None,
        webhook_poll_s: float = 0.2,
    ) -> None:
        self.pipeline = pipeline
        crm = pipeline.crm
        self.metrics = WorkerMetrics(crm)
        self.metrics.baseline(pipeline.adapter.stats)
        self.worker = Worker(
            pipeline,
            sync_interval_s=sync_interval_s,
            rescore_interval_s=rescore_interval_s,
            metrics=self.metrics,
        )
        last = pipeline.store.last_successful_run(crm, "sync")
        if last is not None and last.finished_at is not None:
            self.metrics.set_last_success("sync", last.finished_at)
        self.health = HealthCheck(
            state_path,
            crm,
            health_max_age or timedelta(seconds=3 * sync_interval_s),
            pipeline.clock,
        )
        self.receiver: WebhookReceiver | None = None
        self.hand_raisers: HandRaiserWorker | None = None
        self.webhook_ids: StoredIds | None = None
        if client_secret:
            self.queue = ContactQueue()
            try:  # handled event ids live in the state DB: a restart forgets none
                self.webhook_ids = StoredIds(state_path)
            except BaseException:
                self.health.close()
                raise
            self.receiver = WebhookReceiver(
                client_secret, self.queue, recent=self.webhook_ids, metrics=self.metrics
            )
            self.hand_raisers = HandRaiserWorker(
                self.queue,
                self.worker.lock,
                lambda ids: refresh_contacts(pipeline, ids),
                on_done=self._refreshed,
                poll_s=webhook_poll_s,
            )
            self.worker.interleave = self.hand_raisers.drain
        try:
            self.server = WorkerServer(
                http_host,
                http_port,
                health=self.health,
                metrics=self.metrics,
                webhooks=self.receiver,
                public_webhook_url=webhook_url,
            )
        except BaseException:
            self.health.close()
            if self.webhook_ids is not None:
                self.webhook_ids.close()
            raise

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def endpoints(self) -> str:
        return "/healthz, /metrics" + (f", POST {WEBHOOK_PATH}" if self.receiver else "")

    def _refreshed(self, items: Mapping[str, float], summary: Any) -> None:
        if not isinstance(summary, SyncSummary):
            return
        self.worker.record(summary)
        if summary.status == "ok":
            now = time.monotonic()
            for queued_at in items.values():
                self.metrics.hand_raiser_latency.labels(self.metrics.crm).observe(now - queued_at)

    def start(self, *, schedule: bool = True) -> None:
        """Serve HTTP, start the hand-raiser thread and (unless `schedule=False`) the jobs."""
        self.server.start()
        if self.hand_raisers is not None:
            self.hand_raisers.start()
        if schedule:
            self.worker.start()

    def request_stop(self) -> None:
        """Signal-safe: the run in flight stops at its next committed boundary."""
        self.worker.request_stop()

    def stop(self) -> None:
        """Wait for the run in flight to stop at a committed boundary, then close everything."""
        try:
            self.worker.shutdown(wait=True)
            if self.hand_raisers is not None:
                self.hand_raisers.stop()
        finally:
            self.server.stop()  # also closes the socket of a server never started
            self.health.close()
            if self.webhook_ids is not None:
                self.webhook_ids.close()

    def __enter__(self) -> WorkerService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
