"""`score_rows_many`: one walk over a contact's rows for several models gives exactly what
`score_rows` gives with each model (the full rescore scores a model and its named scores so)."""

from __future__ import annotations

import random
import shutil
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.model.loader import DEFAULT_MODEL_PATH, LoadedModel, load_model
from connector.scoring import engine, score_rows, score_rows_many
from connector.types import Contact, Enrichment, Event
from tests.test_scoring_properties import (
    DECAYING,
    MODEL,
    NOW,
    contacts,
    enrichments,
    events_with_ties,
    recycle_times,
    scratch_folder,
    stored_rows,
)

EXAMPLE = load_model(DEFAULT_MODEL_PATH.parent / "two_products.yaml")

# named scores unlike the lifecycle score: another window, decay and frequency rules, caps,
# a fit of their own (whose force rule reads a fired rule), the default's whole engagement
NAMED: list[dict[str, Any]] = [
    {
        "name": "short",
        "threshold": 20,
        "engagement": {
            "window_days": 7,
            "decay": {"mode": "half_life", "half_life_days": 3, "negative_decays": True},
            "categories": {
                "docs": {"cap": 12},
                "content": {"cap": 30},
                "negative": {},
                "webinar": {},
            },
            "rules": [
                {
                    "name": "docs_page",
                    "category": "docs",
                    "event": "page_view",
                    "points": 5,
                    "when": {"url": {"glob": "*/docs*"}},
                },
                {
                    "name": "pricing_days",
                    "category": "content",
                    "event": "page_view",
                    "points": 15,
                    "when": {"url": {"in_list": "pricing_pages"}},
                    "frequency": {"distinct_days": 2, "within_days": 5},
                },
                {
                    "name": "blog_pages",
                    "category": "content",
                    "event": "page_view",
                    "points": 20,
                    "cap": 25,
                    "when": {"url": {"glob": "*/blog*"}},
                    "frequency": {"count": 2},
                },
                {
                    "name": "unsubscribed",
                    "category": "negative",
                    "event": "email_unsubscribe",
                    "points": -15,
                },
                {
                    "name": "webinar",
                    "category": "webinar",
                    "event": "webinar_attended",
                    "description": "saw '{name}' ({watched_share})",
                    "tiers": [
                        {"when": {"watched_share": {"min": 0.5}}, "points": 30, "label": "most"},
                        {"points": 3, "label": "some"},
                    ],
                },
            ],
        },
    },
    {
        "name": "ownfit",
        "engagement": {
            "window_days": 200,
            "decay": {"mode": "linear"},
            "categories": {"email": {"cap": 4}, "product": {}},
            "rules": [
                {"name": "opened", "category": "email", "event": "email_open", "points": 1},
                {"name": "clicked", "category": "email", "event": "email_click", "points": 2},
                {
                    "name": "pricing_twice",
                    "category": "product",
                    "event": "page_view",
                    "points": 40,
                    "when": {"url": {"in_list": "pricing_pages"}},
                    "frequency": {"count": 2, "within_days": 30},
                },
            ],
        },
        "fit": {
            "grades": {"A": 20, "B": 10, "C": 5},
            "add_to_score": True,
            "score_points": {"A": 30, "B": 20, "C": 10, "D": 0},
            "rules": [
                {"name": "corporate", "when": {"email_kind": "corporate"}, "points": 10},
                {"name": "senior", "when": {"seniority": ["executive", "vp"]}, "points": 12},
            ],
            "force": [
                {"name": "pricing_shopper", "when": {"fired": "pricing_twice"}, "grade": "C"},
                {"name": "rival", "when": {"domain": {"in_list": "competitors"}}, "grade": "D"},
            ],
        },
    },
]


def _with_named(folder: Path) -> LoadedModel:
    """The default model with the default's whole engagement as a named score (the same fit
    and the same rules: the same fired rules) and the two above."""
    raw: dict[str, Any] = yaml.safe_load(DEFAULT_MODEL_PATH.read_text())
    for name in ("titles.yaml", "target_accounts.txt"):
        shutil.copy(DEFAULT_MODEL_PATH.parent / name, folder / name)
    raw["lifecycle_score"] = "main"
    raw["scores"] = [{"name": "full", "engagement": raw["engagement"]}, *NAMED]
    (folder / "model.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_model(folder / "model.yaml")


SEVERAL = _with_named(scratch_folder("leadscore-fused-"))
POOL = [
    MODEL,
    DECAYING["linear"],
    DECAYING["half_life"],
    EXAMPLE,
    *(n.loaded for n in EXAMPLE.named),
    SEVERAL,
    *(n.loaded for n in SEVERAL.named),
]


def per_model(
    contact: Contact,
    rows: Any,
    enrichment: Enrichment | None,
    models: list[LoadedModel],
    now: datetime = NOW,
) -> str:
    return repr(tuple(score_rows(contact, rows, enrichment, m, now) for m in models))


@settings(max_examples=300, deadline=None)
@given(
    contacts,
    events_with_ties(),
    enrichments,
    recycle_times,
    st.lists(st.sampled_from(POOL), min_size=1, max_size=5),
    st.integers(0, 3),
    st.sampled_from([timedelta(0), timedelta(days=3), timedelta(days=-1)]),
)
def test_score_rows_many_is_score_rows_of_each_model(
    contact: Contact,
    evs: list[Event],
    enr: Enrichment | None,
    recycled: datetime | None,
    models: list[LoadedModel],
    seed: int,
    later: timedelta,
) -> None:
    """Exactly (repr: -0.0 and 0.0 told apart) each model's own result, in order, whatever
    the models (windows, decay, frequency rules, caps, a fit of their own), the same model
    twice, ties, future events, a recycled contact, now moved; memos cold or warm."""
    contact = replace(contact, recycled_at=recycled)
    rows = stored_rows(evs, random.Random(seed))
    now = NOW + later
    expected = per_model(contact, rows, enr, models, now)
    assert repr(score_rows_many(contact, rows, enr, models, now)) == expected
    assert repr(score_rows_many(contact, rows, enr, models, now)) == expected  # warm memos


def test_a_fit_is_shared_only_by_models_that_compute_the_same_one() -> None:
    """The example's services score shares the lifecycle score's fit section; `ownfit` has
    its own. A job seeker's lifecycle grade is forced to D by its fired rules, which the
    services score does not have: sharing the fit section is not sharing the verdict."""
    full, short, ownfit = (n.loaded for n in SEVERAL.named)
    models = [EXAMPLE, EXAMPLE.named[0].loaded, SEVERAL, full, short, ownfit]
    fused = engine._fused(models)
    assert fused.fit_group == [0, 0, 0, 0, 0, 1]
    contact = Contact("7", email="sam@acme-analytics.com", job_title="VP Marketing")
    enr = Enrichment("corporate", "acme-analytics.com", None)
    evs = [
        Event("t", "1", "7", "page_view", NOW - timedelta(days=1), {"url": "https://x.io/careers"}),
        Event(
            "t",
            "2",
            "7",
            "page_view",
            NOW - timedelta(days=2),
            {"url": "https://x.io/pricing", "referrer": "https://www.indeed.com/x"},
        ),
        Event("t", "3", "7", "page_view", NOW - timedelta(days=3), {"url": "https://x.io/plans"}),
    ]
    rows = stored_rows(evs, random.Random(0))
    results = score_rows_many(contact, rows, enr, models, NOW)
    assert repr(results) == per_model(contact, rows, enr, models)
    assert [r.grade for r in results] == ["D", "C", "D", "D", "C", "C"]
    job_seeker = "grade D forced: job seeker (careers pages / job board)"
    assert [any(x.text == job_seeker for x in r.reasons) for r in results] == [
        True,
        False,
        True,
        True,
        False,
        False,
    ]
    assert [x.rule for x in results[5].reasons if x.kind == "fit"] == [
        "corporate",
        "senior",
        "pricing_shopper",
        "grade",
        "fit_base",
    ]


def test_one_model_is_score_rows() -> None:
    contact = Contact("7", email="sam@gmail.com", job_title="CEO")
    evs = [Event("t", "1", "7", "email_open", NOW - timedelta(days=1), {"campaign": "c"})]
    rows = stored_rows(evs, random.Random(0))
    (result,) = score_rows_many(contact, rows, None, [MODEL], NOW)
    assert result == score_rows(contact, rows, None, MODEL, NOW)
    assert result.engagement_points == 1.0


TEMPLATE_PARTS = ["submitted '", "{form}", "{name!r}", "{share:>8}", "{a.b}", "{a[0]}", "{x[k]}"]
TEMPLATE_PARTS += ["{0}", "{}", "{a:{b}}", "{", "}", "{{", "}}", "{form!s:.3}", "{nope}", " ×2"]
ATTR_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=100),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.sampled_from(["k", "b"]), st.integers(), max_size=2),
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from(TEMPLATE_PARTS), max_size=5).map("".join),
    st.dictionaries(st.sampled_from(["form", "name", "share", "a", "x", "other"]), ATTR_VALUES),
)
def test_a_reason_formatted_from_the_fields_it_reads_is_the_same_text(
    template: str, attrs: dict[str, Any]
) -> None:
    """`_fmt` given the template's fields (turning only those into text) says what it says
    turning every attribute into text, whatever the template: plain, odd or broken."""
    fields = engine._template_fields(template)
    assert engine._fmt(template, attrs, fields) == engine._fmt(template, attrs)


def test_a_template_indexing_a_text_or_a_missing_key_says_itself() -> None:
    """(It used to raise from the scoring: TypeError, KeyError.)"""
    assert engine._fmt("saw {x[k]}", {"x": "text"}) == "saw {x[k]}"
    assert engine._fmt("saw {x[k]}", {"x": {"j": 1}}, ("x",)) == "saw {x[k]}"
    assert engine._fmt("saw {x[0]}", {"x": "text"}, ("x",)) == "saw t"  # values as text


def test_named_scores_are_saved_as_text_and_read_back_the_same(tmp_path: Path) -> None:
    """The reasons go to the DB as orjson's UTF-8 bytes, stored as TEXT (not a BLOB)."""
    from connector.state.codec import reasons_json
    from connector.state.store import StateStore

    contact = Contact("7", email="sam@gmail.com", job_title="CEO")
    evs = [
        Event("t", "1", "7", "form_submit", NOW - timedelta(days=1), {"form": "A demo ✓ Zürich"}),
        Event("t", "2", "7", "page_view", NOW - timedelta(days=2), {"url": "https://x.io/docs/a"}),
    ]
    services = EXAMPLE.named[0]
    (result,) = score_rows_many(
        contact, stored_rows(evs, random.Random(0)), None, [services.loaded], NOW
    )
    assert [r.rule for r in result.reasons if r.kind == "engagement"] == [
        "talk_to_services",
        "docs_page",
    ]
    with StateStore.open(tmp_path / "state.db") as store:
        assert store.save_named_scores("hubspot", [("services", result, True)]) == 1
        row = store.db.execute(
            "SELECT typeof(reasons), reasons, scored_at FROM named_scores"
        ).fetchone()
        (stored,) = store.named_scores_of("hubspot", "7")
    expected = reasons_json(result.reasons)
    assert row == (
        "text",
        expected.decode() if isinstance(expected, bytes) else expected,
        "2026-11-01T12:00:00.000000+00:00",
    )
    assert stored.reasons == result.reasons and stored.score == result.score == 65.0
    assert stored.qualified and stored.grade == result.grade and stored.scored_at == NOW
