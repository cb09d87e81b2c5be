"""Pydantic schema of the scoring model file (config/model.yaml).

Every number of the scoring lives in the file; this module only says what a valid file is.
Unknown keys are errors (a typo must never silently turn a rule off).
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connector.model.problems import Loc, Problem, did_you_mean

GRADES = ("A", "B", "C", "D")
Grade = Literal["A", "B", "C", "D"]
GradeABC = Literal["A", "B", "C"]


def _default_grades() -> dict[GradeABC, int]:
    return {"A": 80, "B": 55, "C": 25}


def _default_score_points() -> dict[Grade, int]:
    return {"A": 25, "B": 15, "C": 5, "D": 0}


def _default_mql_grades() -> list[Grade]:
    return ["A", "B", "C"]


def _grades_descend(v: dict[str, int]) -> dict[str, int]:
    """A grade section's minimums: one each for A, B and C, descending."""
    a, b, c = (v.get(g) for g in ("A", "B", "C"))
    if a is None or b is None or c is None:
        raise ValueError("grades must give a minimum for A, B and C")
    if not a > b > c:
        raise ValueError(f"grade minimums must descend A > B > C, got A={a} B={b} C={c}")
    return v


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Strict):
    """How one field is matched. Several keys in one Match must all hold.

    - `any`: the value equals one of these (case-insensitive for text)
    - `glob`: shell-style pattern, case-insensitive (`*/pricing*`)
    - `regex`: Python regular expression (searched, case-insensitive)
    - `words`: groups of words or phrases; every group must have one of its entries in the text
      as a whole word, in any order, case-insensitive, a plural `s` and hyphens or spaces
      between a phrase's words allowed: `[[book, schedule], [demo, consultation]]` matches
      "Schedule a consultation" and "Demos: book yours", not "Demographics booklet"
    - `in_list` / `not_in_list`: one of the model's named `lists` (globs or plain values)
    - `min` / `max`: numeric range, inclusive
    - `exists`: the field is present and not empty (or absent, when false)
    - `not`: the nested match must fail
    """

    any: list[str | int | float] | None = None
    glob: str | None = None
    regex: str | None = None
    words: list[list[str]] | None = None
    in_list: str | None = None
    not_in_list: str | None = None
    min: float | None = None
    max: float | None = None
    exists: bool | None = None
    not_: Match | None = Field(default=None, alias="not")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, v: str | None) -> str | None:
        if v is not None:
            import re

            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"invalid regular expression ({exc})") from exc
        return v

    @field_validator("words")
    @classmethod
    def _groups(cls, v: list[list[str]] | None) -> list[list[str]] | None:
        if v is not None:
            if not v:
                raise ValueError("words needs at least one group")
            for group in v:
                if not group or any(not w.split() for w in group):
                    raise ValueError("every words group needs at least one non-empty word")
        return v

    @model_validator(mode="after")
    def _not_empty(self) -> Match:
        if not self.model_fields_set:
            raise ValueError("a match needs one of any/glob/regex/words/in_list/min/max/...")
        return self


# In YAML a condition value may be a plain scalar (equality), a list (any of) or a Match.
MatchValue = str | int | float | bool | list[str | int | float] | Match
Conditions = dict[str, MatchValue]


class NamedWhen(_Strict):
    name: str
    when: Conditions
    description: str | None = None


class FitRule(_Strict):
    """Profile points. Fields: title, seniority, department, title_rule, employee_count,
    annual_revenue_usd, industry, industry_group, country, email_kind, domain, company_source."""

    name: str
    when: Conditions
    points: int
    description: str | None = None


class ForceGrade(_Strict):
    """A condition that forces a grade (competitor, vendor, student, job seeker → D).

    `when` may also test `fired` (names of engagement rules that fired)."""

    name: str
    when: Conditions
    grade: Literal["A", "B", "C", "D"] = "D"
    block_mql: bool = False
    description: str | None = None


class Fit(_Strict):
    rules: list[FitRule] = Field(default_factory=list)
    grades: dict[GradeABC, int] = Field(
        default_factory=_default_grades,
        description="Minimum fit points for each grade; below C's minimum is D.",
    )
    force: list[ForceGrade] = Field(default_factory=list)
    add_to_score: bool = False
    score_points: dict[Grade, int] = Field(
        default_factory=_default_score_points,
        description="Base points added to the score per grade when add_to_score is true.",
    )

    @field_validator("grades")
    @classmethod
    def _descend(cls, v: dict[str, int]) -> dict[str, int]:
        return _grades_descend(v)


class Tier(_Strict):
    when: Conditions = Field(default_factory=dict)
    points: int
    label: str


class Frequency(_Strict):
    """The rule fires once when its matching events show a pattern.

    - `count`: at least N matching events (within `within_days`, else the discovery window)
    - `distinct_days`: matching events on at least K distinct UTC days within `within_days`
    """

    count: int | None = Field(default=None, ge=1)
    distinct_days: int | None = Field(default=None, ge=1)
    within_days: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_kind(self) -> Frequency:
        if (self.count is None) == (self.distinct_days is None):
            raise ValueError("a frequency needs exactly one of count or distinct_days")
        return self


class EngagementRule(_Strict):
    name: str
    category: str
    event: str | list[str]
    when: Conditions = Field(default_factory=dict)
    points: int | None = None
    tiers: list[Tier] | None = None
    frequency: Frequency | None = None
    cap: int | None = Field(default=None, ge=0, description="Max |points| this rule gives in all.")
    hand_raiser: bool = False
    sales_signal: bool = False
    description: str = Field(
        default="",
        description="Reason text; {field} placeholders take the first event's attributes.",
    )

    @model_validator(mode="after")
    def _points_or_tiers(self) -> EngagementRule:
        if (self.points is None) == (self.tiers is None):
            raise ValueError("a rule needs exactly one of points or tiers")
        if self.tiers is not None and self.frequency is not None:
            raise ValueError("tiers apply per event; a frequency rule takes points")
        return self

    @property
    def event_types(self) -> tuple[str, ...]:
        return (self.event,) if isinstance(self.event, str) else tuple(self.event)


class Category(_Strict):
    cap: int | None = Field(default=None, ge=0, description="Max |points| of the category.")
    description: str | None = None


class Decay(_Strict):
    mode: Literal["none", "linear", "half_life"] = "none"
    half_life_days: float = Field(default=30.0, gt=0)
    negative_decays: bool = Field(
        default=False,
        description="Negative points stay until removed by hand (an unsubscribe is a state).",
    )
    step_days: float = Field(
        default=1.0, gt=0, description="How often a decaying score is due for a rescore."
    )


class Engagement(_Strict):
    window_days: float = Field(default=60, gt=0)
    decay: Decay = Field(default_factory=Decay)
    categories: dict[str, Category] = Field(default_factory=dict)
    rules: list[EngagementRule] = Field(default_factory=list)


class MqlPolicy(_Strict):
    threshold: float = 100
    grades: list[Grade] = Field(default_factory=_default_mql_grades)


class SqlSignal(_Strict):
    """Sales-owned signals that make an SQL. Points never do."""

    lead_status: list[str] = Field(default_factory=list)
    events: list[str] = Field(
        default_factory=list, description="Engagement rules marked sales_signal, by name."
    )


class RecyclePolicy(_Strict):
    enabled: bool = False
    lead_status: list[str] = Field(default_factory=list)
    from_stages: list[str] = Field(
        default_factory=lambda: ["marketingqualifiedlead", "salesqualifiedlead"]
    )
    to_stage: str = "lead"


class Lifecycle(_Strict):
    mql: MqlPolicy = Field(default_factory=MqlPolicy)
    sql: SqlSignal = Field(default_factory=SqlSignal)
    recycle: RecyclePolicy = Field(default_factory=RecyclePolicy)
    write_stage: bool = True
    initial_stage: str | None = Field(
        default=None, description="Stage written for a contact with no stage at all (off: None)."
    )


# --- accounts: how companies are keyed, graded and scored (the `accounts:` section) ---
# An account's fit is its own firmographics (never a person's title); its engagement is a
# roll-up of its member contacts' engagement with a per-contact cap, plus points for breadth
# (distinct engaged people), buying-committee coverage (roles the title rules know) and
# account-level rules ("two people on the pricing page within 7 days"). An MQA is a threshold
# plus allowed grades; an MQA may lower the MQL bar for its well-fitting contacts.
AccountKey = Literal["primary_company", "company_record", "company_field", "email_domain"]

# Fields an account fit rule may test (the company's firmographics and the target list).
ACCOUNT_FIT_FIELDS: tuple[str, ...] = (
    "employee_count",
    "annual_revenue_usd",
    "industry",
    "industry_group",
    "country",
    "domain",
    "name",
    "target_account",
)


def _account_fields(v: Conditions) -> Conditions:
    """An account rule's `when` tests only the account's facts (`ACCOUNT_FIT_FIELDS`)."""
    unknown = sorted(set(v) - set(ACCOUNT_FIT_FIELDS))
    if unknown:
        raise ValueError(
            f"unknown account field(s) {', '.join(unknown)}; known: {', '.join(ACCOUNT_FIT_FIELDS)}"
        )
    return v


class AccountFitRule(_Strict):
    name: str
    when: Conditions
    points: int
    description: str | None = None

    @field_validator("when")
    @classmethod
    def _known_fields(cls, v: Conditions) -> Conditions:
        return _account_fields(v)


class AccountForce(_Strict):
    """A condition on the account's facts that forces its grade (a competitor's or a vendor's
    domain → D), like the contact fit's `force` (`ForceGrade`): the grade becomes `grade`
    where that is worse than the fit points' grade (`A` leaves it as it is); `block_mqa`: the
    account is never an MQA, whatever its score. Its engagement points still count."""

    name: str
    when: Conditions
    grade: Grade = "D"
    block_mqa: bool = False
    description: str | None = None

    @field_validator("when")
    @classmethod
    def _known_fields(cls, v: Conditions) -> Conditions:
        return _account_fields(v)


def _default_account_grades() -> dict[GradeABC, int]:
    return {"A": 60, "B": 40, "C": 20}


class AccountFit(_Strict):
    rules: list[AccountFitRule] = Field(default_factory=list)
    grades: dict[GradeABC, int] = Field(default_factory=_default_account_grades)
    force: list[AccountForce] = Field(default_factory=list)

    @field_validator("grades")
    @classmethod
    def _descend(cls, v: dict[str, int]) -> dict[str, int]:
        return _grades_descend(v)


class CountTier(_Strict):
    """Points once at least `min` (people, roles) are reached; the highest tier reached wins."""

    min: int = Field(ge=1)
    points: int


def _tiers_ascend(tiers: list[CountTier]) -> list[CountTier]:
    mins = [t.min for t in tiers]
    if mins != sorted(set(mins)):
        raise ValueError("tiers must have distinct `min` values in ascending order")
    return tiers


class Breadth(_Strict):
    """Points for the number of distinct engaged contacts within `within_days`."""

    within_days: float = Field(default=30, gt=0)
    min_points: float = Field(
        default=1, description="A contact counts as engaged with at least this many points."
    )
    tiers: list[CountTier] = Field(default_factory=list)

    @field_validator("tiers")
    @classmethod
    def _ascend(cls, v: list[CountTier]) -> list[CountTier]:
        return _tiers_ascend(v)


def _default_roles() -> dict[str, list[str]]:
    return {
        "decision_maker": ["executive", "vp", "director"],
        "champion": ["manager"],
        "practitioner": ["senior", "individual", "entry"],
    }


class Committee(_Strict):
    """Points when the engaged contacts span buying-committee roles (from title seniority)."""

    roles: dict[str, list[str]] = Field(default_factory=_default_roles)
    tiers: list[CountTier] = Field(default_factory=list)

    @field_validator("tiers")
    @classmethod
    def _ascend(cls, v: list[CountTier]) -> list[CountTier]:
        return _tiers_ascend(v)

    @model_validator(mode="after")
    def _one_role_per_seniority(self) -> Committee:
        seen: dict[str, str] = {}
        for role, seniorities in self.roles.items():
            for s in seniorities:
                if s in seen:
                    raise ValueError(f"seniority {s!r} is in two roles ({seen[s]!r} and {role!r})")
                seen[s] = role
        return self


class AccountRule(_Strict):
    """Fires once when at least `people` distinct contacts of the account had events matched
    by one of the contact engagement rules `rules` within `within_days` of each other."""

    name: str
    rules: list[str] = Field(min_length=1)
    people: int = Field(default=2, ge=1)
    within_days: float = Field(default=7, gt=0)
    points: int
    description: str = ""


class AccountEngagement(_Strict):
    per_contact_cap: float = Field(
        default=50, ge=0, description="At most this many of one contact's points count."
    )
    top_contacts: int | None = Field(
        default=None,
        ge=1,
        description="Only the N most engaged contacts count (large accounts); None: all.",
    )
    breadth: Breadth = Field(default_factory=Breadth)
    committee: Committee = Field(default_factory=Committee)
    rules: list[AccountRule] = Field(default_factory=list)


def _grades_ab() -> list[Grade]:
    return ["A", "B"]


def _default_account_key() -> list[AccountKey]:
    return ["primary_company", "company_record", "email_domain"]


class Mqa(_Strict):
    threshold: float = 100
    grades: list[Grade] = Field(default_factory=_grades_ab)
    min_people: int = Field(default=1, ge=1, description="Engaged contacts an MQA needs.")
    contact_mql_threshold: float | None = Field(
        default=None,
        description="At an MQA, a contact of `contact_grades` is MQL from this score (off: None).",
    )
    contact_grades: list[Grade] = Field(default_factory=_grades_ab)

    @field_validator("grades", "contact_grades")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        for g in v:
            if g not in GRADES:
                raise ValueError(f"unknown grade {g!r}")
        return v


class AccountsModel(_Strict):
    enabled: bool = True
    key: list[AccountKey] = Field(
        default_factory=_default_account_key,
        description="How a contact finds its account, first that applies wins.",
    )
    target_accounts: str | None = Field(
        default=None,
        description="A file of target-account domains (one a line), relative to the model file.",
    )
    fit: AccountFit = Field(default_factory=AccountFit)
    engagement: AccountEngagement = Field(default_factory=AccountEngagement)
    mqa: Mqa = Field(default_factory=Mqa)

    @model_validator(mode="after")
    def _unique_rule_names(self) -> AccountsModel:
        names = (
            [r.name for r in self.fit.rules]
            + [f.name for f in self.fit.force]
            + [r.name for r in self.engagement.rules]
        )
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate account rule name(s): {', '.join(dup)}")
        return self


class PriorityBand(_Strict):
    """One engagement band of the priority label: scores at or above `min` (and below the
    band before it) get `name`."""

    name: str = Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9_+-]+$")
    min: float


def _default_bands() -> list[PriorityBand]:
    return [
        PriorityBand(name="1", min=100),
        PriorityBand(name="2", min=50),
        PriorityBand(name="3", min=0),
    ]


class Priority(_Strict):
    """The priority label `<grade><band>` (A1 best fit and hottest … D3): the score's band,
    highest first; a score below every band's `min` takes the last band."""

    bands: list[PriorityBand] = Field(default_factory=_default_bands)

    @field_validator("bands")
    @classmethod
    def _bands_descend(cls, v: list[PriorityBand]) -> list[PriorityBand]:
        if not v:
            raise ValueError("priority needs at least one band")
        names = [b.name for b in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"band names must be unique, {', '.join(dupes)} repeats")
        mins = [b.min for b in v]
        if any(a <= b for a, b in pairwise(mins)):
            shown = " > ".join(f"{b.name}={b.min:g}" for b in v)
            raise ValueError(f"band minimums must descend, highest first, got {shown}")
        return v

    def labels(self) -> list[str]:
        """Every label, best first (A1, A2, …, D3): the CRM property's options."""
        return [g + b.name for g in GRADES for b in self.bands]


# Named scores (issue 23): the top-level fit/engagement/lifecycle sections are the lifecycle
# score, written under today's property names (leadscore_score, ...); `scores:` declares the
# others, each written as leadscore_<name>_score, _grade, _reasons, _priority.
SCORE_NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
NAMED_SUFFIXES: tuple[str, ...] = ("score", "grade", "reasons", "priority")
# property names of ours a named score's `leadscore_<name>_<suffix>` must not take (contacts
# and companies): `fit` would make leadscore_fit_score, `account` leadscore_account_score
RESERVED_PROPERTY_NAMES: frozenset[str] = frozenset(
    {
        "leadscore_score",
        "leadscore_grade",
        "leadscore_fit_score",
        "leadscore_reasons",
        "leadscore_model_version",
        "leadscore_scored_at",
        "leadscore_mql_reason",
        "leadscore_profile_mismatch",
        "leadscore_priority",
        "leadscore_account_score",
        "leadscore_account_grade",
        "leadscore_account_reasons",
        "leadscore_engaged_contacts",
        "leadscore_mqa_reason",
    }
)
# names whose keys would read as ours (`model_version`, `scored_at`, `mql_reason`, ...)
RESERVED_SCORE_NAMES: frozenset[str] = frozenset(
    {"fit", "account", "priority", "mql", "model", "scored", "profile", "engaged", "mqa"}
)


def named_property_names(name: str) -> dict[str, str]:
    """A named score's keys (ours) → HubSpot property names: `services_score` →
    `leadscore_services_score`, ..."""
    return {f"{name}_{s}": f"leadscore_{name}_{s}" for s in NAMED_SUFFIXES}


def score_name_problem(name: str, lifecycle_name: str | None) -> str | None:
    """Why `name` cannot name a score (None: it can)."""
    import re

    if not re.match(SCORE_NAME_PATTERN, name):
        return f"score name {name!r} must be lowercase letters, digits and _ (a letter first)"
    if lifecycle_name is not None and name == lifecycle_name:
        return f"score name {name!r} is the lifecycle score's name (lifecycle_score)"
    clash = sorted(set(named_property_names(name).values()) & RESERVED_PROPERTY_NAMES)
    if clash:
        return f"score name {name!r} would write {clash[0]}, which leadscore already writes"
    if name in RESERVED_SCORE_NAMES:
        return f"score name {name!r} is reserved (its properties would read as leadscore's own)"
    return None


class NamedScore(_Strict):
    """A score besides the lifecycle score: its own engagement rules and window, the shared
    fit unless `fit` overrides it, and a `threshold` at or above which the contact is
    qualified for it (reported, never moves the lifecycle stage)."""

    name: str = Field(min_length=1, max_length=40)
    description: str = ""
    engagement: Engagement
    fit: Fit | None = Field(default=None, description="Overrides the shared fit section.")
    threshold: float | None = Field(
        default=None, description="Qualified at or above this score (reported only)."
    )
    priority: Priority | None = Field(
        default=None,
        description="Its own priority bands (a score on another scale than the lifecycle "
        "score's: a threshold of 60 wants a top band at 60); absent: the lifecycle score's.",
    )


class ScoringModel(_Strict):
    version: str = Field(min_length=1)
    name: str = ""
    description: str = ""
    lists: dict[str, list[str]] = Field(default_factory=dict)
    title_rules: str | None = Field(
        default="titles.yaml", description="Title rule table, relative to the model file."
    )
    fit: Fit = Field(default_factory=Fit)
    engagement: Engagement = Field(default_factory=Engagement)
    lifecycle: Lifecycle = Field(default_factory=Lifecycle)
    accounts: AccountsModel | None = Field(
        default=None, description="Account scoring (companies); absent: contacts only."
    )

    priority: Priority = Field(default_factory=Priority)
    lifecycle_score: str | None = Field(
        default=None,
        description="The name of the top-level score (the one that drives the lifecycle).",
        pattern=SCORE_NAME_PATTERN,
        max_length=40,
    )
    scores: list[NamedScore] = Field(
        default_factory=list, description="More scores, each with its own CRM properties."
    )

    @field_validator("lists")
    @classmethod
    def _lower_lists(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        return {k: [str(x).strip().lower() for x in vals] for k, vals in v.items()}


def semantic_problems(raw: object) -> list[Problem]:
    """Cross-reference checks on the raw file, run even when field validation failed.

    Unknown categories, duplicate rule names, references to unknown lists or rules, bad regexes.
    Defensive about shapes: a shape problem is pydantic's to report.
    """
    import re

    problems: list[Problem] = []
    if not isinstance(raw, dict):
        return problems
    lists = _as_dict(raw.get("lists"))
    fit = _as_dict(raw.get("fit"))
    eng = _as_dict(raw.get("engagement"))
    cats = _as_dict(eng.get("categories"))
    rules = _as_list(eng.get("rules"))
    rule_names = {r.get("name") for r in rules if isinstance(r, dict)}
    known_rules = sorted(n for n in rule_names if isinstance(n, str))

    def check_match(where: Loc, value: object) -> None:
        while isinstance(value, dict):
            for ref_key in ("in_list", "not_in_list"):
                ref = value.get(ref_key)
                if isinstance(ref, str) and ref not in lists:
                    problems.append(
                        ((*where, ref_key), f"unknown list {ref!r}{did_you_mean(ref, lists)}")
                    )
            rx = value.get("regex")
            if isinstance(rx, str):
                try:
                    re.compile(rx)
                except re.error as exc:
                    problems.append(((*where, "regex"), f"invalid regular expression ({exc})"))
            value = value.get("not")
            where = (*where, "not")

    def check_when(where: Loc, when: object) -> None:
        if not isinstance(when, dict):
            return
        for key, value in when.items():
            check_match((*where, key), value)
            if key == "fired":
                named = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
                for k, n in named:
                    if isinstance(n, str) and n not in rule_names:
                        loc: Loc = (*where, "fired") if k is None else (*where, "fired", k)
                        problems.append(
                            (
                                loc,
                                f"unknown engagement rule {n!r}{did_you_mean(n, known_rules)}",
                            )
                        )

    for section in ("rules", "force"):
        for i, item in enumerate(_as_list(fit.get(section))):
            if isinstance(item, dict):
                check_when(("fit", section, i, "when"), item.get("when"))
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            continue
        at: Loc = ("engagement", "rules", i)
        cat = rule.get("category")
        if isinstance(cat, str) and cat not in cats:
            problems.append(
                ((*at, "category"), f"unknown category {cat!r}{did_you_mean(cat, cats)}")
            )
        name = rule.get("name")
        if isinstance(name, str):
            if name in seen:
                problems.append(((*at, "name"), f"duplicate rule name {name!r}"))
            seen.add(name)
        check_when((*at, "when"), rule.get("when"))
        for j, tier in enumerate(_as_list(rule.get("tiers"))):
            if isinstance(tier, dict):
                check_when((*at, "tiers", j, "when"), tier.get("when"))
    sql = _as_dict(_as_dict(raw.get("lifecycle")).get("sql"))
    for k, n in enumerate(_as_list(sql.get("events"))):
        if n not in rule_names:
            problems.append(
                (
                    ("lifecycle", "sql", "events", k),
                    f"unknown engagement rule {n!r}{did_you_mean(str(n), known_rules)}",
                )
            )
    acc_fit = _as_dict(_as_dict(raw.get("accounts")).get("fit"))
    for section in ("rules", "force"):
        for i, item in enumerate(_as_list(acc_fit.get(section))):
            if isinstance(item, dict):
                check_when(("accounts", "fit", section, i, "when"), item.get("when"))
    acc_eng = _as_dict(_as_dict(raw.get("accounts")).get("engagement"))
    for i, rule in enumerate(_as_list(acc_eng.get("rules"))):
        for j, n in enumerate(_as_list(_as_dict(rule).get("rules"))):
            if n not in rule_names:
                problems.append(
                    (
                        ("accounts", "engagement", "rules", i, "rules", j),
                        f"unknown engagement rule {n!r}{did_you_mean(str(n), known_rules)}",
                    )
                )
    problems.extend(named_score_problems(raw))
    return problems


def named_score_problems(raw: dict[str, Any]) -> list[Problem]:
    """The `scores:` list: names (pattern, duplicates, the lifecycle score's name, property
    names that clash with ours) and, per score, the checks of the top-level sections (its
    categories, duplicate rule names, unknown lists)."""
    problems: list[Problem] = []
    life = raw.get("lifecycle_score")
    life_name = life if isinstance(life, str) else None
    seen: dict[str, int] = {}
    for i, item in enumerate(_as_list(raw.get("scores"))):
        if not isinstance(item, dict):
            continue
        name = item.get("name")
        if isinstance(name, str):
            why = score_name_problem(name, life_name)
            if name in seen:
                why = f"duplicate score name {name!r} (also scores[{seen[name]}])"
            if why is not None:
                problems.append((("scores", i, "name"), why))
            seen.setdefault(name, i)
        sub: dict[str, Any] = {"lists": raw.get("lists"), "engagement": item.get("engagement")}
        if "fit" in item:
            sub["fit"] = item.get("fit")
        else:  # `fired` in the shared fit names this score's rules too
            sub["fit"] = {}
        for loc, msg in semantic_problems_of_sections(sub):
            problems.append((("scores", i, *loc), msg))
    return problems


def semantic_problems_of_sections(sub: dict[str, Any]) -> list[Problem]:
    """`semantic_problems` of a named score's own sections (no `scores` inside)."""
    return semantic_problems({k: v for k, v in sub.items() if k != "scores"})


def _as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
