"""Outcomes: did a contact convert within the horizon after its first scored engagement?

The rule (also in the package docstring and the README text):

- **First scored engagement** (`t0`): the earliest stored event, at or before `as_of`, of a type
  that one of the model's non-sales engagement rules listens to (page view, form, e-mail open or
  click, webinar, ...). A contact with none is left out ("no engagement").
- **Conversion time**: the earliest *precise* timestamp of reaching SQL: the first sales-signal
  event (the rules marked `sales_signal` or named in `lifecycle.sql.events`: meeting booked,
  deal opened) or, when the contact's lead status is one of `lifecycle.sql.lead_status`, its
  `lead_status_changed_at`, or the date the contact *entered* a stage of SQL or later, as the
  CRM records it (HubSpot's `hs_lifecyclestage_<stage>_date` / `hs_v2_date_entered_<stage>`,
  read into the contact's properties). Without a precise timestamp, a contact whose stage is
  SQL or later (opportunity, customer, ...) or whose lead status is a SQL status uses its
  `updated_at`: an *upper bound* of the conversion time. It is trusted only when it settles
  the question (at or before `t0 + horizon`); later than that the outcome is unknown and the
  contact is left out ("undated"). On Marketo, with `Change Data Value` (and `Change Status in
  Progression`) among the activity types read, the first change of the lead (or program)
  status to a SQL stage or status is a precise timestamp too.
- **Outcome**: converted when the conversion time is within `[t0, t0 + horizon]`; not converted
  when the horizon has passed (`t0 + horizon <= as_of`) without it. Contacts whose horizon has not
  passed yet are left out whatever happened so far (counting only their early conversions would
  bias the rates upward); so are contacts that converted before their first scored engagement
  (a score could not have predicted them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from connector.errors import InputError
from connector.model.schema import ScoringModel
from connector.parse import parse_timestamp
from connector.types import LIFECYCLE_ORDER, SQL, Contact, Event, stage_rank

Status = Literal[
    "converted", "not_converted", "inside_horizon", "converted_before", "no_engagement", "undated"
]
LABELLED: frozenset[str] = frozenset({"converted", "not_converted"})

_SQL_RANK = stage_rank(SQL)
# (property, stage) pairs that record when a contact entered a stage of SQL or later
STAGE_DATE_PROPERTIES: tuple[tuple[str, str], ...] = tuple(
    (prop.format(stage=s), s)
    for s in LIFECYCLE_ORDER[_SQL_RANK:]
    for prop in ("hs_lifecyclestage_{stage}_date", "hs_v2_date_entered_{stage}")
)


# Marketo lead/program status change activities, as the adapter reads them (custom events)
STATUS_CHANGES = frozenset({"status_changed", "program_status_changed"})


def _reaches_sql(ev: Event, types: SignalTypes) -> bool:
    stage = ev.attributes.get("stage")
    if isinstance(stage, str) and _SQL_RANK <= stage_rank(stage) < 99:
        return True
    status = ev.attributes.get("lead_status")
    return isinstance(status, str) and status.upper() in types.sql_lead_status


def stage_entered_at(contact: Contact) -> tuple[datetime, str] | None:
    """The earliest recorded entry into a stage of SQL or later: (when, stage), or None.
    A value that is not a timestamp is ignored (the stage's other evidence still counts)."""
    props = contact.properties
    best: tuple[datetime, str] | None = None
    for prop, stage in STAGE_DATE_PROPERTIES:
        raw = props.get(prop)
        if raw in (None, ""):
            continue
        try:
            at = parse_timestamp(raw, prop)
        except InputError:
            continue
        if best is None or at < best[0]:
            best = (at, stage)
    return best


@dataclass(frozen=True, slots=True)
class Outcome:
    """One contact's outcome. `label` is True/False for labelled contacts, None when left out."""

    contact_id: str
    status: Status
    first_engaged_at: datetime | None = None
    converted_at: datetime | None = None
    signal: str | None = None  # what showed the conversion: "event meeting_booked", ...

    @property
    def label(self) -> bool | None:
        if self.status == "converted":
            return True
        if self.status == "not_converted":
            return False
        return None

    def observation_end(self, horizon: timedelta) -> datetime:
        """Features are read strictly before this: the conversion, or the end of the horizon."""
        assert self.first_engaged_at is not None
        if self.status == "converted" and self.converted_at is not None:
            return self.converted_at
        return self.first_engaged_at + horizon


@dataclass(frozen=True, slots=True)
class SignalTypes:
    """Event types that show engagement (scored) and those that show a conversion (sales)."""

    scored: frozenset[str]
    sales: frozenset[str]
    sql_lead_status: frozenset[str]

    @classmethod
    def of(cls, model: ScoringModel) -> SignalTypes:
        sql_names = set(model.lifecycle.sql.events)
        sales: set[str] = set()
        scored: set[str] = set()
        for rule in model.engagement.rules:
            if rule.sales_signal or rule.name in sql_names:
                sales.update(rule.event_types)
            else:
                scored.update(rule.event_types)
        return cls(
            frozenset(scored - sales),
            frozenset(sales),
            frozenset(s.upper() for s in model.lifecycle.sql.lead_status),
        )

    @classmethod
    def for_score(cls, base: ScoringModel, score: ScoringModel) -> SignalTypes:
        """A named score's: the lifecycle model's conversions (its sales signals and SQL lead
        statuses: the same outcomes), engagement as the named score's own rules listen to it."""
        lifecycle, own = cls.of(base), cls.of(score)
        return cls(own.scored - lifecycle.sales, lifecycle.sales, lifecycle.sql_lead_status)


def outcome_for(
    contact: Contact,
    events: Iterable[Event],
    types: SignalTypes,
    horizon: timedelta,
    as_of: datetime,
) -> Outcome:
    """Apply the outcome rule of the module docstring to one contact."""
    t0: datetime | None = None
    first_sales: tuple[datetime, str] | None = None
    status_change: tuple[datetime, str] | None = None
    for ev in events:
        t = ev.occurred_at
        if t > as_of:
            continue
        if ev.type == "custom" and ev.attributes.get("name") in STATUS_CHANGES:
            if _reaches_sql(ev, types) and (status_change is None or t < status_change[0]):
                status_change = (t, f"{ev.attributes['name']} to {ev.attributes.get('new_value')}")
            continue
        if ev.type in types.sales:
            if first_sales is None or t < first_sales[0]:
                first_sales = (t, f"event {ev.type}")
        elif ev.type in types.scored and (t0 is None or t < t0):
            t0 = t
    if t0 is None:
        return Outcome(contact.id, "no_engagement")

    precise: list[tuple[datetime, str]] = []
    if first_sales is not None:
        precise.append(first_sales)
    status_text = (contact.lead_status or "").upper()
    sql_status = bool(status_text) and status_text in types.sql_lead_status
    changed = contact.lead_status_changed_at
    if sql_status and changed is not None and changed <= as_of:
        precise.append((changed, f"lead status {status_text}"))
    if status_change is not None:
        precise.append(status_change)
    entered = stage_entered_at(contact)
    if entered is not None and entered[0] <= as_of:
        precise.append((entered[0], f"entered {entered[1]}"))
    rank = stage_rank(contact.lifecycle_stage)
    reached = sql_status or (_SQL_RANK <= rank < 99)
    end = t0 + horizon

    converted_at: datetime | None = None
    signal: str | None = None
    upper_bound = False
    if precise:
        converted_at, signal = min(precise)
    elif reached:
        if contact.updated_at is None:
            return Outcome(contact.id, "undated", t0, None, "stage without a timestamp")
        why = f"lead status {status_text}" if sql_status else f"stage {contact.lifecycle_stage}"
        converted_at, signal, upper_bound = contact.updated_at, f"{why} (updated_at)", True

    if converted_at is not None and converted_at < t0:
        return Outcome(contact.id, "converted_before", t0, converted_at, signal)
    if end > as_of:
        return Outcome(contact.id, "inside_horizon", t0, converted_at, signal)
    if converted_at is not None and converted_at <= end:
        return Outcome(contact.id, "converted", t0, converted_at, signal)
    if upper_bound:  # reached SQL some time before updated_at: maybe within the horizon
        return Outcome(contact.id, "undated", t0, converted_at, signal)
    return Outcome(contact.id, "not_converted", t0, converted_at, signal)
