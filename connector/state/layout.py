"""Where the events table's rows lie in the file, and rewriting it in contact order
(`leadscore optimize`): a mixin `StateStore` inherits.

Events are stored in the order they arrive. A backfill pulls them contact by contact, so each
contact's events sit together; every later sync appends the day's events of many contacts, so
after months one contact's events are spread over as many pages as it has events. A full
rescore reads every contact's events in contact order through the (crm, contact_id,
occurred_at) index: on a spread table that is one page read per event instead of one per few
contacts (measured at 200,000 contacts and 4M events, one process: the contacts-only rescore
28.1 s instead of 17.7 s, the bare read 9.5 s instead of 3.7 s; 1M contacts, two processes:
77.5 s instead of 41.2 s; `bench/events_layout.py`).

`events_layout` estimates the spread from a sample of contacts; `recluster_events` rewrites the
table in (crm, contact_id, occurred_at, rowid) order, so each contact's events are adjacent
again. Ties in time keep their order: they are read `ORDER BY occurred_at, rowid`, and the
new rowids follow the old ones within a contact.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from connector.errors import ConnectorError, StateError
from connector.state.base import CONTACTS_VIEW, UPSERT_JOB, StoreBase, _db_errors, _now
from connector.state.codec import decode_dt, decode_mapping, encode_dt, encode_json
from connector.state.leases import process_record, recorded_alive

LAYOUT_SAMPLE = 200  # contacts sampled by `events_layout`: a few ms, even at 20M events
LAYOUT_ROWS = 1000  # events read of each sampled contact, at most
_GOLDEN = 0.6180339887498949  # the sample's rowids: k * this, modulo 1, times the largest
SPREAD_HINT = 0.5  # `status` suggests `leadscore optimize` from this spread up ...
SPREAD_HINT_EVENTS = 100_000  # ... on a table of at least this many events
# two neighbouring events are "stored apart" when more rows than this lie between them: more
# than a few pages (an event row is ~150-250 bytes, ~20 a page of 4 KiB)
NEAR_ROWS = 64
# the `jobs` row naming the process rewriting the events (committed before its transaction,
# deleted after): a sync that finds the DB locked meanwhile says who holds it
OPTIMIZE_JOB = "optimize"


class NotEnoughDisk(ConnectorError):
    """`recluster_events` refused, or stopped by a full disk: too little room for the copy
    (rolled back: nothing changed)."""

    exit_code = 1


@dataclass(frozen=True, slots=True)
class EventsLayout:
    """How spread the events of a contact are in the file: `spread` is the share of
    neighbouring events (by contact, then time) stored apart (more than `NEAR_ROWS` rows
    between them), the mean over the sampled contacts with two events or more (0: each
    contact's events stored together; ~1: every event on a page of its own). `pairs` and
    `apart`: the sampled contacts' neighbouring events, and of those the ones apart."""

    events: int  # rows in the table (every CRM's; or the count the caller passed)
    contacts_sampled: int
    pairs: int  # neighbouring events of the sampled contacts
    apart: int  # of those, stored apart
    spread: float

    @property
    def worth_optimizing(self) -> bool:
        return self.spread >= SPREAD_HINT and self.events >= SPREAD_HINT_EVENTS

    @property
    def min_events(self) -> int:
        """Optimizing is worth it from this many events (`SPREAD_HINT_EVENTS`) ..."""
        return SPREAD_HINT_EVENTS

    @property
    def min_spread(self) -> float:
        """... with this share of neighbouring events stored apart (`SPREAD_HINT`)."""
        return SPREAD_HINT

    @property
    def reason(self) -> str:
        """Why optimizing is, or is not, worth it: one line for `optimize --check`."""
        share, bar = _share(self.spread, SPREAD_HINT), _share(SPREAD_HINT, SPREAD_HINT)
        if self.events < SPREAD_HINT_EVENTS:
            return (
                f"{self.events:,} events stored: under {SPREAD_HINT_EVENTS:,}, a full rescore "
                "reads them fast whatever their order"
            )
        if self.spread < SPREAD_HINT:
            return (
                f"{share} stored apart: under {bar}, each contact's events mostly lie together "
                "already"
            )
        return (
            f"{share} stored apart, on {self.events:,} events: a full rescore reads a page for "
            "each event stored apart"
        )


def _share(x: float, bar: float) -> str:
    """`38%`; one decimal where a whole percent would read as the bar itself (`49.8%`)."""
    whole = f"{x:.0%}"
    return f"{x:.1%}" if x != bar and whole == f"{bar:.0%}" else whole


@dataclass(frozen=True, slots=True)
class Reclustered:
    events: int
    before: EventsLayout
    after: EventsLayout


class EventsLayoutMixin(StoreBase):
    @_db_errors
    def events_layout(self, sample: int = LAYOUT_SAMPLE, events: int | None = None) -> EventsLayout:
        """Estimated from up to `sample` contacts: those of the rows at `sample` rowids spread
        by the golden ratio over the table (the same sample each time for the same file, and
        no stride for a sync's size to fall in step with). Each contact weighs the same (a
        contact with a million events does not outvote the rest), and at most its first
        `LAYOUT_ROWS` events are read. `events`: the count to show and to weigh the hint by,
        when the caller has it (counting 20M rows takes a second; `status` passes its CRM's)."""
        ex = self._conn.execute
        if events is None:
            events = int(ex("SELECT count(*) FROM events").fetchone()[0])
        top = ex("SELECT max(rowid) FROM events").fetchone()[0]
        keys: dict[tuple[str, str], None] = {}
        if top:
            for k in range(sample):
                at = 1 + int((k * _GOLDEN) % 1.0 * top)
                row = ex(
                    "SELECT crm, contact_id FROM events WHERE rowid >= ? ORDER BY rowid LIMIT 1",
                    (at,),
                ).fetchone()
                if row is not None:
                    keys[(row[0], row[1])] = None
        pairs = apart = 0
        shares: list[float] = []
        for crm, contact_id in keys:
            ids = [
                r[0]
                for r in ex(
                    "SELECT rowid FROM events WHERE crm = ? AND contact_id = ? "
                    "ORDER BY occurred_at, rowid LIMIT ?",
                    (crm, contact_id, LAYOUT_ROWS),
                )
            ]
            if len(ids) < 2:
                continue
            far = sum(1 for a, b in pairwise(ids) if abs(b - a) > NEAR_ROWS)
            pairs += len(ids) - 1
            apart += far
            shares.append(far / (len(ids) - 1))
        spread = sum(shares) / len(shares) if shares else 0.0
        return EventsLayout(events, len(keys), pairs, apart, round(spread, 3))

    @_db_errors
    def recluster_events(self) -> Reclustered:
        """Rewrite the events table in contact order (see the module's doc), in one
        transaction: a copy, then the old table dropped and the copy renamed, with the same
        columns, indexes and text as before. Other processes wait meanwhile (or give up after
        their busy timeout). Needs free disk for the copy and its WAL: refused with less free
        space than twice the DB file's size, or when a disk fills meanwhile (`NotEnoughDisk`,
        rolled back). Ctrl-C aborts the copy (`KeyboardInterrupt`, rolled back). The old
        table's pages stay in the file as free pages, which the DB reuses as it grows."""
        before = self.events_layout()
        path = Path(self.path)
        if path.exists():
            size = path.stat().st_size
            free = shutil.disk_usage(path.parent).free
            if free < 2 * size:
                raise NotEnoughDisk(
                    f"state DB {self.path}: optimize needs {2 * size / 1e9:.1f} GB free on its "
                    f"disk (twice the DB file), {free / 1e9:.1f} GB free; nothing changed"
                )
        ex = self._conn.execute
        columns = tuple((r[1], r[2], r[3]) for r in ex("PRAGMA table_info(events)"))
        if columns != _COLUMNS:  # a later migration changed the table: this must follow it
            raise StateError(f"events table: unexpected columns {columns}; nothing changed")
        self._mark_optimizing(True)
        try:
            moved = self._rewrite_events()
        finally:
            with contextlib.suppress(sqlite3.Error):  # a marker left says "not alive" anyway
                self._mark_optimizing(False)
        ex("PRAGMA wal_checkpoint(TRUNCATE)")
        return Reclustered(moved, before, self.events_layout(events=moved))  # every row moved

    def _rewrite_events(self) -> int:
        """The copy of `recluster_events`, in one transaction; the rows moved."""
        ex = self._conn.execute
        # the indexes' sorts spill to temporary files, not memory (20M events: ~5 GB). A
        # change of temp_store drops the connection's TEMP objects: the view comes back after
        ex("PRAGMA temp_store = FILE")
        # Ctrl-C stops the copy within a moment (Python sees it only between statements, and
        # one statement copies every event): SQLite calls this often, and a KeyboardInterrupt
        # raised in it aborts the statement
        self._conn.set_progress_handler(_keep_going, _PROGRESS_STEPS)
        try:
            with self.transaction():
                ex("DROP TABLE IF EXISTS events_reclustered")
                ex(_CREATE_RECLUSTERED)
                # the (crm, contact_id, occurred_at) index holds the rowid last: no sort
                moved = ex(_COPY_RECLUSTERED).rowcount
                ex("DROP TABLE events")
                ex("ALTER TABLE events_reclustered RENAME TO events")
                ex(_CREATE_EVENTS_KEY)
                ex(_CREATE_EVENTS_CONTACT_TIME)
        except sqlite3.OperationalError as exc:  # rolled back: nothing changed
            if str(exc) == "interrupted":  # by Ctrl-C, in `_keep_going`
                raise KeyboardInterrupt from exc
            if getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL":
                raise NotEnoughDisk(
                    f"state DB {self.path}: the disk filled during optimize (its copy and WAL "
                    "go beside the DB; the index sorts to SQLite's temporary directory: "
                    "SQLITE_TMPDIR, else /var/tmp or /tmp); nothing changed"
                ) from exc
            raise
        finally:
            self._conn.set_progress_handler(None, 0)
            ex("PRAGMA temp_store = MEMORY")  # as `configure_connection` sets it
            ex(CONTACTS_VIEW)
        return int(moved)

    def _mark_optimizing(self, on: bool) -> None:
        with self.transaction():
            if on:
                owner = process_record()
                self._conn.execute(
                    UPSERT_JOB, (OPTIMIZE_JOB, encode_json(owner), encode_dt(_now()))
                )
            else:
                self._conn.execute("DELETE FROM jobs WHERE name = ?", (OPTIMIZE_JOB,))

    def _lock_holder(self) -> str | None:
        """The `leadscore optimize` rewriting this DB's events, for the error of a process
        that found the DB locked: the rewrite holds the write lock for minutes (153 s at 20M
        events), longer than any busy timeout. None when there is none (or it died here)."""
        with contextlib.suppress(sqlite3.Error, ValueError):
            row = self._conn.execute(
                "SELECT state, updated_at FROM jobs WHERE name = ?", (OPTIMIZE_JOB,)
            ).fetchone()
            if row is None:
                return None
            owner = decode_mapping(row[0])
            pid, host = owner.get("pid"), owner.get("host")
            if recorded_alive(owner) is False:
                return None
            since = decode_dt(row[1]).strftime("%Y-%m-%d %H:%M:%S UTC")
            return (
                f"`leadscore optimize` (pid {pid} on {host}) is rewriting its events, "
                f"since {since}; run this again once it ends"
            )
        return None


_PROGRESS_STEPS = 100_000  # SQLite VM steps between calls of `_keep_going` (~ms)


def _keep_going() -> int:
    """SQLite's progress handler during the rewrite: 0 goes on. A pending Ctrl-C is raised
    as soon as Python runs this, which makes SQLite abort the statement ("interrupted")."""
    return 0


# The events table as migration 001 creates it (sqlite-utils' text, which the rename keeps:
# `sqlite_master` reads the same before and after; tests/test_optimize.py checks it)
_COLUMNS = (
    ("crm", "TEXT", 1),
    ("source", "TEXT", 1),
    ("source_id", "TEXT", 1),
    ("contact_id", "TEXT", 1),
    ("type", "TEXT", 1),
    ("occurred_at", "TEXT", 1),
    ("attributes", "TEXT", 0),
)
_CREATE_RECLUSTERED = """CREATE TABLE events_reclustered (
   "crm" TEXT NOT NULL,
   "source" TEXT NOT NULL,
   "source_id" TEXT NOT NULL,
   "contact_id" TEXT NOT NULL,
   "type" TEXT NOT NULL,
   "occurred_at" TEXT NOT NULL,
   "attributes" TEXT
)"""
_COPY_RECLUSTERED = (
    "INSERT INTO events_reclustered (crm, source, source_id, contact_id, type, occurred_at, "
    "attributes) SELECT crm, source, source_id, contact_id, type, occurred_at, attributes "
    "FROM events ORDER BY crm, contact_id, occurred_at, rowid"
)
_CREATE_EVENTS_KEY = (
    'CREATE UNIQUE INDEX "events_key"\n    ON "events" ("crm", "source", "source_id")'
)
_CREATE_EVENTS_CONTACT_TIME = (
    'CREATE INDEX "events_crm_contact_time"\n    ON "events" ("crm", "contact_id", "occurred_at")'
)
