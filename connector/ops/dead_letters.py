"""`leadscore dead-letters`: the records that could not be read or written, and a retry.

A retry re-sends the *write* dead letters: for each, the properties are recomputed from the
contact's stored score against the values last written (diff-only, as a sync does; with
`write_company_fields`, the blank company fields too) and sent
through the pipeline's own write path: batches, per-record outcomes, bounded retries. A success
records the written values and resolves the dead letter; a failure bumps its `attempts` and
keeps the CRM's newest message. A contact with nothing left to write (or that the CRM archived,
or that was merged away) is resolved without a call. Input dead letters (records the CRM sent
that could not be read) are never re-sent: the next sync pulls the fixed record again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connector.pipeline import Pipeline, SyncSummary
from connector.state.dead_letters import Dismissal
from connector.state.store import DeadLetter, StateStore
from connector.types import ScoreResult, WriteBack, company_record_id, event_record_id

KINDS: tuple[str, ...] = ("write", "input")


@dataclass(frozen=True, slots=True)
class RetryOutcome:
    dead_letter_id: int
    contact_id: str | None
    outcome: str  # written | up to date | not writable | no score | failed
    detail: str = ""
    attempts: int = 0


@dataclass
class RetryResult:
    outcomes: list[RetryOutcome] = field(default_factory=list)
    summary: SyncSummary | None = None

    def count(self, outcome: str) -> int:
        return sum(o.outcome == outcome for o in self.outcomes)

    @property
    def resolved(self) -> int:
        return sum(o.outcome in ("written", "up to date", "not writable") for o in self.outcomes)

    @property
    def still_open(self) -> int:
        return len(self.outcomes) - self.resolved

    def line(self) -> str:
        calls = self.summary.api_calls if self.summary is not None else 0
        parts = [
            f"{self.count(key)} {label}"
            for key, label in (
                ("written", "written"),
                ("up to date", "already up to date"),
                ("not writable", "archived or merged"),
                ("failed", "failed again"),
                ("no score", "without a stored score"),
            )
            if self.count(key)
        ]
        return (
            f"retried {len(self.outcomes)} write dead letter(s): {', '.join(parts)}; "
            f"{calls} API call(s)"
        )


def list_dead_letters(
    store: StateStore, crm: str, kind: str | None = None, *, with_dismissed: bool = False
) -> list[DeadLetter]:
    """Open dead letters, oldest first (`kind`: write, input, or None for all); the
    dismissed ones too `with_dismissed`."""
    return store.open_dead_letters(crm, kind, with_dismissed=with_dismissed)


def dismiss_dead_letters(
    store: StateStore, crm: str, ids: list[str], at: datetime
) -> list[tuple[str, Dismissal]]:
    """Dismiss the input dead letters `ids` (as the admin typed them): each id with what
    became of it, in order; an id that is no number is `unknown`."""
    numbers = {i: int(i) for i in ids if i.isascii() and i.isdigit()}
    done = store.dismiss_dead_letters(crm, numbers.values(), at)
    return [(i, done[numbers[i]] if i in numbers else "unknown") for i in ids]


def contact_labels(store: StateStore, crm: str, ids: list[str]) -> dict[str, str]:
    """`{id: e-mail}` for the ids the state DB knows (for display)."""
    return {c.id: c.email or c.id for c in store.iter_contacts(crm, ids, include_inactive=True)}


def record_of(d: DeadLetter) -> tuple[str, str] | None:
    """What a dead letter is about: `("company", id)` for a company's (a company write, or a
    company record that could not be read, kept under `company_record_id`), `("event", id)`
    for an engagement record that could not be read (its payload names its contact: a
    HubSpot event's `objectId`, an e-mail event's `recipient`, a Marketo activity's
    `leadId`), else `("contact", id)`; None when it names no record."""
    rid = d.contact_id
    if not rid:
        return None
    if d.kind == "company_write":
        return "company", rid
    company, event = company_record_id(""), event_record_id("")
    if d.kind == "input" and rid.startswith(company):
        return "company", rid.removeprefix(company)
    if d.kind == "input" and rid.startswith(event):
        return "event", rid.removeprefix(event)
    if d.kind == "input" and event_owner(d.payload) is not None:  # kept before migration 015
        return "event", rid
    return "contact", rid


def event_owner(payload: Any) -> str | None:
    """The contact an engagement record names (its id, or an e-mail event's recipient); None
    for any other payload (a contact's or lead's own record)."""
    if not isinstance(payload, dict):
        return None
    for key in ("contact_id", "objectId", "leadId", "recipient"):
        value = payload.get(key)
        if value is not None and not isinstance(value, bool | dict | list) and str(value):
            return str(value)
    return None


def _company_name(payload: Any) -> str | None:
    """A company record's name (else its domain) from the record the CRM sent."""
    props = payload.get("properties") if isinstance(payload, dict) else None
    if not isinstance(props, dict):
        return None
    name = props.get("name") or props.get("domain")
    return str(name) if name else None


@dataclass(frozen=True, slots=True)
class RecordLabel:
    """What a dead letter is about, for display: a contact (`name`: its e-mail) or a company
    (`name`: its name, else its domain); `name` None when the state DB does not know it."""

    kind: str  # contact | company | event
    id: str
    name: str | None = None
    # an event's: the contact it names (an id, or an e-mail event's recipient address)
    owner: str | None = None

    def __str__(self) -> str:
        if self.kind == "company":
            return f"company {self.id}" + (f" ({self.name})" if self.name else "")
        if self.kind == "event":
            return f"event of {self.contact_text()}"
        return f"{self.name} ({self.id})" if self.name and self.name != self.id else self.id

    def contact_text(self) -> str:
        """An event's contact as a contact is shown: `ed@x.io (161)`, its id, or the address."""
        owner = self.owner or "?"
        return f"{self.name} ({owner})" if self.name and self.name != owner else owner


def record_labels(store: StateStore, crm: str, letters: list[DeadLetter]) -> dict[int, RecordLabel]:
    """`{dead letter id: what it is about}`: `riley@x.com (102)`, `company 9050 (Acme)`."""
    records = {d.id: r for d in letters if (r := record_of(d)) is not None}
    payloads = {d.id: d.payload for d in letters}
    owners = {i: event_owner(payloads[i]) or "" for i, (k, _) in records.items() if k == "event"}
    contacts = contact_labels(
        store, crm, [i for k, i in records.values() if k == "contact"] + list(owners.values())
    )
    companies = store.get_crm_companies(crm, [i for k, i in records.values() if k == "company"])
    out: dict[int, RecordLabel] = {}
    for dl_id, (kind, rid) in records.items():
        if kind == "company":
            c = companies.get(rid)
            name = (c.name or c.domain) if c is not None else _company_name(payloads[dl_id])
            out[dl_id] = RecordLabel(kind, rid, name)
        elif kind == "event":
            owner = owners[dl_id]
            out[dl_id] = RecordLabel(kind, rid, contacts.get(owner), owner)
        else:
            out[dl_id] = RecordLabel(kind, rid, contacts.get(rid))
    return out


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def retry_write_dead_letters(pipeline: Pipeline) -> RetryResult:
    """Re-send every open write dead letter through `pipeline` (see the module docstring).
    Recorded as a run of kind `dead-letters`; CRM trouble (quota, token) stops it cleanly and
    shows in `result.summary` (status, message, exit code), as for a sync."""
    store, crm = pipeline.store, pipeline.crm
    result = RetryResult()
    if not store.open_dead_letters(crm, "write"):
        return result

    def body(summary: SyncSummary) -> None:
        letters = store.open_dead_letters(crm, "write")
        now = pipeline.clock()
        done: dict[int, RetryOutcome] = {}
        writes: list[WriteBack] = []
        meta: dict[str, ScoreResult] = {}
        by_contact: dict[str, DeadLetter] = {}
        contacts = {dl.id: store.get_contact(crm, dl.contact_id) for dl in letters if dl.contact_id}
        enrichments = pipeline.enrichments_for([c for c in contacts.values() if c], now)
        for dl in letters:
            cid = dl.contact_id
            contact = contacts.get(dl.id)
            if cid is None or contact is None or not store.is_writable(crm, cid):
                store.resolve_dead_letter(dl.id, now)
                done[dl.id] = RetryOutcome(dl.id, cid, "not writable", "archived or merged")
                continue
            stored = store.get_score(crm, cid)
            if stored is None:
                done[dl.id] = RetryOutcome(
                    dl.id, cid, "no score", "no stored score: the next sync scores it", dl.attempts
                )
                continue
            score = stored.to_result()
            changes = pipeline.changes_for(contact, score, store.get_written(crm, cid), enrichments)
            if not changes:
                store.resolve_dead_letter(dl.id, now)
                done[dl.id] = RetryOutcome(dl.id, cid, "up to date", "nothing left to write")
                continue
            changes["scored_at"] = _iso(now)
            writes.append(WriteBack(cid, changes))
            meta[cid] = score
            by_contact[cid] = dl
        summary.to_write = len(writes)
        sent = {w.contact_id: w.properties for w in writes}
        try:
            pipeline.write_planned(writes, meta, summary)
        finally:
            still = {d.contact_id: d for d in store.open_dead_letters(crm, "write")}
            for cid, dl in by_contact.items():
                again = still.get(cid)
                if again is not None and not store.is_writable(crm, cid):  # 404 meanwhile
                    store.resolve_dead_letter(again.id, pipeline.clock())
                    done[dl.id] = RetryOutcome(dl.id, cid, "not writable", "the CRM archived it")
                elif again is not None:
                    detail = again.reason or "write failed"
                    done[dl.id] = RetryOutcome(dl.id, cid, "failed", detail, again.attempts)
                else:
                    props = ", ".join(sorted(k for k in sent[cid] if k != "scored_at"))
                    done[dl.id] = RetryOutcome(dl.id, cid, "written", props)
            result.outcomes = [done[dl.id] for dl in letters if dl.id in done]

    result.summary = pipeline.run_pass("dead-letters", body)
    return result
