"""The connection every part of the state DB shares: SQLite error translation, the pragmas
every connection gets, and the transaction owner (`StoreBase`) the stores' mixins build on.

Transactions: `with store.transaction(): ...` is one `BEGIN IMMEDIATE … COMMIT` (rolled back on
any exception); methods called inside it do not commit on their own, and a nested
`transaction()` is a no-op block. Methods called outside a transaction commit on their own.
This is how data and cursor commit together (pitfall #2).
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

from sqlite_utils import Database

from connector.errors import StateError
from connector.state.codec import encode_json
from connector.text import clean_row

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
S = TypeVar("S", bound="StoreBase")

DEFAULT_BUSY_TIMEOUT = 5.0
DEFAULT_BATCH = 1000

_LOCKED = {"SQLITE_BUSY", "SQLITE_LOCKED"}
_INVALID = {"SQLITE_NOTADB", "SQLITE_CORRUPT"}
_UNUSABLE = {"SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_FULL", "SQLITE_PERM"}

LAST_ID = "\U0010ffff"  # sorts after every contact id (SQLite compares text as UTF-8 bytes)

# ---------------------------------------------------------------------------- errors


def _translate(
    exc: sqlite3.Error,
    label: str,
    timeout: float,
    holder: Callable[[], str | None] | None = None,
) -> StateError | None:
    """The StateError a caller can act on, or None for a programming error (re-raise).
    `holder()`: who holds a locked DB, when the DB says so (`StoreBase._lock_holder`)."""
    base = "_".join((getattr(exc, "sqlite_errorname", "") or "").split("_")[:2])
    text = str(exc)
    if base in _LOCKED or "database is locked" in text:
        who = holder() if holder is not None else None
        return StateError(
            f"state DB {label} is locked: {who or 'another process holds it'} "
            f"(gave up after {timeout:g}s): {text}"
        )
    if base in _INVALID or "not a database" in text or "malformed" in text:
        return StateError(f"state DB {label} is not a valid SQLite database: {text}")
    if base in _UNUSABLE or "unable to open" in text:
        return StateError(f"state DB {label} cannot be used: {text}")
    return None


@contextlib.contextmanager
def translated_errors(
    label: str, timeout: float, holder: Callable[[], str | None] | None = None
) -> Iterator[None]:
    """Raise SQLite's locked/corrupt/unusable errors as `StateError` naming the file (and,
    for a locked one, the process `holder()` names)."""
    try:
        yield
    except sqlite3.Error as exc:
        translated = _translate(exc, label, timeout, holder)
        if translated is None:
            raise
        raise translated from exc


def _db_errors(
    method: Callable[Concatenate[S, P], R],
) -> Callable[Concatenate[S, P], R]:
    """Turn SQLite's locked/corrupt/unusable errors into `StateError` naming the file."""

    @functools.wraps(method)
    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with translated_errors(self.path, self.busy_timeout, self._lock_holder):
            return method(self, *args, **kwargs)

    return wrapper


def _db_errors_iter(
    method: Callable[Concatenate[S, P], Iterator[T]],
) -> Callable[Concatenate[S, P], Iterator[T]]:
    """`_db_errors` for generator methods."""

    @functools.wraps(method)
    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        with translated_errors(self.path, self.busy_timeout, self._lock_holder):
            yield from method(self, *args, **kwargs)

    return wrapper


# ---------------------------------------------------------------------------- every connection

# A contact is live when neither archived nor merged away: the one place that says so. The
# view adds that flag as the column `live`; queries filter on it (`AND live`, or `?N OR live`
# when a caller may switch the filter off). It is a TEMP view, created on each connection by
# `configure_connection`, so the DB file's schema does not change. Its condition is the WHERE
# of the `contacts_live` index (migration 005), so `crm = ? AND live` reads that index.
CONTACTS_VIEW = (
    "CREATE TEMP VIEW IF NOT EXISTS contacts_with_live AS SELECT *, "
    "(archived_at IS NULL AND merged_into IS NULL) AS live FROM main.contacts"
)

# checkpoint the WAL into the DB every ~40 MiB, not every 4 MiB (the default): a full rescore
# rewrites ~1.4 GB of score rows at 1M contacts, and each checkpoint costs two fsyncs
# (measured: -6% on the rescore)
_WAL_CHECKPOINT = "PRAGMA wal_autocheckpoint = 10000"
# a parallel rescore's worker rewrites most of its range's score rows: every ~80 MB, so that
# pages written many times (indexes, the history table's end) are copied into the DB once per
# checkpoint, not once per commit or two
_WAL_CHECKPOINT_BULK = "PRAGMA wal_autocheckpoint = 20000"  # pages of 4 KiB


def configure_connection(conn: sqlite3.Connection, *, wal: bool, bulk: bool = False) -> str:
    """The settings of every connection to a state DB (the store's, a parallel rescore's
    workers', bench/ readers): WAL (for a file) with its checkpoint interval (`bulk`: the
    longer one of a worker rewriting score rows), foreign keys, memory for temp tables, a
    64 MiB page cache, and the `contacts_with_live` view. The busy timeout is
    `sqlite3.connect(timeout=...)`'s. Returns the journal mode in force."""
    journal_mode = "memory"
    if wal:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        journal_mode = str(mode[0]).lower() if mode else "unknown"
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(_WAL_CHECKPOINT_BULK if bulk else _WAL_CHECKPOINT)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA cache_size = -65536")  # up to 64 MiB of page cache
    conn.execute(CONTACTS_VIEW)
    return journal_mode


# ---------------------------------------------------------------------------- shared SQL

# a `jobs` row (resumable jobs, writes in flight, the bulk-scoring lease): insert or replace
UPSERT_JOB = (
    "INSERT INTO jobs (name, state, updated_at) VALUES (?, ?, ?) "
    "ON CONFLICT (name) DO UPDATE SET state = excluded.state, "
    "updated_at = excluded.updated_at"
)


def _now() -> datetime:
    return datetime.now(UTC)


def _ids_param(ids: Iterable[str]) -> str:
    return encode_json(list(ids))


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# ---------------------------------------------------------------------------- the connection


class StoreBase:
    """Owns the connection: transactions, close. `StateStore` adds opening and migrating."""

    def __init__(self, conn: sqlite3.Connection, path: str, busy_timeout: float) -> None:
        self._conn = conn
        self.path = path
        self.busy_timeout = busy_timeout
        self._depth = 0
        self.journal_mode = "unknown"
        self.db = Database(conn, execute_plugins=False)
        """sqlite-utils view of the same connection, for reports and ad-hoc reads."""

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

    def _lock_holder(self) -> str | None:
        """Who holds this DB locked, when a long writer says so in the DB (`leadscore
        optimize`: `EventsLayoutMixin`); None here."""
        return None

    # -- transactions --------------------------------------------------------------------

    def _upsert_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """`executemany` of an idempotent upsert, within the caller's transaction. Should a
        lone surrogate refuse to encode (a CRM text the parse step did not see, a model's
        text), every row again with its strings cleaned (`clean_row`): stored replaced, and
        the rows saved before the bad one saved again the same."""
        try:
            self._conn.executemany(sql, rows)
        except UnicodeEncodeError:
            self._conn.executemany(sql, [clean_row(r) for r in rows])

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
