"""The enrich and score stages: enrich a chunk of due contacts from their e-mail domains and
score each one as of `now`. Stages that work on fresh contact scores (account scoring) plug in
after this one as `PostScoreStage`s (see `Pipeline.post_score`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from connector.pipeline.stage import Stage
from connector.scoring import score_rows
from connector.types import Contact, Enrichment, ScoreResult

# a scored chunk: the contacts with their event rows, in the order of their results
Pairs = Sequence[tuple[Contact, Any]]


class Enricher(Protocol):
    def enrich_many(self, emails: Iterable[str], now: datetime) -> dict[str, Enrichment]: ...


class PostScoreStage(Protocol):
    """A stage run on every scored chunk, after the contacts are scored and before the
    write-back is planned and their scores are saved. It returns the results to plan and save
    (the same, or adjusted: an account's MQA making its members MQLs)."""

    def on_chunk(
        self,
        pairs: Pairs,
        results: list[ScoreResult],
        enrichments: Mapping[str, Enrichment],
        now: datetime,
    ) -> list[ScoreResult]: ...


class Scorer(Stage):
    def enrich(self, contacts: Sequence[Contact], now: datetime) -> dict[str, Enrichment]:
        """The enrichment of each contact's e-mail, keyed by the lower-cased address."""
        enricher = self.pipeline.enricher
        if enricher is None:
            return {}
        emails = [c.email for c in contacts if c.email]
        found = enricher.enrich_many(emails, now)
        return {k.lower(): v for k, v in found.items()}

    def score(
        self, chunk: Sequence[str], now: datetime
    ) -> tuple[list[tuple[Contact, Any]], dict[str, Enrichment], list[ScoreResult]]:
        """Load, enrich and score these contacts (archived and merged-away ones are left out)."""
        pairs = list(self.store.iter_contacts_with_event_rows(self.crm, chunk))
        enrichments = self.enrich([c for c, _ in pairs], now)
        model = self.pipeline.model
        results = [
            score_rows(c, rows, enrichments.get((c.email or "").lower()), model, now)
            for c, rows in pairs
        ]
        return pairs, enrichments, results
