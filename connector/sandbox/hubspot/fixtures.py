"""Loading a portal from a fixture (dict or JSON file), shifted so the demo data is recent."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from connector.sandbox.base import DAY_MS as _DAY_MS
from connector.sandbox.base import iso_ms, read_fixture
from connector.sandbox.hubspot.events import EmailEvent, WebEvent
from connector.sandbox.hubspot.forms import Form
from connector.sandbox.hubspot.object_types import COMPANIES
from connector.sandbox.hubspot.portal import DEFAULT_PORTAL_ID, Portal, _deterministic_id
from connector.sandbox.hubspot.properties import (
    PropertyGroup,
    _normalize_value,
    _property_from_spec,
    _title,
)


def load_portal(data: Mapping[str, Any] | str | Path, now: datetime | None = None) -> Portal:
    """Build a :class:`Portal` from a fixture (dict or JSON file).

    Every timestamp of the fixture is shifted by ``now - anchor`` (``now`` defaults to the
    real current time), so the demo data is always recent. The fixture format::

        {"portal_id": 4242, "anchor": "2026-11-01T12:00:00Z",
         "groups": [{"name", "label"}],                      # optional extra property groups
         "properties": [{"name", "label", "type", "fieldType", "groupName", "options"}],
         "forms": [{"id": "<guid>", "name": "Contact Us", "fields": [...]}],
         "contacts": [{"id": "101", "properties": {...}}],   # createdate/lastmodifieddate ISO
         "events": [{"id", "eventType", "objectId", "occurredAt", "properties"}],
         "email_events": [{"id", "type", "recipient", "created", "emailCampaignId", "url"}],
         "merges": [["109", "110"]],                          # [primary, absorbed], in order
         "archived": ["111"],
         "companies": [{"id": "9001", "properties": {...}}],  # hs_lastmodifieddate ISO
         "associations": [{"contact": "101", "company": "9001", "primary": true}]}

    Associations are loaded after the contacts and companies and before the merges; they set
    ``associatedcompanyid`` and ``num_associated_contacts`` without bumping any date. A
    company's dropdown value (``industry``, ``lifecyclestage``) must be one of the property's
    options, as the API would require (ValueError naming the company and property).
    """
    data, now, when = read_fixture(data, now)
    portal = Portal(int(data.get("portal_id", DEFAULT_PORTAL_ID)), now=now)
    base_ms = portal.now_ms()

    with portal.lock:
        for g in data.get("groups", []):
            portal.groups[g["name"]] = PropertyGroup(
                g["name"], g.get("label", g["name"]), int(g.get("displayOrder", -1))
            )
        for spec in data.get("properties", []):
            prop = _property_from_spec(spec, base_ms)
            portal.groups.setdefault(
                prop.group_name, PropertyGroup(prop.group_name, _title(prop.group_name))
            )
            portal.properties[prop.name] = prop
        for f in data.get("forms", []):
            created = when(f.get("createdAt"), base_ms - 365 * _DAY_MS)
            portal.forms[f["id"]] = Form(
                id=f["id"],
                name=f["name"],
                created_ms=created,
                updated_ms=when(f.get("updatedAt"), created),
                fields=list(f.get("fields", ["email", "firstname", "lastname"])),
            )
        for c in data.get("contacts", []):
            raw = {str(k): "" if v is None else str(v) for k, v in c.get("properties", {}).items()}
            created = when(
                raw.pop("createdate", None) or c.get("createdAt"), base_ms - 30 * _DAY_MS
            )
            modified = when(raw.pop("lastmodifieddate", None) or c.get("updatedAt"), created)
            values: dict[str, str] = {}
            for name, value in raw.items():
                pdef = portal.properties.get(name)
                if pdef is not None and pdef.type == "datetime" and value:
                    values[name] = iso_ms(when(value, 0))
                else:
                    values[name] = value
            rec = portal.create_contact(values, contact_id=str(c["id"]), created_ms=created)
            rec.updated_ms = max(modified, created)
            rec.properties["lastmodifieddate"] = iso_ms(rec.updated_ms)
        for e in data.get("events", []):
            ev = WebEvent(
                id=str(
                    e.get("id") or _deterministic_id(portal.portal_id, "event", portal._next_seq())
                ),
                event_type=e["eventType"],
                object_id=str(e["objectId"]),
                occurred_ms=when(e["occurredAt"], base_ms),
                properties={str(k): str(v) for k, v in e.get("properties", {}).items()},
            )
            portal.events.append(ev)
            portal.events_by_contact[ev.object_id].append(ev)
            portal.events_by_type[ev.event_type].append(ev)
        for m in data.get("email_events", []):
            mail = EmailEvent(
                id=str(
                    m.get("id") or _deterministic_id(portal.portal_id, "email", portal._next_seq())
                ),
                type=str(m["type"]).upper(),
                recipient=m["recipient"],
                created_ms=when(m["created"], base_ms),
                campaign_id=int(m.get("emailCampaignId", 1001)),
                url=m.get("url"),
                extra={
                    k: v
                    for k, v in m.items()
                    if k not in ("id", "type", "recipient", "created", "emailCampaignId", "url")
                },
            )
            portal.email_events.append(mail)
            portal.email_by_recipient[mail.recipient.lower()].append(mail)
        for bucket in (
            portal.events,
            *portal.events_by_contact.values(),
            *portal.events_by_type.values(),
        ):
            bucket.sort(key=lambda ev: ev.key)
        for mails in (portal.email_events, *portal.email_by_recipient.values()):
            mails.sort(key=lambda ev: ev.key)
        for co in data.get("companies", []):
            raw = {str(k): "" if v is None else str(v) for k, v in co.get("properties", {}).items()}
            created = when(
                raw.pop("createdate", None) or co.get("createdAt"), base_ms - 30 * _DAY_MS
            )
            modified = when(raw.pop("hs_lastmodifieddate", None) or co.get("updatedAt"), created)
            _check_options(portal, str(co["id"]), raw)
            rec = portal.create_object(COMPANIES, raw, object_id=str(co["id"]), created_ms=created)
            rec.updated_ms = max(modified, created)
            rec.properties["hs_lastmodifieddate"] = iso_ms(rec.updated_ms)
        for link in data.get("associations", []):
            contact = portal.contacts[str(link["contact"])]
            company = portal.companies[str(link["company"])]
            portal._link(contact, company, {279, 1} if link.get("primary") else {279})
            if link.get("primary"):
                portal._set_primary_company(contact, company.id, touch=False)
        for company in portal.companies.values():
            portal._recount_contacts(company.id, touch=False)
        for primary, absorbed in data.get("merges", []):
            portal.merge(str(primary), str(absorbed), touch=False)
        for cid in data.get("archived", []):
            gone = portal.archive(str(cid), touch=False)
            if gone is not None:
                gone.archived_ms = gone.updated_ms
        for rec in portal.contacts.values():
            if rec.merged_into is not None:
                continue
            portal.recompute_rollups(rec, touch=False)
            latest = portal.last_activity_ms(rec)
            if latest > rec.updated_ms:
                rec.updated_ms = latest
                rec.properties["lastmodifieddate"] = iso_ms(latest)
            rec.history.clear()
    return portal


def _check_options(portal: Portal, company_id: str, values: Mapping[str, str]) -> None:
    """A fixture company's enumeration values are options of their property (the API refuses
    any other: a fixture must not hold what no client could have written)."""
    props = portal.properties_of(COMPANIES)
    for name, value in values.items():
        pdef = props.get(name)
        if pdef is None or pdef.type != "enumeration":
            continue
        _, problem = _normalize_value(pdef, value)
        if problem is not None:
            raise ValueError(f"fixture company {company_id}: {name}: {problem.message[:200]}")
