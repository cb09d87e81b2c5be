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
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import requests
import urllib3
from hubspot import HubSpot
from pydantic import SecretStr
from urllib3.util.retry import Retry

from connector.crm.base import (
    SCORE_PROPERTIES,
    STAGE,
    ApiStats,
    BadRecord,
    ContactPage,
    EventPage,
)
from connector.crm.pacing import RollingPacer
from connector.errors import (
    AuthError,
    ConfigError,
    ConnectorError,
    InputError,
    QuotaExhaustedError,
    RetryableError,
)
from connector.parse import opt_text, parse_timestamp
from connector.retry import RetryPolicy, call_with_retry
from connector.types import Contact, Event, WriteBack, WriteOutcome

log = logging.getLogger(__name__)
T = TypeVar("T")

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
    STAGE: "lifecyclestage",
    "company_name": "company",
    "company_industry": "industry",
    "company_country": "country",
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
]

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
        self._apis = [
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
            raise self._map_error(exc) from None
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

    def _map_error(self, exc: Exception) -> Exception:
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
        ):
            return RetryableError(f"HubSpot unreachable or timed out: {type(exc).__name__}")
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
            return AuthError(
                f"HubSpot refused the token (HTTP {status}): {message[:120]}. "
                "Check LEADSCORE_HUBSPOT_TOKEN and the app's scopes."
            )
        if status >= 500:
            return RetryableError(f"HubSpot server error HTTP {status}")
        return _HttpError(status, message, body)

    # -- properties ---------------------------------------------------------------------------
    def _property_names(self) -> set[str]:
        data, _, _ = self._json_call(
            "properties.list",
            partial(
                self._props.get_all_with_http_info,
                "contacts",
                _request_timeout=self.timeout_s,
                _preload_content=False,
            ),
        )
        return {str(p.get("name")) for p in _results(data, "properties") if isinstance(p, Mapping)}

    def ensure_properties(self) -> list[str]:
        from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate

        created: list[str] = []
        groups, _, _ = self._json_call(
            "groups.list",
            partial(
                self._groups.get_all_with_http_info,
                "contacts",
                _request_timeout=self.timeout_s,
                _preload_content=False,
            ),
        )
        names = {g.get("name") for g in _results(groups, "groups") if isinstance(g, Mapping)}
        if GROUP not in names:
            body = PropertyGroupCreate(
                name=GROUP, label="Lead scoring (leadscore)", display_order=-1
            )
            try:
                self._call(
                    "groups.create",
                    lambda: self._groups.create_with_http_info(
                        "contacts", body, _request_timeout=self.timeout_s
                    ),
                )
                created.append(f"group {GROUP}")
            except _HttpError as exc:
                if exc.status != 409:
                    raise ConfigError(f"cannot create property group {GROUP}: {exc}") from None
        existing = self._property_names()
        for spec in PROPERTY_DEFS:
            if spec["name"] in existing:
                continue
            prop = PropertyCreate(group_name=GROUP, **_snake(spec))
            try:
                self._call(
                    "properties.create",
                    partial(
                        self._props.create_with_http_info,
                        "contacts",
                        prop,
                        _request_timeout=self.timeout_s,
                    ),
                )
                created.append(spec["name"])
            except _HttpError as exc:
                if exc.status != 409:
                    raise ConfigError(f"cannot create property {spec['name']}: {exc}") from None
        return created

    def check_properties(self) -> None:
        names = self._property_names()
        missing = sorted({p["name"] for p in PROPERTY_DEFS} - names)
        if missing:
            raise ConfigError(
                "HubSpot portal lacks properties "
                + ", ".join(missing)
                + ": run `leadscore init-properties` first"
            )
        absent = sorted(set(self.extra_properties) - names)
        if absent:
            raise ConfigError(
                "HubSpot portal lacks the properties company write-back needs: "
                + ", ".join(absent)
                + " (create them, or set LEADSCORE_WRITE_COMPANY_FIELDS=false)"
            )

    # -- contacts -----------------------------------------------------------------------------
    def pull_contacts(
        self, since: datetime | None, until: datetime | None, position: str | None
    ) -> Iterator[ContactPage]:
        from hubspot.crm.contacts import Filter, FilterGroup, PublicObjectSearchRequest

        last_id = int(position) if position else None
        for _ in range(MAX_PAGES):
            filters = []
            if since is not None:
                filters.append(
                    Filter(property_name="lastmodifieddate", operator="GTE", value=_ms(since))
                )
            if until is not None:
                filters.append(
                    Filter(property_name="lastmodifieddate", operator="LT", value=_ms(until))
                )
            if last_id is not None:
                filters.append(
                    Filter(property_name="hs_object_id", operator="GT", value=str(last_id))
                )
            request = PublicObjectSearchRequest(
                filter_groups=[FilterGroup(filters=filters)] if filters else [],
                sorts=["hs_object_id"],
                properties=CONTACT_PROPERTIES,
                limit=self.page_size,
            )
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
            results = _results(data, "contacts.search")
            if not results:
                return
            page = ContactPage(contacts=[], position=None)
            ids: list[int] = []
            for obj in results:
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
                        raw_id, obj.get("properties") or {}
                    )
                except InputError as exc:
                    page.bad.append(BadRecord(_rid(raw_id), f"contact {_rid(raw_id)}: {exc}", obj))
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
        self, raw_id: Any, props: Mapping[str, Any]
    ) -> tuple[Contact, list[Event], list[str]]:
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
            properties={k: v for k, v in props.items() if v is not None},
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
        if deals not in (None, "", "0") and contact.updated_at is not None:
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
                        contact.updated_at,
                        {"name": "deal associated"},
                    )
                )
        merged_raw = props.get("hs_merged_object_ids") or ""
        merged = [m.strip() for m in str(merged_raw).split(";") if m.strip() and m.strip() != cid]
        return contact, derived, merged

    # -- engagement ---------------------------------------------------------------------------
    def event_streams(self) -> Sequence[str]:
        return ("events", "email")

    def pull_events(
        self, stream: str, since: datetime | None, until: datetime | None, position: str | None
    ) -> Iterator[EventPage]:
        if stream == "events":
            return self._pull_behavioral(since, until, position)
        if stream == "email":
            return self._pull_email(since, until, position)
        raise ConfigError(f"unknown HubSpot event stream {stream!r}")

    def _pull_behavioral(
        self, since: datetime | None, until: datetime | None, position: str | None
    ) -> Iterator[EventPage]:
        after = position
        for _ in range(MAX_PAGES):
            kwargs: dict[str, Any] = {
                "object_type": "contact",
                "limit": self.event_page_size,
                "sort": ["ASCENDING"],
                "_request_timeout": self.timeout_s,
            }
            if since is not None:
                kwargs["occurred_after"] = since
            if until is not None:
                kwargs["occurred_before"] = until
            if after:
                kwargs["after"] = after
            data, _, _ = self._call(
                "events.list", partial(self._events.get_page_with_http_info, **kwargs)
            )
            page = EventPage(events=[], position=None, high_water=None)
            for item in data.results or []:
                try:
                    ev = self._event_from(item)
                except InputError as exc:
                    page.bad.append(BadRecord(str(getattr(item, "id", "?")), f"event: {exc}"))
                    continue
                if ev is not None:
                    page.events.append(ev)
                    if page.high_water is None or ev.occurred_at > page.high_water:
                        page.high_water = ev.occurred_at
            nxt = data.paging.next.after if data.paging and data.paging.next else None
            if nxt is not None and nxt == after:
                raise ConnectorError(f"events paging token did not advance ({nxt}); stopping")
            page.position = nxt
            yield page
            if not nxt:
                return
            after = nxt
        raise ConnectorError(f"event paging exceeded {MAX_PAGES} pages")

    def _event_from(self, item: Any) -> Event | None:
        eid = opt_text(getattr(item, "id", None), "id")
        if eid is None:
            raise InputError("id: missing")
        object_id = opt_text(getattr(item, "object_id", None), "objectId")
        if object_id is None:
            raise InputError(f"{eid}: objectId missing")
        etype = opt_text(getattr(item, "event_type", None), "eventType") or ""
        at = parse_timestamp(getattr(item, "occurred_at", None), "occurredAt")
        props = getattr(item, "properties", None) or {}
        if not isinstance(props, Mapping):
            raise InputError(f"{eid}: properties is not an object")
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
        attrs = {k: v for k, v in attrs.items() if v is not None}
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
                data = r.json()
                if not isinstance(data, dict):
                    raise ValueError("not an object")
                return data

            data = self._call("email_events.list", get)
            page = EventPage(events=[], position=None, high_water=None)
            items = data.get("events")
            if not isinstance(items, list):
                raise RetryableError("HubSpot e-mail events page without an events list")
            for item in items:
                try:
                    recipient, ev = self._email_event_from(item)
                except InputError as exc:
                    rid = str(item.get("id", "?")) if isinstance(item, dict) else "?"
                    page.bad.append(BadRecord(rid, f"e-mail event: {exc}", item))
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
            raise InputError(f"{eid}: recipient missing")
        ctype = EMAIL_TYPES.get(str(item.get("type", "")).upper())
        if ctype is None:
            return recipient, None  # SENT, PROCESSED, ...: not engagement
        at = parse_timestamp(item.get("created"), "created")
        attrs = {"campaign": item.get("emailCampaignId"), "url": item.get("url")}
        attrs = {k: v for k, v in attrs.items() if v is not None}
        # the contact id is resolved by the pipeline from the recipient address
        return recipient, Event("hubspot_email", eid, "", ctype, at, attrs)

    # -- write-back -----------------------------------------------------------------------
    def write(self, writes: Sequence[WriteBack]) -> list[WriteOutcome]:
        outcomes: list[WriteOutcome] = []
        for i in range(0, len(writes), self.write_batch):
            outcomes.extend(self._write_batch(writes[i : i + self.write_batch]))
        return outcomes

    def _write_batch(self, batch: Sequence[WriteBack]) -> list[WriteOutcome]:
        from hubspot.crm.contacts import (
            BatchInputSimplePublicObjectBatchInput,
            SimplePublicObjectBatchInput,
        )

        inputs = [
            SimplePublicObjectBatchInput(
                id=w.contact_id,
                properties={PROPERTY_NAMES.get(k, k): v for k, v in w.properties.items()},
            )
            for w in batch
        ]
        body = BatchInputSimplePublicObjectBatchInput(inputs=inputs)
        try:
            data, status, _ = self._call(
                "contacts.batch_update",
                lambda: self._batch.update_with_http_info(body, _request_timeout=self.timeout_s),
            )
        except RetryableError as exc:
            return [WriteOutcome(w.contact_id, False, True, str(exc)) for w in batch]
        except _HttpError as exc:
            archived = exc.status == 404
            return [
                WriteOutcome(w.contact_id, False, False, exc.message or str(exc), archived)
                for w in batch
            ]
        failed: dict[str, WriteOutcome] = {}
        for err in getattr(data, "errors", None) or []:
            category = str(getattr(err, "category", "") or "")
            message = str(getattr(err, "message", "") or category)
            ctx = getattr(err, "context", None) or {}
            ids = ctx.get("ids") if isinstance(ctx, dict) else None
            for cid in ids or []:
                failed[str(cid)] = WriteOutcome(
                    str(cid),
                    ok=False,
                    retryable=category in RETRYABLE_CATEGORIES,
                    error=f"{category}: {message}"[:500],
                    archived=category == "OBJECT_NOT_FOUND",
                )
        ok_ids = {str(r.id) for r in getattr(data, "results", None) or []}
        out: list[WriteOutcome] = []
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


class _HttpError(ConnectorError):
    """A 4xx HubSpot answered that is not auth or rate limit: the caller decides."""

    def __init__(self, status: int, message: str, body: Any) -> None:
        super().__init__(f"HubSpot HTTP {status}: {message[:300]}")
        self.status = status
        self.message = message
        self.body = body


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
    except (TypeError, ValueError):
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


__all__ = ["PROPERTY_DEFS", "PROPERTY_NAMES", "SCORE_PROPERTIES", "HubSpotAdapter"]
