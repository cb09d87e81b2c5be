"""The one small protocol every CRM adapter implements, in the project's own types."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from connector.types import Contact, Event, WriteBack, WriteOutcome
from connector.types import CrmCompany as CrmCompany  # re-exported: its home was here

# The properties the worker writes, by our own names; each adapter maps them onto CRM fields.
SCORE_PROPERTIES: tuple[str, ...] = (
    "score",
    "grade",
    "fit_score",
    "reasons",
    "model_version",
    "scored_at",
    "mql_reason",
    "profile_mismatch",
    "priority",
)
STAGE = "lifecycle_stage"
# The score properties compared with what the CRM shows (read with the contacts): a value a
# person, a workflow or an import changed since our last write is written again. `scored_at`
# is only a stamp of the write; the lifecycle stage belongs to sales once set.
CHECKED_PROPERTIES: tuple[str, ...] = tuple(p for p in SCORE_PROPERTIES if p != "scored_at")

# When the CRM itself put the contact in MQL, where the CRM has no such field of its own
# (Marketo: derived from the status change the adapter reads), in `Contact.properties`, as
# ISO-8601 UTC. A colon is in no CRM's field names, so it never shadows a real one. The
# pipeline keeps the earliest across pulls (a later pull of the lead no longer shows it).
CRM_MQL_DATE = "leadscore:mql_date"


@dataclass
class BadRecord:
    """A record the CRM sent that we could not read: dead-lettered, never fatal."""

    record_id: str
    reason: str
    payload: object = None


@dataclass
class ContactPage:
    contacts: list[Contact]
    position: str | None  # resume position after this page (keyset id or paging token)
    events: list[Event] = field(default_factory=list)  # events derived from contact properties
    merged: dict[str, str] = field(default_factory=dict)  # absorbed id → survivor id
    bad: list[BadRecord] = field(default_factory=list)
    archived: list[str] = field(default_factory=list)  # ids deleted in the CRM (Marketo)


@dataclass
class EventPage:
    events: list[Event]
    position: str | None  # resume position after this page
    high_water: datetime | None  # newest event time on the page
    unresolved: list[tuple[str, Event]] = field(default_factory=list)  # (email, event)
    bad: list[BadRecord] = field(default_factory=list)
    contacts: list[Contact] = field(default_factory=list)  # first seen here: upsert them first
    merged: dict[str, str] = field(default_factory=dict)  # absorbed id → survivor id (Marketo)


@dataclass
class ApiStats:
    calls: dict[str, int] = field(default_factory=dict)
    rate_limited: int = 0
    retries: int = 0
    slept_seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def count(self, kind: str) -> None:
        self.calls[kind] = self.calls.get(kind, 0) + 1


class CrmAdapter(Protocol):
    name: str
    stats: ApiStats

    def ensure_properties(self) -> list[str]:
        """Create the group and our properties where missing; return what was created."""
        ...

    def check_properties(self) -> None:
        """Raise ConfigError naming what is missing (run init-properties)."""
        ...

    def pull_contacts(
        self, since: datetime | None, until: datetime | None, position: str | None
    ) -> Iterator[ContactPage]: ...

    def event_streams(self) -> Sequence[str]: ...

    def backdated_streams(self) -> Sequence[str]:
        """The event streams whose events can reach the CRM dated in the past: the stream is
        read by occurrence time, and the sender sets it (a custom event sent with an earlier
        `occurredAt`, a late import). The sync reads them again `events_lookback` behind
        their cursor."""
        ...

    def pull_events(
        self, stream: str, since: datetime | None, until: datetime | None, position: str | None
    ) -> Iterator[EventPage]: ...

    def write(self, writes: Sequence[WriteBack]) -> list[WriteOutcome]: ...

    def get_contact(self, contact_id: str) -> Contact | None: ...

    def close(self) -> None: ...


# -- accounts (issue 21): optional capabilities; an adapter without them scores accounts by
# e-mail domain (or the company field) only -------------------------------------------------

# The account values a contact (HubSpot) or lead (Marketo) carries, by our names.
CONTACT_ACCOUNT_PROPERTIES: tuple[str, ...] = ("account_score", "account_grade")
# The CRMs whose adapter writes company records (`write_companies`): Marketo's account values
# go on each lead's fields only. What a preview counts without an adapter at hand.
WRITES_COMPANY_RECORDS = frozenset({"hubspot"})
# The values written on a company record (HubSpot), by our names.
COMPANY_PROPERTIES: tuple[str, ...] = (
    "account_score",
    "account_grade",
    "account_reasons",
    "engaged_contacts",
    "mqa_reason",
    "model_version",
)


@dataclass
class CompanyPage:
    companies: list[CrmCompany]
    position: str | None  # keyset position after this page
    bad: list[BadRecord] = field(default_factory=list)


@dataclass(frozen=True)
class CompanyLinks:
    """The companies one contact is associated with: the primary one (HubSpot typeId 1) and
    every id (several companies: the primary wins; none primary: the lowest id)."""

    primary: str | None
    company_ids: tuple[str, ...] = ()


class AccountsAdapter(Protocol):
    """What a CRM offers for account scoring (HubSpot: companies + associations v4)."""

    def pull_companies(self, since: datetime | None, position: str | None) -> Iterator[CompanyPage]:
        """Company records changed since `since`, keyset-paged from `position`."""
        ...

    def company_links(self, contact_ids: Sequence[str]) -> dict[str, CompanyLinks]:
        """Each contact's associated companies (a contact with none maps to no entry)."""
        ...

    def write_companies(self, writes: Sequence[WriteBack]) -> list[WriteOutcome]:
        """Batch-update company records (`WriteBack.contact_id` holds the company id); an
        attempt whose answer never came is read back before it is sent again."""
        ...

    def get_companies(self, company_ids: Sequence[str]) -> list[CrmCompany]:
        """Read these companies (those the CRM still has)."""
        ...

    def confirm_companies_written(self, writes: Sequence[WriteBack]) -> set[str]:
        """The company ids whose CRM values already equal the write (read back): a write whose
        answer never came is checked with this before it is sent again."""
        ...
