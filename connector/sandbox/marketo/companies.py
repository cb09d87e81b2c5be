"""Companies: ``GET /rest/v1/companies/describe.json``, ``GET /rest/v1/companies.json``
(``filterType`` = ``externalCompanyId``, ``id`` or ``company``, or their aliases
``dedupeFields`` and ``idField``; ``filterValues`` <= 300, comma-separated; ``fields``;
``nextPageToken``), also as ``POST /rest/v1/companies.json?_method=GET`` with a JSON body
(``{filterType, fields, input: [{externalCompanyId}], nextPageToken?}``: the lead database's
query form for keys a comma-separated list cannot carry, such as an ``externalCompanyId`` with
a comma in it; documented by Marketo for compound keys, unverified for companies), and
``POST /rest/v1/companies/sync.json`` (``action`` = ``createOrUpdate`` (default),
``createOnly`` or ``updateOnly``; ``dedupeBy`` = ``dedupeFields`` (default:
``externalCompanyId``) or ``idField`` (``id``); at most 300 records; a result per record
``{seq, id, status: created|updated|skipped, reasons?}``).
``POST /rest/v1/companies.json`` without ``_method=GET`` is answered the same way (the third-party
``marketorestpython`` client posts there; unverified against Marketo).

A lead belongs to the company whose ``externalCompanyId`` it carries (the lead field of the same
name); here the lead keeps its own ``company`` value (Marketo shows the company's values on the
lead; the emulator does not copy them). ``Instance.companies_read_only = True`` emulates a
subscription with native CRM sync: every sync answers error 1025 for each record (the real
error code is unverified; public connectors treat such errors as "Companies unavailable").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connector.sandbox.base import (
    JsonDict,
    Request,
    Response,
    encode_cursor,
    iso_s,
)
from connector.sandbox.marketo.api import MarketoApi, _BadRequest, _query_offset, _split
from connector.sandbox.marketo.leads import FieldDef, ValueProblem, coerce, render

MAX_COMPANY_BATCH = 300
MAX_COMPANY_FILTER_VALUES = 300

COMPANY_FIELDS: tuple[tuple[str, str, str, int | None, bool], ...] = (
    # name, display name, type, length, read-only
    ("id", "Id", "integer", None, True),
    ("externalCompanyId", "External Company Id", "string", 100, False),
    ("company", "Company Name", "string", 255, False),
    ("website", "Website", "url", 255, False),
    ("mainPhone", "Main Phone", "phone", 255, False),
    ("annualRevenue", "Annual Revenue", "currency", None, False),
    ("numberOfEmployees", "Num Employees", "integer", None, False),
    ("industry", "Industry", "string", 255, False),
    ("sicCode", "SIC Code", "string", 40, False),
    ("billingCity", "Billing City", "string", 255, False),
    ("billingState", "Billing State", "string", 255, False),
    ("billingCountry", "Billing Country", "string", 255, False),
    ("createdAt", "Created At", "datetime", None, True),
    ("updatedAt", "Updated At", "datetime", None, True),
)
SEARCHABLE = ("externalCompanyId", "id", "company")
FILTER_ALIASES = {"dedupeFields": "externalCompanyId", "idField": "id"}
DEFAULT_FIELDS = ("id", "externalCompanyId", "company")


def company_fields() -> dict[str, FieldDef]:
    return {
        name: FieldDef(name, label, dtype, length, ro, False, name in SEARCHABLE, i + 1)
        for i, (name, label, dtype, length, ro) in enumerate(COMPANY_FIELDS)
    }


@dataclass
class CompanyRecord:
    id: int
    values: dict[str, Any]  # typed values by REST field name
    created_ms: int
    updated_ms: int


def _input_values(records: object, field: str) -> list[str]:
    """The values of a JSON query's ``input``: records of the one key field, kept whole."""
    if not isinstance(records, list) or len(records) > MAX_COMPANY_FILTER_VALUES:
        raise _BadRequest("1003", f"input must be a list of at most {MAX_COMPANY_FILTER_VALUES}")
    values = []
    for rec in records:
        if not isinstance(rec, dict) or set(rec) != {field} or rec[field] in (None, ""):
            raise _BadRequest("1003", f"Each input record needs '{field}' and nothing else")
        values.append(str(rec[field]))
    return values


class CompaniesAPI(MarketoApi):
    """The company endpoints over ``Instance.companies``."""

    def _company_json(self, rec: CompanyRecord, fields: list[str], seq: int) -> JsonDict:
        defs = self.instance.company_fields
        out: JsonDict = {"seq": seq, "id": rec.id}  # seq and id always, like Marketo
        for name in fields:
            if name == "id":
                out["id"] = rec.id
            elif name == "createdAt":
                out[name] = iso_s(rec.created_ms)
            elif name == "updatedAt":
                out[name] = iso_s(rec.updated_ms)
            else:
                out[name] = render(defs.get(name), rec.values.get(name))
        return out

    def _companies_describe(self, req: Request, _: dict[str, str]) -> Response:
        defs = self.instance.company_fields.values()
        return self.envelope(
            [
                {
                    "name": "Company",
                    "description": "Company object",
                    "createdAt": "2016-01-01T00:00:00Z",
                    "updatedAt": "2016-01-01T00:00:00Z",
                    "idField": "id",
                    "dedupeFields": ["externalCompanyId"],
                    "searchableFields": [[name] for name in SEARCHABLE],
                    "fields": [
                        {
                            "name": f.name,
                            "displayName": f.display_name,
                            "dataType": f.data_type,
                            **({"length": f.length} if f.length is not None else {}),
                            "updateable": not f.read_only,
                        }
                        for f in defs
                    ],
                }
            ]
        )

    def _companies_query(self, req: Request, _: dict[str, str]) -> Response:
        filter_type = req.param("filterType") or ""
        field = FILTER_ALIASES.get(filter_type, filter_type)
        if field not in SEARCHABLE:
            raise _BadRequest("1003", f"Invalid filterType '{filter_type}'")
        records = req.json.get("input") if isinstance(req.json, dict) else None
        if records is not None:  # a JSON query (POST with _method=GET): values kept whole
            if req.param("filterValues") is not None:
                raise _BadRequest("1003", "filterValues cannot be given with input")
            values = _input_values(records, field)
        else:
            values = _split(req.param("filterValues"))
        if not values:
            raise _BadRequest("1003", "filterValues is required")
        if len(values) > MAX_COMPANY_FILTER_VALUES:
            raise _BadRequest("1003", f"filterValues exceeds {MAX_COMPANY_FILTER_VALUES} values")
        fields = _split(req.param("fields")) or list(DEFAULT_FIELDS)
        for name in fields:
            if name not in self.instance.company_fields:
                raise _BadRequest("1006", f"Field '{name}' not found")
        batch = self._int(req, "batchSize", MAX_COMPANY_BATCH, MAX_COMPANY_BATCH)
        pool = sorted(self.instance.companies.values(), key=lambda c: c.id)
        if field == "id":
            wanted = {int(v) for v in values if v.isdigit()}
            matches = [c for c in pool if c.id in wanted]
        else:
            lowered = {v.lower() for v in values}
            matches = [c for c in pool if str(c.values.get(field) or "").lower() in lowered]
        offset, key = _query_offset(req, "companies", filter_type, values, fields)
        page = matches[offset : offset + batch]
        result = [self._company_json(c, fields, offset + i) for i, c in enumerate(page)]
        if offset + batch < len(matches):
            return self.envelope(result, next_token=encode_cursor("companies", offset + batch, key))
        return self.envelope(result)

    def _companies_sync(self, req: Request, _: dict[str, str]) -> Response:
        body = self._json(req)
        action = body.get("action", "createOrUpdate")
        if action not in ("createOrUpdate", "createOnly", "updateOnly"):
            raise _BadRequest("1003", f"Invalid action '{action}'")
        dedupe = body.get("dedupeBy", "dedupeFields")
        if dedupe not in ("dedupeFields", "idField"):
            raise _BadRequest("1003", f"Invalid dedupeBy '{dedupe}'")
        inputs = body.get("input")
        if not isinstance(inputs, list) or not inputs:
            raise _BadRequest("1003", "input is required")
        if len(inputs) > MAX_COMPANY_BATCH:
            raise _BadRequest("1003", f"Batch size exceeds {MAX_COMPANY_BATCH}")
        results: list[JsonDict] = []
        for seq, item in enumerate(inputs):
            try:
                if self.instance.companies_read_only:
                    raise ValueProblem(
                        "1025", "Company API is read-only: companies are synced from the CRM"
                    )
                results.append({"seq": seq, **self._sync_company(item, action, dedupe)})
            except ValueProblem as exc:
                results.append(
                    {"seq": seq, "status": "skipped",
                     "reasons": [{"code": exc.code, "message": exc.message}]}
                )  # fmt: skip
        return self.envelope(results)

    def _sync_company(self, item: object, action: str, dedupe: str) -> JsonDict:
        if not isinstance(item, dict):
            raise ValueProblem("1003", "Invalid input record")
        inst = self.instance
        defs = inst.company_fields
        for name in item:
            if name not in defs:
                raise ValueProblem("1006", f"Field '{name}' not found")
        key_name = "id" if dedupe == "idField" else "externalCompanyId"
        key = item.get(key_name)
        if key is None or key == "":
            raise ValueProblem("1003", f"Value for required field '{key_name}' not specified")
        if key_name == "id":
            found = inst.companies.get(int(key)) if str(key).isdigit() else None
        else:
            found = inst.company_by_external_id(str(key))
        values = {}
        for name, raw in item.items():
            if name in ("id", "createdAt", "updatedAt"):
                continue
            values[name] = coerce(defs[name], raw)
        if found is not None:
            if action == "createOnly":
                raise ValueProblem("1005", "Company already exists")
            inst.update_company(found, values)
            return {"id": found.id, "status": "updated"}
        if action == "updateOnly" or key_name == "id":
            raise ValueProblem("1013", "Company not found")
        created = inst.create_company(values)
        return {"id": created.id, "status": "created"}
