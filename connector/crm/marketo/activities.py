"""Activities: type discovery (types.json), the activity streams by paging token (leads seen
first in an activity travel with the events), parsing an activity into an `Event`, and the
Merge Leads activity read into the page's merges (loser id -> winner id)."""

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

# The activity Marketo logs on the winning lead of a merge (type 32 in Marketo's own list,
# found by name in types.json as every type is). "Merge IDs" holds the losers' ids ("[43,44]")
# (Adobe's Experience Platform field mappings for Marketo, activityTypeId 32; Fivetran's
# `activity_merge_leads.merge_ids`). Always read, in the first activity stream with room.
MERGE_LEADS = "merge leads"
MERGE_IDS = "Merge IDs"


def merged_ids(value: Any, winner: str) -> list[str]:
    """The losers' ids a Merge Leads activity names: "[43,44]", "43, 44", 43 or [43, 44]
    (the winner's own id, if listed, left out). InputError naming the value otherwise."""
    items = value if isinstance(value, list) else re.split(r"[\s,;]+", str(value).strip("[] "))
    ids = [str(i).strip() for i in items if str(i).strip()]
    if not ids or any(not i.isdigit() for i in ids) or isinstance(value, bool):
        raise InputError(f"{MERGE_IDS}: not a list of lead ids ({str(value)[:60]!r})")
    return [i for i in dict.fromkeys(ids) if i != winner]


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
            merge = [
                int(t["id"])
                for t in data.get("result") or []
                if isinstance(t, dict)
                and isinstance(t.get("id"), int)
                and str(t.get("name") or "").lower() == MERGE_LEADS
                and int(t["id"]) not in found
            ]
            self._merge_type = merge[0] if merge else None
            if self._merge_type is None:
                log.warning(
                    "Marketo instance has no 'Merge Leads' activity type: a merged-away lead "
                    "is seen as deleted only, its events stay its own"
                )
            self._types = found
        return self._types

    def merge_type(self) -> int | None:
        """The Merge Leads activity type id (read from types.json with the others)."""
        self.activity_types()
        return self._merge_type

    def _type_groups(self) -> list[list[int]]:
        """The type ids read together (<= 10 a call): the configured ones in id order, then
        Merge Leads, last, so it joins the last group where it has room (no extra call) and
        never moves a configured type to another stream (each has its own cursor)."""
        ids = sorted(self.activity_types())
        merge = self.merge_type()
        if merge is not None:
            ids.append(merge)
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
        merge_type = self.merge_type()
        for results, nxt, _more in self._paged(
            "activities.list", "/rest/v1/activities.json", params, start
        ):
            page = EventPage(events=[], position=nxt, high_water=None)
            past_until = False
            winners: list[str] = []
            for act in results:
                try:
                    if merge_type is not None and act.get("activityTypeId") == merge_type:
                        at, winner, losers = self._merge_from(act)
                        ev = None
                    else:
                        ev = self._event_from(act)
                        if ev is None:
                            continue
                        at = ev.occurred_at
                except InputError as exc:
                    rid = str(act.get("marketoGUID") or act.get("id") or "?")
                    page.bad.append(BadRecord(event_record_id(rid), f"activity: {exc}", act))
                    continue
                if until is not None and at >= until:
                    past_until = True
                    continue
                if ev is not None:
                    page.events.append(ev)
                else:  # in log order: a lead merged on after this merge follows it
                    winners.append(winner)
                    for loser in losers:
                        page.merged.pop(loser, None)
                        page.merged[loser] = winner
                if page.high_water is None or at > page.high_water:
                    page.high_water = at
            # a winner never seen yet is read like an activity's lead (its profile scores it)
            unknown = list(dict.fromkeys([*(e.contact_id for e in page.events), *winners]))
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

    def _merge_from(self, act: Mapping[str, Any]) -> tuple[datetime, str, list[str]]:
        """A Merge Leads activity: (when, the winner (the activity's lead), the losers)."""
        guid = opt_text(act.get("marketoGUID"), "marketoGUID")
        if guid is None:
            raise InputError("marketoGUID: missing")
        winner = opt_text(act.get("leadId"), "leadId")
        if winner is None or not winner.isdigit():
            raise InputError(f"{guid}: leadId missing")
        at = parse_timestamp(act.get("activityDate"), "activityDate")
        raw = act.get("attributes") or []
        attrs = (
            {str(a.get("name")).lower(): a.get("value") for a in raw if isinstance(a, dict)}
            if isinstance(raw, list)
            else {str(k).lower(): v for k, v in raw.items()}
            if isinstance(raw, Mapping)
            else {}
        )
        if MERGE_IDS.lower() not in attrs:
            raise InputError(f"{guid}: Merge Leads without '{MERGE_IDS}'")
        try:
            losers = merged_ids(attrs[MERGE_IDS.lower()], winner)
        except InputError as exc:
            raise InputError(f"{guid}: {exc}") from None
        return at, winner, losers

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
