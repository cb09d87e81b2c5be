"""Engagement: the behavioral events stream (events API), marketing e-mail events, one contact's
events, and the roll-up properties fallback when the events API is unavailable."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from connector.crm.base import (
    BadRecord,
    EventPage,
)
from connector.crm.hubspot.calls import (
    MAX_PAGES,
    HubSpotCalls,
    _json_object,
    _ms,
    _next_after,
    _numeric_id,
    _results,
    _rid,
)
from connector.errors import (
    ConfigError,
    ConnectorError,
    InputError,
    RetryableError,
)
from connector.parse import MAX_TEXT, opt_text, parse_timestamp, watched_share
from connector.text import clean_value
from connector.types import Event, event_record_id

MAX_ROLLUP_VIEWS = 200  # page views derived per contact at most (enough for every volume rule)

EMAIL_TYPES = {
    "OPEN": "email_open",
    "CLICK": "email_click",
    "DELIVERED": "email_delivered",
    "BOUNCE": "email_bounce",
    "UNSUBSCRIBED": "email_unsubscribe",
}


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
        except (ValueError, OverflowError):  # `NaN`; `inf`, `1e400` (no int holds them)
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


class EventsMixin(HubSpotCalls):
    """Event streams and their parsing."""

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

    # -- engagement ---------------------------------------------------------------------------
    def event_streams(self) -> Sequence[str]:
        return ("email",) if self.rollups else ("events", "email")

    def backdated_streams(self) -> Sequence[str]:
        """The events API: filtered by `occurredAt`, which the sender of a custom event sets
        (`POST /events/v3/send` takes a past one) and an import carries (a form submission's
        `submittedAt`), with no filter by when HubSpot received it. Marketing e-mail events
        are dated by HubSpot when they happen (`created`): no re-read."""
        return () if self.rollups else ("events",)

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
                    page.bad.append(BadRecord(event_record_id(rid), f"event {rid}: {exc}", item))
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
            share = watched_share(props.get("minutes_watched"), props.get("webinar_minutes"))
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
                    page.bad.append(
                        BadRecord(event_record_id(rid), f"e-mail event {rid}: {exc}", item)
                    )
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
