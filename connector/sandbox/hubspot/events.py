"""Engagement: the events API (``/events/v3/events/`` and ``/event-types``: page views, form
submissions, custom ``pe<portal>_*`` events) and marketing e-mail events v1
(``/email/public/v1/events``), with the records they serve."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from connector.sandbox.base import (
    JsonDict,
    Request,
    Response,
    encode_cursor,
    iso_ms,
)
from connector.sandbox.hubspot.api import _NUMERIC_ID, HubSpotApi
from connector.sandbox.hubspot.errors import _bad, _error

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
_CONTACT_OBJECT_TYPES = frozenset({"contact", "contacts", "0-1"})


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


def _form_title(ev: WebEvent) -> str:
    return ev.properties.get("hs_form_title") or ev.properties.get("hs_form_id") or "form"


class EventsAPI(HubSpotApi):
    """The events API and the e-mail events API over the portal's event logs."""

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
        cursor_key = self._key_cursor(cursor, "a" if ascending else "d", "'after' cursor")
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
            body["paging"] = self._next_page(req, nxt)
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
        cursor_key = self._key_cursor(offset, "m", "offset")
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
