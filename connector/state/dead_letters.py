"""Dead letters: failures kept for an admin (one open row per crm, kind and contact)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connector.state.base import StoreBase, _db_errors
from connector.state.codec import (
    decode_dt,
    decode_json,
    decode_opt_dt,
    encode_dt,
    encode_json,
    redact,
    redact_text,
)
from connector.text import clean_row


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


class DeadLettersMixin(StoreBase):
    """Dead letters."""

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
    def resolve_input_dead_letters(self, crm: str, record_ids: Iterable[str], at: datetime) -> int:
        """Resolve the open `input` dead letters of records read cleanly again (a contact, or
        a company under `company_record_id`): the CRM's record was fixed. Returns how many."""
        with self.transaction():
            return resolve_input(self._conn, crm, record_ids, at)


def resolve_input(
    conn: sqlite3.Connection, crm: str, record_ids: Iterable[str], at: datetime
) -> int:
    """`resolve_input_dead_letters` on a connection (for the other mixins, in their
    transaction)."""
    ids = json.dumps(list(dict.fromkeys(record_ids)))
    if ids == "[]":
        return 0
    cur = conn.execute(
        "UPDATE dead_letters SET resolved_at = ? WHERE crm = ? AND kind = 'input' "
        "AND resolved_at IS NULL AND contact_id IN (SELECT value FROM json_each(?))",
        (encode_dt(at), crm, ids),
    )
    return int(cur.rowcount)
