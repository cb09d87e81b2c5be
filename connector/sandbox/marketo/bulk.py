"""Bulk export: ``/bulk/v1/{leads|activities}/export/create.json``, ``/{exportId}/enqueue``,
``status``, ``cancel`` and ``file`` (CSV, byte ranges), and the export list; jobs queue and
process on the instance clock."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from connector.sandbox.base import DAY_MS as _DAY_MS
from connector.sandbox.base import JsonDict, Request, Response, iso_s, parse_time_ms
from connector.sandbox.marketo.api import MarketoApi, _BadRequest, _split

MAX_EXPORT_DAYS = 31


MAX_PROCESSING = 2


MAX_QUEUED = 10


@dataclass
class ExportJob:
    id: str
    kind: str  # leads | activities
    fields: list[str]
    filter: JsonDict
    window: tuple[int, int]
    window_field: str  # createdAt | updatedAt
    type_ids: frozenset[int] | None = None
    status: str = "Created"
    created_ms: int = 0
    queued_ms: int | None = None
    started_ms: int | None = None
    finished_ms: int | None = None
    file: bytes | None = None
    records: int = 0
    fail: bool = False
    error: str | None = None

    def to_json(self) -> JsonDict:
        out: JsonDict = {
            "exportId": self.id,
            "format": "CSV",
            "status": self.status,
            "createdAt": iso_s(self.created_ms),
        }
        if self.queued_ms is not None:
            out["queuedAt"] = iso_s(self.queued_ms)
        if self.started_ms is not None:
            out["startedAt"] = iso_s(self.started_ms)
        if self.finished_ms is not None:
            out["finishedAt"] = iso_s(self.finished_ms)
        if self.status == "Completed" and self.file is not None:
            out["numberOfRecords"] = self.records
            out["fileSize"] = len(self.file)
            out["fileChecksum"] = "sha256:" + hashlib.sha256(self.file).hexdigest()
        if self.error:
            out["errorMsg"] = self.error
        return out


class BulkAPI(MarketoApi):
    """The bulk export endpoints over the instance's export jobs."""

    def _tick_exports(self) -> None:
        now = self.instance.now_ms()
        jobs = self.instance.exports.values()
        for job in jobs:
            if (
                job.status == "Processing"
                and job.started_ms is not None
                and now >= job.started_ms + int(self.export_seconds * 1000)
            ):
                job.finished_ms = now
                if job.fail:
                    job.status, job.error = "Failed", "Export failed (injected)"
                else:
                    job.file, job.records = self._export_file_bytes(job)
                    job.status = "Completed"
        processing = sum(1 for j in jobs if j.status == "Processing")
        for job in sorted(
            (j for j in jobs if j.status == "Queued"), key=lambda j: j.queued_ms or 0
        ):
            if processing >= MAX_PROCESSING:
                break
            job.status, job.started_ms = "Processing", now
            processing += 1

    def _export_file_bytes(self, job: ExportJob) -> tuple[bytes, int]:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        start, end = job.window
        rows = 0

        def cell(value: Any) -> str:
            if value is None:
                return "null"
            if isinstance(value, bool):
                return "true" if value else "false"
            return str(value)

        if job.kind == "leads":
            writer.writerow(job.fields)
            for rec in self.instance.live_leads():
                stamp = rec.created_ms if job.window_field == "createdAt" else rec.updated_ms
                if start <= _second(stamp) <= end:
                    data = self.instance.lead_json(rec, job.fields)
                    writer.writerow([cell(data.get(f)) for f in job.fields])
                    rows += 1
        else:
            writer.writerow(job.fields)
            for act in self.instance.activities:
                if not start <= _second(act.date_ms) <= end:
                    continue
                if job.type_ids is not None and act.type_id not in job.type_ids:
                    continue
                data = act.to_json()
                data["attributes"] = json.dumps(
                    {n: v for n, v in act.attributes}, separators=(",", ":")
                )
                writer.writerow([cell(data.get(f)) for f in job.fields])
                rows += 1
        # a lone surrogate (a cut-off emoji) cannot be UTF-8: sent as "?", as a Java encoder does
        return out.getvalue().encode("utf-8", "replace"), rows

    _ACTIVITY_EXPORT_FIELDS = (
        "marketoGUID",
        "leadId",
        "activityDate",
        "activityTypeId",
        "campaignId",
        "primaryAttributeValueId",
        "primaryAttributeValue",
        "attributes",
    )

    def _export_create(self, req: Request, m: dict[str, str]) -> Response:
        body = self._json(req)
        kind = m["kind"]
        fmt = body.get("format", "CSV")
        if fmt != "CSV":
            raise _BadRequest("1003", f"Unsupported format '{fmt}' (the sandbox writes CSV)")
        flt = body.get("filter")
        if not isinstance(flt, dict):
            raise _BadRequest("1003", "filter is required")
        window_field = "createdAt" if "createdAt" in flt else "updatedAt"
        if kind == "activities" and window_field != "createdAt":
            raise _BadRequest("1003", "activities export needs a createdAt filter")
        window = flt.get(window_field)
        if not isinstance(window, dict):
            raise _BadRequest("1003", "filter needs createdAt or updatedAt {startAt, endAt}")
        try:
            start = parse_time_ms(window.get("startAt"))
            end = parse_time_ms(window.get("endAt"))
        except ValueError:
            raise _BadRequest("1003", "startAt/endAt must be ISO 8601 datetimes") from None
        if end < start:
            raise _BadRequest("1003", "endAt is before startAt")
        if end - start > MAX_EXPORT_DAYS * _DAY_MS:
            raise _BadRequest("1003", f"Date range exceeds {MAX_EXPORT_DAYS} days")
        type_ids: frozenset[int] | None = None
        if kind == "leads":
            fields = body.get("fields")
            if not isinstance(fields, list) or not fields:
                raise _BadRequest("1003", "fields is required")
            for name in fields:
                if name not in self.instance.fields:
                    raise _BadRequest("1003", f"Invalid field '{name}'")
        else:
            fields = body.get("fields") or list(self._ACTIVITY_EXPORT_FIELDS)
            if any(f not in self._ACTIVITY_EXPORT_FIELDS for f in fields):
                raise _BadRequest("1003", "Invalid activity export field")
            raw_ids = flt.get("activityTypeIds")
            if raw_ids is not None:
                type_ids = frozenset(int(x) for x in raw_ids)
        job = ExportJob(
            id=str(uuid.uuid4()),
            kind=kind,
            fields=[str(f) for f in fields],
            filter=dict(flt),
            window=(start, end),
            window_field=window_field,
            type_ids=type_ids,
            created_ms=self.instance.now_ms(),
        )
        if self.fail_next_export:
            job.fail, self.fail_next_export = True, False
        self.instance.exports[job.id] = job
        return self.envelope([job.to_json()])

    def _job(self, m: dict[str, str]) -> ExportJob:
        job = self.instance.exports.get(m["id"])
        if job is None or job.kind != m["kind"]:
            raise _BadRequest("1003", f"Export id '{m['id']}' not found")
        return job

    def _export_enqueue(self, req: Request, m: dict[str, str]) -> Response:
        self._tick_exports()
        job = self._job(m)
        if job.status != "Created":
            raise _BadRequest("1029", f"Export '{job.id}' is already {job.status}")
        queued = sum(1 for j in self.instance.exports.values() if j.status == "Queued")
        if queued >= MAX_QUEUED:
            raise _BadRequest("1029", f"Too many jobs ({MAX_QUEUED}) in queue")
        job.status, job.queued_ms = "Queued", self.instance.now_ms()
        self._tick_exports()
        return self.envelope([job.to_json()])

    def _export_cancel(self, req: Request, m: dict[str, str]) -> Response:
        self._tick_exports()
        job = self._job(m)
        if job.status in ("Created", "Queued", "Processing"):
            job.status = "Cancelled"
        self._tick_exports()
        return self.envelope([job.to_json()])

    def _export_status(self, req: Request, m: dict[str, str]) -> Response:
        self._tick_exports()
        return self.envelope([self._job(m).to_json()])

    def _export_list(self, req: Request, m: dict[str, str]) -> Response:
        self._tick_exports()
        wanted = set(_split(req.param("status")))
        jobs = [
            j.to_json()
            for j in sorted(self.instance.exports.values(), key=lambda j: j.created_ms)
            if j.kind == m["kind"] and (not wanted or j.status in wanted)
        ]
        return self.envelope(jobs)

    def _export_file(self, req: Request, m: dict[str, str]) -> Response:
        self._tick_exports()
        job = self._job(m)
        if job.status != "Completed" or job.file is None:
            raise _BadRequest("1003", f"Export '{job.id}' is {job.status}, no file yet")
        data = job.file
        rng = req.header("range")
        if not rng:
            return Response(200, data, content_type="text/csv")
        match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", rng)
        total = len(data)
        if match is None or (not match.group(1) and not match.group(2)):
            return Response(416, b"", headers={"Content-Range": f"bytes */{total}"})
        if match.group(1):
            first = int(match.group(1))
            last = int(match.group(2)) if match.group(2) else total - 1
        else:
            first, last = max(0, total - int(match.group(2))), total - 1
        last = min(last, total - 1)
        if first >= total or first > last:
            return Response(416, b"", headers={"Content-Range": f"bytes */{total}"})
        return Response(
            206,
            data[first : last + 1],
            headers={"Content-Range": f"bytes {first}-{last}/{total}"},
            content_type="text/csv",
        )


def _second(ms: int) -> int:
    """A record's time as Marketo holds it, to the second (its API writes and filters
    datetimes without milliseconds): a window's ends take in the whole second they name."""
    return ms - ms % 1000
