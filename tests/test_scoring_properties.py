"""Properties of the scoring core (hypothesis): deterministic, never NaN, caps hold, time with no
new events never raises a score, a negative event never raises it."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from connector.model.loader import load_model
from connector.scoring import score
from connector.types import Company, Contact, Enrichment, Event

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
