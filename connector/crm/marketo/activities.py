"""Activities: type discovery (types.json), the activity streams by paging token (leads seen
first in an activity travel with the events) and parsing an activity into an `Event`."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from connector.crm.base import (
    BadRecord,
    EventPage,
)
from connector.crm.marketo.calls import log
from connector.crm.marketo.leads import LeadsMixin, _normalize_status
from connector.errors import (
    ConfigError,
    InputError,
)
from connector.parse import opt_text, parse_timestamp, watched_share
from connector.text import clean_value
from connector.types import Event, event_record_id

MAX_TYPE_IDS = 10
SOURCE = "marketo"


# Activity types read (when configured in LEADSCORE_MARKETO_ACTIVITY_TYPES) as status changes
STATUS_CHANGE_TYPES = frozenset({"change data value", "change status in progression"})


def _squash(name: str) -> str:
    """ "Lead Status" and "leadStatus" -> "leadstatus": a field's display and REST names."""
    return re.sub(r"[\s_]+", "", name).lower()


class ActivitiesMixin(LeadsMixin):
    """Activity types and streams."""

    # -- engagement ------------------------------------------------------------------------
    def activity_types(self) -> dict[int, tuple[str, str]]:
        """Activity type id -> (Marketo name, our event type), for the configured names."""
        if self._types is None:
            data = self._call("activities.types", "GET", "/rest/v1/activities/types.json")
            wanted = {k.lower(): v for k, v in self.config.activity_types.items()}
            found: dict[int, tuple[str, str]] = {}
            for t in data.get("result") or []:
                if not isinstance(t, dict) or not isinstance(t.get("id"), int):
                    continue
                for label in (t.get("name"), t.get("apiName")):
                    if isinstance(label, str) and label.lower() in wanted:
                        found[int(t["id"])] = (str(t.get("name")), wanted[label.lower()])
                        break
            names = {n.lower() for n, _ in found.values()}
            missing = sorted(k for k in self.config.activity_types if k.lower() not in names)
            if missing:
                log.warning("Marketo instance has no activity types %s: not read", missing)
            if not found:
                raise ConfigError(
                    "none of the configured Marketo activity types exist in this instance "
                    "(LEADSCORE_MARKETO_ACTIVITY_TYPES)"
                )
            self._types = found
        return self._types

    def _type_groups(self) -> list[list[int]]:
        ids = sorted(self.activity_types())
        return [ids[i : i + MAX_TYPE_IDS] for i in range(0, len(ids), MAX_TYPE_IDS)]

    def event_streams(self) -> Sequence[str]:
        n = len(self._type_groups())
        return tuple("activities" if i == 0 else f"activities.{i + 1}" for i in range(n))

    def backdated_streams(self) -> Sequence[str]:
        """Every activity stream: a date-based paging token (`sinceDatetime`) returns the
        activities dated after it, and a custom activity is added with the `activityDate`
        its sender gives (`/rest/v1/activities/external.json`), a past one too."""
        return self.event_streams()

    def pull_events(
        self, stream: str, since: datetime | None, until: datetime | None, position: str | None
    ) -> Iterator[EventPage]:
        streams = list(self.event_streams())
        if stream not in streams:
            raise ConfigError(f"unknown Marketo event stream {stream!r}")
        type_ids = self._type_groups()[streams.index(stream)]
        return self._pull_activities(type_ids, since, until, position)

    def _pull_activities(
        self,
        type_ids: Sequence[int],
        since: datetime | None,
        until: datetime | None,
        position: str | None,
    ) -> Iterator[EventPage]:
        params = {
            "activityTypeIds": ",".join(str(t) for t in type_ids),
            "batchSize": str(self.page_size),
        }
        start = position or self._paging_token(since)
        for results, nxt, _more in self._paged(
            "activities.list", "/rest/v1/activities.json", params, start
        ):
            page = EventPage(events=[], position=nxt, high_water=None)
            past_until = False
            for act in results:
                try:
                    ev = self._event_from(act)
                except InputError as exc:
                    rid = str(act.get("marketoGUID") or act.get("id") or "?")
                    page.bad.append(BadRecord(event_record_id(rid), f"activity: {exc}", act))
                    continue
                if ev is None:
                    continue
                if until is not None and ev.occurred_at >= until:
                    past_until = True
                    continue
                page.events.append(ev)
                if page.high_water is None or ev.occurred_at > page.high_water:
                    page.high_water = ev.occurred_at
            unknown = list(dict.fromkeys(e.contact_id for e in page.events))
            unknown = [cid for cid in unknown if cid not in self._known and cid.isdigit()]
            if unknown and self._stored_leads is not None:
                # leads the caller stores already: their changes come as lead changes, so an
                # activity (one read again behind the cursor too) is no reason to read them
                stored = self._stored_leads(unknown)
                for cid in stored:
                    self._remember(cid)
                unknown = [cid for cid in unknown if cid not in stored]
            if unknown:
                contacts, bad = self._get_leads(unknown)
                page.contacts, page.bad = contacts, page.bad + bad
                gone = set(unknown) - {c.id for c in contacts}
                if gone:  # deleted since: nothing to score or write
                    page.events = [e for e in page.events if e.contact_id not in gone]
            yield page
            if past_until:
                return

    def _event_from(self, act: Mapping[str, Any]) -> Event | None:
        guid = opt_text(act.get("marketoGUID"), "marketoGUID")
        if guid is None:
            raise InputError("marketoGUID: missing")
        lead = opt_text(act.get("leadId"), "leadId")
        if lead is None:
            raise InputError(f"{guid}: leadId missing")
        type_id = act.get("activityTypeId")
        known = self.activity_types().get(type_id) if isinstance(type_id, int) else None
        if known is None:
            return None
        type_name, etype = known
        at = parse_timestamp(act.get("activityDate"), "activityDate")
        raw_attrs = act.get("attributes") or []
        if isinstance(raw_attrs, Mapping):
            attrs = dict(raw_attrs)
        elif isinstance(raw_attrs, list):
            attrs = {
                str(a.get("name")): a.get("value")
                for a in raw_attrs
                if isinstance(a, dict) and a.get("name") is not None
            }
        else:
            raise InputError(f"{guid}: attributes is neither a list nor an object")
        primary = act.get("primaryAttributeValue")
        out: dict[str, Any]
        if etype == "page_view":
            out = {
                "url": attrs.get("Webpage URL") or primary,
                "referrer": attrs.get("Referrer URL"),
                "title": primary,
            }
        elif etype == "form_submit":
            out = {
                "form": primary,
                "form_id": act.get("primaryAttributeValueId"),
                "url": attrs.get("Referrer URL"),
            }
        elif etype in ("webinar_attended", "webinar_registered"):
            out = {"name": primary}
            if etype == "webinar_attended":
                watched = attrs.get("Minutes Watched")
                out["minutes_watched"] = watched
                share = watched_share(watched, attrs.get("Webinar Minutes"))
                if share is not None:
                    out["watched_share"] = share
        elif type_name.lower() in STATUS_CHANGE_TYPES:
            change = self._status_change(type_name, primary, attrs)
            if change is None:  # another field's change (our own score writes among them)
                return None
            out, etype = change, "custom"
        elif etype.startswith("email_"):
            out = {"campaign": primary, "url": attrs.get("Link")}
        else:
            out = {"name": type_name, **attrs}
        clean = clean_value({k: v for k, v in out.items() if v is not None and v != ""})
        return Event(SOURCE, guid, lead, etype, at, clean)

    def _status_change(
        self, type_name: str, primary: Any, attrs: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """A lead status (Change Data Value on the status or stage field) or program status
        (Change Status in Progression) change, as a `custom` event calibrate dates
        conversions by: {name, field|program, new_value, stage, lead_status}."""
        if type_name.lower() == "change data value":
            wanted = {_squash(self.config.status_field), _squash(self.config.stage_field or "")}
            if _squash(str(primary or "")) not in wanted - {""}:
                return None
            new = opt_text(attrs.get("New Value"), "New Value")
            return {
                "name": "status_changed",
                "field": primary,
                "new_value": new,
                "stage": self._status_stages.get(new.strip().lower()) if new else None,
                "lead_status": _normalize_status(new),
            }
        new = opt_text(attrs.get("New Status"), "New Status")
        return {
            "name": "program_status_changed",
            "program": primary,
            "new_value": new,
            "stage": self._status_stages.get(new.strip().lower()) if new else None,
            "lead_status": _normalize_status(new),
        }
