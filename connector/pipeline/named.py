"""Named scores (a model's `scores:` list, issue 23) in a sync: a post-score stage that
computes every named score of a scored chunk from the event rows already loaded for it (the
events are read once, whatever the number of scores), with the same engine
(`connector.scoring.score_rows_many`: one walk over the rows for all) on each score's derived
model (`LoadedModel.named`, built once per model load). Its values join each contact's one
write through `contact_props`, diff-only like every other property, so the several scores of
a contact go in ONE batch input; they are saved to the state DB with the chunk's scores
(`save_chunk`, in the same transaction)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from connector.model.loader import NamedModel
from connector.pipeline.score import Pairs
from connector.scoring import score_rows_many
from connector.types import Contact, Enrichment, ScoreResult, crm_score, shown_bar

if TYPE_CHECKING:
    from connector.pipeline.core import Pipeline

REASONS_MAX = 480  # as the lifecycle score's reasons


def is_qualified(named: NamedModel, result: ScoreResult) -> bool:
    """At or above the score's `threshold` (never: no threshold). Reported only."""
    return named.threshold is not None and result.score >= named.threshold


def named_reasons(named: NamedModel, result: ScoreResult) -> str:
    """The reasons text of a named score: `qualified (60+); ` first when it is, then the
    largest contributions and the grade, as `leadscore_reasons`."""
    if not is_qualified(named, result):
        return result.top_reasons()
    assert named.threshold is not None
    head = f"qualified ({shown_bar(named.threshold)}+)"
    rest = result.top_reasons(max_chars=REASONS_MAX - len(head) - 2)
    return f"{head}; {rest}" if rest else head


def named_properties(named: NamedModel, result: ScoreResult) -> dict[str, str]:
    """What the CRM should show for one named score, by our keys (`services_score`, ...)."""
    return {
        named.key("score"): crm_score(result.score),
        named.key("grade"): result.grade,
        named.key("reasons"): named_reasons(named, result),
        named.key("priority"): result.priority,
    }


def score_named(
    named: Sequence[NamedModel],
    contact: Contact,
    rows: Any,
    enrichment: Enrichment | None,
    now: datetime,
) -> list[tuple[NamedModel, ScoreResult]]:
    """Every named score of one contact, from its event rows (read once, walked once for
    all: `score_rows_many`)."""
    results = score_rows_many(contact, rows, enrichment, [n.loaded for n in named], now)
    return list(zip(named, results, strict=True))


class NamedScoreStage:
    """The post-score stage of named scores. `only`: compute just these scores (by name; an
    empty set: none, a `rescore --score` of the lifecycle score); None: every named score of
    the pipeline's model."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.p = pipeline
        self.only: frozenset[str] | None = None
        # this chunk's named-score values by contact ({id: {key: value}}), for its writes
        self.contact_props: dict[str, dict[str, str]] = {}
        self._pending: list[tuple[str, ScoreResult, bool]] = []

    def models(self) -> tuple[NamedModel, ...]:
        named = self.p.model.named
        if self.only is not None:
            named = tuple(n for n in named if n.name in self.only)
        return named

    def checked_keys(self) -> tuple[str, ...]:
        """The keys of every named score of the model (drift is noted on them)."""
        return tuple(k for n in self.p.model.named for k in n.keys)

    def on_chunk(
        self,
        pairs: Pairs,
        results: list[ScoreResult],
        enrichments: Mapping[str, Enrichment],
        now: datetime,
    ) -> list[ScoreResult]:
        self.contact_props = {}
        self._pending = []
        named = self.models()
        if not named:
            return results
        for contact, rows in pairs:
            enrichment = enrichments.get((contact.email or "").lower())
            props: dict[str, str] = {}
            for n, r in score_named(named, contact, rows, enrichment, now):
                props.update(named_properties(n, r))
                self._pending.append((n.name, r, is_qualified(n, r)))
            self.contact_props[contact.id] = props
        return results

    def save_chunk(self) -> None:
        """Save this chunk's named scores (called inside the chunk's transaction)."""
        if self._pending:
            self.p.store.save_named_scores(self.p.crm, self._pending)
            self._pending = []
