"""Named scores (a model's `scores:` list, issue 23): one row per contact and score name,
beside the lifecycle score kept in `scores` (migration 010). What was written of them to the
CRM is in `written` like every other property (diff-only)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from connector.state.base import StoreBase, _db_errors
from connector.state.codec import (
    decode_dt,
    decode_reasons,
    encode_json,
    reasons_json,
    scored_at_text,
)
from connector.types import Reason, ScoreResult


@dataclass(frozen=True, slots=True)
class StoredNamedScore:
    """The current value of one named score of one contact."""

    contact_id: str
    score_name: str
    score: float
    engagement_points: float
    fit_points: float
    grade: str
    priority: str
    qualified: bool
    reasons: tuple[Reason, ...]
    model_version: str
    model_fingerprint: str
    scored_at: datetime


_UPSERT = (
    "INSERT INTO named_scores (crm, contact_id, score_name, score, engagement_points, "
    "fit_points, grade, priority, qualified, reasons, model_version, model_fingerprint, "
    "scored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS TEXT), ?, ?, ?) "
    "ON CONFLICT (crm, contact_id, score_name) DO UPDATE SET score = excluded.score, "
    "engagement_points = excluded.engagement_points, fit_points = excluded.fit_points, "
    "grade = excluded.grade, priority = excluded.priority, qualified = excluded.qualified, "
    "reasons = excluded.reasons, model_version = excluded.model_version, "
    "model_fingerprint = excluded.model_fingerprint, scored_at = excluded.scored_at"
)
_SELECT_OF = (
    "SELECT contact_id, score_name, score, engagement_points, fit_points, grade, priority, "
    "qualified, reasons, model_version, model_fingerprint, scored_at FROM named_scores "
    "WHERE crm = ? AND contact_id = ? ORDER BY score_name"
)
_SELECT_IN = (
    "SELECT contact_id, score_name, score, engagement_points, fit_points, grade, priority, "
    "qualified, reasons, model_version, model_fingerprint, scored_at FROM named_scores "
    "WHERE crm = ? AND score_name = ? AND contact_id IN (SELECT value FROM json_each(?))"
)
_SELECT_ALL = (
    "SELECT contact_id, score_name, score, engagement_points, fit_points, grade, priority, "
    "qualified, reasons, model_version, model_fingerprint, scored_at FROM named_scores "
    "WHERE crm = ? AND score_name = ? ORDER BY contact_id"
)


def _row(row: tuple[object, ...]) -> StoredNamedScore:
    return StoredNamedScore(
        contact_id=str(row[0]),
        score_name=str(row[1]),
        score=float(row[2]),  # type: ignore[arg-type]
        engagement_points=float(row[3]),  # type: ignore[arg-type]
        fit_points=float(row[4]),  # type: ignore[arg-type]
        grade=str(row[5]),
        priority=str(row[6]),
        qualified=bool(row[7]),
        reasons=decode_reasons(str(row[8])),
        model_version=str(row[9]),
        model_fingerprint=str(row[10]),
        scored_at=decode_dt(str(row[11])),
    )


class NamedScoresMixin(StoreBase):
    @_db_errors
    def save_named_scores(self, crm: str, results: Iterable[tuple[str, ScoreResult, bool]]) -> int:
        """Upsert `(score name, result, qualified)` of contacts; returns how many."""
        # the reasons as UTF-8 bytes, bound as TEXT (as `save_scores`: no decoding to str)
        rows = [
            (
                crm,
                r.contact_id,
                name,
                r.score,
                r.engagement_points,
                r.fit_points,
                r.grade,
                r.priority,
                int(qualified),
                reasons_json(r.reasons),
                r.model_version,
                r.model_fingerprint,
                scored_at_text(r.scored_at),
            )
            for name, r, qualified in results
        ]
        if rows:
            with self.transaction():
                self._conn.executemany(_UPSERT, rows)
        return len(rows)

    @_db_errors
    def named_scores_of(self, crm: str, contact_id: str) -> list[StoredNamedScore]:
        """Every named score of one contact, by score name."""
        return [_row(r) for r in self._conn.execute(_SELECT_OF, (crm, contact_id)).fetchall()]

    @_db_errors
    def named_scores_many(
        self, crm: str, score_name: str, ids: Iterable[str]
    ) -> dict[str, StoredNamedScore]:
        """The stored `score_name` scores of those contacts that have one."""
        rows = self._conn.execute(_SELECT_IN, (crm, score_name, encode_json(list(ids))))
        return {str(r[0]): _row(r) for r in rows.fetchall()}

    @_db_errors
    def iter_named_scores(self, crm: str, score_name: str) -> Iterable[StoredNamedScore]:
        """Every stored `score_name` score, by contact id."""
        return [_row(r) for r in self._conn.execute(_SELECT_ALL, (crm, score_name)).fetchall()]
