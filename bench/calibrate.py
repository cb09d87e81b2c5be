"""`calibrate` at scale: 100k contacts / 2M events in a state DB file, one full calibration.

    python bench/calibrate.py --contacts 100000 --views 14

The state DB is filled with the seeded education-shaped history of tests/test_calibrate_synthetic
(~20 events a contact with `--views 14`), then `calibrate()` runs as the CLI runs it (outcomes,
three replays through the engine, the refit, the baseline). Prints the wall time, the peak
resident memory and the held-out AUCs; the last line is the ratio to the floor of 250 labelled
contacts/s (>= 1.0 passes).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connector.calibrate import calibrate
from connector.state.store import StateStore
from tests.test_calibrate_synthetic import (
    CRM,
    NOW,
    build_education_history,
    education_model,
)

FLOOR = 250  # labelled contacts per second


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--contacts", type=int, default=100_000)
    p.add_argument("--views", type=int, default=14, help="extra page views per contact")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = StateStore.open(Path(tmp) / "state.db")
        t = time.perf_counter()
        build_education_history(store, args.contacts, extra_views=args.views)
        (n_events,) = store.db.execute("select count(*) from events").fetchone()
        print(f"built contacts={args.contacts:,} events={n_events:,} "
              f"in {time.perf_counter() - t:.1f}s")  # fmt: skip
        model = education_model(Path(tmp))
        t = time.perf_counter()
        r = calibrate(store, CRM, model, now=NOW)
        dt = time.perf_counter() - t
        store.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    c = r.comparison
    print(f"calibrate wall={dt:.1f}s peak_rss={peak_mb:,.0f}MB labelled={r.counts.labelled:,}")
    if c is not None:
        print(f"auc current={c.current.auc:.3f} suggested={c.suggested.auc:.3f} "
              f"baseline={c.baseline_auc:.3f}")  # fmt: skip
    rate = r.counts.labelled / dt
    print(f"labelled contacts/s={rate:,.0f}")
    print(f"ratio to floor {FLOOR:,} contacts/s: {rate / FLOOR:.2f}")


if __name__ == "__main__":
    main()
