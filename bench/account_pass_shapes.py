"""Two shapes of the full rescore with accounts on, timed against the contacts-only rescore in
one process (issue 21's "accounts add <= 15%"):

- **by account** (what `leadscore rescore` runs: `recompute_all(accounts=...)`): each batch of
  whole accounts reads its members by key (`contact_ids`, 20 ids a query), scores them, then
  their accounts, and saves both;
- **by range, then the roll-up** (a probe, not product code): the contacts read by id range
  as the contacts-only rescore reads them, each member's part kept in memory as its contact
  is scored (`collect_members`), then every account scored from its members' parts and
  saved, batch by batch. One process only: a parallel version needs the parts of an
  account's members, scored in several processes, brought together (see docs/benchmarks.md).

    python bench/account_pass_shapes.py --contacts 200000 --companies 20000 --rounds 4

Each round runs the three passes on the same state DB (the one `bench/accounts.py full`
builds, built here when missing), with the cyclic collector set as a rescore's worker sets
it; the CPU seconds of this process are compared, median over the rounds. The probe's
account rows and contact scores are checked equal to the shipped pass's (it computes the
same thing: only the order of the work differs)."""

from __future__ import annotations

import argparse
import gc
import hashlib
import statistics
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, cast

from accounts import CRM, MODEL, NOW, build_full, db_path

from connector.account_stage import AccountStage
from connector.model.loader import LoadedModel, load_model
from connector.ops.common import READ_BATCH, SCORE_BATCH, Rescored, rescore_stored
from connector.ops.parallel import _BULK_GC
from connector.ops.rescore import _save_chunk, recompute_all
from connector.scoring.accounts import collect_members, counted_rules
from connector.scoring.engine import keeping_hit_times
from connector.state.store import LAST_ID, StateStore
from connector.types import AccountMember


def contacts_only(store: StateStore, model: LoadedModel) -> None:
    recompute_all(store, CRM, model, NOW, workers=1)


def by_account(store: StateStore, model: LoadedModel) -> None:
    stage = AccountStage(cast(Any, SimpleNamespace(store=store, crm=CRM, model=model)))
    recompute_all(store, CRM, model, NOW, workers=1, accounts=stage)


def by_range_then_rollup(store: StateStore, model: LoadedModel) -> None:
    stage = AccountStage(cast(Any, SimpleNamespace(store=store, crm=CRM, model=model)))
    counted = counted_rules(model)
    now_ts = NOW.timestamp()
    titles = model.titles
    seniority: dict[str | None, str] = {}
    members: dict[str, list[AccountMember]] = {}

    def classify(title: str | None) -> str:
        return titles.classify(title).seniority

    collector = gc.get_threshold()
    gc.set_threshold(*_BULK_GC)  # as `ops.parallel.by_piece` sets it for a rescore's job
    try:
        with store.bulk_scoring(accounts=True), keeping_hit_times(model):
            after = ""
            while True:  # the next SCORE_BATCH live contacts by id, and their accounts
                row = store.db.execute(
                    "SELECT id FROM contacts_with_live WHERE crm = ? AND live AND id > ? "
                    "ORDER BY id LIMIT 1 OFFSET ?",
                    (CRM, after, SCORE_BATCH - 1),
                ).fetchone()
                upto = LAST_ID if row is None else row[0]
                linked = store.account_ids_between(CRM, after, upto)
                links = sorted(((a, c) for c, a in linked.items()), key=lambda x: x[1])
                chunk: list[Rescored] = []
                scored = rescore_stored(
                    store, CRM, [model], None, NOW, batch=READ_BATCH, after=after, upto=upto
                )
                got = collect_members(scored, links, counted, now_ts, seniority, classify, chunk)
                for account_id, people in got.items():
                    members.setdefault(account_id, []).extend(people)
                _save_chunk(store, CRM, chunk, (), False)
                if row is None:
                    break
                after = upto
            ids = sorted(members)
            k = 0
            while k < len(ids):  # batches of whole accounts, as the shipped pass saves them
                batch: dict[str, list[AccountMember]] = {}
                size = 0
                while k < len(ids) and size < SCORE_BATCH:
                    batch[ids[k]] = members[ids[k]]
                    size += len(members[ids[k]])
                    k += 1
                rows = stage.rows_for(batch, NOW)
                with store.transaction():
                    store.save_account_score_rows(rows)
                    store.add_accounts_due(CRM, list(batch), "scored, values to write")
    finally:
        gc.set_threshold(*collector)


def saved(store: StateStore) -> str:
    """A digest of the account rows and contact scores a pass saved."""
    ex = store.db.execute
    accounts = ex(
        "SELECT account_id, score, grade, mqa, mqa_reason, members, engaged_contacts, reasons, "
        "next_change_at FROM account_scores ORDER BY account_id"
    ).fetchall()
    scores = ex("SELECT contact_id, score, reasons FROM scores ORDER BY contact_id").fetchall()
    return hashlib.sha1(repr((accounts, scores)).encode()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contacts", type=int, default=200_000)
    ap.add_argument("--companies", type=int, default=20_000)
    ap.add_argument("--events", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--probe-first", action="store_true", help="run the shapes in reverse order")
    args = ap.parse_args()
    path = db_path(args.contacts, args.companies, args.events)
    if not path.exists():
        build_full(path, args.contacts, args.companies, args.events)
    model = load_model(MODEL)
    shapes: dict[str, Callable[[StateStore, LoadedModel], None]] = {
        "contacts only": contacts_only,
        "accounts, by account (shipped)": by_account,
        "accounts, by range then the roll-up (probe)": by_range_then_rollup,
    }
    if args.probe_first:  # the order within a round moves the figures (see docs/benchmarks.md)
        shapes = dict(reversed(list(shapes.items())))
    cpu: dict[str, list[float]] = {name: [] for name in shapes}
    digests: dict[str, str] = {}
    with StateStore.open(path) as store:
        n = store.count_contacts(CRM)
        for _ in range(args.rounds):
            for name, run in shapes.items():
                with store.transaction():
                    store.db.execute("DELETE FROM write_backlog")
                store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # no pass pays another's
                t0 = time.process_time()
                run(store, model)
                cpu[name].append(time.process_time() - t0)
                if name != "contacts only":
                    digests[name] = saved(store)
    if len(set(digests.values())) != 1:
        raise SystemExit("the two shapes saved different rows")
    base = statistics.median(cpu["contacts only"])
    for name, xs in cpu.items():
        m = statistics.median(xs)
        print(
            f"{name:45s} {m / n * 1e6:6.1f} µs a contact (CPU, median of {args.rounds}), "
            f"{(m - base) / n * 1e6:+5.1f} µs, {m / base:.3f} of contacts only"
        )
    print("the two shapes saved the same account rows and contact scores")


if __name__ == "__main__":
    main()
