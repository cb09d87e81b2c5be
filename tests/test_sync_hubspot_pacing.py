"""Pacing from X-HubSpot-RateLimit-* headers, and ten-secondly 429s, against the sandbox."""

from __future__ import annotations

import time
from typing import Any

from connector.sandbox.base import Faults
from connector.sandbox.demo_portal import build_demo_portal, build_portal


def test_paced_from_the_headers_a_write_heavy_sync_gets_no_429(harness_factory: Any) -> None:
    # 20 calls per (scaled) 10 s window = 0.2 s here; the sync needs ~45 non-search calls
    portal = build_portal(3_000, events_per_contact=1, seed=9)
    for h in harness_factory(portal, rate_limit=20, time_scale=0.02):
        h.sb.reset_limits()
        started = time.monotonic()
        result = h.pipeline.sync()
        elapsed = time.monotonic() - started
        assert result.status == "ok", result.message
        assert result.written == 3_000
        assert result.rate_limited == 0
        assert [r for r in h.sb.requests if r.status == 429] == []
        limited_calls = sum(1 for r in h.sb.requests if not r.path.endswith("/search"))
        # the pacer had to wait: more calls than one window allows took more than one window
        assert limited_calls > 20
        assert elapsed > 0.2 * (limited_calls // 20 - 1)
        assert h.adapter.pacer.max_calls == 20  # learned from X-HubSpot-RateLimit-Max


def test_ten_secondly_429_bursts_back_off_and_the_run_goes_on(harness_factory: Any) -> None:
    for h in harness_factory(build_demo_portal()):
        h.sb.faults = Faults(seed=3, burst_429_every=4, burst_429_length=2)
        result = h.pipeline.sync()
        assert result.status == "ok", result.message
        assert result.rate_limited >= 2
        assert result.written == 54
        assert len(set(h.written_ids())) == 54
        bursts = [r for r in h.sb.requests if r.status == 429]
        assert bursts and all(r.fault is not None for r in bursts)
