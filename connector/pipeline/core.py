"""One sync: pull → store → enrich → score → plan → write → commit. `Pipeline` runs the stages
(connector/pipeline/{pull,score,plan,write}.py) in that order and records the run; with cli.py
and app.py the only place that wires CRM, state, enrichment and scoring together.

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
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from connector.crm.base import ContactPage, CrmAdapter, EventPage
from connector.errors import (
    AuthError,
    ConnectorError,
    MissingPropertiesError,
    QuotaExhaustedError,
    StopRunError,
)
from connector.model.loader import LoadedModel, priority_labels_of
from connector.pipeline.named import NamedScoreStage
from connector.pipeline.plan import Planner
from connector.pipeline.pull import Puller
from connector.pipeline.score import Enricher, PostScoreStage, Scorer
from connector.pipeline.stage import id_key, log
from connector.pipeline.summary import SyncOptions, SyncSummary
from connector.pipeline.write import Writer
from connector.state import RUN_FAILED, RUN_OK, RUN_PARTIAL, RUN_STOPPED
from connector.state.runs import HEARTBEAT_EVERY
from connector.state.store import StateStore
from connector.types import Contact, Enrichment, ScoreResult, WriteBack

if TYPE_CHECKING:
    from connector.account_stage import AccountStage


class Pipeline:
    """Runs one sync's stages in order: `puller` (pull and store), `scorer` (enrich and score),
    the `post_score` stages, `planner` (plan the write-back) and `writer` (write and commit).
    What the worker, ops and the CLI call (`sync`, `run_pass`, `save_*_page`,
    `score_and_write`, `write_planned`, `changes_for`, `enrichments_for`) stays here."""

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
        self._model = model
        self._named_names: tuple[str, ...] = ()  # the model's named scores (`model`)
        self.enricher = enricher
        self.options = options or SyncOptions()
        self.clock = clock
        self.crm = adapter.name
        self.properties_checked = False
        self.puller = Puller(self)
        self.scorer = Scorer(self)
        self.planner = Planner(self)
        self.writer = Writer(self)
        # Stages run on every scored chunk, in order, after its contacts are scored and before
        # their write-back is planned and their scores saved (connector.pipeline.score
        # `PostScoreStage`): where account scoring plugs in.
        self.post_score: list[PostScoreStage] = []
        # named scores (the model's `scores:`, issue 23): computed from the chunk's rows,
        # written with the contact's other properties (a no-op for a one-score model)
        self.named = NamedScoreStage(self)
        self.post_score.append(self.named)
        self.model = model  # tells the adapter the model's named scores
        # the contacts this state DB holds (Marketo: the leads an activity page need not read)
        use_stored = getattr(adapter, "use_stored_contacts", None)
        if callable(use_stored):
            use_stored(self._stored_contact_ids)
        # Called at safe points with "page" (a pulled page was just committed: nothing is
        # planned in memory), "score" (before a score chunk) or "write" (before a write batch).
        # It may raise StopRunError to stop the run cleanly there (the worker's shutdown); at
        # "page" it may also run other pipeline work (webhook refreshes) in this thread.
        self.checkpoint: Callable[[str], None] | None = None
        # Called at the start of every pass, inside its run (it may switch `model`: a running
        # worker follows a model rolled out by another process; connector.active_model).
        self.before_pass: Callable[[], None] | None = None
        # account-based scoring (connector.account_stage), when enabled: it pulls companies and
        # associations after the events, runs as a post-score stage, and writes companies last
        self._accounts: AccountStage | None = None
        # passes running now: 2 while a webhook refresh runs between two pages of a sync
        self.passes_running = 0
        # their runs, and when their heartbeat was last recorded (`beat`)
        self._open_runs: list[int] = []
        self._beaten_at: datetime | None = None

    def _stored_contact_ids(self, ids: Sequence[str]) -> set[str]:
        """The ids among `ids` this state DB holds as live contacts."""
        return {c.id for c in self.store.iter_contacts(self.crm, ids)}

    @property
    def model(self) -> LoadedModel:
        """The model this pipeline scores with. Setting it (a rollout, a worker following the
        model in force) also tells the adapter which named scores' properties it writes,
        reads back and checks."""
        return self._model

    @model.setter
    def model(self, loaded: LoadedModel) -> None:
        before = self._named_names
        self._model = loaded
        self._named_names = tuple(n.name for n in loaded.named)
        use = getattr(self.adapter, "use_named_scores", None)
        if callable(use):
            use(self._named_names)
        if self._named_names != before:  # other properties now: checked again before writing
            self.properties_checked = False
        labels = getattr(self.adapter, "use_priority_labels", None)
        if callable(labels) and labels(*priority_labels_of(loaded)):
            self.properties_checked = False  # other dropdown options: checked again

    @property
    def accounts(self) -> AccountStage | None:
        """The account stage (connector.account_stage), when account scoring is on; setting it
        also makes it one of the `post_score` stages."""
        return self._accounts

    @accounts.setter
    def accounts(self, stage: AccountStage | None) -> None:
        if self._accounts is not None:
            self.post_score.remove(self._accounts)
        self._accounts = stage
        if stage is not None:
            self.post_score.append(stage)

    # -- the main job -----------------------------------------------------------------------
    def sync(self, *, rescore_all: bool = False) -> SyncSummary:
        """One incremental pass. Never raises for CRM trouble: the summary says what stopped."""

        def body(summary: SyncSummary) -> None:
            if self.options.check_properties:
                listed = not self.properties_checked
                self.check_before_writing(summary)
                if not self.options.dry_run:
                    self._refill_recreated_properties(refresh=not listed)
            self.arm_fresh_state_guard()
            # pull → store (each page with its cursor, in one transaction)
            self.puller.pull_contacts(summary)
            self.puller.pull_events(summary)
            if self.accounts is not None:
                self.accounts.pull(summary)
            now = self.clock()
            ids: set[str] = set()
            ids.update(self.store.due_contact_ids(self.crm, now))
            ids.update(self.store.pending_write_ids(self.crm))
            if rescore_all:
                ids.update(c.id for c in self.store.iter_contacts(self.crm))
            # enrich → score → post-score stages → plan → write → commit
            self._score_and_write(sorted(ids, key=id_key), now, summary)
            if self.accounts is not None:
                self.accounts.finish(now, summary)

        return self.run_pass("sync", body)

    def check_before_writing(self, summary: SyncSummary) -> None:
        """Every pass that writes (a sync, the worker's due rescores and webhook refreshes)
        checks the CRM's properties and the priority dropdowns' options first, until a check
        passes (again after the model changes or a write finds the CRM's schema changed): a
        missing property or option stops the pass before it writes anything, rather than
        every write being refused and dead-lettered."""
        if self.options.check_properties and not self.properties_checked:
            self._check_properties(summary)

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
                f"{exc.dry_note} (this dry run writes nothing)"
                if exc.dry_note
                else f"the CRM lacks {len(exc.missing)} of our properties ({shown}): "
                f"{exc.remedy} before a real sync (this dry run writes nothing)"
            )
            probe = getattr(self.adapter, "probe_engagement", None)
            if probe is not None:
                probe()
            return
        self.properties_checked = True

    def _refill_recreated_properties(self, *, refresh: bool) -> None:
        """A score property deleted and re-created in the CRM is empty on every contact, also
        on those no sync pulls again: when its creation stamp changed since the last check,
        forget what we wrote to it and put those contacts on the backlog (written this run).
        `refresh`: list the properties again (one call) rather than use `check_properties`'."""
        stamps_of = getattr(self.adapter, "property_stamps", None)
        stamps: dict[str, str] = stamps_of(refresh=refresh) if stamps_of is not None else {}
        if not stamps:
            return
        before = self.puller.cursor("properties")
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
        planner = self.planner
        outer = planner.drift, planner.repairing
        planner.drift, planner.repairing = {}, set()
        calls_before = dict(self.adapter.stats.calls)
        limited_before = self.adapter.stats.rate_limited
        at = self.clock()
        # a dry run is recorded apart (`status` shows it so; the health check and the worker,
        # which ask for the last successful "sync", never take one for a real sync)
        recorded = f"{kind} (dry run)" if self.options.dry_run else kind
        summary.run_id = self.store.start_run(self.crm, recorded, at=at)
        if not self._open_runs:  # its start is its first heartbeat (a nested pass: the outer's)
            self._beaten_at = at
        self._open_runs.append(summary.run_id)
        self.passes_running += 1
        try:
            if self.before_pass is not None:
                self.before_pass()
            body(summary)
            if summary.dead_letters and self.options.fail_on_dead_letters:  # input too
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
            self.passes_running -= 1
            self._open_runs.remove(summary.run_id)
            planner.drift, planner.repairing = outer
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
                summary.dead_letters,
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
        self._score_and_write(sorted(set(contact_ids), key=id_key), self.clock(), summary)

    def _score_and_write(self, ids: list[str], now: datetime, summary: SyncSummary) -> None:
        """Score in chunks (bounded memory); write in full CRM batches across chunks."""
        unknown = self.writer.settle_in_flight()
        if unknown:  # the CRM could not be asked about them: left pending for the next run
            ids = [i for i in ids if i not in unknown]
        batch = self.options.score_batch
        size = self.writer.batch_size
        buffer: list[WriteBack] = []
        meta: dict[str, ScoreResult] = {}
        for i in range(0, len(ids), batch):
            self._checkpoint("score")
            pairs, enrichments, results = self.scorer.score(ids[i : i + batch], now)
            summary.scored += len(results)
            for stage in self.post_score:
                results = stage.on_chunk(pairs, results, enrichments, now)
            writes, chunk_meta = self.planner.plan(pairs, results, now, summary, enrichments)
            with self.store.transaction():
                self.store.save_scores(self.crm, results)
                for stage in self.post_score:  # what a stage keeps of the chunk (named scores)
                    save = getattr(stage, "save_chunk", None)
                    if callable(save):
                        save()
                self.store.set_write_pending(self.crm, [w.contact_id for w in writes], True)
                if not self.options.dry_run:
                    self.store.set_write_pending(self.crm, self.planner.done, False)
            self.puller.fresh_guard = False  # our own scores now (a webhook's, between pages)
            if self.options.dry_run:
                summary.changes.extend((w.contact_id, dict(w.properties)) for w in writes)
                self.planner.keep_planned(pairs, writes, chunk_meta, summary)
                continue
            buffer.extend(writes)
            meta.update(chunk_meta)
            full = len(buffer) - len(buffer) % size
            if full:
                self.writer.write(buffer[:full], meta, now, summary)
                for w in buffer[:full]:
                    meta.pop(w.contact_id, None)
                buffer = buffer[full:]
        if buffer:
            self.writer.write(buffer, meta, now, summary)

    def _checkpoint(self, where: str) -> None:
        self.beat()
        if self.checkpoint is not None:
            self.checkpoint(where)

    def beat(self) -> None:
        """Record the heartbeat of the runs this pipeline has open (`runs.heartbeat_at`: how
        `leadscore status` tells a long run of another host at work from a dead one), at most
        every `HEARTBEAT_EVERY` by `clock`: called at every safe point ("page", "score",
        "write") and as a rescore's contacts are recomputed, it costs one small UPDATE a
        minute, not one per page."""
        if not self._open_runs:
            return
        now = self.clock()
        if self._beaten_at is not None and now - self._beaten_at < HEARTBEAT_EVERY:
            return
        self.store.beat_runs(self._open_runs, now)
        self._beaten_at = now

    # the stage methods under their names from before the split (code outside this package
    # written against the single module calls them)
    def _cursor(self, stream: str) -> dict[str, Any]:
        return self.puller.cursor(stream)

    def _write(
        self,
        writes: list[WriteBack],
        meta: dict[str, ScoreResult],
        now: datetime,
        summary: SyncSummary,
    ) -> None:
        self.writer.write(writes, meta, now, summary)

    # -- what other parts of leadscore call (each stage's entry point) -----------------------
    def arm_fresh_state_guard(self) -> None:
        """See `Puller.arm_fresh_state_guard`."""
        self.puller.arm_fresh_state_guard()

    def save_contact_page(self, page: ContactPage, summary: SyncSummary) -> set[str]:
        """Store one page of pulled contacts (upserted with what the worker maintains itself,
        derived events, merges, deletions, bad records) and mark what it touched "to score".
        Returns the touched ids. Call it inside the transaction that saves the position after
        the page (a cursor, a backfill's job), so that both commit together."""
        return self.puller.save_contact_page(page, summary)

    def save_event_page(self, page: EventPage, summary: SyncSummary) -> set[str]:
        """Store one page of pulled engagement (idempotent by source id; e-mail events matched
        to contacts by address), record the merges it read (Marketo's Merge Leads: the
        absorbed lead's events move to the survivor) and mark the contacts that gained events
        "to score". Returns them. Call it inside the transaction that saves the position
        after the page."""
        return self.puller.save_event_page(page, summary)

    def changes_for(
        self,
        contact: Contact,
        result: ScoreResult,
        written: Mapping[str, str],
        enrichments: Mapping[str, Enrichment] | None,
    ) -> dict[str, str]:
        """`write_changes` with this pipeline's `write_company_fields`, the contact's
        enrichment looked up by e-mail in `enrichments` (see `enrichments_for`)."""
        return self.planner.changes_for(contact, result, written, enrichments)

    def enrichments_for(
        self, contacts: Sequence[Contact], now: datetime
    ) -> dict[str, Enrichment] | None:
        """The enrichment of each contact's e-mail (lower-cased) when the writes need it
        (`write_company_fields`); None otherwise."""
        return self.scorer.enrich(contacts, now) if self.options.write_company_fields else None

    def write_planned(
        self, writes: list[WriteBack], results: dict[str, ScoreResult], summary: SyncSummary
    ) -> None:
        """Send writes planned elsewhere (`leadscore dead-letters --retry`) through the same
        path as a sync: batches, per-record outcomes, bounded retries, dead letters."""
        self.writer.write(writes, results, self.clock(), summary)
