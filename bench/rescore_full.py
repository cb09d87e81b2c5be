"""Full rescore from the state DB: stream every contact with its events, score, save scores.

    python bench/rescore_full.py --contacts 1000000 --events 20

The rescore is `connector.ops.rescore.recompute_all`, the local half of `leadscore rescore`
(score every stored contact, save the scores, mark who needs a CRM write), in as many processes
as this machine has cores (`--workers`). Floor (measured in the same run, one process, before and
after the rescore, averaged): read the same events from SQLite ordered by contact. Prints the
time ratio rescore/floor (target <= 3x) and the peak RSS per process (target <= 1 GiB).
The DB is generated once per size (seeded, connector.synth) and reused from --db.
"""

from __future__ import annotations

import argparse
import resource
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from connector.model.loader import load_model
from connector.ops.parallel import plan_workers
from connector.ops.rescore import recompute_all
from connector.scoring import BUILD
from connector.state.base import configure_connection
from connector.state.store import StateStore
from connector.synth import synth_dataset

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
CRM = "hubspot"

# the repository's model (this runs on an installed build too: see README, Benchmarks)
MODEL = Path(__file__).resolve().parents[1] / "config" / "model.yaml"


def build(path: Path, contacts: int, per_contact: int) -> None:
    t0 = time.perf_counter()
    with StateStore.open(path) as store:
        batch_c, batch_e = [], []
        for contact, _enrichment, events in synth_dataset(contacts, per_contact, NOW, seed=7):
            batch_c.append(contact)
            batch_e.extend(events)
            if len(batch_c) >= 5000:
                with store.transaction():
                    store.upsert_contacts(CRM, batch_c, at=NOW)
                    store.insert_events(CRM, batch_e)
                batch_c, batch_e = [], []
        if batch_c:
            with store.transaction():
                store.upsert_contacts(CRM, batch_c, at=NOW)
                store.insert_events(CRM, batch_e)
    print(f"built {path} in {time.perf_counter() - t0:.0f}s")


def floor(path: Path) -> tuple[float, int]:
    conn = sqlite3.connect(path)
    configure_connection(conn, wal=True)  # the store's settings: a like-for-like floor
    t0 = time.perf_counter()
    n = 0
    for _row in conn.execute(
        "SELECT contact_id, type, occurred_at, attributes FROM events WHERE crm = ? "
        "ORDER BY contact_id, occurred_at",
        (CRM,),
    ):
        n += 1
    dt = time.perf_counter() - t0
    conn.close()
    return dt, n


def rescore(path: Path, workers: int | None) -> tuple[float, int, int, int]:
    """What `leadscore rescore` runs before its CRM writes (`recompute_all`): every live contact
    scored from its stored events, every score saved, the changed ones put on the write
    backlog; by id range in `workers` processes. The backlog is emptied first, so every run
    of the benchmark does the same work."""
    model = load_model(MODEL)
    with StateStore.open(path) as store:
        with store.transaction():
            store.db.execute("DELETE FROM write_backlog")
        n_workers = plan_workers(store, CRM, workers)
        t0 = time.perf_counter()
        scored, backlog = recompute_all(store, CRM, model, NOW, workers=n_workers)
        dt = time.perf_counter() - t0
    return dt, scored, backlog, n_workers


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contacts", type=int, default=1_000_000)
    ap.add_argument("--events", type=int, default=20)
    ap.add_argument("--db", type=Path, default=None)
    ap.add_argument("--workers", type=int, default=None, help="processes (default: every core)")
    args = ap.parse_args()
    path = args.db or Path(f"/tmp/leadscore-bench-{args.contacts}x{args.events}.db")
    if not path.exists():
        build(path, args.contacts, args.events)
    # the floor is read before and after the rescore: this VM's speed drifts by 10-35% within
    # minutes, and a ratio to one reading taken in another phase says more about the VM
    f_before, f_n = floor(path)
    rate = f_n / f_before
    print(f"floor: read {f_n:,} events ordered by contact in {f_before:.1f}s ({rate:,.0f}/s)")
    r_dt, c, backlog, n_workers = rescore(path, args.workers)
    f_after, _ = floor(path)
    f_dt = (f_before + f_after) / 2
    print(f"floor again after the rescore: {f_after:.1f}s; the ratio uses their mean, {f_dt:.1f}s")
    # peak RSS of this process and of its largest worker (each holds its own batch)
    rss_mib = (
        max(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        )
        / 1024
    )
    print(
        f"rescore: {c:,} contacts, {f_n:,} events in {r_dt:.1f}s with {n_workers} process(es) "
        f"({f_n / r_dt:,.0f} events/s), {backlog:,} put on the write backlog; "
        f"peak RSS {rss_mib:,.0f} MiB per process (target <= 1024)"
    )
    print(f"scoring core: {BUILD}")
    print(f"ratio rescore/floor: {r_dt / f_dt:.2f} (target <= 3.0)")


if __name__ == "__main__":
    main()
