"""Offline scoring of JSONL files: the scoring core with no CRM and no state DB."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from connector.model.loader import LoadedModel
from connector.parse import LineError, load_contacts_file, load_events_file
from connector.scoring import score
from connector.types import Contact, Enrichment, Event, ScoreResult

EnrichFn = Callable[[list[str], datetime], dict[str, Enrichment]]


@dataclass
class OfflineRun:
    scored: list[tuple[Contact, ScoreResult]] = field(default_factory=list)
    events_by_contact: dict[str, list[Event]] = field(default_factory=dict)
    errors: list[LineError] = field(default_factory=list)
    orphan_events: int = 0
    enrichments: dict[str, Enrichment | None] = field(default_factory=dict)  # by contact id


def score_files(
    contacts_path: str | Path,
    events_path: str | Path | None,
    model: LoadedModel,
    now: datetime,
    enrich: EnrichFn | None = None,
) -> OfflineRun:
    """Score every good contact; bad lines are reported with file and line, never fatal."""
    run = OfflineRun()
    contacts, errors = load_contacts_file(contacts_path)
    run.errors.extend(errors)
    by_contact: dict[str, list[Event]] = defaultdict(list)
    if events_path is not None:
        events, ev_errors = load_events_file(events_path)
        run.errors.extend(ev_errors)
        known = {c.id for c in contacts}
        for ev in events:
            if ev.contact_id in known:
                by_contact[ev.contact_id].append(ev)
            else:
                run.orphan_events += 1
    emails = [c.email for c in contacts if c.email]
    enrichments = enrich(emails, now) if enrich is not None else {}
    for c in contacts:
        evs = by_contact.get(c.id, [])
        enr = enrichments.get(c.email) if c.email else None
        run.scored.append((c, score(c, evs, enr, model, now)))
        run.events_by_contact[c.id] = evs
        run.enrichments[c.id] = enr
    return run
