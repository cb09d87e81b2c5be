"""Current scores and their history, the write backlog, the values last written back and
the writes in flight (sent, outcome not recorded yet)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connector.state.base import (
    DEFAULT_BATCH,
    UPSERT_JOB,
    StoreBase,
    _chunks,
    _db_errors,
    _db_errors_iter,
    _ids_param,
    _now,
)
from connector.state.codec import (
    decode_dt,
    decode_mapping,
    decode_opt_dt,
    decode_reasons,
    encode_dt,
    encode_json,
    score_row,
)
from connector.types import LifecycleDecision, Reason, ScoreResult


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
    priority: str = ""  # "" for a score saved before migration 008

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
            priority=self.priority,
        )


_UPSERT_SCORE = """
INSERT INTO scores (crm, contact_id, score, engagement_points, fit_points, grade, mql,
  mql_reason, current_stage, target_stage, recycled, lifecycle_note, profile_mismatch,
  hand_raiser, model_version, model_fingerprint, scored_at, next_change_at, reasons, priority)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
  CAST(?19 AS TEXT), ?20)
ON CONFLICT (crm, contact_id) DO UPDATE SET
  score = excluded.score, engagement_points = excluded.engagement_points,
  fit_points = excluded.fit_points, grade = excluded.grade, mql = excluded.mql,
  mql_reason = excluded.mql_reason, current_stage = excluded.current_stage,
  target_stage = excluded.target_stage, recycled = excluded.recycled,
  lifecycle_note = excluded.lifecycle_note, profile_mismatch = excluded.profile_mismatch,
  hand_raiser = excluded.hand_raiser, model_version = excluded.model_version,
  model_fingerprint = excluded.model_fingerprint, scored_at = excluded.scored_at,
  next_change_at = excluded.next_change_at, reasons = excluded.reasons,
  priority = excluded.priority
"""
_SELECT_SCORE = """
SELECT crm, contact_id, score, engagement_points, fit_points, grade, mql, mql_reason,
  current_stage, target_stage, recycled, lifecycle_note, profile_mismatch, hand_raiser,
  model_version, model_fingerprint, scored_at, next_change_at, reasons, priority
FROM scores WHERE crm = ? AND contact_id = ?
"""
_SELECT_SCORES_IN = """
SELECT crm, contact_id, score, engagement_points, fit_points, grade, mql, mql_reason,
  current_stage, target_stage, recycled, lifecycle_note, profile_mismatch, hand_raiser,
  model_version, model_fingerprint, scored_at, next_change_at, reasons, priority
FROM scores WHERE crm = ? AND contact_id IN (SELECT value FROM json_each(?))
"""
_SCORES_AFTER = """
SELECT crm, contact_id, score, engagement_points, fit_points, grade, mql, mql_reason,
  current_stage, target_stage, recycled, lifecycle_note, profile_mismatch, hand_raiser,
  model_version, model_fingerprint, scored_at, next_change_at, reasons, priority
FROM scores WHERE crm = ? AND contact_id > ? ORDER BY contact_id LIMIT ?
"""


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
        priority=row[19] or "",
    )


def _in_flight_key(crm: str, contact_id: str, of: str = "write") -> str:
    return f"{of}-in-flight:{crm}:{contact_id}"


# the live contacts holding a written value of one property
_WRITTEN_LIVE_CONTACTS = (
    "SELECT w.contact_id FROM written w JOIN contacts_with_live c ON c.crm = w.crm AND "
    "c.id = w.contact_id WHERE w.crm = ? AND w.property = ? AND c.live"
)


class ScoresMixin(StoreBase):
    """Scores, score history, the write backlog, written values, writes in flight."""

    # -- scores --------------------------------------------------------------------------

    @_db_errors
    def save_scores(self, crm: str, results: Iterable[ScoreResult]) -> int:
        """Upsert the current score of each contact; append a `score_history` row when score,
        grade, MQL flag or model version changed. Returns how many results were saved."""
        rows = [score_row(crm, result) for result in results]
        with self.transaction():  # history rows: migration 003's triggers
            self._upsert_many(_UPSERT_SCORE, rows)  # a lone surrogate in a reason: replaced
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
    def count_due_contacts(self, crm: str, now: datetime) -> int:
        """How many contacts `due_contact_ids` would name: counted in the due index alone (the
        ids list reads every due score row for its id: 37 s at 1M contacts, all due)."""
        row = self._conn.execute(
            "SELECT count(*) FROM scores WHERE crm = ? AND next_change_at <= ?",
            (crm, encode_dt(now)),
        ).fetchone()
        return int(row[0])

    @_db_errors
    def count_pending_writes(self, crm: str) -> int:
        row = self._conn.execute(
            "SELECT count(*) FROM write_backlog WHERE crm = ?", (crm,)
        ).fetchone()
        return int(row[0])

    @_db_errors
    def pending_write_ids(self, crm: str) -> list[str]:
        rows = self._conn.execute(
            "SELECT contact_id FROM write_backlog WHERE crm = ? ORDER BY contact_id", (crm,)
        ).fetchall()
        return [r[0] for r in rows]

    # -- writes in flight: sent, outcome not recorded yet (one `jobs` row per contact) -------
    @_db_errors
    def set_in_flight(
        self, crm: str, writes: Mapping[str, Mapping[str, str]], *, of: str = "write"
    ) -> None:
        """Record writes about to be sent (`{contact id: properties}`), committed before the
        request goes out: if the process dies before their outcome is recorded, the next run
        knows which writes may have reached the CRM and checks instead of sending twice.
        `of`: whose writes ("write": contacts, "company-write": company records)."""
        if not writes:
            return
        when = encode_dt(_now())
        rows = [
            (_in_flight_key(crm, cid, of), encode_json(dict(props)), when)
            for cid, props in writes.items()
        ]
        with self.transaction():
            self._upsert_many(UPSERT_JOB, rows)  # a lone surrogate in a value: replaced

    @_db_errors
    def writes_in_flight(self, crm: str, *, of: str = "write") -> dict[str, dict[str, str]]:
        """`{contact id: properties}` of the writes whose outcome was never recorded."""
        prefix = _in_flight_key(crm, "", of)
        rows = self._conn.execute(
            "SELECT name, state FROM jobs WHERE name >= ? AND name < ? ORDER BY name",
            (prefix, prefix[:-1] + ";"),  # ";" sorts right after ":"
        ).fetchall()
        return {name[len(prefix) :]: decode_mapping(state) for name, state in rows}

    @_db_errors
    def clear_in_flight(self, crm: str, contact_ids: Iterable[str], *, of: str = "write") -> None:
        """The outcome of these writes is recorded (or they are known not to have arrived)."""
        keys = [(_in_flight_key(crm, cid, of),) for cid in contact_ids]
        if not keys:
            return
        with self.transaction():
            self._conn.executemany("DELETE FROM jobs WHERE name = ?", keys)

    @_db_errors
    def forget_written_property(self, crm: str, prop: str) -> int:
        """The CRM lost every value of `prop` (the property was deleted and re-created): forget
        what we last wrote to it and put the live contacts that had it on the write backlog,
        so the next plan writes it again. Returns how many contacts."""
        with self.transaction():
            ids = [r[0] for r in self._conn.execute(_WRITTEN_LIVE_CONTACTS, (crm, prop)).fetchall()]
            self._conn.execute("DELETE FROM written WHERE crm = ? AND property = ?", (crm, prop))
        self.set_write_pending(crm, ids, True)
        return len(ids)
