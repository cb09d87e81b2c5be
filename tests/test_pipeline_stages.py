"""The sync's stage list: a `PostScoreStage` appended to `Pipeline.post_score` sees every
scored chunk, in order, after the contacts are scored and before the write-back is planned;
the results it returns are the ones saved and written (issue 20: the pipeline as stages)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from connector.pipeline import PostScoreStage
from connector.pipeline.score import Pairs
from connector.types import Enrichment, ScoreResult

from .conftest import Harness


class Recording:
    """Records each chunk; gives contact 101 a score of 7."""

    def __init__(self) -> None:
        self.chunks: list[list[str]] = []

    def on_chunk(
        self,
        pairs: Pairs,
        results: list[ScoreResult],
        enrichments: Mapping[str, Enrichment],
        now: datetime,
    ) -> list[ScoreResult]:
        assert [c.id for c, _ in pairs] == [r.contact_id for r in results]
        self.chunks.append([r.contact_id for r in results])
        return [replace(r, score=7.0) if r.contact_id == "101" else r for r in results]


def test_a_post_score_stage_sees_every_chunk_and_its_results_are_saved_and_written(
    demo: Harness,
) -> None:
    stage = Recording()
    hook: PostScoreStage = stage
    demo.pipeline.post_score.append(hook)
    demo.pipeline.options.score_batch = 2

    summary = demo.pipeline.sync()

    assert summary.status == "ok", summary.message
    seen = [cid for chunk in stage.chunks for cid in chunk]
    assert all(len(chunk) <= 2 for chunk in stage.chunks)
    assert len(seen) == summary.scored and len(set(seen)) == len(seen)
    assert seen == sorted(seen, key=int)
    stored = demo.store.get_score("hubspot", "101")
    assert stored is not None and stored.score == 7.0
    assert demo.sb.contact("101").properties.get("leadscore_score") == "7"
    sent = {w["id"]: w["properties"] for w in demo.writes()}
    assert sent["101"]["leadscore_score"] == "7"
    assert all(p["leadscore_score"] != "7" for cid, p in sent.items() if cid != "101")
