"""The full rescore with accounts on (`ops.rescore.recompute_all(accounts=...)`): each account is
scored with its members, batch by batch, in several processes. In 2 processes it saves exactly
what it saves in 1 (contact scores, account rows, history, backlog, the accounts due), the
contacts' scores are the contacts-only rescore's, and each account gets what the sync's own
path (`score_accounts`, from the stored scores and their events' times) gives it. On the demo
portal and on a synthetic one."""

from __future__ import annotations

import gc
import os
import sqlite3
from dataclasses import replace
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from connector.account_stage import AccountStage
from connector.crm.base import CrmCompany
from connector.enrich.cache import CacheEntry
from connector.model.loader import LoadedModel, load_model
from connector.ops import parallel
from connector.ops.common import Rescored
from connector.ops.rescore import recompute_all
from connector.scoring.accounts import collect_members, member_name, member_part
from connector.state.accounts import ContactAccount, company_account_id
from connector.state.store import StateStore
from connector.synth import synth_dataset
from connector.types import (
    AccountMember,
    AccountResult,
    Company,
    Contact,
    LifecycleDecision,
    Reason,
    ScoreResult,
)

from .conftest import NOW, Harness
from .test_ops_rescore_accounts import acc  # noqa: F401  (the demo portal's fixture)

CRM = "hubspot"
# every table the rescore writes, each in an order that does not depend on which process
# wrote first (history ids interleave between processes: compared without them)
TABLES = {
    "scores": "SELECT * FROM scores ORDER BY crm, contact_id",
    "score_history": "SELECT crm, contact_id, model_version, score, grade, mql, scored_at, "
    "stage FROM score_history ORDER BY 1, 2, 3, 4, 5, 6, 7, 8",
    "write_backlog": "SELECT * FROM write_backlog ORDER BY 1, 2",
    "account_scores": "SELECT * FROM account_scores ORDER BY crm, account_id",
    "account_score_history": "SELECT crm, account_id, model_version, score, grade, mqa, "
    "scored_at FROM account_score_history ORDER BY 1, 2, 3, 4, 5, 6, 7",
    "accounts_due": "SELECT * FROM accounts_due ORDER BY crm, account_id",
}


@pytest.fixture
def processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Processes even for a few dozen contacts (the real minimum is 20,000 a process)."""
    monkeypatch.setattr(parallel, "MIN_CONTACTS_PER_WORKER", 1)


def rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return {t: conn.execute(sql).fetchall() for t, sql in TABLES.items()}
    finally:
        conn.close()


def copy(store: StateStore, to: Path) -> Path:
    dest = sqlite3.connect(to)
    store.db.conn.backup(dest)
    dest.close()
    return to


def rescore_in(
    path: Path, model: LoadedModel, workers: int
) -> tuple[dict[str, AccountResult], dict[str, list[tuple[Any, ...]]], int, int]:
    """The rescore with accounts on in `workers` processes: the accounts' results as the
    pass's `finish` reads them back, every table it writes, (contacts scored, accounts
    scored)."""
    with StateStore.open(path) as store:
        stage = AccountStage(cast(Any, SimpleNamespace(store=store, crm=CRM, model=model)))
        scored, _ = recompute_all(store, CRM, model, NOW, workers=workers, accounts=stage)
        rolled = sorted(stage.state.rolled)
        assert len(rolled) == len(set(rolled)) == stage.state.accounts_scored
        stage._adopt_rolled()
        assert stage.state.rolled == [] and sorted(stage.state.scored) == rolled
        out = {a: stage.state.scored[a] for a in rolled}
    return out, rows(path), scored, len(out)


def check_same_in_one_and_two_processes(
    store: StateStore, model: LoadedModel, tmp_path: Path
) -> dict[str, AccountResult]:
    contacts_only = copy(store, tmp_path / "contacts.db")
    with StateStore.open(contacts_only) as st:
        recompute_all(st, CRM, model, NOW, workers=1)
    one, two = copy(store, tmp_path / "one.db"), copy(store, tmp_path / "two.db")
    res1, rows1, n1, a1 = rescore_in(one, model, workers=1)
    res2, rows2, n2, a2 = rescore_in(two, model, workers=2)
    assert res2 == res1
    assert rows2 == rows1  # byte for byte: scores, reasons' text, history, backlog, due
    assert n1 == n2 == len(rows1["scores"]) and a1 == a2 == len(rows1["account_scores"])
    # the contacts' scores are those of the contacts-only rescore, and so is their backlog
    plain = rows(contacts_only)
    assert rows1["scores"] == plain["scores"]
    assert rows1["write_backlog"] == plain["write_backlog"]
    assert rows1["accounts_due"] == [(CRM, a, "scored, values to write") for a in sorted(res1)]
    # a second rescore (the rows exist: updated in place, no new history) agrees too
    again1, again_rows1, _, _ = rescore_in(one, model, workers=1)
    again2, again_rows2, _, _ = rescore_in(two, model, workers=2)
    assert again1 == again2 == res1
    assert again_rows1 == again_rows2 == rows1
    with StateStore.open(two) as st:
        check_same_as_the_sync_path(st, model, res1)
    return res1


def check_same_as_the_sync_path(
    store: StateStore, model: LoadedModel, rolled: dict[str, AccountResult]
) -> None:
    """`score_accounts` reads every member's stored score and its events' times: the rescore,
    from the parts its scorer kept, must agree on every account."""
    stage = AccountStage(cast(Any, SimpleNamespace(store=store, crm=CRM, model=model)))
    synced = stage.score_accounts(list(rolled), NOW)
    assert synced == rolled


def test_demo_portal_rescore_with_accounts_in_two_processes_is_the_one_process_rescore(
    acc: Harness,  # noqa: F811
    tmp_path: Path,
    processes: None,
) -> None:
    model = acc.pipeline.model
    rolled = check_same_in_one_and_two_processes(acc.store, model, tmp_path)
    assert len(rolled) == 12
    assert sum(r.mqa for r in rolled.values()) == 6
    assert rolled["company:9012"].reasons[0].text.startswith("engagement of 4 people")
    # the free-mail contacts (no account) were rescored beside the accounts' members
    members = sum(r.members for r in rolled.values())
    assert members < acc.store.count_contacts(CRM)


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


def test_synthetic_portal_rescore_with_accounts_in_two_processes_is_the_one_process_rescore(
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


def test_accounts_are_never_cut_between_processes_or_batches(tmp_path: Path) -> None:
    """`split_accounts` cuts by members and `account_member_batches` reads whole accounts:
    a 600-member account is one batch, and every account's members come in one batch."""
    with synthetic_store(tmp_path / "state.db", 1_200, 60) as store:
        big = [ContactAccount(str(100_000 + i), "company:700007", "primary_company",
                              ("700007",)) for i in range(600)]  # fmt: skip
        store.set_contact_accounts(CRM, big, NOW)
        ranges = store.split_accounts(CRM, 3)
        assert ranges[0][0] == "" and ranges[-1][1] == "\U0010ffff" and len(ranges) == 3
        assert all(a[1] == b[0] for a, b in pairwise(ranges))
        seen: dict[str, int] = {}
        sizes: list[list[int]] = []
        for after, upto in ranges:
            sizes.append([])
            for batch in store.account_member_batches(CRM, after, upto, 100):
                accounts = {a for a, _ in batch}
                assert all(after < a <= upto for a in accounts)
                for a in accounts:
                    assert a not in seen  # no account comes in two batches
                    seen[a] = sum(1 for x, _ in batch if x == a)
                sizes[-1].append(len(batch))
        assert len(seen) == 60 and sum(seen.values()) == 1_200
        ids = [r[0] for r in store.db.execute("SELECT id FROM contacts").fetchall()]
        own = {c for c in ids if int(c) % 60 == 7}
        assert seen["company:700007"] == len(own | {c.contact_id for c in big}) > 600
        assert max(max(x) for x in sizes) >= 600  # the big account: one batch
        assert all(n >= 100 for x in sizes for n in x[:-1])  # whole accounts to 100 at least


def test_an_account_with_no_live_member_loses_its_score(tmp_path: Path, processes: None) -> None:
    model = load_model(Path(__file__).resolve().parents[1] / "config" / "model.yaml")
    with synthetic_store(tmp_path / "state.db", 300, 30) as store:
        stage = AccountStage(cast(Any, SimpleNamespace(store=store, crm=CRM, model=model)))
        recompute_all(store, CRM, model, NOW, workers=2, accounts=stage)
        assert store.count_account_scores(CRM) == 30
        ids = [r[0] for r in store.db.execute("SELECT id FROM contacts").fetchall()]
        gone = [c for c in ids if int(c) % 30 == 3]  # company 700003's 10 members
        assert len(gone) == 10
        for cid in gone:
            store.mark_archived(CRM, cid, NOW)
        # company 700028's members lose their link (a score row, no member at all), in the
        # other process's range of accounts than 700003's
        unlinked = [c for c in ids if int(c) % 30 == 28]
        store.clear_contact_accounts(CRM, unlinked)
        ranges = store.split_accounts(CRM, 2)
        assert [a for a, b in ranges if a < "company:700003" <= b] != [
            a for a, b in ranges if a < "company:700028" <= b
        ]
        store.clear_accounts_due(CRM, store.account_ids(CRM))  # as a finished pass leaves it
        stage = AccountStage(cast(Any, SimpleNamespace(store=store, crm=CRM, model=model)))
        scored, _ = recompute_all(store, CRM, model, NOW, workers=2, accounts=stage)
        assert scored == 290  # the unlinked 10 among them, scored with no account
        assert store.count_account_scores(CRM) == 28
        assert stage.state.emptied == {"company:700003", "company:700028"}
        assert "company:700003" not in stage.state.rolled
        assert len(stage.state.rolled) == stage.state.accounts_scored == 28
        due = dict(store.db.execute("SELECT account_id, reason FROM accounts_due").fetchall())
        assert due["company:700003"] == "no member left, values to clear"
        assert due["company:700028"] == "no member left, values to clear"


def _result(
    points: float,
    reasons: tuple[Reason, ...],
    times: tuple[tuple[float, ...], ...] | None,
) -> ScoreResult:
    """A result with the rule reasons' event times (`times[i]`: those of `reasons[i]`) kept
    as the scorer keeps them: (rule, times) of the rule reasons with points over 0."""
    kept = (
        None
        if times is None
        else tuple((r.rule, t) for r, t in zip(reasons, times, strict=False) if r.points > 0)
    )
    return ScoreResult(
        "7", points, points, 0.0, "B", LifecycleDecision(None, None, False, None), False,
        "v", "f", NOW, None, reasons, hit_times=kept,
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


def test_members_are_collected_as_their_contacts_are_scored() -> None:
    """`collect_members` builds each member as the stream yields its contact (the rescore's
    batch of whole accounts): every item goes to `into` as it came, each account's members in
    the order of the links, a contact the stream does not yield (not live) left out, and an
    account with no live member too; each job title classified once."""
    t = datetime(2026, 10, 30, 10, tzinfo=NOW.tzinfo).timestamp()
    hit = (Reason("webinar", "engagement", 30.0, "", ("e:1",)),)

    def item(cid: str, first: str, title: str, points: float) -> Rescored:
        contact = Contact(cid, f"{first.lower()}@acme.example", first, "Lee", title)
        result = replace(_result(points, hit, ((t,),)), contact_id=cid)
        return Rescored(contact, None, (result,))

    links = [("company:1", "c1"), ("company:1", "c3"), ("company:1", "c4"), ("company:2", "c2"),
             ("company:3", "c5")]  # fmt: skip
    # the stream yields by contact id (c4 and c5 are not live: never yielded)
    stream = [item("c1", "Ann", "VP Sales", 30.0), item("c2", "Bo", "CTO", 10.0),
              item("c3", "Cy", "VP Sales", 20.0)]  # fmt: skip
    classified: list[str | None] = []

    def classify(title: str | None) -> str:
        classified.append(title)
        return {"VP Sales": "vp", "CTO": "executive"}[title or ""]

    into: list[Rescored] = []
    memo: dict[str | None, str] = {}
    got = collect_members(iter(stream), links, frozenset(), NOW.timestamp(), memo, classify, into)
    assert into == stream and all(type(r) is Rescored for r in into)  # as they came
    assert list(got) == ["company:1", "company:2"]  # the links' order; company:3: none live
    hits = (("webinar", t),)
    assert got["company:1"] == [
        AccountMember("c1", "Ann Lee", "VP Sales", "vp", "B", 30.0, hits),
        AccountMember("c3", "Cy Lee", "VP Sales", "vp", "B", 20.0, hits),
    ]
    assert got["company:2"] == [AccountMember("c2", "Bo Lee", "CTO", "executive", "B", 10.0, hits)]
    assert classified == ["VP Sales", "CTO"] and memo == {"VP Sales": "vp", "CTO": "executive"}


def _piece(st: StateStore, i: int) -> tuple[int, int, str]:
    if i == 3 and os.environ.get("ROLLUP_TEST_FAIL") == "1":
        raise ValueError(f"piece {i} failed")
    return i, os.getpid(), st.path


def test_pieces_come_back_in_order_and_a_failure_is_raised(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with StateStore.open(tmp_path / "state.db") as store:
        got = parallel.by_piece(store, _piece, 6, 2)
        assert [i for i, _, _ in got] == [0, 1, 2, 3, 4, 5]
        pids = {pid for _, pid, _ in got}
        assert os.getpid() not in pids and 1 <= len(pids) <= 2
        assert {path for _, _, path in got} == {store.path}  # each on a connection of its own
        assert parallel.by_piece(store, _piece, 3, 1) == [
            (0, os.getpid(), store.path), (1, os.getpid(), store.path),
            (2, os.getpid(), store.path),
        ]  # fmt: skip
        monkeypatch.setenv("ROLLUP_TEST_FAIL", "1")
        with pytest.raises(ValueError, match="piece 3 failed"):
            parallel.by_piece(store, _piece, 6, 2)


@pytest.mark.parametrize(
    ("first", "last", "email", "expected"),
    [
        ("Dana", "Whitfield", "d@x.com", "Dana Whitfield"),
        ("Dana", None, "d@x.com", "Dana"),
        ("", "Whitfield", None, "Whitfield"),
        (None, "", "d@x.com", "d@x.com"),
        (None, None, None, "42"),
        ("", "", "", "42"),
    ],
)
def test_a_member_is_named_by_first_and_last_name_else_email_else_id(
    first: str | None, last: str | None, email: str | None, expected: str
) -> None:
    assert member_name(first, last, email, "42") == expected


def test_a_full_rescore_reads_its_contacts_a_few_at_a_time(tmp_path: Path) -> None:
    """Each read of a full rescore is `READ_BATCH` contacts and their events (scored while the
    rows just read are in the CPU's caches; see `ops.common.READ_BATCH`): 300 contacts by id
    range, then the same 300 as the members of 30 accounts, one process each time."""
    from connector.ops.common import READ_BATCH

    model = load_model(Path(__file__).resolve().parents[1] / "config" / "model.yaml")
    with synthetic_store(tmp_path / "state.db", 300, 30) as store:
        seen: list[str] = []
        store._conn.set_trace_callback(seen.append)
        try:
            recompute_all(store, CRM, model, NOW, workers=1)
            by_range = [s for s in seen if "FROM events" in s and "ORDER BY contact_id" in s]
            dropped = [s for s in seen if s.startswith("DROP INDEX")]
            seen.clear()
            stage = AccountStage(cast(Any, SimpleNamespace(store=store, crm=CRM, model=model)))
            assert recompute_all(store, CRM, model, NOW, workers=1, accounts=stage)[0] == 300
            by_id = [s for s in seen if "FROM events" in s and "ORDER BY contact_id" in s]
            dropped_too = [s for s in seen if s.startswith("DROP INDEX")]
        finally:
            store._conn.set_trace_callback(None)
    assert READ_BATCH == 20
    assert len(by_range) == 300 // READ_BATCH  # (the last read of contacts finds none)
    # the members of a batch of whole accounts (here all 30 accounts: a batch holds 500
    # members at least) in reads of 20, not one read of 300
    assert len(by_id) == 300 // READ_BATCH
    assert all(s.count('"') == 2 * READ_BATCH for s in by_id)  # 20 ids in each list
    # every row rewritten: the due index dropped while it runs, and with accounts on the
    # account scores' indexes too (`StateStore.bulk_scoring`)
    assert dropped == ['DROP INDEX IF EXISTS "scores_crm_next_change"']
    assert dropped_too == [
        f'DROP INDEX IF EXISTS "{n}"'
        for n in ("scores_crm_next_change", "account_scores_next", "account_scores_score",
                  "account_scores_model")
    ]  # fmt: skip


def test_the_read_back_after_a_full_rescore_pauses_the_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The account results a full rescore saved are read back for the writes with the cyclic
    collector paused (each collection would walk every result kept so far: half the read-back's
    time at 100,000 accounts), and it runs again after, as it did before."""
    model = load_model(Path(__file__).resolve().parents[1] / "config" / "model.yaml")
    with synthetic_store(tmp_path / "state.db", 300, 30) as store:
        stage = AccountStage(cast(Any, SimpleNamespace(store=store, crm=CRM, model=model)))
        recompute_all(store, CRM, model, NOW, workers=1, accounts=stage)
        rolled = list(stage.state.rolled)
        assert len(rolled) == 30
        read = store.account_scores_many
        seen: list[bool] = []

        def spy(crm: str, ids: Any) -> Any:
            seen.append(gc.isenabled())
            return read(crm, ids)

        monkeypatch.setattr(store, "account_scores_many", spy)
        assert gc.isenabled()
        stage._adopt_rolled()
        assert seen == [False] and gc.isenabled()
        stored = store.account_score(CRM, "company:700007")
        assert stored is not None
        got = stage.state.scored["company:700007"]
        assert (got.score, got.grade, got.reasons) == (stored.score, stored.grade, stored.reasons)
        assert sorted(stage.state.scored) == sorted(rolled)
        # a caller that paused the collector itself finds it paused still
        stage.state.scored.clear()
        stage.state.rolled = rolled
        gc.disable()
        try:
            stage._adopt_rolled()
            assert not gc.isenabled() and len(stage.state.scored) == 30
        finally:
            gc.enable()
