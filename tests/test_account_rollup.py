"""The full rescore's account roll-up (`AccountStage.rollup`) in several processes saves exactly
what it saves in one: the same account rows, history rows and backlog, the same results, in
the same order; and each account gets what the sync's own path (`score_accounts`, from the
stored scores and their events' times) gives it. On the demo portal and on a synthetic one."""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from connector import account_stage
from connector.account_stage import AccountStage
from connector.crm.base import CrmCompany
from connector.enrich.cache import CacheEntry
from connector.model.loader import LoadedModel, load_model
from connector.ops import parallel
from connector.ops.rescore import MemberPart, recompute_all
from connector.scoring.accounts import member_part
from connector.state.accounts import ContactAccount, company_account_id
from connector.state.store import StateStore
from connector.synth import synth_dataset
from connector.types import (
    AccountResult,
    Company,
    LifecycleDecision,
    Reason,
    ScoreResult,
)

from .conftest import NOW, Harness
from .test_ops_rescore_accounts import acc  # noqa: F401  (the demo portal's fixture)

CRM = "hubspot"
TABLES = {
    "account_scores": "crm, account_id",
    "account_score_history": "id",
    "accounts_due": "crm, account_id",
}


@pytest.fixture
def processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Processes even for a dozen accounts (the real minimum is 2,000 per process), and for
    the contacts' recompute (20,000)."""
    monkeypatch.setattr(account_stage, "MIN_ACCOUNTS_PER_PROCESS", 1)
    monkeypatch.setattr(parallel, "MIN_CONTACTS_PER_WORKER", 1)


def rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return {
            t: conn.execute(f"SELECT * FROM {t} ORDER BY {order}").fetchall()
            for t, order in TABLES.items()
        }
    finally:
        conn.close()


def copy(store: StateStore, to: Path) -> Path:
    dest = sqlite3.connect(to)
    store.db.conn.backup(dest)
    dest.close()
    return to


def rollup_in(
    path: Path, model: LoadedModel, parts: dict[str, MemberPart], workers: int
) -> tuple[dict[str, AccountResult], dict[str, list[tuple[Any, ...]]], int]:
    with StateStore.open(path) as store:
        stage = AccountStage(cast(Any, SimpleNamespace(store=store, crm=CRM, model=model)))
        out = stage.rollup(parts, NOW, workers=workers)
        counted = stage.state.accounts_scored
        assert list(stage.state.scored.items()) == list(out.items())
    return out, rows(path), counted


def check_same_in_one_and_two_processes(
    store: StateStore, model: LoadedModel, tmp_path: Path
) -> dict[str, AccountResult]:
    parts: dict[str, MemberPart] = {}
    recompute_all(store, CRM, model, NOW, workers=2, member_parts=parts)
    one, two = copy(store, tmp_path / "one.db"), copy(store, tmp_path / "two.db")
    res1, rows1, n1 = rollup_in(one, model, parts, workers=1)
    res2, rows2, n2 = rollup_in(two, model, parts, workers=2)
    assert list(res2.items()) == list(res1.items())  # equal results, in the same order
    assert rows2 == rows1  # byte for byte: scores, reasons' text, history ids, backlog
    assert n1 == n2 == len(res1) == len(rows1["account_scores"])
    # a second roll-up (the rows exist: updated in place, no new history) agrees too
    again1, again_rows1, _ = rollup_in(one, model, parts, workers=1)
    again2, again_rows2, _ = rollup_in(two, model, parts, workers=2)
    assert again1 == again2 == res1
    assert again_rows1 == again_rows2 == rows1
    return res1


def check_same_as_the_sync_path(
    store: StateStore, model: LoadedModel, rolled: dict[str, AccountResult]
) -> None:
    """`score_accounts` reads every member's stored score and its events' times: the roll-up,
    from the parts the recompute recorded, must agree on every account."""
    stage = AccountStage(cast(Any, SimpleNamespace(store=store, crm=CRM, model=model)))
    synced = stage.score_accounts(list(rolled), NOW)
    assert synced == rolled


def test_demo_portal_rollup_in_two_processes_is_the_one_process_rollup(
    acc: Harness,  # noqa: F811
    tmp_path: Path,
    processes: None,
) -> None:
    model = acc.pipeline.model
    rolled = check_same_in_one_and_two_processes(acc.store, model, tmp_path)
    assert len(rolled) == 12
    assert sum(r.mqa for r in rolled.values()) == 6
    assert rolled["company:9012"].reasons[0].text.startswith("engagement of 4 people")
    check_same_as_the_sync_path(acc.store, model, rolled)


def synthetic_store(path: Path, contacts: int, companies: int) -> StateStore:
    """`bench/accounts.py full` at a small size: each contact in company `id mod companies`;
    every fifth company has no industry in the CRM, filled from the enrichment cache."""
    store = StateStore.open(path)
    crm_companies = [
        CrmCompany(
            id=str(700_000 + i),
            domain=f"company{i}.example",
            name=f"Company {i}",
            industry=None if i % 5 == 0 else ("computer software", "retail")[i % 2],
            employee_count=20 + (i * 37) % 20_000,
            annual_revenue_usd=float(1_000_000 + (i * 7919) % 500_000_000),
            country="US" if i % 3 else "DE",
            updated_at=NOW,
        )
        for i in range(companies)
    ]
    store.upsert_crm_companies(CRM, crm_companies, NOW)
    for i in range(0, companies, 5):
        store.put_company_entry(
            CacheEntry(
                domain=f"Company{i}.example",
                status="hit",
                company=Company(domain=f"company{i}.example", industry="financial services"),
                source="test",
                fetched_at=NOW,
                expires_at=NOW + timedelta(days=30),
            )
        )
    batch_c, batch_e, links = [], [], []
    for contact, _enrichment, events in synth_dataset(contacts, 12, NOW, seed=11):
        batch_c.append(contact)
        batch_e.extend(events)
        company = str(700_000 + int(contact.id) % companies)
        links.append(
            ContactAccount(contact.id, company_account_id(company), "primary_company", (company,))
        )
    with store.transaction():
        store.upsert_contacts(CRM, batch_c, at=NOW)
        store.insert_events(CRM, batch_e)
    store.set_contact_accounts(CRM, links, NOW)
    return store


def test_synthetic_portal_rollup_in_two_processes_is_the_one_process_rollup(
    tmp_path: Path, processes: None
) -> None:
    model = load_model(Path(__file__).resolve().parents[1] / "config" / "model.yaml")
    with synthetic_store(tmp_path / "state.db", 1_500, 150) as store:
        rolled = check_same_in_one_and_two_processes(store, model, tmp_path)
        assert len(rolled) == 150
        assert {r.members for r in rolled.values()} == {10}
        assert 0 < sum(r.mqa for r in rolled.values()) < 150
        # the cache filled the blank industry of every fifth company
        fit = {x.text for x in rolled["company:700005"].reasons if x.rule == "account_industry"}
        assert fit == {"+15 target industry (industry financial services)"}
        check_same_as_the_sync_path(store, model, rolled)


def _result(
    points: float,
    reasons: tuple[Reason, ...],
    times: tuple[tuple[float, ...], ...] | None,
) -> ScoreResult:
    return ScoreResult(
        "7", points, points, 0.0, "B", LifecycleDecision(None, None, False, None), False,
        "v", "f", NOW, None, reasons, hit_times=times,
    )  # fmt: skip


def test_member_part_keeps_the_latest_hit_and_the_counted_rules_hits() -> None:
    ts = {
        k: datetime.fromisoformat(v).timestamp()
        for k, v in {
            "e:1": "2026-10-01T10:00:00.000000+00:00",
            "e:2": "2026-10-20T10:00:00.000000+00:00",
            "e:3": "2026-10-25T10:00:00.000000+00:00",
            "e:4": "2026-10-30T10:00:00.000000+00:00",
            "e:9": "2026-11-03T10:00:00.000000+00:00",  # after NOW (a future-dated event)
        }.items()
    }
    reasons = (
        Reason("product_page", "engagement", 20.0, "", ("e:1", "e:2")),
        Reason("webinar", "engagement", 30, "", ("e:3", "e:4")),
        Reason("unsubscribed", "engagement", -10.0, "", ("e:9",)),  # negative: not a hit
        Reason("grade", "fit", 40.0, "", (), "fit"),  # not engagement: no times
    )
    times = ((ts["e:1"], ts["e:2"]), (ts["e:3"], ts["e:4"]), (ts["e:9"],))
    counted = frozenset({"product_page"})
    now_ts = NOW.timestamp()
    part = member_part(_result(50, reasons, times), counted, now_ts)
    # the counted rule's hits, then the latest hit of any rule (the webinar's e:4)
    assert part == (50, "B", (("product_page", ts["e:1"]), ("product_page", ts["e:2"]),
                              ("webinar", ts["e:4"])))  # fmt: skip
    assert type(part[0]) is int  # the points as the result holds them, in either build
    # the latest hit is a counted rule's: kept once
    later = (Reason("product_page", "engagement", 5.0, "", ("e:1", "e:4")),)
    assert member_part(_result(5.0, later, ((ts["e:1"], ts["e:4"]),)), counted, now_ts)[2] == (
        ("product_page", ts["e:1"]), ("product_page", ts["e:4"]),
    )  # fmt: skip
    # a future-dated hit: the latest one up to now counts for breadth, besides the counted
    future = (*reasons[:2], Reason("pricing", "engagement", 5.0, "", ("e:9", "e:3")))
    future_times = (*times[:2], (ts["e:9"], ts["e:3"]))
    assert member_part(_result(55.0, future, future_times), counted, now_ts)[2] == (
        ("product_page", ts["e:1"]), ("product_page", ts["e:2"]), ("webinar", ts["e:4"]),
    )  # fmt: skip
    # equal latest times: the first rule in the reasons' order
    tied = (Reason("pricing", "engagement", 5.0, "", ("e:4",)), reasons[1])
    tied_times = ((ts["e:4"],), times[1])
    assert member_part(_result(35.0, tied, tied_times), counted, now_ts)[2] == (
        ("pricing", ts["e:4"]),
    )
    # no positive engagement: no hits
    assert member_part(_result(0.0, reasons[2:], times[2:]), counted, now_ts) == (0.0, "B", ())
    # a result scored without its events' times: a clear error, not an empty part
    with pytest.raises(ValueError, match="contact 7: scored without its events' times"):
        member_part(_result(50, reasons, None), counted, now_ts)


def _piece(i: int) -> tuple[int, int]:
    if i == 3 and os.environ.get("ROLLUP_TEST_FAIL") == "1":
        raise ValueError(f"piece {i} failed")
    return i, os.getpid()


def test_forked_pieces_come_back_in_order_and_a_failure_is_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    got = list(parallel.forked(_piece, 6, 2))
    assert [i for i, _ in got] == [0, 1, 2, 3, 4, 5]
    pids = {pid for _, pid in got}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert list(parallel.forked(_piece, 3, 1)) == [(0, os.getpid()), (1, os.getpid()),
                                                    (2, os.getpid())]  # fmt: skip
    monkeypatch.setenv("ROLLUP_TEST_FAIL", "1")
    with pytest.raises(ValueError, match="piece 3 failed"):
        list(parallel.forked(_piece, 6, 2))
