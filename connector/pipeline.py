"""One sync: pull → store → enrich → score → diff → write back → commit. The only module (with
cli.py) that wires CRM, state, enrichment and scoring together.

Guarantees, each with a test:
- every pulled page is saved in the same SQLite transaction as the cursor position after it, so a
  crash or a quota stop resumes from the last committed page and loses nothing;
- events are idempotent by (source, id): replays change nothing;
- only values that differ from what was last written are sent, so an idle resync writes nothing
  although our own writes bump `lastmodifieddate`;
- lifecycle moves forward only, and sales-owned stages are never touched (scoring decides);
- every write has a per-record outcome: retryable failures are retried a bounded number of
  times, the rest are dead-lettered with the CRM's message; archived contacts stop being written;
- a write is recorded "in flight" before it is sent; one whose answer never came (timeout,
  dropped connection, the process killed) is read back from the CRM before anything is sent
  again, so no write is applied twice, and one given up on stays pending for the next run;
- events dated more than a day ahead are bad input (dead-lettered), and no cursor moves past now.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from connector.crm.base import CHECKED_PROPERTIES, CRM_MQL_DATE, ContactPage, CrmAdapter, EventPage
from connector.errors import (
    AuthError,
    ConfigError,
    ConnectorError,
    MissingPropertiesError,
    QuotaExhaustedError,
    RetryableError,
    StopRunError,
)
from connector.model.loader import LoadedModel
from connector.scoring import score_rows
from connector.state import RUN_FAILED, RUN_OK, RUN_PARTIAL, RUN_STOPPED
from connector.state.store import StateStore
from connector.types import (
    MQL,
    Contact,
    Enrichment,
    Event,
    ScoreResult,
    WriteBack,
    WriteOutcome,
)

log = logging.getLogger(__name__)

MAX_FUTURE_SKEW = timedelta(days=1)  # an event dated further ahead than this is bad input


class Enricher(Protocol):
    def enrich_many(self, emails: Iterable[str], now: datetime) -> dict[str, Enrichment]: ...


@dataclass
class SyncOptions:
    lookback: timedelta = timedelta(minutes=10)
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
    pulled: int = 0
    new_events: int = 0
    unmatched_events: int = 0
    merged: int = 0
    bad_records: int = 0
    scored: int = 0
    to_write: int = 0
    written: int = 0
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

    def counts(self) -> dict[str, Any]:
        return {
            "pulled": self.pulled,
            "new_events": self.new_events,
            "unmatched_events": self.unmatched_events,
            "merged": self.merged,
            "bad_records": self.bad_records,
            "scored": self.scored,
            "to_write": self.to_write,
            "written": self.written,
            "repaired": self.repaired,
            "unchanged": self.unchanged,
            "write_retries": self.write_retries,
            "dead_lettered": self.dead_lettered,
            "archived": self.archived,
            "rate_limited": self.rate_limited,
            "api_calls_by_kind": self.api_calls_by_kind,
        }

    def line(self) -> str:
        """The one-line summary a run logs and prints."""
        return (
            f"{self.kind} {self.crm} {self.status}: pulled {self.pulled}, new events "
            f"{self.new_events}, scored {self.scored}, written {self.written}, repaired "
            f"{self.repaired}, unchanged "
            f"{self.unchanged}, dead-lettered {self.dead_lettered}, API calls {self.api_calls}"
            f" ({self.rate_limited} rate-limited), {self.duration_s:.1f}s"
            + (f" — {self.message}" if self.message else "")
        )


def desired_properties(result: ScoreResult) -> dict[str, str]:
    """What the CRM should show for this result, by our property names (scored_at excluded)."""
    return _desired(result, result.top_reasons())


def _desired(result: ScoreResult, reasons: str | None) -> dict[str, str]:
    """`desired_properties`, without "reasons" when `reasons` is None."""
    props = {
        "score": _num(result.score),
        "grade": result.grade,
        "fit_score": _num(result.fit_points),
    }
    if reasons is not None:
        props["reasons"] = reasons
    props["model_version"] = result.model_version
    props["profile_mismatch"] = "true" if result.profile_mismatch else "false"
    if result.priority:  # "" on a score stored before priority labels: nothing to write
        props["priority"] = result.priority
    if result.lifecycle.mql_reason:
        props["mql_reason"] = result.lifecycle.mql_reason
    if result.lifecycle.target_stage:
        props["lifecycle_stage"] = result.lifecycle.target_stage
    return props


def _num(v: float) -> str:
    return str(round(v))


def same_value(last: str, shown: str) -> bool:
    """Does the CRM show what we wrote? Numbers compare by value ("42" and "42.0")."""
    if last == shown:
        return True
    try:
        return float(last) == float(shown)
    except ValueError:
        return False


def diff_properties(desired: dict[str, str], written: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in desired.items() if written.get(k) != v}


def planned_changes(
    contact: Contact, result: ScoreResult, written: Mapping[str, str]
) -> dict[str, str]:
    """The properties a sync sends for one contact (scored_at excluded): the desired values
    that differ from the last write; a lifecycle stage the CRM already shows is not sent.
    Empty when there is nothing to write. (`leadscore rescore --dry-run` counts with this.)"""
    desired = desired_properties(result)
    _drop_stage_shown(contact, desired, written)
    return diff_properties(desired, dict(written))


def write_changes(
    contact: Contact,
    result: ScoreResult,
    written: Mapping[str, str],
    enrichment: Enrichment | None,
    *,
    company_fields: bool,
) -> dict[str, str]:
    """What a write of this contact sends (`scored_at` aside): the score properties that differ
    from the last write (`planned_changes`) and, with `company_fields`, the blank company
    fields its enrichment can fill. Empty: nothing to write. The sync, the dead-letter retry
    and the rescore's preview all plan with this."""
    changes = planned_changes(contact, result, written)
    if company_fields:
        changes.update(company_changes(contact, enrichment, written))
    return changes


def company_changes(
    contact: Contact, enrichment: Enrichment | None, written: Mapping[str, str]
) -> dict[str, str]:
    """The blank company fields the enrichment fills, where they differ from the last write."""
    return diff_properties(company_fill(contact, enrichment), dict(written))


def needs_write(contact: Contact, result: ScoreResult, written: Mapping[str, str]) -> bool:
    """`bool(planned_changes(...))`, cheaper: the reasons text (the costly property) is made
    only when every other property is already what the CRM shows. A full rescore asks this
    of every contact; after a model change its version alone answers."""
    desired = _desired(result, None)
    _drop_stage_shown(contact, desired, written)
    if any(written.get(k) != v for k, v in desired.items()):
        return True
    return written.get("reasons") != result.top_reasons()


def _drop_stage_shown(
    contact: Contact, desired: dict[str, str], written: Mapping[str, str]
) -> None:
    if (
        "lifecycle_stage" in desired
        and desired["lifecycle_stage"] == (contact.lifecycle_stage or "")
        and "lifecycle_stage" not in written
    ):
        desired.pop("lifecycle_stage")  # the CRM already shows it


COMPANY_FIELDS = ("company_name", "company_industry", "company_country")


def company_fill(contact: Contact, enrichment: Enrichment | None) -> dict[str, str]:
    """Company facts for the CRM fields that are still blank. Never overwrites what a person
    (or a form) entered; free and disposable mail never get a company."""
    company = enrichment.company if enrichment is not None else None
    if company is None or enrichment is None or enrichment.email_kind != "corporate":
        return {}
    current = {
        "company_name": contact.company_name,
        "company_industry": contact.properties.get("industry"),
        "company_country": contact.country,
    }
    offered = {
        "company_name": company.name,
        "company_industry": company.industry,
        "company_country": company.country,
    }
    return {k: str(v) for k, v in offered.items() if v and not current.get(k)}


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _dt(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Pipeline:
    def __init__(
        self,
        store: StateStore,
        adapter: CrmAdapter,
        model: LoadedModel,
        *,
        enricher: Enricher | None = None,
        options: SyncOptions | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.adapter = adapter
        self.model = model
        self.enricher = enricher
        self.options = options or SyncOptions()
        self.clock = clock
        self.crm = adapter.name
        self._properties_checked = False
        self._fresh_guard = False  # set per sync: refuse contacts that carry our scores
        self._done: list[str] = []
        # contacts pulled this run whose CRM shows other values than our last write (a
        # hand edit, a workflow, an emptied property): {id: {property: value shown}}
        self._drift: dict[str, dict[str, str]] = {}
        self._repairing: set[str] = set()
        # Called at safe points with "page" (a pulled page was just committed: nothing is
        # planned in memory), "score" (before a score chunk) or "write" (before a write batch).
        # It may raise StopRunError to stop the run cleanly there (the worker's shutdown); at
        # "page" it may also run other pipeline work (webhook refreshes) in this thread.
        self.checkpoint: Callable[[str], None] | None = None
        # Called at the start of every pass, inside its run (it may switch `model`: a running
        # worker follows a model rolled out by another process; connector.active_model).
        self.before_pass: Callable[[], None] | None = None

    # -- the main job -----------------------------------------------------------------------
    def sync(self, *, rescore_all: bool = False) -> SyncSummary:
        """One incremental pass. Never raises for CRM trouble: the summary says what stopped."""

        def body(summary: SyncSummary) -> None:
            if self.options.check_properties:
                listed = not self._properties_checked
                if listed:
                    self._check_properties(summary)
                if not self.options.dry_run:
                    self._refill_recreated_properties(refresh=not listed)
            self.arm_fresh_state_guard()
            self._pull_contacts(summary)
            self._pull_events(summary)
            now = self.clock()
            ids: set[str] = set()
            ids.update(self.store.due_contact_ids(self.crm, now))
            ids.update(self.store.pending_write_ids(self.crm))
            if rescore_all:
                ids.update(c.id for c in self.store.iter_contacts(self.crm))
            self._score_and_write(sorted(ids, key=_id_key), now, summary)

        return self.run_pass("sync", body)

    def _check_properties(self, summary: SyncSummary) -> None:
        """The CRM must have our properties before a real sync writes; a dry run writes
        nothing, so it only notes what is missing (and still probes the events API)."""
        try:
            self.adapter.check_properties()
        except MissingPropertiesError as exc:
            if not self.options.dry_run:
                raise
            shown = ", ".join(exc.missing[:3]) + (", …" if len(exc.missing) > 3 else "")
            summary.notes.append(
                f"the CRM lacks {len(exc.missing)} of our properties ({shown}): "
                f"{exc.remedy} before a real sync (this dry run writes nothing)"
            )
            probe = getattr(self.adapter, "probe_engagement", None)
            if probe is not None:
                probe()
            return
        self._properties_checked = True

    def arm_fresh_state_guard(self) -> None:
        """Before a pass pulls: with a new state DB (no contact, no score stored yet) the
        pulled contacts must not carry our scores (`allow_fresh_state` lifts it). The check
        holds for the whole pass until this DB saves scores of its own (a webhook handled
        between two pages writes contacts a later page brings back)."""
        self._fresh_guard = (
            not self.options.allow_fresh_state
            and next(self.store.iter_contacts(self.crm, include_inactive=True, batch=1), None)
            is None
            and next(self.store.iter_scores(self.crm, batch=1), None) is None
        )

    def _refuse_fresh_state(self, page: ContactPage) -> None:
        """A state DB without scores pulling contacts that carry our scores: another state DB
        has been scoring this portal (a different directory, a lost volume). Syncing on would
        rewrite every contact, so stop before anything is stored or written."""
        if not self._fresh_guard:
            return
        for c in page.contacts:
            # our model version as the CRM holds it (read back with every contact pulled)
            version = (c.crm_values or {}).get("model_version")
            if version:
                raise ConfigError(
                    f"contact {c.id} in the CRM already carries a leadscore score (model "
                    f"{version}) but the state DB {self.store.path} has none: another state "
                    "DB has been scoring this portal. Point --state (LEADSCORE_STATE_PATH) at "
                    "it, or pass --allow-fresh-state (LEADSCORE_ALLOW_FRESH_STATE=true) to "
                    "start afresh here (every contact is then written once)"
                )

    def _refill_recreated_properties(self, *, refresh: bool) -> None:
        """A score property deleted and re-created in the CRM is empty on every contact, also
        on those no sync pulls again: when its creation stamp changed since the last check,
        forget what we wrote to it and put those contacts on the backlog (written this run).
        `refresh`: list the properties again (one call) rather than use `check_properties`'."""
        stamps_of = getattr(self.adapter, "property_stamps", None)
        stamps: dict[str, str] = stamps_of(refresh=refresh) if stamps_of is not None else {}
        if not stamps:
            return
        before = self._cursor("properties")
        for name in before.keys() - stamps.keys():
            stamps[name] = ""  # deleted now: once re-created, its new stamp differs
        if before == stamps:
            return
        for name, stamp in sorted(stamps.items()):
            if stamp and before.get(name) not in (None, stamp):
                n = self.store.forget_written_property(self.crm, name)
                log.warning(
                    "%s property for %r was re-created (now empty): refilling %d contact(s)",
                    self.crm,
                    name,
                    n,
                )
        self.store.set_cursor(self.crm, "properties", json.dumps(stamps, sort_keys=True))

    def run_pass(self, kind: str, body: Callable[[SyncSummary], None]) -> SyncSummary:
        """Run `body` as one recorded run of `kind` (sync, rescore, webhook, backfill): a run
        row, the API calls and 429s it made, CRM trouble mapped onto the summary's status, one
        log line. Never raises for CRM trouble; any other exception is recorded as a failed
        run and re-raised."""
        summary = SyncSummary(self.crm, kind=kind)
        started = time.monotonic()
        # a pass run inside another (a webhook refresh) keeps its own
        outer = self._drift, self._repairing
        self._drift, self._repairing = {}, set()
        calls_before = dict(self.adapter.stats.calls)
        limited_before = self.adapter.stats.rate_limited
        summary.run_id = self.store.start_run(self.crm, kind, at=self.clock())
        try:
            if self.before_pass is not None:
                self.before_pass()
            body(summary)
            if summary.dead_lettered and self.options.fail_on_dead_letters:
                summary.status, summary.exit_code = "partial", 1
        except QuotaExhaustedError as exc:
            summary.status, summary.exit_code, summary.message = "quota", exc.exit_code, str(exc)
        except AuthError as exc:
            summary.status, summary.exit_code, summary.message = "auth", exc.exit_code, str(exc)
        except StopRunError as exc:
            summary.status, summary.exit_code, summary.message = "stopped", exc.exit_code, str(exc)
        except ConnectorError as exc:
            summary.status, summary.exit_code, summary.message = "error", exc.exit_code, str(exc)
        except BaseException as exc:  # a bug or a kill: recorded as failed, never as ok
            summary.status, summary.exit_code = "error", 1
            summary.message = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self._drift, self._repairing = outer
            summary.duration_s = time.monotonic() - started
            now_calls = self.adapter.stats.calls
            summary.api_calls_by_kind = {
                k: v - calls_before.get(k, 0)
                for k, v in now_calls.items()
                if v - calls_before.get(k, 0)
            }
            summary.api_calls = sum(summary.api_calls_by_kind.values())
            summary.rate_limited = self.adapter.stats.rate_limited - limited_before
            status = {"ok": RUN_OK, "partial": RUN_PARTIAL}.get(summary.status, RUN_FAILED)
            if summary.status in ("quota", "stopped"):
                status = RUN_STOPPED
            self.store.finish_run(
                summary.run_id,
                status,
                summary.counts(),
                summary.api_calls,
                summary.dead_lettered + summary.bad_records,
                summary.message or None,
                at=self.clock(),
            )
            log.info(
                summary.line(),
                extra={
                    "summary": {
                        "kind": summary.kind,
                        "status": summary.status,
                        "run_id": summary.run_id,
                        "exit_code": summary.exit_code,
                        "duration_s": round(summary.duration_s, 3),
                        "api_calls": summary.api_calls,
                        **summary.counts(),
                    }
                },
            )
        return summary

    def score_and_write(self, contact_ids: Iterable[str], summary: SyncSummary) -> None:
        """Score these contacts as of now and write back only what changed (no pull)."""
        self._score_and_write(sorted(set(contact_ids), key=_id_key), self.clock(), summary)

    def _checkpoint(self, where: str) -> None:
        if self.checkpoint is not None:
            self.checkpoint(where)

    # -- pull ------------------------------------------------------------------------------
    def _cursor(self, stream: str) -> dict[str, Any]:
        raw = self.store.get_cursor(self.crm, stream)
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def _pull_contacts(self, summary: SyncSummary) -> set[str]:
        cur = self._cursor("contacts")
        run_start = self.clock()
        if cur.get("position") is not None:  # an interrupted pass: resume it as it was
            since = _dt(cur.get("since"))
            next_since = _dt(cur.get("next_since")) or run_start
        else:
            prev = _dt(cur.get("since"))
            since = prev - self.options.lookback if prev is not None else None
            next_since = run_start
        touched: set[str] = set()
        position = cur.get("position")
        for page in self.adapter.pull_contacts(since, None, position):
            with self.store.transaction():
                touched |= self.save_contact_page(page, summary)
                self.store.set_cursor(
                    self.crm,
                    "contacts",
                    json.dumps(
                        {
                            "since": _iso(since) if since else None,
                            "position": page.position,
                            "next_since": _iso(next_since),
                        }
                    ),
                )
            self._checkpoint("page")
        with self.store.transaction():
            self.store.set_cursor(
                self.crm, "contacts", json.dumps({"since": _iso(next_since), "position": None})
            )
        return touched

    def save_contact_page(self, page: ContactPage, summary: SyncSummary) -> set[str]:
        """Store one page of pulled contacts (upserted with what the worker maintains itself,
        derived events, merges, deletions, bad records) and mark what it touched "to score".
        Returns the touched ids. Call it inside the transaction that saves the position after
        the page (a cursor, a backfill's job), so that both commit together."""
        self._refuse_fresh_state(page)
        now = self.clock()
        touched: set[str] = set()
        with self.store.transaction():
            existing = {
                c.id: c
                for c in self.store.iter_contacts(
                    self.crm, [c.id for c in page.contacts], include_inactive=True
                )
            }
            merged_contacts = [self._carry_state(c, existing.get(c.id), now) for c in page.contacts]
            self.store.upsert_contacts(self.crm, merged_contacts, at=now)
            self._note_drift(page.contacts)
            touched.update(c.id for c in page.contacts)
            touched |= self.store.insert_events(self.crm, page.events)
            for absorbed, survivor in page.merged.items():
                if self.store.merged_into(self.crm, absorbed) != survivor:
                    self.store.merge_contacts(self.crm, absorbed, survivor, now)
                    summary.merged += 1
                    touched.discard(absorbed)
                    touched.add(survivor)
            for bad in page.bad:
                self.store.add_dead_letter(
                    self.crm, "input", bad.record_id, bad.payload, bad.reason, now
                )
            for gone in page.archived:  # deleted in the CRM: stop scoring and writing it
                self.store.mark_archived(self.crm, gone, now)
                touched.discard(gone)
                summary.archived += 1
            self.store.set_write_pending(self.crm, page.archived, False)
            # "to score" is committed with the page: a stopped run loses no work
            self.store.set_write_pending(self.crm, touched, True)
        summary.pulled += len(page.contacts)
        summary.bad_records += len(page.bad)
        return touched

    def _note_drift(self, contacts: Sequence[Contact]) -> None:
        """Compare the score properties the CRM shows (read with the contacts) with our last
        write: what differs is remembered for this run's plan, which writes it again where the
        score still wants our value. A contact pulled because our own write changed it shows
        what we wrote: no drift."""
        read = [c for c in contacts if c.crm_values is not None]
        if not read:
            return
        written = self.store.get_written_many(self.crm, [c.id for c in read])
        for c in read:
            last = written.get(c.id, {})
            shown = c.crm_values or {}
            drift = {
                k: shown[k]
                for k in CHECKED_PROPERTIES
                if k in last and k in shown and not same_value(last[k], shown[k])
            }
            if drift:
                self._drift[c.id] = drift
            else:
                self._drift.pop(c.id, None)

    def _carry_state(self, fresh: Contact, old: Contact | None, now: datetime) -> Contact:
        """Keep what the worker maintains itself across pulls (recycle, MQL date, status change)."""
        from dataclasses import replace

        if old is None:
            return replace(
                fresh, lead_status_changed_at=fresh.updated_at if fresh.lead_status else None
            )
        changed_at = old.lead_status_changed_at
        if (fresh.lead_status or None) != (old.lead_status or None):
            changed_at = fresh.updated_at or now
        carried = replace(
            fresh, lead_status_changed_at=changed_at, recycled_at=old.recycled_at, mql_at=old.mql_at
        )
        # the CRM's MQL date that only the pull of its status change showed (Marketo): kept
        was, shown = old.properties.get(CRM_MQL_DATE), fresh.properties.get(CRM_MQL_DATE)
        if isinstance(was, str) and was and not (isinstance(shown, str) and shown <= was):
            carried = replace(carried, properties={**fresh.properties, CRM_MQL_DATE: was})
        return carried

    def _pull_events(self, summary: SyncSummary) -> set[str]:
        touched: set[str] = set()
        for stream in self.adapter.event_streams():
            key = f"events:{stream}"
            cur = self._cursor(key)
            high = _dt(cur.get("high_water"))
            if cur.get("position") is not None:
                since = _dt(cur.get("since"))
            else:
                since = high - self.options.lookback if high is not None else None
            for page in self.adapter.pull_events(stream, since, None, cur.get("position")):
                with self.store.transaction():
                    touched |= self.save_event_page(page, summary)
                    # never past now: a future-dated event must not make the next pass skip
                    # every event that happens until then
                    page_high = min(page.high_water, self.clock()) if page.high_water else None
                    if page_high and (high is None or page_high > high):
                        high = page_high
                    self.store.set_cursor(
                        self.crm,
                        key,
                        json.dumps(
                            {
                                "since": _iso(since) if since else None,
                                "position": page.position,
                                "high_water": _iso(high) if high else None,
                            }
                        ),
                    )
                self._checkpoint("page")
            with self.store.transaction():
                self.store.set_cursor(
                    self.crm,
                    key,
                    json.dumps({"position": None, "high_water": _iso(high) if high else None}),
                )
        return touched

    def save_event_page(self, page: EventPage, summary: SyncSummary) -> set[str]:
        """Store one page of pulled engagement (idempotent by source id; e-mail events matched
        to contacts by address) and mark the contacts that gained events "to score". Returns
        them. Call it inside the transaction that saves the position after the page."""
        now = self.clock()
        touched: set[str] = set()
        with self.store.transaction():
            if page.contacts:  # contacts the stream saw first (Marketo): upsert them
                ids = [c.id for c in page.contacts]
                old = {
                    c.id: c for c in self.store.iter_contacts(self.crm, ids, include_inactive=True)
                }
                fresh = [self._carry_state(c, old.get(c.id), now) for c in page.contacts]
                self.store.upsert_contacts(self.crm, fresh, at=now)
                touched.update(ids)
                self.store.set_write_pending(self.crm, ids, True)
                summary.pulled += len(ids)
            events = list(page.events)
            if page.unresolved:
                by_email = self.store.find_contact_ids_by_email(
                    self.crm, {e for e, _ in page.unresolved}
                )
                for email, ev in page.unresolved:
                    cid = by_email.get(email)
                    if cid is None:
                        summary.unmatched_events += 1
                        continue
                    events.append(_with_contact(ev, cid))
            resolved = [
                _with_contact(e, self.store.resolve_id(self.crm, e.contact_id)) for e in events
            ]
            resolved = self._drop_future_events(resolved, now, summary)
            new_for, n_new = self.store.insert_events_counted(self.crm, resolved)
            touched |= new_for
            self.store.set_write_pending(self.crm, new_for, True)
            summary.new_events += n_new
            for bad in page.bad:
                self.store.add_dead_letter(
                    self.crm, "input", bad.record_id, bad.payload, bad.reason, now
                )
        summary.bad_records += len(page.bad)
        return touched

    # -- score, diff, write ----------------------------------------------------------------
    def _score_and_write(self, ids: list[str], now: datetime, summary: SyncSummary) -> None:
        """Score in chunks (bounded memory); write in full CRM batches across chunks."""
        unknown = self._settle_in_flight()
        if unknown:  # the CRM could not be asked about them: left pending for the next run
            ids = [i for i in ids if i not in unknown]
        batch = self.options.score_batch
        size = max(1, int(getattr(self.adapter, "write_batch", 100)))
        buffer: list[WriteBack] = []
        meta: dict[str, ScoreResult] = {}
        for i in range(0, len(ids), batch):
            self._checkpoint("score")
            chunk = ids[i : i + batch]
            pairs = list(self.store.iter_contacts_with_event_rows(self.crm, chunk))
            enrichments = self._enrich([c for c, _ in pairs], now)
            results = [
                score_rows(c, rows, enrichments.get((c.email or "").lower()), self.model, now)
                for c, rows in pairs
            ]
            summary.scored += len(results)
            writes, chunk_meta = self._plan_writes(pairs, results, now, summary, enrichments)
            with self.store.transaction():
                self.store.save_scores(self.crm, results)
                self.store.set_write_pending(self.crm, [w.contact_id for w in writes], True)
                if not self.options.dry_run:
                    self.store.set_write_pending(self.crm, self._done, False)
            self._fresh_guard = False  # our own scores now (a webhook's, between two pages)
            if self.options.dry_run:
                summary.changes.extend((w.contact_id, dict(w.properties)) for w in writes)
                self._keep_planned(pairs, writes, chunk_meta, summary)
                continue
            buffer.extend(writes)
            meta.update(chunk_meta)
            full = len(buffer) - len(buffer) % size
            if full:
                self._write(buffer[:full], meta, now, summary)
                for w in buffer[:full]:
                    meta.pop(w.contact_id, None)
                buffer = buffer[full:]
        if buffer:
            self._write(buffer, meta, now, summary)

    def _keep_planned(
        self,
        pairs: Sequence[tuple[Contact, Any]],
        writes: Sequence[WriteBack],
        results: Mapping[str, ScoreResult],
        summary: SyncSummary,
    ) -> None:
        """The dry run's first `preview_rows` writes in detail (before, after, changes)."""
        room = self.options.preview_rows - len(summary.planned)
        if room <= 0 or not writes:
            return
        chosen = list(writes[:room])
        contacts = {c.id: c for c, _ in pairs}
        written = self.store.get_written_many(self.crm, [w.contact_id for w in chosen])
        for w in chosen:
            contact = contacts[w.contact_id]
            summary.planned.append(
                PlannedWrite(
                    w.contact_id,
                    contact.email,
                    contact.lifecycle_stage,
                    dict(written.get(w.contact_id, {})),
                    desired_properties(results[w.contact_id]),
                    {k: v for k, v in w.properties.items() if k != "scored_at"},
                )
            )

    def _enrich(self, contacts: Sequence[Contact], now: datetime) -> dict[str, Enrichment]:
        if self.enricher is None:
            return {}
        emails = [c.email for c in contacts if c.email]
        found = self.enricher.enrich_many(emails, now)
        return {k.lower(): v for k, v in found.items()}

    def changes_for(
        self,
        contact: Contact,
        result: ScoreResult,
        written: Mapping[str, str],
        enrichments: Mapping[str, Enrichment] | None,
    ) -> dict[str, str]:
        """`write_changes` with this pipeline's `write_company_fields`, the contact's
        enrichment looked up by e-mail in `enrichments` (see `enrichments_for`)."""
        company_fields = self.options.write_company_fields and enrichments is not None
        enrichment = (
            enrichments.get((contact.email or "").lower()) if enrichments is not None else None
        )
        return write_changes(contact, result, written, enrichment, company_fields=company_fields)

    def enrichments_for(
        self, contacts: Sequence[Contact], now: datetime
    ) -> dict[str, Enrichment] | None:
        """The enrichment of each contact's e-mail (lower-cased) when the writes need it
        (`write_company_fields`); None otherwise."""
        return self._enrich(contacts, now) if self.options.write_company_fields else None

    def _plan_writes(
        self,
        pairs: Sequence[tuple[Contact, Any]],
        results: Sequence[ScoreResult],
        now: datetime,
        summary: SyncSummary,
        enrichments: Mapping[str, Enrichment] | None = None,
    ) -> tuple[list[WriteBack], dict[str, ScoreResult]]:
        written = self.store.get_written_many(self.crm, [c.id for c, _ in pairs])
        writes: list[WriteBack] = []
        meta: dict[str, ScoreResult] = {}
        done: list[str] = []
        # `pairs` come from iter_contacts_with_events: archived and merged-away contacts are
        # already left out, so every contact here is writable
        for (contact, _), result in zip(pairs, results, strict=True):
            last = written.get(contact.id, {})
            drift = self._drift.pop(contact.id, None)
            # where the CRM was read and shows other values, diff with what it shows
            shown = {**last, **drift} if drift else last
            changes = self.changes_for(contact, result, shown, enrichments)
            if not changes:
                summary.unchanged += 1
                done.append(contact.id)
                continue
            if drift and any(k in changes for k in drift):
                if self.options.dry_run:
                    summary.repaired += 1  # would be
                else:
                    self._repairing.add(contact.id)  # counted when the write succeeds
            changes["scored_at"] = _iso(now)
            writes.append(WriteBack(contact.id, changes))
            meta[contact.id] = result
        summary.to_write += len(writes)
        self._done = done
        return writes, meta

    def _write(
        self,
        writes: list[WriteBack],
        meta: dict[str, ScoreResult],
        now: datetime,
        summary: SyncSummary,
    ) -> None:
        # a recycled contact's stage goes backward: HubSpot needs it cleared first
        recycle = [
            w
            for w in writes
            if meta[w.contact_id].lifecycle.recycled and "lifecycle_stage" in w.properties
        ]
        if recycle and self.crm == "hubspot":
            clears = [WriteBack(w.contact_id, {"lifecycle_stage": ""}) for w in recycle]
            outcomes = self._send(clears, summary)
            cleared = {o.contact_id for o in outcomes if o.ok}
            writes = [w for w in writes if w.contact_id in cleared or w not in recycle]
        size = max(1, int(getattr(self.adapter, "write_batch", 100)))
        for i in range(0, len(writes), size):
            self._checkpoint("write")
            self._write_batch(writes[i : i + size], meta, summary)

    def _write_batch(
        self, batch: list[WriteBack], meta: dict[str, ScoreResult], summary: SyncSummary
    ) -> None:
        """One CRM batch: send, then record every outcome before the next batch goes out,
        so a stop (quota, crash) between batches never loses a write that was made."""
        pending = batch
        for attempt in range(1, self.options.write_retry_attempts + 1):
            # committed before the request goes out: if we die before the outcome is recorded,
            # the next run reads these back instead of sending them again
            self.store.set_in_flight(self.crm, {w.contact_id: w.properties for w in pending})
            outcomes = self._send(pending, summary)
            by_id = {w.contact_id: w for w in pending}
            retry: list[WriteBack] = []
            with self.store.transaction():
                at = self.clock()
                settled: list[str] = []
                for out in outcomes:
                    w = by_id[out.contact_id]
                    if out.ok:
                        self._record_success(w, meta[w.contact_id], at)
                        summary.written += 1
                        summary.repaired += self._repaired(w.contact_id)
                    elif out.archived:
                        self.store.mark_archived(self.crm, w.contact_id, at)
                        self.store.set_write_pending(self.crm, [w.contact_id], False)
                        summary.archived += 1
                    elif out.retryable and attempt < self.options.write_retry_attempts:
                        retry.append(w)
                        continue
                    elif out.retryable:
                        # the outcome is unknown: dead-lettered (counted, visible), but kept
                        # pending and in flight, so the next run checks and finishes it
                        reason = f"gave up after {attempt} attempts: {out.error or 'no answer'}"
                        self.store.add_dead_letter(
                            self.crm, "write", w.contact_id, dict(w.properties), reason, at
                        )
                        summary.dead_lettered += 1
                        continue
                    else:
                        if _missing_property(out.error):  # deleted in the CRM: the next run
                            self._properties_checked = False  # checks (and refills) again
                        self.store.add_dead_letter(
                            self.crm,
                            "write",
                            w.contact_id,
                            dict(w.properties),
                            out.error or "write failed",
                            at,
                        )
                        self.store.set_write_pending(self.crm, [w.contact_id], False)
                        summary.dead_lettered += 1
                    settled.append(w.contact_id)
                self.store.clear_in_flight(self.crm, settled)
            if not retry:
                return
            summary.write_retries += len(retry)
            # an answer that never came may hide an applied write: read back before resending
            try:
                arrived = self._confirmed(retry)
            except RetryableError as exc:  # cannot tell: never resend blind; the next run checks
                with self.store.transaction():
                    at = self.clock()
                    for w in retry:
                        self.store.add_dead_letter(
                            self.crm,
                            "write",
                            w.contact_id,
                            dict(w.properties),
                            f"outcome unknown after {attempt} attempt(s), checked next run: {exc}",
                            at,
                        )
                        summary.dead_lettered += 1
                return
            if arrived:
                with self.store.transaction():
                    at = self.clock()
                    for w in retry:
                        if w.contact_id in arrived:
                            self._record_success(w, meta[w.contact_id], at)
                            summary.written += 1
                            summary.repaired += self._repaired(w.contact_id)
                    self.store.clear_in_flight(self.crm, arrived)
            pending = [w for w in retry if w.contact_id not in arrived]
            if not pending:
                return

    def write_planned(
        self, writes: list[WriteBack], results: dict[str, ScoreResult], summary: SyncSummary
    ) -> None:
        """Send writes planned elsewhere (`leadscore dead-letters --retry`) through the same
        path as a sync: batches, per-record outcomes, bounded retries, dead letters."""
        self._write(writes, results, self.clock(), summary)

    def _send(self, writes: list[WriteBack], summary: SyncSummary) -> list[WriteOutcome]:
        if not writes:
            return []
        return self.adapter.write(writes)

    def _repaired(self, contact_id: str) -> int:
        if contact_id in self._repairing:
            self._repairing.discard(contact_id)
            return 1
        return 0

    def _record_success(self, w: WriteBack, result: ScoreResult, at: datetime) -> None:
        self.store.set_write_pending(self.crm, [w.contact_id], False)
        self._note_written(w, result.lifecycle.recycled, at)

    def _note_written(self, w: WriteBack, recycled: bool, at: datetime) -> None:
        self.store.record_written(self.crm, w.contact_id, w.properties, at)
        self.store.resolve_dead_letters_for(self.crm, "write", w.contact_id, at)
        stage = w.properties.get("lifecycle_stage")
        if stage is None:
            return
        contact = self.store.get_contact(self.crm, w.contact_id)
        if contact is None:
            return
        from dataclasses import replace

        updated = replace(
            contact,
            lifecycle_stage=stage,
            mql_at=at if stage == MQL else contact.mql_at,
            recycled_at=at if recycled else contact.recycled_at,
        )
        self.store.upsert_contacts(self.crm, [updated], at=at)

    def _confirmed(self, writes: Sequence[WriteBack]) -> set[str]:
        """The writes the CRM already shows (read back), when the adapter can tell; else none."""
        confirm = getattr(self.adapter, "confirm_written", None)
        if confirm is None or not writes:
            return set()
        return set(confirm(writes))

    def _settle_in_flight(self) -> set[str]:
        """Writes an earlier run sent without recording their outcome (it was killed, or gave
        up on an answer that never came) may or may not have reached the CRM. Read back what it
        shows: those that arrived are recorded as written, so the diff does not send them again;
        the others are forgotten, so the diff sends what is still needed. Returns the ids whose
        state is still unknown (the CRM could not be asked): they are not written this run."""
        in_flight = self.store.writes_in_flight(self.crm)
        if not in_flight or self.options.dry_run:
            return set()
        writes = [WriteBack(cid, props) for cid, props in in_flight.items()]
        try:
            arrived = self._confirmed(writes)
        except RetryableError as exc:
            log.warning("cannot check %d unconfirmed write(s) yet: %s", len(writes), exc)
            return set(in_flight)
        at = self.clock()
        with self.store.transaction():
            for w in writes:
                if w.contact_id in arrived:
                    stored = self.store.get_score(self.crm, w.contact_id)
                    self._note_written(w, bool(stored and stored.recycled), at)
            self.store.clear_in_flight(self.crm, in_flight)
        if arrived:
            log.info("%d write(s) of an interrupted run had arrived; not sent again", len(arrived))
        return set()

    def _drop_future_events(
        self, events: list[Event], now: datetime, summary: SyncSummary
    ) -> list[Event]:
        """Events dated more than a day ahead are bad input (a broken clock, a typo'd import):
        dead-lettered, never stored, so they neither score one day nor distort a cursor."""
        limit = now + MAX_FUTURE_SKEW
        keep = [e for e in events if e.occurred_at <= limit]
        if len(keep) == len(events):
            return events
        for e in events:
            if e.occurred_at > limit:
                self.store.add_dead_letter(
                    self.crm,
                    "input",
                    e.source_id,
                    {"source": e.source, "id": e.source_id, "contact_id": e.contact_id,
                     "type": e.type, "occurred_at": _iso(e.occurred_at)},
                    f"event {e.source_id}: occurred_at {_iso(e.occurred_at)} is more than "
                    f"{MAX_FUTURE_SKEW.days} day(s) in the future",
                    now,
                )  # fmt: skip
                summary.bad_records += 1
        return keep


def _missing_property(error: str | None) -> bool:
    text = (error or "").lower()
    return "property_doesnt_exist" in text or ("property" in text and "does not exist" in text)


def _with_contact(ev: Any, contact_id: str) -> Any:
    from dataclasses import replace

    return ev if ev.contact_id == contact_id else replace(ev, contact_id=contact_id)


def _id_key(cid: str) -> tuple[int, str]:
    return (int(cid), cid) if cid.isdigit() else (1 << 62, cid)
