"""Public routes that create engagement: the forms submission API v3 and custom behavioural
events (``/events/v3/send``).

* ``POST /submissions/v3/integration/submit/{portalId}/{formGuid}`` (no authentication, as on
  api.hsforms.com) and ``POST /submissions/v3/integration/secure/submit/...`` (private-app
  token). Body ``{fields: [{objectTypeId, name, value}], submittedAt?, context?: {hutk, pageUri,
  pageName, ...}, legalConsentOptions?, skipValidation?}``. The contact is found by ``email``
  or created; the submitted values are written to it (source ``FORM``) and an
  ``e_submitted_form`` event (``hs_form_id``, ``hs_form_title``, ``hs_url`` = ``pageUri``) is
  recorded at ``submittedAt`` (default: now), exactly like the demo's form events, so the events
  API, the roll-ups and the form's submissions list see it. 200 ``{inlineMessage}``. Errors:
  400 ``{status: "error", message, correlationId, errors: [{message, errorType}]}`` with
  ``FIELD_NOT_IN_FORM_DEFINITION`` (the whole submission is rejected), ``REQUIRED_FIELD`` (no
  email), ``INVALID_EMAIL``, ``INVALID_HUTK`` (not 32 hex digits), ``INVALID_PAGE_URI``,
  ``MAX_NUMBER_OF_SUBMITTED_VALUES_EXCEEDED`` (> 1,000 fields); 404 for an unknown portal or
  form. The per-10-seconds submission limits are not emulated.
* ``POST /events/v3/send`` ``{eventName, properties, objectId | email | utk, occurredAt?, uuid?}``
  and ``POST /events/v3/send/batch`` ``{inputs: [...]}`` (at most 500; the real maximum is
  unverified) -> 204, no body. ``eventName`` must be ``pe{portalId}_{name}`` with ``name`` in
  lower-case ``[a-z][a-z0-9_]*``; at most 50 properties, names like event names, values at most
  50 characters (``hs_url``/``hs_referrer``/``hs_page_url`` 200). The contact is ``objectId`` or
  found by ``email`` (created if missing); ``utk`` is not linked to any contact here (400). A
  ``uuid`` already sent is rejected (400; the first one wins); in a batch every input is checked
  before any is stored, so a bad input rejects the whole batch. Custom events change no
  property (``lastmodifieddate`` stays): read them from the events API.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from connector.sandbox.base import JsonDict, Request, Response, new_correlation_id, parse_time_ms
from connector.sandbox.hubspot.api import HubSpotApi, _id_text, _is_int
from connector.sandbox.hubspot.errors import BadRequest, _bad
from connector.sandbox.hubspot.events import FORM_SUBMISSION
from connector.sandbox.hubspot.portal import ContactRecord

MAX_SUBMITTED_VALUES = 1000
EVENTS_BATCH_MAX = 500
MAX_EVENT_PROPERTIES = 50
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_HUTK = re.compile(r"^[0-9a-f]{32}$")
_EVENT_PART = re.compile(r"^[a-z][a-z0-9_]*$")
_LONG_VALUES = frozenset({"hs_url", "hs_referrer", "hs_page_url"})


def _form_error(status: int, problems: list[tuple[str, str]]) -> BadRequest:
    body: JsonDict = {
        "status": "error",
        "message": "The request is not valid",
        "correlationId": new_correlation_id(),
        "errors": [{"message": m, "errorType": t} for m, t in problems],
    }
    return BadRequest(Response(status, body))


class EngagementAPI(HubSpotApi):
    """Form submissions v3 and custom behavioural events."""

    # -- forms submission ----------------------------------------------------------------------
    def _submit_form(self, req: Request, m: dict[str, str]) -> Response:
        if m["portal"] != str(self.portal.portal_id):
            raise _form_error(404, [(f"Portal {m['portal']} not found", "PORTAL_NOT_FOUND")])
        form = self.portal.forms.get(m["form"])
        if form is None or form.archived:
            raise _form_error(404, [(f"Form {m['form']} not found", "FORM_NOT_FOUND")])
        body = self._json_object(req)
        fields = body.get("fields")
        if not isinstance(fields, list):
            raise _form_error(400, [("'fields' must be a list", "INVALID_REQUEST")])
        if len(fields) > MAX_SUBMITTED_VALUES:
            raise _form_error(
                400,
                [
                    (
                        f"{len(fields)} values submitted; at most {MAX_SUBMITTED_VALUES} allowed",
                        "MAX_NUMBER_OF_SUBMITTED_VALUES_EXCEEDED",
                    )
                ],
            )
        values: dict[str, str] = {}
        problems: list[tuple[str, str]] = []
        for i, f in enumerate(fields):
            if not isinstance(f, dict) or not isinstance(f.get("name"), str):
                raise _form_error(400, [(f"fields[{i}] needs a 'name'", "INVALID_REQUEST")])
            name = f["name"]
            if f.get("objectTypeId", "0-1") != "0-1" or name not in form.fields:
                problems.append(
                    (
                        f"Error in 'fields.{name}'. Field '{name}' is not in the form definition.",
                        "FIELD_NOT_IN_FORM_DEFINITION",
                    )
                )
                continue
            raw = f.get("value")
            values[name] = "" if raw is None else str(raw)
        email = values.get("email", "").strip()
        if not problems:
            if not email:
                problems.append(("Error in 'fields.email'. Required field 'email' is missing",
                                 "REQUIRED_FIELD"))  # fmt: skip
            elif not _EMAIL.match(email):
                problems.append(("Error in 'fields.email'. Invalid email address",
                                 "INVALID_EMAIL"))  # fmt: skip
        context = body.get("context") or {}
        if not isinstance(context, dict):
            raise _form_error(400, [("'context' must be an object", "INVALID_REQUEST")])
        hutk = context.get("hutk")
        if hutk is not None and not (isinstance(hutk, str) and _HUTK.match(hutk)):
            problems.append(("Error in 'context.hutk'. Invalid hutk", "INVALID_HUTK"))
        page_uri = context.get("pageUri")
        if page_uri is not None:
            parts = urlsplit(str(page_uri))
            if parts.scheme not in ("http", "https") or not parts.netloc:
                problems.append(("Error in 'context.pageUri'. Invalid page URI",
                                 "INVALID_PAGE_URI"))  # fmt: skip
        if problems:
            raise _form_error(400, problems)
        occurred = self._when(body.get("submittedAt"), "submittedAt")
        rec = self.portal.by_email(email)
        writes = {k: v for k, v in values.items() if v != "" and k != "email"}
        checked, bad = self.portal.validate_writes(rec, writes)
        if bad:
            raise _form_error(
                400, [(f"Error in 'fields.{p.name}'. {p.message}", "INVALID_VALUE") for p in bad]
            )
        if rec is None:
            rec = self.portal.create_contact({"email": email, **checked})
        elif checked:
            self.portal.apply(rec, checked, "FORM")
        props = {"hs_form_id": form.id, "hs_form_title": form.name}
        if page_uri is not None:
            props["hs_url"] = str(page_uri)
        self.portal.add_event(rec.id, FORM_SUBMISSION, props, occurred)
        return Response(200, {"inlineMessage": "Thanks for submitting the form."})

    def _when(self, raw: object, what: str) -> int | None:
        if raw is None:
            return None
        if _is_int(raw):
            return int(str(raw))
        if isinstance(raw, str):
            try:
                return parse_time_ms(raw)
            except ValueError:
                pass
        raise _bad(f"Invalid input JSON: '{what}' is not a valid timestamp: {raw!r}")

    # -- custom behavioural events -------------------------------------------------------------
    def _event_problem(self, item: object, where: str) -> tuple[JsonDict, str | None]:
        """A checked event input, or raises 400 naming the problem."""
        if not isinstance(item, dict):
            raise _bad(f"Invalid input JSON: {where} must be an object")
        name = item.get("eventName")
        prefix = f"pe{self.portal.portal_id}_"
        if not isinstance(name, str) or not name:
            raise _bad(f"{where}: 'eventName' is required")
        if not name.startswith(prefix) or not _EVENT_PART.match(name.removeprefix(prefix)):
            raise _bad(
                f"{where}: eventName '{name}' is not valid: use {prefix}<name> with a lower-case "
                "name of letters, digits and underscores"
            )
        props = item.get("properties")
        if not isinstance(props, dict):
            raise _bad(f"{where}: 'properties' is required and must be an object")
        if len(props) > MAX_EVENT_PROPERTIES:
            raise _bad(
                f"{where}: {len(props)} properties; at most {MAX_EVENT_PROPERTIES} are allowed"
            )
        for key, value in props.items():
            if not _EVENT_PART.match(key):
                raise _bad(f"{where}: property name '{key}' is not valid")
            most = 200 if key in _LONG_VALUES else 50
            if value is not None and len(str(value)) > most:
                raise _bad(f"{where}: property '{key}' is longer than {most} characters")
        uid = item.get("uuid")
        if uid is not None and (not isinstance(uid, str) or not uid):
            raise _bad(f"{where}: 'uuid' must be a non-empty string")
        return item, uid

    def _event_contact(self, item: JsonDict, where: str) -> ContactRecord | str:
        """The contact an event is for; an e-mail not yet known is returned to be created."""
        if item.get("objectId") not in (None, ""):
            cid = _id_text(item["objectId"], "objectId")
            rec = self.portal.resolve(cid)
            if rec is None:
                raise _bad(f"{where}: no contact with objectId {cid}")
            return rec
        email = item.get("email")
        if isinstance(email, str) and email.strip():
            if not _EMAIL.match(email.strip()):
                raise _bad(f"{where}: invalid email {email!r}")
            return self.portal.by_email(email) or email.strip()
        if item.get("utk"):
            raise _bad(f"{where}: the utk is not linked to any contact")
        raise _bad(f"{where}: one of objectId, email or utk is required")

    def _store_events(self, inputs: list[Any], label: str) -> Response:
        checked: list[tuple[JsonDict, ContactRecord | str, int | None, str | None]] = []
        seen: set[str] = set()
        for i, item in enumerate(inputs):
            where = label if label == "event" else f"inputs[{i}]"
            data, uid = self._event_problem(item, where)
            if uid is not None and (uid in self.portal.event_uuids or uid in seen):
                raise _bad(f"{where}: an event with uuid {uid} was already sent")
            if uid is not None:
                seen.add(uid)
            who = self._event_contact(data, where)
            checked.append((data, who, self._when(data.get("occurredAt"), "occurredAt"), uid))
        for data, who, occurred, uid in checked:
            rec = who if isinstance(who, ContactRecord) else self.portal.by_email(who)
            if rec is None:
                assert isinstance(who, str)
                rec = self.portal.create_contact({"email": who})
            props = {str(k): "" if v is None else str(v) for k, v in data["properties"].items()}
            ev = self.portal.add_event(rec.id, data["eventName"], props, occurred, event_id=uid)
            if uid is not None:
                self.portal.event_uuids[uid] = ev.id
        return Response(204)

    def _send_event(self, req: Request, _: dict[str, str]) -> Response:
        return self._store_events([self._json_object(req)], "event")

    def _send_events(self, req: Request, _: dict[str, str]) -> Response:
        body = self._json_object(req)
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise _bad("Invalid input JSON: 'inputs' must be a non-empty list")
        if len(inputs) > EVENTS_BATCH_MAX:
            raise _bad(
                f"Batch input has {len(inputs)} inputs; at most {EVENTS_BATCH_MAX} are allowed"
            )
        return self._store_events(inputs, "batch")
