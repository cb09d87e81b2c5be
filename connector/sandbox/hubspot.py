"""A loopback HTTP server that behaves like the HubSpot API, for tests, demos and benchmarks.

Start it, point the official SDK at it, and read/poke the stored portal directly::

    from hubspot import HubSpot
    with HubSpotSandbox.start(portal="fixtures/hubspot_demo_portal.json", token="t") as sb:
        client = HubSpot(access_token="t", host=sb.url)      # works with hubspot-api-client 12
        client.crm.contacts.basic_api.get_by_id("101")
        sb.portal.contacts["101"].properties["lifecyclestage"]
        sb.add_event("101", "e_visited_page", {"hs_url": "https://x/pricing"})
        sb.requests[-1].status

Public API: ``HubSpotSandbox.start(portal=None, *, token="demo-token", port=0, now=None,
rate_limit=100, daily_limit=250_000, search_rate_limit=5, time_scale=1.0, faults=None,
keep_alive=False)`` -> a running sandbox (also a context manager) with ``url``, ``port``,
``portal`` (the stored :class:`Portal`: ``contacts[id].properties``, ``events``,
``email_events``, ``forms``, ``lock``, ``now_ms()``, ``advance()``), ``token`` (settable: rotate
to make the old one 401), ``faults`` (settable :class:`Faults`), ``requests`` (snapshot of the
:class:`RequestRecord` log), ``clear_log()``, ``internal_errors``, ``reset_limits()``,
``exhaust_daily_quota()``, ``stop()`` and the hooks ``add_event(contact_id, event_type,
properties, occurred_at)``, ``add_email_event(contact_id, type, occurred_at, campaign_id=, url=)``,
``submit_form(contact_id, form_name_or_id, occurred_at, page_url)``, ``set_property(contact_id,
name, value)`` (as a rep in the UI: any existing property, no stage rule), ``merge(primary,
absorbed)``, ``archive(contact_id)``, ``contact(id)``. ``portal`` may be a :class:`Portal`, a
fixture dict or a fixture path (see :func:`load_portal`); ``now`` fixes the portal clock (the
fixture is shifted by ``now - anchor``; writes are then stamped just after ``now``).
``keep_alive=False`` answers ``Connection: close`` so SDK clients never leave open sockets.

Endpoints (paths with or without a trailing slash; ``contacts`` may also be spelled ``0-1``):

* ``/crm/v3/objects/contacts``: GET list (``limit`` <= 100, ``after``, ``properties``,
  ``propertiesWithHistory``, ``archived``), POST create (409 on a duplicate e-mail),
  ``/{id}`` GET / PATCH / DELETE (``idProperty=email`` supported), ``/search``,
  ``/batch/read``, ``/batch/update``, ``/batch/create``, ``/batch/archive``, ``/merge``;
* ``/crm/v3/properties/contacts`` (+ ``/{name}``, ``/groups``, ``/groups/{name}``);
* ``/events/v3/events/`` and ``/events/v3/events/event-types``;
* ``/email/public/v1/events``; ``/marketing/v3/forms/`` (+ ``/{id}``);
  ``/form-integrations/v1/submissions/forms/{guid}``.

Behaviour worth knowing (each one is exercised in ``tests/test_sandbox_hubspot*.py``):

* Every write (create, PATCH, batch update, merge, ``set_property``, and a roll-up change caused
  by a new page view, form submission or marketing e-mail event) sets ``lastmodifieddate`` to
  the portal clock, strictly increasing per contact, even when the written values equal the
  stored ones. Custom events (``pe<portal>_*``) change no property, so they do not bump it:
  read them from the events API.
* A property deleted (archived) and created again under the same name is a new, empty property:
  no contact keeps a value of it, and none counts as modified.
* ``lifecyclestage`` only moves forward; a backward value is rejected (400 on a single PATCH,
  a per-record ``VALIDATION_ERROR`` in a batch) unless the stage is first cleared with ``""``.
  Entering a stage stamps ``hs_lifecyclestage_<stage>_date`` once.
* Read-only properties (``hs_object_id``, ``createdate``, ``lastmodifieddate``, the roll-ups,
  ``hs_merged_object_ids``, ...) reject writes with ``READ_ONLY_VALUE``.
* Batch update: 200 ``{status: "COMPLETE", results, startedAt, completedAt}`` when all inputs
  are good; otherwise **207** with ``numErrors`` and ``errors``. Good inputs in the same batch
  ARE applied. One error object per rejected record (``category`` = ``PROPERTY_DOESNT_EXIST``,
  ``INVALID_OPTION``, ``READ_ONLY_VALUE`` or ``VALIDATION_ERROR``; ``context`` =
  ``{"ids": [id], "propertyName": [...]}``), then one ``OBJECT_NOT_FOUND`` error whose
  ``context.ids`` lists every unknown/archived id. The ``message`` has the same JSON-escaped
  ``Property values were not valid: [...]`` text as a single PATCH's 400.
  Merged (absorbed) ids are resolved to the survivor (reads and writes).
* Search: ``total``, ``results``, ``paging.next.after`` (an offset). ``paging.next`` is present
  whenever more results exist - also when following it would cross the 10,000 cap, which
  answers 400. Limited to ``search_rate_limit`` requests per (scaled) second, answered with a
  429 whose ``policyName`` is ``"SECONDLY"``; search responses carry no rate-limit headers.
  Search has no index lag here (the real one lags writes by a few seconds).
* Events API: newest first unless ``sort=ASCENDING`` (also ``occurredAt`` / ``-occurredAt``);
  ``occurredAfter``/``occurredBefore`` are exclusive; ``limit`` defaults to 100 and is silently
  capped at 1000; the ``after`` cursor is keyset-based (stable while new events arrive).
  ``objectType`` in results is ``"CONTACT"``. Events of archived contacts are hidden.
* E-mail events v1: newest first, ``offset``/``hasMore`` paging, ``limit`` <= 1000;
  unsubscribes are reported with ``type: "UNSUBSCRIBED"``.
* Rate limits: ``X-HubSpot-RateLimit-Max/-Remaining/-Interval-Milliseconds/-Daily/
  -Daily-Remaining`` on every authenticated non-search response; 429 bodies are
  ``{status, message, errorType: "RATE_LIMIT", correlationId, policyName}`` with
  ``TEN_SECONDLY_ROLLING`` or ``DAILY``; no ``Retry-After`` header (as on the real API).
  ``time_scale`` multiplies every window (10 s, 1 s for search, 1 day for the daily budget).
* Faults (see :class:`connector.sandbox.base.Faults`): 500 answers a JSON body, 502/503 answer an
  HTML page as HubSpot's edge does; ``drop``/``error``/``burst_429`` are never applied,
  ``slow``/``drop_after_apply`` are applied fully before the (late or missing) answer.

What hubspot-api-client 12.0.0 does with the answers (measured against this sandbox):

* 2xx including **207**: no exception. ``batch_api.update`` returns
  ``BatchResponseSimplePublicObject`` on 200 and ``BatchResponseSimplePublicObjectWithErrors`` on
  207 (``.num_errors``, ``.errors[i].category`` / ``.context["ids"]`` / ``.message``).
  Use ``batch_api.update_with_http_info(...)`` to get ``(model, status, headers)``.
* 401 -> ``hubspot.crm.contacts.exceptions.UnauthorizedException``; 404 ->
  ``NotFoundException``; 5xx -> ``ServiceException``; 400/409/429 -> plain ``ApiException``.
  Each API package has its own classes (``hubspot.crm.properties.ApiException``,
  ``hubspot.events.ApiException``, ...), all with ``.status`` (int), ``.body`` (the response
  body as ``str``: JSON text, or HTML for 502/503) and ``.headers`` (a case-insensitive
  ``HTTPHeaderDict``; the rate-limit headers are there). Nothing is retried on a status code
  (the 429 has no ``Retry-After``).
* A dropped connection surfaces as ``urllib3.exceptions.ProtocolError`` on POST/PATCH (urllib3
  does not retry them) and, after urllib3's default 3 silent retries, as ``MaxRetryError`` on
  GET. A slow answer past ``_request_timeout`` raises ``urllib3.exceptions.ReadTimeoutError``
  (GET: ``MaxRetryError`` after retries). None of these are ``ApiException``.
"""

from __future__ import annotations

import bisect
import functools
import json
import math
import re
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

from connector.sandbox.base import (
    DailyQuota,
    FaultDecision,
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
    from_ms,
    iso_ms,
    new_correlation_id,
    parse_time_ms,
    read_fixture,
    to_ms,
)
from connector.types import LIFECYCLE_ORDER

__all__ = [
    "LEAD_STATUSES",
    "LIFECYCLE_STAGES",
    "ContactRecord",
    "EmailEvent",
    "Faults",
    "Form",
    "HubSpotApp",
    "HubSpotSandbox",
    "Portal",
    "PropertyDef",
    "PropertyGroup",
    "WebEvent",
    "load_portal",
]

DEFAULT_PORTAL_ID = 4242
DEFAULT_TOKEN = "demo-token"  # noqa: S105 - a public demo value, not a secret

LIFECYCLE_STAGES: tuple[str, ...] = (*LIFECYCLE_ORDER, "other")  # HubSpot's options, in order
LEAD_STATUSES: tuple[str, ...] = (
    "NEW",
    "OPEN",
    "IN_PROGRESS",
    "OPEN_DEAL",
    "UNQUALIFIED",
    "ATTEMPTED_TO_CONTACT",
    "CONNECTED",
    "BAD_TIMING",
)
ANALYTICS_SOURCES: tuple[str, ...] = (
    "ORGANIC_SEARCH",
    "PAID_SEARCH",
    "EMAIL_MARKETING",
    "SOCIAL_MEDIA",
    "REFERRALS",
    "OTHER_CAMPAIGNS",
    "DIRECT_TRAFFIC",
    "OFFLINE",
    "PAID_SOCIAL",
    "AI_REFERRALS",
)
EMAIL_EVENT_TYPES: tuple[str, ...] = (
    "SENT",
    "PROCESSED",
    "DELIVERED",
    "DEFERRED",
    "DROPPED",
    "BOUNCE",
    "OPEN",
    "CLICK",
    "FORWARD",
    "PRINT",
    "SPAMREPORT",
    "STATUSCHANGE",
    "UNSUBSCRIBED",
)
PAGE_VIEW = "e_visited_page"
FORM_SUBMISSION = "e_submitted_form"

# Returned when a read does not name any property.
DEFAULT_READ_PROPERTIES: tuple[str, ...] = (
    "createdate",
    "email",
    "firstname",
    "hs_object_id",
    "lastmodifieddate",
    "lastname",
)
# Always returned in addition to the requested properties.
ALWAYS_RETURNED: tuple[str, ...] = ("createdate", "hs_object_id", "lastmodifieddate")
SEARCHABLE_BY_QUERY: tuple[str, ...] = (
    "email",
    "firstname",
    "lastname",
    "phone",
    "company",
    "hs_additional_emails",
)

SEARCH_MAX_LIMIT = 200
SEARCH_MAX_RESULTS = 10_000
SEARCH_MAX_GROUPS = 5
SEARCH_MAX_FILTERS_PER_GROUP = 6
SEARCH_MAX_FILTERS = 18
BATCH_MAX = 100
OPERATORS = frozenset(
    {
        "EQ",
        "NEQ",
        "LT",
        "LTE",
        "GT",
        "GTE",
        "BETWEEN",
        "IN",
        "NOT_IN",
        "HAS_PROPERTY",
        "NOT_HAS_PROPERTY",
        "CONTAINS_TOKEN",
        "NOT_CONTAINS_TOKEN",
    }
)
PROPERTY_TYPES = {
    "string": {"text", "textarea", "select", "radio", "phonenumber", "file", "html"},
    "number": {"number", "select", "radio", "calculation_equation"},
    "date": {"date"},
    "datetime": {"date", "datetime"},
    "enumeration": {"select", "radio", "checkbox", "booleancheckbox"},
    "bool": {"booleancheckbox", "select", "radio"},
    "phone_number": {"phonenumber", "text"},
}
_PROPERTY_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
_NUMERIC_ID = re.compile(r"^\d{1,18}$")
_DAY_MS = 86_400_000


# =============================================================================================
# property catalogue
# =============================================================================================


@dataclass
class PropertyDef:
    """One contact property definition (``GET /crm/v3/properties/contacts/{name}``)."""

    name: str
    label: str
    type: str
    field_type: str
    group_name: str
    description: str = ""
    options: list[tuple[str, str]] = field(default_factory=list)  # (value, label)
    hubspot_defined: bool = False
    read_only: bool = False
    calculated: bool = False
    display_order: int = -1
    has_unique_value: bool = False
    hidden: bool = False
    form_field: bool = False
    created_ms: int = 0
    updated_ms: int = 0
    archived: bool = False

    def option_values(self) -> frozenset[str]:
        return frozenset(v for v, _ in self.options)

    def to_json(self) -> JsonDict:
        out: JsonDict = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group_name,
            "options": [
                {"label": label, "value": value, "displayOrder": i, "hidden": False}
                for i, (value, label) in enumerate(self.options)
            ],
            "displayOrder": self.display_order,
            "calculated": self.calculated,
            "externalOptions": False,
            "hasUniqueValue": self.has_unique_value,
            "hidden": self.hidden,
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only,
            },
            "formField": self.form_field,
            "createdAt": iso_ms(self.created_ms),
            "updatedAt": iso_ms(self.updated_ms),
            "archived": self.archived,
        }
        if self.hubspot_defined:
            out["hubspotDefined"] = True
        return out


@dataclass
class PropertyGroup:
    name: str
    label: str
    display_order: int = -1
    archived: bool = False

    def to_json(self) -> JsonDict:
        return {
            "name": self.name,
            "label": self.label,
            "displayOrder": self.display_order,
            "archived": self.archived,
        }


def _title(value: str) -> str:
    return value.replace("_", " ").title()


def default_groups() -> list[PropertyGroup]:
    return [
        PropertyGroup("contactinformation", "Contact information", 0),
        PropertyGroup("analyticsinformation", "Web analytics history", 1),
        PropertyGroup("emailinformation", "Email information", 2),
        PropertyGroup("conversioninformation", "Conversion information", 3),
        PropertyGroup("deal_information", "Deal information", 4),
        PropertyGroup("sales_properties", "Sales properties", 5),
    ]


# (name, label, type, fieldType, group, read-only); options are attached below.
_CI, _AN, _EM, _CV = (
    "contactinformation",
    "analyticsinformation",
    "emailinformation",
    "conversioninformation",
)
# fmt: off
_DEFAULT_PROPERTY_TABLE: tuple[tuple[str, str, str, str, str, bool], ...] = (
    ("email", "Email", "string", "text", _CI, False),
    ("firstname", "First Name", "string", "text", _CI, False),
    ("lastname", "Last Name", "string", "text", _CI, False),
    ("jobtitle", "Job Title", "string", "text", _CI, False),
    ("company", "Company Name", "string", "text", _CI, False),
    ("industry", "Industry", "string", "text", _CI, False),
    ("country", "Country/Region", "string", "text", _CI, False),
    ("city", "City", "string", "text", _CI, False),
    ("phone", "Phone Number", "string", "phonenumber", _CI, False),
    ("website", "Website URL", "string", "text", _CI, False),
    ("hs_additional_emails", "Additional email addresses", "enumeration", "checkbox", _CI, True),
    ("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", _CI, False),
    ("hs_lead_status", "Lead Status", "enumeration", "radio", "sales_properties", False),
    ("hubspot_owner_id", "Contact owner", "string", "text", "sales_properties", False),
    ("createdate", "Create Date", "datetime", "date", _CI, True),
    ("lastmodifieddate", "Last Modified Date", "datetime", "date", _CI, True),
    ("hs_object_id", "Record ID", "number", "number", _CI, True),
    ("hs_merged_object_ids", "Merged Contact IDs", "enumeration", "checkbox", _CI, True),
    ("num_associated_deals", "Number of Associated Deals", "number", "number",
     "deal_information", True),
    ("engagements_last_meeting_booked", "Date of last meeting booked in meetings tool",
     "datetime", "date", "sales_properties", True),
    ("hs_analytics_num_page_views", "Number of Pageviews", "number", "number", _AN, True),
    ("hs_analytics_num_visits", "Number of Sessions", "number", "number", _AN, True),
    ("hs_analytics_first_visit_timestamp", "Time of First Session", "datetime", "date", _AN,
     True),
    ("hs_analytics_last_visit_timestamp", "Time of Last Session", "datetime", "date", _AN,
     True),
    ("hs_analytics_source", "Original Traffic Source", "enumeration", "select", _AN, True),
    ("hs_analytics_first_referrer", "First Referring Site", "string", "text", _AN, True),
    ("hs_analytics_last_referrer", "Last Referring Site", "string", "text", _AN, True),
    ("hs_analytics_first_url", "First Page Seen", "string", "text", _AN, True),
    ("num_conversion_events", "Number of Form Submissions", "number", "number", _CV, True),
    ("num_unique_conversion_events", "Number of Unique Forms Submitted", "number", "number",
     _CV, True),
    ("first_conversion_event_name", "First Conversion", "string", "text", _CV, True),
    ("first_conversion_date", "First Conversion Date", "datetime", "date", _CV, True),
    ("recent_conversion_event_name", "Recent Conversion", "string", "text", _CV, True),
    ("recent_conversion_date", "Recent Conversion Date", "datetime", "date", _CV, True),
    ("hs_email_delivered", "Marketing emails delivered", "number", "number", _EM, True),
    ("hs_email_open", "Marketing emails opened", "number", "number", _EM, True),
    ("hs_email_click", "Marketing emails clicked", "number", "number", _EM, True),
    ("hs_email_bounce", "Marketing emails bounced", "number", "number", _EM, True),
    ("hs_email_optout", "Unsubscribed from all email", "bool", "booleancheckbox", _EM, True),
    ("hs_email_last_open_date", "Last marketing email open date", "datetime", "date", _EM,
     True),
    ("hs_email_last_click_date", "Last marketing email click date", "datetime", "date", _EM,
     True),
)
# fmt: on
_STAGE_LABELS = {
    "marketingqualifiedlead": "Marketing Qualified Lead",
    "salesqualifiedlead": "Sales Qualified Lead",
}


def default_properties(created_ms: int) -> list[PropertyDef]:
    """HubSpot's default contact properties that the connector and its tests rely on."""
    stages = [(s, _STAGE_LABELS.get(s, _title(s))) for s in LIFECYCLE_STAGES]
    options: dict[str, list[tuple[str, str]]] = {
        "lifecyclestage": stages,
        "hs_lead_status": [(s, _title(s.lower())) for s in LEAD_STATUSES],
        "hs_analytics_source": [(s, _title(s.lower())) for s in ANALYTICS_SOURCES],
        "hs_email_optout": [("true", "True"), ("false", "False")],
    }
    table = list(_DEFAULT_PROPERTY_TABLE)
    table += [
        (f"hs_lifecyclestage_{s}_date", f"Date entered '{label}'", "datetime", "date", _CI, True)
        for s, label in stages
    ]
    return [
        PropertyDef(
            name=name,
            label=label,
            type=ptype,
            field_type=ftype,
            group_name=group,
            description=f"HubSpot default property: {label}.",
            options=list(options.get(name, [])),
            hubspot_defined=True,
            read_only=read_only,
            calculated=read_only,
            display_order=i,
            has_unique_value=name == "hs_object_id",
            form_field=group == _CI and not read_only,
            created_ms=created_ms,
            updated_ms=created_ms,
        )
        for i, (name, label, ptype, ftype, group, read_only) in enumerate(table)
    ]


ROLLUP_PROPERTIES: tuple[str, ...] = (
    "hs_analytics_num_page_views",
    "hs_analytics_num_visits",
    "hs_analytics_first_visit_timestamp",
    "hs_analytics_last_visit_timestamp",
    "hs_analytics_source",
    "hs_analytics_first_referrer",
    "hs_analytics_last_referrer",
    "hs_analytics_first_url",
    "num_conversion_events",
    "num_unique_conversion_events",
    "first_conversion_event_name",
    "first_conversion_date",
    "recent_conversion_event_name",
    "recent_conversion_date",
    "hs_email_delivered",
    "hs_email_open",
    "hs_email_click",
    "hs_email_bounce",
    "hs_email_optout",
    "hs_email_last_open_date",
    "hs_email_last_click_date",
)


# =============================================================================================
# stored records
# =============================================================================================


@dataclass(slots=True)
class ContactRecord:
    """One stored contact. ``properties`` holds strings only (as HubSpot returns them)."""

    id: str
    num_id: int
    properties: dict[str, str]
    created_ms: int
    updated_ms: int
    archived: bool = False
    archived_ms: int | None = None
    merged_into: str | None = None  # set on an absorbed contact: the survivor's id
    history: dict[str, list[tuple[str, int, str]]] = field(default_factory=dict)

    @property
    def live(self) -> bool:
        return not self.archived and self.merged_into is None

    def emails(self) -> list[str]:
        out = []
        primary = self.properties.get("email")
        if primary:
            out.append(primary.lower())
        extra = self.properties.get("hs_additional_emails")
        if extra:
            out.extend(e.lower() for e in extra.split(";") if e)
        return list(dict.fromkeys(out))


@dataclass(slots=True)
class WebEvent:
    """One event of the events API (page view, form submission or custom ``pe<portal>_*``)."""

    id: str
    event_type: str
    object_id: str
    occurred_ms: int
    properties: dict[str, str]

    @property
    def key(self) -> tuple[int, str]:
        return (self.occurred_ms, self.id)

    def to_json(self) -> JsonDict:
        return {
            "objectType": "CONTACT",
            "objectId": self.object_id,
            "eventType": self.event_type,
            "occurredAt": iso_ms(self.occurred_ms),
            "id": self.id,
            "properties": dict(self.properties),
        }


@dataclass(slots=True)
class EmailEvent:
    """One marketing e-mail event (``GET /email/public/v1/events``)."""

    id: str
    type: str
    recipient: str
    created_ms: int
    campaign_id: int
    url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[int, str]:
        return (self.created_ms, self.id)

    def to_json(self, portal_id: int) -> JsonDict:
        out: JsonDict = {
            "id": self.id,
            "type": self.type,
            "recipient": self.recipient,
            "created": self.created_ms,
            "emailCampaignId": self.campaign_id,
            "portalId": portal_id,
            "appId": 113,
            "appName": "Batch",
            "sentBy": {"id": f"sent-{self.campaign_id}", "created": self.created_ms},
        }
        if self.url is not None:
            out["url"] = self.url
        if self.type == "BOUNCE":
            out.setdefault("category", "HARD_BOUNCE")
        out.update(self.extra)
        return out


@dataclass
class Form:
    id: str
    name: str
    created_ms: int
    updated_ms: int
    fields: list[str] = field(default_factory=lambda: ["email", "firstname", "lastname"])
    archived: bool = False

    def to_json(self) -> JsonDict:
        """A full ``hubspot`` form definition (deserializes as the SDK's form models)."""
        field_defs = []
        for name in self.fields:
            field_defs.append(
                {
                    "objectTypeId": "0-1",
                    "name": name,
                    "label": _title(name),
                    "required": name == "email",
                    "hidden": False,
                    "fieldType": "email" if name == "email" else "single_line_text",
                    "validation": {
                        "blockedEmailDomains": [],
                        "useDefaultBlockList": False,
                    }
                    if name == "email"
                    else None,
                    "dependentFields": [],
                }
            )
        for f in field_defs:
            if f["validation"] is None:
                del f["validation"]
        return {
            "id": self.id,
            "name": self.name,
            "formType": "hubspot",
            "createdAt": iso_ms(self.created_ms),
            "updatedAt": iso_ms(self.updated_ms),
            "archived": self.archived,
            "fieldGroups": [
                {"groupType": "default_group", "richTextType": "text", "fields": [f]}
                for f in field_defs
            ],
            "configuration": {
                "language": "en",
                "cloneable": True,
                "postSubmitAction": {"type": "thank_you", "value": "Thanks!"},
                "editable": True,
                "archivable": True,
                "recaptchaEnabled": False,
                "notifyContactOwner": False,
                "notifyRecipients": [],
                "createNewContactForNewEmail": False,
                "prePopulateKnownValues": True,
                "allowLinkToResetKnownValues": False,
                "lifecycleStages": [],
            },
            "displayOptions": {
                "renderRawHtml": False,
                "theme": "default_style",
                "submitButtonText": "Submit",
                "style": {
                    "fontFamily": "arial, helvetica, sans-serif",
                    "backgroundWidth": "100%",
                    "labelTextColor": "#33475b",
                    "labelTextSize": "14px",
                    "helpTextColor": "#7C98B6",
                    "helpTextSize": "11px",
                    "legalConsentTextColor": "#33475b",
                    "legalConsentTextSize": "14px",
                    "submitColor": "#ff7a59",
                    "submitAlignment": "left",
                    "submitFontColor": "#ffffff",
                    "submitSize": "12px",
                },
                "cssClass": "",
            },
            "legalConsentOptions": {"type": "none"},
        }


@dataclass(frozen=True, slots=True)
class PropProblem:
    name: str
    code: str  # PROPERTY_DOESNT_EXIST, INVALID_OPTION, READ_ONLY_VALUE, ...
    message: str


class LookupFailed(Exception):
    """A merge/hook named a contact that does not exist (or is archived)."""


class BadRequest(Exception):
    """A request is malformed; ``response`` is the HubSpot-shaped answer."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def _deterministic_id(portal_id: int, kind: str, seq: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"hubspot-sandbox:{portal_id}:{kind}:{seq}"))


@functools.lru_cache(maxsize=262_144)
def _value_ms(value: str) -> int | None:
    try:
        return parse_time_ms(value)
    except ValueError:
        return None


def _classify_source(referrer: str, url: str) -> str:
    query = urlsplit(url).query.lower()
    if "gclid=" in query or "utm_medium=cpc" in query or "utm_medium=ppc" in query:
        return "PAID_SEARCH"
    if "utm_medium=email" in query:
        return "EMAIL_MARKETING"
    host = (urlsplit(referrer).hostname or "").lower()
    if not host:
        return "DIRECT_TRAFFIC"
    if any(s in host for s in ("google.", "bing.", "duckduckgo.", "yahoo.", "ecosia.", "baidu.")):
        return "ORGANIC_SEARCH"
    social = ("linkedin.", "facebook.", "twitter.", "t.co", "x.com", "instagram.", "reddit.")
    if any(s in host for s in social):
        return "SOCIAL_MEDIA"
    if any(s in host for s in ("chatgpt.", "openai.", "perplexity.", "gemini.google", "claude.")):
        return "AI_REFERRALS"
    return "REFERRALS"


# =============================================================================================
# the portal (all state, all mutations; thread-safe through ``lock``)
# =============================================================================================


class Portal:
    """The stored HubSpot portal. Tests may read it directly; take ``lock`` to mutate.

    The portal has its own clock: ``now_ms()`` = real time + ``clock_offset_ms``. Loading a
    fixture with a fixed ``now`` sets the offset so that writes made during the test land just
    after that ``now`` (``advance()`` moves it forward).
    """

    def __init__(self, portal_id: int = DEFAULT_PORTAL_ID, now: datetime | None = None) -> None:
        self.portal_id = portal_id
        self.lock = threading.RLock()
        self.clock_offset_ms = 0 if now is None else to_ms(now) - int(time.time() * 1000)
        created = self.now_ms()
        self.properties: dict[str, PropertyDef] = {p.name: p for p in default_properties(created)}
        self.groups: dict[str, PropertyGroup] = {g.name: g for g in default_groups()}
        self.contacts: dict[str, ContactRecord] = {}
        self.events: list[WebEvent] = []
        self.events_by_contact: dict[str, list[WebEvent]] = defaultdict(list)
        self.events_by_type: dict[str, list[WebEvent]] = defaultdict(list)
        self.email_events: list[EmailEvent] = []
        self.email_by_recipient: dict[str, list[EmailEvent]] = defaultdict(list)
        self.forms: dict[str, Form] = {}
        self._by_email: dict[str, str] = {}
        self._next_id = 1
        self._seq = 0
        self._live: list[ContactRecord] | None = None
        self._live_ids: list[int] = []

    # -- clock ---------------------------------------------------------------------------------
    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.clock_offset_ms

    def now(self) -> datetime:
        return from_ms(self.now_ms())

    def advance(self, seconds: float) -> None:
        """Move the portal clock forward (e.g. to let events age)."""
        with self.lock:
            self.clock_offset_ms += int(seconds * 1000)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # -- lookups -------------------------------------------------------------------------------
    def resolve(self, contact_id: str, include_archived: bool = False) -> ContactRecord | None:
        """The live record for an id; absorbed ids resolve to their survivor."""
        rec = self.contacts.get(str(contact_id))
        for _ in range(100):
            if rec is None or rec.merged_into is None:
                break
            rec = self.contacts.get(rec.merged_into)
        if rec is None or rec.merged_into is not None:
            return None
        if rec.archived and not include_archived:
            return None
        return rec

    def by_email(self, email: str) -> ContactRecord | None:
        cid = self._by_email.get(email.strip().lower())
        return self.resolve(cid) if cid else None

    def live_contacts(self) -> list[ContactRecord]:
        """Live (not archived, not absorbed) contacts sorted by numeric id. Cached."""
        if self._live is None:
            live = [c for c in self.contacts.values() if c.live]
            live.sort(key=lambda c: c.num_id)
            self._live = live
            self._live_ids = [c.num_id for c in live]
        return self._live

    def live_ids(self) -> list[int]:
        self.live_contacts()
        return self._live_ids

    def _dirty(self) -> None:
        self._live = None

    def form_by_name_or_id(self, key: str) -> Form | None:
        if key in self.forms:
            return self.forms[key]
        for f in self.forms.values():
            if f.name == key:
                return f
        return None

    # -- validation ----------------------------------------------------------------------------
    def validate_writes(
        self, rec: ContactRecord | None, props: Mapping[str, Any], *, allow_read_only: bool = False
    ) -> tuple[dict[str, str], list[PropProblem]]:
        """Normalize values to strings; list every problem. Raises BadRequest on wrong types."""
        values: dict[str, str] = {}
        problems: list[PropProblem] = []
        for name, raw in props.items():
            if not isinstance(name, str):
                raise BadRequest(_error(400, "Property names must be strings", "VALIDATION_ERROR"))
            if isinstance(raw, dict | list):
                raise BadRequest(
                    _error(
                        400,
                        f"Invalid input JSON: property '{name}' must be a string, number or "
                        f"boolean, not {type(raw).__name__}",
                        "VALIDATION_ERROR",
                    )
                )
            pdef = self.properties.get(name)
            if pdef is None or pdef.archived:
                problems.append(
                    PropProblem(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
                )
                continue
            if pdef.read_only and not allow_read_only:
                problems.append(
                    PropProblem(
                        name, "READ_ONLY_VALUE", f'Property "{name}" is a read-only property'
                    )
                )
                continue
            value, problem = _normalize_value(pdef, raw)
            if problem is not None:
                problems.append(problem)
                continue
            assert value is not None
            if name == "lifecyclestage" and rec is not None and value:
                current = rec.properties.get("lifecyclestage", "")
                if current and _stage_rank(value) < _stage_rank(current):
                    problems.append(
                        PropProblem(
                            name,
                            "LIFECYCLE_STAGE_BACKWARD",
                            f'lifecyclestage cannot move backward from "{current}" to '
                            f'"{value}"; set it to "" first',
                        )
                    )
                    continue
            values[name] = value
        return values, problems

    # -- mutations -----------------------------------------------------------------------------
    def _touch(self, rec: ContactRecord, at_ms: int | None = None) -> None:
        ms = max(self.now_ms() if at_ms is None else at_ms, rec.updated_ms + 1)
        rec.updated_ms = ms
        rec.properties["lastmodifieddate"] = iso_ms(ms)

    def _set(self, rec: ContactRecord, name: str, value: str, source: str, ms: int) -> bool:
        old = rec.properties.get(name)
        if old == value:
            return False
        rec.properties[name] = value
        rec.history.setdefault(name, []).append((value, ms, source))
        if name == "email":
            if old:
                self._by_email.pop(old.lower(), None)
            if value:
                self._by_email.setdefault(value.lower(), rec.id)
        if name == "lifecyclestage" and value:
            stamp = f"hs_lifecyclestage_{value}_date"
            if stamp in self.properties and not rec.properties.get(stamp):
                rec.properties[stamp] = iso_ms(ms)
        return True

    def apply(
        self, rec: ContactRecord, values: Mapping[str, str], source: str = "INTEGRATION"
    ) -> None:
        """Write already-validated values and bump lastmodifieddate (always, like HubSpot)."""
        with self.lock:
            ms = self.now_ms()
            for name, value in values.items():
                self._set(rec, name, value, source, ms)
            if "email" in values or "hs_additional_emails" in values:
                self.recompute_rollups(rec, touch=False)
            self._touch(rec, ms)  # one instant for the write and its stage stamp

    def create_contact(
        self,
        values: Mapping[str, str],
        *,
        contact_id: str | None = None,
        created_ms: int | None = None,
    ) -> ContactRecord:
        with self.lock:
            if contact_id is None:
                contact_id = str(self._next_id)
            num = int(contact_id)
            self._next_id = max(self._next_id, num + 1)
            ms = self.now_ms() if created_ms is None else created_ms
            rec = ContactRecord(
                id=contact_id, num_id=num, properties={}, created_ms=ms, updated_ms=ms
            )
            for name, value in values.items():
                if value != "":
                    rec.properties[name] = value
            rec.properties["hs_object_id"] = contact_id
            rec.properties["createdate"] = iso_ms(ms)
            rec.properties["lastmodifieddate"] = iso_ms(ms)
            stage = rec.properties.get("lifecyclestage")
            if stage and f"hs_lifecyclestage_{stage}_date" in self.properties:
                rec.properties.setdefault(f"hs_lifecyclestage_{stage}_date", iso_ms(ms))
            self.contacts[contact_id] = rec
            email = rec.properties.get("email")
            if email:
                self._by_email.setdefault(email.lower(), contact_id)
            self._dirty()
            return rec

    def archive(self, contact_id: str, *, touch: bool = True) -> ContactRecord | None:
        with self.lock:
            rec = self.resolve(contact_id)
            if rec is None:
                return None
            rec.archived = True
            rec.archived_ms = self.now_ms()
            if touch:
                self._touch(rec)
            for email in rec.emails():
                if self._by_email.get(email) == rec.id:
                    del self._by_email[email]
            self._dirty()
            return rec

    def merge(self, primary_id: str, absorbed_id: str, *, touch: bool = True) -> ContactRecord:
        """Merge ``absorbed_id`` into ``primary_id``; returns the survivor."""
        with self.lock:
            primary = self.resolve(primary_id)
            absorbed = self.resolve(absorbed_id)
            if primary is None:
                raise LookupFailed(primary_id)
            if absorbed is None:
                raise LookupFailed(absorbed_id)
            if primary.id == absorbed.id:
                raise ValueError("cannot merge a contact with itself")
            ms = self.now_ms()
            keep_stage = max(
                primary.properties.get("lifecyclestage", ""),
                absorbed.properties.get("lifecyclestage", ""),
                key=_stage_rank,
            )
            for name, value in absorbed.properties.items():
                pdef = self.properties.get(name)
                if pdef is None or pdef.read_only or name == "email":
                    continue
                if value and not primary.properties.get(name):
                    self._set(primary, name, value, "MERGE", ms)
            if keep_stage:
                primary.properties["lifecyclestage"] = keep_stage
            merged = [i for i in primary.properties.get("hs_merged_object_ids", "").split(";") if i]
            merged += [absorbed.id]
            merged += [
                i for i in absorbed.properties.get("hs_merged_object_ids", "").split(";") if i
            ]
            primary.properties["hs_merged_object_ids"] = ";".join(dict.fromkeys(merged))
            extra = [e for e in absorbed.emails() if e not in primary.emails()]
            if extra:
                current = [
                    e for e in primary.properties.get("hs_additional_emails", "").split(";") if e
                ]
                primary.properties["hs_additional_emails"] = ";".join(
                    dict.fromkeys(current + extra)
                )
            for email in absorbed.emails():
                self._by_email[email] = primary.id
            absorbed.merged_into = primary.id
            for other in self.contacts.values():
                if other.merged_into == absorbed.id:
                    other.merged_into = primary.id
            moved = self.events_by_contact.pop(absorbed.id, [])
            if moved:
                for ev in moved:
                    ev.object_id = primary.id
                target = self.events_by_contact[primary.id]
                target.extend(moved)
                target.sort(key=lambda e: e.key)
            self.recompute_rollups(primary, touch=False)
            if touch:
                self._touch(primary)
            self._dirty()
            return primary

    def _insert_event(self, ev: WebEvent) -> None:
        for bucket in (
            self.events,
            self.events_by_contact[ev.object_id],
            self.events_by_type[ev.event_type],
        ):
            bisect.insort(bucket, ev, key=lambda e: e.key)

    def add_event(
        self,
        contact_id: str,
        event_type: str,
        properties: Mapping[str, object] | None = None,
        occurred_ms: int | None = None,
        *,
        event_id: str | None = None,
        touch: bool = True,
    ) -> WebEvent:
        """Record an event, recompute roll-ups, bump lastmodifieddate if a roll-up changed."""
        with self.lock:
            rec = self.resolve(contact_id)
            if rec is None:
                raise LookupFailed(contact_id)
            props = {str(k): "" if v is None else str(v) for k, v in (properties or {}).items()}
            if event_type == FORM_SUBMISSION:
                form = self.form_by_name_or_id(props.get("hs_form_id", "")) or (
                    self.form_by_name_or_id(props.get("hs_form_title", ""))
                )
                if form is not None:
                    props["hs_form_id"] = form.id
                    props.setdefault("hs_form_title", form.name)
            ev = WebEvent(
                id=event_id or _deterministic_id(self.portal_id, "event", self._next_seq()),
                event_type=event_type,
                object_id=rec.id,
                occurred_ms=self.now_ms() if occurred_ms is None else occurred_ms,
                properties=props,
            )
            self._insert_event(ev)
            if event_type in (PAGE_VIEW, FORM_SUBMISSION):
                self.recompute_rollups(rec, touch=touch)
            return ev

    def add_email_event(
        self,
        recipient: str,
        event_type: str,
        created_ms: int | None = None,
        *,
        campaign_id: int = 1001,
        url: str | None = None,
        event_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
        touch: bool = True,
    ) -> EmailEvent:
        with self.lock:
            ev = EmailEvent(
                id=event_id or _deterministic_id(self.portal_id, "email", self._next_seq()),
                type=event_type.upper(),
                recipient=recipient,
                created_ms=self.now_ms() if created_ms is None else created_ms,
                campaign_id=campaign_id,
                url=url,
                extra=dict(extra or {}),
            )
            bisect.insort(self.email_events, ev, key=lambda e: e.key)
            bisect.insort(self.email_by_recipient[recipient.lower()], ev, key=lambda e: e.key)
            rec = self.by_email(recipient)
            if rec is not None:
                self.recompute_rollups(rec, touch=touch)
            return ev

    def set_property(
        self, contact_id: str, name: str, value: object, source: str = "CRM_UI"
    ) -> None:
        """Set a property as a rep would in the UI: any existing property, no stage rule."""
        with self.lock:
            rec = self.resolve(contact_id)
            if rec is None:
                raise LookupFailed(contact_id)
            values, problems = self.validate_writes(None, {name: value}, allow_read_only=True)
            if problems:
                raise ValueError("; ".join(p.message for p in problems))
            self.apply(rec, values, source)

    # -- roll-ups ------------------------------------------------------------------------------
    def compute_rollups(self, rec: ContactRecord) -> dict[str, str | None]:
        evs = self.events_by_contact.get(rec.id, [])
        views = [e for e in evs if e.event_type == PAGE_VIEW]
        forms = [e for e in evs if e.event_type == FORM_SUBMISSION]
        mails: list[EmailEvent] = []
        for email in rec.emails():
            mails.extend(self.email_by_recipient.get(email, ()))
        mails.sort(key=lambda e: e.key)
        out: dict[str, str | None] = {
            "hs_analytics_num_page_views": str(len(views)),
            "hs_analytics_num_visits": str(len({e.occurred_ms // _DAY_MS for e in views})),
            "num_conversion_events": str(len(forms)),
            "num_unique_conversion_events": str(
                len(
                    {
                        e.properties.get("hs_form_id") or e.properties.get("hs_form_title")
                        for e in forms
                    }
                )
            ),
        }
        if views:
            first, last = views[0], views[-1]
            out["hs_analytics_first_visit_timestamp"] = iso_ms(first.occurred_ms)
            out["hs_analytics_last_visit_timestamp"] = iso_ms(last.occurred_ms)
            out["hs_analytics_first_url"] = first.properties.get("hs_url", "")
            out["hs_analytics_first_referrer"] = first.properties.get("hs_referrer", "")
            out["hs_analytics_last_referrer"] = last.properties.get("hs_referrer", "")
            out["hs_analytics_source"] = _classify_source(
                first.properties.get("hs_referrer", ""), first.properties.get("hs_url", "")
            )
        elif not rec.properties.get("hs_analytics_source"):
            out["hs_analytics_source"] = "OFFLINE"
        if forms:
            out["first_conversion_event_name"] = _form_title(forms[0])
            out["first_conversion_date"] = iso_ms(forms[0].occurred_ms)
            out["recent_conversion_event_name"] = _form_title(forms[-1])
            out["recent_conversion_date"] = iso_ms(forms[-1].occurred_ms)
        counts = {"DELIVERED": 0, "OPEN": 0, "CLICK": 0, "BOUNCE": 0}
        last_open = last_click = None
        optout = False
        for m in mails:
            if m.type in counts:
                counts[m.type] += 1
            if m.type == "OPEN":
                last_open = m.created_ms
            elif m.type == "CLICK":
                last_click = m.created_ms
            elif m.type == "UNSUBSCRIBED" or (
                m.type == "STATUSCHANGE" and m.extra.get("subscribed") is False
            ):
                optout = True
        out["hs_email_delivered"] = str(counts["DELIVERED"])
        out["hs_email_open"] = str(counts["OPEN"])
        out["hs_email_click"] = str(counts["CLICK"])
        out["hs_email_bounce"] = str(counts["BOUNCE"])
        out["hs_email_optout"] = "true" if optout else "false"
        if last_open is not None:
            out["hs_email_last_open_date"] = iso_ms(last_open)
        if last_click is not None:
            out["hs_email_last_click_date"] = iso_ms(last_click)
        return out

    def last_activity_ms(self, rec: ContactRecord) -> int:
        latest = 0
        for ev in reversed(self.events_by_contact.get(rec.id, [])):
            if ev.event_type in (PAGE_VIEW, FORM_SUBMISSION):
                latest = ev.occurred_ms
                break
        for email in rec.emails():
            mails = self.email_by_recipient.get(email)
            if mails:
                latest = max(latest, mails[-1].created_ms)
        return latest

    def recompute_rollups(self, rec: ContactRecord, *, touch: bool = True) -> bool:
        """Bring the roll-up properties in line with the events; True if anything changed."""
        with self.lock:
            changed = False
            ms = self.now_ms()
            for name, value in self.compute_rollups(rec).items():
                if value is None:
                    continue
                if self._set(rec, name, value, "ANALYTICS", ms):
                    changed = True
            if changed and touch:
                self._touch(rec)
            return changed


def _form_title(ev: WebEvent) -> str:
    return ev.properties.get("hs_form_title") or ev.properties.get("hs_form_id") or "form"


def _stage_rank(stage: str) -> int:
    if not stage:
        return -1
    try:
        return LIFECYCLE_STAGES.index(stage)
    except ValueError:
        return -1


def _normalize_value(pdef: PropertyDef, raw: object) -> tuple[str | None, PropProblem | None]:
    """One value -> the string HubSpot stores, or the problem with it."""
    name = pdef.name
    if raw is None:
        return "", None
    if isinstance(raw, bool):
        text = "true" if raw else "false"
    elif isinstance(raw, int | float):
        if isinstance(raw, float) and not math.isfinite(raw):
            return None, PropProblem(name, "INVALID_NUMBER", f"{raw!r} is not a valid number")
        text = str(int(raw)) if isinstance(raw, float) and raw.is_integer() else str(raw)
    else:
        text = str(raw)
    if text == "":
        return "", None
    ptype = pdef.type
    if ptype == "enumeration":
        allowed = pdef.option_values()
        parts = text.split(";") if pdef.field_type == "checkbox" else [text]
        bad = [p for p in parts if p not in allowed]
        if bad and allowed:
            return None, PropProblem(
                name,
                "INVALID_OPTION",
                f"{bad[0]} was not one of the allowed options: [{', '.join(sorted(allowed))}]",
            )
        return text, None
    if ptype == "number":
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            return None, PropProblem(name, "INVALID_NUMBER", f"{text} is not a valid number")
        return text, None
    if ptype == "bool":
        low = text.lower()
        if low not in ("true", "false"):
            return None, PropProblem(name, "INVALID_BOOLEAN", f"{text} is not a valid boolean")
        return low, None
    if ptype in ("datetime", "date"):
        ms = _value_ms(text)
        if ms is None:
            return None, PropProblem(name, "INVALID_DATE", f"{text} is not a valid date/datetime")
        if ptype == "date":
            if ms % _DAY_MS:
                return None, PropProblem(
                    name, "INVALID_DATE", f"{text} is not midnight UTC, as a date property needs"
                )
            return iso_ms(ms)[:10], None
        return iso_ms(ms), None
    if len(text) > 65_536:
        return None, PropProblem(name, "INVALID_STRING_LENGTH", "value longer than 65536 chars")
    return text, None


def _problems_message(problems: Sequence[PropProblem], portal_id: int) -> str:
    detail = [
        {
            "isValid": False,
            "message": p.message,
            "error": p.code,
            "name": p.name,
            "localizedErrorMessage": p.message,
            "portalId": portal_id,
        }
        for p in problems
    ]
    return "Property values were not valid: " + json.dumps(detail, separators=(",", ":"))


_BATCH_CATEGORIES = frozenset({"PROPERTY_DOESNT_EXIST", "INVALID_OPTION", "READ_ONLY_VALUE"})


def _error(status: int, message: str, category: str, **extra: Any) -> Response:
    body: JsonDict = {
        "status": "error",
        "message": message,
        "correlationId": new_correlation_id(),
        "category": category,
    }
    body.update(extra)
    return Response(status, body)


# =============================================================================================
# loading fixtures
# =============================================================================================


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
         "archived": ["111"]}
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


def _property_from_spec(spec: Mapping[str, Any], created_ms: int) -> PropertyDef:
    options = [(str(o["value"]), str(o.get("label", o["value"]))) for o in spec.get("options", [])]
    return PropertyDef(
        name=spec["name"],
        label=spec.get("label", spec["name"]),
        type=spec.get("type", "string"),
        field_type=spec.get("fieldType", "text"),
        group_name=spec.get("groupName", "contactinformation"),
        description=spec.get("description", ""),
        options=options,
        display_order=int(spec.get("displayOrder", -1)),
        has_unique_value=bool(spec.get("hasUniqueValue", False)),
        hidden=bool(spec.get("hidden", False)),
        form_field=bool(spec.get("formField", False)),
        created_ms=created_ms,
        updated_ms=created_ms,
    )


# =============================================================================================
# the HTTP application
# =============================================================================================

Getter = Callable[[ContactRecord], Any]
Predicate = Callable[[ContactRecord], bool]
Handler = Callable[[Request, dict[str, str]], Response]

_OBJ = r"/crm/v3/objects/(?:contacts|0-1)"
_PROP = r"/crm/v3/properties/(?:contacts|0-1)"
_SEARCH_PATH = re.compile(r"/crm/v3/objects/[^/]+/search/?")
_CONTACT_OBJECT_TYPES = frozenset({"contact", "contacts", "0-1"})


@dataclass
class _CompiledGroup:
    start: int
    end: int
    preds: list[Predicate]

    def matches(self, c: ContactRecord) -> bool:
        return all(p(c) for p in self.preds)


def _bad(message: str, category: str = "VALIDATION_ERROR", status: int = 400) -> BadRequest:
    return BadRequest(_error(status, message, category))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _id_text(value: object, what: str = "id") -> str:
    if _is_int(value):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise _bad(f"Invalid input JSON: '{what}' must be a non-empty string, got {value!r}")


class HubSpotApp(SandboxApp):
    """HubSpot's API over a :class:`Portal`: auth, limits, routes, HubSpot-shaped errors."""

    def __init__(
        self,
        portal: Portal,
        *,
        token: str = DEFAULT_TOKEN,
        rate_limit: int = 100,
        daily_limit: int = 250_000,
        search_rate_limit: int = 5,
        time_scale: float = 1.0,
        faults: Faults | None = None,
    ) -> None:
        super().__init__(faults)
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        self.portal = portal
        self.token = token
        self.events_api_enabled = True  # False: the events API answers 403 MISSING_SCOPES
        self.time_scale = time_scale
        self.ten_secondly = RollingWindowLimiter(rate_limit, 10.0 * time_scale)
        self.search_limiter = RollingWindowLimiter(search_rate_limit, 1.0 * time_scale)
        self.daily = DailyQuota(daily_limit, 86_400.0 * time_scale)
        self.base_url = "http://127.0.0.1"
        table: list[tuple[str, str, Handler]] = [
            ("GET", _OBJ, self._list),
            ("POST", _OBJ, self._create),
            ("POST", _OBJ + "/search", self._search),
            ("POST", _OBJ + "/batch/read", self._batch_read),
            ("POST", _OBJ + "/batch/update", self._batch_update),
            ("POST", _OBJ + "/batch/create", self._batch_create),
            ("POST", _OBJ + "/batch/archive", self._batch_archive),
            ("POST", _OBJ + "/merge", self._merge),
            ("GET", _OBJ + r"/(?P<id>[^/]+)", self._get),
            ("PATCH", _OBJ + r"/(?P<id>[^/]+)", self._update),
            ("DELETE", _OBJ + r"/(?P<id>[^/]+)", self._archive),
            ("GET", _PROP, self._list_properties),
            ("POST", _PROP, self._create_property),
            ("GET", _PROP + "/groups", self._list_groups),
            ("POST", _PROP + "/groups", self._create_group),
            ("GET", _PROP + r"/groups/(?P<name>[^/]+)", self._get_group),
            ("PATCH", _PROP + r"/groups/(?P<name>[^/]+)", self._update_group),
            ("DELETE", _PROP + r"/groups/(?P<name>[^/]+)", self._archive_group),
            ("GET", _PROP + r"/(?P<name>[^/]+)", self._get_property),
            ("PATCH", _PROP + r"/(?P<name>[^/]+)", self._update_property),
            ("DELETE", _PROP + r"/(?P<name>[^/]+)", self._archive_property),
            ("GET", r"/events/v3/events", self._events),
            ("GET", r"/events/v3/events/event-types", self._event_types),
            ("GET", r"/email/public/v1/events", self._email_events),
            ("GET", r"/marketing/v3/forms", self._forms),
            ("GET", r"/marketing/v3/forms/(?P<id>[^/]+)", self._form),
            ("GET", r"/form-integrations/v1/submissions/forms/(?P<id>[^/]+)", self._submissions),
        ]
        self._routes = [(m, re.compile(rx), h) for m, rx, h in table]

    # -- pipeline hooks ------------------------------------------------------------------------
    def _rate_headers(self, remaining: int, daily_remaining: int) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Max": str(self.ten_secondly.limit),
            "X-HubSpot-RateLimit-Remaining": str(remaining),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(self.ten_secondly.interval_ms),
            "X-HubSpot-RateLimit-Daily": str(self.daily.limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(daily_remaining),
        }

    def _rate_limited(self, policy: str, headers: Mapping[str, str] | None = None) -> Response:
        label = {"TEN_SECONDLY_ROLLING": "ten_secondly_rolling", "DAILY": "daily"}.get(
            policy, policy.lower()
        )
        body = {
            "status": "error",
            "message": f"You have reached your {label} limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": new_correlation_id(),
            "policyName": policy,
        }
        return Response(429, body, headers=dict(headers or {}))

    def preflight(self, req: Request) -> tuple[Response | None, dict[str, str]]:
        auth = (req.header("authorization") or "").strip()
        if not auth:
            return _error(
                401,
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at "
                "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                "INVALID_AUTHENTICATION",
            ), {}
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self.token:
            return _error(
                401,
                "Authentication credentials are invalid: the access token is unknown, "
                "expired or revoked.",
                "INVALID_AUTHENTICATION",
            ), {}
        if req.method == "POST" and _SEARCH_PATH.fullmatch(req.path):
            if self.daily.remaining() <= 0:
                return self._rate_limited("DAILY"), {}
            accepted, _ = self.search_limiter.try_acquire()
            if not accepted:
                return self._rate_limited("SECONDLY"), {}
            self.daily.try_acquire()
            return None, {}
        daily_left = self.daily.remaining()
        if daily_left <= 0:
            return self._rate_limited(
                "DAILY", self._rate_headers(self.ten_secondly.remaining(), 0)
            ), {}
        accepted, remaining = self.ten_secondly.try_acquire()
        if not accepted:
            return self._rate_limited("TEN_SECONDLY_ROLLING", self._rate_headers(0, daily_left)), {}
        _, daily_left = self.daily.try_acquire()
        return None, self._rate_headers(remaining, daily_left)

    def fault_response(self, req: Request, decision: FaultDecision) -> Response:
        if decision.kind == "burst_429":
            return self._rate_limited(
                "TEN_SECONDLY_ROLLING", self._rate_headers(0, self.daily.remaining())
            )
        status = decision.status or 500
        if status == 500:
            return _error(500, "internal error", "INTERNAL_ERROR")
        reason = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}.get(
            status, "Server Error"
        )
        page = (
            f"<html><head><title>{status} {reason}</title></head><body>"
            f"<center><h1>{status} {reason}</h1></center><hr><center>cloudflare</center>"
            "</body></html>"
        )
        return Response(status, page, content_type="text/html")

    def internal_error_response(self, req: Request, exc: BaseException) -> Response:
        return _error(500, f"internal error ({type(exc).__name__})", "INTERNAL_ERROR")

    def finish(self, req: Request, resp: Response) -> None:
        cid = resp.body.get("correlationId") if isinstance(resp.body, dict) else None
        resp.headers.setdefault("X-HubSpot-Correlation-Id", str(cid or new_correlation_id()))

    def route(self, req: Request) -> Response:
        path = req.path.rstrip("/") or "/"
        path_known = False
        for method, rx, handler in self._routes:
            match = rx.fullmatch(path)
            if match is None:
                continue
            path_known = True
            if method != req.method:
                continue
            groups = {k: _unquote(v) for k, v in match.groupdict().items()}
            try:
                with self.portal.lock:
                    return handler(req, groups)
            except BadRequest as exc:
                return exc.response
        if path_known:
            return _error(
                405, f"HTTP method {req.method} is not supported by {req.path}", "VALIDATION_ERROR"
            )
        return _error(404, f"Unable to route {req.method} {req.path}", "OBJECT_NOT_FOUND")

    # -- request helpers -----------------------------------------------------------------------
    def _json_object(self, req: Request) -> JsonDict:
        if req.json_error is not None:
            raise _bad(f"Invalid input JSON on {req.json_error}")
        if not isinstance(req.json, dict):
            kind = "empty" if req.json is None else type(req.json).__name__
            raise _bad(f"Invalid input JSON: expected a JSON object, got {kind}")
        return req.json

    def _list_param(self, req: Request, name: str) -> list[str] | None:
        raw = req.query.get(name)
        if raw is None:
            return None
        return [p.strip() for v in raw for p in v.split(",") if p.strip()]

    def _int_param(self, req: Request, name: str, default: int, low: int, high: int) -> int:
        text = req.param(name)
        if text is None or text == "":
            return default
        try:
            value = int(text)
        except ValueError:
            raise _bad(f"Query parameter '{name}' must be an integer, got {text!r}") from None
        if value < low:
            raise _bad(f"Query parameter '{name}' must be >= {low}, got {value}")
        return min(value, high)

    def _bool_param(self, req: Request, name: str) -> bool:
        text = (req.param(name) or "false").lower()
        if text not in ("true", "false"):
            raise _bad(f"Query parameter '{name}' must be true or false, got {text!r}")
        return text == "true"

    def _time_param(self, req: Request, name: str) -> int | None:
        text = req.param(name)
        if text is None or text == "":
            return None
        try:
            return parse_time_ms(text)
        except ValueError:
            raise _bad(f"Query parameter '{name}' is not a valid timestamp: {text!r}") from None

    def _str_list(self, body: Mapping[str, Any], key: str) -> list[str] | None:
        value = body.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _bad(f"Invalid input JSON: '{key}' must be a list of strings")
        return list(value)

    def _inputs(self, body: Mapping[str, Any]) -> list[JsonDict]:
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            raise _bad("Invalid input JSON: 'inputs' must be a list")
        if len(inputs) > BATCH_MAX:
            raise _bad(
                f"Batch input has {len(inputs)} inputs; at most {BATCH_MAX} inputs are allowed"
            )
        for i, item in enumerate(inputs):
            if not isinstance(item, dict):
                raise _bad(f"Invalid input JSON: inputs[{i}] must be an object")
        return inputs

    def _next_link(self, req: Request, cursor_name: str, cursor: str) -> str:
        params = [(k, v) for k, vs in req.query.items() if k != cursor_name for v in vs]
        params.append((cursor_name, cursor))
        return f"{self.base_url}{req.path}?{urlencode(params)}"

    def _history(self, rec: ContactRecord, name: str) -> list[JsonDict]:
        entries = rec.history.get(name)
        if entries:
            return [
                {"value": v, "timestamp": iso_ms(ms), "sourceType": src, "sourceId": "sandbox"}
                for v, ms, src in reversed(entries)
            ]
        value = rec.properties.get(name)
        if value is None:
            return []
        return [{"value": value, "timestamp": iso_ms(rec.created_ms), "sourceType": "IMPORT"}]

    def contact_json(
        self,
        rec: ContactRecord,
        props: Sequence[str] | None = None,
        history: Sequence[str] | None = None,
    ) -> JsonDict:
        names: Iterable[str] = (
            DEFAULT_READ_PROPERTIES if props is None else (*props, *ALWAYS_RETURNED)
        )
        out: dict[str, str | None] = {}
        known = self.portal.properties
        for name in names:
            value = rec.properties.get(name)
            if value is not None:
                out[name] = value
            elif name in known:
                out[name] = None
        obj: JsonDict = {
            "id": rec.id,
            "properties": dict(sorted(out.items())),
            "createdAt": iso_ms(rec.created_ms),
            "updatedAt": iso_ms(rec.updated_ms),
            "archived": rec.archived,
        }
        if rec.archived:
            obj["archivedAt"] = iso_ms(rec.archived_ms or rec.updated_ms)
        if history:
            obj["propertiesWithHistory"] = {n: self._history(rec, n) for n in history if n in known}
        return obj

    def _lookup(
        self, req: Request, key: str, include_archived: bool = False
    ) -> ContactRecord | None:
        id_property = req.param("idProperty")
        if id_property and id_property != "hs_object_id":
            if id_property != "email":
                raise _bad(f"idProperty '{id_property}' is not a unique-value property")
            return self.portal.by_email(key)
        return self.portal.resolve(key, include_archived=include_archived)

    def _not_found(self, cid: str) -> Response:
        return _error(
            404,
            f"Object not found.  objectId are usually numeric. ({cid})",
            "OBJECT_NOT_FOUND",
            context={"id": [cid]},
        )

    def _validation_400(self, problems: Sequence[PropProblem]) -> Response:
        return _error(400, _problems_message(problems, self.portal.portal_id), "VALIDATION_ERROR")

    def _record_error(self, cid: str, problems: Sequence[PropProblem]) -> JsonDict:
        first = problems[0].code
        return {
            "status": "error",
            "category": first if first in _BATCH_CATEGORIES else "VALIDATION_ERROR",
            "message": _problems_message(problems, self.portal.portal_id),
            "context": {"ids": [cid], "propertyName": [p.name for p in problems]},
            "links": {},
            "errors": [
                {"message": p.message, "code": p.code, "context": {"propertyName": [p.name]}}
                for p in problems
            ],
        }

    def _not_found_error(self, ids: Sequence[str]) -> JsonDict:
        return {
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "message": "Could not get some CONTACT objects, they may be deleted or not exist. "
            "Check that ids are valid.",
            "context": {"ids": list(ids)},
            "links": {},
            "errors": [],
        }

    def _batch_response(
        self, results: list[JsonDict], errors: list[JsonDict], started_ms: int, ok: int = 200
    ) -> Response:
        body: JsonDict = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": iso_ms(started_ms),
            "completedAt": iso_ms(self.portal.now_ms()),
        }
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
            return Response(207, body)
        return Response(ok, body)

    # -- contacts ------------------------------------------------------------------------------
    def _list(self, req: Request, _: dict[str, str]) -> Response:
        limit = self._int_param(req, "limit", 10, 1, 100)
        after = req.param("after")
        start = 0
        if after:
            if not _NUMERIC_ID.match(after):
                raise _bad(f"Invalid 'after' value: {after!r}")
            start = int(after)
        if self._bool_param(req, "archived"):
            pool = sorted(
                (c for c in self.portal.contacts.values() if c.archived and c.merged_into is None),
                key=lambda c: c.num_id,
            )
            ids = [c.num_id for c in pool]
        else:
            pool, ids = self.portal.live_contacts(), self.portal.live_ids()
        i = bisect.bisect_left(ids, start)
        page = pool[i : i + limit]
        props = self._list_param(req, "properties")
        history = self._list_param(req, "propertiesWithHistory")
        body: JsonDict = {"results": [self.contact_json(c, props, history) for c in page]}
        if i + limit < len(pool):
            nxt = str(pool[i + limit].num_id)
            body["paging"] = {"next": {"after": nxt, "link": self._next_link(req, "after", nxt)}}
        return Response(200, body)

    def _get(self, req: Request, m: dict[str, str]) -> Response:
        rec = self._lookup(req, m["id"], include_archived=self._bool_param(req, "archived"))
        if rec is None:
            return self._not_found(m["id"])
        props = self._list_param(req, "properties")
        history = self._list_param(req, "propertiesWithHistory")
        return Response(200, self.contact_json(rec, props, history))

    def _properties_body(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        props = body.get("properties")
        if not isinstance(props, dict):
            raise _bad("Invalid input JSON: 'properties' must be an object")
        return props

    def _update(self, req: Request, m: dict[str, str]) -> Response:
        props = self._properties_body(self._json_object(req))
        rec = self._lookup(req, m["id"])
        if rec is None:
            return self._not_found(m["id"])
        values, problems = self.portal.validate_writes(rec, props)
        if problems:
            return self._validation_400(problems)
        self.portal.apply(rec, values)
        return Response(200, self.contact_json(rec, list(values)))

    def _create(self, req: Request, _: dict[str, str]) -> Response:
        props = self._properties_body(self._json_object(req))
        values, problems = self.portal.validate_writes(None, props)
        if problems:
            return self._validation_400(problems)
        email = values.get("email")
        if email:
            existing = self.portal.by_email(email)
            if existing is not None:
                return _error(
                    409, f"Contact already exists. Existing ID: {existing.id}", "CONFLICT"
                )
        rec = self.portal.create_contact(values)
        return Response(201, self.contact_json(rec, list(values)))

    def _archive(self, req: Request, m: dict[str, str]) -> Response:
        rec = self._lookup(req, m["id"])
        if rec is not None:
            self.portal.archive(rec.id)
        return Response(204)

    def _batch_read(self, req: Request, _: dict[str, str]) -> Response:
        started = self.portal.now_ms()
        body = self._json_object(req)
        inputs = self._inputs(body)
        props = self._str_list(body, "properties")
        history = self._str_list(body, "propertiesWithHistory")
        id_property = body.get("idProperty")
        if id_property not in (None, "hs_object_id", "email"):
            raise _bad(f"idProperty '{id_property}' is not a unique-value property")
        archived = self._bool_param(req, "archived")
        results: list[JsonDict] = []
        missing: list[str] = []
        seen: set[str] = set()
        for item in inputs:
            cid = _id_text(item.get("id"))
            rec = (
                self.portal.by_email(cid)
                if id_property == "email"
                else self.portal.resolve(cid, include_archived=archived)
            )
            if rec is None:
                missing.append(cid)
            elif rec.id not in seen:
                seen.add(rec.id)
                results.append(self.contact_json(rec, props, history))
        errors = [self._not_found_error(missing)] if missing else []
        return self._batch_response(results, errors, started)

    def _batch_update(self, req: Request, _: dict[str, str]) -> Response:
        started = self.portal.now_ms()
        inputs = self._inputs(self._json_object(req))
        ids: list[str] = []
        for item in inputs:
            ids.append(_id_text(item.get("id")))
            self._properties_body(item)
            if item.get("idProperty") not in (None, "hs_object_id", "email"):
                raise _bad(f"idProperty '{item['idProperty']}' is not a unique-value property")
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise _bad(f"Duplicate IDs found in batch input: {dupes}")
        plan: list[tuple[str, ContactRecord, dict[str, str], list[PropProblem]]] = []
        missing: list[str] = []
        for cid, item in zip(ids, inputs, strict=True):
            rec = (
                self.portal.by_email(cid)
                if item.get("idProperty") == "email"
                else self.portal.resolve(cid)
            )
            if rec is None:
                missing.append(cid)
                continue
            values, problems = self.portal.validate_writes(rec, item["properties"])
            plan.append((cid, rec, values, problems))
        results: list[JsonDict] = []
        errors: list[JsonDict] = []
        for cid, rec, values, problems in plan:
            if problems:
                errors.append(self._record_error(cid, problems))
                continue
            self.portal.apply(rec, values)
            results.append(self.contact_json(rec, list(values)))
        if missing:
            errors.append(self._not_found_error(missing))
        return self._batch_response(results, errors, started)

    def _batch_create(self, req: Request, _: dict[str, str]) -> Response:
        started = self.portal.now_ms()
        inputs = self._inputs(self._json_object(req))
        prepared: list[dict[str, str]] = []
        emails: set[str] = set()
        for item in inputs:
            values, problems = self.portal.validate_writes(None, self._properties_body(item))
            if problems:
                return self._validation_400(problems)
            email = values.get("email", "").lower()
            if email:
                existing = self.portal.by_email(email)
                if existing is not None or email in emails:
                    where = existing.id if existing is not None else "in this batch"
                    return _error(409, f"Contact already exists. Existing ID: {where}", "CONFLICT")
                emails.add(email)
            prepared.append(values)
        results = [self.contact_json(self.portal.create_contact(v), list(v)) for v in prepared]
        return self._batch_response(results, [], started, ok=201)

    def _batch_archive(self, req: Request, _: dict[str, str]) -> Response:
        inputs = self._inputs(self._json_object(req))
        ids = [_id_text(item.get("id")) for item in inputs]
        for cid in ids:
            self.portal.archive(cid)
        return Response(204)

    def _merge(self, req: Request, _: dict[str, str]) -> Response:
        body = self._json_object(req)
        primary = _id_text(body.get("primaryObjectId"), "primaryObjectId")
        absorbed = _id_text(body.get("objectIdToMerge"), "objectIdToMerge")
        for cid in (primary, absorbed):
            if self.portal.resolve(cid) is None:
                return self._not_found(cid)
        try:
            survivor = self.portal.merge(primary, absorbed)
        except ValueError:
            raise _bad(
                f"Cannot merge {absorbed} into {primary}: they are already the same contact"
            ) from None
        return Response(
            200, self.contact_json(survivor, [*DEFAULT_READ_PROPERTIES, "hs_merged_object_ids"])
        )

    # -- search --------------------------------------------------------------------------------
    def _kind(self, name: str) -> str:
        if name == "hs_object_id":
            return "id"
        pdef = self.portal.properties.get(name)
        if pdef is None:
            raise _bad(f"Property '{name}' does not exist", "VALIDATION_ERROR")
        if pdef.type == "number":
            return "number"
        if pdef.type in ("datetime", "date"):
            return "time"
        return "text"

    def _getter(self, name: str) -> Getter:
        kind = self._kind(name)
        if name == "hs_object_id":
            return lambda c: c.num_id
        if name == "createdate":
            return lambda c: c.created_ms
        if name == "lastmodifieddate":
            return lambda c: c.updated_ms
        if kind == "number":

            def number(c: ContactRecord) -> float | None:
                v = c.properties.get(name)
                if not v:
                    return None
                try:
                    return float(v)
                except ValueError:
                    return None

            return number
        if kind == "time":

            def moment(c: ContactRecord) -> int | None:
                v = c.properties.get(name)
                return _value_ms(v) if v else None

            return moment

        def text(c: ContactRecord) -> str | None:
            v = c.properties.get(name)
            return v.lower() if v else None

        return text

    def _filter_value(self, kind: str, raw: object, name: str) -> Any:
        if raw is None or isinstance(raw, dict | list):
            raise _bad(f"Invalid filter value for '{name}': {raw!r}")
        if kind in ("id", "number"):
            try:
                value = float(str(raw).strip())
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise _bad(f"Invalid filter value for numeric property '{name}': {raw!r}")
            return value
        if kind == "time":
            try:
                return parse_time_ms(raw)
            except ValueError:
                raise _bad(f"Invalid filter value for date property '{name}': {raw!r}") from None
        if isinstance(raw, bool):
            return "true" if raw else "false"
        return str(raw).lower()

    def _compile_filter(self, f: object, group: _CompiledGroup, ids: list[int]) -> None:
        if not isinstance(f, dict):
            raise _bad("Invalid input JSON: each filter must be an object")
        name = f.get("propertyName")
        op = f.get("operator")
        if not isinstance(name, str) or not name:
            raise _bad("Invalid input JSON: filter.propertyName is required")
        if op not in OPERATORS:
            raise _bad(f"Invalid filter operator {op!r}; expected one of {sorted(OPERATORS)}")
        kind = self._kind(name)
        get = self._getter(name)
        if op in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
            want = op == "HAS_PROPERTY"
            group.preds.append(lambda c: (get(c) is not None) is want)
            return
        if op in ("IN", "NOT_IN"):
            values = f.get("values")
            if not isinstance(values, list) or not values:
                raise _bad(f"Filter {op} on '{name}' needs a non-empty 'values' list")
            allowed = {self._filter_value(kind, v, name) for v in values}
            if op == "IN":
                group.preds.append(lambda c: get(c) in allowed)
            else:
                group.preds.append(lambda c: get(c) not in allowed)
            return
        x = self._filter_value(kind, f.get("value"), name)
        if op == "BETWEEN":
            high = self._filter_value(kind, f.get("highValue"), name)
            if kind == "id":
                group.start = max(group.start, bisect.bisect_left(ids, x))
                group.end = min(group.end, bisect.bisect_right(ids, high))
                return
            group.preds.append(lambda c: (v := get(c)) is not None and x <= v <= high)
            return
        if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            pattern = re.compile("^" + ".*".join(re.escape(p) for p in str(x).split("*")) + "$")
            want = op == "CONTAINS_TOKEN"

            def tokens(c: ContactRecord) -> bool:
                v = get(c)
                if v is None:
                    return not want
                words = [str(v), *re.split(r"[^0-9a-z]+", str(v))]
                return any(pattern.match(w) for w in words if w) is want

            group.preds.append(tokens)
            return
        if kind == "id":
            if op == "GT":
                group.start = max(group.start, bisect.bisect_right(ids, x))
                return
            if op == "GTE":
                group.start = max(group.start, bisect.bisect_left(ids, x))
                return
            if op == "LT":
                group.end = min(group.end, bisect.bisect_left(ids, x))
                return
            if op == "LTE":
                group.end = min(group.end, bisect.bisect_right(ids, x))
                return
            if op == "EQ":
                group.start = max(group.start, bisect.bisect_left(ids, x))
                group.end = min(group.end, bisect.bisect_right(ids, x))
                return
        compare: dict[str, Callable[[Any], bool]] = {
            "EQ": lambda v: v == x,
            "NEQ": lambda v: v != x,
            "GT": lambda v: v > x,
            "GTE": lambda v: v >= x,
            "LT": lambda v: v < x,
            "LTE": lambda v: v <= x,
        }
        test = compare[op]
        if op == "NEQ":
            group.preds.append(lambda c: (v := get(c)) is None or test(v))
        else:
            group.preds.append(lambda c: (v := get(c)) is not None and test(v))

    def _search(self, req: Request, _: dict[str, str]) -> Response:
        body = self._json_object(req)
        groups_raw = body.get("filterGroups", [])
        if groups_raw is None:
            groups_raw = []
        if not isinstance(groups_raw, list):
            raise _bad("Invalid input JSON: 'filterGroups' must be a list")
        if len(groups_raw) > SEARCH_MAX_GROUPS:
            raise _bad(
                f"Too many filter groups: {len(groups_raw)}; at most {SEARCH_MAX_GROUPS} allowed"
            )
        total_filters = 0
        for g in groups_raw:
            if not isinstance(g, dict) or not isinstance(g.get("filters"), list):
                raise _bad("Invalid input JSON: each filter group needs a 'filters' list")
            n = len(g["filters"])
            if n > SEARCH_MAX_FILTERS_PER_GROUP:
                raise _bad(
                    f"Too many filters in a group: {n}; at most "
                    f"{SEARCH_MAX_FILTERS_PER_GROUP} allowed"
                )
            total_filters += n
        if total_filters > SEARCH_MAX_FILTERS:
            raise _bad(
                f"Too many filters: {total_filters}; at most {SEARCH_MAX_FILTERS} allowed in all"
            )
        limit = body.get("limit", 10)
        if limit is None:
            limit = 10
        if not _is_int(limit) or limit < 0:
            raise _bad(f"Invalid input JSON: 'limit' must be a non-negative integer, got {limit!r}")
        if limit > SEARCH_MAX_LIMIT:
            raise _bad(f"limit must be at most {SEARCH_MAX_LIMIT}, got {limit}")
        after = body.get("after")
        offset = 0
        if after not in (None, ""):
            text = str(after) if _is_int(after) else after
            if not isinstance(text, str) or not text.isdigit():
                raise _bad(f"Invalid input JSON: 'after' must be a numeric string, got {after!r}")
            offset = int(text)
        if offset + limit > SEARCH_MAX_RESULTS:
            raise _bad(
                f"Search cannot page past {SEARCH_MAX_RESULTS} results (after={offset}, "
                f"limit={limit}); narrow the filters instead",
            )
        props = self._str_list(body, "properties")
        sorts = body.get("sorts") or []
        if not isinstance(sorts, list):
            raise _bad("Invalid input JSON: 'sorts' must be a list")
        if len(sorts) > 1:
            raise _bad("Only one sort is supported")
        sort_name, descending = "hs_object_id", False
        if sorts:
            sort_name, descending = self._parse_sort(sorts[0])
        query = body.get("query")
        if query is not None and not isinstance(query, str):
            raise _bad("Invalid input JSON: 'query' must be a string")

        live = self.portal.live_contacts()
        ids = self.portal.live_ids()
        compiled: list[_CompiledGroup] = []
        for g in groups_raw:
            cg = _CompiledGroup(0, len(live), [])
            for f in g["filters"]:
                self._compile_filter(f, cg, ids)
            compiled.append(cg)
        if not compiled:
            compiled = [_CompiledGroup(0, len(live), [])]
        if query:
            words = query.lower().split()

            def text_match(c: ContactRecord) -> bool:
                hay = " ".join(c.properties.get(p, "") for p in SEARCHABLE_BY_QUERY).lower()
                return all(w in hay for w in words)

            for cg in compiled:
                cg.preds.append(text_match)
        if len(compiled) == 1:
            cg = compiled[0]
            window = live[cg.start : cg.end] if cg.start < cg.end else []
            matches = [c for c in window if cg.matches(c)] if cg.preds else list(window)
        else:
            lo = min(cg.start for cg in compiled)
            hi = max(cg.end for cg in compiled)
            matches = []
            for i in range(lo, hi):
                c = live[i]
                for cg in compiled:
                    if cg.start <= i < cg.end and cg.matches(c):
                        matches.append(c)
                        break
        if sort_name != "hs_object_id":
            get = self._getter(sort_name)
            keyed = [(get(c), c) for c in matches]
            present = [kc for kc in keyed if kc[0] is not None]
            absent = [kc[1] for kc in keyed if kc[0] is None]
            present.sort(key=lambda kc: kc[0], reverse=descending)
            matches = [c for _, c in present] + absent
        elif descending:
            matches = matches[::-1]
        total = len(matches)
        page = matches[offset : offset + limit]
        out: JsonDict = {"total": total, "results": [self.contact_json(c, props) for c in page]}
        if offset + limit < total and limit > 0:
            out["paging"] = {"next": {"after": str(offset + limit)}}
        return Response(200, out)

    def _parse_sort(self, spec: object) -> tuple[str, bool]:
        if isinstance(spec, str):
            text = spec.strip()
            if text.startswith("{"):
                try:
                    spec = json.loads(text)
                except json.JSONDecodeError:
                    raise _bad(f"Invalid sort: {spec!r}") from None
            else:
                desc = text.startswith("-")
                name = text.lstrip("-")
                self._kind(name)
                return name, desc
        if not isinstance(spec, dict):
            raise _bad(f"Invalid sort: {spec!r}")
        prop_name = spec.get("propertyName")
        direction = spec.get("direction", "ASCENDING")
        if not isinstance(prop_name, str) or direction not in ("ASCENDING", "DESCENDING"):
            raise _bad(f"Invalid sort: {spec!r}")
        self._kind(prop_name)
        return prop_name, direction == "DESCENDING"

    # -- properties and groups ---------------------------------------------------------------
    def _list_properties(self, req: Request, _: dict[str, str]) -> Response:
        archived = self._bool_param(req, "archived")
        results = [p.to_json() for p in self.portal.properties.values() if p.archived == archived]
        return Response(200, {"results": results})

    def _get_property(self, req: Request, m: dict[str, str]) -> Response:
        prop = self.portal.properties.get(m["name"])
        if prop is None or (prop.archived and not self._bool_param(req, "archived")):
            return _error(
                404,
                f"Unable to find property named '{m['name']}' for object type CONTACT",
                "OBJECT_NOT_FOUND",
            )
        return Response(200, prop.to_json())

    def _options(self, raw: object, ptype: str, name: str) -> list[tuple[str, str]]:
        if raw is None:
            raw = []
        if not isinstance(raw, list):
            raise _bad(f"Invalid input JSON: '{name}'.options must be a list")
        options: list[tuple[str, str]] = []
        for o in raw:
            if not isinstance(o, dict) or not isinstance(o.get("value"), str):
                raise _bad("Invalid input JSON: every option needs a string 'value'")
            if not isinstance(o.get("label"), str):
                raise _bad("Invalid input JSON: every option needs a string 'label'")
            options.append((o["value"], o["label"]))
        values = [v for v, _ in options]
        if len(set(values)) != len(values):
            raise _bad(f"Property '{name}' has duplicate option values")
        if ptype == "enumeration" and not options:
            raise _bad(f"Enumeration property '{name}' needs at least one option")
        return options

    def _create_property(self, req: Request, _: dict[str, str]) -> Response:
        body = self._json_object(req)
        for key in ("name", "label", "type", "fieldType", "groupName"):
            if not isinstance(body.get(key), str) or not body[key]:
                raise _bad(f"Invalid input JSON: '{key}' is required and must be a string")
        name, ptype, ftype = body["name"], body["type"], body["fieldType"]
        if not _PROPERTY_NAME.match(name):
            raise _bad(
                f"Property name '{name}' is invalid: use lower-case letters, digits and "
                "underscores, starting with a letter"
            )
        if ptype not in PROPERTY_TYPES:
            raise _bad(f"Invalid property type '{ptype}'")
        if ftype not in PROPERTY_TYPES[ptype]:
            raise _bad(f"fieldType '{ftype}' is not valid for type '{ptype}'")
        if body["groupName"] not in self.portal.groups:
            raise _bad(f"Property group '{body['groupName']}' does not exist")
        old = self.portal.properties.get(name)
        if old is not None and not old.archived:
            return _error(
                409,
                f"Property named '{name}' already exists.",
                "OBJECT_ALREADY_EXISTS",
                subCategory="PropertyValidationError.PROPERTY_EXISTS",
                context={"name": [name]},
            )
        options = self._options(body.get("options"), ptype, name)
        now = self.portal.now_ms()
        display = body.get("displayOrder", -1)
        prop = PropertyDef(
            name=name,
            label=body["label"],
            type=ptype,
            field_type=ftype,
            group_name=body["groupName"],
            description=str(body.get("description") or ""),
            options=options,
            display_order=display if _is_int(display) else -1,
            has_unique_value=bool(body.get("hasUniqueValue", False)),
            hidden=bool(body.get("hidden", False)),
            form_field=bool(body.get("formField", False)),
            created_ms=now,
            updated_ms=now,
        )
        if old is not None:  # re-created after a delete: a new, empty property
            for rec in self.portal.contacts.values():  # (no contact counts as modified)
                rec.properties.pop(name, None)
                rec.history.pop(name, None)
        self.portal.properties[name] = prop
        return Response(201, prop.to_json())

    def _update_property(self, req: Request, m: dict[str, str]) -> Response:
        body = self._json_object(req)
        prop = self.portal.properties.get(m["name"])
        if prop is None or prop.archived:
            return _error(404, f"Unable to find property named '{m['name']}'", "OBJECT_NOT_FOUND")
        if prop.hubspot_defined:
            raise _bad(f"Property '{prop.name}' is HubSpot-defined; its definition is read-only")
        if "groupName" in body and body["groupName"] not in self.portal.groups:
            raise _bad(f"Property group '{body['groupName']}' does not exist")
        if "options" in body:
            prop.options = self._options(body["options"], prop.type, prop.name)
        for key, attr in (
            ("label", "label"),
            ("description", "description"),
            ("groupName", "group_name"),
        ):
            if key in body:
                if not isinstance(body[key], str):
                    raise _bad(f"Invalid input JSON: '{key}' must be a string")
                setattr(prop, attr, body[key])
        if "hidden" in body:
            prop.hidden = bool(body["hidden"])
        if _is_int(body.get("displayOrder")):
            prop.display_order = body["displayOrder"]
        prop.updated_ms = self.portal.now_ms()
        return Response(200, prop.to_json())

    def _archive_property(self, req: Request, m: dict[str, str]) -> Response:
        prop = self.portal.properties.get(m["name"])
        if prop is None or prop.archived:
            return _error(404, f"Unable to find property named '{m['name']}'", "OBJECT_NOT_FOUND")
        if prop.hubspot_defined:
            raise _bad(f"Property '{prop.name}' is HubSpot-defined and cannot be archived")
        prop.archived = True
        prop.updated_ms = self.portal.now_ms()
        return Response(204)

    def _list_groups(self, req: Request, _: dict[str, str]) -> Response:
        return Response(
            200, {"results": [g.to_json() for g in self.portal.groups.values() if not g.archived]}
        )

    def _get_group(self, req: Request, m: dict[str, str]) -> Response:
        group = self.portal.groups.get(m["name"])
        if group is None or group.archived:
            return _error(404, f"Unable to find property group '{m['name']}'", "OBJECT_NOT_FOUND")
        return Response(200, group.to_json())

    def _create_group(self, req: Request, _: dict[str, str]) -> Response:
        body = self._json_object(req)
        for key in ("name", "label"):
            if not isinstance(body.get(key), str) or not body[key]:
                raise _bad(f"Invalid input JSON: '{key}' is required and must be a string")
        name = body["name"]
        if not _PROPERTY_NAME.match(name):
            raise _bad(f"Property group name '{name}' is invalid")
        if name in self.portal.groups:
            return _error(
                409,
                f"A property group named '{name}' already exists.",
                "OBJECT_ALREADY_EXISTS",
                context={"name": [name]},
            )
        display = body.get("displayOrder", -1)
        group = PropertyGroup(name, body["label"], display if _is_int(display) else -1)
        self.portal.groups[name] = group
        return Response(201, group.to_json())

    def _update_group(self, req: Request, m: dict[str, str]) -> Response:
        body = self._json_object(req)
        group = self.portal.groups.get(m["name"])
        if group is None or group.archived:
            return _error(404, f"Unable to find property group '{m['name']}'", "OBJECT_NOT_FOUND")
        if "label" in body:
            if not isinstance(body["label"], str):
                raise _bad("Invalid input JSON: 'label' must be a string")
            group.label = body["label"]
        if _is_int(body.get("displayOrder")):
            group.display_order = body["displayOrder"]
        return Response(200, group.to_json())

    def _archive_group(self, req: Request, m: dict[str, str]) -> Response:
        group = self.portal.groups.get(m["name"])
        if group is None or group.archived:
            return _error(404, f"Unable to find property group '{m['name']}'", "OBJECT_NOT_FOUND")
        if any(
            p.group_name == group.name and not p.archived for p in self.portal.properties.values()
        ):
            raise _bad(f"Property group '{group.name}' still has properties")
        group.archived = True
        return Response(204)

    # -- engagement ----------------------------------------------------------------------------
    def _events(self, req: Request, _: dict[str, str]) -> Response:
        if not self.events_api_enabled:  # a portal below Enterprise, or a token without scope
            return _error(
                403,
                "This app hasn't been granted all required scopes to make this call. "
                "Read more about required scopes here: https://developers.hubspot.com/scopes.",
                "MISSING_SCOPES",
                errors=[
                    {
                        "message": "One or more of the following scopes are required.",
                        "context": {"requiredScopes": ["analytics.behavioral_events.read"]},
                    }
                ],
            )
        object_type = req.param("objectType")
        object_id = req.param("objectId")
        if object_id is not None and not object_type:
            raise _bad("objectId can only be used together with objectType")
        if object_id is not None and not _NUMERIC_ID.match(object_id):
            raise _bad(f"objectId must be numeric, got {object_id!r}")
        limit = self._int_param(req, "limit", 100, 1, 1000)
        after_ms = self._time_param(req, "occurredAfter")
        before_ms = self._time_param(req, "occurredBefore")
        sort = (req.param("sort") or "DESCENDING").strip()
        if sort in ("ASCENDING", "occurredAt", "ASC"):
            ascending = True
        elif sort in ("DESCENDING", "-occurredAt", "DESC"):
            ascending = False
        else:
            raise _bad(f"Invalid sort {sort!r}; use ASCENDING or DESCENDING")
        event_type = req.param("eventType")
        wanted_ids = set(req.query.get("id", []))
        prop_filters = {
            k[len("property.") :]: vs[0] for k, vs in req.query.items() if k.startswith("property.")
        }
        cursor = req.param("after")
        cursor_key: tuple[int, str] | None = None
        if cursor:
            try:
                tag, ms_text, ev_id = decode_cursor(cursor, 3)
                if tag != ("a" if ascending else "d"):
                    raise ValueError(cursor)
                cursor_key = (int(ms_text), ev_id)
            except ValueError:
                raise _bad(f"Invalid 'after' cursor: {cursor!r}") from None
        if object_type and object_type.lower() not in _CONTACT_OBJECT_TYPES:
            return Response(200, {"results": []})
        pool: list[WebEvent]
        email_prop = req.param("objectProperty.email")
        if object_id is not None or email_prop is not None:
            rec = (
                self.portal.resolve(object_id)
                if object_id is not None
                else self.portal.by_email(email_prop or "")
            )
            pool = self.portal.events_by_contact.get(rec.id, []) if rec is not None else []
        elif event_type:
            pool = self.portal.events_by_type.get(event_type, [])
        else:
            pool = self.portal.events
        start, end = 0, len(pool)
        if after_ms is not None:
            start = bisect.bisect_right(pool, after_ms, key=lambda e: e.occurred_ms)
        if before_ms is not None:
            end = bisect.bisect_left(pool, before_ms, key=lambda e: e.occurred_ms)
        if cursor_key is not None:
            if ascending:
                start = max(start, bisect.bisect_right(pool, cursor_key, key=lambda e: e.key))
            else:
                end = min(end, bisect.bisect_left(pool, cursor_key, key=lambda e: e.key))
        indexes = range(start, end) if ascending else range(end - 1, start - 1, -1)
        contacts = self.portal.contacts
        page: list[WebEvent] = []
        more = False
        for i in indexes:
            ev = pool[i]
            if event_type and ev.event_type != event_type:
                continue
            if wanted_ids and ev.id not in wanted_ids:
                continue
            owner = contacts.get(ev.object_id)
            if owner is None or not owner.live:
                continue
            if prop_filters and any(ev.properties.get(k) != v for k, v in prop_filters.items()):
                continue
            if len(page) == limit:
                more = True
                break
            page.append(ev)
        body: JsonDict = {"results": [ev.to_json() for ev in page]}
        if more:
            last = page[-1]
            nxt = encode_cursor("a" if ascending else "d", last.occurred_ms, last.id)
            body["paging"] = {"next": {"after": nxt, "link": self._next_link(req, "after", nxt)}}
        return Response(200, body)

    def _event_types(self, req: Request, _: dict[str, str]) -> Response:
        builtin = {PAGE_VIEW, FORM_SUBMISSION, "e_clicked_link", "e_opened_email"}
        return Response(200, {"eventTypes": sorted(builtin | set(self.portal.events_by_type))})

    def _email_events(self, req: Request, _: dict[str, str]) -> Response:
        limit = self._int_param(req, "limit", 100, 1, 1000)
        start_ms = self._time_param(req, "startTimestamp")
        end_ms = self._time_param(req, "endTimestamp")
        event_type = (req.param("eventType") or "").upper() or None
        if event_type is not None and event_type not in EMAIL_EVENT_TYPES:
            raise _bad(f"Invalid eventType {event_type!r}")
        recipient = req.param("recipient")
        campaign_text = req.param("campaignId")
        campaign: int | None = None
        if campaign_text:
            if not campaign_text.isdigit():
                raise _bad(f"campaignId must be numeric, got {campaign_text!r}")
            campaign = int(campaign_text)
        offset = req.param("offset")
        cursor_key: tuple[int, str] | None = None
        if offset:
            try:
                tag, ms_text, ev_id = decode_cursor(offset, 3)
                if tag != "m":
                    raise ValueError(offset)
                cursor_key = (int(ms_text), ev_id)
            except ValueError:
                raise _bad(f"Invalid offset: {offset!r}") from None
        pool = (
            self.portal.email_by_recipient.get(recipient.lower(), [])
            if recipient
            else self.portal.email_events
        )
        end = len(pool)
        if end_ms is not None:
            end = bisect.bisect_right(pool, end_ms, key=lambda e: e.created_ms)
        if cursor_key is not None:
            end = min(end, bisect.bisect_left(pool, cursor_key, key=lambda e: e.key))
        start = 0
        if start_ms is not None:
            start = bisect.bisect_left(pool, start_ms, key=lambda e: e.created_ms)
        page: list[EmailEvent] = []
        more = False
        for i in range(end - 1, start - 1, -1):
            ev = pool[i]
            if event_type and ev.type != event_type:
                continue
            if campaign is not None and ev.campaign_id != campaign:
                continue
            if len(page) == limit:
                more = True
                break
            page.append(ev)
        nxt = encode_cursor("m", page[-1].created_ms, page[-1].id) if page else (offset or "")
        return Response(
            200,
            {
                "events": [ev.to_json(self.portal.portal_id) for ev in page],
                "hasMore": more,
                "offset": nxt,
            },
        )

    def _forms(self, req: Request, _: dict[str, str]) -> Response:
        limit = self._int_param(req, "limit", 20, 1, 100)
        after = req.param("after") or "0"
        if not after.isdigit():
            raise _bad(f"Invalid 'after' value: {after!r}")
        archived = self._bool_param(req, "archived")
        kinds = {k.lower() for k in self._list_param(req, "formTypes") or ["hubspot"]}
        forms = sorted(
            (f for f in self.portal.forms.values() if f.archived == archived),
            key=lambda f: (f.created_ms, f.id),
        )
        if not kinds & {"hubspot", "all"}:
            forms = []
        offset = int(after)
        page = forms[offset : offset + limit]
        body: JsonDict = {"results": [f.to_json() for f in page]}
        if offset + limit < len(forms):
            nxt = str(offset + limit)
            body["paging"] = {"next": {"after": nxt, "link": self._next_link(req, "after", nxt)}}
        return Response(200, body)

    def _form(self, req: Request, m: dict[str, str]) -> Response:
        form = self.portal.forms.get(m["id"])
        if form is None:
            return _error(404, f"Form {m['id']} does not exist", "OBJECT_NOT_FOUND")
        return Response(200, form.to_json())

    def _submissions(self, req: Request, m: dict[str, str]) -> Response:
        form = self.portal.forms.get(m["id"])
        if form is None:
            return _error(404, f"Form {m['id']} does not exist", "OBJECT_NOT_FOUND")
        limit = self._int_param(req, "limit", 20, 1, 50)
        after = req.param("after")
        cursor_key: tuple[int, str] | None = None
        if after:
            try:
                tag, ms_text, ev_id = decode_cursor(after, 3)
                if tag != "s":
                    raise ValueError(after)
                cursor_key = (int(ms_text), ev_id)
            except ValueError:
                raise _bad(f"Invalid 'after' cursor: {after!r}") from None
        subs = [
            e
            for e in self.portal.events_by_type.get(FORM_SUBMISSION, [])
            if e.properties.get("hs_form_id") == form.id
        ]
        if cursor_key is not None:
            subs = [e for e in subs if e.key < cursor_key]
        subs.reverse()
        page = subs[:limit]
        results = []
        for ev in page:
            owner = self.portal.contacts.get(ev.object_id)
            values = []
            for name in form.fields:
                value = ev.properties.get(name) or (owner.properties.get(name) if owner else None)
                if value:
                    values.append({"name": name, "value": value, "objectTypeId": "0-1"})
            results.append(
                {
                    "conversionId": ev.id,
                    "submittedAt": ev.occurred_ms,
                    "values": values,
                    "pageUrl": ev.properties.get("hs_url", ""),
                }
            )
        body: JsonDict = {"results": results}
        if len(subs) > limit:
            nxt = encode_cursor("s", page[-1].occurred_ms, page[-1].id)
            body["paging"] = {"next": {"after": nxt, "link": self._next_link(req, "after", nxt)}}
        return Response(200, body)


def _unquote(value: str) -> str:
    return unquote(value)


# =============================================================================================
# the public handle
# =============================================================================================


def _to_ms_any(value: datetime | str | int | float | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return to_ms(value)
    return parse_time_ms(value)


class HubSpotSandbox(RunningSandbox[HubSpotApp]):
    """A running HubSpot sandbox. Use :meth:`start` (a context manager), then ``stop()``."""

    @classmethod
    def start(
        cls,
        portal: Portal | Mapping[str, Any] | str | Path | None = None,
        *,
        token: str = DEFAULT_TOKEN,
        port: int = 0,
        now: datetime | None = None,
        rate_limit: int = 100,
        daily_limit: int = 250_000,
        search_rate_limit: int = 5,
        time_scale: float = 1.0,
        faults: Faults | None = None,
        keep_alive: bool = False,
    ) -> HubSpotSandbox:
        """Load the portal (a :class:`Portal`, a fixture dict or a fixture path; None = empty)
        and serve it on 127.0.0.1:``port`` (0 = any free port)."""
        if isinstance(portal, Portal):
            store = portal
        elif portal is None:
            store = Portal(now=now)
        else:
            store = load_portal(portal, now=now)
        app = HubSpotApp(
            store,
            token=token,
            rate_limit=rate_limit,
            daily_limit=daily_limit,
            search_rate_limit=search_rate_limit,
            time_scale=time_scale,
            faults=faults,
        )
        server = SandboxServer(app, port=port, keep_alive=keep_alive)
        app.base_url = server.url
        server.start()
        return cls(app, server)

    @property
    def portal(self) -> Portal:
        return self.app.portal

    @property
    def token(self) -> str:
        return self.app.token

    @token.setter
    def token(self, value: str) -> None:
        """Rotate the accepted token (the old one then answers 401, like a revoked token)."""
        self.app.token = value

    # -- test hooks ----------------------------------------------------------------------------
    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of the request log (oldest first)."""
        return self.app.log.snapshot()

    def reset_limits(self) -> None:
        """Forget the ten-secondly, search and daily usage."""
        self.app.ten_secondly.reset()
        self.app.search_limiter.reset()
        self.app.daily.reset()

    def exhaust_daily_quota(self) -> None:
        self.app.daily.use(self.app.daily.limit)

    def add_event(
        self,
        contact_id: str,
        event_type: str,
        properties: Mapping[str, object] | None = None,
        occurred_at: datetime | str | int | None = None,
        *,
        event_id: str | None = None,
    ) -> WebEvent:
        """Record an events-API event (default time: portal now); updates roll-ups and, if
        one changed, lastmodifieddate. Form submissions may name the form by id or title."""
        return self.portal.add_event(
            contact_id, event_type, properties, _to_ms_any(occurred_at), event_id=event_id
        )

    def add_email_event(
        self,
        contact_id: str,
        event_type: str,
        occurred_at: datetime | str | int | None = None,
        *,
        campaign_id: int = 1001,
        url: str | None = None,
    ) -> EmailEvent:
        """Record a marketing e-mail event for a contact's e-mail address."""
        with self.portal.lock:
            rec = self.portal.resolve(contact_id)
            if rec is None or not rec.properties.get("email"):
                raise LookupFailed(contact_id)
            return self.portal.add_email_event(
                rec.properties["email"],
                event_type,
                _to_ms_any(occurred_at),
                campaign_id=campaign_id,
                url=url,
            )

    def submit_form(
        self,
        contact_id: str,
        form: str,
        occurred_at: datetime | str | int | None = None,
        page_url: str = "",
    ) -> WebEvent:
        """A form submission (by form name or id), as an ``e_submitted_form`` event."""
        found = self.portal.form_by_name_or_id(form)
        if found is None:
            raise LookupFailed(form)
        props = {"hs_form_id": found.id, "hs_form_title": found.name, "hs_url": page_url}
        return self.add_event(contact_id, FORM_SUBMISSION, props, occurred_at)

    def set_property(self, contact_id: str, name: str, value: object) -> None:
        """Set a property as a rep would in the UI (bumps lastmodifieddate)."""
        self.portal.set_property(contact_id, name, value)

    def merge(self, primary_id: str, absorbed_id: str) -> ContactRecord:
        return self.portal.merge(primary_id, absorbed_id)

    def archive(self, contact_id: str) -> None:
        self.portal.archive(contact_id)

    def contact(self, contact_id: str) -> ContactRecord:
        """The live record behind an id (absorbed ids resolve to the survivor)."""
        rec = self.portal.resolve(contact_id)
        if rec is None:
            raise LookupFailed(contact_id)
        return rec
