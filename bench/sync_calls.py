"""API thrift of an incremental HubSpot sync: calls made for n changed contacts against the
lower bound ceil(n/200) searches + ceil(n/100) writes + engagement reads (ceil(events/page)).

    python bench/sync_calls.py --changed 10000

A portal of 2n contacts is synced once and settled (the resync after a write re-reads the
contacts our own writes touched: HubSpot bumps lastmodifieddate; it writes nothing); then n
contacts each gain a page view and the next sync is measured; then an idle resync must make
zero write calls (it re-reads the n contacts just written, its only cost). It runs at the same
clock: 15 minutes later an event may leave the 60-day window, a due rescore, not idleness.
The last line is the ratio of calls made to the lower bound (target <= 1.2 at n = 10,000).
"""

from __future__ import annotations

import argparse
import math
import time
from datetime import timedelta

from _harness import bench_harness

from connector.sandbox.demo_portal import build_portal


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--changed", type=int, default=10_000)
    args = ap.parse_args()
    n = args.changed
    portal = build_portal(2 * n, events_per_contact=1, seed=11)
    with bench_harness(portal) as b:
        first = b.pipeline.sync()
        print(f"initial sync of {2 * n} contacts: {first.api_calls} calls, {first.duration_s:.1f}s")
        b.tick(15)
        settle = b.pipeline.sync()  # re-reads what the initial sync wrote; writes nothing
        print(
            f"settling resync (re-reads our own {first.written} writes): {settle.api_calls} "
            f"calls {settle.api_calls_by_kind}, written {settle.written}"
        )
        b.tick(15)
        changed = [str(i) for i in range(1, 2 * n + 1, 2)][:n]
        for cid in changed:
            b.sb.add_event(
                cid,
                "e_visited_page",
                {"hs_url": "https://x.example/product/new"},
                b.clock[0] - timedelta(minutes=1),
            )
        b.tick(15)
        t0 = time.perf_counter()
        inc = b.pipeline.sync()
        dt = time.perf_counter() - t0
        pages = b.adapter.event_page_size
        bound = math.ceil(n / 200) + math.ceil(n / 100) + math.ceil(n / pages) + 1  # +1 e-mail
        calls = inc.api_calls
        print(
            f"incremental sync, {n} changed: {calls} calls {inc.api_calls_by_kind}, "
            f"written {inc.written}, {dt:.1f}s"
        )
        idle = b.pipeline.sync()
        print(
            f"idle resync: {idle.api_calls} calls {idle.api_calls_by_kind}, "
            f"write calls {idle.api_calls_by_kind.get('contacts.batch_update', 0)}, "
            f"written {idle.written}"
        )
        print(f"lower bound {bound} calls; ratio calls/bound: {calls / bound:.3f}")


if __name__ == "__main__":
    main()
