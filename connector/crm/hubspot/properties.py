"""What the HubSpot adapter declares: the private-app scopes it needs, the properties it creates
(contacts and companies, group `lead_scoring`) and the property lists it reads.

Every property declaration lives here; `schema.py` creates and checks them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from connector.crm.base import (
    CHECKED_PROPERTIES,
    CONTACT_ACCOUNT_PROPERTIES,
    STAGE,
)

# The private-app scopes our calls need, named once: the README ("Connect your portal"),
# config/leadscore.env.example, the missing-token error and the 401/403 error all say these.
REQUIRED_SCOPES = (
    "crm.objects.contacts.read",  # search, read and batch-read contacts
    "crm.objects.contacts.write",  # batch-update our properties and the lifecycle stage
    "crm.schemas.contacts.read",  # list the properties (checked before every sync)
    "crm.schemas.contacts.write",  # create the lead_scoring group and properties
    "content",  # marketing e-mail events (GET /email/public/v1/events)
)
# Account-based scoring (LEADSCORE_ACCOUNTS) reads and writes companies too.
ACCOUNT_SCOPES = (
    "crm.objects.companies.read",  # search companies, read associations
    "crm.objects.companies.write",  # batch-update the account properties
    "crm.schemas.companies.read",  # check the company properties
    "crm.schemas.companies.write",  # create the company lead_scoring group and properties
)
# Asked for when present: without it (or below Enterprise) engagement comes from roll-ups.
OPTIONAL_SCOPES = ("analytics.behavioral_events.read",)  # events API (GET /events/v3/events)


def scopes_text() -> str:
    return (
        " ".join(REQUIRED_SCOPES)
        + " (and "
        + " ".join(OPTIONAL_SCOPES)
        + " for the events API on Enterprise portals)"
    )


GROUP = "lead_scoring"
# our property name → (HubSpot internal name, label, type, fieldType, options)
PROPERTY_NAMES: dict[str, str] = {
    "score": "leadscore_score",
    "grade": "leadscore_grade",
    "fit_score": "leadscore_fit_score",
    "reasons": "leadscore_reasons",
    "model_version": "leadscore_model_version",
    "scored_at": "leadscore_scored_at",
    "mql_reason": "leadscore_mql_reason",
    "profile_mismatch": "leadscore_profile_mismatch",
    "priority": "leadscore_priority",
    STAGE: "lifecyclestage",
    "company_name": "company",
    "company_industry": "industry",
    "company_country": "country",
    "account_score": "leadscore_account_score",
    "account_grade": "leadscore_account_grade",
}
PROPERTY_DEFS: list[dict[str, Any]] = [
    {
        "name": "leadscore_score",
        "label": "Lead score (engagement)",
        "type": "number",
        "fieldType": "number",
    },
    {
        "name": "leadscore_grade",
        "label": "Lead grade (profile A-D)",
        "type": "enumeration",
        "fieldType": "select",
        "options": [{"label": g, "value": g, "displayOrder": i} for i, g in enumerate("ABCD")],
    },
    {
        "name": "leadscore_fit_score",
        "label": "Lead fit points",
        "type": "number",
        "fieldType": "number",
    },
    {
        "name": "leadscore_reasons",
        "label": "Lead score reasons",
        "type": "string",
        "fieldType": "textarea",
    },
    {
        "name": "leadscore_model_version",
        "label": "Lead score model version",
        "type": "string",
        "fieldType": "text",
    },
    {
        "name": "leadscore_scored_at",
        "label": "Lead scored at",
        "type": "datetime",
        "fieldType": "date",
    },
    {"name": "leadscore_mql_reason", "label": "MQL reason", "type": "string", "fieldType": "text"},
    {
        "name": "leadscore_profile_mismatch",
        "label": "Behaviour yes, profile no",
        "type": "enumeration",
        "fieldType": "booleancheckbox",
        "options": [
            {"label": "Yes", "value": "true", "displayOrder": 0},
            {"label": "No", "value": "false", "displayOrder": 1},
        ],
    },
]

PRIORITY_PROPERTY = "leadscore_priority"
# the labels of the default model's bands (1: score 100+, 2: 50+, 3: below), best first
DEFAULT_PRIORITY_LABELS: tuple[str, ...] = tuple(g + b for g in "ABCD" for b in "123")


def priority_property(labels: Sequence[str]) -> dict[str, Any]:
    """The priority property (grade + engagement band): an enumeration of the model's labels,
    best first, so that a view sorts A1 first."""
    return {
        "name": PRIORITY_PROPERTY,
        "label": "Lead priority (grade + engagement)",
        "type": "enumeration",
        "fieldType": "select",
        "options": [{"label": v, "value": v, "displayOrder": i} for i, v in enumerate(labels)],
    }


PROPERTY_DEFS.append(priority_property(DEFAULT_PRIORITY_LABELS))

_GRADE_OPTIONS = [{"label": g, "value": g, "displayOrder": i} for i, g in enumerate("ABCD")]


# Named scores (a model's `scores:` list, issue 23): each writes four contact properties,
# `leadscore_<name>_score`, `_grade`, `_reasons` and `_priority`, in the lead_scoring group;
# our keys are `<name>_score`, ... (the lifecycle score keeps the names above).
def named_property_names(names: Sequence[str]) -> dict[str, str]:
    """Our keys of these named scores → HubSpot property names."""
    return {
        f"{n}_{suffix}": f"leadscore_{n}_{suffix}"
        for n in names
        for suffix in ("score", "grade", "reasons", "priority")
    }


def named_property_defs(
    names: Sequence[str],
    labels: Sequence[str],
    own: Mapping[str, Sequence[str]] | None = None,
) -> list[dict[str, Any]]:
    """The property definitions of these named scores (`labels`: the priority options;
    `own`: a named score's own options, where its bands are its own)."""
    defs: list[dict[str, Any]] = []
    for n in names:
        title = n.replace("_", " ").capitalize()
        defs += [
            {
                "name": f"leadscore_{n}_score",
                "label": f"{title} score",
                "type": "number",
                "fieldType": "number",
            },
            {
                "name": f"leadscore_{n}_grade",
                "label": f"{title} grade (profile A-D)",
                "type": "enumeration",
                "fieldType": "select",
                "options": _GRADE_OPTIONS,
            },
            {
                "name": f"leadscore_{n}_reasons",
                "label": f"{title} score reasons",
                "type": "string",
                "fieldType": "textarea",
            },
            {
                **priority_property((own or {}).get(n, labels)),
                "name": f"leadscore_{n}_priority",
                "label": f"{title} priority (grade + engagement)",
            },
        ]
    return defs


# Account scoring (issue 21): on every contact, the account's heat; on companies, the account.
CONTACT_ACCOUNT_DEFS: list[dict[str, Any]] = [
    {
        "name": "leadscore_account_score",
        "label": "Account score",
        "type": "number",
        "fieldType": "number",
    },
    {
        "name": "leadscore_account_grade",
        "label": "Account grade (A-D)",
        "type": "enumeration",
        "fieldType": "select",
        "options": _GRADE_OPTIONS,
    },
]
# our name → the company property
COMPANY_PROPERTY_NAMES: dict[str, str] = {
    "account_score": "leadscore_account_score",
    "account_grade": "leadscore_account_grade",
    "account_reasons": "leadscore_account_reasons",
    "engaged_contacts": "leadscore_engaged_contacts",
    "mqa_reason": "leadscore_mqa_reason",
    "model_version": "leadscore_model_version",
}
COMPANY_PROPERTY_DEFS: list[dict[str, Any]] = [
    *CONTACT_ACCOUNT_DEFS,
    {
        "name": "leadscore_account_reasons",
        "label": "Account score reasons",
        "type": "string",
        "fieldType": "textarea",
    },
    {
        "name": "leadscore_engaged_contacts",
        "label": "Engaged contacts",
        "type": "number",
        "fieldType": "number",
    },
    {"name": "leadscore_mqa_reason", "label": "MQA reason", "type": "string", "fieldType": "text"},
    {
        "name": "leadscore_model_version",
        "label": "Account score model version",
        "type": "string",
        "fieldType": "text",
    },
]
COMPANY_READ_PROPERTIES = [
    "name",
    "domain",
    "industry",
    "numberofemployees",
    "annualrevenue",
    "country",
    "hs_lastmodifieddate",
    "hs_object_id",
    "hs_merged_object_ids",
]

CONTACT_PROPERTIES = [
    "email",
    "firstname",
    "lastname",
    "jobtitle",
    "company",
    "country",
    "lifecyclestage",
    "hs_lead_status",
    "createdate",
    "lastmodifieddate",
    "hs_object_id",
    "hs_merged_object_ids",
    "engagements_last_meeting_booked",
    "num_associated_deals",
    "hs_email_optout",
    "industry",
    "hs_analytics_source",
    "hs_lifecyclestage_marketingqualifiedlead_date",  # the report: did an SQL go through MQL
    "leadscore_model_version",  # ours: a new state DB sees that another one scored the portal
    # when the contact entered each sales stage (calibrate: a conversion's date; the
    # last-modified time moves with every write, ours included)
    "hs_lifecyclestage_salesqualifiedlead_date",
    "hs_lifecyclestage_opportunity_date",
    "hs_lifecyclestage_customer_date",
    "first_deal_created_date",  # dates the derived deal_opened event
]

# Our own score properties, read back with the contacts (a hand-edited or emptied one is
# written again): HubSpot name → our name. Kept out of `Contact.properties`.
CHECKED_NAMES: dict[str, str] = {PROPERTY_NAMES[p]: p for p in CHECKED_PROPERTIES}
READ_PROPERTIES = CONTACT_PROPERTIES + list(CHECKED_NAMES)
# with accounts on, the account's values on the contact too, read back and checked the same way
ACCOUNT_CHECKED_NAMES: dict[str, str] = {PROPERTY_NAMES[p]: p for p in CONTACT_ACCOUNT_PROPERTIES}

# Roll-ups every plan has: read with the contacts when the events API is unavailable.
ROLLUP_PROPERTIES = [
    "hs_analytics_num_page_views",
    "hs_analytics_last_visit_timestamp",
    "first_conversion_event_name",
    "first_conversion_date",
    "recent_conversion_event_name",
    "recent_conversion_date",
]
