"""The pure scoring core: contact + events + enrichment + model + now → ScoreResult with reasons.

No clock, no I/O, no globals beyond a memo of compiled models keyed by fingerprint.
Same input, same output. Duplicate event ids count once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from connector.model.loader import LoadedModel
from connector.model.schema import EngagementRule, ForceGrade, Tier
from connector.scoring.lifecycle import decide_lifecycle
from connector.scoring.matchers import FieldCheck, check_all, compile_conditions
from connector.types import Contact, Enrichment, Event, Reason, ScoreResult

DAY = 86400.0
_SEVERITY = {"A": 0, "B": 1, "C": 2, "D": 3}


class _SafeAttrs(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def _fmt(template: str, attrs: Mapping[str, Any]) -> str:
    if "{" not in template:
        return template
    safe = _SafeAttrs({k: str(v)[:80] for k, v in attrs.items()})
    try:
        return template.format_map(safe)
    except (ValueError, IndexError, AttributeError):
        return template


@dataclass(slots=True)
class _CompiledTier:
    checks: list[FieldCheck]
    points: int
    label: str


@dataclass(slots=True)
class _CompiledRule:
    rule: EngagementRule
    checks: list[FieldCheck]
    tiers: list[_CompiledTier] | None
    negative: bool

    def points_for(self, attrs: Mapping[str, Any]) -> tuple[int, str | None] | None:
        if self.tiers is None:
            assert self.rule.points is not None
            return self.rule.points, None
        for t in self.tiers:
            if check_all(t.checks, attrs.get):
                return t.points, t.label
        return None


@dataclass(slots=True)
class _Acc:
    points: float = 0.0
    event_ids: list[str] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    first_attrs: Mapping[str, Any] | None = None
    times: list[float] = field(default_factory=list)  # frequency rules: event ages (seconds)
    keys: list[str] = field(default_factory=list)
    days: list[int] = field(default_factory=list)  # frequency rules: days before `now`
    exits: list[float] = field(default_factory=list)  # ages at which a counted event leaves


class CompiledModel:
    """A model compiled for speed: rules indexed by event type, patterns compiled once."""

    def __init__(self, loaded: LoadedModel) -> None:
        m = loaded.model
        self.loaded = loaded
        self.model = m
        self.window_s = m.engagement.window_days * DAY
        lists = m.lists
        self.fit_rules = [(r, compile_conditions(r.when, lists)) for r in m.fit.rules]
        self.force_rules: list[tuple[ForceGrade, list[FieldCheck]]] = [
            (f, compile_conditions(f.when, lists)) for f in m.fit.force
        ]
        self.by_type: dict[str, list[_CompiledRule]] = {}
        self.rules: list[_CompiledRule] = []
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
            cr = _CompiledRule(r, compile_conditions(r.when, lists), tiers, negative)
            self.rules.append(cr)
            for et in r.event_types:
                self.by_type.setdefault(et, []).append(cr)


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
            _COMPILED.clear()
        cm = _COMPILED[key] = CompiledModel(loaded)
    return cm


def _decay_weight(cm: CompiledModel, age_s: float, negative: bool) -> float:
    d = cm.model.engagement.decay
    if d.mode == "none" or (negative and not d.negative_decays):
        return 1.0
    if d.mode == "linear":
        return max(0.0, 1.0 - age_s / cm.window_s)
    return float(0.5 ** (age_s / (d.half_life_days * DAY)))


def _frequency_fires(
    rule: EngagementRule, ages: list[float], keys: list[str], days: list[int]
) -> tuple[bool, list[str], float]:
    """Return (fires, event ids of the qualifying burst, age of the burst's newest event).

    The newest qualifying burst is chosen, so the reason names the events a rep remembers.
    """
    f = rule.frequency
    assert f is not None
    order = sorted(range(len(ages)), key=lambda i: ages[i])  # newest first
    if f.count is not None:
        n = f.count
        if len(order) < n:
            return False, [], 0.0
        if f.within_days is None:
            return True, [keys[i] for i in order], ages[order[0]]
        span = f.within_days * DAY
        for i in range(len(order) - n + 1):
            if ages[order[i + n - 1]] - ages[order[i]] <= span:
                burst = order[i : i + n]
                return True, [keys[j] for j in burst], ages[burst[0]]
        return False, [], 0.0
    assert f.distinct_days is not None
    within = f.within_days if f.within_days is not None else float("inf")
    by_day: dict[int, list[int]] = {}
    for i in order:
        by_day.setdefault(days[i], []).append(i)
    ordered = sorted(by_day)  # days before now, newest first
    k = f.distinct_days
    for i in range(len(ordered) - k + 1):
        if ordered[i + k - 1] - ordered[i] < within:
            idx = [j for d in ordered[i : i + k] for j in by_day[d]]
            return True, [keys[j] for j in idx], min(ages[j] for j in idx)
    return False, [], 0.0


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


def _grade_for(cm: CompiledModel, fit_points: float) -> str:
    g = cm.model.fit.grades
    if fit_points >= g["A"]:
        return "A"
    if fit_points >= g["B"]:
        return "B"
    if fit_points >= g["C"]:
        return "C"
    return "D"


def _signed(points: float) -> str:
    v = int(points) if float(points).is_integer() else round(points, 1)
    return f"+{v}" if points >= 0 else f"{v}"


def _chronological(ev: Event) -> tuple[datetime, str, str]:
    return (ev.occurred_at, ev.source, ev.source_id)


def score(
    contact: Contact,
    events: Iterable[Event],
    enrichment: Enrichment | None,
    model: LoadedModel,
    now: datetime,
) -> ScoreResult:
    """Score one contact. `events` may contain duplicates and other contacts' merged events."""
    cm = compile_model(model)
    m = cm.model
    window_s = cm.window_s
    neg_decays = m.engagement.decay.negative_decays
    recycled_at = contact.recycled_at
    accs: dict[str, _Acc] = {}
    freq_rules: list[_CompiledRule] = []
    seen: set[tuple[str, str]] = set()
    future: datetime | None = None

    for ev in sorted(events, key=_chronological):
        rules = cm.by_type.get(ev.type)
        if not rules:
            continue
        k = (ev.source, ev.source_id)
        if k in seen:
            continue
        seen.add(k)
        t = ev.occurred_at
        if t > now:
            if future is None or t < future:
                future = t
            continue
        if recycled_at is not None and t <= recycled_at:
            continue
        age = (now - t).total_seconds()
        attrs = ev.attributes
        for cr in rules:
            in_window = age < window_s or (cr.negative and not neg_decays)
            if not in_window:
                continue
            if cr.checks and not check_all(cr.checks, attrs.get):
                continue
            acc = accs.get(cr.rule.name)
            if acc is None:
                acc = accs[cr.rule.name] = _Acc()
            key = f"{ev.source}:{ev.source_id}"
            if cr.rule.frequency is not None:
                acc.times.append(age)
                acc.keys.append(key)
                acc.days.append((now.date() - t.date()).days)
                if acc.first_attrs is None:
                    acc.first_attrs = attrs
                continue
            got = cr.points_for(attrs)
            if got is None:
                continue
            ev_points, label = got
            w = _decay_weight(cm, age, cr.negative)
            acc.points += ev_points * w
            acc.event_ids.append(key)
            if label is not None:
                acc.labels[label] = acc.labels.get(label, 0) + 1
            if acc.first_attrs is None:
                acc.first_attrs = attrs
            if not (cr.negative and not neg_decays):
                acc.exits.append(window_s - age)

    # frequency rules fire once on their pattern
    for cr in cm.rules:
        if cr.rule.frequency is None:
            continue
        acc = accs.get(cr.rule.name)
        if acc is None:
            continue
        fires, ids, newest_age = _frequency_fires(cr.rule, acc.times, acc.keys, acc.days)
        if not fires:
            del accs[cr.rule.name]
            continue
        assert cr.rule.points is not None
        acc.points = cr.rule.points * _decay_weight(cm, newest_age, cr.negative)
        acc.event_ids = ids
        if not (cr.negative and not neg_decays):
            acc.exits = [window_s - a for a in acc.times]
        freq_rules.append(cr)

    reasons: list[Reason] = []
    fired: set[str] = set()
    hand_raise_text: str | None = None
    sales_signal: str | None = None
    by_cat: dict[str, float] = {}
    exits: list[float] = []
    decaying = False
    for cr in cm.rules:
        acc = accs.get(cr.rule.name)
        if acc is None:
            continue
        r = cr.rule
        pts = acc.points
        capped = ""
        if r.cap is not None and abs(pts) > r.cap:
            pts = float(r.cap if pts > 0 else -r.cap)
            capped = f" (capped at {r.cap})"
        pts = round(pts, 2)
        fired.add(r.name)
        exits.extend(acc.exits)
        if m.engagement.decay.mode != "none" and pts != 0 and not (cr.negative and not neg_decays):
            decaying = True
        text = _fmt(r.description or r.name, acc.first_attrs or {})
        if acc.labels:
            text += (
                " ("
                + ", ".join(lbl if n == 1 else f"{lbl} ×{n}" for lbl, n in acc.labels.items())
                + ")"
            )
        n_events = len(acc.event_ids)
        if r.frequency is None and n_events > 1 and not acc.labels:
            text += f" ×{n_events}"
        reasons.append(
            Reason(r.name, r.category, pts, text + capped, tuple(acc.event_ids), "engagement")
        )
        by_cat[r.category] = by_cat.get(r.category, 0.0) + pts
        if r.hand_raiser and hand_raise_text is None:
            attrs = acc.first_attrs or {}
            hand_raise_text = str(attrs.get("form") or attrs.get("name") or r.description)[:80]
        if r.sales_signal and sales_signal is None:
            sales_signal = _fmt(r.description or r.name, acc.first_attrs or {})

    engagement = 0.0
    for cat, total in by_cat.items():
        cap = m.engagement.categories[cat].cap
        if cap is not None and abs(total) > cap:
            clamped = float(cap if total > 0 else -cap)
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

    # fit
    facts = _fit_facts(cm, contact, enrichment)
    facts["fired"] = frozenset(fired)
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
        if check_all(checks, facts.get):
            if _SEVERITY[force.grade] > _SEVERITY[grade]:
                grade = force.grade
            block_mql = block_mql or force.block_mql
            detail = _fit_detail([k for k in force.when if k != "fired"], facts)
            label = force.description or force.name
            forced.append(label)
            suffix = "; blocked from MQL" if force.block_mql else ""
            reasons.append(
                Reason(
                    force.name,
                    "fit",
                    0.0,
                    f"grade {force.grade} forced: {label}"
                    + (f" ({detail})" if detail else "")
                    + suffix,
                    (),
                    "fit",
                )
            )
    if enrichment is not None and enrichment.error:
        reasons.append(
            Reason("email_invalid", "fit", 0.0, f"e-mail not usable: {enrichment.error}", (), "fit")
        )
    if forced:
        summary = f"grade {grade}: " + ", ".join(forced)
    else:
        best = [lbl for p, lbl in sorted(fit_texts, key=lambda x: -x[0]) if p > 0][:2]
        summary = f"grade {grade}: " + (", ".join(best) if best else "no profile match")
    reasons.append(Reason("grade", "fit", round(fit_points, 2), summary, (), "fit"))

    total = engagement
    if m.fit.add_to_score:
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
    behaviour_yes = hand_raise_text is not None or total >= m.lifecycle.mql.threshold
    mismatch = behaviour_yes and grade not in m.lifecycle.mql.grades

    candidates: list[datetime] = [now + timedelta(seconds=s) for s in exits if s > 0]
    if future is not None:
        candidates.append(future)
    if decaying:
        candidates.append(now + timedelta(days=m.engagement.decay.step_days))
    next_change = min(candidates) if candidates else None

    return ScoreResult(
        contact_id=contact.id,
        score=total,
        engagement_points=engagement,
        fit_points=round(fit_points, 2),
        grade=grade,
        lifecycle=decision,
        profile_mismatch=mismatch,
        model_version=m.version,
        model_fingerprint=model.fingerprint,
        scored_at=now,
        next_change_at=next_change,
        reasons=tuple(reasons),
        hand_raiser=hand_raise_text is not None and not block_mql,
    )
