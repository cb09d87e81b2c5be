"""Backfill throughput against the sandbox's rate limit.

    python bench/backfill_rate.py --contacts 20000 --rate 50

The sandbox allows `--rate` calls per (scaled) second in its rolling window and says so in the
X-HubSpot-RateLimit-* headers; the adapter paces itself from them. Measured over the write
phase (batch updates, the non-search calls of a backfill): calls/s achieved against the allowed
rate (target >= 90%), and the number of 429s (target 0). Search has its own per-second limit
and no headers; it is reported separately.
"""

from __future__ import annotations

import argparse
from datetime import timedelta

from _harness import bench_harness

from connector.sandbox.demo_portal import build_portal
from connector.worker.backfill import run_backfill


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contacts", type=int, default=20_000)
    ap.add_argument("--rate", type=int, default=50, help="allowed calls per second")
    args = ap.parse_args()
    time_scale = 0.1  # the sandbox's 10 s window becomes 1 s
    portal = build_portal(args.contacts, events_per_contact=1, seed=13)
    with bench_harness(
        portal,
        rate_limit=args.rate,
        time_scale=time_scale,
        search_rate_limit=10,
        search_per_second=90,
    ) as b:
        b.sb.reset_limits()
        result = run_backfill(b.pipeline, b.clock[0] - timedelta(days=400), b.clock[0])
        s = result.summary
        print(s.line())
        log = b.sb.requests
        writes = [r for r in log if r.path.endswith("/batch/update") and r.status == 200]
        searches = [r for r in log if r.path.endswith("/search")]
        n429 = sum(1 for r in log if r.status == 429)
        span = writes[-1].at - writes[0].at
        rate = (len(writes) - 1) / span if span > 0 else float("inf")
        allowed = args.rate  # per scaled second: rate_limit per 10 s * (1 / time_scale) / 10
        sspan = searches[-1].at - searches[0].at
        print(
            f"searches: {len(searches)} in {sspan:.1f}s = {(len(searches) - 1) / sspan:.1f}/s "
            f"(search limit {10 / time_scale / 1:.0f}/s, paced at 90/s)"
        )
        print(
            f"write phase: {len(writes)} batch updates in {span:.2f}s = {rate:.1f} calls/s; "
            f"allowed {allowed}/s; 429s: {n429}"
        )
        print(
            f"utilisation of the allowed rate: {rate / allowed:.2f} (target >= 0.90), "
            f"429s {n429} (target 0)"
        )


if __name__ == "__main__":
    main()
