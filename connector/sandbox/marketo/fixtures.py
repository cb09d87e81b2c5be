"""Loading an instance from a fixture (dict or JSON file), shifted so the demo data is recent."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from connector.sandbox.base import DAY_MS as _DAY_MS
from connector.sandbox.base import iso_s, read_fixture
from connector.sandbox.marketo.activities import NEW_LEAD, ActivityType
from connector.sandbox.marketo.instance import DEFAULT_MUNCHKIN, Instance
from connector.sandbox.marketo.leads import coerce


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
         "deleted": [{"leadId": 111, "at": ISO}],
         "companies": [{"id": 1, "externalCompanyId": "ACC-9001", "company": ..., ...}]}

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
        for co in data.get("companies", []):
            defs = inst.company_fields
            typed = {
                k: coerce(defs[k], v)
                for k, v in co.items()
                if k not in ("id", "createdAt", "updatedAt")
            }
            created = when(co.get("createdAt"), base - 365 * _DAY_MS)
            inst.create_company(
                typed,
                company_id=int(co["id"]),
                created_ms=created,
                updated_ms=when(co.get("updatedAt"), created),
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
