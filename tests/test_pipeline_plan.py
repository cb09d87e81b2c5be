"""What a sync (or a rescore) would write for a contact: `needs_write` answers exactly as
`planned_changes` does, without making the reasons text when another property already differs."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.pipeline import desired_properties, needs_write, planned_changes
from connector.types import Contact, LifecycleDecision, ScoreResult

from .test_state import score_result

STAGES = [None, "", "lead", "marketingqualifiedlead", "salesqualifiedlead"]


def result_with(target: str | None, mql_reason: str | None, score: float) -> ScoreResult:
    base = score_result("1", score)
    lc = LifecycleDecision("lead", target, mql=mql_reason is not None, mql_reason=mql_reason)
    return replace(base, lifecycle=lc)


@given(
    target=st.sampled_from(STAGES),
    shown=st.sampled_from(STAGES),
    mql_reason=st.sampled_from([None, "threshold", "hand-raiser: Contact Us"]),
    score=st.sampled_from([0.0, 62.5, 99.4, 150.0]),
    kept=st.sets(
        st.sampled_from(
            [
                "score",
                "grade",
                "fit_score",
                "reasons",
                "model_version",
                "profile_mismatch",
                "mql_reason",
                "lifecycle_stage",
            ]
        )
    ),
    stale=st.sampled_from([None, "score", "reasons", "lifecycle_stage", "model_version"]),
)
def test_needs_write_is_whether_planned_changes_has_anything(
    target: str | None,
    shown: str | None,
    mql_reason: str | None,
    score: float,
    kept: set[str],
    stale: str | None,
) -> None:
    """The last written values are the desired ones, some left out and one made stale."""
    result = result_with(target or None, mql_reason, score)
    contact = Contact(id="1", email="a@acme.test", lifecycle_stage=shown)
    written = {k: v for k, v in desired_properties(result).items() if k in kept}
    if stale is not None and stale in written:
        written[stale] = written[stale] + " (old)"
    assert needs_write(contact, result, written) == bool(planned_changes(contact, result, written))


def test_needs_write_does_not_make_the_reasons_text_when_another_property_differs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = result_with("marketingqualifiedlead", "threshold", 120.0)
    contact = Contact(id="1", email="a@acme.test", lifecycle_stage="lead")
    written = desired_properties(result)
    made: list[int] = []
    original = ScoreResult.top_reasons

    def counting(self: ScoreResult, *args: object, **kw: object) -> str:
        made.append(1)
        return original(self, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(ScoreResult, "top_reasons", counting)
    assert needs_write(contact, result, written) is False and made == [1]
    assert needs_write(contact, result, {**written, "model_version": "old"}) is True
    assert made == [1]
    assert needs_write(contact, result, {**written, "reasons": "old"}) is True
    assert made == [1, 1]
