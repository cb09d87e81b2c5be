"""Contacts: the keyset search pull (`lastmodifieddate` window, `hs_object_id GT last`), single
reads, the window count, and parsing a HubSpot record into a `Contact`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from functools import partial
from typing import Any

from connector.crm.base import (
    BadRecord,
    ContactPage,
)
from connector.crm.hubspot.calls import (
    MAX_PAGES,
    HubSpotCalls,
    _HttpError,
    _keyset_advance,
    _ms,
    _numeric_id,
    _results,
    _rid,
)
from connector.crm.hubspot.events import _rollup_events
from connector.crm.hubspot.properties import (
    CONTACT_PROPERTIES,
    ROLLUP_PROPERTIES,
)
from connector.errors import (
    ConnectorError,
    InputError,
)
from connector.parse import opt_text, parse_timestamp
from connector.text import clean_value, shown_value
from connector.types import Contact, Event


def _window_filters(since: datetime | None, until: datetime | None) -> list[Any]:
    """Search filters for contacts modified in [since, until)."""
    from hubspot.crm.contacts import Filter

    filters = []
    if since is not None:
        filters.append(Filter(property_name="lastmodifieddate", operator="GTE", value=_ms(since)))
    if until is not None:
        filters.append(Filter(property_name="lastmodifieddate", operator="LT", value=_ms(until)))
    return filters


def _deal_created_at(props: Mapping[str, Any], updated_at: datetime | None) -> datetime | None:
    """When the contact's first deal was created: `first_deal_created_date`, else the day it
    became an opportunity (HubSpot moves a contact there when a deal is created with it), else
    (older data) its last-modified time, an upper bound that our own writes move."""
    for name in ("first_deal_created_date", "hs_lifecyclestage_opportunity_date"):
        raw = props.get(name)
        if raw:
            return parse_timestamp(raw, name)
    return updated_at


class ContactsMixin(HubSpotCalls):
    """Contact pulls and reads."""

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
                properties=self.read_properties() + (ROLLUP_PROPERTIES if self.rollups else []),
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
            last_id = _keyset_advance(last_id, ids)
            page.position = str(last_id)
            yield page
            if len(results) < self.page_size:
                return
        raise ConnectorError(f"contact paging exceeded {MAX_PAGES} pages")

    def _search_json(self, request: Any) -> dict[str, Any]:
        """One contacts search (paced by the search limiter), its JSON body."""
        return self._search_call("contacts.search", self._search, request)

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
        checked = self.checked_names()
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
                {k: v for k, v in props.items() if v is not None and k not in checked}
            ),
            crm_values={
                key: shown_value(props[name]) for name, key in checked.items() if name in props
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
                    properties=self.read_properties() + (ROLLUP_PROPERTIES if self.rollups else []),
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
