"""Activities: the activity types (``/rest/v1/activities/types.json``), paging tokens
(``pagingtoken.json``), ``/rest/v1/activities.json``, ``leadchanges.json`` and
``deletedleads.json``, paged by scanning the time-ordered activity log."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

from connector.sandbox.base import (
    JsonDict,
    Request,
    Response,
    decode_cursor,
    encode_cursor,
    iso_s,
    parse_time_ms,
)
from connector.sandbox.marketo.api import _JSON, MAX_BATCH, MarketoApi, _BadRequest, _split

# activity type ids the sandbox itself writes
NEW_LEAD = 12


CHANGE_DATA_VALUE = 13


CHANGE_SCORE = 22


MERGE_LEADS = 32


DELETE_LEAD = 37


WEBINAR_ATTENDED = 100001


WEBINAR_REGISTERED = 100002
MAX_TYPE_IDS = 10


MAX_LEAD_IDS = 30


@dataclass
class ActivityType:
    id: int
    name: str
    description: str
    primary: tuple[str, str] | None  # (name, dataType)
    attributes: tuple[tuple[str, str], ...] = ()
    api_name: str | None = None

    def to_json(self) -> JsonDict:
        out: JsonDict = {"id": self.id, "name": self.name, "description": self.description}
        if self.api_name:
            out["apiName"] = self.api_name
        if self.primary is not None:
            out["primaryAttribute"] = {"name": self.primary[0], "dataType": self.primary[1]}
        out["attributes"] = [{"name": n, "dataType": t} for n, t in self.attributes]
        return out


_WEB = (("Client IP Address", "string"), ("Query Parameters", "string"),
        ("Referrer URL", "string"), ("User Agent", "string"))  # fmt: skip


_MAIL = (("Campaign Run ID", "integer"), ("Choice Number", "integer"), ("Step ID", "integer"))


_DEVICE = (("Device", "string"), ("Is Mobile Device", "boolean"), ("Platform", "string"),
           ("User Agent", "string"))  # fmt: skip


def standard_activity_types() -> list[ActivityType]:
    return [
        ActivityType(1, "Visit Webpage", "User visits a web page", ("Webpage ID", "integer"),
                     (*_WEB, ("Webpage URL", "string"), ("Search Engine", "string"),
                      ("Search Query", "string"))),
        ActivityType(2, "Fill Out Form", "User fills out and submits form on web page",
                     ("Webform ID", "integer"), (*_WEB, ("Form Fields", "text"),
                                                 ("Webpage ID", "integer"))),
        ActivityType(3, "Click Link", "User clicks link on a page", ("Link ID", "integer"),
                     (*_WEB, ("Webpage ID", "integer"))),
        ActivityType(6, "Send Email", "Send Marketo Email to a person", ("Mailing ID", "integer"),
                     _MAIL),
        ActivityType(7, "Email Delivered", "Marketo Email is delivered to a person",
                     ("Mailing ID", "integer"), _MAIL),
        ActivityType(8, "Email Bounced", "Marketo Email bounces", ("Mailing ID", "integer"),
                     (*_MAIL, ("Category", "string"), ("Details", "string"),
                      ("Email", "email"), ("Subcategory", "string"))),
        ActivityType(9, "Unsubscribe Email", "Person unsubscribes from Marketo Emails",
                     ("Mailing ID", "integer"), (*_MAIL, *_WEB, ("Form Fields", "text"),
                                                 ("Webform ID", "integer"))),
        ActivityType(10, "Open Email", "User opens Marketo Email", ("Mailing ID", "integer"),
                     (*_MAIL, *_DEVICE)),
        ActivityType(11, "Click Email", "User clicks on a link in a Marketo Email",
                     ("Mailing ID", "integer"), (*_MAIL, *_DEVICE, ("Link", "string"),
                                                 ("Link ID", "string"))),
        ActivityType(12, "New Lead", "New person/record is added to the lead database", None,
                     (("Created Date", "date"), ("Form Name", "string"),
                      ("Lead Source", "string"), ("List Name", "string"),
                      ("Source Type", "string"))),
        ActivityType(13, "Change Data Value", "Changed attribute value for a person",
                     ("Lead Field", "integer"), (("New Value", "string"), ("Old Value", "string"),
                                                 ("Reason", "string"), ("Source", "string"))),
        ActivityType(22, "Change Score", "Change a score value for a person",
                     ("Score Name", "integer"), (("Change Value", "string"),
                                                 ("New Value", "integer"),
                                                 ("Old Value", "integer"), ("Reason", "string"))),
        # logged on the winner; its attribute names as Adobe's Experience Platform maps them
        # (``attributes.Merge IDs`` etc. for activityTypeId 32), "Merge IDs" as Fivetran
        # stores it: the losers' ids in brackets, "[43,44]"
        ActivityType(32, "Merge Leads", "Merge two or more leads", ("Lead ID", "integer"),
                     (("Merge IDs", "string"), ("Merge Source", "string"),
                      ("Merged in Sales", "boolean"), ("Master Updated", "boolean"))),
        ActivityType(37, "Delete Lead", "Delete a person", ("Lead ID", "integer"),
                     (("Remove from CRM", "boolean"),)),
        ActivityType(46, "Interesting Moment", "Interesting moment", ("Milestone ID", "integer"),
                     (("Description", "string"), ("Source", "string"), ("Date", "datetime"))),
        ActivityType(101, "Change Revenue Stage", "Change a revenue stage for a person",
                     ("Model ID", "integer"), (("New Stage ID", "integer"),
                                               ("Old Stage ID", "integer"),
                                               ("Reason", "string"))),
    ]  # fmt: skip


def webinar_activity_types() -> list[ActivityType]:
    """The custom activities of the demo instance."""
    return [
        ActivityType(WEBINAR_ATTENDED, "Webinar Attended", "Attended a webinar (custom)",
                     ("Webinar Name", "string"), (("Minutes Watched", "integer"),
                                                  ("Webinar Minutes", "integer")),
                     api_name="webinarAttended_c"),
        ActivityType(WEBINAR_REGISTERED, "Webinar Registered", "Registered for a webinar (custom)",
                     ("Webinar Name", "string"), (), api_name="webinarRegistered_c"),
    ]  # fmt: skip


@dataclass
class ActivityRecord:
    id: int
    guid: str
    lead_id: int
    date_ms: int
    type_id: int
    primary_value: str | None = None
    primary_value_id: int | None = None
    attributes: list[tuple[str, Any]] = field(default_factory=list)
    fields: list[JsonDict] = field(default_factory=list)  # leadchanges: [{id,name,new,old}]
    campaign_id: int | None = None

    @property
    def key(self) -> tuple[int, int]:
        return (self.date_ms, self.id)

    def to_json(self) -> JsonDict:
        out: JsonDict = {
            "id": self.id,
            "marketoGUID": self.guid,
            "leadId": self.lead_id,
            "activityDate": iso_s(self.date_ms),
            "activityTypeId": self.type_id,
        }
        if self.campaign_id is not None:
            out["campaignId"] = self.campaign_id
        if self.primary_value_id is not None:
            out["primaryAttributeValueId"] = self.primary_value_id
        if self.primary_value is not None:
            out["primaryAttributeValue"] = self.primary_value
        out["attributes"] = [{"name": n, "value": v} for n, v in self.attributes]
        return out

    def change_json(self) -> JsonDict:
        out = self.to_json()
        out.pop("primaryAttributeValue", None)
        out.pop("primaryAttributeValueId", None)
        out["fields"] = list(self.fields)
        return out


class ActivitiesAPI(MarketoApi):
    """The activity endpoints over the instance's activity log."""

    def _activity_types(self, req: Request, _: dict[str, str]) -> Response:
        types = sorted(self.instance.activity_types.values(), key=lambda t: t.id)
        return self.envelope([t.to_json() for t in types])

    def _page_token(self, after: tuple[int, int]) -> str:
        return encode_cursor("pt", after[0], after[1], next(self._token_nonce))

    def _decode_token(self, req: Request) -> tuple[str, tuple[int, int]]:
        token = req.param("nextPageToken")
        if not token:
            raise _BadRequest("1003", "nextPageToken is required")
        try:
            tag, d, i, _ = decode_cursor(token, 4)
            if tag != "pt":
                raise ValueError(tag)
            return token, (int(d), int(i))
        except ValueError:
            raise _BadRequest("1003", "Invalid nextPageToken") from None

    def _paging_token(self, req: Request, _: dict[str, str]) -> Response:
        since = req.param("sinceDatetime")
        if not since:
            raise _BadRequest("1003", "sinceDatetime is required")
        try:
            ms = parse_time_ms(since)
        except ValueError:
            raise _BadRequest("1003", f"Invalid sinceDatetime '{since}'") from None
        body: JsonDict = {
            "requestId": self._request_id(),
            "success": True,
            "nextPageToken": self._page_token((ms, -1)),
            "errors": [],
            "warnings": [],
        }
        return Response(200, body, content_type=_JSON)

    def _page(
        self,
        req: Request,
        predicate: Any,
        render_one: Any,
    ) -> Response:
        token, after = self._decode_token(req)
        batch = self._int(req, "batchSize", MAX_BATCH, MAX_BATCH)
        self._activity_pages += 1
        if self.stuck_paging:
            return self.envelope([], next_token=token, more=True, omit_empty=True)
        if self.empty_page_every and self._activity_pages % self.empty_page_every == 0:
            pending = bisect.bisect_right(self.instance._keys, after)
            if pending < len(self.instance.activities):
                nxt = self._page_token(after)
                return self.envelope([], next_token=nxt, more=True, omit_empty=True)
        found, last, more = self.instance.scan(after, predicate, batch, self.scan_limit)
        return self.envelope(
            [render_one(a) for a in found],
            next_token=self._page_token(last),
            more=more,
            omit_empty=True,
        )

    def _lead_filter(self, req: Request) -> set[int] | None:
        raw = _split(req.param("leadIds"))
        if not raw:
            return None
        if len(raw) > MAX_LEAD_IDS:
            raise _BadRequest("1003", f"leadIds exceeds {MAX_LEAD_IDS} values")
        try:
            return {int(v) for v in raw}
        except ValueError:
            raise _BadRequest("1003", "leadIds must be integers") from None

    def _activities(self, req: Request, _: dict[str, str]) -> Response:
        raw = _split(req.param("activityTypeIds"))
        if not raw:
            raise _BadRequest("1003", "activityTypeIds is required")
        if len(raw) > MAX_TYPE_IDS:
            raise _BadRequest("1003", f"activityTypeIds exceeds {MAX_TYPE_IDS} values")
        try:
            type_ids = {int(v) for v in raw}
        except ValueError:
            raise _BadRequest("1003", "activityTypeIds must be integers") from None
        unknown = type_ids - set(self.instance.activity_types)
        if unknown:
            raise _BadRequest("1003", f"Invalid activity type id(s) {sorted(unknown)}")
        leads = self._lead_filter(req)

        def match(a: ActivityRecord) -> bool:
            return a.type_id in type_ids and (leads is None or a.lead_id in leads)

        return self._page(req, match, ActivityRecord.to_json)

    def _lead_changes(self, req: Request, _: dict[str, str]) -> Response:
        fields = _split(req.param("fields"))
        if not fields:
            raise _BadRequest("1003", "fields is required")
        for name in fields:
            if name not in self.instance.fields:
                raise _BadRequest("1006", f"Field '{name}' not found")
        watched = set(fields)
        leads = self._lead_filter(req)

        def match(a: ActivityRecord) -> bool:
            if leads is not None and a.lead_id not in leads:
                return False
            if a.type_id == NEW_LEAD:
                return True
            if a.type_id in (CHANGE_DATA_VALUE, CHANGE_SCORE):
                return any(f.get("name") in watched for f in a.fields)
            return False

        def one(a: ActivityRecord) -> JsonDict:
            out = a.change_json()
            out["fields"] = [f for f in a.fields if f.get("name") in watched]
            return out

        return self._page(req, match, one)

    def _deleted_leads(self, req: Request, _: dict[str, str]) -> Response:
        return self._page(req, lambda a: a.type_id == DELETE_LEAD, ActivityRecord.to_json)
