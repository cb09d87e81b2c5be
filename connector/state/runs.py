"""Cursors, runs and resumable jobs."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.errors import StateError
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
from connector.state.leases import (
    BULK_LEASE,
    process_alive,
    process_record,
    recorded_alive,
    this_process,
)

RUN_RUNNING = "running"
RUN_OK = "ok"
RUN_PARTIAL = "partial"
RUN_FAILED = "failed"
RUN_STOPPED = "stopped"
# a run whose process ended without finishing it (killed: SIGKILL, out of memory, its
# container stopped): `status` shows it so, and `start_run` records it so for the runs of its
# own host (finished_at stays NULL: when the process died is not known)
RUN_INTERRUPTED = "interrupted"
# shown only, never stored: a run of another host or container (its pid cannot be checked
# from here) that has shown no progress for `SILENT_RUN` (its heartbeat), or, recorded before
# migration 016 (no heartbeat), unfinished after `UNCHECKED_RUN`
RUN_PROBABLY_INTERRUPTED = "probably interrupted"
# as long as a rescore of another host is left its due-index lease
UNCHECKED_RUN = BULK_LEASE
# a running run records its heartbeat (`runs.heartbeat_at`) at the pipeline's safe points
# (`Pipeline.beat`) at most this often: one small UPDATE a minute, not one per page
HEARTBEAT_EVERY = timedelta(minutes=1)
# a run of another host whose heartbeat is this old is shown `probably interrupted`: ten
# beats missed. A safe point comes every few seconds in a sync, backfill or rescore; the
# longest waits between two are a page's or a write batch's CRM calls with their retries
# (5 attempts, 30 s apart at most: ~2 minutes a call), well under ten minutes, so a run at
# work does not look dead, and one killed elsewhere is seen so ten minutes after its last
# progress (not two hours after its start). One wait is not covered: a Marketo bulk export
# queued at Marketo (`marketo_export_poll_seconds` × polls) beats only as its pages come
SILENT_RUN = timedelta(minutes=10)
# the `jobs` row of a `leadscore run` worker using this DB (renewed after each of its runs)
RUN_WORKER_JOB = "run-worker"


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
    # the process that runs it (NULL in runs from before migration 012): its pid, its host
    # name and its `process_start` (None where the system does not tell)
    pid: int | None = None
    host: str | None = None
    process_start: int | None = None
    # when it last made progress (its start, then at most every `HEARTBEAT_EVERY`; NULL in
    # runs from before migration 016)
    heartbeat_at: datetime | None = None

    @property
    def duration(self) -> timedelta | None:
        return None if self.finished_at is None else self.finished_at - self.started_at


_SELECT_RUN = """
SELECT id, crm, kind, started_at, finished_at, status, counts, api_calls, errors, message,
    pid, host, process_start, heartbeat_at
FROM runs WHERE id = ?
"""
_LAST_RUNS = """
SELECT id, crm, kind, started_at, finished_at, status, counts, api_calls, errors, message,
    pid, host, process_start, heartbeat_at
FROM runs WHERE crm = ? ORDER BY id DESC LIMIT ?
"""
_LAST_RUN_WITH_STATUS = """
SELECT id, crm, kind, started_at, finished_at, status, counts, api_calls, errors, message,
    pid, host, process_start, heartbeat_at
FROM runs WHERE crm = ? AND kind = ? AND status = ? ORDER BY id DESC LIMIT 1
"""
# the unfinished runs of a host (the status a literal, RUN_RUNNING: so SQLite uses the partial
# index `runs_running` of migration 012)
_RUNNING_ON_HOST = (
    "SELECT id, pid, process_start FROM runs WHERE status = 'running' AND host = ? "
    "AND pid IS NOT NULL"
)
# those found gone: the message as `seen_run` says it, and the run that found them
_MARK_INTERRUPTED = (
    "UPDATE runs SET status = ?, message = 'the process (pid ' || pid || ' on ' || host || "
    "') ' || ? WHERE id IN (SELECT value FROM json_each(?))"
)


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
        pid=row[10],
        host=row[11],
        process_start=row[12],
        heartbeat_at=decode_opt_dt(row[13]),
    )


_ENDED = "ended without finishing it"


def _process(pid: object, host: object) -> str:
    return f"the process (pid {pid} on {host})"


def _at_minute(at: datetime, now: datetime) -> str:
    """`05:12 UTC`, with its date when not `now`'s day; and how long ago (`40 min`, `3h05m`)."""
    at, now = at.astimezone(UTC), now.astimezone(UTC)
    when = at.strftime("%H:%M" if at.date() == now.date() else "%Y-%m-%d %H:%M")
    minutes = max(0, int((now - at).total_seconds() // 60))
    ago = f"{minutes} min" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"
    return f"{when} UTC ({ago})"


def seen_run(run: RunRecord, now: datetime) -> RunRecord:
    """`run` as `leadscore status` shows it. A `running` run that names its process:
    `interrupted` when that process, of this host, is gone; of another host or container
    (where its pid says nothing), still `running` while its heartbeat is younger than
    `SILENT_RUN`, else `probably interrupted` (recorded before migration 016, with no
    heartbeat: unless it started `UNCHECKED_RUN` ago or more). Its message says which
    process and why. Any other run (a finished one, a run from before migration 012, which
    names no process) as it is: a run of a kind is not taken for dead because a later one of
    that kind finished, as two may overlap (a `leadscore sync` beside the worker's, a webhook
    pass inside another pass)."""
    if run.status != RUN_RUNNING or run.pid is None or run.host is None:
        return run
    who = _process(run.pid, run.host)
    alive = process_alive(run.host, run.pid, run.process_start)
    if alive is False:
        return replace(run, status=RUN_INTERRUPTED, message=f"{who} {_ENDED}")
    if alive:
        return replace(run, message=f"{who} is at work")
    elsewhere = f"{who} runs on another host (not checked from here)"
    if run.heartbeat_at is not None:
        if now - run.heartbeat_at >= SILENT_RUN:
            return replace(
                run,
                status=RUN_PROBABLY_INTERRUPTED,
                message=f"{elsewhere} and has shown no progress since "
                f"{_at_minute(run.heartbeat_at, now)}",
            )
        return replace(run, message=elsewhere)
    if now - run.started_at >= UNCHECKED_RUN:
        hours = UNCHECKED_RUN.total_seconds() / 3600
        return replace(
            run,
            status=RUN_PROBABLY_INTERRUPTED,
            message=f"{elsewhere} and has not finished it in {hours:g} hours",
        )
    return replace(run, message=elsewhere)


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
        """Record a run of this process (its pid, host name and start: see `seen_run`; its
        heartbeat: its start, `beat_runs` then). In the
        same transaction, the runs of this host left `running` by a process that is gone
        (killed) become `interrupted`, whatever their CRM, with a message naming the process
        and this run; their finished_at stays NULL (when the process died is not known)."""
        pid, host, start = this_process()
        stamp = encode_dt(at or _now())
        with self.transaction():
            cursor = self._conn.execute(
                "INSERT INTO runs (crm, kind, started_at, status, api_calls, errors, pid, host, "
                "process_start, heartbeat_at) VALUES (?, ?, ?, ?, 0, 0, ?, ?, ?, ?)",
                (crm, kind, stamp, RUN_RUNNING, pid, host, start, stamp),
            )
            run_id = int(cursor.lastrowid or 0)
            gone = [
                other
                for other, other_pid, other_start in self._conn.execute(_RUNNING_ON_HOST, (host,))
                if other != run_id and process_alive(host, other_pid, other_start) is False
            ]
            if gone:
                self._conn.execute(
                    _MARK_INTERRUPTED,
                    (
                        RUN_INTERRUPTED,
                        f"{_ENDED} (found when run {run_id} started)",
                        encode_json(gone),
                    ),
                )
        return run_id

    @_db_errors
    def beat_runs(self, run_ids: Sequence[int], at: datetime) -> None:
        """Record that these runs, still `running`, made progress at `at` (their heartbeat,
        one small UPDATE: `Pipeline.beat` calls it at most every `HEARTBEAT_EVERY`)."""
        with self.transaction():
            self._conn.execute(
                "UPDATE runs SET heartbeat_at = ? WHERE status = 'running' "
                "AND id IN (SELECT value FROM json_each(?))",
                (encode_dt(at), encode_json(list(run_ids))),
            )

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

    # -- the run worker's lease ------------------------------------------------------------

    def hold_run_lease(self, lease: timedelta) -> None:
        """Record (or renew) that this process runs a `leadscore run` worker on this DB. Seen
        from another host, it holds the DB for `lease` after the last renewal."""
        self.set_job(RUN_WORKER_JOB, {**process_record(), "lease_s": lease.total_seconds()})

    @_db_errors
    def claim_run_lease(self, lease: timedelta) -> None:
        """Take the run lease for this process, in one transaction with the check: a
        `StateError` (exit 6) names the other live worker holding it. One `leadscore run`
        worker per state DB: two would sync the same contacts, and the second's lease would
        hide the first from `rescore` and `optimize` once it stopped."""
        with self.transaction():
            holder = self.run_lease_holder()
            if holder is not None and (holder["pid"], holder["host"]) != (
                os.getpid(),
                socket.gethostname(),
            ):
                raise StateError(
                    f"another `leadscore run` worker (pid {holder['pid']} on {holder['host']}) "
                    f"is using {self.path}: one worker per state DB; stop it first"
                )
            self.hold_run_lease(lease)

    @_db_errors
    def release_run_lease(self) -> bool:
        """Remove this process's lease (not another worker's); whether there was one."""
        holder = self.get_job(RUN_WORKER_JOB)
        if holder is None:
            return False
        if holder.get("pid") != os.getpid() or holder.get("host") != socket.gethostname():
            return False
        return self.delete_job(RUN_WORKER_JOB)

    @_db_errors
    def run_lease_holder(self) -> dict[str, Any] | None:
        """The `leadscore run` worker using this DB now, as {pid, host, renewed_at}: a live process
        on this host, or (on another host or container, where its pid says nothing) a lease
        renewed within its term. None when there is none, or it died."""
        row = self._conn.execute(
            "SELECT state, updated_at FROM jobs WHERE name = ?", (RUN_WORKER_JOB,)
        ).fetchone()
        if row is None:
            return None
        holder = decode_mapping(row[0])
        renewed = decode_dt(row[1])
        alive = recorded_alive(holder)
        if alive is None:
            term = holder.get("lease_s")
            seconds = float(term) if isinstance(term, int | float) else BULK_LEASE.total_seconds()
            alive = _now() - renewed < timedelta(seconds=seconds)
        if not alive:
            return None
        return {"pid": holder.get("pid"), "host": holder.get("host"), "renewed_at": renewed}
