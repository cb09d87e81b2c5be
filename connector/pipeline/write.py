"""The write and commit stages: send planned writes in CRM batches, record every per-record
outcome (written, archived, retried a bounded number of times, dead-lettered with the reason)
before the next batch goes out, and commit what was written. A batch is recorded "in flight"
before it is sent; one whose answer never came is read back from the CRM before anything is
sent again (`settle_in_flight`, at the start of the next score-and-write), so no write is
applied twice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from connector.errors import RetryableError
from connector.pipeline.stage import Stage, log
from connector.pipeline.summary import SyncSummary
from connector.state.accounts import MEMBER_DELETED_AT_WRITE
from connector.types import MQL, ScoreResult, WriteBack, WriteOutcome


class Writer(Stage):
    @property
    def batch_size(self) -> int:
        return max(1, int(getattr(self.adapter, "write_batch", 100)))

    def write(
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
            outcomes = self.send(clears, summary)
            cleared = {o.contact_id for o in outcomes if o.ok}
            writes = [w for w in writes if w.contact_id in cleared or w not in recycle]
        size = self.batch_size
        for i in range(0, len(writes), size):
            self.checkpoint("write")
            self.write_batch(writes[i : i + size], meta, summary)

    def write_batch(
        self, batch: list[WriteBack], meta: dict[str, ScoreResult], summary: SyncSummary
    ) -> None:
        """One CRM batch: send, then record every outcome before the next batch goes out,
        so a stop (quota, crash) between batches never loses a write that was made."""
        pending = batch
        for attempt in range(1, self.options.write_retry_attempts + 1):
            # committed before the request goes out: if we die before the outcome is recorded,
            # the next run reads these back instead of sending them again
            self.store.set_in_flight(self.crm, {w.contact_id: w.properties for w in pending})
            outcomes = self.send(pending, summary)
            retry = self._record_outcomes(pending, outcomes, attempt, meta, summary)
            if not retry:
                return
            summary.write_retries += len(retry)
            # an answer that never came may hide an applied write: read back before resending
            try:
                arrived = self.confirmed(retry)
            except RetryableError as exc:  # cannot tell: never resend blind; the next run checks
                with self.store.transaction():
                    at = self.clock()
                    for w in retry:
                        reason = (
                            f"outcome unknown after {attempt} attempt(s), checked next run: {exc}"
                        )
                        self._dead_letter(w, reason, at, summary)
                return
            if arrived:
                with self.store.transaction():
                    at = self.clock()
                    for w in retry:
                        if w.contact_id in arrived:
                            self._succeeded(w, meta[w.contact_id], at, summary)
                    self.store.clear_in_flight(self.crm, arrived)
            pending = [w for w in retry if w.contact_id not in arrived]
            if not pending:
                return

    def _record_outcomes(
        self,
        pending: list[WriteBack],
        outcomes: list[WriteOutcome],
        attempt: int,
        meta: dict[str, ScoreResult],
        summary: SyncSummary,
    ) -> list[WriteBack]:
        """Record one attempt's outcomes in one transaction; returns the writes to retry."""
        by_id = {w.contact_id: w for w in pending}
        retry: list[WriteBack] = []
        with self.store.transaction():
            at = self.clock()
            settled: list[str] = []
            for out in outcomes:
                w = by_id[out.contact_id]
                if out.ok:
                    self._succeeded(w, meta[w.contact_id], at, summary)
                elif out.archived:
                    self.store.add_member_accounts_due(
                        self.crm, [w.contact_id], MEMBER_DELETED_AT_WRITE
                    )
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
                    self._dead_letter(w, reason, at, summary)
                    continue
                else:
                    if _schema_changed(out.error):  # deleted in the CRM, or an option of a
                        # dropdown: the next pass checks (and refills) before it writes again
                        self.pipeline.properties_checked = False
                    self._dead_letter(w, out.error or "write failed", at, summary)
                    self.store.set_write_pending(self.crm, [w.contact_id], False)
                settled.append(w.contact_id)
            self.store.clear_in_flight(self.crm, settled)
        return retry

    def send(self, writes: list[WriteBack], summary: SyncSummary) -> list[WriteOutcome]:
        if not writes:
            return []
        return self.adapter.write(writes)

    def _dead_letter(self, w: WriteBack, reason: str, at: datetime, summary: SyncSummary) -> None:
        self.store.add_dead_letter(self.crm, "write", w.contact_id, dict(w.properties), reason, at)
        summary.dead_lettered += 1

    def _succeeded(
        self, w: WriteBack, result: ScoreResult, at: datetime, summary: SyncSummary
    ) -> None:
        self.store.set_write_pending(self.crm, [w.contact_id], False)
        self.note_written(w, result.lifecycle.recycled, at)
        summary.written += 1
        summary.repaired += self.pipeline.planner.repaired(w.contact_id)

    def note_written(self, w: WriteBack, recycled: bool, at: datetime) -> None:
        self.store.record_written(self.crm, w.contact_id, w.properties, at)
        self.store.resolve_dead_letters_for(self.crm, "write", w.contact_id, at)
        stage = w.properties.get("lifecycle_stage")
        if stage is None:
            return
        contact = self.store.get_contact(self.crm, w.contact_id)
        if contact is None:
            return
        updated = replace(
            contact,
            lifecycle_stage=stage,
            mql_at=at if stage == MQL else contact.mql_at,
            recycled_at=at if recycled else contact.recycled_at,
        )
        self.store.upsert_contacts(self.crm, [updated], at=at)

    def confirmed(self, writes: Sequence[WriteBack]) -> set[str]:
        """The writes the CRM already shows (read back), when the adapter can tell; else none."""
        confirm = getattr(self.adapter, "confirm_written", None)
        if confirm is None or not writes:
            return set()
        return set(confirm(writes))

    def settle_in_flight(self) -> set[str]:
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
            arrived = self.confirmed(writes)
        except RetryableError as exc:
            log.warning("cannot check %d unconfirmed write(s) yet: %s", len(writes), exc)
            return set(in_flight)
        at = self.clock()
        with self.store.transaction():
            for w in writes:
                if w.contact_id in arrived:
                    stored = self.store.get_score(self.crm, w.contact_id)
                    self.note_written(w, bool(stored and stored.recycled), at)
            self.store.clear_in_flight(self.crm, in_flight)
        if arrived:
            log.info("%d write(s) of an interrupted run had arrived; not sent again", len(arrived))
        return set()


def _schema_changed(error: str | None) -> bool:
    """A write refused because the CRM's properties changed under us: a property deleted, or
    an option of a dropdown removed (HubSpot's PROPERTY_DOESNT_EXIST, INVALID_OPTION)."""
    text = (error or "").lower()
    return (
        "property_doesnt_exist" in text
        or ("property" in text and "does not exist" in text)
        or "invalid_option" in text
        or "was not one of the allowed options" in text
    )
