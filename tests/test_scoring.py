"""The pure scoring core against the default model: exact numbers, exact reasons."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from connector.model.loader import DEFAULT_MODEL_PATH as MODEL_PATH
from connector.model.loader import LoadedModel, load_model
from connector.scoring import score, score_rows
from connector.state.codec import encode_dt, encode_json
from connector.types import Company, Contact, Enrichment, Event, EventRow, ScoreResult

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
MODEL = load_model()

ACME = Company(
    domain="acme-analytics.com",
    name="Acme Analytics",
    industry="computer software",
    employee_count=850,
    annual_revenue_usd=120_000_000,
    country="US",
    source="local_csv",
    as_of="2026-10-01",
)
CORPORATE_ACME = Enrichment("corporate", "acme-analytics.com", ACME)
GMAIL = Enrichment("free", "gmail.com", None)


class Events:
    """Builds events with unique ids, `days` before NOW."""

    def __init__(self, contact_id: str = "1") -> None:
        self.contact_id = contact_id
        self.items: list[Event] = []

    def add(self, type_: str, days: float, **attrs: Any) -> Event:
        ev = Event(
            "test",
            f"e{len(self.items)}",
            self.contact_id,
            type_,
            NOW - timedelta(days=days),
            attrs,
        )
        self.items.append(ev)
        return ev

    def page(self, url: str, days: float, referrer: str | None = None) -> Event:
        attrs: dict[str, Any] = {"url": url}
        if referrer:
            attrs["referrer"] = referrer
        return self.add("page_view", days, **attrs)


def by_rule(result: ScoreResult) -> dict[str, float]:
    return {r.rule: r.points for r in result.reasons if r.kind == "engagement"}


def dana() -> Contact:
    return Contact(
        "1",
        email="dana.whitfield@acme-analytics.com",
        job_title="VP Marketing",
        country="US",
        lifecycle_stage="lead",
    )


def worked_example() -> Events:
    ev = Events()
    for i in range(30):  # 30 blog posts over the last 12 days, on days 12..1
        ev.page(f"https://example.com/blog/post-{i}", 12 - (i % 12) + 0.1)
    ev.page("https://example.com/pricing", 1.5)
    ev.page("https://example.com/pricing", 0.5)
    ev.add("webinar_attended", 5, name="Scoring that sales trusts", watched_share=58 / 60)
    return ev


def test_worked_example_is_110_and_mql_without_a_hand_raise() -> None:
    r = score(dana(), worked_example().items, CORPORATE_ACME, MODEL, NOW)
    assert by_rule(r) == {
        "pages_30": 10,
        "webinar_attended": 50,
        "return_visits": 25,
        "pricing_repeat": 25,
    }
    assert r.score == 110
    assert r.grade == "A"
    assert r.fit_points == 90
    assert r.lifecycle.mql is True
    assert r.lifecycle.mql_reason == "threshold"
    assert r.lifecycle.target_stage == "marketingqualifiedlead"
    assert r.hand_raiser is False
    assert r.profile_mismatch is False
    top = r.top_reasons()
    assert top.startswith("+50 watched webinar 'Scoring that sales trusts' (full); +25 ")
    assert "+25 pricing page twice in 7 days" in top
    assert "+25 visits on 3 days within 3 days" in top
    assert "+10 30+ pages viewed" in top
    assert top.endswith("grade A: decision-making title, company size 51-5,000")
    pricing = next(x for x in r.reasons if x.rule == "pricing_repeat")
    assert len(pricing.event_ids) == 2
    assert r.model_version == "2026.12-default"
    assert r.model_fingerprint == MODEL.fingerprint


def test_fit_reasons_name_their_source_and_title_rule() -> None:
    r = score(dana(), [], CORPORATE_ACME, MODEL, NOW)
    texts = {x.rule: x.text for x in r.reasons if x.kind == "fit"}
    assert texts["title_decision_maker"] == (
        "+30 decision-making title (title 'VP Marketing' → vp by rule vice_president)"
    )
    assert texts["company_size_midmarket"] == (
        "+20 company size 51-5,000 (850 employees, source local_csv 2026-10-01)"
    )
    assert texts["budget_revenue"] == (
        "+10 revenue of $10M or more (revenue $120M, source local_csv 2026-10-01)"
    )
    assert r.score == 0
    assert r.lifecycle.target_stage is None
    assert r.next_change_at is None


def test_demo_request_from_grade_d_profile_is_mql_at_once_with_mismatch_flag() -> None:
    contact = Contact("2", email="riley@gmail.com", job_title="Freelance designer")
    ev = Events("2")
    ev.page("https://example.com/blog/a", 3)
    ev.add("form_submit", 1, form="Request a demo", form_id="f-demo")
    r = score(contact, ev.items, GMAIL, MODEL, NOW)
    assert r.grade == "D"
    assert r.fit_points == -10
    assert by_rule(r) == {"demo_request": 100}
    assert r.lifecycle.mql is True
    assert r.lifecycle.mql_reason == "hand-raiser: Request a demo"
    assert r.lifecycle.target_stage == "marketingqualifiedlead"
    assert r.hand_raiser is True
    assert r.profile_mismatch is True


def test_job_seeker_ends_negative_grade_d_and_never_mql_by_points() -> None:
    contact = Contact("3", email="jordan@outlook.com", job_title="Software Engineer")
    ev = Events("3")
    indeed = "https://www.indeed.com/viewjob?jk=abc"
    ev.page("https://example.com/careers", 4, referrer=indeed)
    ev.page("https://example.com/careers/open-roles", 3, referrer=indeed)
    ev.page("https://example.com/careers", 2, referrer=indeed)
    ev.page("https://example.com/blog/x", 2)
    r = score(contact, ev.items, Enrichment("free", "outlook.com"), MODEL, NOW)
    assert by_rule(r) == {"careers_repeat": -50, "job_board_referrer": -25}
    assert r.score == -75
    assert r.grade == "D"
    forced = [x.text for x in r.reasons if x.rule == "job_seeker_behaviour"]
    assert forced == ["grade D forced: job seeker (careers pages / job board)"]
    assert r.lifecycle.mql is False
    assert r.lifecycle.target_stage is None
    # even with a huge amount of positive behaviour, grade D never makes an MQL by points
    for i in range(8):
        ev.add("webinar_attended", 1 + i, name=f"w{i}", watched_share=1.0)
    r2 = score(contact, ev.items, Enrichment("free", "outlook.com"), MODEL, NOW)
    assert r2.score == 25  # webinar category capped at 100; -75 negatives stay
    assert r2.grade == "D"
    assert r2.lifecycle.mql is False


def test_competitor_contact_form_is_grade_d_and_blocked_from_mql() -> None:
    contact = Contact(
        "4",
        email="morgan@rivalscore.io",
        job_title="Product Marketing Manager",
        lifecycle_stage="lead",
    )
    rival = Company("rivalscore.io", employee_count=120, industry="computer software", country="US")
    ev = Events("4")
    ev.add("form_submit", 2, form="Contact Us")
    ev.page("https://example.com/pricing", 2)
    r = score(contact, ev.items, Enrichment("corporate", "rivalscore.io", rival), MODEL, NOW)
    assert r.grade == "D"
    assert r.score == 100  # contact_us counts as behaviour, yet the competitor never becomes MQL
    assert r.lifecycle.mql is False
    assert r.lifecycle.target_stage is None
    assert r.hand_raiser is False
    forced = [x.text for x in r.reasons if x.rule == "competitor"]
    assert forced == ["grade D forced: competitor domain (domain rivalscore.io); blocked from MQL"]


def test_behaviour_older_than_the_window_stops_counting_and_next_change_says_when() -> None:
    ev = Events()
    webinar = ev.add("webinar_attended", 59, name="Old webinar", watched_share=1.0)
    r = score(dana(), ev.items, CORPORATE_ACME, MODEL, NOW)
    assert r.score == 50
    assert r.next_change_at == webinar.occurred_at + timedelta(days=60)
    later = score(dana(), ev.items, CORPORATE_ACME, MODEL, NOW + timedelta(days=2))
    assert later.score == 0
    assert later.next_change_at is None
    old = Events()
    old.add("webinar_attended", 61, name="Old webinar", watched_share=1.0)
    assert score(dana(), old.items, CORPORATE_ACME, MODEL, NOW).score == 0


def _rows(events: list[Event]) -> list[EventRow]:
    """The events as the state DB stores them (what a full rescore scores)."""
    return [
        (
            e.contact_id,
            encode_dt(e.occurred_at),
            f"{e.source}:{e.source_id}",
            e.type,
            encode_json(dict(e.attributes)),
        )
        for e in sorted(events, key=lambda e: e.occurred_at)
    ]


def test_the_window_edge_is_exact_and_never_decaying_points_count_from_any_age() -> None:
    """Events far past the window are not even prepared unless a never-decaying rule counts
    them: the edge stays exact to the microsecond, on events and on stored rows alike."""
    window = timedelta(days=60)
    ev = Events()
    for seconds in (-1.0, -0.5, -0.000001, 0.0, 0.000001, 0.5, 1.0, 2.0):
        ev.add("webinar_attended", 0, name=f"W {seconds}", watched_share=1.0)
        last = ev.items[-1]
        ev.items[-1] = Event(
            last.source,
            last.source_id,
            last.contact_id,
            last.type,
            NOW - window - timedelta(seconds=seconds),
            last.attributes,
        )
    ev.add("email_unsubscribe", 200)
    ev.page("https://example.com/careers", 300)
    ev.page("https://example.com/jobs/1", 250)
    ev.page("https://example.com/pricing", 90)
    r = score(dana(), ev.items, CORPORATE_ACME, MODEL, NOW)
    webinars = next(x for x in r.reasons if x.rule == "webinar_attended")
    assert webinars.event_ids == ("test:e2", "test:e1", "test:e0")  # younger than the window
    assert by_rule(r)["email_unsubscribe"] == -20
    assert by_rule(r)["careers_repeat"] == -50
    assert "pricing_repeat" not in by_rule(r)
    assert repr(score_rows(dana(), _rows(ev.items), CORPORATE_ACME, MODEL, NOW)) == repr(r)


@pytest.mark.parametrize("window_days", [1e6, 1e9, float("inf")])
def test_a_window_reaching_before_year_one_scores_like_any_other(
    tmp_path: Path, window_days: float
) -> None:
    """The window's start (`now` - window) does not exist for such windows: nothing is
    past it, and every event is prepared and scored (it used to raise OverflowError)."""
    raw = yaml.safe_load(MODEL_PATH.read_text())
    raw["engagement"]["window_days"] = window_days
    for f in MODEL_PATH.parent.iterdir():
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "model.yaml").write_text(yaml.safe_dump(raw))
    model = load_model(tmp_path / "model.yaml")
    ev = Events()
    ev.add("email_unsubscribe", 4000)
    ev.add("webinar_attended", 3000, name="W", watched_share=1.0)
    r = score(dana(), ev.items, CORPORATE_ACME, model, NOW)
    assert by_rule(r)["email_unsubscribe"] == -20
    assert by_rule(r)["webinar_attended"] == 50
    assert repr(score_rows(dana(), _rows(ev.items), CORPORATE_ACME, model, NOW)) == repr(r)


def test_sales_set_sql_stays_sql_whatever_the_score() -> None:
    contact = Contact(
        "8",
        email="t@globex.co.uk",
        job_title="Head of RevOps",
        lifecycle_stage="salesqualifiedlead",
        lead_status="CONNECTED",
    )
    r = score(contact, worked_example().items, CORPORATE_ACME, MODEL, NOW)
    assert r.score == 110
    assert r.lifecycle.target_stage is None
    assert r.lifecycle.current_stage == "salesqualifiedlead"
    low = score(contact, [], CORPORATE_ACME, MODEL, NOW)
    assert low.lifecycle.target_stage is None


def test_lower_score_never_moves_an_mql_backward() -> None:
    contact = Contact(
        "1",
        email="dana@acme-analytics.com",
        job_title="VP Marketing",
        lifecycle_stage="marketingqualifiedlead",
    )
    r = score(contact, [], CORPORATE_ACME, MODEL, NOW)
    assert r.score == 0
    assert r.lifecycle.target_stage is None
    assert r.lifecycle.mql is True


def test_lead_status_from_sales_makes_sql_points_never_do() -> None:
    base = Contact(
        "1",
        email="dana@acme-analytics.com",
        job_title="VP Marketing",
        lifecycle_stage="marketingqualifiedlead",
    )
    r = score(base, worked_example().items, CORPORATE_ACME, MODEL, NOW)
    assert r.lifecycle.target_stage is None  # 110 points: still MQL, never SQL
    sql = Contact(**{**_fields(base), "lead_status": "CONNECTED"})
    r2 = score(sql, [], CORPORATE_ACME, MODEL, NOW)
    assert r2.lifecycle.target_stage == "salesqualifiedlead"
    assert r2.lifecycle.note == "SQL from sales signal: lead status CONNECTED"
    ev = Events()
    ev.add("meeting_booked", 1, title="Intro call")
    r3 = score(base, ev.items, CORPORATE_ACME, MODEL, NOW)
    assert r3.lifecycle.target_stage == "salesqualifiedlead"
    assert r3.lifecycle.note == "SQL from sales signal: meeting booked with sales"
    ev.add("meeting_booked", 2, title="Demo")  # two: the reason counts them, the note does not
    r4 = score(base, ev.items, CORPORATE_ACME, MODEL, NOW)
    assert [r.text for r in r4.reasons if r.rule == "meeting_booked"] == [
        "meeting booked with sales ×2"
    ]
    assert r4.lifecycle.note == "SQL from sales signal: meeting booked with sales"


def test_a_reason_of_several_events_names_each_distinct_one() -> None:
    """A rule whose text reads the event ("downloaded '{form}'") fired by several events:
    the same guide twice reads "×2"; different guides are each named (oldest first, with
    their counts), at most three, then "…and N more". A tiered rule ("watched webinar
    '{name}'", tiers by the share watched) names each distinct webinar once and keeps its
    tier labels' counts. The points do not change."""
    contact = Contact("1", email="dana@acme-analytics.com", job_title="VP Marketing")

    def text(events: Events, rule: str = "product_guide") -> tuple[str, float]:
        r = score(contact, events.items, CORPORATE_ACME, MODEL, NOW)
        (reason,) = [x for x in r.reasons if x.rule == rule]
        return reason.text, reason.points

    ev = Events()
    ev.add("form_submit", 9, form="Scoring guide")
    ev.add("form_submit", 5, form="Scoring guide")
    same = text(ev)
    assert same == ("downloaded 'Scoring guide' ×2", 30)
    ev.add("form_submit", 3, form="ABM whitepaper")
    assert text(ev) == ("downloaded 'Scoring guide' ×2; downloaded 'ABM whitepaper'", 45)
    ev.add("form_submit", 2, form="Intent datasheet")
    ev.add("form_submit", 1, form="Committee case study")
    ev.add("form_submit", 0.5, form="Committee case study")
    assert text(ev)[0] == (
        "downloaded 'Scoring guide' ×2; downloaded 'ABM whitepaper'; "
        "downloaded 'Intent datasheet'; …and 1 more (product capped at 60)"
    )
    # the text reads only the form: other attributes that differ change nothing
    other = Events()
    other.add("form_submit", 9, form="Scoring guide", page="/a")
    other.add("form_submit", 5, form="Scoring guide", page="/b")
    assert text(other) == same
    # a value the template cannot hash (a list) is compared by its text
    odd = Events()
    odd.add("form_submit", 9, form=["guide", "b"])
    odd.add("form_submit", 5, form=["guide", "b"])
    odd.add("form_submit", 4, form="Scoring guide")
    assert text(odd)[0] == "downloaded '['guide', 'b']' ×2; downloaded 'Scoring guide'"
    # tiered: the labels count the events, the webinars are named once each
    web = Events()
    web.add("webinar_attended", 9, name="Scoring 101", watched_share=0.95)
    web.add("webinar_attended", 5, name="Scoring 101", watched_share=0.2)
    assert text(web, "webinar_attended")[0] == "watched webinar 'Scoring 101' (full, part)"
    web.add("webinar_attended", 3, name="ABM in practice", watched_share=0.3)
    assert text(web, "webinar_attended")[0] == (
        "watched webinar 'Scoring 101'; watched webinar 'ABM in practice' (full, part ×2)"
    )


def _fields(c: Contact) -> dict[str, Any]:
    return {f: getattr(c, f) for f in c.__slots__}  # type: ignore[attr-defined]


def test_recycled_lead_goes_back_and_can_become_mql_again() -> None:
    sql = Contact(
        "1",
        email="dana@acme-analytics.com",
        job_title="VP Marketing",
        lifecycle_stage="salesqualifiedlead",
        lead_status="UNQUALIFIED",
    )
    ev = worked_example()
    r = score(sql, ev.items, CORPORATE_ACME, MODEL, NOW)
    assert r.lifecycle.recycled is True
    assert r.lifecycle.target_stage == "lead"
    assert r.lifecycle.note == "recycled to lead: lead status UNQUALIFIED"
    # after the recycle, old engagement no longer counts ...
    recycled_at = NOW
    back = Contact(**{**_fields(sql), "lifecycle_stage": "lead", "recycled_at": recycled_at})
    later = NOW + timedelta(days=1)
    r2 = score(back, ev.items, CORPORATE_ACME, MODEL, later)
    assert r2.score == 0
    assert r2.lifecycle.recycled is False  # the status did not change since the recycle
    assert r2.lifecycle.target_stage is None
    # ... and new engagement after it makes an MQL again
    fresh = [
        Event(
            "test",
            "new-demo",
            "1",
            "form_submit",
            later - timedelta(hours=1),
            {"form": "Request a demo"},
        )
    ]
    r3 = score(back, ev.items + fresh, CORPORATE_ACME, MODEL, later)
    assert r3.score == 100
    assert r3.lifecycle.target_stage == "marketingqualifiedlead"


def test_duplicate_event_ids_count_once() -> None:
    ev = Events()
    e = ev.add("webinar_attended", 2, name="W", watched_share=0.6)
    r = score(dana(), [e, e, e], CORPORATE_ACME, MODEL, NOW)
    assert by_rule(r) == {"webinar_attended": 25}


def test_caps_per_rule_and_per_category() -> None:
    ev = Events()
    for i in range(9):
        ev.page(f"https://example.com/product/p{i}", 1 + i * 0.1)
    for i in range(30):
        ev.add("email_click", 2, campaign=f"c{i}")
    r = score(dana(), ev.items, CORPORATE_ACME, MODEL, NOW)
    rules = by_rule(r)
    assert rules == {"product_page": 60, "email_click": 15}  # one rule per category: folded
    texts = {x.rule: x.text for x in r.reasons}
    assert texts["product_page"] == "product page ×9 (product capped at 60)"
    assert r.engagement_points == 60 + 15
    # two rules in one capped category: the cap is its own reason, so reasons still add up
    ev.add("form_submit", 1, form="Download the scoring guide")
    r2 = score(dana(), ev.items, CORPORATE_ACME, MODEL, NOW)
    assert by_rule(r2) == {
        "product_page": 90,
        "product_guide": 15,
        "cap:product": -45,
        "email_click": 15,
    }
    assert r2.engagement_points == 75
    ev2 = Events()
    for i in range(3):
        ev2.add("email_unsubscribe", 1 + i)
    assert by_rule(score(dana(), ev2.items, CORPORATE_ACME, MODEL, NOW)) == {
        "email_unsubscribe": -20
    }


def test_events_in_the_future_do_not_count_until_they_happen() -> None:
    ev = Events()
    future = ev.add("webinar_attended", -2, name="Future", watched_share=1.0)
    r = score(dana(), ev.items, CORPORATE_ACME, MODEL, NOW)
    assert r.score == 0
    assert r.next_change_at == future.occurred_at


@pytest.mark.parametrize(
    ("title", "grade"),
    [
        ("VP Marketing", "A"),
        ("Marketing Manager", "B"),
        ("Account Executive", "B"),  # a sales rep: no decision-maker points
        ("Marketing Intern", "C"),
        ("Student", "D"),
        ("Looking for opportunities", "D"),
    ],
)
def test_grades_at_an_ideal_company(title: str, grade: str) -> None:
    c = Contact("1", email="x@acme-analytics.com", job_title=title, country="US")
    assert score(c, [], CORPORATE_ACME, MODEL, NOW).grade == grade


def test_free_mail_decision_maker_is_c_and_unknown_is_d() -> None:
    c = Contact("1", email="x@gmail.com", job_title="Marketing Director")
    assert score(c, [], GMAIL, MODEL, NOW).grade == "C"
    assert score(Contact("2"), [], None, MODEL, NOW).grade == "D"


def test_invalid_email_gives_a_reason_not_a_crash() -> None:
    c = Contact("1", email="not an email", job_title="CEO")
    r = score(c, [], Enrichment("invalid", None, None, error="no @ in 'not an email'"), MODEL, NOW)
    texts = [x.text for x in r.reasons]
    assert "e-mail not usable: no @ in 'not an email'" in texts
    assert r.grade == "D"  # 30 (title) + 10 (dept executive? no) - 30 invalid


def with_decay(tmp_path: Path, mode: str) -> LoadedModel:
    """The default model with decay `mode` (linear, half_life), beside its title rules."""
    src = Path(MODEL.path)
    text = src.read_text(encoding="utf-8").replace("mode: none", f"mode: {mode}")
    (tmp_path / "model.yaml").write_text(text)
    (tmp_path / "titles.yaml").write_text((src.parent / "titles.yaml").read_text())
    return load_model(tmp_path / "model.yaml")


def test_linear_decay_and_half_life(tmp_path: Path) -> None:
    linear = with_decay(tmp_path, "linear")
    ev = Events()
    ev.add("webinar_attended", 30, name="W", watched_share=1.0)
    r = score(dana(), ev.items, CORPORATE_ACME, linear, NOW)
    assert r.score == 25.0  # half the window gone, half the points
    assert r.next_change_at == NOW + timedelta(days=1)
    half = with_decay(tmp_path, "half_life")
    assert score(dana(), ev.items, CORPORATE_ACME, half, NOW).score == 25.0  # 30-day half-life


@pytest.mark.parametrize(
    ("form", "rule"),
    [
        ("Book a consultation", "consultation_request"),
        ("Schedule a consultation", "consultation_request"),
        ("Start free trial", "free_trial"),
        ("Create an account", "account_created"),
        ("Account sign-up", "account_created"),
        ("Book a demo", "demo_request"),
        ("Demos: book yours", "demo_request"),
        ("Talk to sales", "contact_us"),
        ("Get a quote", "quote_request"),
        ("Let's start a project", "start_project"),
    ],
)
def test_hand_raisers_in_any_wording_score_100_and_are_mql_at_once(form: str, rule: str) -> None:
    contact = Contact("2", email="riley@gmail.com", job_title="Freelance designer")
    ev = Events("2")
    ev.add("form_submit", 1, form=form, form_id="f-1")
    r = score(contact, ev.items, GMAIL, MODEL, NOW)
    assert by_rule(r) == {rule: 100}
    assert r.score == 100
    assert r.hand_raiser is True
    assert r.lifecycle.mql is True
    assert r.lifecycle.mql_reason == f"hand-raiser: {form}"


@pytest.mark.parametrize(
    ("form", "rules"),
    [
        ("Subscribe to newsletter", {"newsletter_signup": 2}),
        ("Download the guide", {"product_guide": 15}),
        # whole words only: none of these is a hand-raise
        ("Industrial IoT whitepaper", {"product_guide": 15}),
        ("Demographics report", {}),
        ("Contactless payments datasheet", {"product_guide": 15}),
        ("Account settings", {}),
    ],
)
def test_forms_that_are_not_hand_raisers_stay_below_mql(form: str, rules: dict[str, int]) -> None:
    contact = Contact("2", email="riley@gmail.com", job_title="Freelance designer")
    ev = Events("2")
    ev.add("form_submit", 1, form=form, form_id="f-1")
    r = score(contact, ev.items, GMAIL, MODEL, NOW)
    assert by_rule(r) == rules
    assert r.hand_raiser is False
    assert r.lifecycle.mql is False


@pytest.mark.parametrize(
    ("form", "rules"),
    [
        ("Newsletter signup", {"newsletter_signup": 2}),
        ("Subscribe to the blog", {"newsletter_signup": 2}),
        ("Unsubscribe from the newsletter", {}),  # leaving is no sign-up
        ("Newsletter opt-out", {}),
        ("Case studies", {"product_guide": 15}),
        ("Guidelines for authors", {}),  # not a guide
    ],
)
def test_content_forms_match_whole_words(form: str, rules: dict[str, int]) -> None:
    ev = Events("2")
    ev.add("form_submit", 1, form=form, form_id="f-1")
    r = score(Contact("2", email="riley@gmail.com"), ev.items, GMAIL, MODEL, NOW)
    assert by_rule(r) == rules


def test_a_score_short_of_a_bar_never_reads_as_it_in_the_crm(tmp_path: Path) -> None:
    """Two full webinars, one of them 0.48 days old under linear decay: 99.6 points, no MQL
    at 100. The CRM's whole-number score read "100" (rounded to the nearest) and the
    priority A1 (the band of 100+): a rep saw 100 and no MQL. Rounded down, it reads 99 and
    A2; at 100 points, 100, A1 and an MQL."""
    from connector.pipeline.named import named_properties
    from connector.pipeline.plan import desired_properties

    linear = with_decay(tmp_path, "linear")
    got = {}
    for age in (0.48, 0.0):
        ev = Events()
        ev.add("webinar_attended", age, name="W", watched_share=1.0)
        ev.add("webinar_attended", 0, name="X", watched_share=1.0)
        r = score(dana(), ev.items, CORPORATE_ACME, linear, NOW)
        shown = desired_properties(r)
        got[r.score] = (r.lifecycle.mql, shown["score"], shown["priority"], r.priority)
    assert got == {99.6: (False, "99", "A2", "A2"), 100.0: (True, "100", "A1", "A1")}
    named = load_model(Path(MODEL.path).parent / "two_products.yaml").named[0]
    short = replace(r, score=99.6)
    assert named_properties(named, short)[named.key("score")] == "99"
    # a bar that is no whole number reads as written: qualified at 59.7 of 59.6 said
    # "qualified (60+)" (rounded) beside a score of 59
    for threshold, written in ((59.6, "59.6"), (59.65, "59.65"), (60.0, "60")):
        bar = replace(named, threshold=threshold)
        got59 = named_properties(bar, replace(r, score=59.7))
        assert got59[named.key("score")] == "59"
        assert got59[named.key("reasons")].startswith(f"qualified ({written}+); ") == (
            threshold <= 59.7
        )


def test_the_terminal_shows_a_score_short_of_a_bar_under_it(tmp_path: Path) -> None:
    """99.96 points (a full webinar 0.048 days old under linear decay): the CRM reads 99, and
    the demo's table, `explain` and the score's history read 99.9. Rounded to the nearest
    tenth they read "100.0" on a contact that is no MQL at 100."""
    from rich.console import Console

    from connector.explain import history_lines
    from connector.pipeline.plan import desired_properties
    from connector.views import print_explanation, scores_table

    ev = Events()
    ev.add("webinar_attended", 0.048, name="W", watched_share=1.0)
    ev.add("webinar_attended", 0, name="X", watched_share=1.0)
    r = score(dana(), ev.items, CORPORATE_ACME, with_decay(tmp_path, "linear"), NOW)
    assert (r.score, r.lifecycle.mql, desired_properties(r)["score"]) == (99.96, False, "99")
    console = Console(record=True, width=300)
    console.print(scores_table([(dana(), r)]))
    print_explanation(console, dana(), r, ev.items)
    lines = history_lines([{"scored_at": NOW, "model_version": "v1", "score": r.score,
                            "grade": r.grade, "mql": 0}])  # fmt: skip
    text = console.export_text()
    row = next(line for line in text.splitlines() if "dana.whitfield@" in line and "│" in line)
    cells = [c.strip() for c in row.split("│")[1:-1]]
    assert cells[1:4] == ["A", "A2", "99.9"]  # grade, priority, score
    assert cells[6].startswith("+99.9 watched webinar 'W'")  # the CRM's reasons text too
    assert "score 99.9 (engagement 99.9)" in text
    assert "100.0" not in text and "100.0" not in lines[0]
    assert lines[0].startswith("first scored 99.9 (grade")


def test_the_rescore_previews_mean_change_rounds_down() -> None:
    """`rescore --dry-run`'s "mean" read `round(delta, 1)`: +99.96 on average printed +100."""
    from rich.console import Console

    from connector.ops.rescore import RescorePreview
    from connector.ops.views import print_preview

    p = RescorePreview("hubspot", NOW, "v2", "abc", delta_sum=199.92, delta_n=2)
    console = Console(record=True, width=200)
    print_preview(console, p, dry_run=True)
    assert "score change over 2 scored contact(s): mean +99.9\n" in console.export_text()


@given(st.integers(min_value=-1_000_000, max_value=1_000_000).map(lambda c: c / 100))
def test_a_shown_number_is_the_value_rounded_down_to_a_tenth(v: float) -> None:
    from connector.types import shown_num

    got = shown_num(v)
    assert float(got) <= v < float(got) + 0.1
    assert got == str(int(v)) if v == int(v) else got == f"{float(got):.1f}"


@given(
    points=st.integers(min_value=-100_000, max_value=100_000).map(lambda c: c / 100),
    bar=st.integers(min_value=-200, max_value=400),
)
def test_the_crm_score_reaches_a_whole_bar_only_with_the_score(points: float, bar: int) -> None:
    from connector.types import crm_score

    assert (int(crm_score(points)) >= bar) == (points >= bar)
    assert int(crm_score(points)) <= points < int(crm_score(points)) + 1
