"""`leadscore backfill --since DATE [--until DATE]`: pull the full history of a window, then score
and write back diff-only, like a sync.

- Resumable: the job's position (stage, paging position, counts) lives in the `jobs` table
  under `backfill:<crm>` and is committed in the same transaction as each page's data, so a
  crash, a kill or Ctrl-C resumes from the last committed page when the same command runs
  again. Contacts still to be scored are marked in the state DB as a sync marks them.
- Never moves the live incremental cursors (`contacts`, `events:*`): a backfill has an end
  (`--until`, or the moment it was first started) and keeps its own position.
- Stages, in order: `contacts` (changed in [since, until)), `events:<stream>` for each of the
  adapter's engagement streams (occurred in [since, until)), with account scoring on
  `companies` (the company records changed since `since`; the live `companies` cursor stays),
  `score`, then `done`. Scoring runs the account stage as a sync does: the contacts'
  associations are read, their accounts scored, and the company records and members'
  account values written, diff-only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol, cast

from connector.crm.base import ContactPage, EventPage
from connector.errors import ConfigError, ConnectorError
from connector.pipeline import Pipeline, SyncSummary
from connector.state.codec import decode_dt, encode_dt
from connector.worker.passes import score_in_pass

log = logging.getLogger(__name__)

DONE = "done"
SCORE = "score"
COMPANIES = "companies"


def job_name(crm: str) -> str:
    return f"backfill:{crm}"


@dataclass
class BackfillJob:
    """The backfill's bookmark (stored as JSON in the `jobs` table; no credentials)."""

    since: str
    until: str
    requested_until: str | None
    stage: str = "contacts"
    position: str | None = None
    pages: int = 0
    contacts: int = 0
    events: int = 0
    attempts: int = 0
    started_at: str = ""
    finished_at: str | None = None
    stage_pages: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> BackfillJob:
        known = {k: v for k, v in state.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def window(self) -> tuple[datetime, datetime]:
        return decode_dt(self.since), decode_dt(self.until)


class BackfillObserver(Protocol):
    """What a progress display is told (every method is called from the backfill's thread)."""

    def begin(self, job: BackfillJob, resumed: bool, contacts_total: int | None) -> None: ...

    def stage(self, job: BackfillJob, stage: str, total: int | None) -> None: ...

    def page(self, job: BackfillJob, stage: str, items: int) -> None: ...

    def end(self, job: BackfillJob, summary: SyncSummary) -> None: ...


@dataclass
class BackfillResult:
    summary: SyncSummary
    job: BackfillJob
    resumed: bool


def run_backfill(
    pipeline: Pipeline,
    since: datetime,
    until: datetime | None = None,
    *,
    restart: bool = False,
    observer: BackfillObserver | None = None,
) -> BackfillResult:
    """Run (or resume) the backfill of [since, until). Never raises for CRM trouble: the
    summary says what stopped it (quota, auth, a stop request); the job resumes later."""
    store, crm = pipeline.store, pipeline.crm
    name = job_name(crm)
    requested_until = encode_dt(until) if until is not None else None
    state = store.get_job(name)
    job: BackfillJob | None = None
    resumed = False
    if state and state.get("stage") != DONE:
        old = BackfillJob.from_state(state)
        same_until = (old.requested_until is None and until is None) or (
            old.requested_until is not None
            and until is not None
            and decode_dt(old.requested_until) == until
        )
        if decode_dt(old.since) == since and same_until:
            job, resumed = old, True
        elif not restart:
            raise ConfigError(
                f"an unfinished backfill from {old.since} to {old.until} is at stage "
                f"{old.stage} ({old.pages} page(s) committed): run it again with the same "
                "--since/--until to resume it, or add --restart to discard it"
            )
    if job is None:
        end = until or pipeline.clock()
        if since >= end:
            raise ConfigError(f"--since ({since.isoformat()}) must be before --until / now")
        job = BackfillJob(
            since=encode_dt(since),
            until=encode_dt(end),
            requested_until=requested_until,
            started_at=encode_dt(pipeline.clock()),
        )
    job.attempts += 1
    store.set_job(name, job.to_state())
    if observer is not None:
        observer.begin(job, resumed, _count_contacts(pipeline, job))

    def body(summary: SyncSummary) -> None:
        assert job is not None
        _run_stages(pipeline, job, summary, observer)

    summary = pipeline.run_pass("backfill", body)
    if observer is not None:
        observer.end(job, summary)
    return BackfillResult(summary, job, resumed)


def _count_contacts(pipeline: Pipeline, job: BackfillJob) -> int | None:
    count = getattr(pipeline.adapter, "count_contacts", None)
    if not callable(count) or job.stage != "contacts":
        return None
    since, until = job.window
    try:
        total = count(since, until)
    except ConnectorError as exc:
        log.info("could not count the contacts to backfill: %s", exc)
        return None
    return int(total) if isinstance(total, int) else None


def _run_stages(
    pipeline: Pipeline,
    job: BackfillJob,
    summary: SyncSummary,
    observer: BackfillObserver | None,
) -> None:
    store, adapter, crm = pipeline.store, pipeline.adapter, pipeline.crm
    name = job_name(crm)
    accounts = pipeline.accounts if pipeline.accounts is not None else None
    pull_companies = accounts is not None and accounts.can_pull()
    stages = [
        "contacts",
        *(f"events:{s}" for s in adapter.event_streams()),
        *([COMPANIES] if pull_companies else []),
        SCORE,
    ]
    if job.stage == COMPANIES and not pull_companies:  # account scoring turned off meanwhile
        job.stage, job.position = SCORE, None
    if job.stage not in stages:
        raise ConfigError(f"backfill job {name} names an unknown stage {job.stage!r}")
    since, until = job.window
    if pipeline.options.check_properties and not pipeline.options.dry_run:
        adapter.check_properties()
    pipeline.arm_fresh_state_guard()

    def commit(updates: dict[str, Any], save: Callable[[], object] | None = None) -> None:
        """Save a page (if any) and the job's new position in one transaction."""
        new_state = {**job.to_state(), **updates}
        with store.transaction():
            if save is not None:
                save()
            store.set_job(name, new_state)
        for key, value in updates.items():
            setattr(job, key, value)

    for stage in stages[stages.index(job.stage) :]:
        if job.stage != stage:
            commit({"stage": stage, "position": None})
        if observer is not None:
            observer.stage(job, stage, None)
        if stage == "contacts":
            pages = _contact_pages(adapter, store, since, until, job.position, pipeline.beat)
            for page in pages:
                commit(
                    {
                        "position": page.position,
                        "pages": job.pages + 1,
                        "contacts": job.contacts + len(page.contacts),
                        "stage_pages": _bump(job.stage_pages, stage),
                    },
                    partial(pipeline.save_contact_page, page, summary),
                )
                if observer is not None:
                    observer.page(job, stage, len(page.contacts))
                _checkpoint(pipeline)
        elif stage.startswith("events:"):
            stream = stage.split(":", 1)[1]
            epages = _event_pages(adapter, store, stream, since, until, job.position, pipeline.beat)
            for epage in epages:
                n = len(epage.events) + len(epage.unresolved)
                commit(
                    {
                        "position": epage.position,
                        "pages": job.pages + 1,
                        "events": job.events + n,
                        "stage_pages": _bump(job.stage_pages, stage),
                    },
                    partial(pipeline.save_event_page, epage, summary),
                )
                if observer is not None:
                    observer.page(job, stage, n)
                _checkpoint(pipeline)
        elif stage == COMPANIES:
            assert accounts is not None
            for cpage in accounts.company_pages(since, job.position):
                commit(
                    {
                        "position": cpage.position,
                        "pages": job.pages + 1,
                        "stage_pages": _bump(job.stage_pages, stage),
                    },
                    partial(accounts.save_company_page, cpage, summary),
                )
                if observer is not None:
                    observer.page(job, stage, len(cpage.companies))
                _checkpoint(pipeline)
        else:  # score: everything the pages marked, plus contacts that are due anyway
            ids = set(store.pending_write_ids(crm))
            ids.update(store.due_contact_ids(crm, pipeline.clock()))
            if observer is not None:
                observer.stage(job, stage, len(ids))
            # with accounts on, inside the account stage's pass: then the accounts due, the
            # members no chunk wrote, the company records
            score_in_pass(pipeline, summary, partial(_score_with_progress, pipeline, job, ids,
                                                     summary, observer))  # fmt: skip
    commit({"stage": DONE, "position": None, "finished_at": encode_dt(datetime.now(UTC))})


def _contact_pages(
    adapter: Any,
    store: Any,
    since: datetime,
    until: datetime,
    position: str | None,
    beat: Callable[[], None],
) -> Iterator[ContactPage]:
    """Marketo backfills through bulk export (resumable by export id in the jobs table, as
    the API intends for large instances; `beat`, the run's heartbeat, at each poll of an
    export Marketo has queued or is processing); other CRMs page their normal read."""
    export = getattr(adapter, "backfill_export", None)
    if export is not None:  # `position`: the last page committed, not handed out again
        return cast(
            Iterator[ContactPage], export(since, until, store, position=position, on_wait=beat)
        )
    return cast(Iterator[ContactPage], adapter.pull_contacts(since, until, position))


def _event_pages(
    adapter: Any,
    store: Any,
    stream: str,
    since: datetime,
    until: datetime,
    position: str | None,
    beat: Callable[[], None],
) -> Iterator[EventPage]:
    export = getattr(adapter, "backfill_activities_export", None)
    if export is not None and stream == "activities":
        return cast(
            Iterator[EventPage], export(since, until, store, position=position, on_wait=beat)
        )
    return cast(Iterator[EventPage], adapter.pull_events(stream, since, until, position))


def _score_with_progress(
    pipeline: Pipeline,
    job: BackfillJob,
    ids: set[str],
    summary: SyncSummary,
    observer: BackfillObserver | None,
) -> None:
    """`score_and_write`, telling the observer about each scored chunk."""
    outer = pipeline.checkpoint
    reported = 0

    def counting(where: str) -> None:
        nonlocal reported
        if where == "score" and observer is not None and summary.scored > reported:
            observer.page(job, SCORE, summary.scored - reported)
            reported = summary.scored
        if outer is not None:
            outer(where)

    pipeline.checkpoint = counting
    try:
        pipeline.score_and_write(ids, summary)
    finally:
        pipeline.checkpoint = outer
    if observer is not None:
        observer.page(job, SCORE, max(0, min(len(ids), summary.scored) - reported))


def _bump(counts: dict[str, int], key: str) -> dict[str, int]:
    return {**counts, key: counts.get(key, 0) + 1}


def _checkpoint(pipeline: Pipeline) -> None:
    pipeline._checkpoint("page")  # the run's heartbeat, then the hook
