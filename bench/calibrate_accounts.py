"""`calibrate`'s account replay on one large account (issue 21: "an account with 5,000
contacts: no quadratic work"), the code of this tree against another version of
connector/calibrate/accounts.py, interleaved on the same state DB.

    git show <rev>:connector/calibrate/accounts.py > /tmp/accounts_before.py
    .venv/bin/python bench/calibrate_accounts.py --members 5000 --days 60 \
        --before /tmp/accounts_before.py --rounds 3

One account (an e-mail domain) of `--members` managers; each member engages on `--per-member`
seeded random days among `--days` (a product page view, an e-mail open, a pricing page), no
conversion, outcomes after every horizon. `account_coverage()` (the account part of
`calibrate`) is timed: wall and CPU seconds (time.process_time) and the engine runs
(`connector.scoring.engine.score` calls). `--before`: the same DB replayed by that module too,
alternately, `--rounds` times each. The account's trails must be the same (checked).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import connector.calibrate.accounts as current
from connector.calibrate.observe import Dataset
from connector.model.loader import load_model
from connector.scoring.engine import score
from connector.state.accounts import ContactAccount
from connector.state.store import StateStore
from connector.types import Contact, Event

CRM = "hubspot"
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
PAGES = (
    ("page_view", {"url": "https://big.io/product/tour"}),
    ("email_open", {"campaign": "nurture"}),
    ("page_view", {"url": "https://big.io/pricing"}),
)


def build(store: StateStore, members: int, days: int, per_member: int) -> None:
    rng = random.Random(7)
    start = NOW - timedelta(days=200)
    contacts = [Contact(f"m{i}", f"p{i}@big.io", "P", str(i), "Marketing Manager")
                for i in range(members)]  # fmt: skip
    store.upsert_contacts(CRM, contacts, at=start)
    events: list[Event] = []
    for c in contacts:
        for n, day in enumerate(rng.sample(range(days), per_member)):
            typ, attrs = PAGES[n % len(PAGES)]
            at = start + timedelta(days=day, hours=rng.randrange(8, 18))
            events.append(Event("web", f"{c.id}-{n}", c.id, typ, at, attrs))
    store.insert_events(CRM, events)
    store.set_contact_accounts(
        CRM, [ContactAccount(c.id, "domain:big.io", "email_domain") for c in contacts], start
    )


def load(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("accounts_before", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def run(mod: ModuleType, store: StateStore) -> tuple[float, float, int, Any]:
    calls = [0]

    def counted(*args: Any, **kw: Any) -> Any:
        calls[0] += 1
        return score(*args, **kw)

    mod.score = counted  # type: ignore[attr-defined]
    model = load_model()
    ds = Dataset(store, CRM, model, timedelta(days=90), NOW)
    wall, cpu = time.perf_counter(), time.process_time()
    a = mod.account_coverage(ds, model)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    mod.score = score  # type: ignore[attr-defined]
    return wall, cpu, calls[0], a.observations[0].trail


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--members", type=int, default=5000)
    p.add_argument("--days", type=int, default=60)
    p.add_argument("--per-member", type=int, default=3)
    p.add_argument("--before", help="another version of connector/calibrate/accounts.py")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    sides = [("this tree", current)]
    if args.before:
        sides.append(("before", load(args.before)))
    with tempfile.TemporaryDirectory() as tmp:
        store = StateStore.open(Path(tmp) / "state.db")
        build(store, args.members, args.days, args.per_member)
        print(f"one account of {args.members:,} members, {args.per_member} active days each "
              f"among {args.days}; load average {os.getloadavg()[0]:.2f}")  # fmt: skip
        trails: dict[str, Any] = {}
        for r in range(args.rounds):
            for name, mod in sides:
                wall, cpu, calls, trail = run(mod, store)
                trails.setdefault(name, trail)
                assert trail == trails[name] == trails["this tree"], "the replays differ"
                print(f"round {r + 1} {name:>9}: {wall:7.2f} s wall, {cpu:7.2f} s CPU, "
                      f"{calls:,} engine runs, {len(trail)} checkpoints")  # fmt: skip
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        store.close()


if __name__ == "__main__":
    main()
