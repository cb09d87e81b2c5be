"""The passes the worker runs besides `Pipeline.sync()`, each recorded as a run of its own kind:

- `rescore_due`: contacts whose score changes by now (an event left the window: decay) are
  scored and written diff-only, without pulling anything;
- `refresh_contacts`: a few contacts fetched one by one (the contact and its recent events),
  scored and written now (webhook hand-raisers).

With account scoring on, both drive the account stage as a sync does after its pull
(`AccountStage.scoring_pass`): a contact rescored here rolls its account up, and the
account's changed values are written diff-only (the company record, every member's account
score and grade), once; the accounts whose breadth window closed are scored too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import timedelta
from functools import partial

from connector.crm.base import ContactPage, EventPage
from connector.pipeline import Pipeline, SyncSummary

log = logging.getLogger(__name__)


def rescore_due(pipeline: Pipeline) -> SyncSummary:
    """Score the due contacts and write what changed. No API call when nothing changed."""

    def body(summary: SyncSummary) -> None:
        pipeline.check_before_writing(summary)
        due = pipeline.store.due_contact_ids(pipeline.crm, pipeline.clock())
        score_and_write(pipeline, due, summary)

    return pipeline.run_pass("rescore", body)


def refresh_contacts(
    pipeline: Pipeline,
    contact_ids: Iterable[str],
    *,
    events_lookback: timedelta = timedelta(days=1),
) -> SyncSummary:
    """Fetch each contact and its recent events (all of them for a contact we have never
    seen), store them as a pulled page would be stored, then score and write diff-only."""
    adapter = pipeline.adapter
    store = pipeline.store
    crm = pipeline.crm
    ids = list(dict.fromkeys(contact_ids))

    def body(summary: SyncSummary) -> None:
        pipeline.check_before_writing(summary)
        touched: set[str] = set()
        fetch_page = getattr(adapter, "fetch_contact_page", None)
        fetch_events = getattr(adapter, "pull_contact_events", None)
        for cid in ids:
            page: ContactPage | None
            if callable(fetch_page):
                page = fetch_page(cid)
            else:
                found = adapter.get_contact(cid)
                page = None if found is None else ContactPage(contacts=[found], position=None)
            if page is None or not page.contacts:
                log.info("webhook contact %s no longer exists; skipped", cid)
                continue
            contact = page.contacts[0]
            known = store.get_contact(crm, contact.id) is not None
            with store.transaction():
                touched |= pipeline.save_contact_page(page, summary)
            if callable(fetch_events):
                since = pipeline.clock() - events_lookback if known else None
                events = list(fetch_events(contact.id, since))
                with store.transaction():
                    touched |= pipeline.save_event_page(
                        EventPage(events=events, position=None, high_water=None), summary
                    )
            touched.add(store.resolve_id(crm, contact.id))
        score_and_write(pipeline, touched, summary)

    return pipeline.run_pass("webhook", body)


def score_and_write(pipeline: Pipeline, contact_ids: Iterable[str], summary: SyncSummary) -> None:
    """`Pipeline.score_and_write`, inside the account stage's pass when accounts are on."""
    score_in_pass(pipeline, summary, partial(pipeline.score_and_write, contact_ids, summary))


def score_in_pass(pipeline: Pipeline, summary: SyncSummary, score: Callable[[], None]) -> None:
    """Run `score` (a pass's scoring) inside the account stage's pass when accounts are on
    (`AccountStage.scoring_pass`: a new pass state, then `finish`)."""
    stage = pipeline.accounts
    if stage is None:
        score()
        return
    with stage.scoring_pass(summary):
        score()
