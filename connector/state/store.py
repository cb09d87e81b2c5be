"""The state DB: one SQLite file (WAL mode) holding everything a sync must remember.

Contacts and events pulled from the CRM, the enrichment cache, current scores plus their
history, the values last written back, cursors, runs, dead letters and resumable jobs. Every
row that belongs to a CRM is keyed by `crm` too, so one file can serve HubSpot or Marketo.

`StateStore` opens, migrates and configures the DB; what it stores lives in one mixin module
per concern (`contacts`, `companies`, `scores`, `runs`, `dead_letters`, `models`, `leases`,
`webhooks`, `accounts`, `named`),
all on the connection and transactions of `connector.state.base.StoreBase`. To add a
concern, write its mixin and add it to `StateStore`'s bases.

Transactions: `with store.transaction(): ...` is one `BEGIN IMMEDIATE … COMMIT` (rolled back on
any exception); methods called inside it do not commit on their own, and a nested
`transaction()` is a no-op block. Methods called outside a transaction commit on their own.
This is how data and cursor commit together (pitfall #2).

SQL is always parameterized; lists travel as one JSON parameter through `json_each`, so the SQL
text never depends on the data.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime
from pathlib import Path

from connector.errors import StateError
from connector.state import migrations
from connector.state.accounts import AccountsStateMixin
from connector.state.base import (
    DEFAULT_BATCH,
    DEFAULT_BUSY_TIMEOUT,
    LAST_ID,
    StoreBase,
    _db_errors,
    configure_connection,
    translated_errors,
)
from connector.state.codec import decode_dt
from connector.state.companies import CompaniesMixin, CompanyCacheView
from connector.state.contacts import _COUNT_LIVE_CONTACTS, _LIVE_ID_AT, ContactsMixin
from connector.state.dead_letters import DeadLetter, DeadLettersMixin
from connector.state.layout import EventsLayoutMixin
from connector.state.leases import BULK_LEASE, DUE_INDEX, LeasesMixin
from connector.state.models import ActiveModel, ModelsMixin
from connector.state.named import NamedScoresMixin
from connector.state.runs import (
    RUN_FAILED,
    RUN_INTERRUPTED,
    RUN_OK,
    RUN_PARTIAL,
    RUN_RUNNING,
    RUN_STOPPED,
    RUN_WORKER_JOB,
    RunRecord,
    RunsMixin,
)
from connector.state.scores import ScoresMixin, StoredScore
from connector.state.webhooks import WebhookEventsMixin

__all__ = [  # the names imported from here before the split (tests: the two live queries)
    "BULK_LEASE",
    "DEFAULT_BATCH",
    "DEFAULT_BUSY_TIMEOUT",
    "DUE_INDEX",
    "LAST_ID",
    "RUN_FAILED",
    "RUN_INTERRUPTED",
    "RUN_OK",
    "RUN_PARTIAL",
    "RUN_RUNNING",
    "RUN_STOPPED",
    "RUN_WORKER_JOB",
    "_COUNT_LIVE_CONTACTS",
    "_LIVE_ID_AT",
    "ActiveModel",
    "CompanyCacheView",
    "DeadLetter",
    "RunRecord",
    "StateStore",
    "StoredScore",
]


class StateStore(
    ContactsMixin,
    CompaniesMixin,
    ScoresMixin,
    RunsMixin,
    DeadLettersMixin,
    ModelsMixin,
    LeasesMixin,
    WebhookEventsMixin,
    AccountsStateMixin,
    NamedScoresMixin,
    EventsLayoutMixin,
    StoreBase,
):
    """The SQLite state DB. Open with `StateStore.open(path)` or `StateStore.memory()`.

    Not for concurrent use from several threads at once; other *processes* may read while
    this one writes (WAL). Use as a context manager or call `close()`.
    """

    # -- opening -----------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        bulk: bool = False,
    ) -> StateStore:
        """Open (creating it 0600 if missing) and migrate the state DB at `path`.

        Raises `StateError` when the file is not an SQLite database, is a leadscore DB of a
        newer schema, or is locked by another process for longer than `busy_timeout` seconds.
        `bulk`: for a process that rewrites most score rows (a parallel rescore's worker):
        the WAL is checkpointed less often (`configure_connection`).
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
                with translated_errors(label, busy_timeout):
                    store = cls(conn, label, busy_timeout)
                    store._setup(wal=True, bulk=bulk)
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
    def _setup(self, *, wal: bool, bulk: bool = False) -> None:
        self.journal_mode = configure_connection(self._conn, wal=wal, bulk=bulk)
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

    @_db_errors
    def applied_migrations(self) -> list[tuple[int, str, datetime]]:
        """(version, name, applied_at) of every migration recorded in this DB."""
        rows = self._conn.execute(
            "SELECT version, name, applied_at FROM migrations ORDER BY version"
        ).fetchall()
        return [(int(v), str(n), decode_dt(a)) for v, n, a in rows]
