"""Backfill of large instances through the bulk export API (leads and activities), resumable by
export id through a :class:`JobStore`."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import re
from collections.abc import Callable, Generator, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol

from connector.crm.base import (
    BadRecord,
    ContactPage,
    EventPage,
)
from connector.crm.marketo.activities import ActivitiesMixin
from connector.crm.marketo.calls import MarketoApiError, _iso, log
from connector.errors import (
    ConfigError,
    ConnectorError,
    InputError,
    RetryableError,
)
from connector.types import event_record_id

EXPORT_WINDOW = timedelta(days=30)  # Marketo allows 31; a day of margin for boundaries


class JobStore(Protocol):
    """Where a resumable job keeps its progress (`StateStore` implements it)."""

    def get_job(self, name: str) -> Mapping[str, Any] | None: ...

    def set_job(self, name: str, state: Mapping[str, Any]) -> None: ...

    def delete_job(self, name: str) -> bool: ...


class BulkMixin(ActivitiesMixin):
    """Bulk export backfills."""

    # -- bulk export backfill --------------------------------------------------------------
    def backfill_export(
        self,
        since: datetime,
        until: datetime,
        job_store: JobStore,
        *,
        window_field: str = "updatedAt",
        rows_per_page: int = 1000,
        position: str | None = None,
        on_wait: Callable[[], None] | None = None,
    ) -> Generator[ContactPage, None, None]:
        """Every lead whose `window_field` falls in [since, until), through bulk lead
        exports of <= 30 days each. Resumable: the export id and the rows already handed out
        are kept in `job_store` after each step, so a new adapter with the same store polls
        the same export (no second export) and skips the rows the caller already took.
        Progress for a page is saved when the caller asks for the next one, or is read from
        `position`: the last page the caller committed (a crash between its commit and the
        next page: that page is not handed out again). `on_wait()` is called at each poll of
        an export Marketo has not finished (queued or processing: minutes, or hours behind
        other exports): the backfill records its run's heartbeat there."""
        if window_field not in ("createdAt", "updatedAt"):
            raise ConfigError("window_field must be createdAt or updatedAt")
        fields = ["id", *self._read_fields()]
        for rows, pos in self._export(
            "leads", since, until, job_store, fields, window_field, rows_per_page, position,
            on_wait,
        ):  # fmt: skip
            page = ContactPage(contacts=[], position=pos)
            for row in rows:
                try:
                    contact = self._contact_from(row)
                except InputError as exc:
                    page.bad.append(BadRecord(str(row.get("id", "?")), f"lead: {exc}", row))
                    continue
                page.contacts.append(contact)
                self._remember(contact.id)
            yield page

    def backfill_activities_export(
        self,
        since: datetime,
        until: datetime,
        job_store: JobStore,
        *,
        rows_per_page: int = 1000,
        position: str | None = None,
        on_wait: Callable[[], None] | None = None,
    ) -> Generator[EventPage, None, None]:
        """Activities of the configured types in [since, until) through bulk activity
        exports (resumable like `backfill_export`, `on_wait` as there)."""
        fields = [
            "marketoGUID",
            "leadId",
            "activityDate",
            "activityTypeId",
            "primaryAttributeValueId",
            "primaryAttributeValue",
            "attributes",
        ]
        for rows, pos in self._export(
            "activities", since, until, job_store, fields, "createdAt", rows_per_page, position,
            on_wait,
        ):  # fmt: skip
            page = EventPage(events=[], position=pos, high_water=None)
            for row in rows:
                try:
                    act: dict[str, Any] = dict(row)
                    type_id = row.get("activityTypeId")
                    act["activityTypeId"] = int(type_id) if type_id else None
                    attrs = row.get("attributes")
                    act["attributes"] = json.loads(attrs) if attrs else {}
                    ev = self._event_from(act)
                except (InputError, ValueError) as exc:
                    rid = str(row.get("marketoGUID") or "?")
                    page.bad.append(BadRecord(event_record_id(rid), f"activity: {exc}", row))
                    continue
                if ev is None:
                    continue
                page.events.append(ev)
                if page.high_water is None or ev.occurred_at > page.high_water:
                    page.high_water = ev.occurred_at
            yield page

    def _export(
        self,
        kind: str,
        since: datetime,
        until: datetime,
        store: JobStore,
        fields: list[str],
        window_field: str,
        rows_per_page: int,
        committed: str | None = None,
        on_wait: Callable[[], None] | None = None,
    ) -> Iterator[tuple[list[dict[str, Any]], str]]:
        """The rows of `kind` in [since, until), a page at a time, with the position
        `export:<id>:<rows through>`; `committed`: the last position the caller committed;
        `on_wait()`: called at each poll of an unfinished export."""
        if until <= since:
            raise ConfigError("backfill: until must be after since")
        name = f"marketo:export:{kind}:{window_field}:{_iso(since)}:{_iso(until)}"
        state: dict[str, Any] = dict(store.get_job(name) or {})
        state.setdefault("window", 0)
        state.setdefault("export_id", None)
        state.setdefault("rows_done", 0)
        state.setdefault("failures", 0)
        windows: list[tuple[datetime, datetime]] = []
        cursor = since
        while cursor < until:
            end = min(cursor + EXPORT_WINDOW, until)
            windows.append((cursor, end))
            cursor = end
        base = f"/bulk/v1/{kind}/export"
        while state["window"] < len(windows):
            start, end = windows[state["window"]]
            seconds = _whole_seconds(start, end)
            if seconds is None:  # no whole second in it: Marketo holds no record time there
                state.update(window=state["window"] + 1, export_id=None, rows_done=0)
                store.set_job(name, state)
                continue
            if state["export_id"] is None:
                body: dict[str, Any] = {
                    "format": "CSV",
                    "fields": fields,
                    "filter": {window_field: {"startAt": seconds[0], "endAt": seconds[1]}},
                }
                if kind == "activities":
                    body["filter"]["activityTypeIds"] = sorted(self.activity_types())
                data = self._call("bulk.create", "POST", f"{base}/create.json", json_body=body)
                job = (data.get("result") or [{}])[0]
                state.update(export_id=str(job["exportId"]), rows_done=0, status="Created")
                store.set_job(name, state)
            export_id = str(state["export_id"])
            status = self._await_export(kind, export_id, store, name, state, on_wait)
            if status != "Completed":
                state["failures"] += 1
                if state["failures"] > 2:
                    raise ConnectorError(
                        f"Marketo {kind} export {export_id} ended {status} three times"
                    )
                log.warning("marketo %s export %s %s; creating it again", kind, export_id, status)
                state.update(export_id=None, rows_done=0)
                store.set_job(name, state)
                continue
            rows = self._download(kind, export_id)
            done = int(state["rows_done"])
            mine = f"export:{export_id}:"
            if committed is not None and committed.startswith(mine):
                with contextlib.suppress(ValueError):  # committed beyond what was saved
                    done = max(done, int(committed.removeprefix(mine)))
            for i in range(done, len(rows), max(1, rows_per_page)):
                chunk = rows[i : i + rows_per_page]
                yield chunk, f"export:{export_id}:{i + len(chunk)}"
                state["rows_done"] = i + len(chunk)  # the caller took (and committed) it
                store.set_job(name, state)
            state.update(window=state["window"] + 1, export_id=None, rows_done=0, failures=0)
            store.set_job(name, state)
        store.delete_job(name)

    def _await_export(
        self,
        kind: str,
        export_id: str,
        store: JobStore,
        name: str,
        state: dict[str, Any],
        on_wait: Callable[[], None] | None = None,
    ) -> str:
        base = f"/bulk/v1/{kind}/export/{export_id}"
        for _ in range(max(1, self.export_max_polls)):
            try:
                data = self._call("bulk.status", "GET", f"{base}/status.json")
            except MarketoApiError as exc:
                if exc.code in ("1003", "610"):
                    return "Missing"  # expired or unknown: create it again
                raise
            status = str((data.get("result") or [{}])[0].get("status", ""))
            if status != state.get("status"):
                state["status"] = status
                store.set_job(name, state)
            if status == "Created":
                self._call("bulk.enqueue", "POST", f"{base}/enqueue.json")
                state["status"] = "Queued"
                store.set_job(name, state)
                continue
            if status in ("Completed", "Failed", "Cancelled"):
                return status
            if on_wait is not None:  # a run waiting in Marketo's queue is at work
                on_wait()
            self._sleep(self.export_poll_s)  # Queued / Processing: wait for Marketo
        raise ConnectorError(
            f"Marketo {kind} export {export_id} not finished after {self.export_max_polls} "
            "polls; run the backfill again to keep waiting for the same export"
        )

    def _download(self, kind: str, export_id: str) -> list[dict[str, Any]]:
        path = f"/bulk/v1/{kind}/export/{export_id}/file.json"
        status_data = self._call(
            "bulk.status", "GET", f"/bulk/v1/{kind}/export/{export_id}/status.json"
        )
        info = (status_data.get("result") or [{}])[0]
        parts: list[bytes] = []
        total: int | None = None
        got = 0
        for _ in range(100_000):
            rng = f"bytes={got}-{got + self.export_chunk_bytes - 1}"
            r = self._call("bulk.file", "GET", path, headers={"Range": rng}, raw=True)
            parts.append(r.content)
            got += len(r.content)
            if r.status_code == 200:
                total = got
                break
            match = re.search(r"/(\d+)\s*$", r.headers.get("Content-Range", ""))
            total = int(match.group(1)) if match else got
            if got >= total or not r.content:
                break
        data = b"".join(parts)
        size = info.get("fileSize")
        if isinstance(size, int) and size != len(data):
            raise RetryableError(f"Marketo export {export_id}: got {len(data)} of {size} bytes")
        checksum = info.get("fileChecksum")
        if (
            isinstance(checksum, str)
            and checksum.startswith("sha256:")
            and hashlib.sha256(data).hexdigest() != checksum.removeprefix("sha256:")
        ):
            raise RetryableError(f"Marketo export {export_id}: checksum mismatch")
        # bytes that are not UTF-8 (a cut-off character) become U+FFFD, not a failed export
        reader = csv.DictReader(io.StringIO(data.decode("utf-8", "replace")))
        return [
            {k: (None if v == "null" else v) for k, v in row.items() if k is not None}
            for row in reader
        ]


def _whole_seconds(start: datetime, end: datetime) -> tuple[str, str] | None:
    """The window [start, end) as Marketo's inclusive `startAt`/`endAt`, whole seconds (its
    record times have no milliseconds): the first second at or after `start`, the last
    before `end`. Consecutive windows neither overlap nor leave a gap; None when no whole
    second lies in the window."""
    first = math.ceil(start.timestamp())
    last = math.ceil(end.timestamp()) - 1
    if last < first:
        return None
    at = partial(datetime.fromtimestamp, tz=UTC)
    return _iso(at(first)), _iso(at(last))
