"""Seeded generators of Marketo sandbox instances (the fixture format of ``load_instance``).

* :func:`build_demo_instance` - the demo instance: the **same** personas, engagement and
  timestamps as the HubSpot demo portal (:func:`connector.sandbox.demo_portal.build_demo_portal`),
  translated into Marketo's shapes, so both CRMs give the same scoring outcomes. Its output
  (``seed=7, extra_contacts=40``) is committed as ``fixtures/marketo_demo_instance.json``::

      python -m connector.sandbox.marketo_demo > fixtures/marketo_demo_instance.json

  The translation: contacts -> leads (``firstname`` -> ``firstName``, ``jobtitle`` -> ``title``,
  lifecycle stage -> ``leadStatus`` via :data:`STAGE_STATUS`; Taylor's SQL is a ``leadStatus``
  change made by sales), page views -> Visit Webpage (1; ``Webpage URL`` is the path,
  ``Referrer URL`` the referrer), form submissions -> Fill Out Form (2; the form name is the
  primary attribute), webinars -> the custom Webinar Attended / Webinar Registered activities
  (``Minutes Watched``, ``Webinar Minutes``), marketing e-mail events -> Email Delivered (7),
  Email Bounced (8), Unsubscribe Email (9), Open Email (10), Click Email (11) on the lead that
  owns the address. The merged-away HubSpot duplicate (110) is not a lead here: its activities
  belong to the survivor (109), as after a Marketo merge. The archived contact (111, Jamie) is
  a deleted lead (Delete Lead activity, reported by ``deletedleads.json``). The portal's
  companies are Marketo companies (same ids, ``externalCompanyId`` = ``ACC-<id>``, ``website``
  from the domain) and each lead carries its primary company's ``externalCompanyId``.

* :func:`build_instance` - a large plain instance for paging, export and benchmark tests.

The instance has the custom fields the connector writes by default: ``leadGrade__c``,
``leadScoreReasons__c``, ``leadScoreModel__c``, ``leadScoredAt__c``, ``mqlReason__c``,
``profileMismatch__c``, ``leadPriority__c``, and for account scoring ``accountScore__c`` and
``accountGrade__c`` (``leadScore`` and ``leadStatus`` are standard fields).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.sandbox.demo_portal import (
    ANCHOR,
    CAMPAIGNS,
    COMPANY_DOMAINS,
    FIRST_NAMES,
    FORM_NAMES,
    FREE_DOMAINS,
    LAST_NAMES,
    SITE,
    TITLES,
    build_demo_portal,
    dumps_fixture,
)
from connector.sandbox.marketo import (
    WEBINAR_ATTENDED,
    WEBINAR_REGISTERED,
    webinar_activity_types,
)
from connector.text import industry_words

MUNCHKIN_ID = "123-ABC-456"
HOST = SITE.removeprefix("https://")

# HubSpot lifecycle stage -> the demo instance's lead status value.
STAGE_STATUS: dict[str, str] = {
    "subscriber": "Subscriber",
    "lead": "Open",
    "marketingqualifiedlead": "MQL",
    "salesqualifiedlead": "SQL",
    "opportunity": "Opportunity",
    "customer": "Customer",
}

CUSTOM_FIELDS: list[dict[str, Any]] = [
    {"name": "leadGrade__c", "displayName": "Lead Grade", "dataType": "string", "length": 10},
    {"name": "leadScoreReasons__c", "displayName": "Lead Score Reasons", "dataType": "text"},
    {"name": "leadScoreModel__c", "displayName": "Lead Score Model", "dataType": "string",
     "length": 255},
    {"name": "leadScoredAt__c", "displayName": "Lead Scored At", "dataType": "datetime"},
    {"name": "mqlReason__c", "displayName": "MQL Reason", "dataType": "string", "length": 255},
    {"name": "profileMismatch__c", "displayName": "Profile Mismatch", "dataType": "boolean"},
    {"name": "leadPriority__c", "displayName": "Lead Priority", "dataType": "string", "length": 10},
    # account scoring's values on each lead (LEADSCORE_ACCOUNTS=true; `leadscore demo`)
    {"name": "accountScore__c", "displayName": "Account Score", "dataType": "integer"},
    {"name": "accountGrade__c", "displayName": "Account Grade", "dataType": "string", "length": 10},
]  # fmt: skip

_EMAIL_TYPES = {"DELIVERED": 7, "BOUNCE": 8, "UNSUBSCRIBED": 9, "OPEN": 10, "CLICK": 11}
_USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"


def _page_id(path: str) -> int:
    return 1000 + int(hashlib.sha1(path.encode()).hexdigest()[:4], 16) % 9000  # noqa: S324


def _ip(key: str) -> str:
    return f"203.0.113.{int(hashlib.sha1(key.encode()).hexdigest()[:2], 16) % 250 + 1}"  # noqa: S324


def _path(url: str) -> str:
    return url.removeprefix(SITE) or "/"


def activity_types_json() -> list[dict[str, Any]]:
    return [t.to_json() for t in webinar_activity_types()]


def _lead(cid: str, props: dict[str, str]) -> dict[str, Any]:
    lead: dict[str, Any] = {"id": int(cid)}
    for src, dst in (
        ("email", "email"),
        ("firstname", "firstName"),
        ("lastname", "lastName"),
        ("jobtitle", "title"),
        ("company", "company"),
        ("country", "country"),
    ):
        if props.get(src):
            lead[dst] = props[src]
    stage = props.get("lifecyclestage") or ""
    # a sales-owned stage is set by sales later (a change), the lead starts as "Open"
    lead["leadStatus"] = "Open" if stage == "salesqualifiedlead" else STAGE_STATUS.get(stage)
    lead["createdAt"] = props["createdate"]
    lead["updatedAt"] = props.get("lastmodifieddate") or props["createdate"]
    return lead


def _web_activity(ev: dict[str, Any], lead_id: int) -> dict[str, Any]:
    props = ev.get("properties", {})
    kind = ev["eventType"]
    base: dict[str, Any] = {
        "marketoGUID": ev["id"],
        "leadId": lead_id,
        "activityDate": ev["occurredAt"],
    }
    if kind == "e_visited_page":
        path = _path(props.get("hs_url", ""))
        return base | {
            "activityTypeId": 1,
            "primaryAttributeValueId": _page_id(path),
            "primaryAttributeValue": HOST + path,
            "attributes": {
                "Client IP Address": _ip(f"{lead_id}"),
                "Query Parameters": "",
                "Referrer URL": props.get("hs_referrer", ""),
                "User Agent": _USER_AGENT,
                "Webpage URL": path,
            },
        }
    if kind == "e_submitted_form":
        name = props.get("hs_form_title", "")
        path = _path(props.get("hs_url", ""))
        return base | {
            "activityTypeId": 2,
            "primaryAttributeValueId": 1001 + FORM_NAMES.index(name) if name in FORM_NAMES else 0,
            "primaryAttributeValue": name,
            "attributes": {
                "Client IP Address": _ip(f"{lead_id}"),
                "Form Fields": 'a:2:{s:5:"Email";s:0:"";s:10:"_marketo_comments";s:0:"";}',
                "Query Parameters": "",
                "Referrer URL": SITE + path,
                "User Agent": _USER_AGENT,
                "Webpage ID": _page_id(path),
            },
        }
    if kind.endswith("_webinar_attended"):
        return base | {
            "activityTypeId": WEBINAR_ATTENDED,
            "primaryAttributeValue": props.get("webinar_name", ""),
            "attributes": {
                "Minutes Watched": int(props.get("minutes_watched", 0)),
                "Webinar Minutes": int(props.get("webinar_minutes", 0)),
            },
        }
    if kind.endswith("_webinar_registered"):
        return base | {
            "activityTypeId": WEBINAR_REGISTERED,
            "primaryAttributeValue": props.get("webinar_name", ""),
            "attributes": {},
        }
    raise ValueError(f"no Marketo translation for {kind!r}")


def _mail_activity(ev: dict[str, Any], lead_id: int) -> dict[str, Any]:
    campaign = int(ev.get("emailCampaignId", 1001))
    attrs: dict[str, Any] = {"Campaign Run ID": campaign * 10, "Choice Number": 0, "Step ID": 1}
    type_id = _EMAIL_TYPES[ev["type"]]
    if type_id in (10, 11):
        attrs |= {"Device": "unknown", "Is Mobile Device": False, "Platform": "unknown",
                  "User Agent": _USER_AGENT}  # fmt: skip
    if type_id == 11:
        attrs |= {"Link": ev.get("url", ""), "Link ID": str(_page_id(ev.get("url", "")))}
    if type_id == 8:
        attrs |= {"Category": "1", "Details": "550 mailbox unavailable", "Email": ev["recipient"],
                  "Subcategory": "1003"}  # fmt: skip
    return {
        "marketoGUID": ev["id"],
        "leadId": lead_id,
        "activityDate": ev["created"],
        "activityTypeId": type_id,
        "primaryAttributeValueId": campaign,
        "primaryAttributeValue": CAMPAIGNS.get(campaign, f"Email {campaign}"),
        "attributes": attrs,
    }


def build_demo_instance(seed: int = 7, extra_contacts: int = 40) -> dict[str, Any]:
    """The demo instance: the HubSpot demo portal's personas, as Marketo data."""
    portal = build_demo_portal(seed, extra_contacts)
    absorbed = {a: p for p, a in portal.get("merges", [])}
    archived = set(portal.get("archived", []))
    by_id = {c["id"]: c for c in portal["contacts"]}
    leads: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    owner_of_email: dict[str, int] = {}
    primary_company = {
        a["contact"]: external_company_id(a["company"])
        for a in portal.get("associations", [])
        if a.get("primary")
    }
    for c in portal["contacts"]:
        cid = c["id"]
        if cid in absorbed:
            continue
        props = c["properties"]
        leads.append(_lead(cid, props))
        if cid in primary_company:
            leads[-1]["externalCompanyId"] = primary_company[cid]
        owner_of_email.setdefault(props["email"].lower(), int(cid))
        if props.get("lifecyclestage") == "salesqualifiedlead":
            changes.append(
                {
                    "leadId": int(cid),
                    "at": props.get("lastmodifieddate") or props["createdate"],
                    "field": "leadStatus",
                    "value": STAGE_STATUS["salesqualifiedlead"],
                    "source": "Sales",
                }
            )
    activities: list[dict[str, Any]] = []
    for ev in portal["events"]:
        owner = absorbed.get(ev["objectId"], ev["objectId"])
        activities.append(_web_activity(ev, int(owner)))
    for ev in portal["email_events"]:
        lead_id = owner_of_email.get(ev["recipient"].lower())
        if lead_id is not None:
            activities.append(_mail_activity(ev, lead_id))
    deleted: list[dict[str, Any]] = []
    anchor = datetime.fromisoformat(portal["anchor"].replace("Z", "+00:00"))
    for cid in sorted(archived):
        if cid in by_id:
            at = anchor.replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=5)
            deleted.append({"leadId": int(cid), "at": at.strftime("%Y-%m-%dT%H:%M:%SZ")})
    activities.sort(key=lambda a: (a["activityDate"], a["marketoGUID"]))
    return {
        "munchkin_id": MUNCHKIN_ID,
        "anchor": portal["anchor"],
        "fields": CUSTOM_FIELDS,
        "activity_types": activity_types_json(),
        "leads": leads,
        "changes": changes,
        "activities": activities,
        "deleted": deleted,
        "companies": [_company(co) for co in portal.get("companies", [])],
    }


def external_company_id(hubspot_company_id: str) -> str:
    return f"ACC-{hubspot_company_id}"


def _company(co: dict[str, Any]) -> dict[str, Any]:
    props = co["properties"]
    out: dict[str, Any] = {
        "id": int(co["id"]),
        "externalCompanyId": external_company_id(co["id"]),
        "company": props["name"],
    }
    if props.get("domain"):
        out["website"] = f"https://www.{props['domain']}"
    out["numberOfEmployees"] = int(props["numberofemployees"])
    out["industry"] = industry_words(props["industry"])  # Marketo's is text: the words
    if props.get("annualrevenue"):
        out["annualRevenue"] = float(props["annualrevenue"])
    out["billingCountry"] = props["country"]
    out["createdAt"] = props["createdate"]
    out["updatedAt"] = props["hs_lastmodifieddate"]
    return out


def build_instance(
    n_leads: int,
    activities_per_lead: int = 2,
    seed: int = 1,
    *,
    anchor: str = ANCHOR,
    created_within_days: int = 120,
    first_id: int = 1,
) -> dict[str, Any]:
    """A large plain instance: leads ``first_id``.. created within ``created_within_days``
    before the anchor, ``activities_per_lead`` page views each within the last 30 days."""
    rng = random.Random(seed)
    anchor_dt = datetime.fromisoformat(anchor.replace("Z", "+00:00")).astimezone(UTC)
    domains = [*COMPANY_DOMAINS, *FREE_DOMAINS]
    leads: list[dict[str, Any]] = []
    activities: list[dict[str, Any]] = []

    def iso(dt: datetime) -> str:
        return dt.strftime("%Y-%m-%dT%H:%M:%SZ")

    for i in range(n_leads):
        lid = first_id + i
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        domain = domains[i % len(domains)]
        created = anchor_dt - timedelta(seconds=rng.randint(3600, created_within_days * 86_400))
        leads.append(
            {
                "id": lid,
                "email": f"{first}.{last}.{lid}@{domain}".lower().replace("'", ""),
                "firstName": first,
                "lastName": last,
                "title": rng.choice(TITLES),
                "company": COMPANY_DOMAINS.get(domain),
                "leadStatus": "Open",
                "createdAt": iso(created),
                "updatedAt": iso(created),
            }
        )
        for _ in range(activities_per_lead):
            path = rng.choice(("/blog/lead-scoring-101", "/product/scoring", "/pricing", "/docs"))
            at = anchor_dt - timedelta(seconds=rng.randint(60, 30 * 86_400))
            activities.append(
                {
                    "marketoGUID": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "leadId": lid,
                    "activityDate": iso(at),
                    "activityTypeId": 1,
                    "primaryAttributeValueId": _page_id(path),
                    "primaryAttributeValue": HOST + path,
                    "attributes": {"Webpage URL": path, "Referrer URL": ""},
                }
            )
    activities.sort(key=lambda a: (a["activityDate"], a["marketoGUID"]))
    return {
        "munchkin_id": MUNCHKIN_ID,
        "anchor": anchor,
        "fields": CUSTOM_FIELDS,
        "activity_types": activity_types_json(),
        "leads": leads,
        "changes": [],
        "activities": activities,
        "deleted": [],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the Marketo demo instance fixture (JSON).")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--extra-contacts", type=int, default=40)
    args = parser.parse_args(argv)
    sys.stdout.write(dumps_fixture(build_demo_instance(args.seed, args.extra_contacts)))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
