"""Properties of the scoring core (hypothesis): deterministic, never NaN, caps hold, time with no
new events never raises a score, a negative event never raises it."""

from __future__ import annotations

import atexit
import math
import random
import shutil
import tempfile
from collections.abc import Generator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from connector.model.loader import LoadedModel, load_model
from connector.scoring import compile_model, score, score_rows, score_rows_many
from connector.scoring.accounts import member_hits, scored_hits
from connector.scoring.engine import keeping_hit_times
from connector.state.codec import encode_dt, encode_mapping
from connector.types import Company, Contact, Enrichment, Event, EventRow

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
MODEL = load_model()
CAPS = {name: c.cap for name, c in MODEL.model.engagement.categories.items()}
RULE_CAPS = {r.name: r.cap for r in MODEL.model.engagement.rules}

URLS = [
    "https://x.io/blog/a",
    "https://x.io/blog/b",
    "https://x.io/docs/start",
    "https://x.io/pricing",
    "https://x.io/product/scoring",
    "https://x.io/features",
    "https://x.io/",
]
REFERRERS = [None, "https://www.google.com/", "https://www.indeed.com/viewjob?jk=1"]
FORMS = ["Contact Us", "Request a demo", "Newsletter signup", "Download the scoring guide", "Other"]

past_days = st.floats(min_value=0.001, max_value=120, allow_nan=False)


@st.composite
def events(draw: st.DrawFn, *, future: bool = False) -> list[Event]:
    n = draw(st.integers(min_value=0, max_value=45))
    out: list[Event] = []
    day_st = st.floats(min_value=-5, max_value=120) if future else past_days
    for i in range(n):
        kind = draw(st.sampled_from(["page", "page", "page", "form", "webinar", "email", "unsub"]))
        days = draw(day_st)
        attrs: dict[str, Any]
        if kind == "page":
            type_, attrs = "page_view", {"url": draw(st.sampled_from(URLS))}
            ref = draw(st.sampled_from(REFERRERS))
            if ref:
                attrs["referrer"] = ref
        elif kind == "form":
            type_, attrs = "form_submit", {"form": draw(st.sampled_from(FORMS))}
        elif kind == "webinar":
            share = draw(st.floats(min_value=0, max_value=1))
            type_, attrs = "webinar_attended", {"name": "W", "watched_share": share}
        elif kind == "email":
            type_, attrs = draw(st.sampled_from(["email_open", "email_click"])), {"campaign": "c"}
        else:
            type_, attrs = "email_unsubscribe", {}
        out.append(Event("t", f"e{i}", "1", type_, NOW - timedelta(days=days), attrs))
        if out and draw(st.integers(0, 5)) == 0:  # a replayed duplicate, same id and content
            out.append(draw(st.sampled_from(out)))
    return out


contacts = st.builds(
    Contact,
    id=st.just("1"),
    email=st.sampled_from(["a@acme-analytics.com", "b@gmail.com", None]),
    job_title=st.sampled_from(["VP Marketing", "Student", "Marketing Manager", None, "CEO"]),
    lifecycle_stage=st.sampled_from([None, "subscriber", "lead", "marketingqualifiedlead"]),
)
enrichments = st.sampled_from(
    [
        None,
        Enrichment("free", "gmail.com"),
        Enrichment(
            "corporate",
            "acme-analytics.com",
            Company("acme-analytics.com", employee_count=850, industry="internet"),
        ),
        Enrichment("corporate", "rivalscore.io", Company("rivalscore.io")),
    ]
)


@settings(max_examples=150, deadline=None)
@given(contacts, events(future=True), enrichments)
def test_deterministic_finite_and_caps_hold(
    contact: Contact, evs: list[Event], enr: Enrichment | None
) -> None:
    a = score(contact, evs, enr, MODEL, NOW)
    shuffled = list(evs)
    random.Random(1).shuffle(shuffled)
    b = score(contact, shuffled, enr, MODEL, NOW)
    assert a == b
    for value in (a.score, a.engagement_points, a.fit_points):
        assert math.isfinite(value)
    per_cat: dict[str, float] = {}
    for r in a.reasons:
        assert math.isfinite(r.points)
        if r.kind == "engagement":
            per_cat[r.category] = per_cat.get(r.category, 0) + r.points
            cap = RULE_CAPS.get(r.rule)
            if cap is not None:
                assert abs(r.points) <= cap
    for cat, total in per_cat.items():
        cap = CAPS[cat]
        if cap is not None:
            assert abs(total) <= cap + 1e-9
    assert math.isclose(sum(per_cat.values()), a.engagement_points, abs_tol=0.05)
    assert a.grade in "ABCD"


@settings(max_examples=150, deadline=None)
@given(contacts, events(), enrichments, st.floats(min_value=0, max_value=200))
def test_more_time_with_no_events_never_raises_the_score(
    contact: Contact, evs: list[Event], enr: Enrichment | None, days: float
) -> None:
    before = score(contact, evs, enr, MODEL, NOW)
    after = score(contact, evs, enr, MODEL, NOW + timedelta(days=days))
    assert after.score <= before.score


@settings(max_examples=150, deadline=None)
@given(
    contacts,
    events(),
    enrichments,
    past_days,
    st.sampled_from(["unsub", "careers", "careers_board"]),
)
def test_adding_a_negative_event_never_raises_the_score(
    contact: Contact, evs: list[Event], enr: Enrichment | None, days: float, kind: str
) -> None:
    when = NOW - timedelta(days=days)
    if kind == "unsub":
        neg = Event("t", "neg", "1", "email_unsubscribe", when, {})
    else:
        attrs: dict[str, Any] = {"url": "https://x.io/careers/open-roles"}
        if kind == "careers_board":
            attrs["referrer"] = "https://de.indeed.com/jobs"
        neg = Event("t", "neg", "1", "page_view", when, attrs)
    before = score(contact, evs, enr, MODEL, NOW)
    after = score(contact, [*evs, neg], enr, MODEL, NOW)
    assert after.score <= before.score


def scratch_folder(prefix: str) -> Path:
    """A temporary folder for the model files these modules load at import (no `tmp_path`
    there), removed when the test process exits."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def load_model_text(path: str | Path, *edits: tuple[str, str]) -> LoadedModel:
    """A copy of a model file (beside its title rules) with text replacements applied."""
    src = Path(path)
    folder = scratch_folder("leadscore-model-")
    (folder / "titles.yaml").write_text((src.parent / "titles.yaml").read_text())
    text = src.read_text()
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    (folder / "model.yaml").write_text(text)
    return load_model(folder / "model.yaml")


# -- score_rows: the full rescore's path over stored rows gives exactly what score gives ---------

DECAYING = {
    mode: load_model_text(
        MODEL.path,
        ("    mode: none ", f"    mode: {mode} "),
        ("negative_decays: false", "negative_decays: true"),
    )
    for mode in ("linear", "half_life")
}


def stored_rows(evs: list[Event], rng: random.Random) -> list[EventRow]:
    """The events as the state DB returns them: one per key, ordered by time, ties in any
    order, times as fixed-width UTC text, attributes as JSON text."""
    unique = {(e.source, e.source_id): e for e in reversed(evs)}  # the first of a key wins
    rows: list[EventRow] = [
        (
            e.contact_id,
            encode_dt(e.occurred_at),
            f"{e.source}:{e.source_id}",
            e.type,
            encode_mapping(e.attributes) if e.attributes else None,
        )
        for e in unique.values()
    ]
    rng.shuffle(rows)
    rows.sort(key=lambda r: r[1])
    return rows


@st.composite
def events_with_ties(draw: st.DrawFn) -> list[Event]:
    """Events where several share a time and differ by source (the order then comes from the
    source and the id), with webinar shares on and around the tier bounds."""
    evs = draw(events(future=True))
    times = [NOW - timedelta(days=d) for d in (0.5, 2, 2.0000001, 40)]
    out = []
    for e in evs:
        if draw(st.booleans()):
            e = replace(e, occurred_at=draw(st.sampled_from(times)))
            e = replace(e, source=draw(st.sampled_from(["t", "a", "t-x", "z"])))
        if e.type == "webinar_attended" and draw(st.booleans()):
            share = draw(st.sampled_from([0.5, 0.9, 1, 0, 0.49999, "0.95", True, math.nan]))
            e = replace(e, attributes={"name": "W", "watched_share": share})
        out.append(e)
    return out


recycle_times = st.sampled_from([None, NOW - timedelta(days=2), NOW - timedelta(days=30)])


@settings(max_examples=200, deadline=None)
@given(
    contacts,
    events_with_ties(),
    enrichments,
    recycle_times,
    st.sampled_from(["none", "linear", "half_life"]),
    st.integers(0, 3),
)
def test_score_rows_is_score(
    contact: Contact,
    evs: list[Event],
    enr: Enrichment | None,
    recycled: datetime | None,
    mode: str,
    seed: int,
) -> None:
    model = MODEL if mode == "none" else DECAYING[mode]
    contact = replace(contact, recycled_at=recycled)
    rows = stored_rows(evs, random.Random(seed))
    # what the DB keeps: one event per key (the unique index), the first one stored
    kept = list({(e.source, e.source_id): e for e in reversed(evs)}.values())
    expected = score(contact, kept, enr, model, NOW)
    assert score_rows(contact, rows, enr, model, NOW) == expected
    # again, with every memo warm: the same
    assert score_rows(contact, rows, enr, model, NOW) == expected


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(-2, 2),
            st.sampled_from([0.5, 0.9, 0.49999999, 0.9000001, True, False, None, "0.9", "x"]),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_memoized_matching_by_range_bucket_is_exact(values: list[Any]) -> None:
    """Matching memoized on the value's range bucket answers what matching each value afresh
    answers, whatever values came before (a webinar's watched share is unique per event)."""
    cm = compile_model(MODEL)
    assert "webinar_attended" in cm.type_buckets
    for v in values:
        attrs = {"name": "W", "watched_share": v}
        fresh = [(cr.name, pts, label) for cr, pts, label in cm._match("webinar_attended", attrs)]
        memo = [(cr.name, pts, label) for cr, pts, label in cm.matches("webinar_attended", attrs)]
        assert memo == fresh, v


# one contact with one pricing-page view, as stored: what the hit-times holder tests score
PRICING_VIEW = (
    Contact("1", "a@acme.com"),
    stored_rows([Event("web", "1", "1", "page_view", NOW, {"url": "/pricing"})], random.Random(0)),
)


def test_hit_times_are_kept_until_the_last_holder_leaves_in_any_order() -> None:
    """A generator suspended inside `keeping_hit_times` (`ops.common.with_hit_times`) leaves it
    when it is collected, maybe while another holder is scoring: that must not turn the
    times off for the other one (a `simulate --accounts` failed so: "scored without its
    events' times")."""
    contact, rows = PRICING_VIEW

    def kept() -> bool:
        return score_rows(contact, rows, None, MODEL, NOW).hit_times is not None

    def holder() -> Generator[bool, None, None]:
        with keeping_hit_times(MODEL):
            yield kept()
            yield kept()

    first, second = holder(), holder()
    assert (next(first), next(second)) == (True, True)
    first.close()  # the first holder leaves first: the second still keeps the times
    assert next(second) is True
    second.close()
    assert kept() is False


def test_hit_times_survive_the_compiled_models_cache_turning_over() -> None:
    """Models compiled while a holder is in force (a worker that loads many models, a test
    run) must not drop the compiled model that keeps the times, nor leave the fused scorer
    of several models holding one that does not (a simulate with accounts failed so)."""
    contact, rows = PRICING_VIEW
    other = replace(MODEL)  # another loaded model: scored beside MODEL, never keeping times
    assert score_rows_many(contact, rows, None, [MODEL, other], NOW)[0].hit_times is None
    with keeping_hit_times(MODEL):
        for _ in range(40):  # more models than the cache keeps
            compile_model(replace(MODEL))
        a, b = score_rows_many(contact, rows, None, [MODEL, other], NOW)
        assert a.hit_times is not None and b.hit_times is None
        assert score_rows(contact, rows, None, MODEL, NOW).hit_times is not None
    assert score_rows_many(contact, rows, None, [MODEL, other], NOW)[0].hit_times is None


@settings(max_examples=200, deadline=None)
@given(
    contacts,
    events_with_ties(),
    enrichments,
    st.sampled_from(["none", "linear", "half_life"]),
    st.integers(0, 3),
)
def test_kept_hit_times_are_each_rule_reasons_event_times(
    contact: Contact, evs: list[Event], enr: Enrichment | None, mode: str, seed: int
) -> None:
    """Within `keeping_hit_times`, a result carries, for each rule reason with points over 0,
    its rule and the Unix time of each of its events, in its `event_ids` order (frequency
    rules' bursts too); the score is the same, and outside it no times are kept."""
    model = MODEL if mode == "none" else DECAYING[mode]
    rows = stored_rows(evs, random.Random(seed))
    kept = list({(e.source, e.source_id): e for e in reversed(evs)}.values())
    at = {f"{e.source}:{e.source_id}": e.occurred_at.timestamp() for e in kept}
    plain = score_rows(contact, rows, enr, model, NOW)
    assert plain.hit_times is None
    with keeping_hit_times(model):
        results = [
            score_rows(contact, rows, enr, model, NOW),
            score(contact, kept, enr, model, NOW),
        ]
    assert score_rows(contact, rows, enr, model, NOW).hit_times is None  # off again
    rule_names = {r.name for r in model.model.engagement.rules}
    for result in results:
        assert result == plain
        assert result.hit_times is not None
        assert result.hit_times == tuple(
            (r.rule, tuple(at[k] for k in r.event_ids))
            for r in result.reasons
            if r.rule in rule_names and r.points > 0
        )
        # what simulate records of a member: the hits the sync reads from the events' times
        assert scored_hits(result) == member_hits(result, at)
