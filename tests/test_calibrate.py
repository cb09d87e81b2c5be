"""Calibration on a seeded synthetic history whose truth is known.

Behaviours and their true effect on the log-odds of converting (reaching SQL within 90 days):
pricing page twice (pricing_repeat) +1.6, a full webinar +1.2, each product page +0.35, a demo
request (hand-raiser) +2.0 — predictive; three visits in three days (return_visits) 0 and e-mail
opens 0 — useless; a guide download (product_guide, +15 in the model) -1.3 — misleading;
unsubscribing -1.0 — rightly negative. The current model is config/model.yaml deliberately mis-set:
return_visits (useless) is worth 90 points, pricing_repeat (predictive) 2.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from connector.calibrate import (
    CalibrationOptions,
    CalibrationResult,
    calibrate,
    render_calibration_html,
    render_calibration_page,
    require_sklearn,
    write_suggestion,
)
from connector.calibrate.fit import PointChange
from connector.calibrate.observe import Dataset
from connector.calibrate.outcomes import SignalTypes, outcome_for
from connector.calibrate.stats import (
    Interval,
    ci_text,
    fixed,
    lift_interval,
    num,
    pct,
    ranked,
    wilson,
)
from connector.calibrate.suggest import edit_yaml, model_edits, write_suggested
from connector.errors import ConfigError
from connector.model.loader import DEFAULT_MODEL_PATH, LoadedModel, load_model, validate_model_file
from connector.state.store import StateStore
from connector.types import Contact, Event

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
CRM = "hubspot"
TRUTH = {
    "pricing": 1.6,
    "webinar": 1.2,
    "product": 0.35,
    "demo": 2.0,
    "return": 0.0,
    "opens": 0.0,
    "guide": -1.3,
    "unsub": -1.0,
}
INTERCEPT = -2.4


@dataclass
class Truth:
    converted: dict[str, bool]


def _ev(cid: str, n: int, typ: str, at: datetime, **attrs: Any) -> Event:
    return Event("synth", f"{cid}-{n}", cid, typ, at, attrs)


def build_history(store: StateStore, n: int, seed: int = 7) -> Truth:
    """Contacts + events + conversions (meeting booked, lead status or stage) in `store`."""
    rng = random.Random(seed)
    contacts: list[Contact] = []
    events: list[Event] = []
    truth: dict[str, bool] = {}
    for i in range(n):
        cid = f"{200000 + i}"
        t0 = NOW - timedelta(days=rng.uniform(30, 420), hours=rng.uniform(0, 8))
        evs: list[Event] = []

        def add(
            typ: str,
            day: float,
            evs: list[Event] = evs,
            cid: str = cid,
            t0: datetime = t0,
            **attrs: Any,
        ) -> None:
            evs.append(_ev(cid, len(evs), typ, t0 + timedelta(days=day), **attrs))

        add("page_view", 0, url="https://example.com/blog/post-1")
        x = {
            "pricing": rng.random() < 0.25,
            "webinar": rng.random() < 0.2,
            "product": rng.choice([0, 0, 1, 2, 3]),
            "demo": rng.random() < 0.04,
            "return": rng.random() < 0.35,
            "opens": rng.choice([0, 1, 2, 4]),
            "guide": rng.random() < 0.25,
            "unsub": rng.random() < 0.1,
        }
        if x["pricing"]:  # twice within 7 days, on days 0 and 1 (never three distinct days)
            add("page_view", 0.01, url="https://example.com/pricing")
            add("page_view", 1.0, url="https://example.com/pricing")
        for k in range(int(x["product"])):
            add("page_view", 0.02 + 0.01 * k, url=f"https://example.com/product/f{k}")
        if x["webinar"]:
            add("webinar_attended", 2, name="Scoring 101", watched_share=0.95)
        if x["demo"]:
            add("form_submit", 3, form="Request a demo")
        if x["return"]:  # three visits on three consecutive days
            for d in (8, 9, 10):
                add("page_view", d, url=f"https://example.com/blog/post-{d}")
        for k in range(int(x["opens"])):
            add("email_open", 4 + k * 0.1, campaign="nov")
        if x["guide"]:
            add("form_submit", 5, form="Download the scoring guide")
        if x["unsub"]:
            add("email_unsubscribe", 6, campaign="nov")
        logit = INTERCEPT + sum(TRUTH[k] * float(v) for k, v in x.items())
        converted = rng.random() < 1 / (1 + math.exp(-logit))
        stage, status, status_at, updated = "lead", None, None, t0 + timedelta(days=12)
        title = "Student" if rng.random() < 0.08 else "VP Marketing"
        if converted:
            at = t0 + timedelta(days=rng.uniform(15, 85))
            how = rng.random()
            if how < 0.7:
                add("meeting_booked", (at - t0) / timedelta(days=1), title="Intro")
                stage = "salesqualifiedlead"
            elif how < 0.9:
                stage, status, status_at = "salesqualifiedlead", "CONNECTED", at
            else:
                stage, updated = "customer", at
        elif rng.random() < 0.15:  # converts, but only after the horizon: not a conversion
            late = t0 + timedelta(days=rng.uniform(100, 200))
            if late < NOW:
                add("deal_opened", (late - t0) / timedelta(days=1), name="Late deal")
        truth[cid] = converted
        contacts.append(
            Contact(
                id=cid,
                email=f"p{i}@example-corp.com",
                job_title=title,
                lifecycle_stage=stage,
                lead_status=status,
                lead_status_changed_at=status_at,
                created_at=t0 - timedelta(days=1),
                updated_at=updated,
            )
        )
        events.extend(evs)
    store.upsert_contacts(CRM, contacts)
    store.insert_events(CRM, events)
    return Truth(truth)


def misset_model(tmp: Path) -> LoadedModel:
    """config/model.yaml with the useless rule given big points and a predictive one few."""
    raw = yaml.safe_load(DEFAULT_MODEL_PATH.read_text(encoding="utf-8"))
    raw["version"] = "misset-1"
    raw["title_rules"] = str(DEFAULT_MODEL_PATH.parent / "titles.yaml")
    for rule in raw["engagement"]["rules"]:
        if rule["name"] == "return_visits":
            rule["points"] = 90
        if rule["name"] == "pricing_repeat":
            rule["points"] = 2
    path = tmp / "misset.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return load_model(path)


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tmp_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("calibrate")


@pytest.fixture(scope="module")
def history() -> tuple[StateStore, Truth]:
    store = StateStore.memory()
    truth = build_history(store, 1400)
    return store, truth


@pytest.fixture(scope="module")
def misset(tmp_module: Path) -> LoadedModel:
    return misset_model(tmp_module)


@pytest.fixture(scope="module")
def result(history: tuple[StateStore, Truth], misset: LoadedModel) -> CalibrationResult:
    return calibrate(history[0], CRM, misset, now=NOW)


def _row(r: CalibrationResult, name: str) -> Any:
    return next(x for x in r.lift if x.name == name)


def _change(r: CalibrationResult, name: str) -> PointChange:
    assert r.suggestion is not None
    return next(c for c in r.suggestion.changes if c.feature == name)


# ---------------------------------------------------------------------------- outcomes

MODEL = load_model()
TYPES = SignalTypes.of(MODEL.model)
H = timedelta(days=90)
T0 = NOW - timedelta(days=200)


def _contact(**kw: Any) -> Contact:
    return Contact(id="c1", email="a@b.com", **kw)


def _view(day: float, n: int = 0) -> Event:
    return _ev("c1", n, "page_view", T0 + timedelta(days=day), url="https://x.com/blog")


def test_outcome_converted_by_the_first_sales_signal_event() -> None:
    evs = [
        _view(0),
        _ev("c1", 1, "meeting_booked", T0 + timedelta(days=30)),
        _ev("c1", 2, "deal_opened", T0 + timedelta(days=10)),
    ]
    o = outcome_for(_contact(lifecycle_stage="opportunity"), evs, TYPES, H, NOW)
    assert o.status == "converted" and o.label is True
    assert o.converted_at == T0 + timedelta(days=10) and o.signal == "event deal_opened"
    assert o.first_engaged_at == T0


def test_outcome_after_the_horizon_is_not_a_conversion() -> None:
    evs = [_view(0), _ev("c1", 1, "meeting_booked", T0 + timedelta(days=120))]
    o = outcome_for(_contact(lifecycle_stage="salesqualifiedlead"), evs, TYPES, H, NOW)
    assert o.status == "not_converted" and o.label is False


def test_outcome_from_lead_status_uses_its_change_time() -> None:
    c = _contact(lead_status="connected", lead_status_changed_at=T0 + timedelta(days=5))
    o = outcome_for(c, [_view(0)], TYPES, H, NOW)
    assert o.status == "converted" and o.signal == "lead status CONNECTED"


def test_outcome_from_stage_uses_updated_at_only_when_it_settles_it() -> None:
    within = _contact(lifecycle_stage="customer", updated_at=T0 + timedelta(days=60))
    assert outcome_for(within, [_view(0)], TYPES, H, NOW).status == "converted"
    later = _contact(lifecycle_stage="customer", updated_at=T0 + timedelta(days=150))
    assert outcome_for(later, [_view(0)], TYPES, H, NOW).status == "undated"
    no_time = _contact(lifecycle_stage="salesqualifiedlead")
    assert outcome_for(no_time, [_view(0)], TYPES, H, NOW).status == "undated"
    before = _contact(lifecycle_stage="customer", updated_at=T0 - timedelta(days=3))
    assert outcome_for(before, [_view(0)], TYPES, H, NOW).status == "converted_before"


def test_outcome_left_out_inside_the_horizon_or_without_engagement() -> None:
    recent = [
        _ev("c1", 0, "page_view", NOW - timedelta(days=10), url="https://x.com/"),
        _ev("c1", 1, "meeting_booked", NOW - timedelta(days=5)),
    ]
    o = outcome_for(_contact(), recent, TYPES, H, NOW)
    assert o.status == "inside_horizon" and o.label is None  # even though it converted
    only_sales = [_ev("c1", 0, "meeting_booked", T0)]
    assert outcome_for(_contact(), only_sales, TYPES, H, NOW).status == "no_engagement"
    assert outcome_for(_contact(), [], TYPES, H, NOW).status == "no_engagement"
    assert outcome_for(_contact(lifecycle_stage="lead"), [_view(0)], TYPES, H, NOW).label is False


def test_replay_keeps_early_engagement_beyond_the_discovery_window() -> None:
    """A full webinar on day 1 counts for a contact observed 90 days (window: 60 days)."""
    store = StateStore.memory()
    store.upsert_contacts(CRM, [_contact(job_title="VP Marketing")])
    store.insert_events(
        CRM,
        [
            _view(0),
            _ev("c1", 1, "webinar_attended", T0 + timedelta(days=1), name="W", watched_share=1.0),
            _ev("c1", 2, "page_view", T0 + timedelta(days=85), url="https://x.com/blog/2"),
        ],
    )
    ds = Dataset(store, CRM, MODEL, H, NOW)
    assert ds.counts.not_converted == 1
    (obs,) = ds.observe(MODEL)
    assert "webinar_attended:full" in obs.fired and obs.units["webinar_attended:full"] == 1
    assert obs.peak_score == 50 and not obs.mql


# ---------------------------------------------------------------------------- statistics


def test_wilson_interval_matches_the_textbook() -> None:
    i = wilson(10, 100)
    assert i is not None
    assert i.value == pytest.approx(0.10)
    assert (i.low, i.high) == pytest.approx((0.0552, 0.1744), abs=1e-4)
    assert wilson(0, 0) is None
    zero = wilson(0, 20)
    assert zero is not None and zero.low == 0 and 0 < zero.high < 0.2


def test_wilson_bounds_are_exact_at_none_and_all() -> None:
    """Computed, wilson(0, 3).low came out 5.55e-17 and wilson(10, 10).high 0.9999999999999999
    (shown in --json as the interval's low and high)."""
    for n in range(1, 200):
        none, every = wilson(0, n), wilson(n, n)
        assert none is not None and every is not None
        assert (none.value, none.low) == (0.0, 0.0) and 0 < none.high < 1
        assert (every.value, every.high) == (1.0, 1.0) and 0 < every.low < 1


def test_values_print_rounded_and_zero_within_float_error_prints_as_zero() -> None:
    artefact = 0.1 + 0.2 - 0.3  # 5.551115123125783e-17
    assert num(artefact) == "0" and num(-artefact) == "0"
    assert (num(96.0), num(2.5), num(174.00000000000003), num(1e6)) == (
        "96",
        "2.5",
        "174",
        "1000000",
    )
    assert (fixed(-artefact), fixed(0.456)) == ("0.00", "0.46")
    assert (pct(-artefact), pct(artefact, 0), pct(0.2058), pct(None)) == (
        "0.0%",
        "0%",
        "20.6%",
        "–",
    )
    assert ci_text(Interval(0.0, artefact, 0.5614970317550454)) == "0.0% [0%–56%]"
    assert ci_text(Interval(1.0, 0.3424, 1 - 1e-16)) == "100.0% [34%–100%]"
    assert ci_text(Interval(0.46, 0.28, 0.74), as_pct=False) == "0.46 [0.28–0.74]"
    assert ci_text(None) == "–"


def test_lift_interval_is_finite_with_empty_cells() -> None:
    li = lift_interval(12, 40, 0, 60)
    assert li is not None and math.isfinite(li.value) and li.low > 1
    none = lift_interval(0, 100, 30, 100)
    assert none is not None and none.value == 0 and none.high < 1
    assert lift_interval(3, 0, 4, 10) is None
    assert lift_interval(0, 10, 0, 10) is None  # nobody converted: no ratio
    even = lift_interval(20, 100, 20, 100)
    assert even is not None and even.value == pytest.approx(1) and even.low < 1 < even.high


# ---------------------------------------------------------------------------- known truth


def test_outcomes_are_counted_from_the_synthetic_history(result: CalibrationResult) -> None:
    c = result.counts
    assert c.contacts == 1400 and c.labelled + c.inside_horizon == 1400
    assert c.converted >= 150 and c.not_converted > c.converted
    assert set(c.signals) == {"event meeting_booked", "lead status CONNECTED", "stage customer"}


def test_lift_table_ranks_the_rules_as_the_truth_does(result: CalibrationResult) -> None:
    order = [r.name for r in ranked(result.lift)]
    pricing, webinar = order.index("pricing_repeat"), order.index("webinar_attended:full")
    useless, misleading = order.index("return_visits"), order.index("product_guide")
    assert pricing < webinar < useless < misleading
    assert _row(result, "pricing_repeat").verdict == "helps"
    assert _row(result, "webinar_attended:full").verdict == "helps"
    useless_row = _row(result, "return_visits")
    assert (
        useless_row.verdict == "no clear effect"
        and useless_row.lift.low < 1 < useless_row.lift.high
    )
    assert [r.name for r in result.wrong_way] == ["product_guide"]
    assert _row(result, "email_unsubscribe").verdict == "hurts"  # negative and rightly so
    never = {r.name for r in result.never_fire}
    assert {"contact_us", "careers_repeat", "webinar_attended:half"} <= never
    assert "meeting_booked" not in {r.name for r in result.lift}  # the outcome, not a rule row


def test_suggested_model_beats_the_misset_one_on_held_out_contacts(
    result: CalibrationResult,
) -> None:
    cmp_ = result.comparison
    assert cmp_ is not None and cmp_.better
    assert cmp_.current.auc is not None and cmp_.suggested.auc is not None
    assert cmp_.suggested.auc > cmp_.current.auc + 0.08
    assert cmp_.suggested.precision > cmp_.current.precision
    assert cmp_.train_contacts + cmp_.test_contacts == result.counts.labelled
    assert sum(b.contacts for b in cmp_.suggested.bands) == cmp_.test_contacts


def test_points_keep_their_signs_and_move_the_right_way(result: CalibrationResult) -> None:
    s = result.suggestion
    assert s is not None
    for c in s.changes:
        assert (c.suggested > 0) == (c.current > 0) and (c.suggested < 0) == (c.current < 0), c
    assert _change(result, "pricing_repeat").suggested > 25  # predictive, was given 2
    assert _change(result, "return_visits").suggested < 10  # useless, was given 90
    guide = _change(result, "product_guide")
    assert guide.status == "sign kept" and guide.suggested == 1
    assert guide.data_suggests is not None and guide.data_suggests < 0
    assert [c.feature for c in s.sign_flips] == ["product_guide"]  # reported, not applied
    for name in ("contact_us", "careers_repeat", "webinar_attended:half"):
        kept = _change(result, name)
        assert kept.status == "kept: never fires" and kept.suggested == kept.current


def test_requested_mql_rate_is_met_on_the_training_contacts(result: CalibrationResult) -> None:
    s, cmp_ = result.suggestion, result.comparison
    assert s is not None and cmp_ is not None
    assert abs(s.train_mql_rate - 0.10) <= 0.02
    assert s.train_mql_rate == pytest.approx(_replayed_rate(result, s.threshold))
    assert s.train_mql_rate_current > 0.2  # the mis-set model flagged far too many
    assert abs(cmp_.suggested.mql_rate - 0.10) <= 0.05  # and it carries to newer contacts


def _replayed_rate(r: CalibrationResult, threshold: float) -> float:
    """The training MQL rate recounted from a fresh replay with the suggested model."""
    assert r.suggestion is not None and r.comparison is not None
    store = StateStore.memory()
    build_history(store, 1400)
    ds = Dataset(store, CRM, r.suggestion.model, r.options.horizon, NOW)
    obs = sorted(ds.observe(r.suggestion.model), key=lambda o: (o.first_engaged_at, o.contact_id))
    train = obs[: r.comparison.train_contacts]
    return sum(o.mql_at(threshold) for o in train) / len(train)


def test_written_yaml_validates_and_changes_only_points_and_caps(
    result: CalibrationResult, misset: LoadedModel, tmp_path: Path
) -> None:
    out = tmp_path / "elsewhere" / "model.suggested.yaml"
    written = write_suggestion(result, misset, out)
    loaded, problems = validate_model_file(out)
    assert problems == [] and loaded is not None
    assert loaded.version == written.version == "misset-1-calibrated-2026-11-01"
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Suggested by `leadscore calibrate`")
    assert "product_guide points the wrong way" in text
    new = yaml.safe_load(text)
    old = yaml.safe_load(Path(misset.path).read_text(encoding="utf-8"))
    # the priority bands follow the points (test_calibrate_priority_refit): the MQL threshold
    # is kept, so band 1 (its bar) stays; band 2 keeps its share of the contacts
    bands = [{"name": "1", "min": 100}, {"name": "2", "min": 20}, {"name": "3", "min": 0}]
    assert "priority" not in old and new.pop("priority") == {"bands": bands}
    for raw in (new, old):
        raw.pop("version")
        raw["lifecycle"]["mql"].pop("threshold")
        for rule in raw["engagement"]["rules"]:
            rule.pop("points", None)
            rule.pop("cap", None)  # caps move with the points (test_caps_*)
            for tier in rule.get("tiers", []):
                tier.pop("points")
        for cat in raw["engagement"]["categories"].values():
            cat.pop("cap", None)
    assert new == old
    by_name = {r.name: r for r in loaded.model.engagement.rules}
    assert by_name["pricing_repeat"].points == _change(result, "pricing_repeat").suggested
    assert by_name["meeting_booked"].points == 0 and by_name["meeting_booked"].sales_signal


def test_yaml_edit_keeps_the_teams_comments(tmp_path: Path) -> None:
    """From the real config/model.yaml (flow style, comments): a file in another folder."""
    src = tmp_path / "cfg"
    src.mkdir()
    for name in ("model.yaml", "titles.yaml"):
        (src / name).write_text((DEFAULT_MODEL_PATH.parent / name).read_text("utf-8"), "utf-8")
    model = load_model(src / "model.yaml")
    changes = [
        PointChange("pricing_repeat", "pricing_repeat", None, "", 25, 40, "refit"),
        PointChange("webinar_attended:half", "webinar_attended", "half", "", 25, 30, "refit"),
    ]
    edits = model_edits(model, changes, 90.0, "2026.12-cal")
    out = tmp_path / "out" / "suggested.yaml"
    loaded = write_suggested(model, edits, out, ["header line"])
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# header line\n")
    assert "# Hand-raisers: MQL at once, whatever the grade." in text
    assert "{name: pricing_repeat, category: frequency, event: page_view, points: 40," in text
    assert 'title_rules: "../cfg/titles.yaml"' in text
    assert loaded.model.lifecycle.mql.threshold == 90
    tiers = next(r for r in loaded.model.engagement.rules if r.name == "webinar_attended").tiers
    assert tiers is not None and [t.points for t in tiers] == [50, 30, 10]
    assert loaded.version == "2026.12-cal"


def test_yaml_edit_falls_back_to_a_full_dump_when_it_cannot_edit_in_place() -> None:
    text = "version: v1\nlists: {}\n"
    out = edit_yaml(text, {("version",): "v2", ("lifecycle",): 3}, ["why"])
    assert out.startswith("# why\n")
    assert yaml.safe_load(out) == {"version": "v2", "lists": {}, "lifecycle": 3}
    same = edit_yaml("a: 1  # keep\nb: [1, 2]\n", {("b", 1): 5})
    assert same == "a: 1  # keep\nb: [1, 5]\n"


def test_sign_flips_only_when_allowed_and_then_reported(
    history: tuple[StateStore, Truth], misset: LoadedModel
) -> None:
    r = calibrate(
        history[0], CRM, misset, now=NOW, options=CalibrationOptions(allow_sign_flips=True)
    )
    guide = _change(r, "product_guide")
    assert guide.status == "sign flipped" and guide.suggested < 0
    assert r.suggestion is not None and r.suggestion.sign_flips == [guide]
    assert "SIGN FLIPPED: product_guide +15 ->" in r.suggestion.text
    assert _change(r, "return_visits").status == "sign kept"  # weak evidence: never flipped


def test_html_fragment_is_self_contained(result: CalibrationResult) -> None:
    import dataclasses

    page = render_calibration_html(dataclasses.replace(result, model_version="v<1>&co"))
    assert page.startswith('<section class="lsc"') and page.endswith("</section>")
    assert page.count("<svg") == 2 and "<script" not in page
    assert "v&lt;1&gt;&amp;co" in page and "v<1>" not in page
    assert "src=" not in page and "href=" not in page and "@import" not in page
    assert "pricing_repeat" in page and "ROC AUC" in page and "Nothing was applied" in page
    full = render_calibration_page(result)
    assert full.startswith("<!doctype html>") and page.count("<section") == 1


def test_the_lift_chart_makes_room_for_a_long_rule_name(result: CalibrationResult) -> None:
    """The chart's labels end at its plot (text-anchor end): a name longer than the labels'
    column ran off the picture's left edge."""
    import dataclasses

    page = render_calibration_html(result)
    assert '<svg xmlns="http://www.w3.org/2000/svg" width="640" height=' in page
    assert '<text x="194" y="20" text-anchor="end">' in page  # labels end 6px before the plot
    long = "webinar_attended_product_launch_2026:full"  # 41 characters
    renamed = tuple(
        dataclasses.replace(x, name=long) if x.name == "pricing_repeat" else x for x in result.lift
    )
    page = render_calibration_html(dataclasses.replace(result, lift=renamed))
    label_w = 12 + 7 * len(long)  # 299: about 7px a character of 11px text
    assert f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + 440}" height=' in page
    assert f'<text x="{label_w - 6}" y="20" text-anchor="end">' in page
    assert f">{long}</text>" in page


def test_too_little_data_suggests_nothing(misset: LoadedModel) -> None:
    store = StateStore.memory()
    build_history(store, 60, seed=3)
    r = calibrate(store, CRM, misset, now=NOW)
    assert r.suggestion is None and r.comparison is None
    assert r.insufficient is not None and r.insufficient.startswith("too little data")
    assert "conversion(s)" in r.insufficient
    assert r.lift  # the descriptive table is still there
    html = render_calibration_html(r)
    assert "Nothing suggested" in html


def test_too_small_a_held_out_set_suggests_nothing(
    history: tuple[StateStore, Truth], misset: LoadedModel
) -> None:
    r = calibrate(
        history[0],
        CRM,
        misset,
        now=NOW,
        options=CalibrationOptions(min_test_contacts=5000, min_conversions=1),
    )
    assert r.suggestion is None and r.insufficient is not None
    assert "held-out" in r.insufficient


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "numpy", None)
    with pytest.raises(ConfigError, match=r"leadscore\[calibrate\]"):
        require_sklearn()


def test_importing_the_command_does_not_load_scikit_learn() -> None:
    import subprocess
    import sys

    code = (
        "import sys, connector.cli, connector.calibrate, connector.calibrate.cli; "
        "print('sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------------- caps


def test_caps_keep_their_meaning_at_the_new_scale(tmp_path: Path) -> None:
    """A count-once rule refit from 20 to 79 may give 79 (not 20); a category cap scales with
    its rules; caps of unchanged rules stay."""
    from connector.calibrate.caps import refit_caps
    from connector.scoring.engine import score

    raw = yaml.safe_load(DEFAULT_MODEL_PATH.read_text(encoding="utf-8"))
    raw["title_rules"] = str(DEFAULT_MODEL_PATH.parent / "titles.yaml")
    raw["engagement"]["rules"].append(
        {"name": "webinar_question", "category": "webinar", "event": "custom", "points": 20,
         "cap": 20, "when": {"name": "question"}, "description": "asked a question"}
    )  # fmt: skip
    src = tmp_path / "m.yaml"
    src.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    model = load_model(src)
    changes = [
        PointChange("webinar_question", "webinar_question", None, "", 20, 79, "refit"),
        PointChange("email_unsubscribe", "email_unsubscribe", None, "", -20, -45, "refit"),
        PointChange("product_page", "product_page", None, "", 10, 30, "refit"),
        PointChange("product_guide", "product_guide", None, "", 15, 15, "refit"),
    ]
    caps = refit_caps(model, changes)
    got = {(c.kind, c.name): (c.current, c.suggested, c.meaning) for c in caps}
    assert got == {
        ("rule", "webinar_question"): (20, 79, "counts once"),
        ("rule", "email_unsubscribe"): (20, 45, "counts once"),
        ("category", "product"): (60, 180, "×3.00, as its rules"),
        ("category", "webinar"): (100, 395, "×3.95, as its rules"),
    }
    out = tmp_path / "suggested.yaml"
    loaded = write_suggested(model, model_edits(model, changes, 100, "v-cal", caps), out)
    assert validate_model_file(out)[1] == []
    rules = {r.name: r for r in loaded.model.engagement.rules}
    assert rules["webinar_question"].cap == 79 and rules["job_board_referrer"].cap == 25
    assert loaded.model.engagement.categories["product"].cap == 180
    t = NOW - timedelta(days=1)
    evs = [
        _ev("c1", 0, "custom", t, name="question"),
        _ev("c1", 1, "custom", t + timedelta(hours=1), name="question"),
        _ev("c1", 2, "email_unsubscribe", t, campaign="a"),
        _ev("c1", 3, "email_unsubscribe", t + timedelta(hours=2), campaign="b"),
    ]
    res = score(_contact(job_title="VP Marketing"), evs, None, loaded, NOW)
    pts = {r.rule: r.points for r in res.reasons if r.kind == "engagement"}
    assert pts == {"webinar_question": 79, "email_unsubscribe": -45}  # each still once
    before = score(_contact(job_title="VP Marketing"), evs, None, model, NOW)
    assert {r.rule: r.points for r in before.reasons if r.kind == "engagement"} == {
        "webinar_question": 20,
        "email_unsubscribe": -20,
    }


def test_the_synthetic_refit_moves_the_count_once_cap(
    result: CalibrationResult, misset: LoadedModel
) -> None:
    unsub = _change(result, "email_unsubscribe")
    assert result.suggestion is not None and unsub.suggested != -20
    caps = {c.name: c for c in result.suggestion.caps}
    assert caps["email_unsubscribe"].suggested == abs(unsub.suggested)
    rules = {r.name: r for r in result.suggestion.model.model.engagement.rules}
    assert rules["email_unsubscribe"].cap == abs(unsub.suggested)
    assert f"Cap of rule email_unsubscribe: 20 -> {abs(unsub.suggested)} (counts once)." in (
        result.suggestion.text
    )


def test_yaml_additions_keep_the_teams_file_and_mark_what_is_new(tmp_path: Path) -> None:
    """A new rule lands after the last rule, in the file's flow style, marked NEW; its category
    is added; comments stay."""
    from connector.calibrate.suggest import rule_additions

    model = load_model()
    rule = {
        "name": "new_page_scholarship", "category": "suggested", "event": "page_view",
        "points": 37, "cap": 37, "when": {"url": {"glob": "*/scholarship*"}},
        "description": "page /scholarship (new: suggested by calibrate)",
    }  # fmt: skip
    out = tmp_path / "m.yaml"
    loaded = write_suggested(model, {("version",): "v-new"}, out, (), rule_additions(model, [rule]))
    text = out.read_text(encoding="utf-8")
    assert "    # Sales-owned signals: no points, they make an SQL." in text
    assert (
        '       description: "deal opened"}\n'
        "    - {name: new_page_scholarship, category: suggested, event: page_view, points: 37, "
        "cap: 37, when: {url: {glob: '*/scholarship*'}}, description: 'page /scholarship (new: "
        "suggested by calibrate)'}  # NEW: suggested by calibrate\n"
    ) in text
    assert (
        '    sales: {description: "sales-owned signals (no points; they make an SQL)"}\n'
        "    suggested: {description: rules added by leadscore calibrate (review each)}"
        "  # NEW: suggested by calibrate\n"
    ) in text
    assert loaded.model.engagement.rules[-1].name == "new_page_scholarship"
    assert "suggested" in loaded.model.engagement.categories


def test_new_rule_names_never_collide() -> None:
    """Two keys that slug alike, or a name a rule already has: one rule each name, at most."""
    from connector.calibrate.candidates import Candidate, candidate_features
    from connector.calibrate.core import _adopt
    from connector.calibrate.stats import Interval

    lift = Interval(2.0, 1.5, 2.6)
    cands = [
        Candidate(f"page {v}", "page", v, "page_view", 50, 30, 500, 100, lift, True)
        for v in ("/a-b", "/a_b", "/taken")
    ]
    feats = candidate_features(cands)
    assert [f.name for f in feats] == ["new_page_a_b", "new_page_taken"]
    fitted = {
        f.name: PointChange(f.name, f.name, None, "", 1, 30, "refit", section="new") for f in feats
    }
    out, rules = _adopt(cands, fitted, True, ["new_page_taken"])
    assert [r["name"] for r in rules] == ["new_page_a_b"]
    assert [c.added for c in out] == [True, False, False]
    assert rules[0]["when"] == {"url": {"glob": "*/a-b*"}} and rules[0]["cap"] == 30


def test_grades_cut_the_refit_profile_points_and_forced_grades_stay_forced() -> None:
    from connector.calibrate.grades import refit_grades
    from connector.calibrate.observe import Observation

    changes = [
        PointChange("fit:title", "title", None, "", 30, 40, "refit", section="fit"),
        PointChange("fit:country", "country", None, "", 5, 10, "refit", section="fit"),
        PointChange("pricing", "pricing", None, "", 25, 33, "refit"),
    ]

    def ob(i: int, *keys: str) -> Observation:
        return Observation(str(i), NOW, False, units=dict.fromkeys(keys, 1.0))

    train = [ob(i, "pricing") for i in range(4)]  # fit points 0
    train += [ob(10 + i, "fit:country") for i in range(3)]  # 10
    train += [ob(20 + i, "fit:title") for i in range(2)]  # 40
    train += [ob(30, "fit:title", "fit:country")]  # 50
    train += [ob(40, "fit:title", "fit:country", "force:student")]  # forced D
    train += [ob(41, "fit:title", "fit:country", "force:partner_c")]  # forced C
    g = refit_grades(changes, train, {"student": "D", "partner_c": "C"})
    assert g is not None
    assert g.grades == {"C": 10, "B": 40, "A": 50}
    assert g.score_points == {"A": 50, "B": 40, "C": 10, "D": 0}
    assert g.contacts == {"A": 1, "B": 2, "C": 4, "D": 5}
    assert refit_grades(changes, train[:9]) is None  # three distinct values: not graded
