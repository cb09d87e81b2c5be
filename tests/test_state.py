"""The state DB: file safety, migrations, transactions, and exact round-trips of every table."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import stat
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from sqlite_utils import Database

from connector.enrich.cache import CacheEntry, CompanyCache
from connector.errors import StateError
from connector.state import (
    RUN_FAILED,
    RUN_OK,
    SCHEMA_VERSION,
    RunRecord,
    StateStore,
    migrations,
)
from connector.state import runs as runs_mod
from connector.state.base import configure_connection
from connector.state.codec import (
    decode_dt,
    decode_json,
    decode_reasons,
    encode_dt,
    encode_json,
    reason_dict,
    reasons_json,
)
from connector.state.leases import process_start
from connector.state.runs import HEARTBEAT_EVERY, SILENT_RUN, UNCHECKED_RUN, seen_run
from connector.types import Company, Contact, Event, LifecycleDecision, Reason, ScoreResult

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
CRM = "hubspot"


@pytest.fixture
def store() -> Iterator[StateStore]:
    with StateStore.memory() as s:
        yield s


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


def ev(
    source_id: str, contact_id: str, days_ago: float, type_: str = "page_view", **attrs: object
) -> Event:
    return Event(
        source="web",
        source_id=source_id,
        contact_id=contact_id,
        type=type_,
        occurred_at=NOW - timedelta(days=days_ago),
        attributes=dict(attrs),
    )


def contact(id_: str, email: str | None = None, **kw: object) -> Contact:
    return Contact(id=id_, email=email, **kw)  # type: ignore[arg-type]


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# ---------------------------------------------------------------- file, WAL, migrations


def test_file_and_wal_files_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "state.db"
    old = os.umask(0o002)  # a permissive umask must not leak into the DB files
    try:
        with StateStore.open(path) as s:
            assert mode(path) == 0o600
            s.upsert_contacts(CRM, [contact("1", "a@acme.com")], at=NOW)
            s.set_cursor(CRM, "contacts", "42")
            assert s.journal_mode == "wal"
            wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
            assert wal.exists() and shm.exists()
            assert mode(path) == mode(wal) == mode(shm) == 0o600
        with StateStore.open(path) as s:  # re-created -wal/-shm on re-open: private too
            s.set_cursor(CRM, "contacts", "43")
            assert mode(Path(f"{path}-wal")) == 0o600
    finally:
        os.umask(old)


def test_pragmas(db_path: Path) -> None:
    with StateStore.open(db_path, busy_timeout=2.5) as s:
        conn = s.db.conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 2500
        # the WAL is checkpointed every ~40 MiB (10,000 pages), not every 4 MiB
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 10_000


def test_migrations_run_once_and_are_recorded(db_path: Path) -> None:
    with StateStore.open(db_path) as s:
        first = s.applied_migrations()
        assert [(v, n) for v, n, _ in first] == [
            (1, "initial"),
            (2, "write_backlog"),
            (3, "score_history_triggers"),
            (4, "score_history_stage"),
            (5, "live_contacts_index"),
            (6, "active_model"),
            (7, "webhook_events"),
            (8, "accounts"),  # 007 comes from another branch; each applies by its number
            (9, "score_priority"),
            (10, "named_scores"),
            (11, "account_model_index"),
            (12, "run_process"),
            (13, "mqa_index"),
            (14, "dead_letter_dismissal"),
            (15, "event_dead_letter_ids"),
            (16, "run_heartbeat"),
        ]
        assert first[-1][0] == SCHEMA_VERSION
        s.upsert_contacts(CRM, [contact("1", "a@acme.com")], at=NOW)
    for _ in range(2):  # re-open is idempotent: nothing re-applied, data kept
        with StateStore.open(db_path) as s:
            assert s.applied_migrations() == first
            assert s.count_contacts(CRM) == 1
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("SELECT max(version) FROM migrations").fetchone()[0] == SCHEMA_VERSION
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    raw.close()
    assert {
        "contacts",
        "events",
        "companies",
        "scores",
        "score_history",
        "written",
        "cursors",
        "runs",
        "dead_letters",
        "jobs",
        "migrations",
    } <= tables


def test_a_new_migration_runs_once_and_a_failing_one_leaves_nothing(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    StateStore.open(db_path).close()

    def m002_broken(db: Database) -> None:
        db.execute("ALTER TABLE jobs ADD COLUMN note TEXT")
        raise RuntimeError("migration bug")

    def m002_job_note(db: Database) -> None:
        db.execute("ALTER TABLE jobs ADD COLUMN note TEXT")  # fails if ever run twice

    real = migrations.MIGRATIONS
    nxt = SCHEMA_VERSION + 1
    m002_broken.__name__ = f"m{nxt:03d}_broken"
    m002_job_note.__name__ = f"m{nxt:03d}_job_note"
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", nxt)
    monkeypatch.setattr(migrations, "MIGRATIONS", (*real, m002_broken))
    with pytest.raises(RuntimeError, match="migration bug"):
        StateStore.open(db_path)
    monkeypatch.setattr(migrations, "MIGRATIONS", (*real, m002_job_note))
    for _ in range(2):
        with StateStore.open(db_path) as s:
            assert [(v, n) for v, n, _ in s.applied_migrations()] == [
                (1, "initial"),
                (2, "write_backlog"),
                (3, "score_history_triggers"),
                (4, "score_history_stage"),
                (5, "live_contacts_index"),
                (6, "active_model"),
                (7, "webhook_events"),
                (8, "accounts"),
                (9, "score_priority"),
                (10, "named_scores"),
                (11, "account_model_index"),
                (12, "run_process"),
                (13, "mqa_index"),
                (14, "dead_letter_dismissal"),
                (15, "event_dead_letter_ids"),
                (16, "run_heartbeat"),
                (nxt, "job_note"),
            ]
            assert "note" in s.db.table("jobs").columns_dict


def test_db_from_a_newer_version_is_refused(db_path: Path) -> None:
    StateStore.open(db_path).close()
    raw = sqlite3.connect(db_path)
    with raw:
        raw.execute(
            "INSERT INTO migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (SCHEMA_VERSION + 1, "future", encode_dt(NOW)),
        )
    raw.close()
    with pytest.raises(
        StateError, match=rf"schema version {SCHEMA_VERSION + 1}, written by a newer leadscore"
    ):
        StateStore.open(db_path)


def test_garbage_file_is_refused_with_its_path(db_path: Path) -> None:
    db_path.write_bytes(b"this is a CSV, not a database\n" * 200)
    with pytest.raises(StateError) as info:
        StateStore.open(db_path)
    assert str(info.value).startswith(f"state DB {db_path} is not a valid SQLite database: ")
    assert db_path.read_bytes().startswith(b"this is a CSV")  # untouched


def test_corrupt_file_is_refused(db_path: Path) -> None:
    with StateStore.open(db_path) as s:
        s.upsert_contacts(CRM, [contact(str(i), f"{i}@acme.com") for i in range(50)], at=NOW)
    data = bytearray(db_path.read_bytes())  # closing checkpointed the WAL into the file
    data[100:4096] = b"\xa5" * (4096 - 100)  # the schema page, after a valid header
    db_path.write_bytes(bytes(data))
    with pytest.raises(StateError, match=r"is not a valid SQLite database: .*malformed"):
        StateStore.open(db_path)


def test_foreign_sqlite_db_is_refused(db_path: Path) -> None:
    raw = sqlite3.connect(db_path)
    with raw:
        raw.execute("CREATE TABLE invoices (id INTEGER)")
    raw.close()
    with pytest.raises(StateError, match="not a leadscore state DB"):
        StateStore.open(db_path)


def test_locked_db_fails_fast_on_write(db_path: Path) -> None:
    StateStore.open(db_path).close()
    other = sqlite3.connect(db_path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        other.execute("INSERT INTO cursors VALUES ('hubspot', 'x', '1', '2026')")
        with StateStore.open(db_path, busy_timeout=0.1) as s:  # WAL: reading still works
            assert s.get_cursor(CRM, "contacts") is None
            started = time.monotonic()
            with pytest.raises(StateError) as info:
                s.set_cursor(CRM, "contacts", "1")
            assert time.monotonic() - started < 2
            assert str(db_path) in str(info.value)
            assert "another process holds it" in str(info.value)
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_locked_db_fails_fast_on_open(db_path: Path) -> None:
    StateStore.open(db_path).close()
    other = sqlite3.connect(db_path, isolation_level=None)
    try:
        assert other.execute("PRAGMA journal_mode = DELETE").fetchone()[0] == "delete"
        other.execute("BEGIN EXCLUSIVE")  # in rollback-journal mode this blocks readers too
        other.execute("INSERT INTO cursors VALUES ('hubspot', 'x', '1', '2026')")
        started = time.monotonic()
        with pytest.raises(StateError, match="another process holds it") as info:
            StateStore.open(db_path, busy_timeout=0.1)
        assert time.monotonic() - started < 2
        assert str(db_path) in str(info.value)
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="is a directory"):
        StateStore.open(tmp_path)


# ---------------------------------------------------------------- transactions


def test_rollback_leaves_nothing_data_and_cursor_together(db_path: Path) -> None:
    with StateStore.open(db_path) as s:
        with pytest.raises(RuntimeError, match="boom"), s.transaction():
            s.upsert_contacts(CRM, [contact("1", "a@acme.com")], at=NOW)
            assert s.insert_events(CRM, [ev("e1", "1", 1)]) == {"1"}
            s.set_cursor(CRM, "contacts", "1000")
            s.record_written(CRM, "1", {"score": "10"}, NOW)
            with s.transaction():  # nested: a no-op block inside the outer transaction
                s.set_cursor(CRM, "events", "9")
            raise RuntimeError("boom")
        assert not s.in_transaction
        assert s.count_contacts(CRM) == 0
        assert s.count_events(CRM) == 0
        assert s.get_cursor(CRM, "contacts") is None
        assert s.get_cursor(CRM, "events") is None
        assert s.get_written(CRM, "1") == {}
    with StateStore.open(db_path) as s:
        assert s.count_contacts(CRM) == 0 and s.get_cursor(CRM, "contacts") is None


def test_commit_boundaries(db_path: Path) -> None:
    with StateStore.open(db_path) as s:
        reader = sqlite3.connect(db_path, isolation_level=None)
        try:

            def cursor_seen_by_other_process() -> str | None:
                row = reader.execute("SELECT value FROM cursors WHERE stream = 'c'").fetchone()
                return None if row is None else str(row[0])

            s.set_cursor(CRM, "c", "1")  # outside a transaction: commits on its own
            assert cursor_seen_by_other_process() == "1"
            with s.transaction():
                s.set_cursor(CRM, "c", "2")
                with s.transaction():
                    s.set_cursor(CRM, "c", "3")
                assert cursor_seen_by_other_process() == "1"  # inner exit did not commit
            assert cursor_seen_by_other_process() == "3"
        finally:
            reader.close()


# ---------------------------------------------------------------- contacts


FULL = Contact(
    id="101",
    email="Ada.Lovelace@Acme-Analytics.com",
    first_name="Ada",
    last_name="Lovelace",
    job_title="VP Engineering",
    company_name="Acme Analytics",
    country="GB",
    lifecycle_stage="lead",
    lead_status="OPEN",
    lead_status_changed_at=datetime(2026, 10, 1, 9, 30, 15, 123456, tzinfo=UTC),
    recycled_at=datetime(2026, 9, 1, tzinfo=UTC),
    mql_at=datetime(2026, 10, 2, tzinfo=timezone(timedelta(hours=2))),
    created_at=datetime(2025, 1, 1, tzinfo=UTC),
    updated_at=NOW,
    properties={"hs_object_id": "101", "numemployees": 850, "tags": ["a", "b"], "x": None},
)


def test_contact_round_trips_exactly(store: StateStore) -> None:
    assert store.upsert_contacts(CRM, [FULL, contact("102")], at=NOW) == 2
    got = store.get_contact(CRM, "101")
    assert got == FULL
    assert got is not None and got.mql_at is not None and got.mql_at.tzinfo is not None
    assert store.get_contact(CRM, "102") == Contact(id="102")
    assert store.get_contact("marketo", "101") is None  # keyed by crm too
    assert store.get_contact(CRM, "nope") is None


def test_upsert_updates_fields_keeps_first_seen(store: StateStore) -> None:
    store.upsert_contacts(CRM, [contact("1", "a@acme.com", job_title="Analyst")], at=NOW)
    later = NOW + timedelta(hours=1)
    store.upsert_contacts(CRM, [contact("1", "a@acme.com", job_title="Manager")], at=later)
    assert store.get_contact(CRM, "1") == contact("1", "a@acme.com", job_title="Manager")
    row = store.db.execute(
        "SELECT first_seen_at, last_pulled_at FROM contacts WHERE id = '1'"
    ).fetchone()
    assert (decode_dt(row[0]), decode_dt(row[1])) == (NOW, later)
    assert store.count_contacts(CRM) == 1


def test_naive_datetimes_are_rejected(store: StateStore) -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        store.upsert_contacts(CRM, [Contact(id="1", created_at=datetime(2026, 1, 1))])
    assert store.count_contacts(CRM) == 0  # the failed batch rolled back


def test_find_contact_ids_by_email(store: StateStore) -> None:
    store.upsert_contacts(
        CRM,
        [
            contact("1", "Ada@Acme.com"),
            contact("2", "bob@acme.com"),
            contact("3", "gone@acme.com"),
            contact("4", "merged@acme.com"),
            contact("5", None),
        ],
        at=NOW,
    )
    store.mark_archived(CRM, "3", NOW)
    store.merge_contacts(CRM, "4", "2", NOW)
    found = store.find_contact_ids_by_email(
        CRM, ["ADA@acme.COM", "bob@acme.com", "gone@acme.com", "merged@acme.com", "x@y.z", ""]
    )
    assert found == {"ada@acme.com": "1", "bob@acme.com": "2"}
    assert store.find_contact_ids_by_email("marketo", ["ada@acme.com"]) == {}


def test_archived_contacts(store: StateStore) -> None:
    store.upsert_contacts(CRM, [contact("1"), contact("2")], at=NOW)
    assert store.is_writable(CRM, "1")
    store.mark_archived(CRM, "1", NOW)
    assert not store.is_writable(CRM, "1")
    assert store.is_writable(CRM, "2")
    assert store.is_writable(CRM, "unknown")
    assert store.count_contacts(CRM) == 1
    assert store.count_contacts(CRM, include_inactive=True) == 2
    assert [c.id for c in store.iter_contacts(CRM)] == ["2"]
    assert [c.id for c in store.iter_contacts(CRM, include_inactive=True)] == ["1", "2"]
    store.mark_archived(CRM, "never-pulled", NOW)  # a 404 for an id we never stored
    assert not store.is_writable(CRM, "never-pulled")
    store.upsert_contacts(CRM, [contact("1")], at=NOW)  # the CRM returned it: live again
    assert store.is_writable(CRM, "1")


def test_iter_contacts_in_id_order_across_batches(store: StateStore) -> None:
    ids = [f"{i:03d}" for i in range(10)]
    store.upsert_contacts(CRM, [contact(i) for i in reversed(ids)], at=NOW)
    assert [c.id for c in store.iter_contacts(CRM, batch=3)] == ids
    assert [c.id for c in store.iter_contacts(CRM, ids=["007", "001", "x", "001"], batch=1)] == [
        "001",
        "007",
    ]


# ---------------------------------------------------------------- merges


def test_merge_moves_events_without_duplicates_and_blocks_writes(store: StateStore) -> None:
    store.upsert_contacts(CRM, [contact("A", "a@acme.com"), contact("B", "b@acme.com")], at=NOW)
    store.insert_events(CRM, [ev("e1", "A", 3), ev("e2", "A", 2), ev("e3", "B", 1)])
    # A replay after the merge reports e2 under the survivor: same source id, not a new event.
    assert store.insert_events(CRM, [ev("e2", "B", 2)]) == set()
    store.save_scores(CRM, [score_result("A"), score_result("B")])
    store.record_written(CRM, "A", {"score": "10"}, NOW)
    store.record_written(CRM, "B", {"score": "20"}, NOW)
    store.set_write_pending(CRM, ["A", "B"], True)

    assert store.merge_contacts(CRM, "A", "B", NOW) == 2
    assert store.pending_write_ids(CRM) == ["B"]  # the absorbed one never lingers there
    assert [(e.source_id, e.contact_id) for e in store.events_for(CRM, "B")] == [
        ("e1", "B"),
        ("e2", "B"),
        ("e3", "B"),
    ]
    assert store.events_for(CRM, "A") == []
    assert store.count_events(CRM) == 3
    assert store.insert_events(CRM, [ev("e1", "B", 3), ev("e2", "A", 2)]) == set()
    assert store.count_events(CRM) == 3

    assert not store.is_writable(CRM, "A")
    assert store.is_writable(CRM, "B")
    assert store.resolve_id(CRM, "A") == "B"
    assert store.merged_into(CRM, "A") == "B"
    assert store.get_score(CRM, "A") is None and store.get_score(CRM, "B") is not None
    assert store.get_written(CRM, "A") == {}
    assert store.get_written(CRM, "B") == {"score": "20"}
    assert [c.id for c in store.iter_contacts(CRM)] == ["B"]
    assert store.get_contact(CRM, "A") == contact("A", "a@acme.com")  # still readable


def test_merge_chains_and_reversal(store: StateStore) -> None:
    store.upsert_contacts(CRM, [contact("A"), contact("B"), contact("C")], at=NOW)
    store.insert_events(CRM, [ev("c1", "C", 1)])
    store.merge_contacts(CRM, "C", "A", NOW)
    store.merge_contacts(CRM, "A", "B", NOW)
    assert store.resolve_id(CRM, "C") == "B"
    assert store.merged_into(CRM, "C") == "B"  # re-pointed: chains stay short
    assert [e.contact_id for e in store.events_for(CRM, "B")] == ["B"]
    # Merging into an id that was itself merged away lands on the final survivor.
    store.merge_contacts(CRM, "X-never-pulled", "A", NOW)
    assert store.resolve_id(CRM, "X-never-pulled") == "B"
    assert not store.is_writable(CRM, "X-never-pulled")
    # The CRM now says B was merged into A: the newer fact wins, no loop.
    store.merge_contacts(CRM, "B", "A", NOW)
    assert store.resolve_id(CRM, "B") == "A"
    assert store.resolve_id(CRM, "C") == "A"
    assert store.is_writable(CRM, "A")
    with pytest.raises(ValueError, match="into itself"):
        store.merge_contacts(CRM, "A", "A", NOW)


def test_resolve_id_loop_guard(store: StateStore) -> None:
    store.db.execute(
        "INSERT INTO contacts (crm, id, merged_into, first_seen_at) VALUES "
        "('hubspot', 'P', 'Q', 'x'), ('hubspot', 'Q', 'P', 'x')"
    )
    with pytest.raises(StateError, match="loops"):
        store.resolve_id(CRM, "P")


# ---------------------------------------------------------------- events


def test_events_are_idempotent_by_source_id(store: StateStore) -> None:
    three = [ev("e1", "1", 3, url="/pricing"), ev("e2", "1", 1), ev("e3", "2", 2)]
    assert store.insert_events(CRM, three) == {"1", "2"}
    assert store.insert_events(CRM, three) == set()
    assert store.count_events(CRM) == 3
    assert store.insert_events(CRM, [ev("e3", "2", 2), ev("e4", "2", 0)]) == {"2"}
    assert store.insert_events("marketo", three) == {"1", "2"}  # keyed by crm
    assert store.count_events(CRM) == 4


def test_events_round_trip_in_time_order(store: StateStore) -> None:
    paris = timezone(timedelta(hours=1))
    events = [
        Event("hubspot_forms", "f1", "1", "form_submit", NOW.astimezone(paris), {"form": "Demo"}),
        ev("p1", "1", 5, url="/pricing", referrer=None, n=2, share=0.75, nested={"a": [1]}),
        ev("p2", "1", 5),  # same instant as p1: insertion order breaks the tie
        ev("o1", "2", 1),
    ]
    store.insert_events(CRM, events)
    got = store.events_for(CRM, "1")
    assert got == [events[1], events[2], events[0]]
    assert all(e.occurred_at.tzinfo is not None for e in got)


def test_stream_yields_every_contact_with_exactly_its_events(store: StateStore) -> None:
    ids = [f"c{i:02d}" for i in range(23)]
    store.upsert_contacts(CRM, [contact(i, f"{i}@acme.com") for i in ids], at=NOW)
    store.mark_archived(CRM, "c05", NOW)
    expected: dict[str, list[Event]] = {i: [] for i in ids}
    events: list[Event] = []
    for n in range(120):
        cid = ids[(n * 7) % len(ids)]
        if n % 5 == 0:
            continue  # some contacts get few or no events
        e = ev(f"e{n}", cid, days_ago=(n * 13) % 30)
        events.append(e)
        expected[cid].append(e)
    # events of contacts we have no row for must not leak into neighbours
    events += [ev("orphan1", "c00a", 1), ev("orphan2", "zzz", 1), ev("orphan3", "a", 1)]
    store.insert_events(CRM, reversed(events))
    store.insert_events("marketo", [ev("m1", "c01", 1)])
    for cid in expected:
        expected[cid].sort(key=lambda e: e.occurred_at)
    live = [i for i in ids if i != "c05"]

    for batch in (1, 4, 22, 23, 1000):
        got = list(store.iter_contacts_with_events(CRM, batch=batch))
        assert [c.id for c, _ in got] == live
        for c, evs in got:
            assert c == contact(c.id, f"{c.id}@acme.com")
            assert [e.source_id for e in evs] == [e.source_id for e in expected[c.id]]
            assert [e.occurred_at for e in evs] == sorted(e.occurred_at for e in evs)

    wanted = ["c17", "c03", "c05", "nope", "c11", "c03"]
    for batch in (1, 2, 100):
        got = list(store.iter_contacts_with_events(CRM, wanted, batch=batch))
        assert [c.id for c, _ in got] == ["c03", "c11", "c17"]
        assert all(evs == expected[c.id] for c, evs in got)


def test_stream_reads_one_batch_at_a_time_and_allows_writes(store: StateStore) -> None:
    ids = [f"c{i:03d}" for i in range(50)]
    store.upsert_contacts(CRM, [contact(i) for i in ids], at=NOW)
    store.insert_events(CRM, [ev(f"{i}-{k}", i, k) for i in ids for k in range(3)])
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)
    try:
        stream = store.iter_contacts_with_events(CRM, batch=8)
        first = [next(stream) for _ in range(8)]
        selects = [s for s in statements if s.lstrip().startswith("SELECT")]
        assert len(selects) == 2  # one batch of contacts + their events, nothing more yet
        assert [c.id for c, _ in first] == ids[:8]
        seen = [c.id for c, _ in first]
        for c, evs in stream:  # the caller may save scores while streaming
            assert len(evs) == 3
            store.save_scores(CRM, [score_result(c.id)])
            seen.append(c.id)
    finally:
        store.db.conn.set_trace_callback(None)
    assert seen == ids
    assert sum(1 for _ in store.iter_scores(CRM, batch=7)) == 50 - 8


def test_stream_rejects_bad_batch(store: StateStore) -> None:
    with pytest.raises(ValueError, match="batch"):
        list(store.iter_contacts_with_events(CRM, batch=0))


# ---------------------------------------------------------------- scores


def reasons_text(reasons: list[Reason]) -> str:
    """The stored text of `reasons` (the codec hands the store orjson's bytes or the stdlib's
    text; SQLite keeps text either way)."""
    out = reasons_json(reasons)
    return out if isinstance(out, str) else out.decode()


def score_result(contact_id: str, score: float = 62.5, **kw: object) -> ScoreResult:
    fields: dict[str, object] = {
        "contact_id": contact_id,
        "score": score,
        "engagement_points": score - 10,
        "fit_points": 10.0,
        "grade": "B",
        "lifecycle": LifecycleDecision(
            current_stage="lead",
            target_stage="marketingqualifiedlead",
            mql=True,
            mql_reason="hand-raiser: Contact Us form",
            recycled=False,
            note="threshold 50",
        ),
        "profile_mismatch": False,
        "model_version": "2026.10",
        "model_fingerprint": "sha256:abc",
        "scored_at": NOW,
        "next_change_at": NOW + timedelta(days=3),
        "reasons": (
            Reason("webinar", "webinar", 50, "watched webinar 'X' (full)", ("web:e1",)),
            Reason("pricing", "web", 12.5, "pricing page twice", ("web:e2", "web:e3")),
            Reason("grade", "fit", 0.0, "grade B: title Manager", (), "fit"),
        ),
        "hand_raiser": True,
    }
    fields.update(kw)
    return ScoreResult(**fields)  # type: ignore[arg-type]


def test_score_result_round_trips(store: StateStore) -> None:
    a = score_result("1")
    b = score_result(
        "2",
        score=0.0,
        grade="D",
        lifecycle=LifecycleDecision(None, None, False, None),
        next_change_at=None,
        reasons=(),
        profile_mismatch=True,
        hand_raiser=False,
    )
    assert store.save_scores(CRM, [a, b]) == 2
    stored = store.get_score(CRM, "1")
    assert stored is not None
    assert stored.to_result() == a
    assert stored.reasons == a.reasons and isinstance(stored.reasons[0], Reason)
    assert (stored.mql, stored.mql_reason, stored.target_stage) == (
        True,
        "hand-raiser: Contact Us form",
        "marketingqualifiedlead",
    )
    stored_b = store.get_score(CRM, "2")
    assert stored_b is not None and stored_b.to_result() == b
    assert store.get_score(CRM, "3") is None
    assert [s.contact_id for s in store.iter_scores(CRM, batch=1)] == ["1", "2"]


def test_stored_reasons_are_text_in_both_encodings(store: StateStore) -> None:
    """orjson's UTF-8 bytes are bound as TEXT (CAST), the stdlib's text as it is: SQLite holds
    text either way (JSON functions and other readers work on it), non-ASCII kept."""
    fancy = Reason("pricing", "web", 12.5, "pricing — “Team” ×2 ✓", ("web:é1",))
    odd = Reason("odd", "web", float("nan"), "not a number", ())  # the stdlib path
    store.save_scores(
        CRM, [score_result("1", reasons=(fancy,)), score_result("2", reasons=(fancy, odd))]
    )
    rows = store.db.execute(
        "SELECT contact_id, typeof(reasons), reasons FROM scores ORDER BY contact_id"
    ).fetchall()
    assert [r[:2] for r in rows] == [("1", "text"), ("2", "text")]
    assert rows[0][2] == reasons_text([fancy]) and "NaN" in rows[1][2]
    (text,) = store.db.execute(
        "SELECT json_extract(reasons, '$[0].text') FROM scores WHERE contact_id = '1'"
    ).fetchone()
    assert text == "pricing — “Team” ×2 ✓"
    one = store.get_score(CRM, "1")
    assert one is not None and one.reasons == (fancy,)


def test_due_contact_ids(store: StateStore) -> None:
    store.save_scores(
        CRM,
        [
            score_result("late", next_change_at=NOW + timedelta(days=2)),
            score_result("due", next_change_at=NOW - timedelta(seconds=1)),
            score_result("exact", next_change_at=NOW),
            score_result("never", next_change_at=None),
        ],
    )
    assert store.due_contact_ids(CRM, NOW) == ["due", "exact"]
    # another offset for the same instant compares the same
    assert store.due_contact_ids(CRM, NOW.astimezone(timezone(timedelta(hours=-5)))) == [
        "due",
        "exact",
    ]


def test_score_history_appends_only_changes(store: StateStore) -> None:
    store.save_scores(CRM, [score_result("1", 10.0)])
    store.save_scores(CRM, [score_result("1", 10.0, scored_at=NOW + timedelta(hours=1))])
    store.save_scores(CRM, [score_result("1", 30.0, scored_at=NOW + timedelta(hours=2))])
    store.save_scores(
        CRM, [score_result("1", 30.0, model_version="2026.11", scored_at=NOW + timedelta(3))]
    )
    history = store.score_history(CRM, "1")
    assert [(h["score"], h["model_version"]) for h in history] == [
        (10.0, "2026.10"),
        (30.0, "2026.10"),
        (30.0, "2026.11"),
    ]
    current = store.get_score(CRM, "1")
    assert current is not None and current.model_version == "2026.11"


# ---------------------------------------------------------------- written, cursors, runs, jobs


def test_written_values(store: StateStore) -> None:
    store.record_written(CRM, "1", {"ls_score": "50", "ls_grade": "B"}, NOW)
    store.record_written(CRM, "1", {"ls_score": "55"}, NOW + timedelta(minutes=1))
    store.record_written(CRM, "2", {"ls_score": "5"}, NOW)
    assert store.get_written(CRM, "1") == {"ls_score": "55", "ls_grade": "B"}
    assert store.get_written_many(CRM, ["1", "2", "3"]) == {
        "1": {"ls_score": "55", "ls_grade": "B"},
        "2": {"ls_score": "5"},
        "3": {},
    }
    assert store.get_written("marketo", "1") == {}


def test_cursors(store: StateStore) -> None:
    assert store.get_cursor(CRM, "contacts") is None
    store.set_cursor(CRM, "contacts", "2026-11-01T00:00:00Z")
    store.set_cursor(CRM, "contacts", "2026-11-02T00:00:00Z")
    store.set_cursor("marketo", "contacts", "token-1")
    assert store.get_cursor(CRM, "contacts") == "2026-11-02T00:00:00Z"
    assert store.get_cursor("marketo", "contacts") == "token-1"


def test_runs(store: StateStore) -> None:
    r1 = store.start_run(CRM, "sync", at=NOW)
    store.finish_run(r1, RUN_OK, {"pulled": 10, "written": 3}, 7, 0, None, at=NOW + timedelta(5))
    r2 = store.start_run(CRM, "sync", at=NOW + timedelta(days=1))
    store.finish_run(r2, RUN_FAILED, {}, 2, 1, "401 with Authorization: Bearer pat-na1-12345678")
    r3 = store.start_run(CRM, "rescore", at=NOW)
    runs = store.last_runs(CRM, 2)
    assert [r.id for r in runs] == [r3, r2]
    assert runs[0].status == "running" and runs[0].finished_at is None
    assert runs[1].message is not None and "pat-na1-12345678" not in runs[1].message
    ok = store.last_successful_run(CRM, "sync")
    assert ok is not None and ok.id == r1
    assert ok.counts == {"pulled": 10, "written": 3} and ok.api_calls == 7
    assert ok.duration == timedelta(days=5)
    assert store.last_successful_run(CRM, "rescore") is None
    assert store.last_successful_run("marketo", "sync") is None
    with pytest.raises(ValueError, match="no run"):
        store.finish_run(999, RUN_OK, {}, 0, 0, None)
    # each run names its process: pid, host and start (Linux: ticks after boot)
    me = (os.getpid(), socket.gethostname(), process_start(os.getpid()))
    assert [(r.pid, r.host, r.process_start) for r in runs] == [me, me]
    assert isinstance(me[2], int) or not Path("/proc").is_dir()


def dead_pid() -> int:
    """The pid of a process of this host that has ended (reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _shown(run: RunRecord, now: datetime) -> tuple[str, str | None]:
    seen = seen_run(run, now)
    return seen.status, seen.message


def test_a_running_run_is_shown_by_whether_its_process_is_there() -> None:
    """Here: its pid alive with the start recorded → running; gone, or taken since by a
    process that started at another time → interrupted. Of another host (the pid says
    nothing): running, then probably interrupted after `UNCHECKED_RUN`. A run from before
    migration 012 (no process) or a finished one: as stored. A process killed but not yet
    reaped (a zombie) is gone."""
    here, me, dead = socket.gethostname(), os.getpid(), dead_pid()
    start = process_start(me)
    assert timedelta(hours=2) == UNCHECKED_RUN

    def run(
        pid: int | None, host: str | None, begun: timedelta, process_start: int | None = None
    ) -> RunRecord:
        return RunRecord(
            1, CRM, "sync", NOW - begun, None, "running", pid=pid, host=host,
            process_start=process_start,
        )  # fmt: skip

    cases = [
        (run(me, here, timedelta(days=3), process_start=start), "running", "is at work"),
        (run(me, here, timedelta(0)), "running", "is at work"),  # no start recorded: pid only
        (run(dead, here, timedelta(0)), "interrupted", "ended without finishing it"),
        # the pid taken since by a process that started at another time
        (run(me, here, timedelta(0), process_start=-1), "interrupted",
         "ended without finishing it"),
        (run(me, "elsewhere", timedelta(hours=1, minutes=59)), "running",
         "runs on another host (not checked from here)"),
        (run(me, "elsewhere", timedelta(hours=2)), "probably interrupted",
         "runs on another host (not checked from here) and has not finished it in 2 hours"),
    ]  # fmt: skip
    for r, status, says in cases:
        assert _shown(r, NOW) == (status, f"the process (pid {r.pid} on {r.host}) {says}"), r
    zombie = subprocess.Popen(["sleep", "60"])  # killed, not yet reaped by its parent (us)
    try:
        zombie_start = process_start(zombie.pid)
        os.kill(zombie.pid, signal.SIGKILL)
        os.waitid(os.P_PID, zombie.pid, os.WEXITED | os.WNOWAIT)
        os.kill(zombie.pid, 0)  # its pid still answers
        assert _shown(run(zombie.pid, here, timedelta(0), zombie_start), NOW) == (
            "interrupted",
            f"the process (pid {zombie.pid} on {here}) ended without finishing it",
        )
    finally:
        zombie.wait()
    old = run(None, None, timedelta(days=30))
    assert seen_run(old, NOW) is old  # from before migration 012: running, as today
    done = RunRecord(1, CRM, "sync", NOW, NOW, "ok", pid=dead, host=here)
    assert seen_run(done, NOW) is done


def test_starting_a_run_records_the_runs_of_its_host_left_by_a_gone_process(
    store: StateStore,
) -> None:
    """In start_run's transaction, one UPDATE: the `running` runs of this host whose process
    is gone become `interrupted` (any CRM; finished_at stays NULL, the message names the
    process and the run that found it). A live process's, another host's, one from before
    migration 012 and a finished one are left as they are."""
    here, dead = socket.gethostname(), dead_pid()
    ids = [store.start_run(crm, "sync", at=NOW) for crm in (CRM, CRM, "marketo", CRM, CRM, CRM)]
    live, gone, gone_marketo, other_host, old, finished = ids
    store.finish_run(finished, RUN_OK, at=NOW)
    store.db.execute(
        "UPDATE runs SET pid = ? WHERE id IN (?, ?, ?)", (dead, gone, gone_marketo, finished)
    )
    store.db.execute("UPDATE runs SET host = 'elsewhere', pid = ? WHERE id = ?", (dead, other_host))
    store.db.execute(
        "UPDATE runs SET host = NULL, pid = NULL, process_start = NULL WHERE id = ?", (old,)
    )
    before = store.db.execute(
        "SELECT * FROM runs WHERE id IN (?, ?, ?, ?)", (live, other_host, old, finished)
    ).fetchall()
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)
    try:
        new = store.start_run(CRM, "rescore", at=NOW + timedelta(hours=1))
    finally:
        store.db.conn.set_trace_callback(None)
    assert [s.split()[0] for s in statements] == ["BEGIN", "INSERT", "SELECT", "UPDATE", "COMMIT"]
    ended = (
        f"the process (pid {dead} on {here}) ended without finishing it "
        f"(found when run {new} started)"
    )
    assert store.db.execute(
        "SELECT id, crm, status, finished_at, message FROM runs WHERE id IN (?, ?)",
        (gone, gone_marketo),
    ).fetchall() == [
        (gone, CRM, "interrupted", None, ended),
        (gone_marketo, "marketo", "interrupted", None, ended),
    ]
    assert (
        store.db.execute(
            "SELECT * FROM runs WHERE id IN (?, ?, ?, ?)", (live, other_host, old, finished)
        ).fetchall()
        == before
    )
    interrupted = store.get_run(gone)
    assert interrupted is not None and seen_run(interrupted, NOW) is interrupted
    statements.clear()
    store.db.conn.set_trace_callback(statements.append)
    try:
        store.start_run(CRM, "sync", at=NOW + timedelta(hours=2))  # nothing left to mark
    finally:
        store.db.conn.set_trace_callback(None)
    assert [s.split()[0] for s in statements] == ["BEGIN", "INSERT", "SELECT", "COMMIT"]
    assert "runs_running" in " ".join(
        str(r) for r in store.db.execute(f"EXPLAIN QUERY PLAN {runs_mod._RUNNING_ON_HOST}", (here,))
    )


def test_dead_letter_repeat_bumps_attempts(store: StateStore) -> None:
    payload = {"properties": {"ls_score": "50"}, "access_token": "pat-secret"}
    d1 = store.add_dead_letter(CRM, "write", "1", payload, "400 INVALID_OPTION", NOW)
    d2 = store.add_dead_letter(CRM, "write", "1", payload, "400 again", NOW + timedelta(hours=1))
    assert d1 is not None and d1 == d2
    store.add_dead_letter(CRM, "input", "1", {"email": "x"}, "bad email", NOW)
    store.add_dead_letter(CRM, "event", None, {"raw": 1}, "no contact", NOW)
    open_ = store.open_dead_letters(CRM)
    assert len(open_) == 3 and store.count_open_dead_letters(CRM) == 3
    first = open_[0]
    assert (first.kind, first.contact_id, first.attempts, first.reason) == (
        "write",
        "1",
        2,
        "400 again",
    )
    assert (first.first_seen_at, first.last_tried_at) == (NOW, NOW + timedelta(hours=1))
    assert first.payload == {"properties": {"ls_score": "50"}, "access_token": "**********"}
    assert open_[2].contact_id is None
    assert [d.kind for d in store.open_dead_letters(CRM, "input")] == ["input"]

    assert store.resolve_dead_letter(d1, NOW)
    assert not store.resolve_dead_letter(d1, NOW)
    assert store.count_open_dead_letters(CRM) == 2
    d3 = store.add_dead_letter(CRM, "write", "1", payload, "fails again", NOW)
    assert d3 != d1  # after resolution a new failure opens a new dead letter
    assert store.count_open_dead_letters(CRM) == 3
    assert store.count_open_dead_letters("marketo") == 0


_DL_ROW = (
    "SELECT id, kind, contact_id, payload, reason, attempts, first_seen_at, last_tried_at, "
    "resolved_at, dismissed_at FROM dead_letters ORDER BY id"
)


def test_a_dismissed_input_dead_letter_stays_so_until_its_payload_changes(
    store: StateStore,
) -> None:
    """Dismissed, the same record read again with the same payload (its keys in another
    order too) leaves the row as it is and returns None (not counted); another payload
    reopens it (attempts go on, the new payload and reason kept); a clean read resolves a
    dismissed one; a write dead letter, a resolved one and another CRM's are not
    dismissed."""
    later = NOW + timedelta(hours=1)
    payload = {"id": "e1", "occurred_at": "2027-12-01T00:00:00.000Z", "token": "pat-1"}
    d1 = store.add_dead_letter(CRM, "input", "e1", payload, "e1: in the future", NOW)
    d2 = store.add_dead_letter(CRM, "input", "c2", {"email": 5}, "c2: email: not text", NOW)
    w = store.add_dead_letter(CRM, "write", "7", {"x": "1"}, "400", NOW)
    other = store.add_dead_letter("marketo", "input", "9", {}, "bad", NOW)
    assert (d1, d2, w, other) == (1, 2, 3, 4)
    assert store.dismiss_dead_letters(CRM, [1, 3, 4, 99, 1], later) == {
        1: "dismissed",
        3: "not input",
        4: "unknown",
        99: "unknown",
    }
    assert store.dismiss_dead_letters(CRM, [1], later + timedelta(hours=1)) == {
        1: "already dismissed"
    }
    assert [d.id for d in store.open_dead_letters(CRM)] == [2, 3]
    assert [d.id for d in store.open_dead_letters(CRM, with_dismissed=True)] == [1, 2, 3]
    assert store.count_open_dead_letters(CRM) == 2
    stored_payload = '{"id":"e1","occurred_at":"2027-12-01T00:00:00.000Z","token":"**********"}'
    row1 = (1, "input", "e1", stored_payload, "e1: in the future", 1, encode_dt(NOW),
            encode_dt(NOW), None, encode_dt(later))  # fmt: skip
    assert store.db.execute(_DL_ROW).fetchall()[0] == row1

    # read again, the same (keys in another order, another secret masked the same): as it was
    same = {"token": "pat-2", "occurred_at": "2027-12-01T00:00:00.000Z", "id": "e1"}
    assert store.add_dead_letter(CRM, "input", "e1", same, "e1: in the future", later) is None
    assert store.db.execute(_DL_ROW).fetchall()[0] == row1
    assert store.count_open_dead_letters(CRM) == 2

    # read again with another payload: reopened, the same row
    moved = {**payload, "occurred_at": "2027-12-02T00:00:00.000Z"}
    at = later + timedelta(hours=2)
    assert store.add_dead_letter(CRM, "input", "e1", moved, "e1: moved", at) == 1
    assert store.db.execute(_DL_ROW).fetchall()[0] == (
        1, "input", "e1", stored_payload.replace("12-01", "12-02"), "e1: moved", 2,
        encode_dt(NOW), encode_dt(at), None, None,
    )  # fmt: skip
    assert [d.id for d in store.open_dead_letters(CRM)] == [1, 2, 3]

    # dismissed again, then read cleanly: resolved, as an open one is
    assert store.dismiss_dead_letters(CRM, [1, 2], at) == {1: "dismissed", 2: "dismissed"}
    assert store.resolve_input_dead_letters(CRM, ["c2"], at) == 1
    assert store.dismiss_dead_letters(CRM, [2], at) == {2: "resolved"}
    assert [(d.id, d.resolved_at) for d in store.open_dead_letters(CRM, with_dismissed=True)] == [
        (1, None),
        (3, None),
    ]
    # resolved, the same bad record read again opens a new dead letter (the record changed)
    assert store.add_dead_letter(CRM, "input", "c2", {"email": 5}, "c2: again", at) == 5


def test_a_db_from_before_dead_letter_dismissal_keeps_its_dead_letters(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migration 014 on a DB of schema 13: its dead letters kept as they were, open (no
    dismissal, no payload hash); a repeat bumps one as before; one dismissed gets its
    payload's hash then and stays dismissed when read again the same."""
    real = migrations.MIGRATIONS
    assert migrations._version(real[13]) == (14, "dead_letter_dismissal")
    monkeypatch.setattr(migrations, "MIGRATIONS", real[:13])
    with StateStore.open(db_path) as old:  # schema 13
        assert "dismissed_at" not in old.db.table("dead_letters").columns_dict
        old.db.execute(
            "INSERT INTO dead_letters (crm, kind, contact_id, payload, reason, attempts, "
            "first_seen_at, last_tried_at) VALUES "
            "(?, 'input', 'e1', '{\"id\": \"e1\", \"type\": \"visit\"}', 'future', 1, ?, ?), "
            "(?, 'input', 'c2', '{\"email\": 5}', 'not text', 3, ?, ?)",
            (CRM, encode_dt(NOW), encode_dt(NOW), CRM, encode_dt(NOW), encode_dt(NOW)),
        )
        rows = old.db.execute("SELECT * FROM dead_letters ORDER BY id").fetchall()
    monkeypatch.setattr(migrations, "MIGRATIONS", real)
    later = NOW + timedelta(hours=1)
    with StateStore.open(db_path) as new:
        assert [v for v, _, _ in new.applied_migrations()][12:] == [13, 14, 15, 16]
        assert new.db.execute("SELECT * FROM dead_letters ORDER BY id").fetchall() == [
            (*row, None, None) for row in rows
        ]
        assert [(d.id, d.attempts, d.dismissed_at) for d in new.open_dead_letters(CRM)] == [
            (1, 1, None),
            (2, 3, None),
        ]
        assert new.add_dead_letter(CRM, "input", "c2", {"email": 5}, "not text", later) == 2
        assert new.dismiss_dead_letters(CRM, [1], later) == {1: "dismissed"}
        # the hash of the payload stored before (spaced JSON), as a new read's
        assert (
            new.add_dead_letter(CRM, "input", "e1", {"type": "visit", "id": "e1"}, "x", later)
            is None
        )
        assert new.db.execute(
            "SELECT id, attempts, last_tried_at, dismissed_at, payload_hash IS NOT NULL "
            "FROM dead_letters ORDER BY id"
        ).fetchall() == [
            (1, 1, encode_dt(NOW), encode_dt(later), 1),
            (2, 4, encode_dt(later), None, 1),
        ]
        assert new.count_open_dead_letters(CRM) == 1


def test_jobs(store: StateStore) -> None:
    assert store.get_job("backfill:hubspot") is None
    store.set_job("backfill:hubspot", {"after": "12345", "done": 100, "next_page_token": "t"})
    store.set_job("backfill:hubspot", {"after": "23456", "done": 200, "next_page_token": "u"})
    assert store.get_job("backfill:hubspot") == {
        "after": "23456",
        "done": 200,
        "next_page_token": "u",
    }
    assert store.delete_job("backfill:hubspot")
    assert not store.delete_job("backfill:hubspot")
    assert store.get_job("backfill:hubspot") is None


def test_company_cache(store: StateStore) -> None:
    acme = Company(
        domain="acme-analytics.com",
        name="Acme Analytics",
        industry="computer software",
        employee_count=850,
        annual_revenue_usd=120_000_000.0,
        country="US",
        source="local_csv",
        as_of="2026-10-01",
    )
    hit = CacheEntry("acme-analytics.com", "hit", acme, "pdl", NOW, NOW + timedelta(days=30))
    miss = CacheEntry("nowhere.example", "miss", None, "pdl+apollo", NOW, NOW + timedelta(days=1))
    store.put_company_entry(hit)
    store.put_company_entry(miss)
    assert store.get_company_entry("acme-analytics.com") == hit
    assert store.get_company_entry("nowhere.example") == miss
    assert store.get_company_entry("other.com") is None
    expired = CacheEntry("acme-analytics.com", "miss", None, "pdl", NOW, NOW - timedelta(days=1))
    cache: CompanyCache = store.company_cache  # the enrichment protocol, over this DB
    cache.put(expired)
    assert cache.get("acme-analytics.com") == expired  # expired entries are returned too
    assert cache.get("nowhere.example") == miss


# ---------------------------------------------------------------- datetime encoding

aware = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
) | st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.builds(
        timezone, st.integers(-14 * 60, 14 * 60).map(lambda m: timedelta(minutes=m))
    ),
)


@given(aware, aware)
def test_stored_datetimes_round_trip_and_sort_as_time(a: datetime, b: datetime) -> None:
    ea, eb = encode_dt(a), encode_dt(b)
    assert decode_dt(ea) == a and decode_dt(ea).utcoffset() == timedelta(0)
    assert len(ea) == len(eb) == len("2026-11-01T12:00:00.000000+00:00")
    assert (ea < eb) == (a < b)


def test_score_history_of_one_save_with_a_contact_twice_is_that_of_two_saves(
    store: StateStore,
) -> None:
    """A batch is saved with one statement; the history rows come from triggers on each
    upsert, so a contact's second result in a batch is compared with its first."""
    store.save_scores(
        CRM,
        [
            score_result("1", 10.0),
            score_result("2", 5.0),
            score_result("1", 10.0, scored_at=NOW + timedelta(hours=1)),
            score_result("1", 30.0, scored_at=NOW + timedelta(hours=2)),
        ],
    )
    assert [h["score"] for h in store.score_history(CRM, "1")] == [10.0, 30.0]
    assert [h["score"] for h in store.score_history(CRM, "2")] == [5.0]
    current = store.get_score(CRM, "1")
    assert current is not None and (current.score, current.scored_at) == (
        30.0,
        NOW + timedelta(hours=2),
    )


def due_plan(store: StateStore) -> str:
    """How `due_contact_ids` finds its rows (SQLite keeps an EXPLAIN's plan across a schema
    change: the text varies to get a fresh one)."""
    due_plan.calls = getattr(due_plan, "calls", 0) + 1  # type: ignore[attr-defined]
    rows = store.db.execute(
        f"EXPLAIN QUERY PLAN SELECT contact_id FROM scores WHERE crm = ? AND next_change_at <= ? "
        f"ORDER BY next_change_at, contact_id -- {due_plan.calls}",  # type: ignore[attr-defined]
        (CRM, encode_dt(NOW)),
    ).fetchall()
    return " ".join(str(r[-1]) for r in rows)


def test_bulk_scoring_drops_the_due_index_while_it_runs_and_builds_it_again(
    store: StateStore,
) -> None:
    store.save_scores(CRM, [score_result("due", next_change_at=NOW - timedelta(seconds=1))])
    assert "scores_crm_next_change" in due_plan(store)
    with store.bulk_scoring():
        assert "scores_crm_next_change" not in due_plan(store)
        assert store.get_job("bulk-scoring") == {
            "pid": os.getpid(),
            "host": os.uname().nodename,
            "start": process_start(os.getpid()),
        }
        store.save_scores(CRM, [score_result("late", next_change_at=NOW + timedelta(days=1))])
        assert store.due_contact_ids(CRM, NOW) == ["due"]  # right without it, by a scan
    assert "scores_crm_next_change" in due_plan(store)
    assert store.get_job("bulk-scoring") is None
    assert store.due_contact_ids(CRM, NOW) == ["due"]


def test_a_bulk_scoring_that_died_leaves_the_due_index_to_the_next_open(db_path: Path) -> None:
    with StateStore.open(db_path) as first:
        first.save_scores(CRM, [score_result("due", next_change_at=NOW)])
    pid = os.fork()
    if pid == 0:  # a rescore killed in the middle: no rebuild, no cleanup
        code = 1
        try:
            child = StateStore.open(db_path)
            held = child.bulk_scoring()  # kept: a collected generator would run its finally
            held.__enter__()
            code = 0
        finally:
            os._exit(code)
    assert os.waitpid(pid, 0)[1] == 0
    raw = sqlite3.connect(db_path)
    assert raw.execute(
        "SELECT count(*) FROM sqlite_master WHERE name = 'scores_crm_next_change'"
    ).fetchone() == (0,)
    raw.close()
    with StateStore.open(db_path) as reopened:
        assert "scores_crm_next_change" in due_plan(reopened)
        assert reopened.get_job("bulk-scoring") is None
        assert reopened.due_contact_ids(CRM, NOW) == ["due"]


def test_an_open_during_a_live_bulk_scoring_leaves_the_index_dropped(db_path: Path) -> None:
    with StateStore.open(db_path) as first, first.bulk_scoring():
        with StateStore.open(db_path) as second:  # e.g. `leadscore report` meanwhile
            assert "scores_crm_next_change" not in due_plan(second)
        assert "scores_crm_next_change" not in due_plan(first)
    with StateStore.open(db_path) as after:
        assert "scores_crm_next_change" in due_plan(after)


_texts = st.text(st.characters(codec="utf-8"), max_size=40)


@given(
    rule=_texts,
    category=_texts,
    points=st.one_of(st.floats(width=64), st.integers(-(2**70), 2**70)),
    text=_texts,
    event_ids=st.lists(_texts, max_size=4).map(tuple),
    kind=st.sampled_from(["engagement", "fit", "lifecycle"]),
)
# an int past 2**53: the compiled build once stored it as the nearest float
@example(rule="", category="", points=2**53 + 1, text="", event_ids=(), kind="engagement")
def test_stored_reasons_decode_to_what_the_stdlib_encoding_of_their_dicts_holds(
    rule: str, category: str, points: float, text: str, event_ids: tuple[str, ...], kind: str
) -> None:
    """The stored reasons are written by orjson (a full rescore encodes millions): they hold
    exactly the values of the stdlib encoding, -0.0, infinities, NaN and ints past 64 bits
    included (orjson would write null or refuse: those take the stdlib path), and decode
    back to the same reasons."""
    r = Reason(rule, category, points, text, event_ids, kind)  # type: ignore[arg-type]
    stored = reasons_text([r, r])
    assert repr(json.loads(stored)) == repr(json.loads(encode_json([reason_dict(r)] * 2)))
    if points == points:  # NaN is not equal to itself
        assert decode_reasons(stored) == (r, r)
        # the very values the stdlib reads: an int stays an int, however long
        assert [repr(x.points) for x in decode_reasons(stored)] == [
            repr(x["points"]) for x in json.loads(stored)
        ]
    if isinstance(points, float) and points in (float("inf"), float("-inf")):
        assert "Infinity" in stored


def test_stored_reasons_of_null_or_an_empty_list_are_none() -> None:
    assert decode_reasons(None) == decode_reasons("null") == decode_reasons("[]") == ()


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**80), 2**80) | st.floats(width=64) | _texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_texts, inner, max_size=4),
    max_leaves=12,
)


@given(value=_json_values)
def test_stored_json_decodes_exactly_as_the_stdlib_reads_it(value: object) -> None:
    """Stored JSON is read by orjson where it reads the same: an int past 64 bits stays an
    exact int (orjson would read a float), NaN, infinities and -0.0 stay what they were."""
    text = json.dumps(value, ensure_ascii=False)
    assert repr(decode_json(text)) == repr(json.loads(text))
    assert repr(decode_json(json.dumps(value))) == repr(json.loads(text))


def test_a_lone_surrogate_and_bad_json_read_as_the_stdlib_reads_them() -> None:
    assert decode_json('"\\ud800"') == json.loads('"\\ud800"')
    with pytest.raises(json.JSONDecodeError, match="Expecting value: line 1 column 2"):
        decode_json("[")


def test_a_db_from_before_the_history_triggers_gets_them_and_keeps_its_history(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = migrations.MIGRATIONS
    monkeypatch.setattr(migrations, "MIGRATIONS", real[:2])
    with StateStore.open(db_path) as old:  # schema 2: no triggers yet
        old.db.execute(
            "INSERT INTO score_history (crm, contact_id, model_version, score, grade, mql, "
            "scored_at) VALUES (?, '1', '2026.10', 10.0, 'B', 0, ?)",
            (CRM, encode_dt(NOW - timedelta(days=1))),
        )
    monkeypatch.setattr(migrations, "MIGRATIONS", real)
    with StateStore.open(db_path) as new:
        assert [v for v, _, _ in new.applied_migrations()] == [
            migrations._version(m)[0] for m in real
        ]
        new.save_scores(CRM, [score_result("1", 10.0)])  # a first score row: one history row
        new.save_scores(CRM, [score_result("1", 10.0, scored_at=NOW + timedelta(hours=1))])
        new.save_scores(CRM, [score_result("1", 20.0, scored_at=NOW + timedelta(hours=2))])
        assert [h["score"] for h in new.score_history(CRM, "1")] == [10.0, 10.0, 20.0]


def test_a_db_from_before_run_processes_keeps_its_runs(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migration 012 on a DB of schema 11: every run kept as it was, with no process (pid,
    host, start NULL); its `running` run is shown as running, as before, and is not marked
    interrupted by a new run (nothing says its process is gone)."""
    real = migrations.MIGRATIONS
    assert migrations._version(real[11]) == (12, "run_process")
    monkeypatch.setattr(migrations, "MIGRATIONS", real[:11])
    with StateStore.open(db_path) as old:  # schema 11
        assert "pid" not in old.db.table("runs").columns_dict
        old.db.execute(
            "INSERT INTO runs (crm, kind, started_at, finished_at, status, counts, api_calls, "
            "errors, message) VALUES (?, 'sync', ?, ?, 'ok', '{\"pulled\": 3}', 4, 0, NULL), "
            "(?, 'backfill', ?, NULL, 'running', NULL, 0, 0, NULL)",
            (CRM, encode_dt(NOW), encode_dt(NOW + timedelta(seconds=5)), CRM,
             encode_dt(NOW + timedelta(hours=1))),
        )  # fmt: skip
        rows = old.db.execute("SELECT * FROM runs ORDER BY id").fetchall()
    monkeypatch.setattr(migrations, "MIGRATIONS", real)
    with StateStore.open(db_path) as new:
        assert [v for v, _, _ in new.applied_migrations()][11:] == [12, 13, 14, 15, 16]
        assert new.db.execute("SELECT * FROM runs ORDER BY id").fetchall() == [
            (*row, None, None, None, None) for row in rows
        ]
        later = new.start_run(CRM, "sync", at=NOW + timedelta(days=1))
        assert [(r.id, r.status, r.pid) for r in new.last_runs(CRM)] == [
            (later, "running", os.getpid()),
            (2, "running", None),
            (1, "ok", None),
        ]
        stale = new.get_run(2)
        assert stale is not None and seen_run(stale, NOW + timedelta(days=9)) is stale


def test_a_db_from_before_run_heartbeats_keeps_its_runs_on_the_two_hour_rule(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migration 016 on a DB of schema 15: every run kept as it was, with no heartbeat; its
    `running` run of another host stays on the rule from before (running until 2 hours from
    its start, then probably interrupted). A run started after it has its start as its first
    heartbeat, and `beat_runs` moves a running run's heartbeat, never a finished one's."""
    real = migrations.MIGRATIONS
    assert migrations._version(real[15]) == (16, "run_heartbeat")
    monkeypatch.setattr(migrations, "MIGRATIONS", real[:15])
    with StateStore.open(db_path) as old:  # schema 15
        assert "heartbeat_at" not in old.db.table("runs").columns_dict
        old.db.execute(
            "INSERT INTO runs (crm, kind, started_at, finished_at, status, counts, api_calls, "
            "errors, message, pid, host, process_start) VALUES "
            "(?, 'sync', ?, ?, 'ok', '{\"pulled\": 3}', 4, 0, NULL, 11, 'worker-2', 5), "
            "(?, 'backfill', ?, NULL, 'running', NULL, 0, 0, NULL, 12, 'worker-2', 6)",
            (CRM, encode_dt(NOW), encode_dt(NOW + timedelta(seconds=5)), CRM, encode_dt(NOW)),
        )
        rows = old.db.execute("SELECT * FROM runs ORDER BY id").fetchall()
    monkeypatch.setattr(migrations, "MIGRATIONS", real)
    with StateStore.open(db_path) as new:
        assert [v for v, _, _ in new.applied_migrations()][14:] == [15, 16]
        assert new.db.execute("SELECT * FROM runs ORDER BY id").fetchall() == [
            (*row, None) for row in rows
        ]
        backfill = new.get_run(2)
        assert backfill is not None and backfill.heartbeat_at is None
        who = "the process (pid 12 on worker-2) runs on another host (not checked from here)"
        assert _shown(backfill, NOW + timedelta(hours=1, minutes=59)) == ("running", who)
        assert _shown(backfill, NOW + timedelta(hours=2)) == (
            "probably interrupted",
            f"{who} and has not finished it in 2 hours",
        )
        later = new.start_run(CRM, "sync", at=NOW + timedelta(days=1))
        run = new.get_run(later)
        assert run is not None and run.heartbeat_at == NOW + timedelta(days=1)
        new.beat_runs([1, 2, later], NOW + timedelta(days=1, minutes=3))
        assert [(r.id, r.heartbeat_at) for r in new.last_runs(CRM)] == [
            (later, NOW + timedelta(days=1, minutes=3)),
            (2, NOW + timedelta(days=1, minutes=3)),
            (1, None),  # finished: left as it was
        ]


def test_a_run_of_another_host_is_running_while_its_heartbeat_is_fresh() -> None:
    """Another host's run (its pid says nothing here) with a heartbeat: `running` while the
    heartbeat is younger than `SILENT_RUN` (10 minutes), whatever its age (a backfill 3 hours
    in); `probably interrupted` once it is that old, the message saying since when (UTC, to
    the minute; with its date when not today) and how long."""
    assert timedelta(minutes=10) == SILENT_RUN
    assert timedelta(minutes=1) == HEARTBEAT_EVERY  # ten beats missed before it looks dead
    now = datetime(2026, 12, 7, 5, 52, 30, tzinfo=UTC)

    def run(begun: timedelta, beat: timedelta) -> RunRecord:
        return RunRecord(
            7, CRM, "backfill", now - begun, None, "running", pid=4242, host="worker-2",
            process_start=9, heartbeat_at=now - beat,
        )  # fmt: skip

    who = "the process (pid 4242 on worker-2) runs on another host (not checked from here)"
    assert _shown(run(timedelta(hours=3), timedelta(seconds=40)), now) == ("running", who)
    assert _shown(run(timedelta(hours=3), timedelta(minutes=9, seconds=59)), now) == (
        "running",
        who,
    )
    assert _shown(run(timedelta(hours=3), timedelta(minutes=10)), now) == (
        "probably interrupted",
        f"{who} and has shown no progress since 05:42 UTC (10 min)",
    )
    # died 5 minutes after it started: seen so 15 minutes after its start, not 2 hours
    assert _shown(run(timedelta(minutes=20), timedelta(minutes=15)), now) == (
        "probably interrupted",
        f"{who} and has shown no progress since 05:37 UTC (15 min)",
    )
    assert _shown(run(timedelta(days=2), timedelta(hours=30, minutes=5)), now) == (
        "probably interrupted",
        f"{who} and has shown no progress since 2026-12-05 23:47 UTC (30h05m)",
    )


def drop_due_index_as(
    db_path: Path, host: str, pid: int, age: timedelta, start: int | None = None
) -> None:
    """What a rescore's `bulk_scoring` leaves while it runs (or after it died); `start`: the
    process start it records (none: as before it did)."""
    raw = sqlite3.connect(db_path)
    owner: dict[str, object] = {"pid": pid, "host": host}
    if start is not None:
        owner["start"] = start
    with raw:
        raw.execute('DROP INDEX "scores_crm_next_change"')
        raw.execute(
            "INSERT INTO jobs (name, state, updated_at) VALUES ('bulk-scoring', ?, ?)",
            (encode_json(owner), encode_dt(datetime.now(UTC) - age)),
        )
    raw.close()


def has_due_index(db_path: Path) -> bool:
    raw = sqlite3.connect(db_path)
    found: tuple[int] | None = raw.execute(
        "SELECT count(*) FROM sqlite_master WHERE name = 'scores_crm_next_change'"
    ).fetchone()
    raw.close()
    return found == (1,)


@pytest.mark.parametrize(
    ("host", "pid", "age", "rebuilt"),
    [
        ("elsewhere", 1, timedelta(minutes=5), False),  # another container: its lease holds
        ("elsewhere", 1, timedelta(hours=3), True),  # a lease that old: its rescore is gone
        ("here", 0, timedelta(minutes=5), False),  # a live process here (this one)
        ("here", 0, timedelta(hours=3), True),  # that old, the pid may be another's now
    ],
)
def test_who_rebuilds_a_dropped_due_index(
    db_path: Path, host: str, pid: int, age: timedelta, rebuilt: bool
) -> None:
    StateStore.open(db_path).close()
    drop_due_index_as(
        db_path, os.uname().nodename if host == "here" else host, pid or os.getpid(), age
    )
    with StateStore.open(db_path) as s:
        assert has_due_index(db_path) is rebuilt
        assert (s.get_job("bulk-scoring") is None) is rebuilt


@pytest.mark.parametrize(("shift", "rebuilt"), [(0, False), (-1, True)])
def test_a_dropped_due_index_whose_pid_was_reused_is_rebuilt(
    db_path: Path, shift: int, rebuilt: bool
) -> None:
    """A restarted container's pid 1: the same pid on the same host, started at another
    time, is not the rescore that dropped the index (which died with the container)."""
    StateStore.open(db_path).close()
    start = process_start(os.getpid())
    assert start is not None
    drop_due_index_as(
        db_path, os.uname().nodename, os.getpid(), timedelta(minutes=5), start + shift
    )
    with StateStore.open(db_path) as s:
        assert has_due_index(db_path) is rebuilt
        assert (s.get_job("bulk-scoring") is None) is rebuilt


def test_a_failing_rescore_rebuilds_the_due_index_and_raises_its_own_error(
    db_path: Path,
) -> None:
    with StateStore.open(db_path) as s:
        with pytest.raises(ValueError, match="the rescore failed"), s.bulk_scoring():
            assert not has_due_index(db_path)
            raise ValueError("the rescore failed")
        assert has_due_index(db_path) and s.get_job("bulk-scoring") is None


def test_every_connection_gets_the_same_settings_and_the_live_view(db_path: Path) -> None:
    """One setup for every connection (`configure_connection`): the store's, a parallel
    rescore worker's (`bulk`: a longer WAL checkpoint), a raw reader's. The `live` column is
    the WHERE of the `contacts_live` index, and lives in a TEMP view: the file's schema has no
    view."""
    pragmas = ("journal_mode", "synchronous", "foreign_keys", "temp_store", "cache_size")
    with StateStore.open(db_path) as s, StateStore.open(db_path, bulk=True) as w:
        want = ("wal", 1, 1, 2, -65536)
        for store in (s, w):
            assert tuple(store.db.execute("PRAGMA " + p).fetchone()[0] for p in pragmas) == want
        assert s.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 10000
        assert w.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 20000
        index_sql, views = s.db.execute(
            "SELECT (SELECT sql FROM sqlite_master WHERE name = 'contacts_live'), "
            "(SELECT count(*) FROM sqlite_master WHERE type = 'view')"
        ).fetchone()
        view_sql = s.db.execute(
            "SELECT sql FROM sqlite_temp_master WHERE name = 'contacts_with_live'"
        ).fetchone()[0]
        assert views == 0
        condition = "archived_at IS NULL AND merged_into IS NULL"
        assert (
            index_sql.endswith("WHERE " + condition) and "(" + condition + ") AS live" in view_sql
        )
        with s.transaction():
            s.upsert_contacts(CRM, [Contact(id=i) for i in ("1", "2", "3")], at=NOW)
        s.mark_archived(CRM, "1", NOW)
        s.merge_contacts(CRM, "2", "3", NOW)
    raw = sqlite3.connect(db_path)
    try:
        configure_connection(raw, wal=True)
        live = raw.execute("SELECT id FROM contacts_with_live WHERE live ORDER BY id").fetchall()
        assert live == [("3",)]
    finally:
        raw.close()


def test_every_store_call_that_runs_sql_names_the_file_on_a_sqlite_error(
    db_path: Path,
) -> None:
    """A corrupt or locked state DB is a `StateError` naming the file (exit 6) from every
    store call, not a raw sqlite3 error and a traceback: each public method that runs SQL is
    wrapped (`_db_errors`). The account state's calls were not, nor two queue calls of the
    sync and `status` (found by a review)."""
    import inspect

    unwrapped = [
        fn.__qualname__
        for name, fn in inspect.getmembers(StateStore, inspect.isfunction)
        if not name.startswith("_")
        and name != "close"
        and "_conn" in inspect.getsource(inspect.unwrap(fn))
        and not hasattr(fn, "__wrapped__")
    ]
    assert unwrapped == []

    class Malformed:  # what SQLite raises on a damaged page
        def execute(self, *args: object, **kwargs: object) -> None:
            raise sqlite3.DatabaseError("database disk image is malformed")

    with StateStore.open(db_path) as store:
        real = store._conn
        store._conn = Malformed()  # type: ignore[assignment]
        try:
            for call in (
                lambda: store.pending_write_ids(CRM),
                lambda: store.count_pending_writes(CRM),
                lambda: store.account_score(CRM, "company:1"),
                lambda: list(store.account_member_batches(CRM, "", "~", 10)),
            ):
                with pytest.raises(StateError, match=str(db_path)):
                    call()
        finally:
            store._conn = real
