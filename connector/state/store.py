"""The state DB: one SQLite file (WAL mode) holding everything a sync must remember.

Contacts and events pulled from the CRM, the enrichment cache, current scores plus their
history, the values last written back, cursors, runs, dead letters and resumable jobs. Every
row that belongs to a CRM is keyed by `crm` too, so one file can serve HubSpot or Marketo.

Transactions: `with store.transaction(): ...` is one `BEGIN IMMEDIATE … COMMIT` (rolled back on
any exception); methods called inside it do not commit on their own, and a nested
`transaction()` is a no-op block. Methods called outside a transaction commit on their own.
This is how data and cursor commit together (pitfall #2).

SQL is always parameterized; lists travel as one JSON parameter through `json_each`, so the SQL
text never depends on the data.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from itertools import groupby, pairwise
from operator import itemgetter
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

from sqlite_utils import Database

from connector.enrich.cache import CacheEntry
from connector.errors import StateError
from connector.state import migrations
from connector.state.accounts import AccountsStateMixin
from connector.state.codec import (
    contact_from_row,
    decode_dt,
    decode_json,
    decode_mapping,
    decode_opt_dt,
    decode_reasons,
    encode_dt,
    encode_json,
    encode_mapping,
    encode_opt_dt,
    redact,
    redact_text,
    score_row,
)
from connector.text import clean_row
from connector.types import (
    Company,
    Contact,
    Event,
    EventRow,
    LifecycleDecision,
    Reason,
    ScoreResult,
)

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

RUN_RUNNING = "running"
RUN_OK = "ok"
RUN_PARTIAL = "partial"
RUN_FAILED = "failed"
RUN_STOPPED = "stopped"

DEFAULT_BUSY_TIMEOUT = 5.0
DEFAULT_BATCH = 1000

_LOCKED = {"SQLITE_BUSY", "SQLITE_LOCKED"}
_INVALID = {"SQLITE_NOTADB", "SQLITE_CORRUPT"}
_UNUSABLE = {"SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_FULL", "SQLITE_PERM"}


# ---------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class StoredScore:
    """The current score of one contact, as saved by `save_scores`."""

    crm: str
    contact_id: str
    score: float
    engagement_points: float
    fit_points: float
    grade: str
    mql: bool
    mql_reason: str | None
    current_stage: str | None
    target_stage: str | None
    recycled: bool
    lifecycle_note: str | None
    profile_mismatch: bool
    hand_raiser: bool
    model_version: str
    model_fingerprint: str
    scored_at: datetime
    next_change_at: datetime | None
    reasons: tuple[Reason, ...] = ()

    def to_result(self) -> ScoreResult:
        """The `ScoreResult` this row was saved from (equal to it, field for field)."""
        return ScoreResult(
            contact_id=self.contact_id,
            score=self.score,
            engagement_points=self.engagement_points,
            fit_points=self.fit_points,
            grade=self.grade,
            lifecycle=LifecycleDecision(
                current_stage=self.current_stage,
                target_stage=self.target_stage,
                mql=self.mql,
                mql_reason=self.mql_reason,
                recycled=self.recycled,
                note=self.lifecycle_note,
            ),
            profile_mismatch=self.profile_mismatch,
            model_version=self.model_version,
            model_fingerprint=self.model_fingerprint,
            scored_at=self.scored_at,
            next_change_at=self.next_change_at,
            reasons=self.reasons,
            hand_raiser=self.hand_raiser,
        )


@dataclass(frozen=True, slots=True)
class ActiveModel:
    """The model in force for one CRM (`set_active_model`): what every scoring command uses."""

    crm: str
    version: str
    fingerprint: str
    content: str  # normalized model + title rules, JSON (connector.model.snapshot)
    model_yaml: str | None  # the model file's text as applied
    source_path: str
    applied_at: datetime
    applied_by: str  # "rescore" (a rollout) or "first sync"


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: int
    crm: str
    kind: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    counts: dict[str, Any] = field(default_factory=dict)
    api_calls: int = 0
    errors: int = 0
    message: str | None = None

    @property
    def duration(self) -> timedelta | None:
        return None if self.finished_at is None else self.finished_at - self.started_at


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    crm: str
    kind: str
    contact_id: str | None
    payload: Any
    reason: str | None
    attempts: int
    first_seen_at: datetime
    last_tried_at: datetime
    resolved_at: datetime | None


# ---------------------------------------------------------------------------- errors


def _translate(exc: sqlite3.Error, label: str, timeout: float) -> StateError | None:
    """The StateError a caller can act on, or None for a programming error (re-raise)."""
    base = "_".join((getattr(exc, "sqlite_errorname", "") or "").split("_")[:2])
    text = str(exc)
    if base in _LOCKED or "database is locked" in text:
        return StateError(
            f"state DB {label} is locked: another process holds it "
            f"(gave up after {timeout:g}s): {text}"
        )
    if base in _INVALID or "not a database" in text or "malformed" in text:
        return StateError(f"state DB {label} is not a valid SQLite database: {text}")
    if base in _UNUSABLE or "unable to open" in text:
        return StateError(f"state DB {label} cannot be used: {text}")
    return None


def _db_errors(
    method: Callable[Concatenate[StateStore, P], R],
) -> Callable[Concatenate[StateStore, P], R]:
    """Turn SQLite's locked/corrupt/unusable errors into `StateError` naming the file."""

    @functools.wraps(method)
    def wrapper(self: StateStore, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            translated = _translate(exc, self.path, self.busy_timeout)
            if translated is None:
                raise
            raise translated from exc

    return wrapper


def _db_errors_iter(
    method: Callable[Concatenate[StateStore, P], Iterator[T]],
) -> Callable[Concatenate[StateStore, P], Iterator[T]]:
    """`_db_errors` for generator methods."""

    @functools.wraps(method)
    def wrapper(self: StateStore, /, *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        try:
            yield from method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            translated = _translate(exc, self.path, self.busy_timeout)
            if translated is None:
                raise
            raise translated from exc

    return wrapper


# ---------------------------------------------------------------------------- SQL

# Every statement is a literal; values always travel as parameters. Filters that callers can
# switch off are parameters too (`?N OR ...`), so no SQL text is ever assembled at run time.
_SELECT_CONTACT = """
SELECT id, email, first_name, last_name, job_title, company_name, country, lifecycle_stage,
  lead_status, lead_status_changed_at, recycled_at, mql_at, created_at, updated_at, properties
FROM contacts WHERE crm = ? AND id = ?
"""
_CONTACTS_AFTER = """
SELECT id, email, first_name, last_name, job_title, company_name, country, lifecycle_stage,
  lead_status, lead_status_changed_at, recycled_at, mql_at, created_at, updated_at, properties
FROM contacts WHERE crm = ?1 AND id > ?4 AND id <= ?5
  AND (?2 OR (archived_at IS NULL AND merged_into IS NULL))
ORDER BY id LIMIT ?3
"""
# The index that finds the contacts whose score changes by a time (`due_contact_ids`). A full
# rescore drops it and builds it again once at the end (`StateStore.bulk_scoring`).
DUE_INDEX = "scores_crm_next_change"
_CREATE_DUE_INDEX = (
    'CREATE INDEX IF NOT EXISTS "scores_crm_next_change" ON "scores" ("crm", "next_change_at")'
)
_DROP_DUE_INDEX = 'DROP INDEX IF EXISTS "scores_crm_next_change"'
_HAS_DUE_INDEX = "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?"
_BULK_JOB = "bulk-scoring"  # the `jobs` row naming the process that dropped the due index
# how long a dropped due index is left to its rescore when its process cannot be checked
BULK_LEASE = timedelta(hours=2)
LAST_ID = "\U0010ffff"  # sorts after every contact id (SQLite compares text as UTF-8 bytes)
_CONTACTS_IN = """
SELECT id, email, first_name, last_name, job_title, company_name, country, lifecycle_stage,
  lead_status, lead_status_changed_at, recycled_at, mql_at, created_at, updated_at, properties
FROM contacts WHERE crm = ?1 AND id IN (SELECT value FROM json_each(?3))
  AND (?2 OR (archived_at IS NULL AND merged_into IS NULL))
ORDER BY id
"""
_COUNT_CONTACTS = "SELECT count(*) FROM contacts WHERE crm = ?"
# the live ones: the WHERE of the `contacts_live` index (migration 005), which answers these
_COUNT_LIVE_CONTACTS = (
    "SELECT count(*) FROM contacts WHERE crm = ? AND archived_at IS NULL AND merged_into IS NULL"
)
_LIVE_ID_AT = (
    "SELECT id FROM contacts WHERE crm = ? AND archived_at IS NULL AND merged_into IS NULL "
    "ORDER BY id LIMIT 1 OFFSET ?"
)
_FIND_BY_EMAIL = """
SELECT lower(email), id FROM contacts
WHERE crm = ? AND lower(email) IN (SELECT value FROM json_each(?))
  AND archived_at IS NULL AND merged_into IS NULL
ORDER BY created_at IS NULL, created_at, id
"""
_UPSERT_CONTACT = """
INSERT INTO contacts (crm, id, email, first_name, last_name, job_title, company_name, country,
  lifecycle_stage, lead_status, lead_status_changed_at, recycled_at, mql_at, created_at,
  updated_at, properties, first_seen_at, last_pulled_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?17)
ON CONFLICT (crm, id) DO UPDATE SET
  email = excluded.email, first_name = excluded.first_name, last_name = excluded.last_name,
  job_title = excluded.job_title, company_name = excluded.company_name,
  country = excluded.country, lifecycle_stage = excluded.lifecycle_stage,
  lead_status = excluded.lead_status, lead_status_changed_at = excluded.lead_status_changed_at,
  recycled_at = excluded.recycled_at, mql_at = excluded.mql_at,
  created_at = excluded.created_at, updated_at = excluded.updated_at,
  properties = excluded.properties, last_pulled_at = excluded.last_pulled_at,
  archived_at = NULL
"""

_INSERT_EVENT = (
    "INSERT OR IGNORE INTO events (crm, source, source_id, contact_id, type, occurred_at, "
    "attributes) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_EVENTS_OF = """
SELECT contact_id, source, source_id, type, occurred_at, attributes FROM events
WHERE crm = ? AND contact_id = ? ORDER BY occurred_at, rowid
"""
_EVENTS_RANGE = """
SELECT contact_id, source, source_id, type, occurred_at, attributes FROM events
WHERE crm = ? AND contact_id >= ? AND contact_id <= ?
ORDER BY contact_id, occurred_at, rowid
"""
_EVENT_ROWS_RANGE = """
SELECT contact_id, occurred_at, source || ':' || source_id, type, attributes FROM events
WHERE crm = ? AND contact_id >= ? AND contact_id <= ?
ORDER BY contact_id, occurred_at
"""
_EVENT_ROWS_IN = """
SELECT contact_id, occurred_at, source || ':' || source_id, type, attributes FROM events
WHERE crm = ? AND contact_id IN (SELECT value FROM json_each(?))
ORDER BY contact_id, occurred_at
"""
_EVENTS_IN = """
SELECT contact_id, source, source_id, type, occurred_at, attributes FROM events
WHERE crm = ? AND contact_id IN (SELECT value FROM json_each(?))
ORDER BY contact_id, occurred_at, rowid
"""

_UPSERT_SCORE = """
INSERT INTO scores (crm, contact_id, score, engagement_points, fit_points, grade, mql,
  mql_reason, current_stage, target_stage, recycled, lifecycle_note, profile_mismatch,
  hand_raiser, model_version, model_fingerprint, scored_at, next_change_at, reasons)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
  CAST(?19 AS TEXT))
ON CONFLICT (crm, contact_id) DO UPDATE SET
  score = excluded.score, engagement_points = excluded.engagement_points,
  fit_points = excluded.fit_points, grade = excluded.grade, mql = excluded.mql,
  mql_reason = excluded.mql_reason, current_stage = excluded.current_stage,
  target_stage = excluded.target_stage, recycled = excluded.recycled,
  lifecycle_note = excluded.lifecycle_note, profile_mismatch = excluded.profile_mismatch,
  hand_raiser = excluded.hand_raiser, model_version = excluded.model_version,
  model_fingerprint = excluded.model_fingerprint, scored_at = excluded.scored_at,
  next_change_at = excluded.next_change_at, reasons = excluded.reasons
"""
_SELECT_SCORE = """
SELECT crm, contact_id, score, engagement_points, fit_points, grade, mql, mql_reason,
  current_stage, target_stage, recycled, lifecycle_note, profile_mismatch, hand_raiser,
  model_version, model_fingerprint, scored_at, next_change_at, reasons
FROM scores WHERE crm = ? AND contact_id = ?
"""
_SELECT_SCORES_IN = """
SELECT crm, contact_id, score, engagement_points, fit_points, grade, mql, mql_reason,
  current_stage, target_stage, recycled, lifecycle_note, profile_mismatch, hand_raiser,
  model_version, model_fingerprint, scored_at, next_change_at, reasons
FROM scores WHERE crm = ? AND contact_id IN (SELECT value FROM json_each(?))
"""
_SCORES_AFTER = """
SELECT crm, contact_id, score, engagement_points, fit_points, grade, mql, mql_reason,
  current_stage, target_stage, recycled, lifecycle_note, profile_mismatch, hand_raiser,
  model_version, model_fingerprint, scored_at, next_change_at, reasons
FROM scores WHERE crm = ? AND contact_id > ? ORDER BY contact_id LIMIT ?
"""

_SELECT_RUN = """
SELECT id, crm, kind, started_at, finished_at, status, counts, api_calls, errors, message
FROM runs WHERE id = ?
"""
_LAST_RUNS = """
SELECT id, crm, kind, started_at, finished_at, status, counts, api_calls, errors, message
FROM runs WHERE crm = ? ORDER BY id DESC LIMIT ?
"""
_LAST_RUN_WITH_STATUS = """
SELECT id, crm, kind, started_at, finished_at, status, counts, api_calls, errors, message
FROM runs WHERE crm = ? AND kind = ? AND status = ? ORDER BY id DESC LIMIT 1
"""

_ADD_DEAD_LETTER = """
INSERT INTO dead_letters (crm, kind, contact_id, payload, reason, attempts, first_seen_at,
  last_tried_at)
VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?6)
ON CONFLICT (crm, kind, contact_id) WHERE resolved_at IS NULL DO UPDATE SET
  attempts = attempts + 1, payload = excluded.payload, reason = excluded.reason,
  last_tried_at = excluded.last_tried_at
RETURNING id
"""
_OPEN_DEAD_LETTERS = """
SELECT id, crm, kind, contact_id, payload, reason, attempts, first_seen_at, last_tried_at,
  resolved_at
FROM dead_letters WHERE crm = ?1 AND resolved_at IS NULL AND (?2 IS NULL OR kind = ?2)
ORDER BY id
"""


def _now() -> datetime:
    return datetime.now(UTC)


def _contact_row(crm: str, c: Contact, pulled_at: str) -> tuple[Any, ...]:
    return (
        crm,
        c.id,
        c.email,
        c.first_name,
        c.last_name,
        c.job_title,
        c.company_name,
        c.country,
        c.lifecycle_stage,
        c.lead_status,
        encode_opt_dt(c.lead_status_changed_at),
        encode_opt_dt(c.recycled_at),
        encode_opt_dt(c.mql_at),
        encode_opt_dt(c.created_at),
        encode_opt_dt(c.updated_at),
        encode_mapping(c.properties),
        pulled_at,
    )


def _event(row: Sequence[Any]) -> Event:
    # Hot path of a full rescore (millions of rows): positional, no helper for the datetime.
    attrs = row[5]
    return Event(
        row[1],
        row[2],
        row[0],
        row[3],
        _fromisoformat(row[4]),
        _attributes(attrs) if attrs else {},
    )


_ATTR_CACHE: dict[str, dict[str, Any]] = {}


def _attributes(text: str) -> dict[str, Any]:
    """Decoded event attributes, shared between events with the same JSON text (page views
    repeat a few URLs millions of times). Callers treat attributes as read-only."""
    hit = _ATTR_CACHE.get(text)
    if hit is None:
        hit = decode_mapping(text)
        if len(_ATTR_CACHE) >= 200_000:
            _ATTR_CACHE.clear()
        _ATTR_CACHE[text] = hit
    return hit


_fromisoformat = datetime.fromisoformat
_first = itemgetter(0)


def _process_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's process: alive
        return True
    return True


def _stored_score(row: Sequence[Any]) -> StoredScore:
    return StoredScore(
        crm=row[0],
        contact_id=row[1],
        score=row[2],
        engagement_points=row[3],
        fit_points=row[4],
        grade=row[5],
        mql=bool(row[6]),
        mql_reason=row[7],
        current_stage=row[8],
        target_stage=row[9],
        recycled=bool(row[10]),
        lifecycle_note=row[11],
        profile_mismatch=bool(row[12]),
        hand_raiser=bool(row[13]),
        model_version=row[14],
        model_fingerprint=row[15],
        scored_at=decode_dt(row[16]),
        next_change_at=decode_opt_dt(row[17]),
        reasons=decode_reasons(row[18]),
    )


def _run(row: Sequence[Any]) -> RunRecord:
    return RunRecord(
        id=row[0],
        crm=row[1],
        kind=row[2],
        started_at=decode_dt(row[3]),
        finished_at=decode_opt_dt(row[4]),
        status=row[5],
        counts=decode_mapping(row[6]),
        api_calls=row[7] or 0,
        errors=row[8] or 0,
        message=row[9],
    )


def _dead_letter(row: Sequence[Any]) -> DeadLetter:
    return DeadLetter(
        id=row[0],
        crm=row[1],
        kind=row[2],
        contact_id=row[3] or None,
        payload=decode_json(row[4]),
        reason=row[5],
        attempts=row[6],
        first_seen_at=decode_dt(row[7]),
        last_tried_at=decode_dt(row[8]),
        resolved_at=decode_opt_dt(row[9]),
    )


_COMPANY_FIELDS = frozenset(f.name for f in fields(Company))


def _company(text: str | None) -> Company | None:
    data = decode_json(text)
    if not isinstance(data, dict):
        return None
    return Company(**{k: v for k, v in data.items() if k in _COMPANY_FIELDS})


def _in_flight_key(crm: str, contact_id: str) -> str:
    return f"write-in-flight:{crm}:{contact_id}"


def _ids_param(ids: Iterable[str]) -> str:
    return encode_json(list(ids))


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _ascii_lower(text: str) -> str:
    """Lower-case exactly as SQLite's lower() does (ASCII letters only)."""
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


# ---------------------------------------------------------------------------- the store


class StateStore(AccountsStateMixin):
    """The SQLite state DB. Open with `StateStore.open(path)` or `StateStore.memory()`.

    Not for concurrent use from several threads at once; other *processes* may read while
    this one writes (WAL). Use as a context manager or call `close()`.
    """

    def __init__(self, conn: sqlite3.Connection, path: str, busy_timeout: float) -> None:
        self._conn = conn
        self.path = path
        self.busy_timeout = busy_timeout
        self._depth = 0
        self.journal_mode = "unknown"
        self.db = Database(conn, execute_plugins=False)
        """sqlite-utils view of the same connection, for reports and ad-hoc reads."""

    # -- opening -----------------------------------------------------------------------

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT
    ) -> StateStore:
        """Open (creating it 0600 if missing) and migrate the state DB at `path`.

        Raises `StateError` when the file is not an SQLite database, is a leadscore DB of a
        newer schema, or is locked by another process for longer than `busy_timeout` seconds.
        """
        p = Path(path)
        label = str(p)
        if p.is_dir():
            raise StateError(f"state DB {label} cannot be used: it is a directory")
        old_umask = os.umask(0o077)  # -wal/-shm (and any journal) are born private too
        try:
            if not p.exists():
                p.parent.mkdir(parents=True, exist_ok=True)
                try:
                    fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
                except FileExistsError:  # another process won the race: fine
                    pass
                else:
                    os.close(fd)
            try:
                conn = sqlite3.connect(
                    label, timeout=busy_timeout, isolation_level=None, check_same_thread=False
                )
            except sqlite3.Error as exc:
                raise StateError(f"state DB {label} cannot be opened: {exc}") from exc
            try:
                store = cls(conn, label, busy_timeout)
                store._setup(wal=True)
            except sqlite3.Error as exc:
                conn.close()
                translated = _translate(exc, label, busy_timeout)
                if translated is None:
                    raise
                raise translated from exc
            except BaseException:
                conn.close()
                raise
        finally:
            os.umask(old_umask)
        return store

    @classmethod
    def memory(cls) -> StateStore:
        """A private in-memory state DB (tests, dry runs)."""
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        try:
            store = cls(conn, ":memory:", DEFAULT_BUSY_TIMEOUT)
            store._setup(wal=False)
        except BaseException:
            conn.close()
            raise
        return store

    @_db_errors
    def _setup(self, *, wal: bool) -> None:
        conn = self._conn  # busy timeout: set by sqlite3.connect(timeout=...)
        if wal:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            self.journal_mode = str(mode[0]).lower() if mode else "unknown"
            conn.execute("PRAGMA synchronous = NORMAL")
            # checkpoint the WAL into the DB every ~40 MiB, not every 4 MiB (the default):
            # a full rescore rewrites ~1.4 GB of score rows at 1M contacts, and each
            # checkpoint costs two fsyncs (measured: -6% on the rescore)
            conn.execute("PRAGMA wal_autocheckpoint = 10000")
        else:
            self.journal_mode = "memory"
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA cache_size = -65536")  # up to 64 MiB of page cache
        self._migrate()
        self._restore_due_index()

    def _migrate(self) -> None:
        versions = migrations.applied_versions(self.db, self.path)
        migrations.check_not_newer(versions, self.path)
        if not migrations.pending(versions):
            return
        with self.transaction():
            # Re-read under the write lock: another process may have migrated meanwhile.
            versions = migrations.applied_versions(self.db, self.path)
            migrations.check_not_newer(versions, self.path)
            migrations.apply(self.db, migrations.pending(versions))

    def _has_due_index(self) -> bool:
        return self._conn.execute(_HAS_DUE_INDEX, (DUE_INDEX,)).fetchone() is not None

    def _restore_due_index(self) -> None:
        """A `bulk_scoring` that died (killed, power cut) left the due index dropped: build it
        again, unless the one that dropped it may still be at work. That is: a live process
        on this host, or (seen from another host or container, where its pid says nothing)
        a lease younger than `BULK_LEASE`."""
        if self._has_due_index():
            return
        row = self._conn.execute(
            "SELECT state, updated_at FROM jobs WHERE name = ?", (_BULK_JOB,)
        ).fetchone()
        if row is not None:
            owner = decode_mapping(row[0])
            young = _now() - decode_dt(row[1]) < BULK_LEASE
            if owner.get("host") == socket.gethostname():
                if young and _process_alive(owner.get("pid")):
                    return
            elif young:
                return
        self._build_due_index()

    def _build_due_index(self) -> None:
        with self.transaction():
            self._conn.execute(_CREATE_DUE_INDEX)
            self._conn.execute("DELETE FROM jobs WHERE name = ?", (_BULK_JOB,))

    @contextlib.contextmanager
    def bulk_scoring(self) -> Iterator[None]:
        """For a rescore that rewrites every score row: the due-time index is dropped while
        it runs and built again, once, at the end. Kept up to date, it costs each contact two
        writes at random places of the index (a 1M-contact rescore spent 2.3 µs per event
        writing scores with it, 0.6 without; the rebuild takes 2–5 s and holds the write lock
        meanwhile). `due_contact_ids` still answers right, by a scan. If this process dies
        before the end, a later `open` builds the index again (see `_restore_due_index`)."""
        with self.transaction():
            self.set_job(_BULK_JOB, {"pid": os.getpid(), "host": socket.gethostname()})
            self._conn.execute(_DROP_DUE_INDEX)
        try:
            yield
        except BaseException:
            # the rescore's own error is the one to see; a failed rebuild is left to `open`
            with contextlib.suppress(sqlite3.Error):
                self._build_due_index()
            raise
        self._build_due_index()

    @_db_errors
    def applied_migrations(self) -> list[tuple[int, str, datetime]]:
        """(version, name, applied_at) of every migration recorded in this DB."""
        rows = self._conn.execute(
            "SELECT version, name, applied_at FROM migrations ORDER BY version"
        ).fetchall()
        return [(int(v), str(n), decode_dt(a)) for v, n, a in rows]

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Roll back any open transaction and close the connection (idempotent)."""
        with contextlib.suppress(sqlite3.Error):
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        self._depth = 0
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"StateStore({self.path!r})"

    # -- transactions --------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One `BEGIN IMMEDIATE … COMMIT`; ROLLBACK on any exception. Nested: a no-op block."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._begin()
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            with contextlib.suppress(sqlite3.Error):
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
            raise
        self._depth = 0
        try:
            self._commit()
        except BaseException:  # an interrupted COMMIT (Ctrl-C, SIGTERM) must not leave it open
            with contextlib.suppress(sqlite3.Error):
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
            raise

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    @_db_errors
    def _begin(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    @_db_errors
    def _commit(self) -> None:
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
            raise

    # -- contacts ------------------------------------------------------------------------

    @_db_errors
    def upsert_contacts(
        self, crm: str, contacts: Iterable[Contact], *, at: datetime | None = None
    ) -> int:
        """Insert or update contacts; returns how many rows were written.

        Keeps `first_seen_at` and `merged_into`; sets `last_pulled_at` to `at` (default: now);
        clears `archived_at` (a contact the CRM returns is live again).
        """
        pulled = encode_dt(at or _now())
        n = 0
        with self.transaction(), contextlib.closing(self._conn.cursor()) as cursor:
            execute = cursor.execute
            for contact in contacts:
                row = _contact_row(crm, contact, pulled)
                try:
                    execute(_UPSERT_CONTACT, row)
                except UnicodeEncodeError:  # a lone surrogate the parse step did not see
                    execute(_UPSERT_CONTACT, clean_row(row))
                n += 1
        return n

    @_db_errors
    def get_contact(self, crm: str, contact_id: str) -> Contact | None:
        """The stored contact, archived or merged ones included (see `resolve_id`)."""
        row = self._conn.execute(_SELECT_CONTACT, (crm, contact_id)).fetchone()
        return None if row is None else contact_from_row(row)

    @_db_errors
    def resolve_id(self, crm: str, contact_id: str) -> str:
        """Follow `merged_into` to the surviving id (the id itself when not merged)."""
        seen = [contact_id]
        current = contact_id
        while True:
            row = self._conn.execute(
                "SELECT merged_into FROM contacts WHERE crm = ? AND id = ?", (crm, current)
            ).fetchone()
            if row is None or row[0] is None:
                return current
            current = row[0]
            if current in seen:
                raise StateError(
                    f"state DB {self.path}: merge chain of {crm} contact {contact_id} loops "
                    f"({' -> '.join([*seen, current])})"
                )
            seen.append(current)

    @_db_errors
    def merged_into(self, crm: str, contact_id: str) -> str | None:
        """The id this contact was merged into (one step), or None."""
        row = self._conn.execute(
            "SELECT merged_into FROM contacts WHERE crm = ? AND id = ?", (crm, contact_id)
        ).fetchone()
        return None if row is None else row[0]

    @_db_errors
    def find_contact_ids_by_email(self, crm: str, emails: Iterable[str]) -> dict[str, str]:
        """`{email.lower(): id}` for live (not archived, not merged) contacts.

        Case-insensitive for ASCII letters. When several live contacts share an address
        (Marketo allows it) the earliest created wins, then the smallest id.
        """
        wanted: dict[str, str] = {}  # ascii-lowered -> key the caller sees
        for email in emails:
            if email:
                wanted.setdefault(_ascii_lower(email), email.lower())
        if not wanted:
            return {}
        rows = self._conn.execute(_FIND_BY_EMAIL, (crm, _ids_param(wanted))).fetchall()
        found: dict[str, str] = {}
        for email_lower, contact_id in rows:
            found.setdefault(wanted[email_lower], contact_id)
        return found

    @_db_errors_iter
    def iter_contacts(
        self,
        crm: str,
        ids: Iterable[str] | None = None,
        *,
        include_inactive: bool = False,
        batch: int = DEFAULT_BATCH,
    ) -> Iterator[Contact]:
        """Contacts in id order, read in batches (bounded memory). Live ones unless
        `include_inactive`."""
        for rows in self._contact_batches(crm, ids, include_inactive, batch):
            for row in rows:
                yield contact_from_row(row)

    @_db_errors
    def count_contacts(self, crm: str, *, include_inactive: bool = False) -> int:
        sql = _COUNT_CONTACTS if include_inactive else _COUNT_LIVE_CONTACTS
        row = self._conn.execute(sql, (crm,)).fetchone()
        return int(row[0])

    @_db_errors
    def mark_archived(self, crm: str, contact_id: str, at: datetime) -> None:
        """The CRM no longer has this contact (404 / archived): stop writing to it."""
        when = encode_dt(at)
        with self.transaction():
            self._conn.execute(
                "INSERT INTO contacts (crm, id, archived_at, first_seen_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (crm, id) DO UPDATE SET archived_at = excluded.archived_at",
                (crm, contact_id, when, when),
            )

    @_db_errors
    def is_writable(self, crm: str, contact_id: str) -> bool:
        """False for an archived or merged-away contact; True otherwise (unknown ids too)."""
        row = self._conn.execute(
            "SELECT archived_at IS NULL AND merged_into IS NULL FROM contacts "
            "WHERE crm = ? AND id = ?",
            (crm, contact_id),
        ).fetchone()
        return row is None or bool(row[0])

    @_db_errors
    def merge_contacts(self, crm: str, absorbed_id: str, survivor_id: str, at: datetime) -> int:
        """Record that `absorbed_id` was merged into `survivor_id`, in one transaction.

        Moves the absorbed contact's events to the survivor (events are unique by
        (crm, source, source_id), so a move can never duplicate one), drops its current
        score, written values and place on the write backlog, sets `merged_into` (a stub row
        is created if the absorbed contact was never pulled) and re-points contacts merged
        into it earlier. If the survivor had itself been merged into the absorbed contact, the
        newer merge wins.
        Returns the number of events moved.
        """
        if absorbed_id == survivor_id:
            raise ValueError(f"cannot merge {crm} contact {absorbed_id} into itself")
        when = encode_dt(at)
        ex = self._conn.execute
        with self.transaction():
            target = self.resolve_id(crm, survivor_id)
            if target == absorbed_id:  # survivor -> ... -> absorbed: reversed by this merge
                ex(
                    "UPDATE contacts SET merged_into = NULL, merged_at = NULL "
                    "WHERE crm = ? AND id = ?",
                    (crm, survivor_id),
                )
                target = survivor_id
            ex(
                "INSERT INTO contacts (crm, id, merged_into, merged_at, first_seen_at) "
                "VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (crm, id) DO UPDATE SET "
                "merged_into = excluded.merged_into, merged_at = excluded.merged_at",
                (crm, absorbed_id, target, when),
            )
            ex(
                "UPDATE contacts SET merged_into = ? WHERE crm = ? AND merged_into = ?",
                (target, crm, absorbed_id),
            )
            moved = ex(
                "UPDATE events SET contact_id = ? WHERE crm = ? AND contact_id = ?",
                (target, crm, absorbed_id),
            ).rowcount
            ex("DELETE FROM scores WHERE crm = ? AND contact_id = ?", (crm, absorbed_id))
            ex("DELETE FROM written WHERE crm = ? AND contact_id = ?", (crm, absorbed_id))
            # nothing of it is written any more: off the backlog (the survivor is the one
            # to score, and the caller marks it)
            ex("DELETE FROM write_backlog WHERE crm = ? AND contact_id = ?", (crm, absorbed_id))
        return int(moved)

    # -- events --------------------------------------------------------------------------

    @_db_errors
    def insert_events(self, crm: str, events: Iterable[Event]) -> set[str]:
        """Insert events idempotently by (crm, source, source_id); returns the ids of the
        contacts that gained at least one new event (empty on a replay)."""
        return self.insert_events_counted(crm, events)[0]

    @_db_errors
    def insert_events_counted(self, crm: str, events: Iterable[Event]) -> tuple[set[str], int]:
        """As `insert_events`, plus how many rows were new."""
        gained: set[str] = set()
        add = gained.add
        new = 0
        with self.transaction(), contextlib.closing(self._conn.cursor()) as cursor:
            execute = cursor.execute  # one reused cursor: cheaper than conn.execute per row
            sql = _INSERT_EVENT
            for e in events:
                attrs = e.attributes
                row = (
                    crm,
                    e.source,
                    e.source_id,
                    e.contact_id,
                    e.type,
                    encode_dt(e.occurred_at),
                    encode_mapping(attrs) if attrs else None,
                )
                try:
                    execute(sql, row)
                except UnicodeEncodeError:  # a lone surrogate the parse step did not see
                    execute(sql, clean_row(row))
                if cursor.rowcount:
                    add(e.contact_id)
                    new += 1
        return gained, new

    # -- write backlog (migration 2) -----------------------------------------------------
    @_db_errors
    def set_write_pending(self, crm: str, contact_ids: Iterable[str], pending: bool) -> None:
        """Mark contacts whose computed values still have to reach the CRM (or clear it)."""
        ids = list(contact_ids)
        if not ids:
            return
        with self.transaction():
            if pending:
                self._conn.executemany(
                    "INSERT OR IGNORE INTO write_backlog (crm, contact_id) VALUES (?, ?)",
                    [(crm, i) for i in ids],
                )
            else:
                self._conn.executemany(
                    "DELETE FROM write_backlog WHERE crm = ? AND contact_id = ?",
                    [(crm, i) for i in ids],
                )

    @_db_errors
    def pending_write_ids(self, crm: str) -> list[str]:
        rows = self._conn.execute(
            "SELECT contact_id FROM write_backlog WHERE crm = ? ORDER BY contact_id", (crm,)
        ).fetchall()
        return [r[0] for r in rows]

    # -- writes in flight: sent, outcome not recorded yet (one `jobs` row per contact) -------
    @_db_errors
    def set_in_flight(self, crm: str, writes: Mapping[str, Mapping[str, str]]) -> None:
        """Record writes about to be sent (`{contact id: properties}`), committed before the
        request goes out: if the process dies before their outcome is recorded, the next run
        knows which writes may have reached the CRM and checks instead of sending twice."""
        if not writes:
            return
        when = encode_dt(_now())
        rows = [
            (_in_flight_key(crm, cid), encode_json(dict(props)), when)
            for cid, props in writes.items()
        ]
        sql = (
            "INSERT INTO jobs (name, state, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET state = excluded.state, "
            "updated_at = excluded.updated_at"
        )
        with self.transaction():
            try:
                self._conn.executemany(sql, rows)
            except UnicodeEncodeError:  # a lone surrogate in a value: replaced (idempotent)
                self._conn.executemany(sql, [clean_row(r) for r in rows])

    @_db_errors
    def writes_in_flight(self, crm: str) -> dict[str, dict[str, str]]:
        """`{contact id: properties}` of the writes whose outcome was never recorded."""
        prefix = _in_flight_key(crm, "")
        rows = self._conn.execute(
            "SELECT name, state FROM jobs WHERE name >= ? AND name < ? ORDER BY name",
            (prefix, prefix[:-1] + ";"),  # ";" sorts right after ":"
        ).fetchall()
        return {name[len(prefix) :]: decode_mapping(state) for name, state in rows}

    @_db_errors
    def clear_in_flight(self, crm: str, contact_ids: Iterable[str]) -> None:
        """The outcome of these writes is recorded (or they are known not to have arrived)."""
        keys = [(_in_flight_key(crm, cid),) for cid in contact_ids]
        if not keys:
            return
        with self.transaction():
            self._conn.executemany("DELETE FROM jobs WHERE name = ?", keys)

    @_db_errors
    def resolve_dead_letters_for(self, crm: str, kind: str, contact_id: str, at: datetime) -> int:
        with self.transaction():
            cur = self._conn.execute(
                "UPDATE dead_letters SET resolved_at = ? WHERE crm = ? AND kind = ? "
                "AND contact_id = ? AND resolved_at IS NULL",
                (encode_dt(at), crm, kind, contact_id),
            )
        return int(cur.rowcount)

    @_db_errors
    def count_events(self, crm: str) -> int:
        row = self._conn.execute("SELECT count(*) FROM events WHERE crm = ?", (crm,)).fetchone()
        return int(row[0])

    @_db_errors
    def events_for(self, crm: str, contact_id: str) -> list[Event]:
        """One contact's events, oldest first (ties in insertion order)."""
        rows = self._conn.execute(_EVENTS_OF, (crm, contact_id)).fetchall()
        return [_event(r) for r in rows]

    @_db_errors_iter
    def iter_contacts_with_events(
        self,
        crm: str,
        contact_ids: Iterable[str] | None = None,
        *,
        batch: int = DEFAULT_BATCH,
        include_inactive: bool = False,
    ) -> Iterator[tuple[Contact, list[Event]]]:
        """`(contact, its events oldest first)` for every live contact (or those of
        `contact_ids`), in contact-id order.

        Streamed: `batch` contacts are read at a time by keyset (id > last), and their events
        by one index range scan over (crm, contact_id, occurred_at); memory holds one batch.
        No statement stays open between batches, so the caller may write (save scores) while
        iterating.
        """
        for rows, grouped in self._grouped_events(
            crm, contact_ids, batch, include_inactive, _EVENTS_RANGE, _EVENTS_IN
        ):
            for row in rows:
                yield contact_from_row(row), [_event(er) for er in grouped.pop(row[0], ())]

    @_db_errors_iter
    def iter_contacts_with_event_rows(
        self,
        crm: str,
        contact_ids: Iterable[str] | None = None,
        *,
        batch: int = DEFAULT_BATCH,
        include_inactive: bool = False,
        after: str = "",
        upto: str = LAST_ID,
    ) -> Iterator[tuple[Contact, list[EventRow]]]:
        """`iter_contacts_with_events` with each event as its stored row (`EventRow`, what
        `connector.scoring.score_rows` takes) instead of an `Event`: a full rescore's path,
        which skips decoding millions of attributes and times it does not need. Without
        `contact_ids`, the contacts with ids in `(after, upto]` (see `split_live_ids`)."""
        for rows, grouped in self._grouped_events(
            crm,
            contact_ids,
            batch,
            include_inactive,
            _EVENT_ROWS_RANGE,
            _EVENT_ROWS_IN,
            after,
            upto,
        ):
            for row in rows:
                yield contact_from_row(row), grouped.pop(row[0], [])

    def _grouped_events(
        self,
        crm: str,
        contact_ids: Iterable[str] | None,
        batch: int,
        include_inactive: bool,
        sql_range: str,
        sql_in: str,
        after: str = "",
        upto: str = LAST_ID,
    ) -> Iterator[tuple[list[Any], dict[str, list[Any]]]]:
        """Batches of contact rows, with their event rows grouped by contact id (the event
        rows come ordered by contact id: one range scan of the contact/time index)."""
        ex = self._conn.execute
        by_range = contact_ids is None
        for rows in self._contact_batches(crm, contact_ids, include_inactive, batch, after, upto):
            if by_range:
                event_rows = ex(sql_range, (crm, rows[0][0], rows[-1][0])).fetchall()
            else:
                event_rows = ex(sql_in, (crm, _ids_param(r[0] for r in rows))).fetchall()
            grouped = {cid: list(group) for cid, group in groupby(event_rows, _first)}
            del event_rows
            yield rows, grouped

    def _contact_batches(
        self,
        crm: str,
        ids: Iterable[str] | None,
        include_inactive: bool,
        batch: int,
        after: str = "",
        upto: str = LAST_ID,
    ) -> Iterator[list[Any]]:
        if batch < 1:
            raise ValueError("batch must be >= 1")
        ex = self._conn.execute
        if ids is not None:
            wanted = sorted(set(ids))
            for chunk in _chunks(wanted, batch):
                rows = ex(_CONTACTS_IN, (crm, include_inactive, _ids_param(chunk))).fetchall()
                if rows:
                    yield rows
            return
        while True:
            rows = ex(_CONTACTS_AFTER, (crm, include_inactive, batch, after, upto)).fetchall()
            if rows:
                yield rows
            if len(rows) < batch:
                return
            after = rows[-1][0]

    @_db_errors
    def split_live_ids(self, crm: str, parts: int) -> list[tuple[str, str]]:
        """The live contacts cut into at most `parts` id ranges `(after, upto]` of about equal
        size, in id order, covering every id (`after` of the first is "", `upto` of the last
        `LAST_ID`): the shares of a parallel rescore."""
        total = self.count_contacts(crm)
        parts = max(1, min(parts, total))
        cuts: list[str] = []
        for k in range(1, parts):
            row = self._conn.execute(_LIVE_ID_AT, (crm, total * k // parts - 1)).fetchone()
            if row is not None and (not cuts or row[0] > cuts[-1]):
                cuts.append(row[0])
        bounds = ["", *cuts, LAST_ID]
        return list(pairwise(bounds))

    # -- enrichment cache ----------------------------------------------------------------

    @property
    def company_cache(self) -> CompanyCacheView:
        """This DB as the enrichment `CompanyCache` (`get(domain)` / `put(entry)`)."""
        return CompanyCacheView(self)

    @_db_errors
    def get_company_entry(self, domain: str) -> CacheEntry | None:
        """The cached entry for a registrable domain, fresh or not (the caller checks
        `expires_at`)."""
        row = self._conn.execute(
            "SELECT domain, status, company, source, fetched_at, expires_at FROM companies "
            "WHERE domain = ?",
            (domain.lower(),),
        ).fetchone()
        if row is None:
            return None
        return CacheEntry(
            domain=row[0],
            status=row[1],
            company=_company(row[2]),
            source=row[3],
            fetched_at=decode_dt(row[4]),
            expires_at=decode_dt(row[5]),
        )

    @_db_errors
    def put_company_entry(self, entry: CacheEntry) -> None:
        """Replace the entry of `entry.domain` (one row per domain)."""
        company = None if entry.company is None else encode_json(asdict(entry.company))
        with self.transaction():
            self._conn.execute(
                "INSERT OR REPLACE INTO companies "
                "(domain, status, company, source, fetched_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    entry.domain.lower(),
                    entry.status,
                    company,
                    entry.source,
                    encode_dt(entry.fetched_at),
                    encode_dt(entry.expires_at),
                ),
            )

    # -- scores --------------------------------------------------------------------------

    @_db_errors
    def save_scores(self, crm: str, results: Iterable[ScoreResult]) -> int:
        """Upsert the current score of each contact; append a `score_history` row when score,
        grade, MQL flag or model version changed. Returns how many results were saved."""
        rows = [score_row(crm, result) for result in results]
        with self.transaction(), contextlib.closing(self._conn.cursor()) as cursor:
            try:
                cursor.executemany(_UPSERT_SCORE, rows)  # history rows: migration 003's triggers
            except UnicodeEncodeError:  # a lone surrogate in a reason (model text): replaced
                cursor.executemany(_UPSERT_SCORE, [clean_row(r) for r in rows])  # idempotent
        return len(rows)

    @_db_errors
    def get_score(self, crm: str, contact_id: str) -> StoredScore | None:
        row = self._conn.execute(_SELECT_SCORE, (crm, contact_id)).fetchone()
        return None if row is None else _stored_score(row)

    @_db_errors
    def get_scores_many(self, crm: str, ids: Iterable[str]) -> dict[str, StoredScore]:
        """The current scores of those contacts that have one."""
        out: dict[str, StoredScore] = {}
        for chunk in _chunks(list(dict.fromkeys(ids)), 5000):
            for row in self._conn.execute(_SELECT_SCORES_IN, (crm, _ids_param(chunk))):
                out[row[1]] = _stored_score(row)
        return out

    @_db_errors_iter
    def iter_scores(self, crm: str, *, batch: int = DEFAULT_BATCH) -> Iterator[StoredScore]:
        """Every current score of `crm`, in contact-id order (read in batches)."""
        after = ""  # every real id sorts after the empty string
        while True:
            rows = self._conn.execute(_SCORES_AFTER, (crm, after, batch)).fetchall()
            for row in rows:
                yield _stored_score(row)
            if len(rows) < batch:
                return
            after = rows[-1][1]

    @_db_errors
    def score_history(self, crm: str, contact_id: str) -> list[dict[str, Any]]:
        """History rows of one contact, oldest first (model_version, score, grade, mql,
        scored_at)."""
        rows = self._conn.execute(
            "SELECT model_version, score, grade, mql, scored_at FROM score_history "
            "WHERE crm = ? AND contact_id = ? ORDER BY scored_at, id",
            (crm, contact_id),
        ).fetchall()
        return [
            {
                "model_version": r[0],
                "score": r[1],
                "grade": r[2],
                "mql": bool(r[3]),
                "scored_at": decode_dt(r[4]),
            }
            for r in rows
        ]

    @_db_errors
    def due_contact_ids(self, crm: str, now: datetime) -> list[str]:
        """Contacts whose score changes by `now` (an event ages out): earliest first."""
        rows = self._conn.execute(
            "SELECT contact_id FROM scores WHERE crm = ? AND next_change_at <= ? "
            "ORDER BY next_change_at, contact_id",
            (crm, encode_dt(now)),
        ).fetchall()
        return [r[0] for r in rows]

    # -- written values ------------------------------------------------------------------

    @_db_errors
    def get_written(self, crm: str, contact_id: str) -> dict[str, str]:
        rows = self._conn.execute(
            "SELECT property, value FROM written WHERE crm = ? AND contact_id = ?",
            (crm, contact_id),
        ).fetchall()
        return {p: v for p, v in rows}

    @_db_errors
    def get_written_many(self, crm: str, ids: Iterable[str]) -> dict[str, dict[str, str]]:
        """`{id: {property: value}}` with an entry (maybe empty) for every requested id."""
        wanted = list(dict.fromkeys(ids))
        out: dict[str, dict[str, str]] = {i: {} for i in wanted}
        for chunk in _chunks(wanted, 5000):
            rows = self._conn.execute(
                "SELECT contact_id, property, value FROM written WHERE crm = ? AND contact_id "
                "IN (SELECT value FROM json_each(?))",
                (crm, _ids_param(chunk)),
            ).fetchall()
            for contact_id, prop, value in rows:
                out[contact_id][prop] = value
        return out

    @_db_errors
    def record_written(
        self, crm: str, contact_id: str, props: Mapping[str, str], at: datetime
    ) -> None:
        when = encode_dt(at)
        with self.transaction():
            self._conn.executemany(
                "INSERT INTO written (crm, contact_id, property, value, written_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (crm, contact_id, property) DO UPDATE SET "
                "value = excluded.value, written_at = excluded.written_at",
                [(crm, contact_id, k, v, when) for k, v in props.items()],
            )

    # -- cursors -------------------------------------------------------------------------

    @_db_errors
    def get_cursor(self, crm: str, stream: str) -> str | None:
        row = self._conn.execute(
            "SELECT value FROM cursors WHERE crm = ? AND stream = ?", (crm, stream)
        ).fetchone()
        return None if row is None else str(row[0])

    @_db_errors
    def set_cursor(self, crm: str, stream: str, value: str) -> None:
        with self.transaction():
            self._conn.execute(
                "INSERT INTO cursors (crm, stream, value, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (crm, stream) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                (crm, stream, value, encode_dt(_now())),
            )

    # -- the model in force ----------------------------------------------------------------

    @_db_errors
    def get_active_model(self, crm: str) -> ActiveModel | None:
        row = self._conn.execute(
            "SELECT crm, version, fingerprint, content, model_yaml, source_path, applied_at, "
            "applied_by FROM active_model WHERE crm = ?",
            (crm,),
        ).fetchone()
        if row is None:
            return None
        return ActiveModel(
            crm=row[0],
            version=row[1],
            fingerprint=row[2],
            content=row[3],
            model_yaml=row[4],
            source_path=row[5],
            applied_at=decode_dt(row[6]),
            applied_by=row[7],
        )

    @_db_errors
    def set_active_model(self, active: ActiveModel) -> None:
        """Make `active` the model in force for its CRM (replacing the previous one)."""
        with self.transaction():
            self._conn.execute(
                "INSERT INTO active_model (crm, version, fingerprint, content, model_yaml, "
                "source_path, applied_at, applied_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (crm) DO UPDATE SET version = excluded.version, "
                "fingerprint = excluded.fingerprint, content = excluded.content, "
                "model_yaml = excluded.model_yaml, source_path = excluded.source_path, "
                "applied_at = excluded.applied_at, applied_by = excluded.applied_by",
                (
                    active.crm,
                    active.version,
                    active.fingerprint,
                    active.content,
                    active.model_yaml,
                    active.source_path,
                    encode_dt(active.applied_at),
                    active.applied_by,
                ),
            )

    @_db_errors
    def stored_models(self, crm: str) -> list[tuple[str, str, int]]:
        """(model version, fingerprint, how many stored scores) per model, most used first."""
        rows = self._conn.execute(
            "SELECT model_version, model_fingerprint, count(*) FROM scores WHERE crm = ? "
            "GROUP BY model_version, model_fingerprint ORDER BY count(*) DESC, model_version",
            (crm,),
        ).fetchall()
        return [(str(v), str(fp or ""), int(n)) for v, fp, n in rows]

    # -- runs ----------------------------------------------------------------------------

    @_db_errors
    def start_run(self, crm: str, kind: str, *, at: datetime | None = None) -> int:
        with self.transaction():
            cursor = self._conn.execute(
                "INSERT INTO runs (crm, kind, started_at, status, api_calls, errors) "
                "VALUES (?, ?, ?, ?, 0, 0)",
                (crm, kind, encode_dt(at or _now()), RUN_RUNNING),
            )
        return int(cursor.lastrowid or 0)

    @_db_errors
    def finish_run(
        self,
        run_id: int,
        status: str,
        counts: Mapping[str, Any] | None = None,
        api_calls: int = 0,
        errors: int = 0,
        message: str | None = None,
        *,
        at: datetime | None = None,
    ) -> None:
        """Close a run: status is `RUN_OK`, `RUN_PARTIAL`, `RUN_FAILED` or `RUN_STOPPED`."""
        with self.transaction():
            cursor = self._conn.execute(
                "UPDATE runs SET finished_at = ?, status = ?, counts = ?, api_calls = ?, "
                "errors = ?, message = ? WHERE id = ?",
                (
                    encode_dt(at or _now()),
                    status,
                    encode_json(redact(dict(counts or {}))),
                    api_calls,
                    errors,
                    None if message is None else redact_text(message),
                    run_id,
                ),
            )
            if cursor.rowcount == 0:
                raise ValueError(f"no run with id {run_id}")

    @_db_errors
    def get_run(self, run_id: int) -> RunRecord | None:
        row = self._conn.execute(_SELECT_RUN, (run_id,)).fetchone()
        return None if row is None else _run(row)

    @_db_errors
    def last_runs(self, crm: str, n: int = 10) -> list[RunRecord]:
        """The `n` most recent runs of `crm`, newest first."""
        rows = self._conn.execute(_LAST_RUNS, (crm, n)).fetchall()
        return [_run(r) for r in rows]

    @_db_errors
    def last_successful_run(self, crm: str, kind: str) -> RunRecord | None:
        """The newest run of `kind` that finished with status `RUN_OK`."""
        row = self._conn.execute(_LAST_RUN_WITH_STATUS, (crm, kind, RUN_OK)).fetchone()
        return None if row is None else _run(row)

    # -- dead letters --------------------------------------------------------------------

    @_db_errors
    def add_dead_letter(
        self,
        crm: str,
        kind: str,
        contact_id: str | None,
        payload: Any,
        reason: str,
        at: datetime,
    ) -> int:
        """Record a failure; a repeat for the same open (crm, kind, contact) bumps `attempts`
        and keeps the newest payload and reason. Secrets in payload/reason are masked.
        Returns the dead letter's id."""
        when = encode_dt(at)
        # a dead letter is kept whatever its text: lone surrogates and controls are cleaned
        row = clean_row(
            (crm, kind, contact_id or "", encode_json(redact(payload)), redact_text(reason), when)
        )
        with self.transaction():
            rows = self._conn.execute(_ADD_DEAD_LETTER, row).fetchall()  # drain RETURNING
        return int(rows[0][0])

    @_db_errors
    def open_dead_letters(self, crm: str, kind: str | None = None) -> list[DeadLetter]:
        """Unresolved dead letters, oldest first."""
        rows = self._conn.execute(_OPEN_DEAD_LETTERS, (crm, kind)).fetchall()
        return [_dead_letter(r) for r in rows]

    @_db_errors
    def resolve_dead_letter(self, dead_letter_id: int, at: datetime) -> bool:
        """Mark resolved; False if it does not exist or was already resolved."""
        with self.transaction():
            cursor = self._conn.execute(
                "UPDATE dead_letters SET resolved_at = ? WHERE id = ? AND resolved_at IS NULL",
                (encode_dt(at), dead_letter_id),
            )
        return cursor.rowcount > 0

    @_db_errors
    def count_open_dead_letters(self, crm: str) -> int:
        row = self._conn.execute(
            "SELECT count(*) FROM dead_letters WHERE crm = ? AND resolved_at IS NULL", (crm,)
        ).fetchone()
        return int(row[0])

    # -- jobs ----------------------------------------------------------------------------

    @_db_errors
    def get_job(self, name: str) -> dict[str, Any] | None:
        row = self._conn.execute("SELECT state FROM jobs WHERE name = ?", (name,)).fetchone()
        return None if row is None else decode_mapping(row[0])

    @_db_errors
    def set_job(self, name: str, state: Mapping[str, Any]) -> None:
        """Save a resumable job's progress (a JSON object: paging tokens, offsets; no
        credentials)."""
        with self.transaction():
            self._conn.execute(
                "INSERT INTO jobs (name, state, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET state = excluded.state, "
                "updated_at = excluded.updated_at",
                (name, encode_json(dict(state)), encode_dt(_now())),
            )

    @_db_errors
    def delete_job(self, name: str) -> bool:
        with self.transaction():
            cursor = self._conn.execute("DELETE FROM jobs WHERE name = ?", (name,))
        return cursor.rowcount > 0


class CompanyCacheView:
    """The `connector.enrich.cache.CompanyCache` protocol over a `StateStore`'s companies table."""

    __slots__ = ("_store",)

    def __init__(self, store: StateStore) -> None:
        self._store = store

    def get(self, domain: str) -> CacheEntry | None:
        return self._store.get_company_entry(domain)

    def put(self, entry: CacheEntry) -> None:
        self._store.put_company_entry(entry)

    def __repr__(self) -> str:
        return f"CompanyCacheView({self._store.path!r})"
