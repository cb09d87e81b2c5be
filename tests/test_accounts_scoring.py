"""Account scoring core: fit grade, capped roll-up, breadth, committee, account rules, MQA."""

from __future__ import annotations

import dataclasses
import functools
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from connector.model.loader import LoadedModel, load_model, validate_model_file
from connector.model.schema import AccountForce
from connector.pipeline.plan import desired_properties
from connector.scoring.accounts import (
    CompiledAccounts,
    apply_account_mql,
    compile_accounts,
    score_account,
)
from connector.types import (
    MQL,
    Account,
    AccountMember,
    AccountResult,
    Company,
    Contact,
    LifecycleDecision,
    ScoreResult,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DAY = 86400.0


def _ts(days_ago: float) -> float:
    return (NOW - timedelta(days=days_ago)).timestamp()


def _member(
    cid: str,
    name: str,
    seniority: str,
    points: float,
    hits: list[tuple[str, float]],
    title: str | None = None,
    grade: str = "B",
) -> AccountMember:
    return AccountMember(cid, name, title, seniority, grade, points, tuple(hits))


ACME = Account(
    "company:9001",
    Company(
        domain="acme-analytics.com",
        name="Acme Analytics",
        industry="computer software",
        employee_count=850,
        annual_revenue_usd=120_000_000,
        country="US",
    ),
    crm_id="9001",
)


@functools.cache
def _default_ca() -> CompiledAccounts:  # the default model's accounts section
    loaded = load_model()
    assert loaded.model.accounts is not None
    return compile_accounts(loaded, loaded.target_accounts)


@pytest.fixture(scope="module")
def ca() -> CompiledAccounts:
    return _default_ca()


def test_default_model_loads_target_accounts_into_the_fingerprint() -> None:
    loaded = load_model()
    assert "acme-analytics.com" in loaded.target_accounts


def test_fit_grade_from_firmographics_and_target_list(ca: CompiledAccounts) -> None:
    r = score_account(ca, ACME, [], NOW)
    # target 30 + size 20 + industry 15 + revenue 10 + country 5
    assert r.fit_points == 80
    assert r.grade == "A"
    texts = [x.text for x in r.reasons if x.kind == "fit"]
    assert "+30 target account (on the target-account list)" in texts
    assert "+20 company size 51-5,000 (850 employees)" in texts
    assert texts[-1] == "account grade A: target account, company size 51-5,000"
    assert r.score == 0 and not r.mqa and r.engaged_contacts == ()


def test_buying_committee_makes_an_mqa_where_no_single_person_is_hot(ca: CompiledAccounts) -> None:
    members = [
        _member("1", "Dana Whitfield", "vp", 45, [("product_page", _ts(3))], "VP Marketing"),
        _member("2", "Robin Hale", "manager", 40, [("product_page", _ts(5))], "Marketing Mgr"),
        _member("3", "Rowan Okafor", "individual", 20, [("email_click", _ts(10))], "Analyst"),
        _member("4", "Sam Lurker", "individual", 0, []),
    ]
    r = score_account(ca, ACME, members, NOW)
    # roll-up 45+40+20 = 105; breadth 3 people (>= 10 points) -> 30; committee 3 roles -> 20;
    # pricing/product by 2 people within 7 days -> 25
    assert r.engagement_points == 105
    assert r.score == 180
    assert r.mqa and r.mqa_reason == "score 180 ≥ 100, grade A, 3 people engaged"
    assert r.engaged_contacts == ("1", "2", "3")
    assert r.members == 4
    by_rule = {x.rule: x for x in r.reasons}
    assert by_rule["breadth"].points == 30
    assert by_rule["breadth"].text == (
        "3 people engaged in 30 days: Dana Whitfield (VP Marketing), "
        "Robin Hale (Marketing Mgr), Rowan Okafor (Analyst)"
    )
    assert by_rule["committee"].text == (
        "buying committee, 3 roles: decision maker (Dana Whitfield); "
        "champion (Robin Hale); practitioner (Rowan Okafor)"
    )
    assert by_rule["pricing_together"].text == (
        "pricing or product pages by 2+ people within 7 days: Dana Whitfield, Robin Hale"
    )
    assert by_rule["pricing_together"].event_ids == ("contact:1", "contact:2")
    assert r.top_reasons().startswith("+105 engagement of 3 people (at most 50 each)")
    # the breadth window ends 30 days after the oldest counted person's last event
    assert r.next_change_at == NOW - timedelta(days=10) + timedelta(days=30)


def test_per_contact_cap_stops_one_noisy_contact(ca: CompiledAccounts) -> None:
    intern = _member("9", "Noisy Intern", "entry", 400, [("product_page", _ts(1))] * 40)
    r = score_account(ca, ACME, [intern], NOW)
    assert r.engagement_points == 50  # capped
    assert r.score == 50  # one person: no breadth, no committee, no account rule
    assert not r.mqa
    rollup = next(x for x in r.reasons if x.rule == "member_engagement")
    assert rollup.text == "engagement of 1 person (at most 50 each): Noisy Intern +50 (of 400)"


def test_account_rule_needs_people_within_the_span(ca: CompiledAccounts) -> None:
    far_apart = [
        _member("1", "A", "vp", 10, [("product_page", _ts(20))]),
        _member("2", "B", "manager", 10, [("product_page", _ts(5))]),
    ]
    r = score_account(ca, ACME, far_apart, NOW)
    assert "pricing_together" not in {x.rule for x in r.reasons}
    close = [
        _member("1", "A", "vp", 10, [("product_page", _ts(20)), ("pricing_repeat", _ts(9))]),
        _member("2", "B", "manager", 10, [("product_page", _ts(5))]),
    ]
    r = score_account(ca, ACME, close, NOW)
    assert "pricing_together" in {x.rule for x in r.reasons}


def _rule_people_by_brute_force(
    members: list[AccountMember], rules: set[str], people: int, span: float
) -> tuple[str, ...]:
    """What an account rule names, read off its definition: of the spans of `span` seconds
    that end at a hit (up to now) of `rules`, the most recent one with `people` distinct
    members, its members most engaged first; () when none."""
    now = NOW.timestamp()
    hits = [(t, m) for m in members for r, t in m.hits if r in rules and t <= now]
    for end in sorted({t for t, _ in hits}, reverse=True):
        inside = {m.contact_id: m for t, m in hits if end - span <= t <= end}
        if len(inside) >= people:
            ranked = sorted(inside.values(), key=lambda m: (-m.engagement_points, m.contact_id))
            return tuple(f"contact:{m.contact_id}" for m in ranked)
    return ()


_hit_rules = st.sampled_from(["pricing_repeat", "product_page", "webinar_attended"])


@settings(max_examples=300, deadline=None)
# the latest hit alone in its span; the span before holds two people, one exactly 7 days
# before the other (a span holds both its ends)
@example(
    [(10, [("product_page", 240)]), (10, [("product_page", 408)]), (10, [("pricing_repeat", 24)])]
)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=-20, max_value=60),  # points
            # hit times: whole days and hours ago (ties are common), some in the future
            st.lists(
                st.tuples(_hit_rules, st.integers(min_value=-48, max_value=24 * 40)),
                max_size=6,
            ),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_account_rule_names_the_most_recent_span_with_enough_people(
    drawn: list[tuple[int, list[tuple[str, int]]]],
) -> None:
    """The account rule (2+ people by pricing or product pages within 7 days) names exactly
    the people of the most recent such span, whatever the hits' order, ties and members'
    points, as a brute-force reading of its definition does (the pass finds the span ending
    at the latest hit without a sort, the others by one sort of the hits by time)."""
    ca = _default_ca()
    members = [
        _member(
            str(k), f"P{k}", "manager", points, [(r, NOW.timestamp() - h * 3600) for r, h in hits]
        )
        for k, (points, hits) in enumerate(drawn)
    ]
    r = score_account(ca, ACME, members, NOW)
    fired = next((x.event_ids for x in r.reasons if x.rule == "pricing_together"), ())
    assert fired == _rule_people_by_brute_force(
        members, {"pricing_repeat", "product_page"}, 2, 7 * DAY
    )


def test_old_engagement_counts_in_the_rollup_but_not_in_breadth(ca: CompiledAccounts) -> None:
    members = [
        _member("1", "A", "vp", 30, [("webinar_attended", _ts(45))]),
        _member("2", "B", "manager", 30, [("webinar_attended", _ts(40))]),
    ]
    r = score_account(ca, ACME, members, NOW)
    assert r.engagement_points == 60
    assert {x.rule for x in r.reasons} == {"member_engagement"} | {
        x.rule for x in r.reasons if x.kind == "fit"
    }
    assert r.next_change_at is None


def test_large_account_counts_top_contacts_and_stays_linear(ca: CompiledAccounts) -> None:
    members = [
        _member(str(i), f"P{i}", "individual", 10 + i % 7, [("product_page", _ts(i % 25))])
        for i in range(5000)
    ]
    start = time.perf_counter()
    r = score_account(ca, ACME, members, NOW)
    elapsed = time.perf_counter() - start
    assert r.engagement_points == 160  # the 10 most engaged, 16 points each
    assert len(r.engaged_contacts) == 5000
    rollup = next(x for x in r.reasons if x.rule == "member_engagement")
    assert rollup.text.endswith("…and 6 more (top 10 of 5000 engaged)")
    assert elapsed < 2.0  # linear; a quadratic pass over 5,000 members would take minutes


def test_contact_at_an_mqa_becomes_mql_at_the_lower_bar(ca: CompiledAccounts) -> None:
    loaded = load_model()
    members = [
        _member("1", "Dana", "vp", 50, [("product_page", _ts(1))]),
        _member("2", "Robin", "manager", 50, [("product_page", _ts(2))]),
        _member("3", "Rowan", "individual", 20, [("email_click", _ts(3))]),
    ]
    acct = score_account(ca, ACME, members, NOW)
    assert acct.mqa
    contact = Contact("2", email="robin@acme-analytics.com", lifecycle_stage="lead")
    base = ScoreResult(
        "2",
        65,
        65,
        60,
        "B",
        LifecycleDecision("lead", None, False, None),
        False,
        "v",
        "f",
        NOW,
        None,
    )
    got = apply_account_mql(contact, base, acct, ca, loaded.model.lifecycle)
    assert got.lifecycle.mql and got.lifecycle.target_stage == MQL
    assert got.lifecycle.mql_reason == "account MQA: company:9001 (score 65 ≥ 60 at an MQA)"
    # grade C, below the lower bar, or already past MQL: unchanged
    for other in (
        ScoreResult("2", 65, 65, 30, "C", base.lifecycle, False, "v", "f", NOW, None),
        ScoreResult("2", 59, 59, 60, "B", base.lifecycle, False, "v", "f", NOW, None),
        ScoreResult(
            "2",
            65,
            65,
            60,
            "B",
            LifecycleDecision("salesqualifiedlead", None, False, None),
            False,
            "v",
            "f",
            NOW,
            None,
        ),
    ):
        assert apply_account_mql(contact, other, acct, ca, loaded.model.lifecycle) is other


def test_a_verdicts_reason_shows_the_score_as_the_crm_does(ca: CompiledAccounts) -> None:
    """Decay moves a contact at an MQA from 64.94 to 64.86 points and its account by as
    little: the MQL reason and the MQA reason name the score as the score properties show it
    (64, rounded down; the account's too), so neither reason, nor what is written, changes (before:
    "score 64.9 ≥ 60", one more write of an unchanged verdict at each decay step that moved
    the first decimal)."""
    loaded = load_model()

    def account(rowan: float) -> AccountResult:
        return score_account(ca, ACME, [
            _member("1", "Dana", "vp", 50, [("product_page", _ts(1))]),
            _member("2", "Robin", "manager", 50, [("product_page", _ts(2))]),
            _member("3", "Rowan", "individual", rowan, [("email_click", _ts(3))]),
        ], NOW)  # fmt: skip

    before, after = account(19.74), account(19.66)
    assert (before.score, after.score) == (194.74, 194.66)
    assert before.mqa_reason == after.mqa_reason == "score 194 ≥ 100, grade A, 3 people engaged"
    contact = Contact("2", email="robin@acme-analytics.com", lifecycle_stage="lead")
    planned = []
    for score in (64.94, 64.86):
        base = ScoreResult(
            "2", score, score, 60, "B", LifecycleDecision("lead", None, False, None), False,
            "v", "f", NOW, None,
        )  # fmt: skip
        got = apply_account_mql(contact, base, before, ca, loaded.model.lifecycle)
        assert got.lifecycle.mql_reason == "account MQA: company:9001 (score 64 ≥ 60 at an MQA)"
        planned.append(desired_properties(got))
    assert planned[0] == planned[1] and planned[0]["score"] == "64"
    # an account short of a bar never reads as it, on its company or on its contacts
    from connector.account_stage import AccountStage, _contact_values

    short = dataclasses.replace(before, score=99.6)
    assert _contact_values(short)["account_score"] == "99"
    assert AccountStage.company_changes(cast(Any, None), short)["account_score"] == "99"


def test_validation_names_unknown_account_fields_and_rules(tmp_path: Path) -> None:
    text = (Path(load_model().path)).read_text(encoding="utf-8")
    (tmp_path / "titles.yaml").write_text(
        (Path(load_model().path).parent / "titles.yaml").read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    (tmp_path / "target_accounts.txt").write_text("acme.com\nnot a domain\n", encoding="utf-8")
    bad = text.replace("when: {target_account: true}", "when: {target_acount: true}").replace(
        "rules: [pricing_repeat, product_page]", "rules: [pricing_repeat, product_pgae]"
    )
    (tmp_path / "model.yaml").write_text(bad, encoding="utf-8")
    loaded, problems = validate_model_file(tmp_path / "model.yaml")
    assert loaded is None
    joined = "\n".join(problems)
    assert "unknown account field(s) target_acount" in joined
    assert (
        "(rule pricing_together): accounts.engagement.rules[0].rules[1]: unknown engagement "
        "rule 'product_pgae' (did you mean 'product_page'?)"
    ) in joined
    assert "target_accounts.txt:2: not a domain: 'not a domain'" in joined


@pytest.mark.parametrize("days", ["1e9", ".inf"])
def test_breadth_window_past_any_date_scores_and_never_changes(tmp_path: Path, days: str) -> None:
    """A breadth window longer than any date (a model's "forever") counts every engaged
    member with a past event and gives no next change (the end of the window is past year
    9999), rather than failing the account; a member with only future events stays out."""
    model = Path(load_model().path)
    for name in ("titles.yaml", "target_accounts.txt"):
        (tmp_path / name).write_text((model.parent / name).read_text(encoding="utf-8"))
    text = model.read_text(encoding="utf-8")
    assert text.count("      within_days: 30\n      min_points: 10") == 1
    text = text.replace("      within_days: 30\n", f"      within_days: {days}\n")
    (tmp_path / "model.yaml").write_text(text, encoding="utf-8")
    loaded, problems = validate_model_file(tmp_path / "model.yaml")
    assert loaded is not None, problems
    ca = compile_accounts(loaded)
    members = [
        _member("1", "Old Timer", "vp", 20, [("webinar", _ts(4000))]),
        _member("2", "Recent Reader", "manager", 20, [("webinar", _ts(1))]),
        _member("3", "Future Only", "individual", 20, [("webinar", _ts(-3))]),
    ]
    r = score_account(ca, ACME, members, NOW)
    breadth = next(x for x in r.reasons if x.rule == "breadth")
    assert breadth.points == 15
    assert breadth.event_ids == ("contact:1", "contact:2")
    assert r.next_change_at is None


# a vendor's company (config/model.yaml `lists.vendors`), the size, industry, revenue and
# country of Acme: grade B (50 fit points) on its firmographics
VENDOR = Account(
    "company:9100",
    Company(
        domain="cloudhostco.com",
        name="CloudHost Co",
        industry="computer software",
        employee_count=850,
        annual_revenue_usd=120_000_000,
        country="US",
    ),
    crm_id="9100",
)
COMMITTEE = [
    _member("1", "Dana Whitfield", "vp", 45, [("product_page", _ts(3))], "VP Marketing"),
    _member("2", "Robin Hale", "manager", 40, [("product_page", _ts(5))], "Marketing Mgr"),
    _member("3", "Rowan Okafor", "individual", 20, [("email_click", _ts(10))], "Analyst"),
]


def _with_force(loaded: LoadedModel, *force: dict[str, object]) -> CompiledAccounts:
    """The default model's accounts section with these `fit.force` rules instead of its own."""
    accounts = loaded.model.accounts
    assert accounts is not None
    rules = [AccountForce.model_validate(f) for f in force]
    fit = accounts.fit.model_copy(update={"force": rules})
    model = loaded.model.model_copy(update={"accounts": accounts.model_copy(update={"fit": fit})})
    return compile_accounts(dataclasses.replace(loaded, model=model), loaded.target_accounts)


def test_a_vendor_account_keeps_its_points_but_is_forced_to_d_and_never_an_mqa(
    ca: CompiledAccounts,
) -> None:
    """Three engaged people at a vendor's company: an MQA on its points and grade B, but the
    default model's account force rule makes it grade D and blocks it from MQA; every point
    is still explained."""
    without = score_account(_with_force(load_model()), VENDOR, COMMITTEE, NOW)
    assert (without.score, without.grade, without.mqa) == (180, "B", True)
    assert without.mqa_reason == "score 180 ≥ 100, grade B, 3 people engaged"

    r = score_account(ca, VENDOR, COMMITTEE, NOW)
    # roll-up 45+40+20 = 105; breadth 30; committee 20; pricing/product by 2 people 25
    assert (r.score, r.engagement_points, r.fit_points) == (180, 105, 50)
    assert r.grade == "D"
    assert not r.mqa and r.mqa_reason is None
    assert r.engaged_contacts == ("1", "2", "3")
    assert [(x.rule, x.points, x.text) for x in r.reasons if x.kind == "fit"] == [
        ("account_size_midmarket", 20, "+20 company size 51-5,000 (850 employees)"),
        ("account_industry", 15, "+15 target industry (industry computer software)"),
        ("account_revenue", 10, "+10 revenue of $10M or more (revenue $120M)"),
        ("account_country", 5, "+5 target country (country US)"),
        (
            "account_vendor",
            0,
            "grade D forced: vendor domain (domain cloudhostco.com); blocked from MQA",
        ),
        ("grade", 50, "account grade D: vendor domain"),
    ]
    # the engagement reasons: those of the account without the rule
    assert [x for x in r.reasons if x.kind != "fit"] == [
        x for x in without.reasons if x.kind != "fit"
    ]
    assert [x.rule for x in r.reasons if x.kind != "fit"] == [
        "member_engagement",
        "breadth",
        "committee",
        "pricing_together",
    ]


def test_a_force_rule_lowers_the_grade_only_and_block_mqa_holds_at_any_grade() -> None:
    """A forced grade applies where it is worse than the fit points' grade (as a contact's);
    `block_mqa` blocks an account whatever its grade; without it the account may be an MQA."""
    loaded = load_model()
    lower = _with_force(
        loaded, {"name": "reseller", "when": {"name": {"glob": "acme*"}}, "grade": "B"}
    )
    r = score_account(lower, ACME, COMMITTEE, NOW)
    assert (r.fit_points, r.grade, r.mqa) == (80, "B", True)  # A on its points, forced B
    assert r.mqa_reason == "score 180 ≥ 100, grade B, 3 people engaged"
    fit = [x.text for x in r.reasons if x.kind == "fit"]
    assert fit[-2:] == [
        "grade B forced: reseller (name Acme Analytics)",
        "account grade B: reseller",
    ]
    block = _with_force(
        loaded,
        {"name": "partner", "when": {"domain": "acme-analytics.com"}, "grade": "A",
         "block_mqa": True, "description": "partner"},
    )  # fmt: skip
    r = score_account(block, ACME, COMMITTEE, NOW)
    assert (r.score, r.grade, r.mqa, r.mqa_reason) == (180, "A", False, None)
    assert [x.text for x in r.reasons if x.rule == "partner"] == [
        "grade A forced: partner (domain acme-analytics.com); blocked from MQA"
    ]
    # a forced B on an account graded D on its points: D stays (the worse grade wins)
    nothing = Account("company:1", Company("", name="Acme Nothing"), crm_id="1")
    r = score_account(lower, nothing, [], NOW)
    assert (r.fit_points, r.grade) == (0, "D")


def test_validation_names_bad_account_force_rules(tmp_path: Path) -> None:
    """An account force rule is checked as a contact's: unknown keys (with a "did you mean"),
    fields the account has not, a grade that is none, lists the model has not (and an
    account fit rule's unknown list too, which once passed and failed the sync)."""
    (tmp_path / "model.yaml").write_text(
        """version: "x"
title_rules: null
lists: {vendors: [cloudhostco.com]}
accounts:
  fit:
    rules:
      - {name: size, when: {industry: {in_list: industries}}, points: 10}
    force:
      - {name: vendor, when: {domain: {in_list: vendor}}, grade: D, block_mqa: true}
      - {name: typo, when: {domian: x.com}, grade: E, block_mql: true}
""",
        encoding="utf-8",
    )
    loaded, problems = validate_model_file(tmp_path / "model.yaml")
    assert loaded is None
    assert problems == [
        "line 10 (rule typo): accounts.fit.force[1].when: unknown account field(s) domian; "
        "known: employee_count, annual_revenue_usd, industry, industry_group, country, domain, "
        "name, target_account",
        "line 10 (rule typo): accounts.fit.force[1].grade: Input should be 'A', 'B', 'C' or 'D'",
        "line 10 (rule typo): accounts.fit.force[1].block_mql: unknown key (did you mean "
        "'block_mqa'?)",
        "line 7 (rule size): accounts.fit.rules[0].when.industry.in_list: unknown list "
        "'industries'",
        "line 9 (rule vendor): accounts.fit.force[0].when.domain.in_list: unknown list 'vendor' "
        "(did you mean 'vendors'?)",
    ]
    (tmp_path / "model.yaml").write_text(
        """version: "x"
title_rules: null
accounts:
  fit:
    rules:
      - {name: vendor, when: {country: US}, points: 5}
    force:
      - {name: vendor, when: {country: US}}
""",
        encoding="utf-8",
    )
    loaded, problems = validate_model_file(tmp_path / "model.yaml")
    assert loaded is None
    assert problems == ["line 3: accounts: duplicate account rule name(s): vendor"]
