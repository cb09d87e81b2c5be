"""The stored Marketo instance: fields, leads, the time-ordered activity log and export jobs,
and every mutation (each write logs its Change Data Value / Change Score / New Lead / Delete
Lead activity). Guard every access with ``Instance.lock``."""

from __future__ import annotations

import bisect
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from connector.sandbox.base import JsonDict, iso_s, to_ms, utc_now
from connector.sandbox.marketo.activities import (
    CHANGE_DATA_VALUE,
    CHANGE_SCORE,
    DELETE_LEAD,
    MERGE_LEADS,
    NEW_LEAD,
    ActivityRecord,
    ActivityType,
    standard_activity_types,
)
from connector.sandbox.marketo.bulk import ExportJob
from connector.sandbox.marketo.companies import CompanyRecord, company_fields
from connector.sandbox.marketo.leads import (
    FieldDef,
    LeadRecord,
    ValueProblem,
    coerce,
    render,
    standard_fields,
)

DEFAULT_MUNCHKIN = "123-ABC-456"


class Instance:
    """The data behind the API: fields, leads, the activity log, export jobs. Guard every
    access with ``lock`` (the app does for requests; the test hooks do too)."""

    def __init__(self, munchkin_id: str = DEFAULT_MUNCHKIN, now: datetime | None = None) -> None:
        self.lock = threading.RLock()
        self.munchkin_id = munchkin_id
        self._offset_ms = to_ms(now) - to_ms(utc_now()) if now is not None else 0
        self.fields: dict[str, FieldDef] = {f.name: f for f in standard_fields()}
        self.activity_types: dict[int, ActivityType] = {t.id: t for t in standard_activity_types()}
        self.leads: dict[int, LeadRecord] = {}
        self.activities: list[ActivityRecord] = []
        self._keys: list[tuple[int, int]] = []
        self._next_lead_id = 1
        self._next_activity_id = 1
        self.exports: dict[str, ExportJob] = {}
        # companies (see ``companies``): fields, records, and whether the API may write them
        self.company_fields: dict[str, FieldDef] = company_fields()
        self.companies: dict[int, CompanyRecord] = {}
        self.companies_read_only = False
        self._next_company_id = 1

    # -- clock -----------------------------------------------------------------------------
    def now_ms(self) -> int:
        return to_ms(utc_now()) + self._offset_ms

    def advance(self, seconds: float) -> None:
        """Move the instance clock forward (tokens expire, exports finish, new timestamps)."""
        with self.lock:
            self._offset_ms += int(seconds * 1000)

    # -- fields ----------------------------------------------------------------------------
    def add_field(self, spec: Mapping[str, Any]) -> FieldDef:
        with self.lock:
            fdef = FieldDef(
                name=str(spec["name"]),
                display_name=str(spec.get("displayName", spec["name"])),
                data_type=str(spec.get("dataType", "string")),
                length=spec.get(
                    "length", 255 if spec.get("dataType", "string") == "string" else None
                ),
                read_only=bool(spec.get("readOnly", False)),
                custom=bool(spec.get("custom", True)),
                searchable=bool(spec.get("searchable", False)),
                id=max((f.id for f in self.fields.values()), default=0) + 1,
            )
            self.fields[fdef.name] = fdef
            return fdef

    def remove_field(self, name: str) -> None:
        with self.lock:
            self.fields.pop(name, None)

    # -- leads -----------------------------------------------------------------------------
    def lead(self, lead_id: int | str) -> LeadRecord | None:
        try:
            lid = int(lead_id)
        except (TypeError, ValueError):
            return None
        rec = self.leads.get(lid)
        return rec if rec is not None and rec.live else None

    def live_leads(self) -> list[LeadRecord]:
        return sorted((r for r in self.leads.values() if r.live), key=lambda r: r.id)

    def by_email(self, email: str) -> list[LeadRecord]:
        target = email.strip().lower()
        return [
            r
            for r in self.live_leads()
            if str(r.values.get("email") or "").strip().lower() == target
        ]

    # -- companies ---------------------------------------------------------------------------
    def company_by_external_id(self, external_id: str) -> CompanyRecord | None:
        for rec in self.companies.values():
            if rec.values.get("externalCompanyId") == external_id:
                return rec
        return None

    def create_company(
        self,
        values: Mapping[str, Any],
        *,
        company_id: int | None = None,
        created_ms: int | None = None,
        updated_ms: int | None = None,
    ) -> CompanyRecord:
        """Create a company from already-typed values."""
        with self.lock:
            cid = company_id if company_id is not None else self._next_company_id
            if cid in self.companies:
                raise ValueError(f"company {cid} exists")
            self._next_company_id = max(self._next_company_id, cid + 1)
            at = created_ms if created_ms is not None else self.now_ms()
            rec = CompanyRecord(cid, dict(values), at, max(at, updated_ms or at))
            self.companies[cid] = rec
            return rec

    def update_company(self, rec: CompanyRecord, values: Mapping[str, Any]) -> None:
        with self.lock:
            rec.values.update(values)
            rec.updated_ms = max(self.now_ms(), rec.updated_ms + 1000)

    def leads_of_company(self, external_id: str) -> list[LeadRecord]:
        """The live leads linked to a company (their ``externalCompanyId``)."""
        return [r for r in self.live_leads() if r.values.get("externalCompanyId") == external_id]

    def create_lead(
        self,
        values: Mapping[str, Any],
        *,
        lead_id: int | None = None,
        created_ms: int | None = None,
        updated_ms: int | None = None,
        source: str = "Web service API",
        log_activity: bool = True,
    ) -> LeadRecord:
        with self.lock:
            lid = lead_id if lead_id is not None else self._next_lead_id
            if lid in self.leads:
                raise ValueError(f"lead {lid} exists")
            self._next_lead_id = max(self._next_lead_id, lid + 1)
            at = created_ms if created_ms is not None else self.now_ms()
            typed: dict[str, Any] = {}
            for name, raw in values.items():
                fdef = self.fields.get(name)
                if fdef is None:
                    raise ValueProblem("1006", f"Field '{name}' not found")
                if name in ("id", "createdAt", "updatedAt"):
                    continue
                typed[name] = coerce(fdef, raw)
            rec = LeadRecord(lid, typed, at, max(at, updated_ms or at))
            self.leads[lid] = rec
            if log_activity:
                self.add_activity(
                    lid,
                    NEW_LEAD,
                    None,
                    [("Created Date", iso_s(at)[:10]), ("Source Type", source)],
                    at_ms=at,
                    guid=str(uuid.uuid5(uuid.NAMESPACE_URL, f"marketo/new-lead/{lid}")),
                )
            return rec

    def update_lead(
        self,
        rec: LeadRecord,
        values: Mapping[str, Any],
        *,
        source: str = "Web service API",
        at_ms: int | None = None,
    ) -> list[str]:
        """Apply typed-checked values (raises ValueProblem before changing anything)."""
        with self.lock:
            typed: dict[str, Any] = {}
            for name, raw in values.items():
                if name == "id":
                    continue
                fdef = self.fields.get(name)
                if fdef is None:
                    raise ValueProblem("1006", f"Field '{name}' not found")
                if fdef.read_only:
                    raise ValueProblem("1003", f"Field '{name}' is not updateable")
                typed[name] = coerce(fdef, raw)
            now = at_ms if at_ms is not None else max(self.now_ms(), rec.updated_ms + 1)
            changed: list[str] = []
            for name, new in typed.items():
                old = rec.values.get(name)
                if old == new:
                    continue
                rec.values[name] = new
                changed.append(name)
                fdef = self.fields[name]
                shown_new, shown_old = render(fdef, new), render(fdef, old)
                if name == "leadScore":
                    self.add_activity(
                        rec.id,
                        CHANGE_SCORE,
                        fdef.display_name,
                        [("New Value", shown_new), ("Old Value", shown_old),
                         ("Change Value", str((new or 0) - (old or 0))), ("Reason", source)],
                        at_ms=now,
                        primary_value_id=fdef.id,
                        fields=[{"id": fdef.id, "name": name, "newValue": shown_new,
                                 "oldValue": shown_old}],
                    )  # fmt: skip
                    continue
                self.add_activity(
                    rec.id,
                    CHANGE_DATA_VALUE,
                    fdef.display_name,
                    [("New Value", shown_new), ("Old Value", shown_old), ("Reason", source),
                     ("Source", source)],
                    at_ms=now,
                    primary_value_id=fdef.id,
                    fields=[{"id": fdef.id, "name": name, "newValue": shown_new,
                             "oldValue": shown_old}],
                )  # fmt: skip
            rec.updated_ms = now  # any accepted update touches the record
            return changed

    def delete_lead(self, lead_id: int, at_ms: int | None = None) -> LeadRecord | None:
        with self.lock:
            rec = self.lead(lead_id)
            if rec is None:
                return None
            at = at_ms if at_ms is not None else self.now_ms()
            rec.deleted_ms = at
            name = " ".join(
                str(v) for v in (rec.values.get("firstName"), rec.values.get("lastName")) if v
            )
            self.add_activity(
                rec.id,
                DELETE_LEAD,
                name or str(rec.id),
                [("Remove from CRM", False)],
                at_ms=at,
                primary_value_id=rec.id,
                guid=str(uuid.uuid5(uuid.NAMESPACE_URL, f"marketo/delete-lead/{rec.id}")),
            )
            return rec

    def merge_leads(
        self,
        winner_id: int,
        loser_ids: Sequence[int],
        *,
        source: str = "Web service API",
    ) -> ActivityRecord:
        """Merge live leads into a live winner, as Marketo does: the losers' activity logs
        move to the winner (Marketo keeps the history on the surviving record), each loser is
        deleted as a delete does (Delete Lead, in ``deletedleads.json``), a field empty on the
        winner takes the first loser's value in ``loser_ids`` order, the winner's
        ``updatedAt`` moves and Merge Leads (32) is logged on it. The caller has checked
        that the ids exist and differ (``LeadsAPI._merge_leads``)."""
        with self.lock:
            winner = self.lead(winner_id)
            losers = [self.lead(i) for i in loser_ids]
            if winner is None or any(r is None or r.id == winner.id for r in losers):
                raise ValueError(f"cannot merge {list(loser_ids)} into {winner_id}")
            live = [r for r in losers if r is not None]
            at = max(self.now_ms(), winner.updated_ms + 1)
            moved = {r.id for r in live}
            for act in self.activities:
                if act.lead_id in moved:
                    act.lead_id = winner.id
            fills: dict[str, Any] = {}
            for rec in live:
                for name, value in rec.values.items():
                    fdef = self.fields.get(name)
                    if fdef is None or fdef.read_only or value is None or value == "":
                        continue
                    if winner.values.get(name) in (None, "") and name not in fills:
                        fills[name] = render(fdef, value)
            for rec in live:
                self.delete_lead(rec.id, at_ms=at)
            if fills:
                self.update_lead(winner, fills, source="Merge Leads", at_ms=at)
            winner.updated_ms = at
            name = " ".join(
                str(v) for v in (winner.values.get("firstName"), winner.values.get("lastName")) if v
            )
            return self.add_activity(
                winner.id,
                MERGE_LEADS,
                name or str(winner.id),
                [
                    ("Merge IDs", "[" + ",".join(str(r.id) for r in live) + "]"),
                    ("Merge Source", source),
                    ("Merged in Sales", False),  # no CRM is synced with the sandbox
                    ("Master Updated", bool(fills)),  # (our reading: the winner took values)
                ],
                at_ms=at,
                primary_value_id=winner.id,
            )

    def lead_json(self, rec: LeadRecord, fields: Sequence[str]) -> JsonDict:
        out: JsonDict = {"id": rec.id}
        for name in fields:
            if name == "id":
                continue
            if name == "createdAt":
                out[name] = iso_s(rec.created_ms)
            elif name == "updatedAt":
                out[name] = iso_s(rec.updated_ms)
            else:
                out[name] = render(self.fields.get(name), rec.values.get(name))
        return out

    # -- activities ------------------------------------------------------------------------
    def add_activity(
        self,
        lead_id: int,
        type_id: int,
        primary_value: str | None,
        attributes: Mapping[str, Any] | Iterable[tuple[str, Any]] = (),
        *,
        at_ms: int | None = None,
        guid: str | None = None,
        primary_value_id: int | None = None,
        fields: list[JsonDict] | None = None,
        campaign_id: int | None = None,
    ) -> ActivityRecord:
        with self.lock:
            if type_id not in self.activity_types:
                raise ValueError(f"unknown activity type {type_id}")
            attrs = (
                list(attributes.items()) if isinstance(attributes, Mapping) else list(attributes)
            )
            act = ActivityRecord(
                id=self._next_activity_id,
                guid=guid or str(uuid.uuid4()),
                lead_id=int(lead_id),
                date_ms=self.now_ms() if at_ms is None else at_ms,
                type_id=type_id,
                primary_value=primary_value,
                primary_value_id=primary_value_id,
                attributes=attrs,
                fields=list(fields or []),
                campaign_id=campaign_id,
            )
            self._next_activity_id += 1
            i = bisect.bisect_right(self._keys, act.key)
            self._keys.insert(i, act.key)
            self.activities.insert(i, act)
            return act

    def scan(
        self,
        after: tuple[int, int],
        predicate: Any,
        batch: int,
        scan_limit: int,
    ) -> tuple[list[ActivityRecord], tuple[int, int], bool]:
        """Matches among at most ``scan_limit`` activities after the key ``after``:
        (matches, key of the last activity scanned, whether more remain to scan)."""
        i = bisect.bisect_right(self._keys, after)
        n = len(self.activities)
        out: list[ActivityRecord] = []
        last = after
        scanned = 0
        while i < n and scanned < scan_limit and len(out) < batch:
            act = self.activities[i]
            scanned += 1
            i += 1
            last = act.key
            if predicate(act):
                out.append(act)
        return out, last, i < n
