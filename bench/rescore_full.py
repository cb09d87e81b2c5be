"""Full rescore from the state DB: stream every contact with its events, score, save scores.

    python bench/rescore_full.py --contacts 1000000 --events 20

Floor (measured in the same run): read the same events from SQLite ordered by contact.
Prints the time ratio rescore/floor (target <= 3x) and the peak RSS (target <= 1 GiB).
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
from connector.scoring import score
from connector.state.store import StateStore
from connector.synth import synth_dataset

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
CRM = "hubspot"


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


def rescore(path: Path) -> tuple[float, int, int, int]:
    model = load_model()
    t0 = time.perf_counter()
    n_contacts = n_events = mql = 0
    with StateStore.open(path) as store:
        pending = []
        for contact, events in store.iter_contacts_with_events(CRM):
            r = score(contact, events, None, model, NOW)
            n_contacts += 1
            n_events += len(events)
            mql += r.lifecycle.mql
            pending.append(r)
            if len(pending) >= 2000:
                store.save_scores(CRM, pending)
                pending = []
        if pending:
            store.save_scores(CRM, pending)
    return time.perf_counter() - t0, n_contacts, n_events, mql


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contacts", type=int, default=1_000_000)
    ap.add_argument("--events", type=int, default=20)
    ap.add_argument("--db", type=Path, default=None)
    args = ap.parse_args()
    path = args.db or Path(f"/tmp/leadscore-bench-{args.contacts}x{args.events}.db")
    if not path.exists():
        build(path, args.contacts, args.events)
    f_dt, f_n = floor(path)
    print(f"floor: read {f_n:,} events ordered by contact in {f_dt:.1f}s ({f_n / f_dt:,.0f}/s)")
    r_dt, c, e, mql = rescore(path)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"rescore: {c:,} contacts, {e:,} events, {mql:,} MQL in {r_dt:.1f}s "
        f"({e / r_dt:,.0f} events/s); peak RSS {rss_mib:,.0f} MiB (target <= 1024)"
    )
    print(f"ratio rescore/floor: {r_dt / f_dt:.2f} (target <= 3.0)")


if __name__ == "__main__":
    main()
