"""The bulk-scoring lease: a full rescore drops the due-time index and builds it again at
the end; a `jobs` row names the process (pid, host) that dropped it, so that a later `open`
rebuilds an index left dropped by a process that died."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

from connector.state.base import UPSERT_JOB, StoreBase, _db_errors, _now
from connector.state.codec import decode_dt, decode_mapping, encode_dt, encode_json

# The index that finds the contacts whose score changes by a time (`due_contact_ids`). A full
# rescore drops it and builds it again once at the end (`StateStore.bulk_scoring`).
DUE_INDEX = "scores_crm_next_change"
# the account scores' secondary indexes: a full rescore with accounts on rewrites every account
# row, and each index entry moves to another place (its score, its next change) on every one
# of them; dropped with the due index and built again with it (`bulk_scoring(accounts=True)`)
ACCOUNT_INDEXES = ("account_scores_next", "account_scores_score", "account_scores_model")
# every index a `bulk_scoring` may drop: name -> (its table, its statements to build it and
# to drop it)
_BULK_INDEXES = {
    DUE_INDEX: (
        "scores",
        'CREATE INDEX IF NOT EXISTS "scores_crm_next_change" ON "scores" ("crm", "next_change_at")',
        'DROP INDEX IF EXISTS "scores_crm_next_change"',
    ),
    "account_scores_next": (
        "account_scores",
        "CREATE INDEX IF NOT EXISTS account_scores_next ON account_scores (crm, next_change_at)",
        'DROP INDEX IF EXISTS "account_scores_next"',
    ),
    "account_scores_score": (
        "account_scores",
        "CREATE INDEX IF NOT EXISTS account_scores_score ON account_scores (crm, score DESC)",
        'DROP INDEX IF EXISTS "account_scores_score"',
    ),
    "account_scores_model": (
        "account_scores",
        "CREATE INDEX IF NOT EXISTS account_scores_model "
        "ON account_scores (crm, model_fingerprint, account_id)",
        'DROP INDEX IF EXISTS "account_scores_model"',
    ),
}
_SCHEMA_NAMES = "SELECT name FROM sqlite_master WHERE type IN ('table', 'index')"
_BULK_JOB = "bulk-scoring"  # the `jobs` row naming the process that dropped the due index
# how long a dropped due index is left to its rescore when its process cannot be checked
BULK_LEASE = timedelta(hours=2)


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


def _stat(pid: int) -> tuple[str, int] | None:
    """Process `pid`'s state letter and start (Linux: fields 3 and 22 of /proc/PID/stat);
    None where the system does not tell (no /proc, the process is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        # field 2, the command name, may hold spaces and parentheses: count after its ")"
        fields = stat[stat.rindex(b")") + 2 :].split()
        return fields[0].decode("ascii"), int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def process_start(pid: int) -> int | None:
    """When process `pid` started, in clock ticks after the host's boot (Linux); None where
    the system does not tell. A later process given the same pid (a restarted container's
    pid 1) has another."""
    stat = _stat(pid)
    return None if stat is None else stat[1]


def this_process() -> tuple[int, str, int | None]:
    """This process as a run records it: pid, host name, `process_start`."""
    pid = os.getpid()
    return pid, socket.gethostname(), process_start(pid)


def process_alive(host: object, pid: object, start: object = None) -> bool | None:
    """Whether the process `pid` of `host` is still there: True or False for one of this
    host; None for one of another host or container, where its pid says nothing (its
    caller decides by age, as the leases do). A process killed but not yet reaped by its
    parent (a zombie) is gone. With the `start` recorded with it (see `process_start`), a
    live process of that pid that started at another time is another process: the recorded
    one is gone. Where the system does not tell the state or start, the pid alone decides."""
    if host != socket.gethostname():
        return None
    if not _process_alive(pid) or not isinstance(pid, int):
        return False
    stat = _stat(pid)
    if stat is None:
        return True
    state, started = stat
    return state not in ("Z", "X") and (not isinstance(start, int) or started == start)


def process_record() -> dict[str, Any]:
    """This process as a lease or job marker records it: `{pid, host, start}` (`start`:
    `process_start`, so that a restarted container's pid 1 is not taken for the process that
    recorded it)."""
    pid, host, start = this_process()
    return {"pid": pid, "host": host, "start": start}


def recorded_alive(owner: Mapping[str, Any]) -> bool | None:
    """`process_alive` of a process recorded by `process_record` (or before it, without its
    start: the pid alone decides)."""
    return process_alive(owner.get("host"), owner.get("pid"), owner.get("start"))


class LeasesMixin(StoreBase):
    """The due-time index and the lease of the rescore that dropped it."""

    def _missing_indexes(self) -> list[str]:
        """The statements building the indexes a `bulk_scoring` drops that are not there: those
        of the tables there (a DB opened at an older schema, as a test of a migration does,
        may not have the account tables yet)."""
        there = {r[0] for r in self._conn.execute(_SCHEMA_NAMES)}
        return [
            create
            for name, (table, create, _) in _BULK_INDEXES.items()
            if table in there and name not in there
        ]

    def _restore_due_index(self) -> None:
        """A `bulk_scoring` that died (killed, power cut) left the due index (and the account
        indexes) dropped: build them again, unless the one that dropped them may still be at
        work. That is: a live process on this host, or (seen from another host or container,
        where its pid says nothing) a lease younger than `BULK_LEASE`."""
        if not self._missing_indexes():
            return
        row = self._conn.execute(
            "SELECT state, updated_at FROM jobs WHERE name = ?", (_BULK_JOB,)
        ).fetchone()
        if row is not None:
            owner = decode_mapping(row[0])
            young = _now() - decode_dt(row[1]) < BULK_LEASE
            if young and recorded_alive(owner) is not False:
                return
        self._build_due_index()

    def _build_due_index(self) -> None:
        with self.transaction():
            for create in self._missing_indexes():
                self._conn.execute(create)
            self._conn.execute("DELETE FROM jobs WHERE name = ?", (_BULK_JOB,))

    @_db_errors
    def _take_lease(self, accounts: bool) -> None:
        owner = process_record()
        with self.transaction():
            self._conn.execute(UPSERT_JOB, (_BULK_JOB, encode_json(owner), encode_dt(_now())))
            for name in (DUE_INDEX, *ACCOUNT_INDEXES) if accounts else (DUE_INDEX,):
                self._conn.execute(_BULK_INDEXES[name][2])

    @contextlib.contextmanager
    def bulk_scoring(self, *, accounts: bool = False) -> Iterator[None]:
        """For a rescore that rewrites every score row: the due-time index is dropped while
        it runs and built again, once, at the end. Kept up to date, it costs each contact two
        writes at random places of the index (a 1M-contact rescore spent 2.3 µs per event
        writing scores with it, 0.6 without; the rebuild takes 2–5 s and holds the write lock
        meanwhile). `due_contact_ids` still answers right, by a scan. `accounts`: the rescore
        rewrites every account score too; their three secondary indexes (`ACCOUNT_INDEXES`)
        are dropped and built again the same way (at 100,000 accounts: 2.4 µs less a contact
        of a rescore with accounts on, 0.57 s to build them; `top_accounts` and the accounts'
        due times still answer right meanwhile, by a scan). If this process dies before the
        end, a later `open` builds them again (see `_restore_due_index`)."""
        self._take_lease(accounts)
        try:
            yield
        except BaseException:
            # the rescore's own error is the one to see; a failed rebuild is left to `open`
            with contextlib.suppress(sqlite3.Error):
                self._build_due_index()
            raise
        self._build_due_index()
