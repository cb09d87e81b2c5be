"""Contacts and their events: pull upserts, merges, archives, and the streamed reads a
(re)score walks. SQL is always parameterized; lists travel as one JSON parameter through
`json_each`, so the SQL text never depends on the data."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from itertools import groupby, pairwise
from operator import itemgetter
from typing import Any

from connector.errors import StateError
from connector.state.base import (
    DEFAULT_BATCH,
    LAST_ID,
    StoreBase,
    _chunks,
    _db_errors,
    _db_errors_iter,
    _ids_param,
    _now,
)
from connector.state.codec import (
    contact_from_row,
    decode_mapping,
    encode_dt,
    encode_mapping,
    encode_opt_dt,
)
from connector.text import clean_row
from connector.types import Contact, Event, EventRow

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
FROM contacts_with_live WHERE crm = ?1 AND id > ?4 AND id <= ?5 AND (?2 OR live)
ORDER BY id LIMIT ?3
"""
_CONTACTS_IN = """
SELECT id, email, first_name, last_name, job_title, company_name, country, lifecycle_stage,
  lead_status, lead_status_changed_at, recycled_at, mql_at, created_at, updated_at, properties
FROM contacts_with_live WHERE crm = ?1 AND id IN (SELECT value FROM json_each(?3))
  AND (?2 OR live)
ORDER BY id
"""
_COUNT_CONTACTS = "SELECT count(*) FROM contacts WHERE crm = ?"
# the live ones (`live`: see `base.CONTACTS_VIEW`): the `contacts_live` index answers these
_COUNT_LIVE_CONTACTS = "SELECT count(*) FROM contacts_with_live WHERE crm = ? AND live"
_LIVE_ID_AT = (
    "SELECT id FROM contacts_with_live WHERE crm = ? AND live ORDER BY id LIMIT 1 OFFSET ?"
)
_FIND_BY_EMAIL = """
SELECT lower(email), id FROM contacts_with_live
WHERE crm = ? AND lower(email) IN (SELECT value FROM json_each(?)) AND live
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


def _ascii_lower(text: str) -> str:
    """Lower-case exactly as SQLite's lower() does (ASCII letters only)."""
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class ContactsMixin(StoreBase):
    """Contacts, events, merges and archives."""

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
            "SELECT live FROM contacts_with_live WHERE crm = ? AND id = ?",
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
