"""HubSpot adapter on the official SDK (`hubspot-api-client`).

The only module that knows HubSpot's shapes. It
- sets an explicit timeout on every call, turns urllib3's own retry off, and maps every failure
  onto the project's error tree; `connector.retry` owns the retrying;
- paces itself from the `X-HubSpot-RateLimit-*` headers (typed APIs are called through their
  `*_with_http_info` variants to see them) and keeps search under its per-second limit;
- reads contacts by `lastmodifieddate >= since` sorted by `hs_object_id`, paging by keyset
  (`hs_object_id GT last`), so it never pages past the 10,000-result cap and fails loudly when
  a page does not advance;
- reads engagement as whole-portal streams (events API, marketing e-mail events), one call per
  page rather than one per contact;
- writes through batch update (<= 100) and reports a per-record outcome for 200 and 207.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import requests
import urllib3
from hubspot import HubSpot
from pydantic import SecretStr
from urllib3.util.retry import Retry

from connector.crm.base import (
    CHECKED_PROPERTIES,
    SCORE_PROPERTIES,
    STAGE,
    ApiStats,
    BadRecord,
    CompanyLinks,
    CompanyPage,
    ContactPage,
    CrmCompany,
    EventPage,
)
from connector.crm.network import unreachable
from connector.crm.pacing import RollingPacer
from connector.errors import (
    AuthError,
    ConfigError,
    ConnectorError,
    InputError,
    MissingPropertiesError,
    QuotaExhaustedError,
    RetryableError,
)
from connector.parse import MAX_TEXT, opt_text, parse_timestamp
from connector.retry import RetryPolicy, call_with_retry
from connector.text import clean_value
from connector.types import Contact, Event, WriteBack, WriteOutcome

log = logging.getLogger(__name__)
T = TypeVar("T")

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
PRIMARY_COMPANY_TYPE_ID = 1  # contact → company "Primary" (HUBSPOT_DEFINED); 279 is unlabeled
MAX_ASSOCIATION_INPUTS = 1000  # associations v4 batch read, since 2025-02-10

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

# Roll-ups every plan has: read with the contacts when the events API is unavailable.
ROLLUP_PROPERTIES = [
    "hs_analytics_num_page_views",
    "hs_analytics_last_visit_timestamp",
    "first_conversion_event_name",
    "first_conversion_date",
    "recent_conversion_event_name",
    "recent_conversion_date",
]
MAX_ROLLUP_VIEWS = 200  # page views derived per contact at most (enough for every volume rule)

EMAIL_TYPES = {
    "OPEN": "email_open",
    "CLICK": "email_click",
    "DELIVERED": "email_delivered",
    "BOUNCE": "email_bounce",
    "UNSUBSCRIBED": "email_unsubscribe",
}
RETRYABLE_CATEGORIES = {"RATE_LIMITS", "RATE_LIMIT", "INTERNAL_ERROR", "TIMEOUT"}
MAX_PAGES = 100_000  # a hard bound on any paging loop (20M records at 200 a page)


def _ms(dt: datetime) -> str:
    return str(int(dt.timestamp() * 1000))


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class HubSpotAdapter:
    name = "hubspot"
    # the pulled property that shows a contact already carries our scores (see Pipeline)
    score_marker = "leadscore_model_version"

    def __init__(
        self,
        token: SecretStr,
        base_url: str = "https://api.hubapi.com",
        *,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        page_size: int = 200,
        event_page_size: int = 1000,
        write_batch: int = 100,
        search_per_second: float = 4.0,
        pacer: RollingPacer | None = None,
        sleep: Callable[[float], None] = time.sleep,
        portal_id: int | None = None,
        extra_properties: Sequence[str] = (),
        accounts: bool = False,
        priority_labels: Sequence[str] = DEFAULT_PRIORITY_LABELS,
    ) -> None:
        if token is None or not token.get_secret_value():
            raise ConfigError("LEADSCORE_HUBSPOT_TOKEN is not set")
        self._token = token
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.retry_policy = retry or RetryPolicy()
        self.page_size = min(page_size, 200)
        self.event_page_size = event_page_size
        self.write_batch = min(write_batch, 100)
        self.stats = ApiStats()
        self._sleep = sleep
        self.pacer = pacer or RollingPacer(sleep=sleep)
        self.search_pacer = RollingPacer(
            max_calls=max(1, int(search_per_second)), interval_s=1.0, headroom=1.0, sleep=sleep
        )
        self.portal_id = portal_id
        # more CRM properties the sync will write (e.g. company fields): checked at start
        self.extra_properties = tuple(PROPERTY_NAMES.get(p, p) for p in extra_properties)
        # the options `ensure_properties` gives the priority property: the model's labels
        self.priority_labels = tuple(priority_labels)
        # True when the portal's events API is unavailable (plan or scope): engagement then
        # comes from the roll-up properties on every plan (see ROLLUP_PROPERTIES)
        self.rollups = False
        self._probed = False
        self._stamps: dict[str, str] = {}
        # account scoring: company properties in init-properties and the check, companies
        # and associations read, companies written
        self.accounts = accounts
        client = HubSpot(
            access_token=token.get_secret_value(),
            host=self.base_url,
            retry=Retry(total=0, connect=0, read=0, redirect=0, status=0, other=0),
        )
        # build each API object once: every discovery access creates a new pool
        self._search = client.crm.contacts.search_api
        self._basic = client.crm.contacts.basic_api
        self._batch = client.crm.contacts.batch_api
        self._props = client.crm.properties.core_api
        self._groups = client.crm.properties.groups_api
        self._events = client.events.events_api
        self._company_search = client.crm.companies.search_api
        self._company_batch = client.crm.companies.batch_api
        self._assoc = client.crm.associations.v4.batch_api
        self._apis = [
            self._company_search,
            self._company_batch,
            self._assoc,
            self._search,
            self._basic,
            self._batch,
            self._props,
            self._groups,
            self._events,
        ]
        self._http = requests.Session()
        self._http.headers["Authorization"] = f"Bearer {token.get_secret_value()}"

    def __repr__(self) -> str:
        return f"HubSpotAdapter(base_url={self.base_url!r}, token=SecretStr('**********'))"

    def close(self) -> None:
        self._http.close()
        for api in self._apis:
            client = api.api_client
            try:
                client.close()
            finally:
                client.rest_client.pool_manager.clear()

    # -- the one place a call is made -------------------------------------------------------
    def _call(self, kind: str, fn: Callable[[], T], *, search: bool = False) -> T:
        return call_with_retry(
            partial(self._call_once, kind, fn, search=search),
            self.retry_policy,
            sleep=self._sleep,
            on_retry=self._on_retry(kind),
        )

    def _call_once(self, kind: str, fn: Callable[[], T], *, search: bool = False) -> T:
        if search:
            self.search_pacer.acquire()
        else:
            self.pacer.acquire()
        self.stats.count(kind)
        try:
            result = fn()
        except Exception as exc:  # mapped below; nothing escapes unmapped
            log.debug("hubspot %s failed: %s", kind, type(exc).__name__)
            raise self._map_error(exc, kind) from None
        headers = _headers_of(result)
        if headers is not None and not search:
            self.pacer.observe(headers)
        return result

    def _on_retry(self, kind: str) -> Callable[[RetryableError, int], None]:
        def on_retry(exc: RetryableError, attempt_no: int) -> None:
            self.stats.retries += 1
            log.info("hubspot %s retry %d: %s", kind, attempt_no, exc)

        return on_retry

    def _json_call(
        self, kind: str, fn: Callable[[], Any], *, search: bool = False
    ) -> tuple[dict[str, Any], int, Mapping[str, str]]:
        """Call an SDK `*_with_http_info` method built with `_preload_content=False` and read
        its JSON ourselves. The SDK's models turn a body that is not JSON (a proxy's HTML page,
        a cut-off answer) into an empty page, which would end a stream early and lose records,
        and one malformed record into an exception for the whole page; here the first is a
        retryable error and the second one bad record."""
        return self._call(kind, partial(_read_json, fn), search=search)

    def _map_error(self, exc: Exception, kind: str = "call") -> Exception:
        status = getattr(exc, "status", None)
        if isinstance(status, int) and status > 0:
            body_text = _body_text(getattr(exc, "body", None))
            headers = getattr(exc, "headers", None) or {}
            return self._map_status(status, body_text, headers)
        if isinstance(exc, requests.HTTPError) and exc.response is not None:
            r = exc.response
            return self._map_status(r.status_code, r.text, r.headers)
        if isinstance(
            exc,
            urllib3.exceptions.HTTPError | requests.ConnectionError | requests.Timeout | OSError,
        ) or (status == 0 and "SSL" in str(getattr(exc, "reason", ""))):
            # no HTTP answer: refused, DNS, TLS, timeout, dropped (the SDK turns TLS trouble
            # into a status-0 ApiException)
            return unreachable("HubSpot", self.base_url, exc, kind)
        if isinstance(exc, ConnectorError):
            return exc
        if isinstance(exc, ValueError | TypeError | KeyError):
            return RetryableError(f"HubSpot sent an unreadable response: {type(exc).__name__}")
        # anything else (the SDK's status-0 ApiException on TLS trouble, a model it cannot
        # build...): stop the run with a message rather than a traceback
        reason = getattr(exc, "reason", None) or str(exc)
        return ConnectorError(f"HubSpot call failed: {type(exc).__name__}: {str(reason)[:200]}")

    def _map_status(self, status: int, body_text: str, headers: Mapping[str, str]) -> Exception:
        body = _json_or_none(body_text)
        message = str(body.get("message", "")) if isinstance(body, dict) else body_text[:200]
        if status == 429:
            self.stats.rate_limited += 1
            policy = body.get("policyName") if isinstance(body, dict) else None
            if policy == "DAILY":
                return QuotaExhaustedError(
                    "HubSpot daily API limit reached; the run stops and resumes after the reset "
                    "(midnight in the portal's time zone)",
                    resets_at=None,
                )
            wait = _retry_after(headers) or self.pacer.interval_s / 10
            self.pacer.backoff(wait)
            return _RateLimited(f"HubSpot rate limit ({policy or 'unknown policy'})", wait)
        if status in (401, 403):
            refused = AuthError(
                f"HubSpot refused the token (HTTP {status}): {message[:120]}. "
                "Check LEADSCORE_HUBSPOT_TOKEN and the private app's scopes: "
                + scopes_text()
                + (
                    " and, for account scoring, " + " ".join(ACCOUNT_SCOPES)
                    if self.accounts
                    else ""
                )
            )
            refused.category = body.get("category") if isinstance(body, dict) else None
            return refused
        if status >= 500:
            return RetryableError(f"HubSpot server error HTTP {status}")
        return _HttpError(status, message, body)

    # -- properties ---------------------------------------------------------------------------
    def _property_names(self, object_type: str = "contacts") -> set[str]:
        """The property names of `object_type`; for contacts, remembers when ours were created
        (`property_stamps`)."""
        data, _, _ = self._json_call(
            "properties.list",
            partial(
                self._props.get_all_with_http_info,
                object_type,
                _request_timeout=self.timeout_s,
                _preload_content=False,
            ),
        )
        listed = [p for p in _results(data, "properties") if isinstance(p, Mapping)]
        if object_type != "contacts":
            return {str(p.get("name")) for p in listed}
        self._stamps = {
            CHECKED_NAMES[str(p.get("name"))]: str(p.get("createdAt") or "")
            for p in listed
            if str(p.get("name")) in CHECKED_NAMES
        }
        return {str(p.get("name")) for p in listed}

    def property_stamps(self, *, refresh: bool = False) -> dict[str, str]:
        """When each of our properties was created, by our names, as of the last properties
        list (`check_properties`; `refresh`: list them now, one call): a newer stamp means it
        was deleted and re-created, so it is empty on every contact."""
        if refresh or not self._stamps:
            self._property_names()
        return dict(self._stamps)

    def _group_names(self, object_type: str = "contacts") -> set[str]:
        groups, _, _ = self._json_call(
            "groups.list",
            partial(
                self._groups.get_all_with_http_info,
                object_type,
                _request_timeout=self.timeout_s,
                _preload_content=False,
            ),
        )
        return {str(g.get("name")) for g in _results(groups, "groups") if isinstance(g, Mapping)}

    def ensure_properties(self) -> list[str]:
        created: list[str] = []
        contact_defs = PROPERTY_DEFS + (CONTACT_ACCOUNT_DEFS if self.accounts else [])
        self._ensure_for("contacts", contact_defs, created)
        if self.accounts:
            self._ensure_for("companies", COMPANY_PROPERTY_DEFS, created)
        return created

    def _ensure_for(
        self, object_type: str, defs: Sequence[Mapping[str, Any]], created: list[str]
    ) -> None:
        """Create the lead_scoring group and `defs` on `object_type` where missing."""
        from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate

        label = "" if object_type == "contacts" else "company "
        if GROUP not in self._group_names(object_type):
            body = PropertyGroupCreate(
                name=GROUP, label="Lead scoring (leadscore)", display_order=-1
            )
            create_group = partial(
                self._groups.create_with_http_info,
                object_type,
                body,
                _request_timeout=self.timeout_s,
                _preload_content=False,
            )
            checked = self._create_checked(
                "groups.create",
                f"{label}property group",
                GROUP,
                create_group,
                partial(self._group_names, object_type),
                created,
            )
            if checked:
                created.append(f"{label}group {GROUP}")
        existing = self._property_names(object_type)
        for spec in defs:
            if spec["name"] in existing:
                continue
            if spec["name"] == PRIORITY_PROPERTY:
                spec = priority_property(self.priority_labels)
            prop = PropertyCreate(group_name=GROUP, **_snake(spec))
            create = partial(
                self._props.create_with_http_info,
                object_type,
                prop,
                _request_timeout=self.timeout_s,
                _preload_content=False,
            )
            checked = self._create_checked(
                "properties.create",
                f"{label}property",
                spec["name"],
                create,
                partial(self._property_names, object_type),
                created,
            )
            if checked:
                created.append(f"{label}{spec['name']}")

    def _create_checked(
        self,
        kind: str,
        what: str,
        name: str,
        create: Callable[[], Any],
        read_back: Callable[[], set[str]],
        created: Sequence[str],
    ) -> bool:
        """Create `name`: True once HubSpot's answer (a JSON object with that name) or, failing
        that, a read-back of the list shows it exists; False on 409 (it existed already).
        Anything else (an error, a 200 carrying a proxy's HTML page and no such object) is a
        ConfigError naming it: a property is never reported created on a status code alone."""
        try:
            raw, status, headers = self._call(kind, partial(_read_raw, create))
        except _HttpError as exc:
            if exc.status == 409:
                return False
            raise ConfigError(f"cannot create {what} {name}: {exc}{_so_far(created)}") from None
        except RetryableError as exc:  # retries spent (5xx, timeouts): say which one
            raise RetryableError(f"cannot create {what} {name}: {exc}{_so_far(created)}") from None
        answer = _json_or_none(raw.decode("utf-8", "replace"))
        if isinstance(answer, Mapping) and answer.get("name") == name:
            return True
        if name in read_back():
            log.info("hubspot %s: answer did not show %s, the list read back does", kind, name)
            return True
        ctype = headers.get("content-type") or headers.get("Content-Type") or "no content type"
        raise ConfigError(
            f"cannot create {what} {name}: HubSpot answered HTTP {status} with {ctype} "
            f"({len(raw)} bytes), not the {what}, and it is not in the list read back "
            f"(a proxy or firewall page?){_so_far(created)}"
        )

    def check_properties(self) -> None:
        names = self._property_names()
        wanted = PROPERTY_DEFS + (CONTACT_ACCOUNT_DEFS if self.accounts else [])
        missing = sorted({p["name"] for p in wanted} - names)
        if self.accounts:
            company_names = self._property_names("companies")
            missing += sorted(
                f"companies.{p['name']}"
                for p in COMPANY_PROPERTY_DEFS
                if p["name"] not in company_names
            )
        if missing:
            raise MissingPropertiesError(
                "HubSpot portal lacks properties "
                + ", ".join(missing)
                + ": run `leadscore init-properties` first",
                missing,
                "run `leadscore init-properties`",
            )
        self.probe_engagement()
        absent = sorted(set(self.extra_properties) - names)
        if absent:
            raise MissingPropertiesError(
                "HubSpot portal lacks the properties company write-back needs: "
                + ", ".join(absent)
                + " (create them, or set LEADSCORE_WRITE_COMPANY_FIELDS=false)",
                absent,
                "create them, or set LEADSCORE_WRITE_COMPANY_FIELDS=false,",
            )

    def probe_engagement(self) -> bool:
        """Ask the events API for one event; 403/404 (not on the plan, or the token lacks the
        scope) switches engagement to the roll-up properties. Returns True in roll-up mode."""
        if self._probed:
            return self.rollups
        try:
            self._json_call(  # raw JSON: one malformed event must not fail the probe
                "events.probe",
                partial(
                    self._events.get_page_with_http_info,
                    object_type="contact",
                    limit=1,
                    _request_timeout=self.timeout_s,
                    _preload_content=False,
                ),
            )
        except (_HttpError, AuthError) as exc:
            status = exc.status if isinstance(exc, _HttpError) else 403
            if isinstance(exc, AuthError) and exc.category != "MISSING_SCOPES":
                raise  # a refused token stops the run; a missing scope is a plan limit
            if status not in (403, 404):
                raise
            log.warning(
                "HubSpot events API unavailable (HTTP %s): scoring engagement from roll-up "
                "properties (page view counts, conversions, e-mail opt-out)",
                status,
            )
            self.rollups = True
        self._probed = True
        return self.rollups

    # -- contacts -----------------------------------------------------------------------------
    def pull_contacts(
        self, since: datetime | None, until: datetime | None, position: str | None
    ) -> Iterator[ContactPage]:
        from hubspot.crm.contacts import Filter, FilterGroup, PublicObjectSearchRequest

        last_id = int(position) if position else None
        for _ in range(MAX_PAGES):
            filters = _window_filters(since, until)
            if last_id is not None:
                filters.append(
                    Filter(property_name="hs_object_id", operator="GT", value=str(last_id))
                )
            request = PublicObjectSearchRequest(
                filter_groups=[FilterGroup(filters=filters)] if filters else [],
                sorts=["hs_object_id"],
                properties=READ_PROPERTIES + (ROLLUP_PROPERTIES if self.rollups else []),
                limit=self.page_size,
            )
            data = self._search_json(request)
            results = _results(data, "contacts.search")
            if not results:
                return
            page = ContactPage(contacts=[], position=None)
            ids: list[int] = []
            for pos, obj in enumerate(results, 1):
                raw_id = obj.get("id") if isinstance(obj, Mapping) else None
                num_id = _numeric_id(raw_id)
                if num_id is not None:
                    ids.append(num_id)  # a bad record still moves the keyset on
                try:
                    if not isinstance(obj, Mapping):
                        raise InputError(f"expected an object, got {type(obj).__name__}")
                    if num_id is None:
                        raise InputError(f"id {raw_id!r} is not numeric")
                    contact, derived, merged = self._contact_from(
                        raw_id, obj.get("properties") or {}, ours=True
                    )
                except InputError as exc:
                    rid = _rid(raw_id, pos)
                    page.bad.append(BadRecord(rid, f"contact {rid}: {exc}", obj))
                    continue
                page.contacts.append(contact)
                page.events.extend(derived)
                for absorbed in merged:
                    page.merged[absorbed] = contact.id
            if not ids:
                raise ConnectorError("HubSpot search page had no usable ids; stopping")
            new_last = max(ids)
            if last_id is not None and new_last <= last_id:
                raise ConnectorError(
                    f"HubSpot search page did not advance (last id {last_id} → {new_last}); "
                    "stopping instead of looping"
                )
            last_id = new_last
            page.position = str(last_id)
            yield page
            if len(results) < self.page_size:
                return
        raise ConnectorError(f"contact paging exceeded {MAX_PAGES} pages")

    def _search_json(self, request: Any) -> dict[str, Any]:
        """One contacts search (paced by the search limiter), its JSON body."""
        data, _, _ = self._json_call(
            "contacts.search",
            partial(
                self._search.do_search_with_http_info,
                request,
                _request_timeout=self.timeout_s,
                _preload_content=False,
            ),
            search=True,
        )
        return data

    def get_contact(self, contact_id: str) -> Contact | None:
        try:
            data, _, _ = self._json_call(
                "contacts.get",
                partial(
                    self._basic.get_by_id_with_http_info,
                    contact_id,
                    properties=CONTACT_PROPERTIES,
                    _request_timeout=self.timeout_s,
                    _preload_content=False,
                ),
            )
        except _HttpError as exc:
            if exc.status == 404:
                return None
            raise
        contact, _, _ = self._contact_from(data.get("id"), data.get("properties") or {})
        return contact

    def _contact_from(
        self, raw_id: Any, props: Mapping[str, Any], *, ours: bool = False
    ) -> tuple[Contact, list[Event], list[str]]:
        """The contact, its derived events and merged ids. `ours`: our score properties were
        asked for, so the values HubSpot sent of them (null: empty) go into `crm_values`; one
        it did not send at all (no `properties`) is not compared."""
        cid = opt_text(raw_id, "id")
        if cid is None:
            raise InputError("id: missing")
        if not isinstance(props, Mapping):
            raise InputError(f"properties: expected an object, got {type(props).__name__}")
        updated = props.get("lastmodifieddate")
        contact = Contact(
            id=cid,
            email=(opt_text(props.get("email"), "email") or None),
            first_name=opt_text(props.get("firstname"), "firstname"),
            last_name=opt_text(props.get("lastname"), "lastname"),
            job_title=opt_text(props.get("jobtitle"), "jobtitle"),
            company_name=opt_text(props.get("company"), "company"),
            country=opt_text(props.get("country"), "country"),
            lifecycle_stage=opt_text(props.get("lifecyclestage"), "lifecyclestage"),
            lead_status=opt_text(props.get("hs_lead_status"), "hs_lead_status"),
            created_at=parse_timestamp(props["createdate"], "createdate")
            if props.get("createdate")
            else None,
            updated_at=parse_timestamp(updated, "lastmodifieddate") if updated else None,
            properties=clean_value(
                {k: v for k, v in props.items() if v is not None and k not in CHECKED_NAMES}
            ),
            crm_values={
                key: _shown(props[name]) for name, key in CHECKED_NAMES.items() if name in props
            }
            if ours
            else None,
        )
        derived: list[Event] = []
        meeting = props.get("engagements_last_meeting_booked")
        if meeting:
            at = parse_timestamp(meeting, "engagements_last_meeting_booked")
            derived.append(
                Event(
                    "hubspot_props",
                    f"meeting:{cid}:{_ms(at)}",
                    cid,
                    "meeting_booked",
                    at,
                    {"title": "meeting booked"},
                )
            )
        deals = props.get("num_associated_deals")
        deal_at = _deal_created_at(props, contact.updated_at)
        if deals not in (None, "", "0") and deal_at is not None:
            try:
                has_deal = float(str(deals)) > 0
            except ValueError:
                raise InputError(f"num_associated_deals: not a number ({deals!r})") from None
            if has_deal:
                derived.append(
                    Event(
                        "hubspot_props",
                        f"deal:{cid}",
                        cid,
                        "deal_opened",
                        deal_at,
                        {"name": "deal associated"},
                    )
                )
        if self.rollups:
            derived.extend(_rollup_events(cid, props))
        merged_raw = opt_text(props.get("hs_merged_object_ids"), "hs_merged_object_ids") or ""
        merged = [m.strip() for m in merged_raw.split(";") if m.strip() and m.strip() != cid]
        if any(_numeric_id(m) is None for m in merged):  # a garbage id would become a merge
            raise InputError(f"hs_merged_object_ids: not a list of ids ({merged_raw[:60]!r})")
        return contact, derived, merged

    def fetch_contact_page(self, contact_id: str) -> ContactPage | None:
        """One contact as a one-contact page (with its derived events and merges), or None
        when it does not exist: a webhook's contact, stored like a pulled page."""
        try:
            data, _, _ = self._json_call(
                "contacts.get",
                partial(
                    self._basic.get_by_id_with_http_info,
                    contact_id,
                    properties=READ_PROPERTIES + (ROLLUP_PROPERTIES if self.rollups else []),
                    _request_timeout=self.timeout_s,
                    _preload_content=False,
                ),
            )
        except _HttpError as exc:
            if exc.status == 404:
                return None
            raise
        contact, derived, merged = self._contact_from(
            data.get("id"), data.get("properties") or {}, ours=True
        )
        page = ContactPage(contacts=[contact], position=None, events=derived)
        for absorbed in merged:
            page.merged[absorbed] = contact.id
        return page

    def pull_contact_events(self, contact_id: str, since: datetime | None) -> list[Event]:
        """One contact's behavioural events since `since` (events API `objectId` filter), for
        scoring a hand-raiser at once. Empty in roll-up mode (the contact carries them)."""
        num_id = _numeric_id(contact_id)
        if self.rollups or num_id is None:
            return []
        events: list[Event] = []
        for page in self._pull_behavioral(since, None, None, object_id=num_id):
            events.extend(page.events)
        return events

    def count_contacts(self, since: datetime | None, until: datetime | None) -> int | None:
        """How many contacts changed in [since, until) (search `total`; one call), for a
        progress bar. None when HubSpot does not say."""
        from hubspot.crm.contacts import FilterGroup, PublicObjectSearchRequest

        filters = _window_filters(since, until)
        request = PublicObjectSearchRequest(
            filter_groups=[FilterGroup(filters=filters)] if filters else [],
            properties=["hs_object_id"],
            limit=1,
        )
        data = self._search_json(request)
        total = data.get("total")
        return total if isinstance(total, int) and not isinstance(total, bool) else None

    # -- engagement ---------------------------------------------------------------------------
    def event_streams(self) -> Sequence[str]:
        return ("email",) if self.rollups else ("events", "email")

    def pull_events(
        self, stream: str, since: datetime | None, until: datetime | None, position: str | None
    ) -> Iterator[EventPage]:
        if stream == "events":
            return self._pull_behavioral(since, until, position)
        if stream == "email":
            return self._pull_email(since, until, position)
        raise ConfigError(f"unknown HubSpot event stream {stream!r}")

    def _pull_behavioral(
        self,
        since: datetime | None,
        until: datetime | None,
        position: str | None,
        object_id: int | None = None,
    ) -> Iterator[EventPage]:
        after = position
        for _ in range(MAX_PAGES):
            kwargs: dict[str, Any] = {
                "object_type": "contact",
                "limit": self.event_page_size,
                "sort": ["ASCENDING"],
                "_request_timeout": self.timeout_s,
            }
            if object_id is not None:
                kwargs["object_id"] = object_id
            if since is not None:
                kwargs["occurred_after"] = since
            if until is not None:
                kwargs["occurred_before"] = until
            if after:
                kwargs["after"] = after
            data, _, _ = self._json_call(
                "events.list",
                partial(self._events.get_page_with_http_info, _preload_content=False, **kwargs),
            )
            page = EventPage(events=[], position=None, high_water=None)
            for pos, item in enumerate(_results(data, "events.list"), 1):
                try:
                    ev = self._event_from(item)
                except InputError as exc:
                    rid = _rid(item.get("id") if isinstance(item, Mapping) else None, pos)
                    page.bad.append(BadRecord(rid, f"event {rid}: {exc}", item))
                    continue
                if ev is not None:
                    page.events.append(ev)
                    if page.high_water is None or ev.occurred_at > page.high_water:
                        page.high_water = ev.occurred_at
            nxt = _next_after(data)
            if nxt is not None and nxt == after:
                raise ConnectorError(f"events paging token did not advance ({nxt}); stopping")
            page.position = nxt
            yield page
            if not nxt:
                return
            after = nxt
        raise ConnectorError(f"event paging exceeded {MAX_PAGES} pages")

    def _event_from(self, item: Any) -> Event | None:
        """One result of the events API (its JSON object) → an Event, or InputError."""
        if not isinstance(item, Mapping):
            raise InputError(f"expected an object, got {type(item).__name__}")
        eid = opt_text(item.get("id"), "id")
        if eid is None:
            raise InputError("id: missing")
        object_id = opt_text(item.get("objectId"), "objectId")
        if object_id is None:
            raise InputError("objectId missing")
        etype = opt_text(item.get("eventType"), "eventType") or ""
        at = parse_timestamp(item.get("occurredAt"), "occurredAt")
        props = item.get("properties") or {}
        if not isinstance(props, Mapping):
            raise InputError(f"properties: expected an object, got {type(props).__name__}")
        attrs: dict[str, Any]
        if etype == "e_visited_page":
            ctype, attrs = (
                "page_view",
                {"url": props.get("hs_url"), "title": props.get("hs_page_title")},
            )
            if props.get("hs_referrer"):
                attrs["referrer"] = props.get("hs_referrer")
        elif etype == "e_submitted_form":
            ctype = "form_submit"
            attrs = {
                "form": props.get("hs_form_title") or props.get("hs_form_id"),
                "form_id": props.get("hs_form_id"),
                "url": props.get("hs_url"),
            }
        elif etype.endswith("_webinar_attended"):
            ctype = "webinar_attended"
            attrs = {
                "name": props.get("webinar_name"),
                "minutes_watched": props.get("minutes_watched"),
            }
            share = _share(props.get("minutes_watched"), props.get("webinar_minutes"))
            if share is not None:
                attrs["watched_share"] = share
        elif etype.endswith("_webinar_registered"):
            ctype, attrs = "webinar_registered", {"name": props.get("webinar_name")}
        else:
            ctype, attrs = "custom", {"name": etype, **{k: v for k, v in props.items()}}
        # free text is cut as contact fields are: a 1 MB "URL" is not a URL
        attrs = {k: v[:MAX_TEXT] if isinstance(v, str) else v for k, v in attrs.items()}
        attrs = clean_value({k: v for k, v in attrs.items() if v is not None})
        return Event("hubspot_events", eid, object_id, ctype, at, attrs)

    def _pull_email(
        self, since: datetime | None, until: datetime | None, position: str | None
    ) -> Iterator[EventPage]:
        offset = position
        url = f"{self.base_url}/email/public/v1/events"
        for _ in range(MAX_PAGES):
            params: dict[str, str] = {"limit": str(self.event_page_size)}
            if since is not None:
                params["startTimestamp"] = _ms(since)
            if until is not None:
                params["endTimestamp"] = _ms(until)
            if offset:
                params["offset"] = offset

            def get(params: dict[str, str] = params) -> dict[str, Any]:
                r = self._http.get(url, params=params, timeout=self.timeout_s)
                if r.status_code >= 400:
                    r.raise_for_status()
                self.pacer.observe(r.headers)
                return _json_object(r.content, r.status_code, r.headers)

            data = self._call("email_events.list", get)
            page = EventPage(events=[], position=None, high_water=None)
            items = data.get("events")
            if not isinstance(items, list):
                raise RetryableError("HubSpot e-mail events page without an events list")
            for pos, item in enumerate(items, 1):
                try:
                    recipient, ev = self._email_event_from(item)
                except InputError as exc:
                    rid = _rid(item.get("id") if isinstance(item, dict) else None, pos)
                    page.bad.append(BadRecord(rid, f"e-mail event {rid}: {exc}", item))
                    continue
                if ev is None:
                    continue
                page.unresolved.append((recipient, ev))
                if page.high_water is None or ev.occurred_at > page.high_water:
                    page.high_water = ev.occurred_at
            nxt = data.get("offset") if data.get("hasMore") else None
            if nxt is not None and str(nxt) == offset:
                raise ConnectorError(f"e-mail events offset did not advance ({nxt}); stopping")
            page.position = str(nxt) if nxt is not None else None
            yield page
            if nxt is None:
                return
            offset = str(nxt)
        raise ConnectorError(f"e-mail event paging exceeded {MAX_PAGES} pages")

    def _email_event_from(self, item: Any) -> tuple[str, Event | None]:
        if not isinstance(item, dict):
            raise InputError("not an object")
        eid = opt_text(item.get("id"), "id")
        if eid is None:
            raise InputError("id: missing")
        recipient = (opt_text(item.get("recipient"), "recipient") or "").lower()
        if not recipient:
            raise InputError("recipient missing")
        ctype = EMAIL_TYPES.get((opt_text(item.get("type"), "type") or "").upper())
        if ctype is None:
            return recipient, None  # SENT, PROCESSED, ...: not engagement
        at = parse_timestamp(item.get("created"), "created")
        attrs = {"campaign": item.get("emailCampaignId"), "url": item.get("url")}
        attrs = clean_value({k: v for k, v in attrs.items() if v is not None})
        # the contact id is resolved by the pipeline from the recipient address
        return recipient, Event("hubspot_email", eid, "", ctype, at, attrs)

    # -- accounts (companies, associations v4) -------------------------------------------
    def pull_companies(self, since: datetime | None, position: str | None) -> Iterator[CompanyPage]:
        """Companies modified since `since` (`hs_lastmodifieddate`), sorted by id and paged by
        keyset (`hs_object_id GT last`), like contacts: never past the 10,000-result cap."""
        from hubspot.crm.companies import Filter, FilterGroup, PublicObjectSearchRequest

        last_id = int(position) if position else None
        for _ in range(MAX_PAGES):
            filters = []
            if since is not None:
                filters.append(
                    Filter(property_name="hs_lastmodifieddate", operator="GTE", value=_ms(since))
                )
            if last_id is not None:
                filters.append(
                    Filter(property_name="hs_object_id", operator="GT", value=str(last_id))
                )
            request = PublicObjectSearchRequest(
                filter_groups=[FilterGroup(filters=filters)] if filters else [],
                sorts=["hs_object_id"],
                properties=COMPANY_READ_PROPERTIES,
                limit=self.page_size,
            )
            data, _, _ = self._json_call(
                "companies.search",
                partial(
                    self._company_search.do_search_with_http_info,
                    request,
                    _request_timeout=self.timeout_s,
                    _preload_content=False,
                ),
                search=True,
            )
            results = _results(data, "companies.search")
            if not results:
                return
            page = CompanyPage(companies=[], position=None)
            ids: list[int] = []
            for pos, obj in enumerate(results, 1):
                raw_id = obj.get("id") if isinstance(obj, Mapping) else None
                num_id = _numeric_id(raw_id)
                if num_id is not None:
                    ids.append(num_id)
                try:
                    if not isinstance(obj, Mapping) or num_id is None:
                        raise InputError(f"id {raw_id!r} is not numeric")
                    company, merged = _company_from(str(num_id), obj.get("properties") or {})
                except InputError as exc:
                    rid = _rid(raw_id, pos)
                    page.bad.append(BadRecord(rid, f"company {rid}: {exc}", obj))
                    continue
                page.companies.append(company)
                page.companies.extend(CrmCompany(m, merged_into=company.id) for m in merged)
            if not ids:
                raise ConnectorError("HubSpot company search page had no usable ids; stopping")
            new_last = max(ids)
            if last_id is not None and new_last <= last_id:
                raise ConnectorError(
                    f"HubSpot company search page did not advance (last id {last_id} → "
                    f"{new_last}); stopping instead of looping"
                )
            last_id = new_last
            page.position = str(last_id)
            yield page
            if len(results) < self.page_size:
                return
        raise ConnectorError(f"company paging exceeded {MAX_PAGES} pages")

    def get_companies(self, company_ids: Sequence[str]) -> list[CrmCompany]:
        """Batch-read companies (100 a call); ids HubSpot no longer has are left out."""
        from hubspot.crm.companies import (
            BatchReadInputSimplePublicObjectId,
            SimplePublicObjectId,
        )

        out: list[CrmCompany] = []
        ids = [i for i in dict.fromkeys(company_ids) if _numeric_id(i) is not None]
        for i in range(0, len(ids), 100):
            body = BatchReadInputSimplePublicObjectId(
                inputs=[SimplePublicObjectId(id=c) for c in ids[i : i + 100]],
                properties=COMPANY_READ_PROPERTIES,
                properties_with_history=[],
            )
            try:
                data, _, _ = self._json_call(
                    "companies.batch_read",
                    partial(
                        self._company_batch.read_with_http_info,
                        body,
                        _request_timeout=self.timeout_s,
                        _preload_content=False,
                    ),
                )
            except _HttpError as exc:
                if exc.status == 404:
                    continue
                raise
            for obj in _results(data, "companies.batch_read"):
                if not isinstance(obj, Mapping) or _numeric_id(obj.get("id")) is None:
                    continue
                try:
                    company, _ = _company_from(str(obj["id"]), obj.get("properties") or {})
                except InputError as exc:
                    log.warning("hubspot company %s unreadable: %s", _rid(obj.get("id")), exc)
                    continue
                out.append(company)
        return out

    def company_links(self, contact_ids: Sequence[str]) -> dict[str, CompanyLinks]:
        """Each contact's companies by associations v4 batch read (1,000 inputs a call; a
        contact with more companies than one answer holds is read on by its `after`). The
        primary company is the association of typeId 1; a contact with none maps to no
        entry."""
        from hubspot.crm.associations.v4 import (
            BatchInputPublicFetchAssociationsBatchRequest,
            PublicFetchAssociationsBatchRequest,
        )

        found: dict[str, list[str]] = {}
        primary: dict[str, str] = {}
        pending: list[tuple[str, str | None]] = [
            (c, None) for c in dict.fromkeys(contact_ids) if _numeric_id(c) is not None
        ]
        for _ in range(MAX_PAGES):
            if not pending:
                break
            chunk, pending = (
                pending[:MAX_ASSOCIATION_INPUTS],
                pending[MAX_ASSOCIATION_INPUTS:],
            )
            body = BatchInputPublicFetchAssociationsBatchRequest(
                inputs=[PublicFetchAssociationsBatchRequest(id=c, after=a) for c, a in chunk]
            )
            data, _, _ = self._json_call(
                "associations.batch_read",
                partial(
                    self._assoc.get_page_with_http_info,
                    "contacts",
                    "companies",
                    body,
                    _request_timeout=self.timeout_s,
                    _preload_content=False,
                ),
            )
            asked = {c: a for c, a in chunk}
            for res in _results(data, "associations.batch_read"):
                if not isinstance(res, Mapping):
                    continue
                frm = res.get("from")
                cid = str(frm.get("id")) if isinstance(frm, Mapping) else None
                if cid is None or cid not in asked:
                    continue
                for to in res.get("to") or []:
                    if not isinstance(to, Mapping) or _numeric_id(to.get("toObjectId")) is None:
                        continue
                    company = str(to["toObjectId"])
                    ids = found.setdefault(cid, [])
                    if company not in ids:
                        ids.append(company)
                    types = to.get("associationTypes") or []
                    if any(
                        isinstance(t, Mapping)
                        and t.get("typeId") == PRIMARY_COMPANY_TYPE_ID
                        and t.get("category") == "HUBSPOT_DEFINED"
                        for t in types
                    ):
                        primary[cid] = company
                after = _next_after(res) if isinstance(res.get("paging"), Mapping) else None
                if after is not None and after != asked[cid]:
                    pending.append((cid, after))
            # a contact with no association is absent from the answer (or a 207 error)
        return {
            cid: CompanyLinks(primary.get(cid), tuple(sorted(ids, key=_id_sort)))
            for cid, ids in found.items()
        }

    def write_companies(self, writes: Sequence[WriteBack]) -> list[WriteOutcome]:
        """Batch-update companies (`WriteBack.contact_id` is the company id), 100 a call,
        a per-record outcome from 200 and 207 (404 / OBJECT_NOT_FOUND: archived). Setting a
        property to the value it has is idempotent, so a batch whose answer never came is
        simply sent again by the retry policy."""
        from hubspot.crm.companies import (
            BatchInputSimplePublicObjectBatchInput,
            SimplePublicObjectBatchInput,
        )

        out: list[WriteOutcome] = []
        for i in range(0, len(writes), self.write_batch):
            batch = writes[i : i + self.write_batch]
            body = BatchInputSimplePublicObjectBatchInput(
                inputs=[
                    SimplePublicObjectBatchInput(
                        id=w.contact_id,
                        properties={
                            COMPANY_PROPERTY_NAMES.get(k, k): v for k, v in w.properties.items()
                        },
                    )
                    for w in batch
                ]
            )
            try:
                data, status, _ = self._json_call(
                    "companies.batch_update",
                    partial(
                        self._company_batch.update_with_http_info,
                        body,
                        _request_timeout=self.timeout_s,
                        _preload_content=False,
                    ),
                )
            except RetryableError as exc:
                out.extend(WriteOutcome(w.contact_id, False, True, str(exc)) for w in batch)
                continue
            except _HttpError as exc:
                out.extend(
                    WriteOutcome(
                        w.contact_id,
                        False,
                        False,
                        exc.message or str(exc),
                        archived=exc.status == 404 and len(batch) == 1,
                    )
                    for w in batch
                )
                continue
            failed: dict[str, WriteOutcome] = {}
            for err in data.get("errors") or []:
                if not isinstance(err, Mapping):
                    continue
                category = str(err.get("category") or "")
                message = str(err.get("message") or category)
                ctx = err.get("context")
                ids = ctx.get("ids") if isinstance(ctx, Mapping) else None
                for cid in ids if isinstance(ids, list) else []:
                    failed[str(cid)] = WriteOutcome(
                        str(cid),
                        ok=False,
                        retryable=category in RETRYABLE_CATEGORIES,
                        error=f"{category}: {message}"[:500],
                        archived=category == "OBJECT_NOT_FOUND",
                    )
            ok_ids = {str(r.get("id")) for r in _results(data, "companies.batch_update")
                      if isinstance(r, Mapping)}  # fmt: skip
            for w in batch:
                if w.contact_id in failed:
                    out.append(failed[w.contact_id])
                elif w.contact_id in ok_ids or status == 200:
                    out.append(WriteOutcome(w.contact_id, True))
                else:
                    out.append(
                        WriteOutcome(w.contact_id, False, True, "not in HubSpot's batch response")
                    )
        return out

    # -- write-back -----------------------------------------------------------------------
    def write(self, writes: Sequence[WriteBack]) -> list[WriteOutcome]:
        outcomes: list[WriteOutcome] = []
        for i in range(0, len(writes), self.write_batch):
            outcomes.extend(self._write_batch(writes[i : i + self.write_batch]))
        return outcomes

    def _write_batch(self, batch: Sequence[WriteBack]) -> list[WriteOutcome]:
        """One batch update, retried by the one retry policy. An attempt that ends without a
        readable answer (timeout, dropped connection, 5xx, a body that is not JSON) may have
        been applied by HubSpot: before the next attempt the records are read back, and those
        already showing our values count as written. So no record is applied twice; only a
        429 is known not to have been applied and is simply sent again."""
        remaining = list(batch)
        confirmed: set[str] = set()
        unsure = False

        def attempt() -> tuple[dict[str, Any], int] | None:
            nonlocal remaining, unsure
            if unsure:
                got = self.confirm_written(remaining)
                confirmed.update(got)
                remaining = [w for w in remaining if w.contact_id not in got]
                unsure = False
                if not remaining:
                    return None
            send = partial(
                self._batch.update_with_http_info,
                _batch_body(remaining),
                _request_timeout=self.timeout_s,
                _preload_content=False,
            )
            unsure = True
            try:
                data, status, _ = self._call_once(
                    "contacts.batch_update", partial(_read_json, send)
                )
            except _RateLimited:
                unsure = False  # rejected before it was applied
                raise
            # a 2xx JSON object is not enough ("status 200 means written" would count a
            # proxy's `{}` as every record written): HubSpot's answer always lists results
            if not isinstance(data.get("results"), list):
                raise RetryableError("HubSpot batch update answer has no results list")
            if not isinstance(data.get("errors", []), list):
                raise RetryableError("HubSpot batch update answer: errors is not a list")
            unsure = False
            return data, status

        failure: WriteOutcome | None = None
        try:
            answer = call_with_retry(
                attempt,
                self.retry_policy,
                sleep=self._sleep,
                on_retry=self._on_retry("contacts.batch_update"),
            )
        except RetryableError as exc:
            answer = None
            failure = WriteOutcome("", False, True, str(exc))
        except _HttpError as exc:
            answer = None
            failure = WriteOutcome(
                "", False, False, exc.message or str(exc), archived=exc.status == 404
            )
        failed: dict[str, WriteOutcome] = {}
        ok_ids: set[str] = set()
        status = 0
        if answer is not None:
            data, status = answer
            for err in data.get("errors") or []:
                if not isinstance(err, Mapping):
                    continue
                category = str(err.get("category") or "")
                message = str(err.get("message") or category)
                ctx = err.get("context")
                ids = ctx.get("ids") if isinstance(ctx, Mapping) else None
                for cid in ids if isinstance(ids, list) else []:
                    failed[str(cid)] = WriteOutcome(
                        str(cid),
                        ok=False,
                        retryable=category in RETRYABLE_CATEGORIES,
                        error=f"{category}: {message}"[:500],
                        archived=category == "OBJECT_NOT_FOUND",
                    )
            ok_ids = {str(r.get("id")) for r in data.get("results") or [] if isinstance(r, Mapping)}
        out: list[WriteOutcome] = []
        for w in batch:
            if w.contact_id in confirmed:
                out.append(WriteOutcome(w.contact_id, True))
            elif failure is not None:
                out.append(replace(failure, contact_id=w.contact_id))
            elif w.contact_id in failed:
                out.append(failed[w.contact_id])
            elif w.contact_id in ok_ids or status == 200:
                out.append(WriteOutcome(w.contact_id, True))
            else:
                out.append(
                    WriteOutcome(w.contact_id, False, True, "not in HubSpot's batch response")
                )
        return out

    def confirm_written(self, writes: Sequence[WriteBack]) -> set[str]:
        """The ids whose CRM values already equal the write, read back by batch read.

        After a write whose outcome is unknown (the process died, the answer never came), this
        tells a write HubSpot applied from one it never got, so nothing is sent twice.
        """
        from hubspot.crm.contacts import BatchReadInputSimplePublicObjectId, SimplePublicObjectId

        confirmed: set[str] = set()
        for i in range(0, len(writes), 100):
            chunk = writes[i : i + 100]
            names = sorted({PROPERTY_NAMES.get(k, k) for w in chunk for k in w.properties})
            body = BatchReadInputSimplePublicObjectId(
                inputs=[SimplePublicObjectId(id=w.contact_id) for w in chunk],
                properties=names,
                properties_with_history=[],
            )
            try:
                data, _, _ = self._json_call(
                    "contacts.batch_read",
                    partial(
                        self._batch.read_with_http_info,
                        body,
                        _request_timeout=self.timeout_s,
                        _preload_content=False,
                    ),
                )
            except _HttpError as exc:  # cannot be read back for good: count as not applied
                log.warning("hubspot cannot read back %d contact(s): %s", len(chunk), exc)
                continue
            found: dict[str, Mapping[str, Any]] = {}
            for rec in _results(data, "contacts.batch_read"):
                if isinstance(rec, Mapping) and isinstance(rec.get("properties"), Mapping):
                    found[str(rec.get("id"))] = rec["properties"]
            for w in chunk:
                shown = found.get(w.contact_id)
                if shown is not None and all(
                    _same_value(PROPERTY_NAMES.get(k, k), v, shown.get(PROPERTY_NAMES.get(k, k)))
                    for k, v in w.properties.items()
                ):
                    confirmed.add(w.contact_id)
        return confirmed


class _RateLimited(RetryableError):
    """A ten-secondly 429: HubSpot refused the call before doing anything."""


class _HttpError(ConnectorError):
    """A 4xx HubSpot answered that is not auth or rate limit: the caller decides."""

    def __init__(self, status: int, message: str, body: Any) -> None:
        super().__init__(f"HubSpot HTTP {status}: {message[:300]}")
        self.status = status
        self.message = message
        self.body = body


def _batch_body(writes: Sequence[WriteBack]) -> Any:
    from hubspot.crm.contacts import (
        BatchInputSimplePublicObjectBatchInput,
        SimplePublicObjectBatchInput,
    )

    return BatchInputSimplePublicObjectBatchInput(
        inputs=[
            SimplePublicObjectBatchInput(
                id=w.contact_id,
                properties={PROPERTY_NAMES.get(k, k): v for k, v in w.properties.items()},
            )
            for w in writes
        ]
    )


def _read_raw(fn: Callable[[], Any]) -> tuple[bytes, int, Mapping[str, str]]:
    """Run an SDK call made with `_preload_content=False`: its body, status and headers."""
    resp = fn()
    try:
        raw = resp.data
    finally:
        resp.release_conn()
    return raw, resp.status, resp.headers


def _read_json(fn: Callable[[], Any]) -> tuple[dict[str, Any], int, Mapping[str, str]]:
    """Run an SDK call made with `_preload_content=False` and parse its body ourselves."""
    raw, status, headers = _read_raw(fn)
    return _json_object(raw, status, headers), status, headers


def _so_far(created: Sequence[str]) -> str:
    return f" (created before it: {', '.join(created)})" if created else ""


def _json_object(raw: bytes, status: int, headers: Mapping[str, str]) -> dict[str, Any]:
    """The JSON object of a 2xx body, or a RetryableError saying what came instead."""
    try:
        data = json.loads(raw) if raw else None
    except (ValueError, RecursionError):
        ctype = headers.get("content-type") or headers.get("Content-Type") or "no content type"
        head = raw[:60].decode("utf-8", "replace")
        raise RetryableError(
            f"HubSpot answered HTTP {status} with a body that is not JSON ({ctype}, "
            f"{len(raw)} bytes: {head!r}): a proxy page or a cut-off answer"
        ) from None
    if not isinstance(data, dict):
        raise RetryableError(
            f"HubSpot answered HTTP {status} with {type(data).__name__} instead of a JSON object"
        )
    return data


def _results(data: Mapping[str, Any], what: str) -> list[Any]:
    results = data.get("results")
    if not isinstance(results, list):
        raise RetryableError(f"HubSpot {what} answer has no results list")
    return results


def _next_after(data: Mapping[str, Any]) -> str | None:
    paging = data.get("paging")
    nxt = paging.get("next") if isinstance(paging, Mapping) else None
    after = nxt.get("after") if isinstance(nxt, Mapping) else None
    if paging is not None and not isinstance(paging, Mapping):
        raise RetryableError("HubSpot events answer: paging is not an object")
    if after is None or after == "":
        return None
    if isinstance(after, bool) or not isinstance(after, str | int):
        raise RetryableError(f"HubSpot events answer: paging cursor is a {type(after).__name__}")
    return str(after)


def _numeric_id(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if raw >= 0 else None
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 30:
        return int(raw)
    return None


def _rid(raw: Any, position: int | None = None) -> str:
    """A record id for messages and dead letters, whatever the CRM sent (without an id: its
    position on the page)."""
    if raw is None or raw == "":
        return f"#{position} on its page" if position is not None else "?"
    text = raw if isinstance(raw, str) else repr(raw)
    return text[:100]


def _shown(value: Any) -> str:
    """A property value as text, as we write it ("" for empty; HubSpot may send a number)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _same_value(name: str, want: str, shown: Any) -> bool:
    """Does the CRM show the value we wrote? (HubSpot returns a cleared value as "" or null.)"""
    got = "" if shown is None else shown
    if not isinstance(got, str):
        return False
    if want == got:
        return True
    if name == PROPERTY_NAMES["scored_at"] and want and got:
        try:
            return parse_timestamp(want) == parse_timestamp(got)
        except InputError:
            return False
    return False


def _window_filters(since: datetime | None, until: datetime | None) -> list[Any]:
    """Search filters for contacts modified in [since, until)."""
    from hubspot.crm.contacts import Filter

    filters = []
    if since is not None:
        filters.append(Filter(property_name="lastmodifieddate", operator="GTE", value=_ms(since)))
    if until is not None:
        filters.append(Filter(property_name="lastmodifieddate", operator="LT", value=_ms(until)))
    return filters


def _headers_of(result: Any) -> Mapping[str, str] | None:
    if isinstance(result, tuple) and len(result) == 3:
        headers = result[2]
        if isinstance(headers, Mapping):
            return headers
        try:
            return dict(headers)
        except (TypeError, ValueError):
            return None
    return None


def _body_text(body: Any) -> str:
    if body is None:
        return ""
    if isinstance(body, bytes):
        return body.decode("utf-8", "replace")
    return str(body)


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for k, v in headers.items():
        if k.lower() == "retry-after":
            try:
                return float(v)
            except ValueError:
                return None
    return None


def _share(watched: Any, total: Any) -> float | None:
    try:
        w, t = float(watched), float(total)
    except (TypeError, ValueError, OverflowError):  # a 400-digit integer is no duration
        return None
    if t <= 0 or w != w or t != t:
        return None
    return max(0.0, min(1.0, w / t))


def _snake(spec: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in spec.items():
        key = {"fieldType": "field_type", "groupName": "group_name"}.get(k, k)
        if key == "options":
            from hubspot.crm.properties import OptionInput

            v = [
                OptionInput(label=o["label"], value=o["value"], display_order=o["displayOrder"])
                for o in v
            ]
        out[key] = v
    return out


__all__ = [
    "OPTIONAL_SCOPES",
    "PROPERTY_DEFS",
    "PROPERTY_NAMES",
    "REQUIRED_SCOPES",
    "SCORE_PROPERTIES",
    "HubSpotAdapter",
    "scopes_text",
]


def _id_sort(cid: str) -> tuple[int, str]:
    return (int(cid), cid) if cid.isdigit() else (1 << 62, cid)


def _company_from(cid: str, props: Mapping[str, Any]) -> tuple[CrmCompany, list[str]]:
    """A company search/read result → CrmCompany and the ids merged into it."""
    if not isinstance(props, Mapping):
        raise InputError(f"properties: expected an object, got {type(props).__name__}")
    domain = (opt_text(props.get("domain"), "domain") or "").strip().lower()
    domain = domain.removeprefix("https://").removeprefix("http://").removeprefix("www.")
    domain = domain.split("/", 1)[0]
    employees = _number(props.get("numberofemployees"), "numberofemployees")
    revenue = _number(props.get("annualrevenue"), "annualrevenue")
    updated = props.get("hs_lastmodifieddate")
    merged_raw = opt_text(props.get("hs_merged_object_ids"), "hs_merged_object_ids") or ""
    merged = [m.strip() for m in merged_raw.split(";") if m.strip() and m.strip() != cid]
    if any(_numeric_id(m) is None for m in merged):
        raise InputError(f"hs_merged_object_ids: not a list of ids ({merged_raw[:60]!r})")
    company = CrmCompany(
        id=cid,
        domain=domain or None,
        name=opt_text(props.get("name"), "name"),
        industry=opt_text(props.get("industry"), "industry"),
        employee_count=int(employees) if employees is not None else None,
        annual_revenue_usd=revenue,
        country=opt_text(props.get("country"), "country"),
        updated_at=parse_timestamp(updated, "hs_lastmodifieddate") if updated else None,
    )
    return company, merged


def _number(raw: Any, name: str) -> float | None:
    if raw is None or raw == "":
        return None
    try:
        value = float(str(raw))
    except ValueError:
        raise InputError(f"{name}: not a number ({str(raw)[:40]!r})") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise InputError(f"{name}: not a number ({str(raw)[:40]!r})")
    return value


def _rollup_events(cid: str, props: Mapping[str, Any]) -> list[Event]:
    """Events derived from roll-up properties, with ids stable across reads, so a replay adds
    nothing and only a grown count adds events. Page view k of a contact is
    `rollup:pv:<id>:<k>`; a view first seen in this read is dated at the last visit (the
    roll-ups keep no per-view date or URL, so URL rules cannot match them; volume and
    distinct-day rules can)."""
    out: list[Event] = []
    for name_key, date_key in (
        ("first_conversion_event_name", "first_conversion_date"),
        ("recent_conversion_event_name", "recent_conversion_date"),
    ):
        name, when = props.get(name_key), props.get(date_key)
        if name and when:
            at = parse_timestamp(when, date_key)
            out.append(
                Event(
                    "hubspot_rollup",
                    f"conv:{cid}:{_ms(at)}",
                    cid,
                    "form_submit",
                    at,
                    {"form": str(name)[:200]},
                )
            )
    views = props.get("hs_analytics_num_page_views")
    last = props.get("hs_analytics_last_visit_timestamp")
    if views not in (None, "") and last:
        try:
            count = int(float(str(views)))
        except ValueError:
            raise InputError(f"hs_analytics_num_page_views: not a number ({views!r})") from None
        at = parse_timestamp(last, "hs_analytics_last_visit_timestamp")
        first = max(1, count - MAX_ROLLUP_VIEWS + 1)
        out.extend(
            Event("hubspot_rollup", f"pv:{cid}:{k}", cid, "page_view", at, {})
            for k in range(first, count + 1)
        )
    if str(props.get("hs_email_optout") or "").lower() == "true":
        at = parse_timestamp(props.get("lastmodifieddate"), "lastmodifieddate")
        out.append(Event("hubspot_rollup", f"optout:{cid}", cid, "email_unsubscribe", at, {}))
    return out


def _deal_created_at(props: Mapping[str, Any], updated_at: datetime | None) -> datetime | None:
    """When the contact's first deal was created: `first_deal_created_date`, else the day it
    became an opportunity (HubSpot moves a contact there when a deal is created with it), else
    (older data) its last-modified time, an upper bound that our own writes move."""
    for name in ("first_deal_created_date", "hs_lifecyclestage_opportunity_date"):
        raw = props.get(name)
        if raw:
            return parse_timestamp(raw, name)
    return updated_at
