"""A loopback HTTP server that behaves like Marketo Engage's REST and bulk APIs.

For tests, demos and benchmarks. Start it, authenticate with the client credentials it prints,
and read/poke the stored instance directly::

    with MarketoSandbox.start("fixtures/marketo_demo_instance.json") as sb:
        adapter = MarketoAdapter(sb.url, SecretStr(sb.client_id), SecretStr(sb.client_secret))
        sb.instance.leads[101].values["leadStatus"]
        sb.add_activity(101, 1, "pricing", {"Webpage URL": "/pricing"})
        sb.requests[-1].error_codes

Endpoints (``reference/marketo-api.md`` is the spec this follows):

* ``/identity/oauth/token`` (GET with query parameters, or POST form-encoded): client
  credentials -> ``{access_token, token_type, expires_in, scope}``; asking again before expiry
  returns the **same** token with its remaining lifetime (``token_ttl`` seconds, 3600 by default).
* ``/rest/v1/leads.json``: GET by ``filterType``/``filterValues`` (<= 300), ``fields``,
  ``batchSize`` (<= 300), ``nextPageToken``; more than 1,000 matches -> 1003. POST
  ``{action, lookupField: id|email, input (<= 300)}`` with per-record created/updated/skipped
  and reasons (1004 not found, 1005 exists, 1006 field not found, 1007 multiple match, 1003
  invalid value). ``/rest/v1/lead/{id}.json``; ``/rest/v1/leads/delete.json``.
* ``/rest/v1/leads/describe.json`` and ``describe2.json`` (instance-specific field names).
* ``/rest/v1/activities/types.json``, ``pagingtoken.json?sinceDatetime=``,
  ``/rest/v1/activities.json`` (<= 10 ``activityTypeIds``, <= 30 ``leadIds``),
  ``leadchanges.json`` (``fields`` required), ``deletedleads.json``.
* ``/bulk/v1/{leads|activities}/export/create.json`` (fields, ``createdAt``/``updatedAt``
  window <= 31 days), ``/{exportId}/enqueue.json``, ``status.json``, ``cancel.json``,
  ``file.json`` (CSV, ``null`` as text, ``Range`` -> 206); ``/bulk/v1/.../export.json`` lists.

Behaviour worth knowing (each one is exercised in ``tests/test_marketo_sandbox.py``):

* Every answer to a REST or bulk call is the envelope ``{requestId, success, result, errors,
  warnings}`` (plus ``nextPageToken``/``moreResult`` where they apply) with HTTP **200**, also
  for errors: ``errors`` is ``[{code, message}]`` and ``code`` is a **string**. Only the
  identity endpoint answers OAuth-style 401/400, and injected 5xx are HTML or plain text.
* Access token: missing -> 600, unknown -> 601, expired -> 602 (all in a 200 body).
  ``expire_tokens()`` expires the current one at once; ``reject_tokens = True`` answers 601 to
  every call (a token loop trap).
* Limits (identity calls are free): 100 calls per rolling 20 s -> 606, more than 10 calls in
  flight -> 615, ``daily_limit`` calls per day -> 607. ``time_scale`` multiplies the windows;
  ``hold_seconds`` keeps each call in flight that long (to provoke 615).
* Form-encoded POSTs carrying ``_method=GET`` are answered as the GET with the form fields as
  parameters (what ``marketorestpython`` sends for long queries); the log keeps ``POST`` with
  ``effective_method == "GET"``.
* Activity paging scans the time-ordered activity log: a page returns the matches among at
  most ``scan_limit`` scanned activities, so pages are **short or empty while moreResult is
  true** whenever filters are selective; ``empty_page_every = n`` additionally answers every
  n-th activity page empty (new token, nothing consumed). ``stuck_paging = True`` answers an
  empty page with the very token it was given and ``moreResult: true`` (a broken-server trap).
  A page with nothing to return has no ``result`` key at all, as on the real API.
* Writes bump ``updatedAt`` and log a Change Data Value (13) activity per changed field
  (Change Score, 22, for ``leadScore``); creates log New Lead (12); deletes log Delete Lead (37),
  which ``deletedleads.json`` reports.
* Bulk export: at most 2 jobs processing and 10 queued (1029); a job takes ``export_seconds``
  to process; ``fail_next_export = True`` makes the next one end ``Failed``.
* Faults: the generic :class:`~connector.sandbox.base.Faults` (5xx, dropped connections,
  slow answers; ``burst_429`` becomes a 606 envelope), :class:`EnvelopeFaults` (seeded 604/608/
  611/713 envelopes, never applied), and :meth:`MarketoApp.inject` (scripted: "the next n calls
  to this path answer 606").
"""

from __future__ import annotations

import bisect
import csv
import hashlib
import io
import itertools
import json
import random
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from connector.sandbox.base import (
    DailyQuota,
    FaultDecision,
    FaultKind,
    Faults,
    JsonDict,
    Request,
    RequestRecord,
    Response,
    RollingWindowLimiter,
    RunningSandbox,
    SandboxApp,
    SandboxServer,
    decode_cursor,
    encode_cursor,
    parse_time_ms,
    read_fixture,
    to_ms,
    utc_now,
)

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "ActivityRecord",
    "ActivityType",
    "EnvelopeFaults",
    "ExportJob",
    "Faults",
    "FieldDef",
    "Instance",
    "LeadRecord",
    "MarketoApp",
    "MarketoRequestRecord",
    "MarketoSandbox",
    "load_instance",
]

DEFAULT_MUNCHKIN = "123-ABC-456"
DEFAULT_CLIENT_ID = "leadscore-demo-client"
DEFAULT_CLIENT_SECRET = "leadscore-demo-secret"  # noqa: S105 - a public demo value
MAX_BATCH = 300
MAX_FILTER_VALUES = 300
MAX_MATCHES = 1000
MAX_TYPE_IDS = 10
MAX_LEAD_IDS = 30
MAX_EXPORT_DAYS = 31
MAX_PROCESSING = 2
MAX_QUEUED = 10
_DAY_MS = 86_400_000
_JSON = "application/json;charset=UTF-8"

# activity type ids the sandbox itself writes
NEW_LEAD = 12
CHANGE_DATA_VALUE = 13
CHANGE_SCORE = 22
DELETE_LEAD = 37
WEBINAR_ATTENDED = 100001
WEBINAR_REGISTERED = 100002


def iso_s(ms: int) -> str:
    """Marketo's timestamp format: ISO 8601 UTC to the second with ``Z``."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# =============================================================================================
# the stored instance
# =============================================================================================


@dataclass
class FieldDef:
    name: str
    display_name: str
    data_type: str  # string, text, email, integer, float, boolean, datetime, date, phone, url
    length: int | None = None
    read_only: bool = False
    custom: bool = False
    searchable: bool = False
    id: int = 0

    def describe(self) -> JsonDict:
        out: JsonDict = {
            "id": self.id,
            "displayName": self.display_name,
            "dataType": self.data_type,
            "rest": {"name": self.name, "readOnly": self.read_only},
            "soap": {"name": self.name[:1].upper() + self.name[1:], "readOnly": self.read_only},
        }
        if self.length is not None:
            out["length"] = self.length
        return out

    def describe2(self) -> JsonDict:
        out: JsonDict = {
            "name": self.name,
            "displayName": self.display_name,
            "dataType": self.data_type,
            "updateable": not self.read_only,
            "crmManaged": False,
        }
        if self.length is not None:
            out["length"] = self.length
        return out


STANDARD_FIELDS: tuple[tuple[str, str, str, int | None, bool, bool], ...] = (
    # name, display name, type, length, read-only, searchable
    ("id", "Id", "integer", None, True, True),
    ("email", "Email Address", "email", 255, False, True),
    ("firstName", "First Name", "string", 255, False, False),
    ("lastName", "Last Name", "string", 255, False, False),
    ("title", "Job Title", "string", 255, False, False),
    ("company", "Company Name", "string", 255, False, False),
    ("country", "Country", "string", 255, False, False),
    ("phone", "Phone Number", "phone", 255, False, False),
    ("leadSource", "Lead Source", "string", 255, False, False),
    ("leadStatus", "Lead Status", "string", 255, False, False),
    ("leadScore", "Lead Score", "integer", None, False, False),
    ("unsubscribed", "Unsubscribed", "boolean", None, False, False),
    ("createdAt", "Created At", "datetime", None, True, False),
    ("updatedAt", "Updated At", "datetime", None, True, False),
)


def standard_fields() -> list[FieldDef]:
    return [
        FieldDef(name, label, dtype, length, ro, False, searchable, i + 1)
        for i, (name, label, dtype, length, ro, searchable) in enumerate(STANDARD_FIELDS)
    ]


@dataclass
class ActivityType:
    id: int
    name: str
    description: str
    primary: tuple[str, str] | None  # (name, dataType)
    attributes: tuple[tuple[str, str], ...] = ()
    api_name: str | None = None

    def to_json(self) -> JsonDict:
        out: JsonDict = {"id": self.id, "name": self.name, "description": self.description}
        if self.api_name:
            out["apiName"] = self.api_name
        if self.primary is not None:
            out["primaryAttribute"] = {"name": self.primary[0], "dataType": self.primary[1]}
        out["attributes"] = [{"name": n, "dataType": t} for n, t in self.attributes]
        return out


_WEB = (("Client IP Address", "string"), ("Query Parameters", "string"),
        ("Referrer URL", "string"), ("User Agent", "string"))  # fmt: skip
_MAIL = (("Campaign Run ID", "integer"), ("Choice Number", "integer"), ("Step ID", "integer"))
_DEVICE = (("Device", "string"), ("Is Mobile Device", "boolean"), ("Platform", "string"),
           ("User Agent", "string"))  # fmt: skip


def standard_activity_types() -> list[ActivityType]:
    return [
        ActivityType(1, "Visit Webpage", "User visits a web page", ("Webpage ID", "integer"),
                     (*_WEB, ("Webpage URL", "string"), ("Search Engine", "string"),
                      ("Search Query", "string"))),
        ActivityType(2, "Fill Out Form", "User fills out and submits form on web page",
                     ("Webform ID", "integer"), (*_WEB, ("Form Fields", "text"),
                                                 ("Webpage ID", "integer"))),
        ActivityType(3, "Click Link", "User clicks link on a page", ("Link ID", "integer"),
                     (*_WEB, ("Webpage ID", "integer"))),
        ActivityType(6, "Send Email", "Send Marketo Email to a person", ("Mailing ID", "integer"),
                     _MAIL),
        ActivityType(7, "Email Delivered", "Marketo Email is delivered to a person",
                     ("Mailing ID", "integer"), _MAIL),
        ActivityType(8, "Email Bounced", "Marketo Email bounces", ("Mailing ID", "integer"),
                     (*_MAIL, ("Category", "string"), ("Details", "string"),
                      ("Email", "email"), ("Subcategory", "string"))),
        ActivityType(9, "Unsubscribe Email", "Person unsubscribes from Marketo Emails",
                     ("Mailing ID", "integer"), (*_MAIL, *_WEB, ("Form Fields", "text"),
                                                 ("Webform ID", "integer"))),
        ActivityType(10, "Open Email", "User opens Marketo Email", ("Mailing ID", "integer"),
                     (*_MAIL, *_DEVICE)),
        ActivityType(11, "Click Email", "User clicks on a link in a Marketo Email",
                     ("Mailing ID", "integer"), (*_MAIL, *_DEVICE, ("Link", "string"),
                                                 ("Link ID", "string"))),
        ActivityType(12, "New Lead", "New person/record is added to the lead database", None,
                     (("Created Date", "date"), ("Form Name", "string"),
                      ("Lead Source", "string"), ("List Name", "string"),
                      ("Source Type", "string"))),
        ActivityType(13, "Change Data Value", "Changed attribute value for a person",
                     ("Lead Field", "integer"), (("New Value", "string"), ("Old Value", "string"),
                                                 ("Reason", "string"), ("Source", "string"))),
        ActivityType(22, "Change Score", "Change a score value for a person",
                     ("Score Name", "integer"), (("Change Value", "string"),
                                                 ("New Value", "integer"),
                                                 ("Old Value", "integer"), ("Reason", "string"))),
        ActivityType(37, "Delete Lead", "Delete a person", ("Lead ID", "integer"),
                     (("Remove from CRM", "boolean"),)),
        ActivityType(46, "Interesting Moment", "Interesting moment", ("Milestone ID", "integer"),
                     (("Description", "string"), ("Source", "string"), ("Date", "datetime"))),
        ActivityType(101, "Change Revenue Stage", "Change a revenue stage for a person",
                     ("Model ID", "integer"), (("New Stage ID", "integer"),
                                               ("Old Stage ID", "integer"),
                                               ("Reason", "string"))),
    ]  # fmt: skip


def webinar_activity_types() -> list[ActivityType]:
    """The custom activities of the demo instance."""
    return [
        ActivityType(WEBINAR_ATTENDED, "Webinar Attended", "Attended a webinar (custom)",
                     ("Webinar Name", "string"), (("Minutes Watched", "integer"),
                                                  ("Webinar Minutes", "integer")),
                     api_name="webinarAttended_c"),
        ActivityType(WEBINAR_REGISTERED, "Webinar Registered", "Registered for a webinar (custom)",
                     ("Webinar Name", "string"), (), api_name="webinarRegistered_c"),
    ]  # fmt: skip


@dataclass
class LeadRecord:
    id: int
    values: dict[str, Any]  # typed values by REST field name (datetimes as epoch ms)
    created_ms: int
    updated_ms: int
    deleted_ms: int | None = None

    @property
    def live(self) -> bool:
        return self.deleted_ms is None


@dataclass
class ActivityRecord:
    id: int
    guid: str
    lead_id: int
    date_ms: int
    type_id: int
    primary_value: str | None = None
    primary_value_id: int | None = None
    attributes: list[tuple[str, Any]] = field(default_factory=list)
    fields: list[JsonDict] = field(default_factory=list)  # leadchanges: [{id,name,new,old}]
    campaign_id: int | None = None

    @property
    def key(self) -> tuple[int, int]:
        return (self.date_ms, self.id)

    def to_json(self) -> JsonDict:
        out: JsonDict = {
            "id": self.id,
            "marketoGUID": self.guid,
            "leadId": self.lead_id,
            "activityDate": iso_s(self.date_ms),
            "activityTypeId": self.type_id,
        }
        if self.campaign_id is not None:
            out["campaignId"] = self.campaign_id
        if self.primary_value_id is not None:
            out["primaryAttributeValueId"] = self.primary_value_id
        if self.primary_value is not None:
            out["primaryAttributeValue"] = self.primary_value
        out["attributes"] = [{"name": n, "value": v} for n, v in self.attributes]
        return out

    def change_json(self) -> JsonDict:
        out = self.to_json()
        out.pop("primaryAttributeValue", None)
        out.pop("primaryAttributeValueId", None)
        out["fields"] = list(self.fields)
        return out


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


class ValueProblem(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def coerce(fdef: FieldDef, raw: object) -> Any:
    """A written value in the field's type, or ``ValueProblem`` (code 1003)."""
    if raw is None:
        return None
    bad = ValueProblem("1003", f"Invalid value for field '{fdef.name}'")
    t = fdef.data_type
    if t == "integer":
        if isinstance(raw, bool):
            raise bad
        if isinstance(raw, int):
            return raw
        if isinstance(raw, float) and raw.is_integer():
            return int(raw)
        if isinstance(raw, str) and re.fullmatch(r"-?\d+(\.0+)?", raw.strip()):
            return int(float(raw.strip()))
        if isinstance(raw, str) and raw.strip() == "":
            return None
        raise bad
    if t in ("float", "currency"):
        if isinstance(raw, bool):
            raise bad
        try:
            return float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise bad from None
    if t == "boolean":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        if text == "":
            return None
        raise bad
    if t in ("datetime", "date"):
        if isinstance(raw, str) and raw.strip() == "":
            return None
        try:
            return parse_time_ms(raw)
        except ValueError:
            raise bad from None
    if isinstance(raw, dict | list | bool):
        raise bad
    text = str(raw)
    limit = fdef.length if fdef.data_type not in ("text",) else 65_535
    if limit is not None and len(text) > limit:
        raise ValueProblem("1003", f"Value for field '{fdef.name}' exceeds {limit} characters")
    if t == "email" and text and "@" not in text:
        raise bad
    return text


def render(fdef: FieldDef | None, value: Any) -> Any:
    """A stored value as the REST API shows it."""
    if value is None:
        return None
    if fdef is not None and fdef.data_type == "datetime" and isinstance(value, int):
        return iso_s(value)
    if fdef is not None and fdef.data_type == "date" and isinstance(value, int):
        return iso_s(value)[:10]
    return value


class Instance:
    """The data behind the API: fields, leads, the activity log, export jobs. Guard every
    access with ``lock`` (the app does for requests; the test hooks do too)."""

    def __init__(self, munchkin_id: str = DEFAULT_MUNCHKIN, now: datetime | None = None) -> None:
        self.lock = threading.RLock()
        self.munchkin_id = munchkin_id
        self._offset_ms = to_ms(now) - to_ms(utc_now()) if now is not None else 0
        self.fields: dict[str, FieldDef] = {f.name: f for f in standard_fields()}
        self.activity_types: dict[int, ActivityType] = {t.id: t for t in standard_activity_types()}
        self.leads: dict[int, LeadRecord] = {}
        self.activities: list[ActivityRecord] = []
        self._keys: list[tuple[int, int]] = []
        self._next_lead_id = 1
        self._next_activity_id = 1
        self.exports: dict[str, ExportJob] = {}

    # -- clock -----------------------------------------------------------------------------
    def now_ms(self) -> int:
        return to_ms(utc_now()) + self._offset_ms

    def advance(self, seconds: float) -> None:
        """Move the instance clock forward (tokens expire, exports finish, new timestamps)."""
        with self.lock:
            self._offset_ms += int(seconds * 1000)

    # -- fields ----------------------------------------------------------------------------
    def add_field(self, spec: Mapping[str, Any]) -> FieldDef:
        with self.lock:
            fdef = FieldDef(
                name=str(spec["name"]),
                display_name=str(spec.get("displayName", spec["name"])),
                data_type=str(spec.get("dataType", "string")),
                length=spec.get(
                    "length", 255 if spec.get("dataType", "string") == "string" else None
                ),
                read_only=bool(spec.get("readOnly", False)),
                custom=bool(spec.get("custom", True)),
                searchable=bool(spec.get("searchable", False)),
                id=max((f.id for f in self.fields.values()), default=0) + 1,
            )
            self.fields[fdef.name] = fdef
            return fdef

    def remove_field(self, name: str) -> None:
        with self.lock:
            self.fields.pop(name, None)

    # -- leads -----------------------------------------------------------------------------
    def lead(self, lead_id: int | str) -> LeadRecord | None:
        try:
            lid = int(lead_id)
        except (TypeError, ValueError):
            return None
        rec = self.leads.get(lid)
        return rec if rec is not None and rec.live else None

    def live_leads(self) -> list[LeadRecord]:
        return sorted((r for r in self.leads.values() if r.live), key=lambda r: r.id)

    def by_email(self, email: str) -> list[LeadRecord]:
        target = email.strip().lower()
        return [
            r
            for r in self.live_leads()
            if str(r.values.get("email") or "").strip().lower() == target
        ]

    def create_lead(
        self,
        values: Mapping[str, Any],
        *,
        lead_id: int | None = None,
        created_ms: int | None = None,
        updated_ms: int | None = None,
        source: str = "Web service API",
        log_activity: bool = True,
    ) -> LeadRecord:
        with self.lock:
            lid = lead_id if lead_id is not None else self._next_lead_id
            if lid in self.leads:
                raise ValueError(f"lead {lid} exists")
            self._next_lead_id = max(self._next_lead_id, lid + 1)
            at = created_ms if created_ms is not None else self.now_ms()
            typed: dict[str, Any] = {}
            for name, raw in values.items():
                fdef = self.fields.get(name)
                if fdef is None:
                    raise ValueProblem("1006", f"Field '{name}' not found")
                if name in ("id", "createdAt", "updatedAt"):
                    continue
                typed[name] = coerce(fdef, raw)
            rec = LeadRecord(lid, typed, at, max(at, updated_ms or at))
            self.leads[lid] = rec
            if log_activity:
                self.add_activity(
                    lid,
                    NEW_LEAD,
                    None,
                    [("Created Date", iso_s(at)[:10]), ("Source Type", source)],
                    at_ms=at,
                    guid=str(uuid.uuid5(uuid.NAMESPACE_URL, f"marketo/new-lead/{lid}")),
                )
            return rec

    def update_lead(
        self,
        rec: LeadRecord,
        values: Mapping[str, Any],
        *,
        source: str = "Web service API",
        at_ms: int | None = None,
    ) -> list[str]:
        """Apply typed-checked values (raises ValueProblem before changing anything)."""
        with self.lock:
            typed: dict[str, Any] = {}
            for name, raw in values.items():
                if name == "id":
                    continue
                fdef = self.fields.get(name)
                if fdef is None:
                    raise ValueProblem("1006", f"Field '{name}' not found")
                if fdef.read_only:
                    raise ValueProblem("1003", f"Field '{name}' is not updateable")
                typed[name] = coerce(fdef, raw)
            now = at_ms if at_ms is not None else max(self.now_ms(), rec.updated_ms + 1)
            changed: list[str] = []
            for name, new in typed.items():
                old = rec.values.get(name)
                if old == new:
                    continue
                rec.values[name] = new
                changed.append(name)
                fdef = self.fields[name]
                shown_new, shown_old = render(fdef, new), render(fdef, old)
                if name == "leadScore":
                    self.add_activity(
                        rec.id,
                        CHANGE_SCORE,
                        fdef.display_name,
                        [("New Value", shown_new), ("Old Value", shown_old),
                         ("Change Value", str((new or 0) - (old or 0))), ("Reason", source)],
                        at_ms=now,
                        primary_value_id=fdef.id,
                        fields=[{"id": fdef.id, "name": name, "newValue": shown_new,
                                 "oldValue": shown_old}],
                    )  # fmt: skip
                    continue
                self.add_activity(
                    rec.id,
                    CHANGE_DATA_VALUE,
                    fdef.display_name,
                    [("New Value", shown_new), ("Old Value", shown_old), ("Reason", source),
                     ("Source", source)],
                    at_ms=now,
                    primary_value_id=fdef.id,
                    fields=[{"id": fdef.id, "name": name, "newValue": shown_new,
                             "oldValue": shown_old}],
                )  # fmt: skip
            rec.updated_ms = now  # any accepted update touches the record
            return changed

    def delete_lead(self, lead_id: int, at_ms: int | None = None) -> LeadRecord | None:
        with self.lock:
            rec = self.lead(lead_id)
            if rec is None:
                return None
            at = at_ms if at_ms is not None else self.now_ms()
            rec.deleted_ms = at
            name = " ".join(
                str(v) for v in (rec.values.get("firstName"), rec.values.get("lastName")) if v
            )
            self.add_activity(
                rec.id,
                DELETE_LEAD,
                name or str(rec.id),
                [("Remove from CRM", False)],
                at_ms=at,
                primary_value_id=rec.id,
                guid=str(uuid.uuid5(uuid.NAMESPACE_URL, f"marketo/delete-lead/{rec.id}")),
            )
            return rec

    def lead_json(self, rec: LeadRecord, fields: Sequence[str]) -> JsonDict:
        out: JsonDict = {"id": rec.id}
        for name in fields:
            if name == "id":
                continue
            if name == "createdAt":
                out[name] = iso_s(rec.created_ms)
            elif name == "updatedAt":
                out[name] = iso_s(rec.updated_ms)
            else:
                out[name] = render(self.fields.get(name), rec.values.get(name))
        return out

    # -- activities ------------------------------------------------------------------------
    def add_activity(
        self,
        lead_id: int,
        type_id: int,
        primary_value: str | None,
        attributes: Mapping[str, Any] | Iterable[tuple[str, Any]] = (),
        *,
        at_ms: int | None = None,
        guid: str | None = None,
        primary_value_id: int | None = None,
        fields: list[JsonDict] | None = None,
        campaign_id: int | None = None,
    ) -> ActivityRecord:
        with self.lock:
            if type_id not in self.activity_types:
                raise ValueError(f"unknown activity type {type_id}")
            attrs = (
                list(attributes.items()) if isinstance(attributes, Mapping) else list(attributes)
            )
            act = ActivityRecord(
                id=self._next_activity_id,
                guid=guid or str(uuid.uuid4()),
                lead_id=int(lead_id),
                date_ms=self.now_ms() if at_ms is None else at_ms,
                type_id=type_id,
                primary_value=primary_value,
                primary_value_id=primary_value_id,
                attributes=attrs,
                fields=list(fields or []),
                campaign_id=campaign_id,
            )
            self._next_activity_id += 1
            i = bisect.bisect_right(self._keys, act.key)
            self._keys.insert(i, act.key)
            self.activities.insert(i, act)
            return act

    def scan(
        self,
        after: tuple[int, int],
        predicate: Any,
        batch: int,
        scan_limit: int,
    ) -> tuple[list[ActivityRecord], tuple[int, int], bool]:
        """Matches among at most ``scan_limit`` activities after the key ``after``:
        (matches, key of the last activity scanned, whether more remain to scan)."""
        i = bisect.bisect_right(self._keys, after)
        n = len(self.activities)
        out: list[ActivityRecord] = []
        last = after
        scanned = 0
        while i < n and scanned < scan_limit and len(out) < batch:
            act = self.activities[i]
            scanned += 1
            i += 1
            last = act.key
            if predicate(act):
                out.append(act)
        return out, last, i < n


def load_instance(data: Mapping[str, Any] | str | Path, now: datetime | None = None) -> Instance:
    """Build an :class:`Instance` from a fixture (dict or JSON file).

    Every timestamp is shifted by ``now - anchor`` (``now`` defaults to the real time), so the
    demo data is always recent. Format::

        {"munchkin_id": "123-ABC-456", "anchor": "2026-11-01T12:00:00Z",
         "fields": [{"name", "displayName", "dataType", "length"}],     # custom fields
         "activity_types": [{"id", "name", "description", "apiName",
                             "primaryAttribute": {"name", "dataType"},
                             "attributes": [{"name", "dataType"}]}],
         "leads": [{"id": 101, "createdAt": ISO, "updatedAt": ISO, "email": ..., ...}],
         "activities": [{"marketoGUID", "leadId", "activityDate", "activityTypeId",
                         "primaryAttributeValue", "primaryAttributeValueId",
                         "attributes": {"name": value}}],
         "changes": [{"leadId", "at", "field", "value", "source"}],   # sales edits, in order
         "deleted": [{"leadId": 111, "at": ISO}]}

    Each lead gets its New Lead activity at ``createdAt``.
    """
    data, now, when = read_fixture(data, now)
    inst = Instance(str(data.get("munchkin_id", DEFAULT_MUNCHKIN)), now=now)
    base = inst.now_ms()

    with inst.lock:
        for spec in data.get("fields", []):
            inst.add_field(spec)
        for t in data.get("activity_types", []):
            prim = t.get("primaryAttribute")
            inst.activity_types[int(t["id"])] = ActivityType(
                int(t["id"]),
                str(t["name"]),
                str(t.get("description", "")),
                (str(prim["name"]), str(prim.get("dataType", "string"))) if prim else None,
                tuple(
                    (str(a["name"]), str(a.get("dataType", "string")))
                    for a in t.get("attributes", [])
                ),
                t.get("apiName"),
            )
        pending: list[tuple[int, dict[str, Any]]] = []  # (date, activity spec) in time order
        for lead in data.get("leads", []):
            values = {k: v for k, v in lead.items() if k not in ("id", "createdAt", "updatedAt")}
            for name, value in list(values.items()):
                fdef = inst.fields.get(name)
                if fdef is not None and fdef.data_type == "datetime" and value:
                    values[name] = when(value, 0)
            created = when(lead.get("createdAt"), base - 30 * _DAY_MS)
            updated = when(lead.get("updatedAt"), created)
            rec = inst.create_lead(
                values,
                lead_id=int(lead["id"]),
                created_ms=created,
                updated_ms=updated,
                log_activity=False,
            )
            pending.append((created, {"kind": "new", "lead": rec.id, "at": created}))
        for a in data.get("activities", []):
            pending.append((when(a["activityDate"], base), {"kind": "activity", "spec": a}))
        for c in data.get("changes", []):
            pending.append((when(c["at"], base), {"kind": "change", "spec": c}))
        for d in data.get("deleted", []):
            pending.append((when(d.get("at"), base), {"kind": "delete", "spec": d}))
        pending.sort(key=lambda p: p[0])  # ids in time order, as a live instance assigns them
        for at, item in pending:
            kind = item["kind"]
            if kind == "new":
                inst.add_activity(
                    item["lead"],
                    NEW_LEAD,
                    None,
                    [("Created Date", iso_s(at)[:10]), ("Source Type", "Web form fillout")],
                    at_ms=at,
                    guid=str(uuid.uuid5(uuid.NAMESPACE_URL, f"marketo/new-lead/{item['lead']}")),
                )
            elif kind == "activity":
                a = item["spec"]
                attrs = a.get("attributes", {})
                pairs = (
                    list(attrs.items())
                    if isinstance(attrs, Mapping)
                    else [(x["name"], x.get("value")) for x in attrs]
                )
                inst.add_activity(
                    int(a["leadId"]),
                    int(a["activityTypeId"]),
                    a.get("primaryAttributeValue"),
                    pairs,
                    at_ms=at,
                    guid=a.get("marketoGUID"),
                    primary_value_id=a.get("primaryAttributeValueId"),
                    campaign_id=a.get("campaignId"),
                )
            elif kind == "change":
                c = item["spec"]
                target = inst.lead(c["leadId"])
                if target is None:
                    continue
                inst.update_lead(
                    target, {c["field"]: c["value"]}, source=c.get("source", "Sales"), at_ms=at
                )
            else:
                d = item["spec"]
                inst.delete_lead(int(d["leadId"]), at_ms=at)
        for lead in data.get("leads", []):  # updatedAt as the fixture says, never before a change
            rec = inst.leads[int(lead["id"])]
            rec.updated_ms = max(rec.updated_ms, when(lead.get("updatedAt"), rec.created_ms))
    return inst


# =============================================================================================
# faults specific to Marketo
# =============================================================================================


@dataclass(frozen=True)
class EnvelopeFaults:
    """Seeded error envelopes (HTTP 200, ``success: false``); the request is not applied.

    ``rate`` is the probability per eligible REST/bulk call (identity calls never are)."""

    seed: int = 0
    rate: float = 0.0
    codes: tuple[str, ...] = ("604", "608", "611", "713")
    path_prefixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("EnvelopeFaults.rate must be within 0..1")
        if not self.codes:
            raise ValueError("EnvelopeFaults.codes must not be empty")


ERROR_MESSAGES: dict[str, str] = {
    "600": "Access token not specified",
    "601": "Access token invalid",
    "602": "Access token expired",
    "603": "Access denied",
    "604": "Request timed out",
    "606": "Max rate limit '100' exceeded with in '20' secs",
    "607": "Daily quota reached",
    "608": "API Temporarily Unavailable",
    "609": "Invalid JSON",
    "610": "Requested resource not found",
    "611": "System error",
    "615": "Concurrent access limit reached",
    "713": "Transient Error",
    "1003": "Invalid request",
    "1029": "Too many jobs in queue",
}


@dataclass
class _Scripted:
    answer: str  # an envelope code ("606"), an HTTP status ("502") or "drop"
    left: int
    path_prefix: str | None
    method: str | None


@dataclass(frozen=True, slots=True)
class MarketoRequestRecord(RequestRecord):
    """A request log entry plus what the envelope said."""

    effective_method: str = ""  # "GET" for a form POST with _method=GET, else the method
    success: bool | None = None  # None when the answer was not an envelope
    error_codes: tuple[str, ...] = ()


class _BadRequest(Exception):
    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(message or ERROR_MESSAGES.get(code, "error"))
        self.code = code
        self.message = message or ERROR_MESSAGES.get(code, "error")


def _split(value: str | None) -> list[str]:
    if value is None:
        return []
    return [v.strip() for v in value.split(",") if v.strip()]


# =============================================================================================
# the HTTP application
# =============================================================================================


class MarketoApp(SandboxApp):
    """Marketo's API over an :class:`Instance`: identity, envelopes, limits, routes."""

    def __init__(
        self,
        instance: Instance,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        token_ttl: float = 3600.0,
        rate_limit: int = 100,
        rate_window: float = 20.0,
        concurrency_limit: int = 10,
        daily_limit: int = 50_000,
        time_scale: float = 1.0,
        faults: Faults | None = None,
        envelope_faults: EnvelopeFaults | None = None,
        scan_limit: int = 1000,
        export_seconds: float = 1.0,
    ) -> None:
        super().__init__(faults)
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        self.instance = instance
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_ttl = token_ttl
        self.time_scale = time_scale
        self.rate = RollingWindowLimiter(rate_limit, rate_window * time_scale)
        self.daily = DailyQuota(daily_limit, 86_400.0 * time_scale)
        self.concurrency_limit = concurrency_limit
        self.scan_limit = scan_limit
        self.export_seconds = export_seconds
        # behaviour knobs tests flip at run time
        self.empty_page_every = 0
        self.stuck_paging = False
        self.reject_tokens = False
        self.hold_seconds = 0.0
        self.fail_next_export = False
        self._token: str | None = None
        self._token_expires_ms = 0
        self._token_lock = threading.Lock()
        self._inflight = 0
        self._inflight_lock = threading.Lock()
        self._env_faults = envelope_faults or EnvelopeFaults()
        self._env_rng = random.Random(self._env_faults.seed)
        self._env_lock = threading.Lock()
        self._scripted: deque[_Scripted] = deque()
        self._scripted_lock = threading.Lock()
        self._request_ids = itertools.count(0x1000)
        self._token_nonce = itertools.count(1)
        self._activity_pages = 0
        table: list[tuple[str, str, Any]] = [
            ("GET", r"/rest/v1/leads\.json", self._get_leads),
            ("POST", r"/rest/v1/leads\.json", self._sync_leads),
            ("POST", r"/rest/v1/leads/delete\.json", self._delete_leads),
            ("GET", r"/rest/v1/lead/(?P<id>\d+)\.json", self._get_lead),
            ("GET", r"/rest/v1/leads/describe\.json", self._describe),
            ("GET", r"/rest/v1/leads/describe2\.json", self._describe2),
            ("GET", r"/rest/v1/activities/types\.json", self._activity_types),
            ("GET", r"/rest/v1/activities/pagingtoken\.json", self._paging_token),
            ("GET", r"/rest/v1/activities\.json", self._activities),
            ("GET", r"/rest/v1/activities/leadchanges\.json", self._lead_changes),
            ("GET", r"/rest/v1/activities/deletedleads\.json", self._deleted_leads),
            ("GET", r"/bulk/v1/(?P<kind>leads|activities)/export\.json", self._export_list),
            ("POST", r"/bulk/v1/(?P<kind>leads|activities)/export/create\.json",
             self._export_create),
            ("POST", r"/bulk/v1/(?P<kind>leads|activities)/export/(?P<id>[^/]+)/enqueue\.json",
             self._export_enqueue),
            ("POST", r"/bulk/v1/(?P<kind>leads|activities)/export/(?P<id>[^/]+)/cancel\.json",
             self._export_cancel),
            ("GET", r"/bulk/v1/(?P<kind>leads|activities)/export/(?P<id>[^/]+)/status\.json",
             self._export_status),
            ("GET", r"/bulk/v1/(?P<kind>leads|activities)/export/(?P<id>[^/]+)/file\.json",
             self._export_file),
        ]  # fmt: skip
        self._routes = [(m, re.compile(rx), h) for m, rx, h in table]

    # -- test hooks --------------------------------------------------------------------------
    def expire_tokens(self) -> None:
        """The current access token expires now (the next REST call answers 602)."""
        with self._token_lock:
            if self._token is not None:
                self._token_expires_ms = self.instance.now_ms()

    @property
    def current_token(self) -> str | None:
        with self._token_lock:
            return self._token

    def inject(
        self, answer: str, times: int = 1, *, path: str | None = None, method: str | None = None
    ) -> None:
        """Answer the next ``times`` matching REST/bulk calls with ``answer``: an envelope error
        code ("606", "607", "604", "601", ...), an HTTP status ("502") or "drop". Injected
        answers are never applied. ``path`` is a path prefix."""
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._scripted_lock:
            self._scripted.append(
                _Scripted(answer, times, path, method.upper() if method else None)
            )

    def set_envelope_faults(self, faults: EnvelopeFaults) -> None:
        with self._env_lock:
            self._env_faults = faults
            self._env_rng = random.Random(faults.seed)

    @property
    def envelope_faults(self) -> EnvelopeFaults:
        with self._env_lock:
            return self._env_faults

    # -- envelopes ---------------------------------------------------------------------------
    def _request_id(self) -> str:
        return f"{next(self._request_ids):x}#{secrets.token_hex(5)}"

    def envelope(
        self,
        result: list[Any] | None = None,
        *,
        next_token: str | None = None,
        more: bool | None = None,
        omit_empty: bool = False,
        warnings: list[str] | None = None,
    ) -> Response:
        body: JsonDict = {"requestId": self._request_id(), "success": True}
        if result or not omit_empty:
            body["result"] = list(result or [])
        if next_token is not None:
            body["nextPageToken"] = next_token
        if more is not None:
            body["moreResult"] = more
        body["errors"] = []
        body["warnings"] = list(warnings or [])
        return Response(200, body, content_type=_JSON)

    def error(self, code: str, message: str | None = None) -> Response:
        body = {
            "requestId": self._request_id(),
            "success": False,
            "errors": [{"code": str(code), "message": message or ERROR_MESSAGES.get(code, "")}],
            "warnings": [],
        }
        return Response(200, body, content_type=_JSON)

    # -- the request pipeline ----------------------------------------------------------------
    def _method_override(self, req: Request) -> tuple[Request, str]:
        ctype = (req.header("content-type") or "").lower()
        if req.method != "POST" or "application/x-www-form-urlencoded" not in ctype:
            return req, req.method
        form = parse_qs(req.raw_body.decode("utf-8", "replace"), keep_blank_values=True)
        if [v.upper() for v in form.get("_method", [])] != ["GET"]:
            return req, req.method
        query = {k: list(v) for k, v in req.query.items()}
        for k, v in form.items():
            if k != "_method":
                query.setdefault(k, []).extend(v)
        return (
            Request(
                method="GET",
                path=req.path,
                query=query,
                headers=req.headers,
                raw_body=b"",
                json=None,
                json_error=None,
            ),
            "GET",
        )

    def dispatch(self, req: Request) -> Response:
        original = req
        kind: FaultKind | None = None
        effective = req.method
        with self._inflight_lock:
            self._inflight += 1
            inflight = self._inflight
        try:
            req, effective = self._method_override(req)
            if req.path.rstrip("/") == "/identity/oauth/token":
                resp = self._identity(req)
            else:
                early = self._gate(req, inflight)
                if early is not None:
                    resp = early
                else:
                    scripted = self._take_scripted(req)
                    if scripted is not None:
                        resp = scripted
                    else:
                        resp, kind = self.apply_faults(req, self._route_or_envelope_fault)
        except Exception as exc:
            with self._errors_lock:
                self.internal_errors.append(exc)
            resp = self.internal_error_response(req, exc)
        finally:
            with self._inflight_lock:
                self._inflight -= 1
        success: bool | None = None
        codes: tuple[str, ...] = ()
        if isinstance(resp.body, dict) and "success" in resp.body:
            success = bool(resp.body["success"])
            codes = tuple(str(e.get("code")) for e in resp.body.get("errors") or [])
        body: Any = original.json
        if original.json_error is not None:
            body = original.raw_body.decode("utf-8", "replace")
        self.log.append(
            MarketoRequestRecord(
                method=original.method,
                path=original.path,
                query=req.query if effective != original.method else original.query,
                body=body,
                status=None if resp.drop else resp.status,
                fault=kind,
                at=time.monotonic(),
                effective_method=effective,
                success=success,
                error_codes=codes,
            )
        )
        return resp

    def _route_or_envelope_fault(self, req: Request) -> Response:
        """A seeded 604/608/611/713 in a 200 envelope, else the real answer."""
        env = self._envelope_fault(req)
        return env if env is not None else self.route(req)

    def _identity(self, req: Request) -> Response:
        params = dict(req.query)
        ctype = (req.header("content-type") or "").lower()
        if req.method == "POST" and "application/x-www-form-urlencoded" in ctype:
            for k, v in parse_qs(req.raw_body.decode("utf-8", "replace")).items():
                params.setdefault(k, v)
        if req.method not in ("GET", "POST"):
            return Response(405, {"error": "method_not_allowed"})

        def one(name: str) -> str | None:
            values = params.get(name)
            return values[0] if values else None

        grant = one("grant_type")
        if grant is None:
            return Response(
                400, {"error": "invalid_request", "error_description": "Missing grant type"}
            )
        if grant != "client_credentials":
            return Response(
                400,
                {"error": "unsupported_grant_type", "error_description": f"Unsupported grant "
                 f"type: {grant}"},
            )  # fmt: skip
        if one("client_id") != self.client_id or one("client_secret") != self.client_secret:
            return Response(
                401, {"error": "invalid_client", "error_description": "Bad client credentials"}
            )
        now = self.instance.now_ms()
        with self._token_lock:
            if self._token is None or now >= self._token_expires_ms:
                self._token = f"{uuid.uuid4()}:ab"
                self._token_expires_ms = now + int(self.token_ttl * 1000)
            left = max(0, (self._token_expires_ms - now) // 1000)
            token = self._token
        return Response(
            200,
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": int(left),
                "scope": "leadscore@leadscore.com",
            },
        )

    def _gate(self, req: Request, inflight: int) -> Response | None:
        auth = (req.header("authorization") or "").strip()
        token: str | None = None
        if auth:
            scheme, _, value = auth.partition(" ")
            token = value.strip() if scheme.lower() == "bearer" else None
        if token is None:
            token = req.param("access_token")  # deprecated, still accepted
        if not token:
            return self.error("600")
        with self._token_lock:
            known = self._token is not None and token == self._token
            expired = known and self.instance.now_ms() >= self._token_expires_ms
        if self.reject_tokens or not known:
            return self.error("601")
        if expired:
            return self.error("602")
        if self.daily.remaining() <= 0:
            return self.error("607")
        if inflight > self.concurrency_limit:
            return self.error("615")
        accepted, _ = self.rate.try_acquire()
        if not accepted:
            window = self.rate.window_seconds / self.time_scale
            return self.error(
                "606", f"Max rate limit '{self.rate.limit}' exceeded with in '{window:g}' secs"
            )
        self.daily.try_acquire()
        return None

    def _take_scripted(self, req: Request) -> Response | None:
        with self._scripted_lock:
            for item in self._scripted:
                if item.path_prefix is not None and not req.path.startswith(item.path_prefix):
                    continue
                if item.method is not None and item.method != req.method:
                    continue
                item.left -= 1
                if item.left <= 0:
                    self._scripted.remove(item)
                answer = item.answer
                break
            else:
                return None
        if answer == "drop":
            return Response(0, drop=True)
        if answer.isdigit() and int(answer) >= 500 and int(answer) < 600:
            return self.fault_response(req, FaultDecision("error", int(answer)))
        return self.error(answer)

    def _envelope_fault(self, req: Request) -> Response | None:
        with self._env_lock:
            f = self._env_faults
            if f.rate <= 0:
                return None
            if f.path_prefixes and not any(req.path.startswith(p) for p in f.path_prefixes):
                return None
            draw = self._env_rng.random()
            code = self._env_rng.choice(f.codes)
        return self.error(code) if draw < f.rate else None

    def fault_response(self, req: Request, decision: FaultDecision) -> Response:
        if decision.kind == "burst_429":
            return self.error("606")
        status = decision.status or 500
        if status in (502, 503, 504):
            reason = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
            page = (
                f"<html><head><title>{status} {reason[status]}</title></head><body><center>"
                f"<h1>{status} {reason[status]}</h1></center></body></html>"
            )
            return Response(status, page, content_type="text/html")
        return Response(status, "Internal Server Error", content_type="text/plain")

    def internal_error_response(self, req: Request, exc: BaseException) -> Response:
        return self.error("611", f"System error ({type(exc).__name__})")

    def route(self, req: Request) -> Response:
        if self.hold_seconds > 0:
            self.stopping.wait(self.hold_seconds)
        path = req.path
        known = False
        for method, rx, handler in self._routes:
            match = rx.fullmatch(path)
            if match is None:
                continue
            known = True
            if method != req.method:
                continue
            try:
                with self.instance.lock:
                    resp: Response = handler(req, match.groupdict())
                    return resp
            except _BadRequest as exc:
                return self.error(exc.code, exc.message)
        if known:
            return self.error("610", f"Requested resource not found ({req.method} {path})")
        return self.error("610")

    # -- request helpers ---------------------------------------------------------------------
    def _json(self, req: Request) -> JsonDict:
        if req.json_error is not None:
            raise _BadRequest("609", f"Invalid JSON: {req.json_error}")
        if not isinstance(req.json, dict):
            raise _BadRequest("609", "Invalid JSON: expected an object")
        return req.json

    def _int(self, req: Request, name: str, default: int, high: int) -> int:
        raw = req.param(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise _BadRequest("1003", f"Invalid value for '{name}': {raw!r}") from None
        if value < 1 or value > high:
            raise _BadRequest("1003", f"'{name}' must be between 1 and {high}")
        return value

    def _fields_param(self, req: Request, default: Sequence[str]) -> list[str]:
        fields = _split(req.param("fields")) or list(default)
        for name in fields:
            if name not in self.instance.fields:
                raise _BadRequest("1006", f"Field '{name}' not found")
        return fields

    # -- leads -------------------------------------------------------------------------------
    _DEFAULT_LEAD_FIELDS = ("id", "email", "updatedAt", "createdAt", "firstName", "lastName")

    def _get_leads(self, req: Request, _: dict[str, str]) -> Response:
        filter_type = req.param("filterType")
        if not filter_type:
            raise _BadRequest("1003", "filterType is required")
        values = _split(req.param("filterValues"))
        if not values:
            raise _BadRequest("1003", "filterValues is required")
        if len(values) > MAX_FILTER_VALUES:
            raise _BadRequest("1003", f"filterValues exceeds {MAX_FILTER_VALUES} values")
        fdef = self.instance.fields.get(filter_type)
        if fdef is None or not (fdef.searchable or filter_type == "id"):
            raise _BadRequest("1003", f"Invalid filterType '{filter_type}'")
        fields = self._fields_param(req, self._DEFAULT_LEAD_FIELDS)
        batch = self._int(req, "batchSize", MAX_BATCH, MAX_BATCH)
        if filter_type == "id":
            wanted: set[Any] = set()
            for v in values:
                if v.lstrip("-").isdigit():
                    wanted.add(int(v))
            matches = [r for r in self.instance.live_leads() if r.id in wanted]
        else:
            lowered = {v.lower() for v in values}
            matches = [
                r
                for r in self.instance.live_leads()
                if str(r.values.get(filter_type) or "").lower() in lowered
            ]
        if len(matches) > MAX_MATCHES:
            raise _BadRequest("1003", f"Too many results match the filter (> {MAX_MATCHES})")
        query_key = hashlib.sha1(  # noqa: S324 - a cache key, not security
            f"{filter_type}|{','.join(values)}|{','.join(fields)}".encode()
        ).hexdigest()[:12]
        offset = 0
        token = req.param("nextPageToken")
        if token:
            try:
                tag, off, key = decode_cursor(token, 3)
                offset = int(off)
            except ValueError:
                raise _BadRequest("1003", "Invalid nextPageToken") from None
            if tag != "leads" or key != query_key:
                raise _BadRequest("1003", "Invalid nextPageToken")
        page = matches[offset : offset + batch]
        result = [self.instance.lead_json(r, fields) for r in page]
        nxt = offset + batch
        if nxt < len(matches):
            return self.envelope(result, next_token=encode_cursor("leads", nxt, query_key))
        return self.envelope(result)

    def _get_lead(self, req: Request, m: dict[str, str]) -> Response:
        fields = self._fields_param(req, self._DEFAULT_LEAD_FIELDS)
        rec = self.instance.lead(m["id"])
        return self.envelope([] if rec is None else [self.instance.lead_json(rec, fields)])

    def _sync_leads(self, req: Request, _: dict[str, str]) -> Response:
        body = self._json(req)
        action = body.get("action", "createOrUpdate")
        if action not in ("createOrUpdate", "createOnly", "updateOnly", "createDuplicate"):
            raise _BadRequest("1003", f"Invalid action '{action}'")
        lookup = body.get("lookupField", "email")
        if lookup not in ("id", "email"):
            raise _BadRequest("1003", f"Invalid lookupField '{lookup}'")
        inputs = body.get("input")
        if not isinstance(inputs, list) or not inputs:
            raise _BadRequest("1003", "input is required")
        if len(inputs) > MAX_BATCH:
            raise _BadRequest("1003", f"Batch size exceeds {MAX_BATCH}")
        source = str(body.get("source") or "Web service API")
        results: list[JsonDict] = []
        for seq, item in enumerate(inputs):
            try:
                results.append({"seq": seq, **self._sync_one(item, action, lookup, source)})
            except ValueProblem as exc:
                results.append(
                    {"seq": seq, "status": "skipped",
                     "reasons": [{"code": exc.code, "message": exc.message}]}
                )  # fmt: skip
        return self.envelope(results)

    def _sync_one(self, item: object, action: str, lookup: str, source: str) -> JsonDict:
        if not isinstance(item, dict):
            raise ValueProblem("1003", "Invalid input record")
        inst = self.instance
        for name in item:
            if name not in inst.fields:
                raise ValueProblem("1006", f"Field '{name}' not found")
        key = item.get(lookup)
        if key is None or key == "":
            raise ValueProblem("1003", f"Value for lookup field '{lookup}' is required")
        if lookup == "id":
            rec = inst.lead(key)
            found = [rec] if rec is not None else []
        else:
            found = [] if action == "createDuplicate" else inst.by_email(str(key))
        values = {k: v for k, v in item.items() if k != "id"}
        if len(found) > 1:
            raise ValueProblem("1007", "Multiple lead match lookup criteria")
        if found:
            if action == "createOnly":
                raise ValueProblem("1005", "Lead already exists")
            inst.update_lead(found[0], values, source=source)
            return {"id": found[0].id, "status": "updated"}
        if action == "updateOnly" or lookup == "id":
            raise ValueProblem("1004", "Lead not found")
        for name, raw in values.items():
            coerce(inst.fields[name], raw)  # validate before creating anything
        created = inst.create_lead(values, source=source)
        return {"id": created.id, "status": "created"}

    def _delete_leads(self, req: Request, _: dict[str, str]) -> Response:
        body = self._json(req)
        inputs = body.get("input")
        if not isinstance(inputs, list) or not inputs or len(inputs) > MAX_BATCH:
            raise _BadRequest("1003", f"input must hold 1..{MAX_BATCH} records")
        results: list[JsonDict] = []
        for item in inputs:
            lid = item.get("id") if isinstance(item, dict) else None
            rec = self.instance.delete_lead(int(lid)) if isinstance(lid, int) else None
            if rec is None:
                results.append(
                    {"id": lid, "status": "skipped",
                     "reasons": [{"code": "1004", "message": "Lead not found"}]}
                )  # fmt: skip
            else:
                results.append({"id": rec.id, "status": "deleted"})
        return self.envelope(results)

    def _describe(self, req: Request, _: dict[str, str]) -> Response:
        return self.envelope([f.describe() for f in self.instance.fields.values()])

    def _describe2(self, req: Request, _: dict[str, str]) -> Response:
        searchable = [[f.name] for f in self.instance.fields.values() if f.searchable]
        return self.envelope(
            [
                {
                    "name": "API Lead",
                    "searchableFields": searchable,
                    "fields": [f.describe2() for f in self.instance.fields.values()],
                }
            ]
        )

    # -- activities --------------------------------------------------------------------------
    def _activity_types(self, req: Request, _: dict[str, str]) -> Response:
        types = sorted(self.instance.activity_types.values(), key=lambda t: t.id)
        return self.envelope([t.to_json() for t in types])

    def _page_token(self, after: tuple[int, int]) -> str:
        return encode_cursor("pt", after[0], after[1], next(self._token_nonce))

    def _decode_token(self, req: Request) -> tuple[str, tuple[int, int]]:
        token = req.param("nextPageToken")
        if not token:
            raise _BadRequest("1003", "nextPageToken is required")
        try:
            tag, d, i, _ = decode_cursor(token, 4)
            if tag != "pt":
                raise ValueError(tag)
            return token, (int(d), int(i))
        except ValueError:
            raise _BadRequest("1003", "Invalid nextPageToken") from None

    def _paging_token(self, req: Request, _: dict[str, str]) -> Response:
        since = req.param("sinceDatetime")
        if not since:
            raise _BadRequest("1003", "sinceDatetime is required")
        try:
            ms = parse_time_ms(since)
        except ValueError:
            raise _BadRequest("1003", f"Invalid sinceDatetime '{since}'") from None
        body: JsonDict = {
            "requestId": self._request_id(),
            "success": True,
            "nextPageToken": self._page_token((ms, -1)),
            "errors": [],
            "warnings": [],
        }
        return Response(200, body, content_type=_JSON)

    def _page(
        self,
        req: Request,
        predicate: Any,
        render_one: Any,
    ) -> Response:
        token, after = self._decode_token(req)
        batch = self._int(req, "batchSize", MAX_BATCH, MAX_BATCH)
        self._activity_pages += 1
        if self.stuck_paging:
            return self.envelope([], next_token=token, more=True, omit_empty=True)
        if self.empty_page_every and self._activity_pages % self.empty_page_every == 0:
            pending = bisect.bisect_right(self.instance._keys, after)
            if pending < len(self.instance.activities):
                nxt = self._page_token(after)
                return self.envelope([], next_token=nxt, more=True, omit_empty=True)
        found, last, more = self.instance.scan(after, predicate, batch, self.scan_limit)
        return self.envelope(
            [render_one(a) for a in found],
            next_token=self._page_token(last),
            more=more,
            omit_empty=True,
        )

    def _lead_filter(self, req: Request) -> set[int] | None:
        raw = _split(req.param("leadIds"))
        if not raw:
            return None
        if len(raw) > MAX_LEAD_IDS:
            raise _BadRequest("1003", f"leadIds exceeds {MAX_LEAD_IDS} values")
        try:
            return {int(v) for v in raw}
        except ValueError:
            raise _BadRequest("1003", "leadIds must be integers") from None

    def _activities(self, req: Request, _: dict[str, str]) -> Response:
        raw = _split(req.param("activityTypeIds"))
        if not raw:
            raise _BadRequest("1003", "activityTypeIds is required")
        if len(raw) > MAX_TYPE_IDS:
            raise _BadRequest("1003", f"activityTypeIds exceeds {MAX_TYPE_IDS} values")
        try:
            type_ids = {int(v) for v in raw}
        except ValueError:
            raise _BadRequest("1003", "activityTypeIds must be integers") from None
        unknown = type_ids - set(self.instance.activity_types)
        if unknown:
            raise _BadRequest("1003", f"Invalid activity type id(s) {sorted(unknown)}")
        leads = self._lead_filter(req)

        def match(a: ActivityRecord) -> bool:
            return a.type_id in type_ids and (leads is None or a.lead_id in leads)

        return self._page(req, match, ActivityRecord.to_json)

    def _lead_changes(self, req: Request, _: dict[str, str]) -> Response:
        fields = _split(req.param("fields"))
        if not fields:
            raise _BadRequest("1003", "fields is required")
        for name in fields:
            if name not in self.instance.fields:
                raise _BadRequest("1006", f"Field '{name}' not found")
        watched = set(fields)
        leads = self._lead_filter(req)

        def match(a: ActivityRecord) -> bool:
            if leads is not None and a.lead_id not in leads:
                return False
            if a.type_id == NEW_LEAD:
                return True
            if a.type_id in (CHANGE_DATA_VALUE, CHANGE_SCORE):
                return any(f.get("name") in watched for f in a.fields)
            return False

        def one(a: ActivityRecord) -> JsonDict:
            out = a.change_json()
            out["fields"] = [f for f in a.fields if f.get("name") in watched]
            return out

        return self._page(req, match, one)

    def _deleted_leads(self, req: Request, _: dict[str, str]) -> Response:
        return self._page(req, lambda a: a.type_id == DELETE_LEAD, ActivityRecord.to_json)

    # -- bulk export -------------------------------------------------------------------------
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
                if start <= stamp <= end:
                    data = self.instance.lead_json(rec, job.fields)
                    writer.writerow([cell(data.get(f)) for f in job.fields])
                    rows += 1
        else:
            writer.writerow(job.fields)
            for act in self.instance.activities:
                if not start <= act.date_ms <= end:
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


# =============================================================================================
# the public handle
# =============================================================================================


class MarketoSandbox(RunningSandbox[MarketoApp]):
    """A running Marketo sandbox. Use :meth:`start` (a context manager), then ``stop()``."""

    @classmethod
    def start(
        cls,
        instance: Instance | Mapping[str, Any] | str | Path | None = None,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        port: int = 0,
        now: datetime | None = None,
        token_ttl: float = 3600.0,
        rate_limit: int = 100,
        rate_window: float = 20.0,
        concurrency_limit: int = 10,
        daily_limit: int = 50_000,
        time_scale: float = 1.0,
        faults: Faults | None = None,
        envelope_faults: EnvelopeFaults | None = None,
        scan_limit: int = 1000,
        export_seconds: float = 1.0,
        keep_alive: bool = False,
    ) -> MarketoSandbox:
        """Load the instance (an :class:`Instance`, a fixture dict or path; None = empty) and
        serve it on 127.0.0.1:``port`` (0 = any free port)."""
        if isinstance(instance, Instance):
            inst = instance
        elif instance is None:
            inst = Instance(now=now)
        else:
            inst = load_instance(instance, now=now)
        app = MarketoApp(
            inst,
            client_id=client_id,
            client_secret=client_secret,
            token_ttl=token_ttl,
            rate_limit=rate_limit,
            rate_window=rate_window,
            concurrency_limit=concurrency_limit,
            daily_limit=daily_limit,
            time_scale=time_scale,
            faults=faults,
            envelope_faults=envelope_faults,
            scan_limit=scan_limit,
            export_seconds=export_seconds,
        )
        server = SandboxServer(app, port=port, keep_alive=keep_alive)
        server.start()
        return cls(app, server)

    @property
    def instance(self) -> Instance:
        return self.app.instance

    @property
    def client_id(self) -> str:
        return self.app.client_id

    @property
    def client_secret(self) -> str:
        return self.app.client_secret

    # -- test hooks --------------------------------------------------------------------------
    @property
    def requests(self) -> list[MarketoRequestRecord]:
        """A snapshot of the request log (oldest first)."""
        return [r for r in self.app.log.snapshot() if isinstance(r, MarketoRequestRecord)]

    def calls(self, path_suffix: str, method: str | None = None) -> list[MarketoRequestRecord]:
        """Logged requests whose path ends with ``path_suffix`` (and effective method)."""
        return [
            r
            for r in self.requests
            if r.path.endswith(path_suffix) and (method is None or r.effective_method == method)
        ]

    @property
    def envelope_faults(self) -> EnvelopeFaults:
        return self.app.envelope_faults

    @envelope_faults.setter
    def envelope_faults(self, value: EnvelopeFaults) -> None:
        self.app.set_envelope_faults(value)

    def inject(
        self, answer: str, times: int = 1, *, path: str | None = None, method: str | None = None
    ) -> None:
        self.app.inject(answer, times, path=path, method=method)

    def expire_tokens(self) -> None:
        self.app.expire_tokens()

    def reset_limits(self) -> None:
        self.app.rate.reset()
        self.app.daily.reset()

    def exhaust_daily_quota(self) -> None:
        self.app.daily.use(self.app.daily.limit)

    def lead(self, lead_id: int) -> LeadRecord:
        with self.instance.lock:
            rec = self.instance.lead(lead_id)
        if rec is None:
            raise KeyError(lead_id)
        return rec

    def add_activity(
        self,
        lead_id: int,
        type_id: int,
        primary_value: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        *,
        at: datetime | None = None,
    ) -> ActivityRecord:
        return self.instance.add_activity(
            lead_id, type_id, primary_value, attributes or {},
            at_ms=None if at is None else to_ms(at),
        )  # fmt: skip

    def set_field(self, lead_id: int, name: str, value: object, source: str = "Sales") -> None:
        """Change a lead field as a user would in the UI (logs a Change Data Value)."""
        with self.instance.lock:
            self.instance.update_lead(self.lead(lead_id), {name: value}, source=source)

    def delete_lead(self, lead_id: int) -> None:
        self.instance.delete_lead(lead_id)
