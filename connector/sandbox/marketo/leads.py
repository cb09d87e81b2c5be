"""Leads: the field catalogue (``/rest/v1/leads/describe.json``, ``describe2.json``), how a
written value is coerced, and ``/rest/v1/leads.json`` (GET by filter, POST sync),
``/rest/v1/lead/{id}.json`` and ``/rest/v1/leads/delete.json``."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from connector.sandbox.base import (
    JsonDict,
    Request,
    Response,
    encode_cursor,
    iso_s,
    parse_time_ms,
)
from connector.sandbox.marketo.api import MAX_BATCH, MarketoApi, _BadRequest, _query_offset, _split

MAX_FILTER_VALUES = 300


MAX_MATCHES = 1000


# Losing leads a merge call takes. Adobe's reference gives no number; three is what
# third-party clients enforce (an assumption: a longer list is refused with 1003, never cut).
MAX_MERGE_LOSERS = 3


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
    ("externalCompanyId", "External Company Id", "string", 100, False, False),
)


def standard_fields() -> list[FieldDef]:
    return [
        FieldDef(name, label, dtype, length, ro, False, searchable, i + 1)
        for i, (name, label, dtype, length, ro, searchable) in enumerate(STANDARD_FIELDS)
    ]


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
            number = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            raise bad from None
        if not math.isfinite(number):  # "1e400", "NaN": no number Marketo keeps (nor JSON)
            raise bad
        return number
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


class LeadsAPI(MarketoApi):
    """The lead endpoints over the instance's leads and fields."""

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
        offset, query_key = _query_offset(req, "leads", filter_type, values, fields)
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

    def _merge_leads(self, req: Request, m: dict[str, str]) -> Response:
        """``POST /rest/v1/leads/{id}/merge.json``: the path's lead wins; the losers come in
        ``leadId`` (one) or ``leadIds`` (comma-separated); ``mergeInCRM`` asks for the same
        merge in a natively synced CRM (two leads at a time there). Everything is checked
        before anything changes: an error merges nothing. Success is ``{requestId,
        success}``, no ``result``."""
        raw = [*_split(req.param("leadId")), *_split(req.param("leadIds"))]
        if not raw:
            raise _BadRequest("1003", "leadId or leadIds is required")
        try:
            losers = list(dict.fromkeys(int(v) for v in raw))
        except ValueError:
            raise _BadRequest("1003", "leadIds must be integers") from None
        crm = (req.param("mergeInCRM") or "false").strip().lower()
        if crm not in ("true", "false"):
            raise _BadRequest("1003", f"Invalid value for 'mergeInCRM': {crm!r}")
        if len(losers) > MAX_MERGE_LOSERS:
            raise _BadRequest("1003", f"leadIds exceeds {MAX_MERGE_LOSERS} values")
        if crm == "true" and len(losers) > 1:
            raise _BadRequest("1003", "mergeInCRM merges two leads at a time")
        winner = int(m["id"])
        if winner in losers:
            raise _BadRequest("1003", f"Cannot merge lead {winner} into itself")
        for lid in (winner, *losers):
            if self.instance.lead(lid) is None:
                raise _BadRequest("1004", f"Lead not found: {lid}")
        self.instance.merge_leads(winner, losers)
        return self.envelope(None, omit_empty=True)

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
