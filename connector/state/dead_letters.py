"""Dead letters: failures kept for an admin (one unresolved row per crm, kind and contact).

An unresolved dead letter is open, or dismissed by an admin (`dismissed_at`; input dead
letters only): the same record read again with the same payload (`payload_hash`) leaves a
dismissed one as it is, uncounted; a different payload reopens it."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

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

# what `dismiss_dead_letters` did with each id asked for
Dismissal = Literal["dismissed", "already dismissed", "resolved", "not input", "unknown"]


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
    dismissed_at: datetime | None


# A repeat of an unresolved dead letter bumps `attempts` and keeps the newest payload and
# reason, and reopens a dismissed one, unless it is dismissed and its payload is the same:
# then the update is skipped (and RETURNING gives no row).
_ADD_DEAD_LETTER = """
INSERT INTO dead_letters (crm, kind, contact_id, payload, reason, attempts, first_seen_at,
  last_tried_at, payload_hash)
VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?6, ?7)
ON CONFLICT (crm, kind, contact_id) WHERE resolved_at IS NULL DO UPDATE SET
  attempts = attempts + 1, payload = excluded.payload, reason = excluded.reason,
  last_tried_at = excluded.last_tried_at, payload_hash = excluded.payload_hash,
  dismissed_at = NULL
WHERE dismissed_at IS NULL OR payload_hash IS NOT excluded.payload_hash
RETURNING id
"""
_UNRESOLVED_DEAD_LETTERS = """
SELECT id, crm, kind, contact_id, payload, reason, attempts, first_seen_at, last_tried_at,
  resolved_at, dismissed_at
FROM dead_letters WHERE crm = ?1 AND resolved_at IS NULL AND (?2 IS NULL OR kind = ?2)
  AND (?3 OR dismissed_at IS NULL)
ORDER BY id
"""


def payload_hash(stored: str) -> str:
    """The SHA-256 of a stored payload (its JSON text) in canonical form: keys sorted, no
    spaces, so that a CRM sending the same record with its keys in another order is the
    same payload."""
    canonical = json.dumps(
        decode_json(stored), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def _dead_letter_row(
    crm: str, kind: str, record_id: str | None, payload: Any, reason: str, at: datetime
) -> tuple[Any, ...]:
    """`_ADD_DEAD_LETTER`'s parameters: the payload and reason with secrets masked, kept
    whatever their text (lone surrogates and controls cleaned), the payload's hash last."""
    row = clean_row(
        (crm, kind, record_id or "", encode_json(redact(payload)), redact_text(reason),
         encode_dt(at))
    )  # fmt: skip
    return (*row, payload_hash(row[3]))


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
        dismissed_at=decode_opt_dt(row[10]),
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
    ) -> int | None:
        """Record a failure; a repeat for the same unresolved (crm, kind, contact) bumps
        `attempts`, keeps the newest payload and reason, and reopens a dismissed one. Secrets
        in payload/reason are masked. Returns the dead letter's id; None when it is a
        dismissed one read again with the same payload (left as it is: no new failure, not
        to be counted)."""
        with self.transaction():
            return self._upsert_dead_letter(
                _dead_letter_row(crm, kind, contact_id, payload, reason, at)
            )

    def _upsert_dead_letter(self, row: tuple[Any, ...]) -> int | None:
        """`add_dead_letter` of a row `_dead_letter_row` built (inside a transaction)."""
        rows = self._conn.execute(_ADD_DEAD_LETTER, row).fetchall()  # drain RETURNING
        return int(rows[0][0]) if rows else None

    @_db_errors
    def add_input_dead_letter(
        self, crm: str, record_id: str, payload: Any, reason: str, at: datetime
    ) -> bool:
        """`add_dead_letter` for a record the CRM sent that could not be read; returns whether
        it is news: a record not dead-lettered yet (or resolved since), or one whose payload
        changed (a dismissed one reopens). The same record read again the same, which the
        events' re-read margin does at every sync for days, is none: an open one counts its
        attempt, a dismissed one is left as it is, and neither is counted again as bad input
        (a run's `bad_records`, the metric, `LEADSCORE_FAIL_ON_DEAD_LETTERS`)."""
        row = _dead_letter_row(crm, "input", record_id, payload, reason, at)
        with self.transaction():
            before = self._conn.execute(
                "SELECT payload_hash FROM dead_letters WHERE crm = ? AND kind = 'input' AND "
                "contact_id = ? AND resolved_at IS NULL",
                (crm, row[2]),
            ).fetchone()
            self._upsert_dead_letter(row)
        return before is None or before[0] != row[-1]

    @_db_errors
    def open_dead_letters(
        self, crm: str, kind: str | None = None, *, with_dismissed: bool = False
    ) -> list[DeadLetter]:
        """Unresolved dead letters, oldest first: the open ones, and `with_dismissed` the
        dismissed ones too."""
        rows = self._conn.execute(_UNRESOLVED_DEAD_LETTERS, (crm, kind, with_dismissed))
        return [_dead_letter(r) for r in rows.fetchall()]

    @_db_errors
    def dismiss_dead_letters(
        self, crm: str, ids: Iterable[int], at: datetime
    ) -> dict[int, Dismissal]:
        """Dismiss the open input dead letters `ids` of `crm` (known and accepted: no longer
        open, counted or failing a run while their record reads the same). Returns what
        became of each id: a write dead letter is not dismissed (a retry or the next write
        settles it), nor a resolved one; an id of another CRM is unknown."""
        wanted = list(dict.fromkeys(ids))
        with self.transaction():
            found = {
                r[0]: r
                for r in self._conn.execute(
                    "SELECT id, kind, resolved_at, dismissed_at, payload, payload_hash "
                    "FROM dead_letters WHERE crm = ? AND id IN (SELECT value FROM json_each(?))",
                    (crm, json.dumps(wanted)),
                ).fetchall()
            }
            out: dict[int, Dismissal] = {}
            for i in wanted:
                row = found.get(i)
                if row is None:
                    out[i] = "unknown"
                elif row[1] != "input":
                    out[i] = "not input"
                elif row[2] is not None:
                    out[i] = "resolved"
                elif row[3] is not None:
                    out[i] = "already dismissed"
                else:  # a row from before migration 014 gets its payload's hash now
                    self._conn.execute(
                        "UPDATE dead_letters SET dismissed_at = ?, payload_hash = ? WHERE id = ?",
                        (encode_dt(at), row[5] or payload_hash(row[4]), i),
                    )
                    out[i] = "dismissed"
        return out

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
        """Open dead letters (unresolved, not dismissed)."""
        row = self._conn.execute(
            "SELECT count(*) FROM dead_letters WHERE crm = ? AND resolved_at IS NULL "
            "AND dismissed_at IS NULL",
            (crm,),
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
