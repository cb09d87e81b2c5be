"""The project's own types. Every module speaks these; only CRM adapters know CRM shapes.

Records (`record`): dataclasses with slots that the type checker holds immutable, hashed and
compared by their fields, free of any I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

from typing_extensions import dataclass_transform

from connector.member import AccountMember as AccountMember
from connector.reason import Reason as Reason
from connector.reason import shown_bar as shown_bar
from connector.reason import shown_points
from connector.reason import shown_signed as shown_signed

_T = TypeVar("_T")


@dataclass_transform(frozen_default=True)
def record(cls: type[_T]) -> type[_T]:
    """A dataclass with slots that mypy holds frozen (assigning a field is a type error), and
    that hashes by its fields as a frozen one does; at run time its fields are set as a plain
    dataclass's are. A frozen dataclass's `__init__` sets each field through
    `object.__setattr__`, ~4x the cost, and a full rescore builds a dozen records per contact
    (the contact, its reasons, its result): ~7% of a rescore's time. `tests/test_static_checks.py`
    runs `mypy --strict connector` in CI, so code that assigns a field does not pass."""
    return dataclass(slots=True, unsafe_hash=True)(cls)


# Canonical event types produced by the adapters (the model's rules match on these).
EVENT_TYPES: tuple[str, ...] = (
    "page_view",  # attributes: url, referrer, title
    "form_submit",  # attributes: form (name), form_id, url
    "email_delivered",  # attributes: campaign
    "email_open",  # attributes: campaign
    "email_click",  # attributes: campaign, url
    "email_bounce",  # attributes: campaign
    "email_unsubscribe",  # attributes: campaign
    "webinar_registered",  # attributes: name
    "webinar_attended",  # attributes: name, watched_share (0..1), minutes_watched
    "meeting_booked",  # attributes: title  (a sales-owned signal)
    "deal_opened",  # attributes: name     (a sales-owned signal)
    "custom",  # attributes: name + anything the CRM sent
)

# The attributes each event type carries (what a rule's `when` may test); None: any (custom).
EVENT_ATTRIBUTES: dict[str, tuple[str, ...] | None] = {
    "page_view": ("url", "referrer", "title"),
    "form_submit": ("form", "form_id", "url"),
    "email_delivered": ("campaign", "url"),
    "email_open": ("campaign", "url"),
    "email_click": ("campaign", "url"),
    "email_bounce": ("campaign", "url"),
    "email_unsubscribe": ("campaign", "url"),
    "webinar_registered": ("name",),
    "webinar_attended": ("name", "watched_share", "minutes_watched"),
    "meeting_booked": ("title",),
    "deal_opened": ("name",),
    "custom": None,
}

EmailKind = Literal["corporate", "free", "disposable", "invalid", "missing", "unknown"]

# HubSpot's lifecycle stages, in order. Marketo adapters map their status field onto these.
LIFECYCLE_ORDER: tuple[str, ...] = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
)
MQL = "marketingqualifiedlead"
SQL = "salesqualifiedlead"


def crm_score(points: float) -> str:
    """A score as the CRM's whole-number properties show it (the contact's score and fit, a
    named score, the account's score): rounded down, so it reads as a bar (the MQL threshold,
    a priority band, the MQA threshold, all whole numbers) only once the score has reached
    it. Rounded to the nearest, 99.6 read "100" on a contact that was no MQL at 100."""
    return str(math.floor(points))


# how scores, points and bars read (the terminal, `explain`, reason texts): `connector.reason`,
# compiled with the scoring core
shown_num = shown_points


def stage_rank(stage: str | None) -> int:
    """Rank of a lifecycle stage; -1 for empty, 99 for an unknown stage (never touched)."""
    if not stage:
        return -1
    try:
        return LIFECYCLE_ORDER.index(stage)
    except ValueError:
        return 99


@record
class Contact:
    """A CRM contact, normalized. `properties` keeps the raw CRM values for auditing."""

    id: str
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    job_title: str | None = None
    company_name: str | None = None
    country: str | None = None
    lifecycle_stage: str | None = None
    lead_status: str | None = None
    lead_status_changed_at: datetime | None = None
    recycled_at: datetime | None = None
    mql_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)
    # our score properties as the CRM shows them right now, by our names ("" for empty), when
    # they were read with the contact; None when not read. Never stored: a pull compares them
    # with the last write at once (see `Pipeline.save_contact_page`).
    crm_values: Mapping[str, str] | None = None


@record
class Event:
    """One engagement event. (source, source_id) is globally unique and makes replays idempotent.
    A changed copy: `dataclasses.replace`."""

    source: str
    source_id: str
    contact_id: str
    type: str
    occurred_at: datetime
    attributes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.source}:{self.source_id}"


# One stored event as the state DB reads it for a rescore: (contact id, occurred_at as
# fixed-width UTC ISO-8601 text, "source:source_id", type, attributes as JSON text or None).
EventRow = tuple[str, str, str, str, str | None]


@record
class Company:
    """Firmographics for one registrable domain, with where they came from."""

    domain: str
    name: str | None = None
    industry: str | None = None
    industry_group: str | None = None
    employee_count: int | None = None
    employee_range: str | None = None
    annual_revenue_usd: float | None = None
    revenue_range: str | None = None
    country: str | None = None
    founded_year: int | None = None
    source: str = "unknown"
    as_of: str | None = None


@record
class CrmCompany:
    """A company record as the CRM shows it (HubSpot company, Marketo company): what the CRM
    adapters read and the state DB keeps (`connector.crm.base` re-exports it). A `record`: a
    full rescore with accounts on reads one for each account (a frozen dataclass's `__init__`
    cost 1.6 µs of the 2.1 µs a row took)."""

    id: str
    domain: str | None = None
    name: str | None = None
    industry: str | None = None
    employee_count: int | None = None
    annual_revenue_usd: float | None = None
    country: str | None = None
    updated_at: datetime | None = None
    archived: bool = False
    merged_into: str | None = None  # the survivor's id when merged away
    properties: Mapping[str, Any] | None = None

    def firmographics(self) -> tuple[Any, ...]:
        return (
            self.domain,
            self.name,
            self.industry,
            self.employee_count,
            self.annual_revenue_usd,
            self.country,
        )


def event_record_id(event_id: str) -> str:
    """The record id an engagement record's input dead letter is kept under (`event:<id>`):
    an event's id never shares one with a contact's (numeric Marketo activity and lead ids,
    HubSpot e-mail event ids), so a contact read cleanly never resolves an event's dead letter,
    nor an event's a contact's."""
    return f"event:{event_id}"


def company_record_id(company_id: str) -> str:
    """The record id a company's input dead letter is kept under (`company:<id>`), so that it
    never shares one with a contact of the same number."""
    return f"company:{company_id}"


@record
class Enrichment:
    """What enrichment knows about a contact's e-mail address and company."""

    email_kind: EmailKind
    domain: str | None = None  # registrable domain (acme.co.uk), lower-case ASCII
    company: Company | None = None
    error: str | None = None  # e.g. why the address is invalid; shown as a fit reason


@record
class LifecycleDecision:
    """What the lifecycle policy decided. `target_stage` is None when nothing is to be written."""

    current_stage: str | None
    target_stage: str | None
    mql: bool
    mql_reason: str | None
    recycled: bool = False
    note: str | None = None


@record
class ScoreResult:
    contact_id: str
    score: float  # engagement points (plus fit base points when the model says so)
    engagement_points: float
    fit_points: float
    grade: str  # A, B, C or D
    lifecycle: LifecycleDecision
    profile_mismatch: bool  # behaviour yes, profile no
    model_version: str
    model_fingerprint: str
    scored_at: datetime
    next_change_at: datetime | None
    reasons: tuple[Reason, ...] = ()
    hand_raiser: bool = False
    priority: str = ""  # grade + engagement band (A1 … D3); "" for a score stored before it
    # the Unix times of the events of each engagement rule reason with points over 0, as
    # (rule, the times in its `event_ids` order), in reason order. Only when the scorer was
    # asked (`scoring.engine.keeping_hit_times`: account scoring reads them, a member's
    # positive reasons' events); never stored, compared or shown
    hit_times: tuple[tuple[str, tuple[float, ...]], ...] | None = field(
        default=None, compare=False, repr=False
    )

    @property
    def mql_reason(self) -> str | None:
        return self.lifecycle.mql_reason

    def top_reasons(self, limit: int = 6, max_chars: int = 480) -> str:
        """The short text a rep reads in the CRM: the largest engagement contributions first,
        then the grade and why ("+50 watched webinar 'X' (full); ...; grade B: manager title")."""
        engagement = [r for r in self.reasons if r.kind == "engagement" and r.points != 0]
        engagement.sort(key=_largest_first)
        parts = [f"{shown_signed(r.points)} {r.text}" for r in engagement[:limit]]
        parts += [r.text for r in self.reasons if r.rule == "grade"]
        out = ""
        for part in parts:
            candidate = f"{out}; {part}" if out else part
            if len(candidate) > max_chars:
                return out or candidate[: max_chars - 1] + "…"
            out = candidate
        return out


# What a company's `account_reasons` shows, at most: a rep reads it on the record, so the
# limit is for reading; the CRMs take far more (HubSpot: 65,536 characters a text property;
# Marketo: 255 a string field, 30,000 bytes a text area; Marketo gets no account reasons).
ACCOUNT_REASONS_MAX = 480


def _fit_reasons(parts: Sequence[str], tail: Sequence[str], max_chars: int) -> str:
    """`parts` (largest first) then `tail` (kept whatever fits), joined by "; ", in at most
    `max_chars` characters: whole parts only, the first k that fit with the tail, then
    "… +N more" for the N left out. A tail alone too long is cut at a space, ending in "…"."""
    text = "; ".join([*parts, *tail])
    if len(text) <= max_chars:
        return text
    for k in range(len(parts) - 1, -1, -1):
        text = "; ".join([*parts[:k], *tail, f"… +{len(parts) - k} more"])
        if len(text) <= max_chars:
            return text
    cut = text[: max_chars - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > 0 else cut).rstrip(" ,;:") + "…"


def _largest_first(r: Reason) -> tuple[float, str]:
    return (-abs(r.points), r.rule)


@record
class WriteBack:
    """Properties to write for one contact (only those that differ from the last write)."""

    contact_id: str
    properties: Mapping[str, str]


@record
class WriteOutcome:
    contact_id: str
    ok: bool
    retryable: bool = False
    error: str | None = None
    archived: bool = False  # 404: the CRM no longer has it


@record
class Account:
    """A scored account: a CRM company record, or a registrable corporate e-mail domain for
    contacts with no company. `id` is the account key (`company:<crm id>` or `domain:<domain>`)."""

    id: str
    company: Company  # firmographics (domain may be empty for a company with no domain)
    crm_id: str | None = None  # the CRM's company id; None for a domain-keyed account
    target: bool = False  # on the model's target-account list


@record
class AccountResult:
    account_id: str
    score: float
    engagement_points: float  # the members' capped roll-up
    fit_points: float
    grade: str
    mqa: bool
    mqa_reason: str | None
    members: int
    engaged_contacts: tuple[str, ...]  # contact ids, most engaged first
    model_version: str
    model_fingerprint: str
    scored_at: datetime
    next_change_at: datetime | None
    reasons: tuple[Reason, ...] = ()

    def top_reasons(self, max_chars: int = ACCOUNT_REASONS_MAX) -> str:
        """The text a rep reads on the company: engagement parts by size, then the grade.
        Cut at a reason boundary: the largest parts that fit and the grade, then "… +N more"
        (the N parts left out; every one is in the state DB and `explain --account`)."""
        parts = sorted(
            (r for r in self.reasons if r.kind == "engagement" and r.points != 0),
            key=_largest_first,
        )
        texts = [f"{shown_signed(r.points)} {r.text}" for r in parts]
        grade = [r.text for r in self.reasons if r.rule == "grade"]
        return _fit_reasons(texts, grade, max_chars)
