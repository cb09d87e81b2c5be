"""The stored HubSpot portal: one record store per declared object type (contacts, companies),
each with its property definitions, the associations between records, events, e-mail events and
forms, every mutation (writes, lifecycle-stage rules, merges, archives, associations, events) and
the roll-up properties HubSpot derives from the events. Thread-safe through ``Portal.lock``.

Association changes (see ``associate``/``disassociate``): the primary company of a contact is
mirrored into the contact's read-only ``associatedcompanyid``; changing it bumps the contact's
``lastmodifieddate`` (so an incremental contact search sees a contact that moved company). An
unlabeled association alone changes no contact property and does not bump the contact. A
company's ``num_associated_contacts`` follows its live associated contacts; when it changes the
company's ``hs_lastmodifieddate`` is bumped."""

from __future__ import annotations

import bisect
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connector.sandbox.base import DAY_MS as _DAY_MS
from connector.sandbox.base import from_ms, iso_ms, to_ms
from connector.sandbox.hubspot.errors import BadRequest, LookupFailed, PropProblem, _error
from connector.sandbox.hubspot.events import (
    FORM_SUBMISSION,
    PAGE_VIEW,
    EmailEvent,
    WebEvent,
    _classify_source,
    _form_title,
)
from connector.sandbox.hubspot.forms import Form
from connector.sandbox.hubspot.object_types import (
    COMPANIES,
    CONTACTS,
    OBJECT_TYPES,
    ObjectType,
    association_types,
    unlabeled_type,
)
from connector.sandbox.hubspot.properties import (
    PropertyDef,
    PropertyGroup,
    _normalize_value,
    _stage_rank,
    default_company_groups,
    default_company_properties,
    default_groups,
    default_properties,
)

DEFAULT_PORTAL_ID = 4242


@dataclass(slots=True)
class ContactRecord:
    """One stored contact. ``properties`` holds strings only (as HubSpot returns them)."""

    id: str
    num_id: int
    properties: dict[str, str]
    created_ms: int
    updated_ms: int
    archived: bool = False
    archived_ms: int | None = None
    merged_into: str | None = None  # set on an absorbed contact: the survivor's id
    history: dict[str, list[tuple[str, int, str]]] = field(default_factory=dict)
    kind: ObjectType = CONTACTS  # the declared object type this record belongs to

    @property
    def live(self) -> bool:
        return not self.archived and self.merged_into is None

    def emails(self) -> list[str]:
        out = []
        primary = self.properties.get("email")
        if primary:
            out.append(primary.lower())
        extra = self.properties.get("hs_additional_emails")
        if extra:
            out.extend(e.lower() for e in extra.split(";") if e)
        return list(dict.fromkeys(out))


ObjectRecord = ContactRecord  # one stored CRM object of any declared type


@dataclass
class ObjectStore:
    """The records of one declared object type, with its property catalogue."""

    ot: ObjectType
    properties: dict[str, PropertyDef]
    groups: dict[str, PropertyGroup]
    records: dict[str, ContactRecord] = field(default_factory=dict)
    next_id: int = 1
    live: list[ContactRecord] | None = None
    live_ids: list[int] = field(default_factory=list)


# a company id in the sandbox starts here (HubSpot's ids of different types never collide
# in practice; distinct ranges keep test output readable)
COMPANY_FIRST_ID = 9001


def _deterministic_id(portal_id: int, kind: str, seq: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"hubspot-sandbox:{portal_id}:{kind}:{seq}"))


class Portal:
    """The stored HubSpot portal. Tests may read it directly; take ``lock`` to mutate.

    The portal has its own clock: ``now_ms()`` = real time + ``clock_offset_ms``. Loading a
    fixture with a fixed ``now`` sets the offset so that writes made during the test land just
    after that ``now`` (``advance()`` moves it forward).
    """

    def __init__(self, portal_id: int = DEFAULT_PORTAL_ID, now: datetime | None = None) -> None:
        self.portal_id = portal_id
        self.lock = threading.RLock()
        self.clock_offset_ms = 0 if now is None else to_ms(now) - int(time.time() * 1000)
        created = self.now_ms()
        self.stores: dict[str, ObjectStore] = {
            CONTACTS.name: ObjectStore(
                CONTACTS,
                {p.name: p for p in default_properties(created)},
                {g.name: g for g in default_groups()},
            ),
            COMPANIES.name: ObjectStore(
                COMPANIES,
                {p.name: p for p in default_company_properties(created)},
                {g.name: g for g in default_company_groups()},
                next_id=COMPANY_FIRST_ID,
            ),
        }
        assert set(self.stores) == {ot.name for ot in OBJECT_TYPES}
        # the contact store under its historical names
        self.properties: dict[str, PropertyDef] = self.stores[CONTACTS.name].properties
        self.groups: dict[str, PropertyGroup] = self.stores[CONTACTS.name].groups
        self.contacts: dict[str, ContactRecord] = self.stores[CONTACTS.name].records
        self.companies: dict[str, ContactRecord] = self.stores[COMPANIES.name].records
        # (type, id) -> {(other type, other id): association type ids, seen from (type, id)}
        self.associations: dict[tuple[str, str], dict[tuple[str, str], set[int]]] = defaultdict(
            dict
        )
        self.events: list[WebEvent] = []
        self.events_by_contact: dict[str, list[WebEvent]] = defaultdict(list)
        self.events_by_type: dict[str, list[WebEvent]] = defaultdict(list)
        self.email_events: list[EmailEvent] = []
        self.email_by_recipient: dict[str, list[EmailEvent]] = defaultdict(list)
        self.forms: dict[str, Form] = {}
        self.event_uuids: dict[str, str] = {}  # uuid of a sent custom event -> its event id
        self._by_email: dict[str, str] = {}
        self._seq = 0

    # -- clock ---------------------------------------------------------------------------------
    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.clock_offset_ms

    def now(self) -> datetime:
        return from_ms(self.now_ms())

    def advance(self, seconds: float) -> None:
        """Move the portal clock forward (e.g. to let events age)."""
        with self.lock:
            self.clock_offset_ms += int(seconds * 1000)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # -- lookups -------------------------------------------------------------------------------
    def store(self, ot: ObjectType) -> ObjectStore:
        return self.stores[ot.name]

    def properties_of(self, ot: ObjectType) -> dict[str, PropertyDef]:
        return self.stores[ot.name].properties

    def resolve(
        self, contact_id: str, include_archived: bool = False, ot: ObjectType = CONTACTS
    ) -> ContactRecord | None:
        """The live record for an id; absorbed ids resolve to their survivor."""
        records = self.stores[ot.name].records
        rec = records.get(str(contact_id))
        for _ in range(100):
            if rec is None or rec.merged_into is None:
                break
            rec = records.get(rec.merged_into)
        if rec is None or rec.merged_into is not None:
            return None
        if rec.archived and not include_archived:
            return None
        return rec

    def by_email(self, email: str) -> ContactRecord | None:
        cid = self._by_email.get(email.strip().lower())
        return self.resolve(cid) if cid else None

    def live_contacts(self) -> list[ContactRecord]:
        """Live (not archived, not absorbed) contacts sorted by numeric id. Cached."""
        return self.live_records(CONTACTS)

    def live_records(self, ot: ObjectType) -> list[ContactRecord]:
        """Live (not archived, not absorbed) records of a type sorted by numeric id. Cached."""
        st = self.stores[ot.name]
        if st.live is None:
            live = [c for c in st.records.values() if c.live]
            live.sort(key=lambda c: c.num_id)
            st.live = live
            st.live_ids = [c.num_id for c in live]
        return st.live

    def live_ids(self, ot: ObjectType = CONTACTS) -> list[int]:
        self.live_records(ot)
        return self.stores[ot.name].live_ids

    def _dirty(self) -> None:
        for st in self.stores.values():
            st.live = None

    def form_by_name_or_id(self, key: str) -> Form | None:
        if key in self.forms:
            return self.forms[key]
        for f in self.forms.values():
            if f.name == key:
                return f
        return None

    # -- validation ----------------------------------------------------------------------------
    def validate_writes(
        self,
        rec: ContactRecord | None,
        props: Mapping[str, Any],
        *,
        allow_read_only: bool = False,
        ot: ObjectType = CONTACTS,
    ) -> tuple[dict[str, str], list[PropProblem]]:
        """Normalize values to strings; list every problem. Raises BadRequest on wrong types."""
        known = self.stores[ot.name].properties
        values: dict[str, str] = {}
        problems: list[PropProblem] = []
        for name, raw in props.items():
            if not isinstance(name, str):
                raise BadRequest(_error(400, "Property names must be strings", "VALIDATION_ERROR"))
            if isinstance(raw, dict | list):
                raise BadRequest(
                    _error(
                        400,
                        f"Invalid input JSON: property '{name}' must be a string, number or "
                        f"boolean, not {type(raw).__name__}",
                        "VALIDATION_ERROR",
                    )
                )
            pdef = known.get(name)
            if pdef is None or pdef.archived:
                problems.append(
                    PropProblem(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
                )
                continue
            if pdef.read_only and not allow_read_only:
                problems.append(
                    PropProblem(
                        name, "READ_ONLY_VALUE", f'Property "{name}" is a read-only property'
                    )
                )
                continue
            value, problem = _normalize_value(pdef, raw)
            if problem is not None:
                problems.append(problem)
                continue
            assert value is not None
            if name == "lifecyclestage" and rec is not None and value:
                current = rec.properties.get("lifecyclestage", "")
                if current and _stage_rank(value) < _stage_rank(current):
                    problems.append(
                        PropProblem(
                            name,
                            "LIFECYCLE_STAGE_BACKWARD",
                            f'lifecyclestage cannot move backward from "{current}" to '
                            f'"{value}"; set it to "" first',
                        )
                    )
                    continue
            values[name] = value
        return values, problems

    # -- mutations -----------------------------------------------------------------------------
    def _touch(self, rec: ContactRecord, at_ms: int | None = None) -> None:
        ms = max(self.now_ms() if at_ms is None else at_ms, rec.updated_ms + 1)
        rec.updated_ms = ms
        rec.properties[rec.kind.last_modified] = iso_ms(ms)

    def _set(self, rec: ContactRecord, name: str, value: str, source: str, ms: int) -> bool:
        old = rec.properties.get(name)
        if old == value:
            return False
        rec.properties[name] = value
        rec.history.setdefault(name, []).append((value, ms, source))
        if name == "email":
            if old:
                self._by_email.pop(old.lower(), None)
            if value:
                self._by_email.setdefault(value.lower(), rec.id)
        if name == "lifecyclestage" and value:
            stamp = f"hs_lifecyclestage_{value}_date"
            if stamp in self.stores[rec.kind.name].properties and not rec.properties.get(stamp):
                rec.properties[stamp] = iso_ms(ms)
        return True

    def apply(
        self, rec: ContactRecord, values: Mapping[str, str], source: str = "INTEGRATION"
    ) -> None:
        """Write already-validated values and bump lastmodifieddate (always, like HubSpot)."""
        with self.lock:
            ms = self.now_ms()
            for name, value in values.items():
                self._set(rec, name, value, source, ms)
            if rec.kind is CONTACTS and ("email" in values or "hs_additional_emails" in values):
                self.recompute_rollups(rec, touch=False)
            self._touch(rec, ms)  # one instant for the write and its stage stamp

    def create_contact(
        self,
        values: Mapping[str, str],
        *,
        contact_id: str | None = None,
        created_ms: int | None = None,
    ) -> ContactRecord:
        return self.create_object(CONTACTS, values, object_id=contact_id, created_ms=created_ms)

    def create_object(
        self,
        ot: ObjectType,
        values: Mapping[str, str],
        *,
        object_id: str | None = None,
        created_ms: int | None = None,
    ) -> ContactRecord:
        with self.lock:
            st = self.stores[ot.name]
            if object_id is None:
                object_id = str(st.next_id)
            num = int(object_id)
            st.next_id = max(st.next_id, num + 1)
            ms = self.now_ms() if created_ms is None else created_ms
            rec = ContactRecord(
                id=object_id, num_id=num, properties={}, created_ms=ms, updated_ms=ms, kind=ot
            )
            for name, value in values.items():
                if value != "":
                    rec.properties[name] = value
            rec.properties["hs_object_id"] = object_id
            rec.properties["createdate"] = iso_ms(ms)
            rec.properties[ot.last_modified] = iso_ms(ms)
            if ot is COMPANIES:
                rec.properties["num_associated_contacts"] = "0"
            stage = rec.properties.get("lifecyclestage")
            if stage and f"hs_lifecyclestage_{stage}_date" in st.properties:
                rec.properties.setdefault(f"hs_lifecyclestage_{stage}_date", iso_ms(ms))
            st.records[object_id] = rec
            email = rec.properties.get("email") if ot is CONTACTS else None
            if email:
                self._by_email.setdefault(email.lower(), object_id)
            self._dirty()
            return rec

    def archive(
        self, contact_id: str, *, touch: bool = True, ot: ObjectType = CONTACTS
    ) -> ContactRecord | None:
        with self.lock:
            rec = self.resolve(contact_id, ot=ot)
            if rec is None:
                return None
            rec.archived = True
            rec.archived_ms = self.now_ms()
            if touch:
                self._touch(rec)
            if ot is CONTACTS:
                for email in rec.emails():
                    if self._by_email.get(email) == rec.id:
                        del self._by_email[email]
            self._dirty()
            if ot is CONTACTS:
                for company_id in self._linked(rec, COMPANIES):
                    self._recount_contacts(company_id, touch=touch)
            return rec

    def merge(
        self, primary_id: str, absorbed_id: str, *, touch: bool = True, ot: ObjectType = CONTACTS
    ) -> ContactRecord:
        """Merge ``absorbed_id`` into ``primary_id``; returns the survivor."""
        if ot is not CONTACTS:
            return self._merge_object(ot, primary_id, absorbed_id, touch=touch)
        with self.lock:
            primary = self.resolve(primary_id)
            absorbed = self.resolve(absorbed_id)
            if primary is None:
                raise LookupFailed(primary_id)
            if absorbed is None:
                raise LookupFailed(absorbed_id)
            if primary.id == absorbed.id:
                raise ValueError("cannot merge a contact with itself")
            ms = self.now_ms()
            keep_stage = max(
                primary.properties.get("lifecyclestage", ""),
                absorbed.properties.get("lifecyclestage", ""),
                key=_stage_rank,
            )
            for name, value in absorbed.properties.items():
                pdef = self.properties.get(name)
                if pdef is None or pdef.read_only or name == "email":
                    continue
                if value and not primary.properties.get(name):
                    self._set(primary, name, value, "MERGE", ms)
            if keep_stage:
                primary.properties["lifecyclestage"] = keep_stage
            merged = [i for i in primary.properties.get("hs_merged_object_ids", "").split(";") if i]
            merged += [absorbed.id]
            merged += [
                i for i in absorbed.properties.get("hs_merged_object_ids", "").split(";") if i
            ]
            primary.properties["hs_merged_object_ids"] = ";".join(dict.fromkeys(merged))
            extra = [e for e in absorbed.emails() if e not in primary.emails()]
            if extra:
                current = [
                    e for e in primary.properties.get("hs_additional_emails", "").split(";") if e
                ]
                primary.properties["hs_additional_emails"] = ";".join(
                    dict.fromkeys(current + extra)
                )
            for email in absorbed.emails():
                self._by_email[email] = primary.id
            absorbed.merged_into = primary.id
            for other in self.contacts.values():
                if other.merged_into == absorbed.id:
                    other.merged_into = primary.id
            moved = self.events_by_contact.pop(absorbed.id, [])
            if moved:
                for ev in moved:
                    ev.object_id = primary.id
                target = self.events_by_contact[primary.id]
                target.extend(moved)
                target.sort(key=lambda e: e.key)
            self.recompute_rollups(primary, touch=False)
            self._move_associations(absorbed, primary)
            if touch:
                self._touch(primary)
            self._dirty()
            return primary

    def _merge_object(
        self, ot: ObjectType, primary_id: str, absorbed_id: str, *, touch: bool = True
    ) -> ContactRecord:
        """Merge two records of a type without events (companies): values, ids, associations."""
        with self.lock:
            primary = self.resolve(primary_id, ot=ot)
            absorbed = self.resolve(absorbed_id, ot=ot)
            if primary is None:
                raise LookupFailed(primary_id)
            if absorbed is None:
                raise LookupFailed(absorbed_id)
            if primary.id == absorbed.id:
                raise ValueError(f"cannot merge a {ot.singular} with itself")
            ms = self.now_ms()
            known = self.stores[ot.name].properties
            for name, value in absorbed.properties.items():
                pdef = known.get(name)
                if pdef is None or pdef.read_only:
                    continue
                if value and not primary.properties.get(name):
                    self._set(primary, name, value, "MERGE", ms)
            merged = [i for i in primary.properties.get("hs_merged_object_ids", "").split(";") if i]
            merged += [absorbed.id]
            merged += [
                i for i in absorbed.properties.get("hs_merged_object_ids", "").split(";") if i
            ]
            primary.properties["hs_merged_object_ids"] = ";".join(dict.fromkeys(merged))
            absorbed.merged_into = primary.id
            for other in self.stores[ot.name].records.values():
                if other.merged_into == absorbed.id:
                    other.merged_into = primary.id
            self._move_associations(absorbed, primary, touch=touch)
            if touch:
                self._touch(primary)
            self._dirty()
            return primary

    # -- associations --------------------------------------------------------------------------
    def _linked(self, rec: ContactRecord, to: ObjectType) -> list[str]:
        """Ids of the ``to`` records linked to ``rec`` (stored links, live or not)."""
        links = self.associations.get((rec.kind.name, rec.id), {})
        return [oid for (t, oid) in links if t == to.name]

    def associations_of(
        self, rec: ContactRecord, to: ObjectType
    ) -> list[tuple[ContactRecord, list[int]]]:
        """The live ``to`` records linked to ``rec`` with the type ids, by numeric id."""
        out = []
        for (t, oid), types in self.associations.get((rec.kind.name, rec.id), {}).items():
            if t != to.name:
                continue
            other = self.resolve(oid, ot=to)
            if other is not None and other.id == oid:
                out.append((other, sorted(types)))
        out.sort(key=lambda pair: pair[0].num_id)
        return out

    def _link(self, a: ContactRecord, b: ContactRecord, type_ids: set[int]) -> None:
        kinds = association_types(a.kind.name, b.kind.name)
        mine = self.associations[(a.kind.name, a.id)].setdefault((b.kind.name, b.id), set())
        theirs = self.associations[(b.kind.name, b.id)].setdefault((a.kind.name, a.id), set())
        for tid in type_ids:
            mine.add(tid)
            theirs.add(kinds[tid].inverse)

    def _unlink(self, a: ContactRecord, b: ContactRecord, type_ids: set[int] | None) -> set[int]:
        """Remove some (None: all) association types between two records; what was removed."""
        mine = self.associations.get((a.kind.name, a.id), {}).get((b.kind.name, b.id))
        if not mine:
            return set()
        unlabeled = unlabeled_type(a.kind.name, b.kind.name)
        if type_ids is None or (unlabeled is not None and unlabeled.type_id in type_ids):
            type_ids = set(mine)
        kinds = association_types(a.kind.name, b.kind.name)
        removed = mine & type_ids
        mine -= removed
        theirs = self.associations[(b.kind.name, b.id)][(a.kind.name, a.id)]
        theirs -= {kinds[t].inverse for t in removed}
        if not mine:
            del self.associations[(a.kind.name, a.id)][(b.kind.name, b.id)]
            del self.associations[(b.kind.name, b.id)][(a.kind.name, a.id)]
        return removed

    def associate(self, a: ContactRecord, b: ContactRecord, type_ids: set[int]) -> None:
        """Link two live records with the given type ids (plus the unlabeled type), keeping a
        contact's primary company unique and its ``associatedcompanyid`` in line."""
        with self.lock:
            kinds = association_types(a.kind.name, b.kind.name)
            unlabeled = unlabeled_type(a.kind.name, b.kind.name)
            if unlabeled is None:
                raise ValueError(f"no association between {a.kind.name} and {b.kind.name}")
            type_ids = {*type_ids, unlabeled.type_id}
            contact, company = (a, b) if a.kind is CONTACTS else (b, a)
            primary = any(kinds[t].primary for t in type_ids)
            if primary:
                for other_id in self._linked(contact, COMPANIES):
                    if other_id == company.id:
                        continue
                    other = self.companies[other_id]
                    self._unlink(contact, other, {1})
            self._link(a, b, type_ids)
            if primary:
                self._set_primary_company(contact, company.id)
            self._recount_contacts(company.id)

    def disassociate(
        self, a: ContactRecord, b: ContactRecord, type_ids: set[int] | None = None
    ) -> bool:
        """Remove association types (None or the unlabeled type: all) between two records."""
        with self.lock:
            removed = self._unlink(a, b, type_ids)
            if not removed:
                return False
            contact, company = (a, b) if a.kind is CONTACTS else (b, a)
            if contact.properties.get("associatedcompanyid") == company.id and not any(
                1 in types
                for other, types in self.associations.get((CONTACTS.name, contact.id), {}).items()
                if other == (COMPANIES.name, company.id)
            ):
                self._set_primary_company(contact, "")
            self._recount_contacts(company.id)
            return True

    def _set_primary_company(
        self, contact: ContactRecord, company_id: str, touch: bool = True
    ) -> None:
        if contact.properties.get("associatedcompanyid", "") == company_id:
            return
        if company_id:
            contact.properties["associatedcompanyid"] = company_id
        else:
            contact.properties.pop("associatedcompanyid", None)
        if touch:
            self._touch(contact)

    def _recount_contacts(self, company_id: str, touch: bool = True) -> None:
        company = self.companies.get(company_id)
        if company is None:
            return
        count = str(len(self.associations_of(company, CONTACTS)))
        if company.properties.get("num_associated_contacts") != count:
            company.properties["num_associated_contacts"] = count
            if touch:
                self._touch(company)

    def _move_associations(
        self, absorbed: ContactRecord, survivor: ContactRecord, touch: bool = True
    ) -> None:
        """A merge: the absorbed record's associations follow it to the survivor."""
        links = self.associations.pop((absorbed.kind.name, absorbed.id), {})
        for (t, oid), types in links.items():
            other = self.stores[t].records[oid]
            back = self.associations.get((t, oid), {})
            back.pop((absorbed.kind.name, absorbed.id), None)
            if survivor.kind is CONTACTS and survivor.properties.get("associatedcompanyid"):
                types = types - {1}  # the survivor keeps its own primary company
            if survivor.kind is COMPANIES and other.properties.get("associatedcompanyid") not in (
                None,
                absorbed.id,
            ):
                types = types - {2}
            self._link(survivor, other, set(types))
            if survivor.kind is COMPANIES:
                if 2 in types:
                    self._set_primary_company(other, survivor.id, touch=touch)
            elif 1 in types:
                self._set_primary_company(survivor, oid, touch=False)
        company = survivor if survivor.kind is COMPANIES else None
        if company is not None:
            self._recount_contacts(company.id, touch=False)
        else:
            for oid in self._linked(survivor, COMPANIES):
                self._recount_contacts(oid, touch=touch)

    def _insert_event(self, ev: WebEvent) -> None:
        for bucket in (
            self.events,
            self.events_by_contact[ev.object_id],
            self.events_by_type[ev.event_type],
        ):
            bisect.insort(bucket, ev, key=lambda e: e.key)

    def add_event(
        self,
        contact_id: str,
        event_type: str,
        properties: Mapping[str, object] | None = None,
        occurred_ms: int | None = None,
        *,
        event_id: str | None = None,
        touch: bool = True,
    ) -> WebEvent:
        """Record an event, recompute roll-ups, bump lastmodifieddate if a roll-up changed."""
        with self.lock:
            rec = self.resolve(contact_id)
            if rec is None:
                raise LookupFailed(contact_id)
            props = {str(k): "" if v is None else str(v) for k, v in (properties or {}).items()}
            if event_type == FORM_SUBMISSION:
                form = self.form_by_name_or_id(props.get("hs_form_id", "")) or (
                    self.form_by_name_or_id(props.get("hs_form_title", ""))
                )
                if form is not None:
                    props["hs_form_id"] = form.id
                    props.setdefault("hs_form_title", form.name)
            ev = WebEvent(
                id=event_id or _deterministic_id(self.portal_id, "event", self._next_seq()),
                event_type=event_type,
                object_id=rec.id,
                occurred_ms=self.now_ms() if occurred_ms is None else occurred_ms,
                properties=props,
            )
            self._insert_event(ev)
            if event_type in (PAGE_VIEW, FORM_SUBMISSION):
                self.recompute_rollups(rec, touch=touch)
            return ev

    def add_email_event(
        self,
        recipient: str,
        event_type: str,
        created_ms: int | None = None,
        *,
        campaign_id: int = 1001,
        url: str | None = None,
        event_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
        touch: bool = True,
    ) -> EmailEvent:
        with self.lock:
            ev = EmailEvent(
                id=event_id or _deterministic_id(self.portal_id, "email", self._next_seq()),
                type=event_type.upper(),
                recipient=recipient,
                created_ms=self.now_ms() if created_ms is None else created_ms,
                campaign_id=campaign_id,
                url=url,
                extra=dict(extra or {}),
            )
            bisect.insort(self.email_events, ev, key=lambda e: e.key)
            bisect.insort(self.email_by_recipient[recipient.lower()], ev, key=lambda e: e.key)
            rec = self.by_email(recipient)
            if rec is not None:
                self.recompute_rollups(rec, touch=touch)
            return ev

    def set_property(
        self, contact_id: str, name: str, value: object, source: str = "CRM_UI"
    ) -> None:
        """Set a property as a rep would in the UI: any existing property, no stage rule."""
        with self.lock:
            rec = self.resolve(contact_id)
            if rec is None:
                raise LookupFailed(contact_id)
            values, problems = self.validate_writes(None, {name: value}, allow_read_only=True)
            if problems:
                raise ValueError("; ".join(p.message for p in problems))
            self.apply(rec, values, source)

    # -- roll-ups ------------------------------------------------------------------------------
    def compute_rollups(self, rec: ContactRecord) -> dict[str, str | None]:
        evs = self.events_by_contact.get(rec.id, [])
        views = [e for e in evs if e.event_type == PAGE_VIEW]
        forms = [e for e in evs if e.event_type == FORM_SUBMISSION]
        mails: list[EmailEvent] = []
        for email in rec.emails():
            mails.extend(self.email_by_recipient.get(email, ()))
        mails.sort(key=lambda e: e.key)
        out: dict[str, str | None] = {
            "hs_analytics_num_page_views": str(len(views)),
            "hs_analytics_num_visits": str(len({e.occurred_ms // _DAY_MS for e in views})),
            "num_conversion_events": str(len(forms)),
            "num_unique_conversion_events": str(
                len(
                    {
                        e.properties.get("hs_form_id") or e.properties.get("hs_form_title")
                        for e in forms
                    }
                )
            ),
        }
        if views:
            first, last = views[0], views[-1]
            out["hs_analytics_first_visit_timestamp"] = iso_ms(first.occurred_ms)
            out["hs_analytics_last_visit_timestamp"] = iso_ms(last.occurred_ms)
            out["hs_analytics_first_url"] = first.properties.get("hs_url", "")
            out["hs_analytics_first_referrer"] = first.properties.get("hs_referrer", "")
            out["hs_analytics_last_referrer"] = last.properties.get("hs_referrer", "")
            out["hs_analytics_source"] = _classify_source(
                first.properties.get("hs_referrer", ""), first.properties.get("hs_url", "")
            )
        elif not rec.properties.get("hs_analytics_source"):
            out["hs_analytics_source"] = "OFFLINE"
        if forms:
            out["first_conversion_event_name"] = _form_title(forms[0])
            out["first_conversion_date"] = iso_ms(forms[0].occurred_ms)
            out["recent_conversion_event_name"] = _form_title(forms[-1])
            out["recent_conversion_date"] = iso_ms(forms[-1].occurred_ms)
        counts = {"DELIVERED": 0, "OPEN": 0, "CLICK": 0, "BOUNCE": 0}
        last_open = last_click = None
        optout = False
        for m in mails:
            if m.type in counts:
                counts[m.type] += 1
            if m.type == "OPEN":
                last_open = m.created_ms
            elif m.type == "CLICK":
                last_click = m.created_ms
            elif m.type == "UNSUBSCRIBED" or (
                m.type == "STATUSCHANGE" and m.extra.get("subscribed") is False
            ):
                optout = True
        out["hs_email_delivered"] = str(counts["DELIVERED"])
        out["hs_email_open"] = str(counts["OPEN"])
        out["hs_email_click"] = str(counts["CLICK"])
        out["hs_email_bounce"] = str(counts["BOUNCE"])
        out["hs_email_optout"] = "true" if optout else "false"
        if last_open is not None:
            out["hs_email_last_open_date"] = iso_ms(last_open)
        if last_click is not None:
            out["hs_email_last_click_date"] = iso_ms(last_click)
        return out

    def last_activity_ms(self, rec: ContactRecord) -> int:
        latest = 0
        for ev in reversed(self.events_by_contact.get(rec.id, [])):
            if ev.event_type in (PAGE_VIEW, FORM_SUBMISSION):
                latest = ev.occurred_ms
                break
        for email in rec.emails():
            mails = self.email_by_recipient.get(email)
            if mails:
                latest = max(latest, mails[-1].created_ms)
        return latest

    def recompute_rollups(self, rec: ContactRecord, *, touch: bool = True) -> bool:
        """Bring the roll-up properties in line with the events; True if anything changed."""
        with self.lock:
            changed = False
            ms = self.now_ms()
            for name, value in self.compute_rollups(rec).items():
                if value is None:
                    continue
                if self._set(rec, name, value, "ANALYTICS", ms):
                    changed = True
            if changed and touch:
                self._touch(rec)
            return changed
