"""Incremental cost grows with changes, not with the portal.

    python bench/incremental_scale.py --small 10000 --large 1000000 --changed 100

The state DB is pre-filled with N synthetic contacts (with events and stored scores: what a
portal of that size leaves behind; their next decay change lies beyond the measured window, so
the timed sync scores exactly the changed contacts), beside a 1,000-contact sandbox portal
that is synced and settled; then `--changed` contacts gain a page view and the next sync is
timed. The last line is the ratio time(large) / time(small) (target <= 2).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from _harness import NOW, bench_harness

from connector.model.loader import load_model
from connector.sandbox.demo_portal import build_portal
from connector.scoring import score
from connector.state.store import StateStore
from connector.synth import synth_dataset

CRM = "hubspot"
HORIZON = timedelta(days=30)


def prefill(path: Path, n: int) -> None:
    model = load_model()
    with StateStore.open(path) as store:
        batch_c, batch_e, batch_s = [], [], []
        for contact, enrichment, events in synth_dataset(n, 2, NOW, seed=3):
            c = replace(contact, id=str(50_000_000 + int(contact.id)))
            evs = [replace(e, contact_id=c.id) for e in events]
            batch_c.append(c)
            batch_e.extend(evs)
            # due decay rescores scale with the portal's activity, not with the sync: keep the
            # prefilled scores out of the measured window (they are measured by rescore_full)
            batch_s.append(
                replace(score(c, evs, enrichment, model, NOW), next_change_at=NOW + HORIZON)
            )
            if len(batch_c) >= 10_000:
                with store.transaction():
                    store.upsert_contacts(CRM, batch_c, at=NOW)
                    store.insert_events(CRM, batch_e)
                    store.save_scores(CRM, batch_s)
                batch_c, batch_e, batch_s = [], [], []
        if batch_c:
            with store.transaction():
                store.upsert_contacts(CRM, batch_c, at=NOW)
                store.insert_events(CRM, batch_e)
                store.save_scores(CRM, batch_s)


def timed_sync(n_prefill: int, changed: int, rounds: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.db"
        t0 = time.perf_counter()
        prefill(path, n_prefill)
        print(f"  prefilled {n_prefill:,} contacts in {time.perf_counter() - t0:.0f}s")
        portal = build_portal(1_000, events_per_contact=2, seed=5)
        times: list[float] = []
        with bench_harness(portal, state_path=path) as b:
            b.pipeline.sync()
            b.tick(15)
            b.pipeline.sync()  # settle: re-reads our own writes
            for r in range(rounds):
                b.tick(15)
                for cid in range(1 + r * changed, 1 + (r + 1) * changed):
                    b.sb.add_event(
                        str(cid),
                        "e_visited_page",
                        {"hs_url": "https://x.example/product/a"},
                        b.clock[0] - timedelta(minutes=1),
                    )
                b.tick(1)
                t0 = time.perf_counter()
                s = b.pipeline.sync()
                times.append(time.perf_counter() - t0)
                assert s.written == changed, s.line()
                assert s.scored == changed, s.line()  # only the changed contacts are scored
                b.tick(15)
                b.pipeline.sync()  # settle again
        return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", type=int, default=10_000)
    ap.add_argument("--large", type=int, default=1_000_000)
    ap.add_argument("--changed", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    results = {}
    for n in (args.small, args.large):
        print(f"state DB with {n:,} other contacts:")
        times = timed_sync(n, args.changed, args.rounds)
        results[n] = statistics.median(times)
        print(
            f"  sync of {args.changed} changed contacts: median {results[n] * 1000:.0f} ms "
            f"({', '.join(f'{t * 1000:.0f}' for t in times)})"
        )
    ratio = results[args.large] / results[args.small]
    print(f"ratio time({args.large:,}) / time({args.small:,}): {ratio:.2f} (target <= 2)")


if __name__ == "__main__":
    main()
