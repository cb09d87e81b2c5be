"""The pull and store stages: read each stream's cursor, pull changed contacts and new
engagement page by page, and save every page in one transaction with the cursor position
after it (and the contacts it makes due on the backlog), so a crash or a quota stop resumes
from the last committed page and loses nothing."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from connector.crm.base import CRM_MQL_DATE, BadRecord, ContactPage, EventPage
from connector.errors import ConfigError
from connector.pipeline.stage import Stage, iso, parse_dt
from connector.pipeline.summary import SyncSummary
from connector.types import Contact, Event, event_record_id

if TYPE_CHECKING:
    from connector.pipeline.core import Pipeline

MAX_FUTURE_SKEW = timedelta(days=1)  # an event dated further ahead than this is bad input


class Puller(Stage):
    """Pull and store. The loops save each page through `pipeline.save_contact_page` and
    `pipeline.save_event_page` (what a backfill and a webhook also call)."""

    def __init__(self, pipeline: Pipeline) -> None:
        super().__init__(pipeline)
        self.fresh_guard = False  # set per sync: refuse contacts that carry our scores

    def cursor(self, stream: str) -> dict[str, Any]:
        raw = self.store.get_cursor(self.crm, stream)
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def arm_fresh_state_guard(self) -> None:
        """Before a pass pulls: with a new state DB (no contact, no score stored yet) the
        pulled contacts must not carry our scores (`allow_fresh_state` lifts it). The check
        holds for the whole pass until this DB saves scores of its own (a webhook handled
        between two pages writes contacts a later page brings back)."""
        self.fresh_guard = (
            not self.options.allow_fresh_state
            and next(self.store.iter_contacts(self.crm, include_inactive=True, batch=1), None)
            is None
            and next(self.store.iter_scores(self.crm, batch=1), None) is None
        )

    def refuse_fresh_state(self, page: ContactPage) -> None:
        """A state DB without scores pulling contacts that carry our scores: another state DB
        has been scoring this portal (a different directory, a lost volume). Syncing on would
        rewrite every contact, so stop before anything is stored or written."""
        if not self.fresh_guard:
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

    # -- contacts ---------------------------------------------------------------------------
    def pull_contacts(self, summary: SyncSummary) -> set[str]:
        cur = self.cursor("contacts")
        run_start = self.clock()
        if cur.get("position") is not None:  # an interrupted pass: resume it as it was
            since = parse_dt(cur.get("since"))
            next_since = parse_dt(cur.get("next_since")) or run_start
        else:
            prev = parse_dt(cur.get("since"))
            since = prev - self.options.lookback if prev is not None else None
            next_since = run_start
        touched: set[str] = set()
        position = cur.get("position")
        for page in self.adapter.pull_contacts(since, None, position):
            with self.store.transaction():
                touched |= self.pipeline.save_contact_page(page, summary)
                self.store.set_cursor(
                    self.crm,
                    "contacts",
                    json.dumps(
                        {
                            "since": iso(since) if since else None,
                            "position": page.position,
                            "next_since": iso(next_since),
                        }
                    ),
                )
            self.checkpoint("page")
        with self.store.transaction():
            self.store.set_cursor(
                self.crm, "contacts", json.dumps({"since": iso(next_since), "position": None})
            )
        return touched

    def save_contact_page(self, page: ContactPage, summary: SyncSummary) -> set[str]:
        """See `Pipeline.save_contact_page`."""
        self.refuse_fresh_state(page)
        now = self.clock()
        touched: set[str] = set()
        with self.store.transaction():
            self._upsert_carried(page.contacts, now)
            self.pipeline.planner.note_drift(page.contacts)
            touched.update(c.id for c in page.contacts)
            touched |= self.store.insert_events(self.crm, page.events)
            self._apply_merges(page.merged, touched, summary, now)
            bad_records = self.dead_letter_bad(page.bad, now)
            # read cleanly: an input dead letter of an earlier read of it is resolved
            self.store.resolve_input_dead_letters(self.crm, (c.id for c in page.contacts), now)
            self.store.add_member_accounts_due(self.crm, page.archived, "member deleted")
            for gone in page.archived:  # deleted in the CRM: stop scoring and writing it
                self.store.mark_archived(self.crm, gone, now)
                touched.discard(gone)
                summary.archived += 1
            self.store.set_write_pending(self.crm, page.archived, False)
            # "to score" is committed with the page: a stopped run loses no work
            self.store.set_write_pending(self.crm, touched, True)
        summary.note_pulled(c.id for c in page.contacts)
        summary.bad_records += bad_records
        return touched

    def _apply_merges(
        self, merged: dict[str, str], touched: set[str], summary: SyncSummary, now: datetime
    ) -> None:
        """Record merges (absorbed id -> survivor id) not recorded yet: the absorbed contact's
        events move to the survivor (scored with them, `touched`), it stops being scored and
        written, and its account is scored again without it. A merge read again is a no-op,
        also through a chain (a contact merged into one merged since into a third: Marketo
        moves the first Merge Leads activity to the third, which reads it again)."""
        resolve, merged_into = self.store.resolve_id, self.store.merged_into
        # the merges of contacts not merged yet first: a page can bring both links of a chain
        # (103 into 101, and the Merge Leads of 102 into 103 that moved to 101 with it)
        fresh = {a: merged_into(self.crm, a) is None for a in merged}
        for absorbed, survivor in sorted(merged.items(), key=lambda m: not fresh[m[0]]):
            # known already: both end at a survivor that is live (a reversal, the survivor
            # merged away into the absorbed one, is news: the newer fact wins)
            if (
                resolve(self.crm, absorbed) == resolve(self.crm, survivor)
                and merged_into(self.crm, survivor) is None
            ):
                continue
            # its account is scored again without it (the survivor's with its events)
            self.store.add_member_accounts_due(self.crm, [absorbed], "member merged away")
            self.store.merge_contacts(self.crm, absorbed, survivor, now)
            summary.merged += 1
            touched.discard(absorbed)
            touched.add(survivor)

    def _upsert_carried(self, contacts: list[Contact], now: datetime) -> None:
        """Upsert pulled contacts, keeping what the worker maintains itself (`carry_state`)."""
        old = {
            c.id: c
            for c in self.store.iter_contacts(
                self.crm, [c.id for c in contacts], include_inactive=True
            )
        }
        fresh = [carry_state(c, old.get(c.id), now) for c in contacts]
        self.store.upsert_contacts(self.crm, fresh, at=now)

    # -- engagement -------------------------------------------------------------------------
    def pull_events(self, summary: SyncSummary) -> set[str]:
        """Each event stream from its cursor, the newest event time read (`high_water`, never
        past now), less a margin: the lookback for index lag, and for a stream whose events
        can arrive dated in the past (`backdated_streams`) `events_lookback` when longer.
        Events read again are stored once (by their CRM id) and touch no contact."""
        touched: set[str] = set()
        backdated = set(self.adapter.backdated_streams())
        for stream in self.adapter.event_streams():
            key = f"events:{stream}"
            cur = self.cursor(key)
            high = parse_dt(cur.get("high_water"))
            if cur.get("position") is not None:
                since = parse_dt(cur.get("since"))
            else:
                margin = self.options.lookback
                if stream in backdated:
                    margin = max(margin, self.options.events_lookback)
                since = high - margin if high is not None else None
            for page in self.adapter.pull_events(stream, since, None, cur.get("position")):
                with self.store.transaction():
                    touched |= self.pipeline.save_event_page(page, summary)
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
                                "since": iso(since) if since else None,
                                "position": page.position,
                                "high_water": iso(high) if high else None,
                            }
                        ),
                    )
                self.checkpoint("page")
            with self.store.transaction():
                self.store.set_cursor(
                    self.crm,
                    key,
                    json.dumps({"position": None, "high_water": iso(high) if high else None}),
                )
        return touched

    def save_event_page(self, page: EventPage, summary: SyncSummary) -> set[str]:
        """See `Pipeline.save_event_page`."""
        now = self.clock()
        touched: set[str] = set()
        with self.store.transaction():
            if page.contacts:  # contacts the stream saw first (Marketo): upsert them
                ids = [c.id for c in page.contacts]
                self._upsert_carried(page.contacts, now)
                self.store.resolve_input_dead_letters(self.crm, ids, now)
                touched.update(ids)
                self.store.set_write_pending(self.crm, ids, True)
                summary.note_pulled(ids)
            if page.merged:  # before the events: one of the absorbed lead's goes to the survivor
                merged: set[str] = set()
                self._apply_merges(page.merged, merged, summary, now)
                touched -= set(page.merged)
                touched |= merged
                self.store.set_write_pending(self.crm, merged, True)
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
            # an event read cleanly settles its dead letter (one dated too far ahead, now
            # within the day; one that could not be read, read again)
            self.store.resolve_input_dead_letters(
                self.crm, [event_record_id(e.source_id) for e in resolved], now
            )
            touched |= new_for
            self.store.set_write_pending(self.crm, new_for, True)
            summary.new_events += n_new
            bad_records = self.dead_letter_bad(page.bad, now)
        summary.bad_records += bad_records
        return touched

    def dead_letter_bad(self, bad: Iterable[BadRecord], now: datetime) -> int:
        """Dead-letter a page's bad records (contacts, events, companies); returns how many
        count as this run's bad input: those that are news (`add_input_dead_letter`), not a
        record read again as it was (an event the re-read margin brings back at every sync,
        one an admin dismissed)."""
        return sum(
            self.store.add_input_dead_letter(self.crm, b.record_id, b.payload, b.reason, now)
            for b in bad
        )

    def _drop_future_events(
        self, events: list[Event], now: datetime, summary: SyncSummary
    ) -> list[Event]:
        """Events dated more than a day ahead are bad input (a broken clock, a typo'd import):
        dead-lettered, never stored, so they neither score one day nor distort a cursor."""
        limit = now + MAX_FUTURE_SKEW
        keep = [e for e in events if e.occurred_at <= limit]
        if len(keep) == len(events):
            return events
        ahead = [
            BadRecord(
                event_record_id(e.source_id),
                f"event {e.source_id}: occurred_at {iso(e.occurred_at)} is more than "
                f"{MAX_FUTURE_SKEW.days} day(s) in the future",
                {"source": e.source, "id": e.source_id, "contact_id": e.contact_id,
                 "type": e.type, "occurred_at": iso(e.occurred_at)},
            )
            for e in events
            if e.occurred_at > limit
        ]  # fmt: skip
        summary.bad_records += self.dead_letter_bad(ahead, now)
        return keep


def carry_state(fresh: Contact, old: Contact | None, now: datetime) -> Contact:
    """Keep what the worker maintains itself across pulls (recycle, MQL date, status change)."""
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


def _with_contact(ev: Any, contact_id: str) -> Any:
    return ev if ev.contact_id == contact_id else replace(ev, contact_id=contact_id)
