"""Properties and property groups: HubSpot's default contact property catalogue, how a written
value is checked and normalised, and ``/crm/v3/properties/{objectType}`` (+ ``/{name}``,
``/groups``, ``/groups/{name}``)."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connector.industries import HUBSPOT_INDUSTRIES
from connector.sandbox.base import DAY_MS as _DAY_MS
from connector.sandbox.base import JsonDict, Request, Response, iso_ms, parse_time_ms
from connector.sandbox.hubspot.api import HubSpotApi, _is_int
from connector.sandbox.hubspot.errors import BadRequest, PropProblem, _bad, _error
from connector.sandbox.hubspot.object_types import object_type
from connector.types import LIFECYCLE_ORDER

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
    ("associatedcompanyid", "Primary Associated Company ID", "number", "number", _CI, True),
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


def _hubspot_defined(
    table: Sequence[tuple[str, str, str, str, str, bool]],
    options: Mapping[str, list[tuple[str, str]]],
    form_group: str,
    created_ms: int,
) -> list[PropertyDef]:
    """HubSpot-defined properties from a (name, label, type, fieldType, group, read-only)
    table: read-only ones are calculated; writable ones of `form_group` are form fields."""
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
            form_field=group == form_group and not read_only,
            created_ms=created_ms,
            updated_ms=created_ms,
        )
        for i, (name, label, ptype, ftype, group, read_only) in enumerate(table)
    ]


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
    return _hubspot_defined(table, options, _CI, created_ms)


def default_company_groups() -> list[PropertyGroup]:
    return [
        PropertyGroup("companyinformation", "Company information", 0),
        PropertyGroup("sales_properties", "Sales properties", 1),
    ]


_CO = "companyinformation"
# fmt: off
_COMPANY_PROPERTY_TABLE: tuple[tuple[str, str, str, str, str, bool], ...] = (
    ("name", "Company name", "string", "text", _CO, False),
    ("domain", "Company Domain Name", "string", "text", _CO, False),
    ("hs_additional_domains", "Additional Domains", "string", "text", _CO, False),
    ("numberofemployees", "Number of Employees", "number", "number", _CO, False),
    ("industry", "Industry", "enumeration", "select", _CO, False),
    ("annualrevenue", "Annual Revenue", "number", "number", _CO, False),
    ("country", "Country/Region", "string", "text", _CO, False),
    ("city", "City", "string", "text", _CO, False),
    ("phone", "Phone Number", "string", "phonenumber", _CO, False),
    ("website", "Website URL", "string", "text", _CO, False),
    ("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", _CO, False),
    ("hubspot_owner_id", "Company owner", "string", "text", "sales_properties", False),
    ("createdate", "Create Date", "datetime", "date", _CO, True),
    ("hs_lastmodifieddate", "Last Modified Date", "datetime", "date", _CO, True),
    ("hs_object_id", "Record ID", "number", "number", _CO, True),
    ("hs_merged_object_ids", "Merged Company IDs", "enumeration", "checkbox", _CO, True),
    ("num_associated_contacts", "Number of Associated Contacts", "number", "number", _CO,
     True),
)
# fmt: on


def default_company_properties(created_ms: int) -> list[PropertyDef]:
    """HubSpot's default company properties (the ones account scoring reads); `industry` is
    HubSpot's dropdown (:data:`connector.industries.HUBSPOT_INDUSTRIES`), as in a real portal
    (a contact's `industry` is text)."""
    stages = [(s, _STAGE_LABELS.get(s, _title(s))) for s in LIFECYCLE_STAGES]
    options = {"lifecyclestage": stages, "industry": list(HUBSPOT_INDUSTRIES)}
    return _hubspot_defined(_COMPANY_PROPERTY_TABLE, options, _CO, created_ms)


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
# values
# =============================================================================================


@functools.lru_cache(maxsize=262_144)
def _value_ms(value: str) -> int | None:
    try:
        return parse_time_ms(value)
    except ValueError:
        return None


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


# =============================================================================================
# the endpoints
# =============================================================================================


class PropertiesAPI(HubSpotApi):
    """``/crm/v3/properties/{objectType}``: definitions and groups of the portal's properties."""

    def _live_property(self, m: dict[str, str], name: str) -> PropertyDef:
        prop = self.portal.properties_of(object_type(m)).get(name)
        if prop is None or prop.archived:
            raise BadRequest(
                _error(404, f"Unable to find property named '{name}'", "OBJECT_NOT_FOUND")
            )
        return prop

    def _live_group(self, m: dict[str, str], name: str) -> PropertyGroup:
        group = self.portal.store(object_type(m)).groups.get(name)
        if group is None or group.archived:
            raise BadRequest(
                _error(404, f"Unable to find property group '{name}'", "OBJECT_NOT_FOUND")
            )
        return group

    def _list_properties(self, req: Request, m: dict[str, str]) -> Response:
        archived = self._bool_param(req, "archived")
        results = [
            p.to_json()
            for p in self.portal.properties_of(object_type(m)).values()
            if p.archived == archived
        ]
        return Response(200, {"results": results})

    def _get_property(self, req: Request, m: dict[str, str]) -> Response:
        prop = self.portal.properties_of(object_type(m)).get(m["name"])
        if prop is None or (prop.archived and not self._bool_param(req, "archived")):
            return _error(
                404,
                f"Unable to find property named '{m['name']}' for object type "
                f"{object_type(m).label}",
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

    def _create_property(self, req: Request, m: dict[str, str]) -> Response:
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
        if body["groupName"] not in self.portal.store(object_type(m)).groups:
            raise _bad(f"Property group '{body['groupName']}' does not exist")
        props = self.portal.properties_of(object_type(m))
        old = props.get(name)
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
            for rec in self.portal.stores[object_type(m).name].records.values():
                rec.properties.pop(name, None)  # (no record counts as modified)
                rec.history.pop(name, None)
        props[name] = prop
        return Response(201, prop.to_json())

    def _update_property(self, req: Request, m: dict[str, str]) -> Response:
        body = self._json_object(req)
        prop = self._live_property(m, m["name"])
        if prop.hubspot_defined:
            raise _bad(f"Property '{prop.name}' is HubSpot-defined; its definition is read-only")
        if (
            "groupName" in body
            and body["groupName"] not in self.portal.store(object_type(m)).groups
        ):
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
        prop = self._live_property(m, m["name"])
        if prop.hubspot_defined:
            raise _bad(f"Property '{prop.name}' is HubSpot-defined and cannot be archived")
        prop.archived = True
        prop.updated_ms = self.portal.now_ms()
        return Response(204)

    def _list_groups(self, req: Request, m: dict[str, str]) -> Response:
        return Response(
            200,
            {
                "results": [
                    g.to_json()
                    for g in self.portal.store(object_type(m)).groups.values()
                    if not g.archived
                ]
            },
        )

    def _get_group(self, req: Request, m: dict[str, str]) -> Response:
        group = self._live_group(m, m["name"])
        return Response(200, group.to_json())

    def _create_group(self, req: Request, m: dict[str, str]) -> Response:
        body = self._json_object(req)
        for key in ("name", "label"):
            if not isinstance(body.get(key), str) or not body[key]:
                raise _bad(f"Invalid input JSON: '{key}' is required and must be a string")
        name = body["name"]
        if not _PROPERTY_NAME.match(name):
            raise _bad(f"Property group name '{name}' is invalid")
        if name in self.portal.store(object_type(m)).groups:
            return _error(
                409,
                f"A property group named '{name}' already exists.",
                "OBJECT_ALREADY_EXISTS",
                context={"name": [name]},
            )
        display = body.get("displayOrder", -1)
        group = PropertyGroup(name, body["label"], display if _is_int(display) else -1)
        self.portal.store(object_type(m)).groups[name] = group
        return Response(201, group.to_json())

    def _update_group(self, req: Request, m: dict[str, str]) -> Response:
        body = self._json_object(req)
        group = self._live_group(m, m["name"])
        if "label" in body:
            if not isinstance(body["label"], str):
                raise _bad("Invalid input JSON: 'label' must be a string")
            group.label = body["label"]
        if _is_int(body.get("displayOrder")):
            group.display_order = body["displayOrder"]
        return Response(200, group.to_json())

    def _archive_group(self, req: Request, m: dict[str, str]) -> Response:
        group = self._live_group(m, m["name"])
        if any(
            p.group_name == group.name and not p.archived
            for p in self.portal.properties_of(object_type(m)).values()
        ):
            raise _bad(f"Property group '{group.name}' still has properties")
        group.archived = True
        return Response(204)
