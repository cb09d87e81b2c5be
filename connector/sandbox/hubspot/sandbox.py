"""The public handle: start a HubSpot sandbox on 127.0.0.1, read and poke its portal."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from connector.sandbox.base import (
    Faults,
    RequestRecord,
    RunningSandbox,
    open_store,
    parse_time_ms,
    to_ms,
)
from connector.sandbox.hubspot.app import DEFAULT_TOKEN, HubSpotApp
from connector.sandbox.hubspot.errors import LookupFailed
from connector.sandbox.hubspot.events import FORM_SUBMISSION, EmailEvent, WebEvent
from connector.sandbox.hubspot.fixtures import load_portal
from connector.sandbox.hubspot.object_types import COMPANIES
from connector.sandbox.hubspot.portal import ContactRecord, Portal


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
        store = open_store(
            portal, Portal, lambda: Portal(now=now), lambda fixture: load_portal(fixture, now)
        )
        app = HubSpotApp(
            store,
            token=token,
            rate_limit=rate_limit,
            daily_limit=daily_limit,
            search_rate_limit=search_rate_limit,
            time_scale=time_scale,
            faults=faults,
        )
        return cls.serve(app, port=port, keep_alive=keep_alive)

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

    def company(self, company_id: str) -> ContactRecord:
        """The live company behind an id (merged ids resolve to the survivor)."""
        rec = self.portal.resolve(company_id, ot=COMPANIES)
        if rec is None:
            raise LookupFailed(company_id)
        return rec

    def associate(self, contact_id: str, company_id: str, *, primary: bool = False) -> None:
        """Associate a contact with a company (as primary: moves the contact's primary)."""
        self.portal.associate(
            self.contact(contact_id), self.company(company_id), {1} if primary else set()
        )
