"""Forms: ``/marketing/v3/forms/`` (+ ``/{id}``) and the submissions of a form
(``/form-integrations/v1/submissions/forms/{guid}``), read from the events log."""

from __future__ import annotations

from dataclasses import dataclass, field

from connector.sandbox.base import (
    JsonDict,
    Request,
    Response,
    encode_cursor,
    iso_ms,
)
from connector.sandbox.hubspot.api import HubSpotApi
from connector.sandbox.hubspot.errors import _bad, _error
from connector.sandbox.hubspot.events import FORM_SUBMISSION
from connector.sandbox.hubspot.properties import _title


@dataclass
class Form:
    id: str
    name: str
    created_ms: int
    updated_ms: int
    fields: list[str] = field(default_factory=lambda: ["email", "firstname", "lastname"])
    archived: bool = False

    def to_json(self) -> JsonDict:
        """A full ``hubspot`` form definition (deserializes as the SDK's form models)."""
        field_defs = []
        for name in self.fields:
            field_defs.append(
                {
                    "objectTypeId": "0-1",
                    "name": name,
                    "label": _title(name),
                    "required": name == "email",
                    "hidden": False,
                    "fieldType": "email" if name == "email" else "single_line_text",
                    "validation": {
                        "blockedEmailDomains": [],
                        "useDefaultBlockList": False,
                    }
                    if name == "email"
                    else None,
                    "dependentFields": [],
                }
            )
        for f in field_defs:
            if f["validation"] is None:
                del f["validation"]
        return {
            "id": self.id,
            "name": self.name,
            "formType": "hubspot",
            "createdAt": iso_ms(self.created_ms),
            "updatedAt": iso_ms(self.updated_ms),
            "archived": self.archived,
            "fieldGroups": [
                {"groupType": "default_group", "richTextType": "text", "fields": [f]}
                for f in field_defs
            ],
            "configuration": {
                "language": "en",
                "cloneable": True,
                "postSubmitAction": {"type": "thank_you", "value": "Thanks!"},
                "editable": True,
                "archivable": True,
                "recaptchaEnabled": False,
                "notifyContactOwner": False,
                "notifyRecipients": [],
                "createNewContactForNewEmail": False,
                "prePopulateKnownValues": True,
                "allowLinkToResetKnownValues": False,
                "lifecycleStages": [],
            },
            "displayOptions": {
                "renderRawHtml": False,
                "theme": "default_style",
                "submitButtonText": "Submit",
                "style": {
                    "fontFamily": "arial, helvetica, sans-serif",
                    "backgroundWidth": "100%",
                    "labelTextColor": "#33475b",
                    "labelTextSize": "14px",
                    "helpTextColor": "#7C98B6",
                    "helpTextSize": "11px",
                    "legalConsentTextColor": "#33475b",
                    "legalConsentTextSize": "14px",
                    "submitColor": "#ff7a59",
                    "submitAlignment": "left",
                    "submitFontColor": "#ffffff",
                    "submitSize": "12px",
                },
                "cssClass": "",
            },
            "legalConsentOptions": {"type": "none"},
        }


class FormsAPI(HubSpotApi):
    """The forms the portal knows and their submissions."""

    def _forms(self, req: Request, _: dict[str, str]) -> Response:
        limit = self._int_param(req, "limit", 20, 1, 100)
        after = req.param("after") or "0"
        if not after.isdigit():
            raise _bad(f"Invalid 'after' value: {after!r}")
        archived = self._bool_param(req, "archived")
        kinds = {k.lower() for k in self._list_param(req, "formTypes") or ["hubspot"]}
        forms = sorted(
            (f for f in self.portal.forms.values() if f.archived == archived),
            key=lambda f: (f.created_ms, f.id),
        )
        if not kinds & {"hubspot", "all"}:
            forms = []
        offset = int(after)
        page = forms[offset : offset + limit]
        body: JsonDict = {"results": [f.to_json() for f in page]}
        if offset + limit < len(forms):
            nxt = str(offset + limit)
            body["paging"] = self._next_page(req, nxt)
        return Response(200, body)

    def _form(self, req: Request, m: dict[str, str]) -> Response:
        form = self.portal.forms.get(m["id"])
        if form is None:
            return _error(404, f"Form {m['id']} does not exist", "OBJECT_NOT_FOUND")
        return Response(200, form.to_json())

    def _submissions(self, req: Request, m: dict[str, str]) -> Response:
        form = self.portal.forms.get(m["id"])
        if form is None:
            return _error(404, f"Form {m['id']} does not exist", "OBJECT_NOT_FOUND")
        limit = self._int_param(req, "limit", 20, 1, 50)
        after = req.param("after")
        cursor_key = self._key_cursor(after, "s", "'after' cursor")
        subs = [
            e
            for e in self.portal.events_by_type.get(FORM_SUBMISSION, [])
            if e.properties.get("hs_form_id") == form.id
        ]
        if cursor_key is not None:
            subs = [e for e in subs if e.key < cursor_key]
        subs.reverse()
        page = subs[:limit]
        results = []
        for ev in page:
            owner = self.portal.contacts.get(ev.object_id)
            values = []
            for name in form.fields:
                value = ev.properties.get(name) or (owner.properties.get(name) if owner else None)
                if value:
                    values.append({"name": name, "value": value, "objectTypeId": "0-1"})
            results.append(
                {
                    "conversionId": ev.id,
                    "submittedAt": ev.occurred_ms,
                    "values": values,
                    "pageUrl": ev.properties.get("hs_url", ""),
                }
            )
        body: JsonDict = {"results": results}
        if len(subs) > limit:
            nxt = encode_cursor("s", page[-1].occurred_ms, page[-1].id)
            body["paging"] = self._next_page(req, nxt)
        return Response(200, body)
