"""Leads: paging tokens and the bounded paging loop, lead changes then deleted leads, reads by id
(<= 300 a call), and parsing a lead into a `Contact` (status -> lifecycle stage)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.crm.base import (
    CRM_MQL_DATE,
    BadRecord,
    ContactPage,
)
from connector.crm.marketo.calls import MAX_BATCH, _iso, log
from connector.crm.marketo.config import PROFILE_FIELDS
from connector.crm.marketo.fields import FieldsMixin
from connector.errors import (
    ConnectorError,
    InputError,
)
from connector.parse import opt_text, parse_timestamp
from connector.text import clean_value, shown_value
from connector.types import MQL, Contact, event_record_id

KNOWN_IDS_MAX = 1_000_000


def _normalize_status(value: str | None) -> str | None:
    """ "Bad Timing" -> "BAD_TIMING": the model's lead-status lists use that spelling."""
    if not value:
        return None
    return re.sub(r"[\s\-]+", "_", value.strip()).upper() or None


class LeadsMixin(FieldsMixin):
    """Lead pulls and reads; the paging every stream uses."""

    def _stage_of(self, value: str | None) -> str | None:
        if not value:
            return None
        stage = self._status_stages.get(value.strip().lower())
        if stage is None:
            if value not in self._warned_statuses:
                self._warned_statuses.add(value)
                log.warning(
                    "Marketo status %r maps to no lifecycle stage: read as 'other' (never "
                    "changed by scoring); map it with LEADSCORE_MARKETO_STATUS_STAGES",
                    value,
                )
            return "other"
        return stage

    def _contact_from(self, lead: Mapping[str, Any], *, ours: bool = False) -> Contact:
        """The contact of a lead record; `ours`: the record was read with our score fields,
        whose values (null: empty) go into `crm_values`; a field the record lacks is not
        compared."""
        lid = opt_text(lead.get("id"), "id")
        if lid is None:
            raise InputError("id: missing")
        stage_raw = (
            opt_text(lead.get(self.config.stage_field), self.config.stage_field)
            if self.config.stage_field
            else None
        )
        status_raw = opt_text(lead.get(self.config.status_field), self.config.status_field)
        created = lead.get("createdAt")
        updated = lead.get("updatedAt")
        checked = self._checked_fields() if ours else {}
        return Contact(
            id=lid,
            email=opt_text(lead.get("email"), "email"),
            first_name=opt_text(lead.get("firstName"), "firstName"),
            last_name=opt_text(lead.get("lastName"), "lastName"),
            job_title=opt_text(lead.get("title"), "title"),
            company_name=opt_text(lead.get("company"), "company"),
            country=opt_text(lead.get("country"), "country"),
            lifecycle_stage=self._stage_of(stage_raw),
            lead_status=_normalize_status(status_raw),
            created_at=parse_timestamp(created, "createdAt") if created else None,
            updated_at=parse_timestamp(updated, "updatedAt") if updated else None,
            properties=clean_value(
                {k: v for k, v in lead.items() if v is not None and k not in checked}
            ),
            crm_values={key: shown_value(lead[f]) for f, key in checked.items() if f in lead}
            if ours
            else None,
        )

    def _get_leads(self, ids: Sequence[str]) -> tuple[list[Contact], list[BadRecord]]:
        """Leads by id, <= 300 a call; ids Marketo does not return (deleted) are left out."""
        contacts: list[Contact] = []
        bad: list[BadRecord] = []
        fields = ",".join(dict.fromkeys([*self._read_fields(), *self._checked_fields()]))
        for i in range(0, len(ids), MAX_BATCH):
            chunk = ids[i : i + MAX_BATCH]
            data = self._call(
                "leads.get",
                "GET",
                "/rest/v1/leads.json",
                params={
                    "filterType": "id",
                    "filterValues": ",".join(chunk),
                    "fields": fields,
                    "batchSize": str(MAX_BATCH),
                },
            )
            for lead in data.get("result") or []:
                if not isinstance(lead, dict):
                    bad.append(BadRecord("?", "lead: not an object", lead))
                    continue
                try:
                    contact = self._contact_from(lead, ours=True)
                except InputError as exc:
                    bad.append(BadRecord(str(lead.get("id", "?")), f"lead: {exc}", lead))
                    continue
                contacts.append(contact)
                self._remember(contact.id)
        return contacts, bad

    def _remember(self, contact_id: str) -> None:
        if len(self._known) >= KNOWN_IDS_MAX:  # forgetting only costs a re-fetch
            self._known.clear()
        self._known.add(contact_id)

    def get_contact(self, contact_id: str) -> Contact | None:
        if not contact_id.isdigit():
            return None
        found, _ = self._get_leads([contact_id])
        return found[0] if found else None

    # -- paging ----------------------------------------------------------------------------
    def _paging_token(self, since: datetime | None) -> str:
        start = since or (self._now() - timedelta(days=self.config.backfill_days))
        data = self._call(
            "activities.pagingtoken",
            "GET",
            "/rest/v1/activities/pagingtoken.json",
            params={"sinceDatetime": _iso(start)},
        )
        token = data.get("nextPageToken")
        if not isinstance(token, str) or not token:
            raise ConnectorError("Marketo paging-token answer without nextPageToken")
        return token

    def _paged(
        self, kind: str, path: str, params: Mapping[str, str], token: str
    ) -> Iterator[tuple[list[dict[str, Any]], str, bool]]:
        """(results, next token, moreResult) per page until moreResult is false. Short and
        empty pages are normal; a token that stops advancing while moreResult stays true is
        not (fails after `max_stalled_pages`), nor are endless empty pages or pages."""
        stalled = 0
        empty_run = 0
        for _ in range(self.max_pages):
            data = self._call(kind, "GET", path, params={**params, "nextPageToken": token})
            results = data.get("result", [])  # absent on an empty page
            if results is None:
                results = []
            if not isinstance(results, list):
                raise ConnectorError(f"Marketo {kind}: result is not a list")
            more = data.get("moreResult")
            if not isinstance(more, bool):
                raise ConnectorError(f"Marketo {kind}: page without moreResult; stopping")
            nxt = data.get("nextPageToken") or None
            if more and not nxt:
                raise ConnectorError(f"Marketo {kind}: moreResult without a nextPageToken")
            if more and nxt == token:
                stalled += 1
                if stalled >= self.max_stalled_pages:
                    raise ConnectorError(
                        f"Marketo {kind}: nextPageToken did not advance for {stalled} pages "
                        "while moreResult stayed true; stopping instead of looping"
                    )
            else:
                stalled = 0
            empty_run = empty_run + 1 if more and not results else 0
            if empty_run > self.max_empty_pages:
                raise ConnectorError(
                    f"Marketo {kind}: {empty_run} empty pages in a row with moreResult true"
                )
            yield [r for r in results if isinstance(r, dict)], str(nxt or token), more
            if not more:
                return
            token = str(nxt)
        raise ConnectorError(f"Marketo {kind} paging exceeded {self.max_pages} pages")

    # -- contacts --------------------------------------------------------------------------
    def pull_contacts(
        self, since: datetime | None, until: datetime | None, position: str | None
    ) -> Iterator[ContactPage]:
        """Lead changes since `since` (new leads and changes to the fields we read), then
        deleted leads, both by paging token. Positions: ``lc:<token>`` / ``del:<token>``."""
        phase, token = "lc", None
        if position:
            phase, _, token = position.partition(":")
            if phase not in ("lc", "del") or not token:
                raise ConnectorError(f"not a Marketo contacts position: {position[:40]!r}")
        if phase == "lc":
            yield from self._pull_changes(since, until, token)
            token = None
        yield from self._pull_deleted(since, until, token)

    def _pull_changes(
        self, since: datetime | None, until: datetime | None, token: str | None
    ) -> Iterator[ContactPage]:
        watched = [f for f in (*PROFILE_FIELDS, self.config.stage_field, self.config.status_field,
                               *self._checked_fields(), self._company_field()) if f]  # fmt: skip
        params = {"fields": ",".join(dict.fromkeys(watched)), "batchSize": str(self.page_size)}
        start = token or self._paging_token(since)
        for results, nxt, _more in self._paged(
            "activities.leadchanges", "/rest/v1/activities/leadchanges.json", params, start
        ):
            page = ContactPage(contacts=[], position=f"lc:{nxt}")
            ids: list[str] = []
            mql_dates: dict[str, str] = {}
            past_until = False
            for act in results:
                lid = act.get("leadId")
                if lid is None:
                    rid = event_record_id(str(act.get("id", "?")))  # an activity's id
                    page.bad.append(BadRecord(rid, "lead change: no leadId", act))
                    continue
                if until is not None and self._at(act) >= until:
                    past_until = True
                    continue
                ids.append(str(lid))
                if self._made_mql(act):
                    at = _iso(self._at(act))
                    mql_dates[str(lid)] = min(at, mql_dates.get(str(lid), at))
            if ids:
                contacts, bad = self._get_leads(list(dict.fromkeys(ids)))
                page.contacts = [self._with_mql_date(c, mql_dates.get(c.id)) for c in contacts]
                page.bad = page.bad + bad
            yield page
            if past_until:
                return

    def _made_mql(self, act: Mapping[str, Any]) -> bool:
        """A lead change (Change Data Value) that set the stage field to a status read as MQL:
        Marketo's own record of when the lead became an MQL (sales, a smart campaign, us)."""
        field_name = self.config.stage_field
        if not field_name or act.get("activityDate") is None:
            return False
        for change in act.get("fields") or []:
            if not isinstance(change, dict) or change.get("name") != field_name:
                continue
            value = change.get("newValue")
            if isinstance(value, str) and self._status_stages.get(value.strip().lower()) == MQL:
                return True
        return False

    @staticmethod
    def _with_mql_date(contact: Contact, at: str | None) -> Contact:
        if at is None:
            return contact
        shown = contact.properties.get(CRM_MQL_DATE)
        if isinstance(shown, str) and shown <= at:
            return contact
        return replace(contact, properties={**contact.properties, CRM_MQL_DATE: at})

    def _pull_deleted(
        self, since: datetime | None, until: datetime | None, token: str | None
    ) -> Iterator[ContactPage]:
        start = token or self._paging_token(since)
        for results, nxt, _more in self._paged(
            "activities.deletedleads",
            "/rest/v1/activities/deletedleads.json",
            {"batchSize": str(self.page_size)},
            start,
        ):
            page = ContactPage(contacts=[], position=f"del:{nxt}")
            past_until = False
            for act in results:
                if until is not None and self._at(act) >= until:
                    past_until = True
                    continue
                lid = act.get("leadId")
                if lid is not None:
                    page.archived.append(str(lid))
                    self._known.discard(str(lid))
            yield page
            if past_until:
                return

    @staticmethod
    def _at(act: Mapping[str, Any]) -> datetime:
        try:
            return parse_timestamp(act.get("activityDate"), "activityDate")
        except InputError:
            return datetime.max.replace(tzinfo=UTC)
