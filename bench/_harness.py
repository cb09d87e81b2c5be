"""Shared set-up for the benchmarks: a HubSpot sandbox on loopback, the SDK adapter, a state DB
and the pipeline, as the tests build them (tests/conftest.py), with fast time scales."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from connector.crm.hubspot import HubSpotAdapter
from connector.enrich.enricher import build_enricher
from connector.model.loader import load_model
from connector.pipeline import Pipeline, SyncOptions
from connector.retry import RetryPolicy
from connector.sandbox.hubspot import HubSpotSandbox
from connector.settings import load_settings
from connector.state.store import StateStore

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@dataclass
class Bench:
    sb: HubSpotSandbox
    adapter: HubSpotAdapter
    store: StateStore
    pipeline: Pipeline
    clock: list[datetime]

    def tick(self, minutes: float) -> None:
        """Advance our clock and the sandbox portal's clock together."""
        from datetime import timedelta

        self.clock[0] += timedelta(minutes=minutes)
        self.sb.portal.advance(minutes * 60)


@contextmanager
def bench_harness(
    portal: Any,
    *,
    state_path: Path | None = None,
    search_per_second: float = 10_000,
    **sandbox_kwargs: Any,
) -> Iterator[Bench]:
    kwargs: dict[str, Any] = {
        "now": NOW,
        "search_rate_limit": 10_000,
        "time_scale": 0.001,
        "daily_limit": 100_000_000,
    }
    kwargs.update(sandbox_kwargs)
    with tempfile.TemporaryDirectory() as tmp, HubSpotSandbox.start(portal, **kwargs) as sb:
        adapter = HubSpotAdapter(
            SecretStr(sb.token),
            sb.url,
            search_per_second=search_per_second,
            timeout_s=30,
            retry=RetryPolicy(attempts=5, base_seconds=0.01),
        )
        adapter.ensure_properties()
        sb.clear_log()
        store = StateStore.open(state_path or Path(tmp) / "state.db")
        clock = [NOW]
        pipeline = Pipeline(
            store,
            adapter,
            load_model(),
            enricher=build_enricher(load_settings(), cache=store.company_cache),
            options=SyncOptions(),
            clock=lambda: clock[0],
        )
        try:
            yield Bench(sb, adapter, store, pipeline, clock)
        finally:
            adapter.close()
            store.close()
