"""The pure scoring core: contact + events + enrichment + model + now → ScoreResult with reasons.

No clock, no I/O, no globals beyond a memo of compiled models keyed by fingerprint.
Same input, same output. Duplicate event ids count once.
"""

from __future__ import annotations

import contextlib
import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from operator import attrgetter
from string import Formatter
from typing import Any, NamedTuple

from connector.fastjson import loads as fast_loads
from connector.model.loader import LoadedModel
from connector.model.schema import EngagementRule, ForceGrade, Match, ScoringModel, Tier
from connector.reason import shown_signed as _signed
from connector.scoring.lifecycle import decide_lifecycle
from connector.scoring.matchers import FieldCheck, check_all, compile_conditions
from connector.types import Contact, Enrichment, Event, EventRow, Reason, ScoreResult

DAY = 86400.0
_SEVERITY = {"A": 0, "B": 1, "C": 2, "D": 3}


class _SafeAttrs(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def _fmt(template: str, attrs: Mapping[str, Any], fields: tuple[str, ...] | None = None) -> str:
    """The template with the attributes' values (each cut at 80 characters; `?` for a missing
    one), or as it is when it does not format. `fields`: the only attributes it reads
    (`_template_fields`), when known: only those are turned into text."""
    if "{" not in template:
        return template
    if fields is None:
        safe = _SafeAttrs({k: str(v)[:80] for k, v in attrs.items()})
    else:
        safe = _SafeAttrs({k: str(attrs[k])[:80] for k in fields if k in attrs})
    try:
        return template.format_map(safe)
    except (ValueError, IndexError, AttributeError, KeyError, TypeError):  # `{x[k]}` of a text
        return template


SEVERAL_SHOWN = 3  # the distinct texts a reason of several events names, at most


def _several(
    cr: _CompiledRule,
    attrs: list[Mapping[str, Any]] | None,
    said: str,
    n: int,
    counted: bool = True,
) -> str:
    """The text of a rule that `n` events fired: "downloaded 'Guide' ×3" when every event
    reads the same (`said`, the first's text); when the template reads the events'
    attributes and they differ, each distinct text with its count, oldest first:
    "downloaded 'Guide' ×2; downloaded 'Checklist'", at most `SEVERAL_SHOWN`, then "…and N
    more" (N the other distinct texts). Each distinct set of the attributes the template
    reads is formatted once. `counted=False` (a tiered rule, whose tier labels count the
    events): the texts without counts."""
    if attrs is None:
        return f"{said} ×{n}" if counted else said
    fields = cr.fields
    texts: dict[Any, str] = {}
    counts: dict[str, int] = {}
    for a in attrs:
        key: Any = a if fields is None else tuple([a.get(f) for f in fields])
        try:
            text = texts.get(key)
        except TypeError:  # an unhashable attribute value (a list): formatted to compare
            key, text = None, None
        if text is None:
            text = said if a is attrs[0] else _fmt(cr.template, a, fields)
            if key is not None:
                texts[key] = text
        counts[text] = counts.get(text, 0) + 1
    if len(counts) == 1:
        return f"{said} ×{n}" if counted else said
    shown = [
        t if c == 1 or not counted else f"{t} ×{c}" for t, c in list(counts.items())[:SEVERAL_SHOWN]
    ]
    more = len(counts) - SEVERAL_SHOWN
    return "; ".join(shown) + (f"; …and {more} more" if more > 0 else "")


def _template_fields(template: str) -> tuple[str, ...] | None:
    """The attribute names a reason's template reads (`{form}`, `{name!r:>10}`, `{page.title}`
    reads `page`), or None when that is not plain (positional or nested fields, or a template
    that does not parse: `_fmt` then reads them all and fails as it always did)."""
    try:
        parsed = list(Formatter().parse(template))
    except ValueError:
        return None
    names: list[str] = []
    for _text, field, spec, _conversion in parsed:
        if field is None:
            continue
        if spec and "{" in spec:
            return None
        name = field.split(".", 1)[0].split("[", 1)[0]
        if not name or name.isdigit():
            return None
        names.append(name)
    return tuple(dict.fromkeys(names))


@dataclass(slots=True)
class _CompiledTier:
    checks: list[FieldCheck]
    points: int
    label: str


@dataclass(slots=True, eq=False)  # compared by identity (`in` a tuple of matched rules)
class _CompiledRule:
    rule: EngagementRule
    checks: list[FieldCheck]
    tiers: list[_CompiledTier] | None
    negative: bool
    keeps: bool = False  # negative and negative points never decay: ignores the window
    index: int = 0  # its place in the model: reasons come in this order
    name: str = ""
    is_frequency: bool = False
    min_hits: int = 0  # a frequency rule cannot fire on fewer events
    # the rule's fields a score reads, copied out of the model (pydantic) once: read per fired
    # rule and contact, a compiled build reads them here as C struct fields
    category: str = ""
    cap: int | None = None
    template: str = ""  # the reason's text: the description, or the rule's name
    fields: tuple[str, ...] | None = None  # the attributes the template reads
    varies: bool = False  # the template reads attributes: its text may differ event by event
    description: str = ""
    hand_raiser: bool = False
    sales_signal: bool = False

    def __post_init__(self) -> None:
        r = self.rule
        self.name = r.name
        f = r.frequency
        self.is_frequency = f is not None
        if f is not None:
            self.min_hits = f.count if f.count is not None else f.distinct_days or 0
        self.category = r.category
        self.cap = r.cap
        self.template = r.description or r.name
        self.fields = _template_fields(self.template)
        self.varies = "{" in self.template
        self.description = r.description
        self.hand_raiser = r.hand_raiser
        self.sales_signal = r.sales_signal

    def points_for(self, attrs: Mapping[str, Any]) -> tuple[int, str | None] | None:
        if self.tiers is None:
            assert self.rule.points is not None
            return self.rule.points, None
        for t in self.tiers:
            if check_all(t.checks, attrs.get):
                return t.points, t.label
        return None


class _Acc:
    """What one rule collected from a contact's events (made once per fired rule)."""

    __slots__ = ("attrs", "event_ids", "exit", "first_attrs", "labels", "points", "times")

    def __init__(
        self,
        points: float,
        event_ids: list[str],
        first_attrs: Mapping[str, Any],
        exit: float | None,  # seconds until the oldest counted event leaves the window
        times: list[float] | None,  # the events' Unix times, when kept (`keeping_hit_times`)
        attrs: list[Mapping[str, Any]] | None = None,  # every event's, when the text reads them
    ) -> None:
        self.points = points
        self.event_ids = event_ids
        self.times = times
        self.labels: dict[str, int] | None = None  # tier label -> events
        self.first_attrs = first_attrs
        self.exit = exit
        self.attrs = attrs


class CompiledModel:
    """A model compiled for speed: rules indexed by event type, patterns compiled once."""

    def __init__(self, loaded: LoadedModel) -> None:
        m = loaded.model
        self.loaded = loaded
        self.model = m
        # the `keeping_hit_times` in force for this model: while any is, its results carry
        # their rules' event times
        self.hit_time_holders = 0
        self.window_s = m.engagement.window_days * DAY
        decay = m.engagement.decay
        self.decay_mode = decay.mode
        self.half_life_s = decay.half_life_days * DAY if decay.mode == "half_life" else 0.0
        # what each score reads of the model, out of pydantic once (see `_CompiledRule`)
        self.step_days = decay.step_days
        self.category_caps: dict[str, int | None] = {
            name: c.cap for name, c in m.engagement.categories.items()
        }
        self.mql_threshold = m.lifecycle.mql.threshold
        self.mql_grades = tuple(m.lifecycle.mql.grades)
        self.add_to_score = m.fit.add_to_score
        self.priority_bands = priority_bands(m)
        lists = m.lists
        self.fit_rules = [(r, compile_conditions(r.when, lists)) for r in m.fit.rules]
        self.force_rules: list[tuple[ForceGrade, list[FieldCheck]]] = [
            (f, compile_conditions(f.when, lists)) for f in m.fit.force
        ]
        referenced: set[str] = set()
        for cond in [r.when for r in m.fit.rules] + [f.when for f in m.fit.force]:
            value = cond.get("fired")
            if isinstance(value, list):
                referenced.update(str(v) for v in value)
            elif isinstance(value, str):
                referenced.add(value)
        self.fit_fired_names = frozenset(referenced)
        # the profile rules' conditions on the e-mail domain, and what `fit` keys a domain by
        self._domain_keys: dict[str | None, object] = {}
        self.domain_checks = [
            pred
            for checks in [c for _, c in self.fit_rules] + [c for _, c in self.force_rules]
            for name, pred in checks
            if name == "domain"
        ]
        self.by_type: dict[str, list[_CompiledRule]] = {}
        self.rules: list[_CompiledRule] = []
        # per event type: the attribute fields any of its rules read, and a memo from the tuple
        # of those values to the rules that match (URLs repeat: one dict lookup per event)
        self.type_fields: dict[str, tuple[str, ...]] = {}
        self.memo: dict[str, dict[tuple[Any, ...], _Matched]] = {}
        self._fit_memo: dict[tuple[Any, ...], tuple[float, str, bool, tuple[Reason, ...]]] = {}
        for r in m.engagement.rules:
            tiers = (
                [
                    _CompiledTier(compile_conditions(t.when, lists), t.points, t.label)
                    for t in r.tiers
                ]
                if r.tiers is not None
                else None
            )
            negative = _is_negative(r, r.tiers)
            keeps = negative and not m.engagement.decay.negative_decays
            cr = _CompiledRule(
                r, compile_conditions(r.when, lists), tiers, negative, keeps, len(self.rules)
            )
            self.rules.append(cr)
            for et in r.event_types:
                self.by_type.setdefault(et, []).append(cr)
        # per event type: for fields only ever compared with min/max, a function from the value
        # to its range bucket (a webinar's watched share is unique per event; its bucket is not)
        self.type_buckets: dict[str, tuple[Callable[[Any], Any] | None, ...]] = {}
        self.frequency_rules = [cr for cr in self.rules if cr.is_frequency]
        for et, crs in self.by_type.items():
            conds: dict[str, list[object]] = {}
            for cr in crs:
                for name, value in cr.rule.when.items():
                    conds.setdefault(name, []).append(value)
                for t in cr.rule.tiers or []:
                    for name, value in t.when.items():
                        conds.setdefault(name, []).append(value)
            self.type_fields[et] = tuple(sorted(conds))
            self.memo[et] = {}
            buckets = tuple(_range_bucket(conds[name]) for name in self.type_fields[et])
            if any(b is not None for b in buckets):
                self.type_buckets[et] = buckets
        # per event type: attributes JSON text -> (matching rules, decoded attributes); the
        # full rescore's memo (`score_rows`), so repeated attribute texts are decoded once
        self.text_memo: dict[str, dict[str | None, _TextHit]] = {et: {} for et in self.by_type}

    def fit(
        self, contact: Contact, enrichment: Enrichment | None, fired: frozenset[str]
    ) -> tuple[float, str, bool, tuple[Reason, ...]]:
        """(fit points, grade, MQL blocked, fit reasons), memoized on what the profile rules
        read: the title, the country, the e-mail kind, the company's facts (not its name),
        and the domain only where a rule's domain condition holds (a competitor's domain
        shows in its reason; any other domain changes nothing, and each company has one)."""
        fired = fired & self.fit_fired_names
        email = contact.email
        domain = enrichment.domain if enrichment is not None else None
        if domain is None and email and "@" in email:
            domain = email.rsplit("@", 1)[1].strip().lower() or None
        if enrichment is None:
            profile: tuple[Any, ...] = (bool(email),)
        else:
            c = enrichment.company
            profile = (
                enrichment.email_kind,
                enrichment.error,
                None
                if c is None
                else (
                    c.employee_count,
                    c.annual_revenue_usd,
                    c.industry,
                    c.industry_group,
                    c.country,
                    c.source,
                    c.as_of,
                ),
            )
        domain_key = self._domain_keys.get(domain)
        if domain_key is None:
            domain_key = domain if any(p(domain) for p in self.domain_checks) else _ANY_DOMAIN
            if len(self._domain_keys) >= 50_000:
                self._domain_keys.clear()
            self._domain_keys[domain] = domain_key
        key = (contact.job_title, contact.country, profile, domain_key, fired)
        try:
            hit = self._fit_memo.get(key)
        except TypeError:
            return _fit(self, contact, enrichment, fired)
        if hit is None:
            hit = _fit(self, contact, enrichment, fired)
            if len(self._fit_memo) >= 50_000:
                self._fit_memo.clear()
            self._fit_memo[key] = hit
        return hit

    def match_text(self, type_: str, text: str | None) -> _TextHit:
        """`matches` for attributes stored as JSON text, memoized on the text."""
        attrs = _decode_attributes(text) if text else {}
        hit: _TextHit = (self.matched(type_, attrs), attrs)
        memo = self.text_memo[type_]
        if len(memo) >= 100_000:
            memo.clear()
        memo[text] = hit
        return hit

    def matches(
        self, type_: str, attrs: Mapping[str, Any]
    ) -> list[tuple[_CompiledRule, int, str | None]]:
        """Rules of this event type that match, with (points, tier label), memoized."""
        return self.matched(type_, attrs).all

    def matched(self, type_: str, attrs: Mapping[str, Any]) -> _Matched:
        """`matches`, split for the scoring loop, memoized on the values the rules read."""
        fields = self.type_fields[type_]
        memo = self.memo[type_]
        sig = tuple(map(attrs.get, fields))
        buckets = self.type_buckets.get(type_)
        if buckets is not None:
            sig = tuple(v if b is None else b(v) for b, v in zip(buckets, sig, strict=True))
        try:
            hit = memo.get(sig)
        except TypeError:  # an unhashable attribute value: match without the memo
            return _Matched.of(self._match(type_, attrs))
        if hit is None:
            hit = _Matched.of(self._match(type_, attrs))
            if len(memo) >= 50_000:
                memo.clear()
            memo[sig] = hit
        return hit

    def _match(
        self, type_: str, attrs: Mapping[str, Any]
    ) -> list[tuple[_CompiledRule, int, str | None]]:
        out: list[tuple[_CompiledRule, int, str | None]] = []
        get = attrs.get
        for cr in self.by_type[type_]:
            if cr.checks and not check_all(cr.checks, get):
                continue
            if cr.rule.frequency is not None:
                out.append((cr, 0, None))
                continue
            got = cr.points_for(attrs)
            if got is not None:
                out.append((cr, got[0], got[1]))
        return out


_NAN_BUCKET = ("nan",)
_ANY_DOMAIN = ("any domain no profile rule reads",)  # a `fit` memo key part


def _range_bucket(conditions: list[object]) -> Callable[[Any], Any] | None:
    """For a field whose every condition is a plain `min`/`max` range: value -> a key that is
    equal for two numbers exactly when every one of those conditions judges them alike (the
    count of lower bounds <= n and of upper bounds < n). Other values map to themselves."""
    los: list[float] = []
    his: list[float] = []
    for c in conditions:
        if not isinstance(c, Match) or (c.min is None and c.max is None):
            return None
        if any(v is not None for k, v in c if k not in ("min", "max")):
            return None
        if c.min is not None:
            los.append(c.min)
        if c.max is not None:
            his.append(c.max)
    los.sort()
    his.sort()

    def bucket(v: Any) -> Any:
        if type(v) is not int and type(v) is not float:  # bools, text, lists: as they are
            return v
        n = float(v)
        if n != n:
            return _NAN_BUCKET
        return (bisect_right(los, n), bisect_left(his, n))

    return bucket


class _Matched(NamedTuple):
    """The rules one event matches: all of them, with (points, tier label), in rule order;
    those that add points per event; the frequency rules (they count the event)."""

    all: list[tuple[_CompiledRule, int, str | None]]
    plain: list[tuple[_CompiledRule, int, str | None]]
    frequency: tuple[_CompiledRule, ...]
    frequency_kept: tuple[_CompiledRule, ...]  # those that count it past the window too
    counts_old: bool  # a rule here counts the event past the window (its points never decay)

    @classmethod
    def of(cls, entries: list[tuple[_CompiledRule, int, str | None]]) -> _Matched:
        frequency = tuple(e[0] for e in entries if e[0].is_frequency)
        # one tuple object per set of rules: the scoring loop compares them by identity
        frequency = _FREQUENCY_SETS.setdefault(frequency, frequency)
        kept = tuple(cr for cr in frequency if cr.keeps)
        plain = [e for e in entries if not e[0].is_frequency]
        counts_old = bool(kept) or any(e[0].keeps for e in plain)
        return cls(entries, plain, frequency, kept, counts_old)


_FREQUENCY_SETS: dict[tuple[_CompiledRule, ...], tuple[_CompiledRule, ...]] = {}


_TextHit = tuple[_Matched, Mapping[str, Any]]
# a profile fit: (fit points, grade, MQL blocked, fit reasons)
_Fit = tuple[float, str, bool, tuple[Reason, ...]]


def _decode_attributes(text: str) -> dict[str, Any]:
    value = fast_loads(text)  # json.loads, by orjson where it reads the same
    if not isinstance(value, dict):
        raise ValueError(f"event attributes must be a JSON object, got {type(value).__name__}")
    return value


def _is_negative(rule: EngagementRule, tiers: list[Tier] | None) -> bool:
    if tiers is not None:
        return all(t.points < 0 for t in tiers)
    return rule.points is not None and rule.points < 0


_COMPILED: dict[str, CompiledModel] = {}


def compile_model(loaded: LoadedModel) -> CompiledModel:
    key = f"{loaded.fingerprint}:{id(loaded)}"
    cm = _COMPILED.get(key)
    if cm is None or cm.loaded is not loaded:
        if len(_COMPILED) > 32:
            # those keeping their hit times stay: `keeping_hit_times` set it on them, and a
            # model compiled again would score without; the fused scorers hold compiled
            # models too, so they are built again from these
            held = {k: c for k, c in _COMPILED.items() if c.hit_time_holders}
            _COMPILED.clear()
            _COMPILED.update(held)
            _FUSED.clear()
        cm = _COMPILED[key] = CompiledModel(loaded)
    return cm


@contextlib.contextmanager
def keeping_hit_times(loaded: LoadedModel) -> Iterator[None]:
    """Within it, `loaded`'s results carry each rule reason's event times
    (`ScoreResult.hit_times`, what account scoring reads), in this process. Counted, not
    saved and restored: holders may leave in any order (a generator suspended inside one,
    `ops.common.with_hit_times`, is closed whenever it is collected, maybe while another
    holder scores), and the times are kept until the last one leaves."""
    cm = compile_model(loaded)
    cm.hit_time_holders += 1
    try:
        yield
    finally:
        cm.hit_time_holders -= 1


def _decay_weight(cm: CompiledModel, age_s: float, keeps: bool) -> float:
    """The weight of points `age_s` old; 1 for a rule whose points never decay (`keeps`)."""
    if keeps:
        return 1.0
    mode = cm.decay_mode
    if mode == "half_life":
        return float(0.5 ** (age_s / cm.half_life_s))
    if mode == "linear":
        return max(0.0, 1.0 - age_s / cm.window_s)
    return 1.0


def _frequency_fires(
    rule: EngagementRule, hits: list[_Item], now_ts: float, today_idx: int
) -> tuple[bool, list[_Item], float]:
    """Return (fires, the events of the qualifying burst, age of the burst's newest event).

    `hits` are the rule's events, oldest first. The newest qualifying burst is chosen, so the
    reason names the events a rep remembers.
    """
    f = rule.frequency
    assert f is not None
    if f.count is not None:
        n = f.count
        if len(hits) < n:
            return False, [], 0.0
        ages = [now_ts - h[0] for h in hits]
        order = sorted(range(len(ages)), key=ages.__getitem__)  # newest first
        if f.within_days is None:
            return True, [hits[i] for i in order], ages[order[0]]
        span = f.within_days * DAY
        for i in range(len(order) - n + 1):
            if ages[order[i + n - 1]] - ages[order[i]] <= span:
                burst = order[i : i + n]
                return True, [hits[j] for j in burst], ages[burst[0]]
        return False, [], 0.0
    assert f.distinct_days is not None
    within = f.within_days if f.within_days is not None else float("inf")
    k = f.distinct_days
    day_of = [today_idx - int(h[0] // DAY) for h in hits]  # whole UTC days before now
    days = sorted(set(day_of))  # newest first
    for i in range(len(days) - k + 1):
        if days[i + k - 1] - days[i] < within:
            chosen = days[i : i + k]
            break
    else:
        return False, [], 0.0
    ages = [now_ts - h[0] for h in hits]
    by_day: dict[int, list[int]] = {d: [] for d in chosen}
    for j in sorted(range(len(ages)), key=ages.__getitem__):  # newest first
        bucket = by_day.get(day_of[j])
        if bucket is not None:
            bucket.append(j)
    idx = [j for d in chosen for j in by_day[d]]
    return True, [hits[j] for j in idx], min(ages[j] for j in idx)


def _fit_facts(
    cm: CompiledModel, contact: Contact, enrichment: Enrichment | None
) -> dict[str, Any]:
    info = cm.loaded.titles.classify(contact.job_title)
    company = enrichment.company if enrichment is not None else None
    domain = enrichment.domain if enrichment is not None else None
    if domain is None and contact.email and "@" in contact.email:
        domain = contact.email.rsplit("@", 1)[1].strip().lower() or None
    if enrichment is not None:
        kind: str = enrichment.email_kind
    else:
        kind = "missing" if not contact.email else "unknown"
    return {
        "title": contact.job_title,
        "seniority": info.seniority,
        "department": info.department,
        "title_rule": info.rule,
        "title_flags": info.flags,
        "employee_count": company.employee_count if company else None,
        "annual_revenue_usd": company.annual_revenue_usd if company else None,
        "industry": company.industry if company else None,
        "industry_group": company.industry_group if company else None,
        "country": contact.country or (company.country if company else None),
        "email_kind": kind,
        "domain": domain,
        "company_source": company.source if company else None,
        "_company": company,
        "_title_info": info,
    }


_COMPANY_FIELDS = {"employee_count", "annual_revenue_usd", "industry", "industry_group"}


def _fit_detail(fields: Iterable[str], facts: Mapping[str, Any]) -> str:
    parts: list[str] = []
    company = facts["_company"]
    from_company = False
    for name in fields:
        v = facts.get(name)
        if name in ("seniority", "department", "title_rule", "title_flags", "title"):
            info = facts["_title_info"]
            if facts.get("title"):
                part = f"title '{str(facts['title'])[:60]}'"
                if info.rule:
                    part += f" → {info.seniority} by rule {info.rule}"
                elif name == "department" and info.department_rule:
                    part += f" → {info.department} by rule {info.department_rule}"
                if part not in parts:
                    parts.append(part)
            continue
        if name == "employee_count" and v is not None:
            parts.append(f"{int(v):,} employees")
        elif name == "annual_revenue_usd" and v is not None:
            parts.append(f"revenue ${float(v) / 1e6:,.0f}M")
        elif name == "fired":
            continue
        elif v not in (None, ""):
            parts.append(f"{name.replace('_', ' ')} {v}")
        from_company = from_company or name in _COMPANY_FIELDS or name == "country"
    if from_company and company is not None and company.source:
        parts.append(f"source {company.source}" + (f" {company.as_of}" if company.as_of else ""))
    return ", ".join(parts)


def _fit(
    cm: CompiledModel, contact: Contact, enrichment: Enrichment | None, fired: frozenset[str]
) -> tuple[float, str, bool, tuple[Reason, ...]]:
    reasons: list[Reason] = []
    facts = _fit_facts(cm, contact, enrichment)
    facts["fired"] = fired
    fit_points = 0.0
    fit_texts: list[tuple[float, str]] = []
    for rule, checks in cm.fit_rules:
        if check_all(checks, facts.get):
            fit_points += rule.points
            detail = _fit_detail(rule.when.keys(), facts)
            label = rule.description or rule.name
            text = f"{_signed(rule.points)} {label}" + (f" ({detail})" if detail else "")
            reasons.append(Reason(rule.name, "fit", float(rule.points), text, (), "fit"))
            fit_texts.append((rule.points, label))
    grade = _grade_for(cm, fit_points)
    block_mql = False
    forced: list[str] = []
    for force, checks in cm.force_rules:
        if not check_all(checks, facts.get):
            continue
        if _SEVERITY[force.grade] > _SEVERITY[grade]:
            grade = force.grade
        block_mql = block_mql or force.block_mql
        detail = _fit_detail([k for k in force.when if k != "fired"], facts)
        label = force.description or force.name
        forced.append(label)
        text = f"grade {force.grade} forced: {label}" + (f" ({detail})" if detail else "")
        if force.block_mql:
            text += "; blocked from MQL"
        reasons.append(Reason(force.name, "fit", 0.0, text, (), "fit"))
    if enrichment is not None and enrichment.error:
        text = f"e-mail not usable: {enrichment.error}"
        reasons.append(Reason("email_invalid", "fit", 0.0, text, (), "fit"))
    if forced:
        summary = f"grade {grade}: " + ", ".join(forced)
    else:
        best = [lbl for p, lbl in sorted(fit_texts, key=lambda x: -x[0]) if p > 0][:2]
        summary = f"grade {grade}: " + (", ".join(best) if best else "no profile match")
    reasons.append(Reason("grade", "fit", round(fit_points, 2), summary, (), "fit"))
    return round(fit_points, 2), grade, block_mql, tuple(reasons)


def _fit_of(
    cm: CompiledModel,
    contact: Contact,
    enrichment: Enrichment | None,
    fired: set[str],
    fits: dict[frozenset[str], _Fit] | None,
) -> _Fit:
    """`cm.fit`, or the fit another model with the same fit section computed for the same
    fired rules it reads (`fit` reads nothing else of them)."""
    if fits is None:
        return cm.fit(contact, enrichment, frozenset(fired))
    key = cm.fit_fired_names.intersection(fired)
    hit = fits.get(key)
    if hit is None:
        hit = fits[key] = cm.fit(contact, enrichment, key)
    return hit


def _grade_for(cm: CompiledModel, fit_points: float) -> str:
    g = cm.model.fit.grades
    if fit_points >= g["A"]:
        return "A"
    if fit_points >= g["B"]:
        return "B"
    if fit_points >= g["C"]:
        return "C"
    return "D"


def priority_bands(model: ScoringModel) -> tuple[tuple[float, str], ...]:
    """The model's priority bands as (min, name), highest first."""
    return tuple((b.min, b.name) for b in model.priority.bands)


def priority_label(grade: str, score: float, bands: Sequence[tuple[float, str]]) -> str:
    """The priority label `<grade><band>` (A1 … D3): the first band whose minimum the score
    reaches, bands highest first; below every minimum, the last band. The score as the CRM
    shows it (rounded down, as `leadscore_score` is written: `types.crm_score`): a rep who
    reads 100 reads A1 (and 99.6 reads 99 and A2), and the label changes only with the score
    shown, never in a write of its own."""
    shown = math.floor(score)
    for low, name in bands:
        if shown >= low:
            return grade + name
    return grade + bands[-1][1]


_chronological = attrgetter("occurred_at", "source", "source_id")
_model_order = attrgetter("index")

# A prepared event: (timestamp, "source:source_id", the rules it matches, its attributes).
_Item = tuple[float, str, _Matched, Mapping[str, Any]]


def score(
    contact: Contact,
    events: Iterable[Event],
    enrichment: Enrichment | None,
    model: LoadedModel,
    now: datetime,
) -> ScoreResult:
    """Score one contact. `events` may contain duplicates and other contacts' merged events."""
    cm = compile_model(model)
    items, future = _event_items(cm, contact, events, now)
    return _score_items(cm, model, contact, items, future, enrichment, now)


def score_rows(
    contact: Contact,
    rows: Sequence[EventRow],
    enrichment: Enrichment | None,
    model: LoadedModel,
    now: datetime,
) -> ScoreResult:
    """`score` over stored event rows, without building an `Event` per row: what a full
    rescore of millions of stored events runs. Same result as `score` with the rows' events.

    `rows` are one contact's, ordered by occurred_at (ties in any order), with distinct keys
    (the state DB's unique index guarantees both); times are fixed-width UTC ISO-8601 text,
    so text order is time order. Matching is memoized on the attributes' JSON text."""
    cm = compile_model(model)
    items, future = _row_items(cm, contact, rows, now)
    return _score_items(cm, model, contact, items, future, enrichment, now)


def score_rows_many(
    contact: Contact,
    rows: Sequence[EventRow],
    enrichment: Enrichment | None,
    models: Sequence[LoadedModel],
    now: datetime,
) -> tuple[ScoreResult, ...]:
    """`score_rows` with each of `models` (a model and its named scores, the two models of a
    simulation), the same results, from ONE walk over the rows: each row's attributes decoded
    and its time parsed once for all the models, and the profile fit computed once for the
    models that share it (`_Fused`)."""
    if len(models) == 1:
        return (score_rows(contact, rows, enrichment, models[0], now),)
    fused = _fused(models)
    per_model, futures = _rows_items_many(fused, contact, rows, now)
    fits: list[dict[frozenset[str], _Fit]] = [{} for _ in fused.fit_groups]
    group = fused.fit_group
    return tuple(
        [
            _score_items(
                cm, model, contact, per_model[i], futures[i], enrichment, now, fits[group[i]]
            )
            for i, (cm, model) in enumerate(zip(fused.cms, fused.models, strict=True))
        ]
    )


def _event_items(
    cm: CompiledModel, contact: Contact, events: Iterable[Event], now: datetime
) -> tuple[list[_Item], datetime | None]:
    """The events that can score, oldest first, deduplicated and matched; and the earliest
    event after `now` (it changes the score when its time comes)."""
    by_type, type_fields, memo = cm.by_type, cm.type_fields, cm.memo
    bucketed = cm.type_buckets
    recycled_at = contact.recycled_at
    gone = _gone(cm, now)
    seen: set[str] = set()
    future: datetime | None = None
    items: list[_Item] = []
    for ev in sorted(events, key=_chronological):
        et = ev.type
        if et not in by_type:
            continue
        key = ev.source + ":" + ev.source_id  # unique: source names never contain ":"
        if key in seen:
            continue
        seen.add(key)
        t = ev.occurred_at
        if t > now:
            if future is None or t < future:
                future = t
            continue
        if recycled_at is not None and t <= recycled_at:
            continue
        attrs = ev.attributes
        if et in bucketed:
            matched = cm.matched(et, attrs)
        else:
            sig = tuple(map(attrs.get, type_fields[et]))
            try:
                matched = memo[et][sig]
            except KeyError:
                matched = cm.matched(et, attrs)
            except TypeError:  # unhashable attribute value
                matched = cm.matched(et, attrs)
        if matched.all and (matched.counts_old or t >= gone):
            items.append((t.timestamp(), key, matched, attrs))
    return items, future


def _row_key(row: EventRow) -> tuple[str, str, str]:
    source, _, source_id = row[2].partition(":")
    return row[1], source, source_id


def _row_items(
    cm: CompiledModel, contact: Contact, rows: Sequence[EventRow], now: datetime
) -> tuple[list[_Item], datetime | None]:
    """`_event_items` for stored rows (see `score_rows`)."""
    text_memo = cm.text_memo
    now_text = _utc_text(now)
    recycled = _utc_text(contact.recycled_at) if contact.recycled_at is not None else None
    gone = _gone_text(cm, now)  # as in `_event_items`
    future: str | None = None
    items: list[_Item] = []
    previous = ""
    tie = False
    for _cid, at, key, et, text in rows:
        if at == previous:
            tie = True
        previous = at
        by_text = text_memo.get(et)
        if by_text is None:  # no rule reads this type
            continue
        if at > now_text:
            if future is None or at < future:
                future = at
            continue
        if recycled is not None and at <= recycled:
            continue
        hit = by_text.get(text)
        if hit is None:
            hit = cm.match_text(et, text)
        matched, attrs = hit
        if matched.all and (matched.counts_old or at >= gone):
            items.append((_fromisoformat(at).timestamp(), key, matched, attrs))
    if tie and not _in_key_order(rows):  # equal times: order as `score` does
        return _row_items(cm, contact, sorted(rows, key=_row_key), now)
    return items, _fromisoformat(future) if future is not None else None


# one row's attributes for several models: (decoded attributes, (model index, its match) for
# each model with a rule that matches)
_FusedHit = tuple[Mapping[str, Any], tuple[tuple[int, _Matched], ...]]


class _Fused:
    """Several compiled models that score the same rows (`score_rows_many`): per event type,
    the models that read it, and one memo from the attributes' JSON text to each model's
    matching rules (the text decoded once for all); which models share their profile fit."""

    def __init__(self, models: tuple[LoadedModel, ...], cms: tuple[CompiledModel, ...]) -> None:
        self.models = models  # held: the key of `_FUSED` is their ids
        self.cms = cms
        readers: dict[str, list[int]] = {}
        for i, cm in enumerate(cms):
            for et in cm.by_type:
                readers.setdefault(et, []).append(i)
        self.readers: dict[str, tuple[int, ...]] = {et: tuple(v) for et, v in readers.items()}
        self.memo: dict[str, dict[str | None, _FusedHit]] = {et: {} for et in readers}
        # models computing the same fit, grouped: the first model of each group, and each
        # model's group (its fit is `cm.fit` of the group's first model: the same function)
        self.fit_groups: list[int] = []
        self.fit_group: list[int] = []
        for i, cm in enumerate(cms):
            group = next((g for g, j in enumerate(self.fit_groups) if _same_fit(cms[j], cm)), -1)
            if group < 0:
                group = len(self.fit_groups)
                self.fit_groups.append(i)
            self.fit_group.append(group)

    def match_text(self, type_: str, text: str | None) -> _FusedHit:
        """Each model's `CompiledModel.match_text`, memoized on the text, decoded once."""
        attrs = _decode_attributes(text) if text else {}
        matches: list[tuple[int, _Matched]] = []
        for i in self.readers[type_]:
            matched = self.cms[i].matched(type_, attrs)
            if matched.all:
                matches.append((i, matched))
        hit: _FusedHit = (attrs, tuple(matches))
        memo = self.memo[type_]
        if len(memo) >= 100_000:
            memo.clear()
        memo[text] = hit
        return hit


def _same_fit(a: CompiledModel, b: CompiledModel) -> bool:
    """Whether `a.fit` and `b.fit` are the same function of (contact, enrichment, fired): the
    same fit section, lists and title rules (a named score without a fit of its own)."""
    if a is b:
        return True
    ta, tb = a.loaded.titles, b.loaded.titles
    return (
        (ta is tb or ta.table == tb.table)
        and a.model.fit == b.model.fit
        and a.model.lists == b.model.lists
    )


_FUSED: dict[tuple[int, ...], _Fused] = {}


def _fused(models: Sequence[LoadedModel]) -> _Fused:
    """The models fused, kept by the models' identity (asked once per contact)."""
    key = tuple([id(m) for m in models])
    fused = _FUSED.get(key)
    if fused is None or any(a is not b for a, b in zip(fused.models, models, strict=True)):
        if len(_FUSED) > 16:
            _FUSED.clear()
        fused = _FUSED[key] = _Fused(tuple(models), tuple([compile_model(m) for m in models]))
    return fused


def _rows_items_many(
    fused: _Fused, contact: Contact, rows: Sequence[EventRow], now: datetime
) -> tuple[list[list[_Item]], list[datetime | None]]:
    """`_row_items` of each of the fused models, from one walk over the rows."""
    cms = fused.cms
    memo = fused.memo
    now_text = _utc_text(now)
    recycled = _utc_text(contact.recycled_at) if contact.recycled_at is not None else None
    gones = [_gone_text(cm, now) for cm in cms]
    futures: list[str | None] = [None for _ in cms]
    items: list[list[_Item]] = [[] for _ in cms]
    previous = ""
    tie = False
    for _cid, at, key, et, text in rows:
        if at == previous:
            tie = True
        previous = at
        by_text = memo.get(et)
        if by_text is None:  # no model reads this type
            continue
        if at > now_text:
            for i in fused.readers[et]:
                earliest = futures[i]
                if earliest is None or at < earliest:
                    futures[i] = at
            continue
        if recycled is not None and at <= recycled:
            continue
        hit = by_text.get(text)
        if hit is None:
            hit = fused.match_text(et, text)
        attrs, matches = hit
        ts = -1.0
        parsed = False
        for i, matched in matches:
            if matched.counts_old or at >= gones[i]:
                if not parsed:
                    ts = _fromisoformat(at).timestamp()
                    parsed = True
                items[i].append((ts, key, matched, attrs))
    if tie and not _in_key_order(rows):  # equal times: order as `score` does
        return _rows_items_many(fused, contact, sorted(rows, key=_row_key), now)
    return items, [_fromisoformat(f) if f is not None else None for f in futures]


def _in_key_order(rows: Sequence[EventRow]) -> bool:
    keys = [_row_key(r) for r in rows]
    return all(a <= b for a, b in pairwise(keys))


_fromisoformat = datetime.fromisoformat


# one-entry caches: (key, answer), replaced whole; read once (another thread may replace it)
_LAST_TEXT: list[tuple[object, str]] = [(object(), "")]


def _utc_text(t: datetime) -> str:
    """`t` as the state DB stores times (connector.state.codec.encode_dt). A rescore asks for
    the same `now` once per contact: the last answer is kept."""
    last = _LAST_TEXT[0]
    if last[0] is t:
        return last[1]
    u = t if t.tzinfo is UTC else t.astimezone(UTC)
    text = u.isoformat(timespec="microseconds")
    _LAST_TEXT[0] = (t, text)
    return text


_EPOCH_START = datetime.min.replace(tzinfo=UTC)


def _gone(cm: CompiledModel, now: datetime) -> datetime:
    """The time past which an event counts only for a rule whose points never decay (the
    others are not even prepared): the window's start, a second earlier (a margin for the
    float ages `_score_items` compares). A window reaching before year 1 has no such time."""
    try:
        return now - timedelta(seconds=cm.window_s + 1)
    except (OverflowError, ValueError):  # window_days past ~740,000, or infinite
        return _EPOCH_START


# by window length: (now, text); several models (a model's named scores, a simulation)
# score each contact in turn, each with its own window
_GONE_TEXTS: dict[float, tuple[object, str]] = {}


def _gone_text(cm: CompiledModel, now: datetime) -> str:
    """`_gone` as DB text. Asked once per contact and model with the same `now`: the last
    one of each window length is kept (and `_utc_text`'s cache of `now` is left alone)."""
    window = cm.window_s
    last = _GONE_TEXTS.get(window)
    if last is not None and last[0] is now:
        return last[1]
    gone = _gone(cm, now)
    text = (gone if gone.tzinfo is UTC else gone.astimezone(UTC)).isoformat(timespec="microseconds")
    if len(_GONE_TEXTS) >= 16:
        _GONE_TEXTS.clear()
    _GONE_TEXTS[window] = (now, text)
    return text


def _score_items(
    cm: CompiledModel,
    model: LoadedModel,
    contact: Contact,
    items: list[_Item],
    future: datetime | None,
    enrichment: Enrichment | None,
    now: datetime,
    fits: dict[frozenset[str], _Fit] | None = None,
) -> ScoreResult:
    """The result from the prepared events. `fits`: profile fits already computed for this
    contact by models with the same fit (`_Fused`), by the fired rules the fit reads."""
    m = cm.model
    window_s = cm.window_s
    accs: dict[_CompiledRule, _Acc] = {}
    now_ts = now.timestamp()
    today_idx = int(now_ts // DAY)  # today's UTC day number
    no_decay = cm.decay_mode == "none"
    keep_times = cm.hit_time_holders > 0
    counted: dict[_CompiledRule, list[_Item]] = {}  # frequency rule -> its events
    for item in items:  # oldest first: a rule's first counted event is its oldest
        matched = item[2]
        age = now_ts - item[0]
        old = age >= window_s
        for cr in matched.frequency_kept if old else matched.frequency:
            hits = counted.get(cr)
            if hits is None:
                counted[cr] = [item]
            else:
                hits.append(item)
        for cr, ev_points, label in matched.plain:
            keeps = cr.keeps
            if old and not keeps:
                continue
            points = ev_points if no_decay else ev_points * _decay_weight(cm, age, keeps)
            acc = accs.get(cr)
            if acc is None:
                # 0.0 + : a float, and +0.0 where the points are -0.0 (as a running sum from 0)
                acc = accs[cr] = _Acc(
                    0.0 + points,
                    [item[1]],
                    item[3],
                    None if keeps else window_s - age,
                    [item[0]] if keep_times else None,
                    [item[3]] if cr.varies else None,
                )
            else:
                acc.points += points
                acc.event_ids.append(item[1])
                times = acc.times
                if times is not None:
                    times.append(item[0])
                seen = acc.attrs
                if seen is not None:
                    seen.append(item[3])
            if label is not None:
                if acc.labels is None:
                    acc.labels = {label: 1}
                else:
                    acc.labels[label] = acc.labels.get(label, 0) + 1

    # frequency rules fire once on their pattern
    for cr, hits in counted.items():
        if len(hits) < cr.min_hits:
            continue
        fires, burst, newest_age = _frequency_fires(cr.rule, hits, now_ts, today_idx)
        if not fires:
            continue
        assert cr.rule.points is not None
        accs[cr] = _Acc(
            cr.rule.points * _decay_weight(cm, newest_age, cr.keeps),
            [h[1] for h in burst],
            hits[0][3],
            None if cr.keeps else window_s - (now_ts - hits[0][0]),
            [h[0] for h in burst] if keep_times else None,
        )

    reasons: list[Reason] = []
    # the events' times of each rule reason with points over 0: (rule, times), in reason order
    hit_times: list[tuple[str, tuple[float, ...]]] | None = [] if keep_times else None
    fired: set[str] = set()
    hand_raise_text: str | None = None
    sales_signal: str | None = None
    by_cat: dict[str, float] = {}
    exits: list[float] = []
    decaying = False
    decays = not no_decay
    for cr in sorted(accs, key=_model_order) if len(accs) > 1 else accs:
        acc = accs[cr]
        pts = acc.points
        capped = ""
        rule_cap = cr.cap
        if rule_cap is not None and abs(pts) > rule_cap:
            pts = float(rule_cap if pts > 0 else -rule_cap)
            capped = f" (capped at {rule_cap})"
        pts = round(pts, 2)
        fired.add(cr.name)
        if acc.exit is not None:
            exits.append(acc.exit)
        if decays and pts != 0 and not cr.keeps:
            decaying = True
        said = _fmt(cr.template, acc.first_attrs, cr.fields)
        text = said
        if acc.labels:  # each distinct text once: the labels count the events
            text = _several(cr, acc.attrs, said, len(acc.event_ids), counted=False)
            text += (
                " ("
                + ", ".join([lbl if n == 1 else f"{lbl} ×{n}" for lbl, n in acc.labels.items()])
                + ")"
            )
        elif not cr.is_frequency and len(acc.event_ids) > 1:
            text = _several(cr, acc.attrs, said, len(acc.event_ids))
        category = cr.category
        reasons.append(
            Reason(cr.name, category, pts, text + capped, tuple(acc.event_ids), "engagement")
        )
        if hit_times is not None and acc.times is not None and pts > 0:
            hit_times.append((cr.name, tuple(acc.times)))
        by_cat[category] = by_cat.get(category, 0.0) + pts
        if cr.hand_raiser and hand_raise_text is None:
            attrs = acc.first_attrs
            hand_raise_text = str(attrs.get("form") or attrs.get("name") or cr.description)[:80]
        if cr.sales_signal and sales_signal is None:
            sales_signal = said

    engagement = 0.0
    for cat, total in by_cat.items():
        cap = cm.category_caps[cat]
        if cap is not None and abs(total) > cap:
            clamped = float(cap if total > 0 else -cap)
            in_cat = [i for i, r in enumerate(reasons) if r.category == cat]
            if len(in_cat) == 1:  # one rule: fold the cap into its own reason
                only = reasons[in_cat[0]]
                reasons[in_cat[0]] = Reason(
                    only.rule,
                    cat,
                    clamped,
                    f"{only.text} ({cat} capped at {cap})",
                    only.event_ids,
                    "engagement",
                )
                engagement += clamped
                continue
            reasons.append(
                Reason(
                    f"cap:{cat}",
                    cat,
                    round(clamped - total, 2),
                    f"{cat} points capped at {cap}",
                    (),
                    "engagement",
                )
            )
            total = clamped
        engagement += total
    engagement = round(engagement, 2)

    fit_points, grade, block_mql, fit_reasons = _fit_of(cm, contact, enrichment, fired, fits)
    reasons.extend(fit_reasons)

    total = engagement
    if cm.add_to_score:
        base = float(m.fit.score_points[grade])  # type: ignore[index]
        total += base
        reasons.append(
            Reason("fit_base", "fit", base, f"{_signed(base)} profile grade {grade}", (), "fit")
        )
    total = round(total, 2)

    decision = decide_lifecycle(
        contact,
        score=total,
        grade=grade,
        hand_raiser=hand_raise_text,
        block_mql=block_mql,
        sales_signal=sales_signal,
        policy=m.lifecycle,
    )
    behaviour_yes = hand_raise_text is not None or total >= cm.mql_threshold
    mismatch = behaviour_yes and grade not in cm.mql_grades

    positive_exits = [x for x in exits if x > 0]
    candidates: list[datetime] = []
    if positive_exits:
        # past year 9999 (a window of ~3M days): it never changes
        with contextlib.suppress(OverflowError, ValueError):
            candidates.append(now + timedelta(seconds=min(positive_exits)))
    if future is not None:
        candidates.append(future)
    if decaying:
        candidates.append(now + timedelta(days=cm.step_days))
    next_change = min(candidates) if candidates else None

    return ScoreResult(
        contact_id=contact.id,
        score=total,
        engagement_points=engagement,
        fit_points=fit_points,
        grade=grade,
        lifecycle=decision,
        profile_mismatch=mismatch,
        model_version=m.version,
        model_fingerprint=model.fingerprint,
        scored_at=now,
        next_change_at=next_change,
        reasons=tuple(reasons),
        hand_raiser=hand_raise_text is not None and not block_mql,
        priority=priority_label(grade, total, cm.priority_bands),
        hit_times=None if hit_times is None else tuple(hit_times),
    )
