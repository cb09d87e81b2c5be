"""Scoring core throughput: synthetic contacts × events scored in process, one core.

    python bench/score_core.py --size 100000 --events 20

Prints events/s; the last line is the ratio to the floor of 250,000 events/s (>= 1.0 passes).
"""

from __future__ import annotations

import argparse
import gc
import time
from datetime import UTC, datetime
from pathlib import Path

from connector.model.loader import load_model
from connector.scoring import BUILD, score
from connector.synth import synth_dataset

FLOOR = 250_000

# the repository's model (this runs on an installed build too: see README, Benchmarks)
MODEL = Path(__file__).resolve().parents[1] / "config" / "model.yaml"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=100_000, help="contacts")
    ap.add_argument("--events", type=int, default=20, help="events per contact")
    args = ap.parse_args()
    now = datetime(2026, 11, 1, 12, tzinfo=UTC)
    model = load_model(MODEL)
    data = list(synth_dataset(args.size, args.events, now))
    n_events = sum(len(e) for _, _, e in data)
    # the 2M pre-built events are the harness's, not the scorer's: keep the collector from
    # re-traversing them (a real rescore streams contacts and never holds them all)
    gc.collect()
    gc.freeze()
    mqls = 0
    t0 = time.perf_counter()
    for contact, enrichment, events in data:
        r = score(contact, events, enrichment, model, now)
        mqls += r.lifecycle.mql
    dt = time.perf_counter() - t0
    rate = n_events / dt
    print(f"contacts={args.size} events={n_events} seconds={dt:.2f} mql={mqls}")
    print(f"events/s={rate:,.0f} contacts/s={args.size / dt:,.0f}")
    print(f"scoring core: {BUILD}")
    print(f"ratio to floor {FLOOR:,} events/s: {rate / FLOOR:.2f}")


if __name__ == "__main__":
    main()
