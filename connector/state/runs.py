"""Cursors, runs and resumable jobs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from connector.state.base import UPSERT_JOB, StoreBase, _db_errors, _now
from connector.state.codec import (
    decode_dt,
    decode_mapping,
    decode_opt_dt,
    encode_dt,
    encode_json,
    redact,
    redact_text,
)

RUN_RUNNING = "running"
RUN_OK = "ok"
RUN_PARTIAL = "partial"
RUN_FAILED = "failed"
RUN_STOPPED = "stopped"


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


class RunsMixin(StoreBase):
    """Cursors, runs and jobs."""

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
            self._conn.execute(UPSERT_JOB, (name, encode_json(dict(state)), encode_dt(_now())))

    @_db_errors
    def delete_job(self, name: str) -> bool:
        with self.transaction():
            cursor = self._conn.execute("DELETE FROM jobs WHERE name = ?", (name,))
        return cursor.rowcount > 0
