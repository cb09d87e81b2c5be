"""Prometheus metrics of the worker, in a registry of their own (one per worker, so tests and
embedders never collide with the process-global default registry).

Fed after every run from its `SyncSummary` and from the adapter's monotonic `ApiStats` (API
calls and 429s are read from the adapter, so a pass nested in another is never counted twice).

Names (all labelled by `crm`):
    leadscore_contacts_scored_total            contacts scored
    leadscore_contacts_written_total           contacts written back (successful records)
    leadscore_companies_written_total          company records written back (account scoring)
    leadscore_accounts_scored_total            accounts scored (account scoring)
    leadscore_mqa_accounts                     marketing-qualified accounts in the state DB, after
                                               the last run that scored accounts
    leadscore_write_unchanged_total            contacts scored with nothing to write
    leadscore_contacts_repaired_total          contacts rewritten because the CRM showed other
                                               values than our last write (hand edits)
    leadscore_api_calls_total{kind}            CRM API calls by kind (contacts.search, …)
    leadscore_api_rate_limited_total           429 answers
    leadscore_dead_letters_total{kind}         records dead-lettered (write, input)
    leadscore_dead_letters_open                unresolved dead letters in the state DB
    leadscore_runs_total{kind,status}          finished runs (sync, rescore, webhook, backfill)
    leadscore_run_duration_seconds{kind}       run durations (histogram)
    leadscore_last_success_timestamp_seconds{kind}  end of the last run that finished ok
    leadscore_webhook_requests_total{result}   webhook POSTs: accepted, unauthorized, bad_request,
                                               busy
    leadscore_webhook_events_total{outcome}    webhook events: queued, duplicate, ignored
    leadscore_hand_raiser_seconds              webhook received → written back (histogram)
"""

from __future__ import annotations

import threading
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from connector.crm.base import ApiStats
from connector.pipeline import SyncSummary

DURATION_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class WorkerMetrics:
    def __init__(self, crm: str, registry: CollectorRegistry | None = None) -> None:
        self.crm = crm
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.scored = Counter("leadscore_contacts_scored", "Contacts scored", ["crm"], registry=r)
        self.written = Counter(
            "leadscore_contacts_written", "Contacts written back to the CRM", ["crm"], registry=r
        )
        self.companies_written = Counter(
            "leadscore_companies_written",
            "Company records written back to the CRM (account scoring)",
            ["crm"],
            registry=r,
        )
        self.accounts_scored = Counter(
            "leadscore_accounts_scored", "Accounts scored (account scoring)", ["crm"], registry=r
        )
        self.mqa_accounts = Gauge(
            "leadscore_mqa_accounts",
            "Marketing-qualified accounts in the state DB, after the last run that scored accounts",
            ["crm"],
            registry=r,
        )
        self.unchanged = Counter(
            "leadscore_write_unchanged",
            "Contacts scored whose CRM values were already right (nothing sent)",
            ["crm"],
            registry=r,
        )
        self.repaired = Counter(
            "leadscore_contacts_repaired",
            "Contacts rewritten because the CRM showed other values than our last write",
            ["crm"],
            registry=r,
        )
        self.api_calls = Counter(
            "leadscore_api_calls", "CRM API calls by kind", ["crm", "kind"], registry=r
        )
        self.rate_limited = Counter(
            "leadscore_api_rate_limited", "CRM answers 429 (rate limited)", ["crm"], registry=r
        )
        self.dead_letters = Counter(
            "leadscore_dead_letters",
            "Records dead-lettered (kind: write or input)",
            ["crm", "kind"],
            registry=r,
        )
        self.dead_letters_open = Gauge(
            "leadscore_dead_letters_open", "Unresolved dead letters", ["crm"], registry=r
        )
        self.runs = Counter(
            "leadscore_runs",
            "Finished runs by kind and status",
            ["crm", "kind", "status"],
            registry=r,
        )
        self.duration = Histogram(
            "leadscore_run_duration_seconds",
            "Run durations",
            ["crm", "kind"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.last_success = Gauge(
            "leadscore_last_success_timestamp_seconds",
            "Unix time at which the last successful run of this kind finished",
            ["crm", "kind"],
            registry=r,
        )
        self.webhook_requests = Counter(
            "leadscore_webhook_requests", "Webhook POSTs by result", ["crm", "result"], registry=r
        )
        self.webhook_events = Counter(
            "leadscore_webhook_events",
            "Webhook events by outcome",
            ["crm", "outcome"],
            registry=r,
        )
        self.hand_raiser_latency = Histogram(
            "leadscore_hand_raiser_seconds",
            "From a hand-raiser webhook's arrival to its contact written back",
            ["crm"],
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
            registry=r,
        )
        self._lock = threading.Lock()
        self._seen_calls: dict[str, int] = {}
        self._seen_limited = 0
        # make the always-present series exist (at 0) before the first run
        for c in (
            self.scored,
            self.written,
            self.companies_written,
            self.accounts_scored,
            self.repaired,
            self.unchanged,
            self.rate_limited,
        ):
            c.labels(crm)
        for kind in ("write", "input"):
            self.dead_letters.labels(crm, kind)

    # -- feeding ---------------------------------------------------------------------------
    def observe_run(self, summary: SyncSummary, finished_at: datetime | None = None) -> None:
        """Count one finished run (any kind)."""
        crm = self.crm
        self.scored.labels(crm).inc(summary.scored)
        self.written.labels(crm).inc(summary.written)
        self.companies_written.labels(crm).inc(summary.companies_written)
        self.accounts_scored.labels(crm).inc(summary.accounts_scored)
        self.unchanged.labels(crm).inc(summary.unchanged)
        self.repaired.labels(crm).inc(summary.repaired)
        self.dead_letters.labels(crm, "write").inc(summary.dead_lettered)
        self.dead_letters.labels(crm, "input").inc(summary.bad_records)
        self.runs.labels(crm, summary.kind, summary.status).inc()
        self.duration.labels(crm, summary.kind).observe(summary.duration_s)
        if summary.status == "ok" and finished_at is not None:
            self.last_success.labels(crm, summary.kind).set(finished_at.timestamp())

    def observe_api(self, stats: ApiStats) -> None:
        """Add what the adapter counted since the last call (its counters only grow)."""
        with self._lock:
            for kind, n in dict(stats.calls).items():
                delta = n - self._seen_calls.get(kind, 0)
                if delta > 0:
                    self.api_calls.labels(self.crm, kind).inc(delta)
                    self._seen_calls[kind] = n
            delta = stats.rate_limited - self._seen_limited
            if delta > 0:
                self.rate_limited.labels(self.crm).inc(delta)
                self._seen_limited = stats.rate_limited

    def baseline(self, stats: ApiStats) -> None:
        """Count only calls made from now on (the adapter may have been used before)."""
        with self._lock:
            self._seen_calls = dict(stats.calls)
            self._seen_limited = stats.rate_limited

    def set_open_dead_letters(self, n: int) -> None:
        self.dead_letters_open.labels(self.crm).set(n)

    def set_mqa_accounts(self, n: int) -> None:
        self.mqa_accounts.labels(self.crm).set(n)

    def set_last_success(self, kind: str, at: datetime) -> None:
        self.last_success.labels(self.crm, kind).set(at.timestamp())

    def webhook_request(self, result: str) -> None:
        self.webhook_requests.labels(self.crm, result).inc()

    def webhook_event(self, outcome: str, n: int = 1) -> None:
        if n:
            self.webhook_events.labels(self.crm, outcome).inc(n)

    def render(self) -> bytes:
        """The text exposition format (what GET /metrics answers)."""
        return generate_latest(self.registry)
