"""What a sync is asked to do (`SyncOptions`) and what it reports (`SyncSummary`, and a dry
run's `PlannedWrite`s)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any


@dataclass
class SyncOptions:
    lookback: timedelta = timedelta(minutes=10)
    # how far behind its cursor a stream whose events can arrive dated in the past
    # (`CrmAdapter.backdated_streams`) is read again (LEADSCORE_EVENTS_LOOKBACK_DAYS)
    events_lookback: timedelta = timedelta(days=3)
    dry_run: bool = False
    write_retry_attempts: int = 3
    score_batch: int = 500
    fail_on_dead_letters: bool = False
    check_properties: bool = True
    write_company_fields: bool = False  # fill blank company/industry/country from enrichment
    # a state DB without scores may sync a portal whose contacts already carry ours (it
    # would rewrite every one of them); refused unless asked (`--allow-fresh-state`)
    allow_fresh_state: bool = False
    preview_rows: int = 20  # a dry run keeps this many planned writes in detail


@dataclass(frozen=True, slots=True)
class PlannedWrite:
    """One write a dry run would send: what we last wrote (our property names; empty on a new
    state DB), what the CRM should show now, and the properties that differ."""

    contact_id: str
    email: str | None
    stage: str | None  # the lifecycle stage the CRM shows now
    before: dict[str, str]
    after: dict[str, str]
    changes: dict[str, str]


@dataclass
class SyncSummary:
    crm: str
    kind: str = "sync"
    run_id: int | None = None
    status: str = "ok"
    message: str = ""
    pulled: int = 0  # distinct contacts pulled (see `note_pulled`)
    new_events: int = 0
    unmatched_events: int = 0
    merged: int = 0
    bad_records: int = 0
    scored: int = 0
    to_write: int = 0  # contacts planned for a write
    companies_to_write: int = 0  # company records planned for a write (account scoring)
    written: int = 0  # contacts written
    companies_written: int = 0  # company records written (account scoring), apart
    accounts_scored: int = 0  # accounts scored this pass (account scoring; 0 when off)
    repaired: int = 0  # contacts whose CRM values had drifted from our last write, rewritten
    unchanged: int = 0
    write_retries: int = 0
    dead_lettered: int = 0
    archived: int = 0
    api_calls: int = 0
    api_calls_by_kind: dict[str, int] = field(default_factory=dict)
    rate_limited: int = 0
    duration_s: float = 0.0
    exit_code: int = 0
    changes: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    planned: list[PlannedWrite] = field(default_factory=list)  # a dry run's first writes
    notes: list[str] = field(default_factory=list)  # one line each, for the person running it
    # the ids behind `pulled`: a contact read twice in one pass counts once
    _pulled_ids: set[str] = field(default_factory=set, repr=False, compare=False)

    def note_pulled(self, ids: Iterable[str]) -> None:
        """Count these contacts as pulled, each once per pass: Marketo hands a lead out again
        on every lead-change page it changed in (and an activity page may bring a lead a
        lead-change page already did), HubSpot's lookback re-reads a contact modified while
        its pages were read."""
        self._pulled_ids.update(ids)
        self.pulled = len(self._pulled_ids)

    def counts(self) -> dict[str, Any]:
        return {
            "pulled": self.pulled,
            "new_events": self.new_events,
            "unmatched_events": self.unmatched_events,
            "merged": self.merged,
            "bad_records": self.bad_records,
            "scored": self.scored,
            "to_write": self.to_write,
            "companies_to_write": self.companies_to_write,
            "written": self.written,
            "companies_written": self.companies_written,
            "accounts_scored": self.accounts_scored,
            "repaired": self.repaired,
            "unchanged": self.unchanged,
            "write_retries": self.write_retries,
            "dead_lettered": self.dead_lettered,
            "dead_letters": self.dead_letters,
            "archived": self.archived,
            "rate_limited": self.rate_limited,
            "api_calls_by_kind": self.api_calls_by_kind,
        }

    @property
    def dead_letters(self) -> int:
        """Every record dead-lettered this run: writes the CRM refused (`dead_lettered`) and
        records it sent that could not be read (`bad_records`, kind `input`)."""
        return self.dead_lettered + self.bad_records

    def line(self) -> str:
        """The one-line summary a run logs and prints. `written` counts contacts; the
        company records written beside them (account scoring) follow it: `written 12
        (+3 companies)`. `dead-lettered` counts both kinds; the bad input records among them
        are named: `dead-lettered 3 (2 bad input)`."""
        dead = f"{self.dead_letters:,}" + (
            f" ({self.bad_records:,} bad input)" if self.bad_records else ""
        )
        written = f"{self.written:,}{companies_part(self.companies_written)}"
        return (  # counts with thousands separators, as `leadscore status` shows them
            f"{self.kind} {self.crm} {self.status}: pulled {self.pulled:,}, new events "
            f"{self.new_events:,}, scored {self.scored:,}, written {written}, repaired "
            f"{self.repaired:,}, unchanged "
            f"{self.unchanged:,}, dead-lettered {dead}, API calls {self.api_calls:,}"
            f" ({self.rate_limited:,} rate-limited), {self.duration_s:.1f}s"
            + (f" — {self.message}" if self.message else "")
        )


def companies_part(n: int) -> str:
    """What follows a contact count when company records were written too: " (+3
    companies)", " (+1 company)"; nothing for none."""
    if not n:
        return ""
    return f" (+{n:,} {'company' if n == 1 else 'companies'})"
