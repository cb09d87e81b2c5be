"""The events' order in the file, and `leadscore optimize`: a full rescore on a state DB whose
events arrived day by day (as months of syncs store them), before and after the rewrite.

    python bench/events_layout.py --contacts 200000 --events 20

The DB of `rescore_full.py` (built once per size, reused from --db) holds each contact's events
together: its build inserts them contact by contact, as a backfill does. This copies it and
stores the copy's events in time order instead (one contact's events then lie a page apart
each), measures the contacts-only rescore (`recompute_all`, every core) and the floor (the
events read ordered by contact, one process), runs `StateStore.recluster_events` (what
`leadscore optimize` runs), and measures both again. Prints the ratios spread/optimized
(the gain) and the optimize's own time against the rescore time it saves.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from rescore_full import build, floor, rescore

from connector.scoring import BUILD
from connector.state.store import StateStore


def spread_copy(src: Path, dst: Path) -> None:
    """`src` copied to `dst` with the events table rewritten in time order (the order syncs
    store them in), the same rows, indexes and text."""
    shutil.copyfile(src, dst)
    conn = sqlite3.connect(dst)
    conn.execute("PRAGMA journal_mode = OFF")
    create = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'events'").fetchone()[0]
    indexes = [
        r[0]
        for r in conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' "
            "AND sql IS NOT NULL"
        )
    ]
    conn.execute("ALTER TABLE events RENAME TO events_by_contact")
    conn.execute(create)
    conn.execute("INSERT INTO events SELECT * FROM events_by_contact ORDER BY occurred_at, rowid")
    conn.execute("DROP TABLE events_by_contact")
    for sql in indexes:
        conn.execute(sql)
    conn.commit()
    conn.execute("VACUUM")
    conn.close()


def measure(path: Path, workers: int | None, label: str) -> tuple[float, float]:
    with StateStore.open(path) as store:
        layout = store.events_layout()
    f_dt, n = floor(path)
    r_dt, scored, _, n_workers = rescore(path, workers)
    print(
        f"{label}: {layout.spread:.0%} of neighbouring events apart; floor {f_dt:.1f}s "
        f"({n:,} events); rescore {r_dt:.1f}s ({scored:,} contacts, {n_workers} process(es))"
    )
    return f_dt, r_dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contacts", type=int, default=200_000)
    ap.add_argument("--events", type=int, default=20)
    ap.add_argument("--db", type=Path, default=None, help="rescore_full.py's DB of this size")
    ap.add_argument("--workers", type=int, default=None, help="processes (default: every core)")
    args = ap.parse_args()
    src = args.db or Path(f"/tmp/leadscore-bench-{args.contacts}x{args.events}.db")
    if not src.exists():
        build(src, args.contacts, args.events)
    with tempfile.TemporaryDirectory(dir=src.parent) as tmp:
        path = Path(tmp) / "spread.db"
        t0 = time.perf_counter()
        spread_copy(src, path)
        print(f"copied with the events in arrival order in {time.perf_counter() - t0:.0f}s")
        f_spread, r_spread = measure(path, args.workers, "arrival order")
        t0 = time.perf_counter()
        with StateStore.open(path) as store:
            done = store.recluster_events()
        opt = time.perf_counter() - t0
        print(f"optimize: {done.events:,} events rewritten in {opt:.1f}s")
        f_opt, r_opt = measure(path, args.workers, "after optimize")
    print(f"scoring core: {BUILD}")
    print(f"ratio rescore arrival order / after optimize: {r_spread / r_opt:.2f}")
    print(f"ratio floor arrival order / after optimize: {f_spread / f_opt:.2f}")
    print(
        f"optimize / rescore time it saves: {opt / (r_spread - r_opt):.2f} "
        "(below 1: paid back by the first full rescore)"
    )


if __name__ == "__main__":
    main()
