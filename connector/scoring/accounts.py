"""Account scoring: pure, like the contact engine (no I/O; `now` is an argument).

An account's score is built from its members' contact scores, never from raw events twice:

- **fit** (grade A-D): the company's own firmographics and the target-account list;
- **roll-up**: each engaged member's engagement points, capped per contact (one noisy intern
  cannot make an account hot), optionally only the `top_contacts` most engaged;
- **breadth**: points for the number of distinct engaged people within `within_days`;
- **committee**: points for the buying-committee roles (from title seniority) they span;
- **account rules**: at least N people matched by given contact rules within D days.

Every point has a reason naming the people (and rules) behind it. The work is linear in the
members' rule hits: an account of 5,000 contacts costs 5,000 members' hits, sorted once.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, Final

from connector.member import AccountMember
from connector.model.loader import LoadedModel
from connector.model.schema import AccountsModel, Lifecycle
from connector.reason import shown_bar as _bar
from connector.reason import shown_points as _num
from connector.reason import shown_signed as _signed
from connector.scoring.lifecycle import decide_lifecycle
from connector.scoring.matchers import FieldCheck, check_all, compile_conditions
from connector.text import display_text
from connector.types import (
    MQL,
    Account,
    AccountResult,
    Contact,
    LifecycleDecision,
    Reason,
    ScoreResult,
    stage_rank,
)

# Final: the compiled build reads them as constants (a module-level name is a dict lookup
# each time it is read)
DAY: Final = 86400.0
_NAMES_SHOWN: Final = 4  # people named in one reason before "…and N more"
NAME_SHOWN: Final = 60  # characters of a person's name a reason shows (longer: cut, with "…")
TITLE_SHOWN: Final = 40  # characters of a job title a reason shows


class CompiledAccounts:
    """The `accounts:` section with its conditions compiled once."""

    def __init__(self, loaded: LoadedModel, target_domains: frozenset[str] = frozenset()):
        section = loaded.model.accounts
        if section is None:
            raise ValueError("the model has no accounts section")
        self.loaded = loaded
        self.section: AccountsModel = section
        self.role_of: dict[str, str] = {
            seniority: role
            for role, seniorities in section.engagement.committee.roles.items()
            for seniority in seniorities
        }
        self.target_domains = target_domains
        self.role_order: list[str] = list(section.engagement.committee.roles)
        # the contact rules the account rules count
        self.account_rule_names = frozenset(n for r in section.engagement.rules for n in r.rules)
        # the section's numbers and texts as plain attributes: `score_account` reads them for
        # every account, and a pydantic model's attribute costs a generic lookup each time
        eng = section.engagement
        self.version: str = loaded.version
        self.fingerprint: str = loaded.fingerprint
        self.cap: float = eng.per_contact_cap
        self.top: int | None = eng.top_contacts
        self.breadth_days: float = eng.breadth.within_days
        self.breadth_min: float = eng.breadth.min_points
        self.breadth_tiers: list[tuple[int, int]] = [(t.min, t.points) for t in eng.breadth.tiers]
        self.committee_tiers: list[tuple[int, int]] = [
            (t.min, t.points) for t in eng.committee.tiers
        ]
        # (name, label, points, people, span in seconds, the contact rules it counts, once each)
        self.rules: list[tuple[str, str, int, int, float, list[str]]] = [
            (r.name, r.description or r.name, r.points, r.people, r.within_days * DAY,
             list(dict.fromkeys(r.rules)))
            for r in eng.rules
        ]  # fmt: skip
        self.mqa_threshold: float = section.mqa.threshold
        self.mqa_grades: list[str] = list(section.mqa.grades)
        self.mqa_min_people: int = section.mqa.min_people
        g = section.fit.grades
        self.grade_a: int = g["A"]
        self.grade_b: int = g["B"]
        self.grade_c: int = g["C"]
        # (name, label, points, the fields it reads, its checks)
        self.fit_checks: list[tuple[str, str, int, list[str], list[FieldCheck]]] = [
            (r.name, r.description or r.name, r.points, list(r.when.keys()),
             compile_conditions(r.when, loaded.model.lists))
            for r in section.fit.rules
        ]  # fmt: skip
        # (name, label, grade, blocks MQA, the fields it reads, its checks): the `force`
        # rules (a competitor's or vendor's domain); none: `_fit` walks an empty list
        self.force_checks: list[tuple[str, str, str, bool, list[str], list[FieldCheck]]] = [
            (f.name, f.description or f.name, f.grade, f.block_mqa, list(f.when.keys()),
             compile_conditions(f.when, loaded.model.lists))
            for f in section.fit.force
        ]  # fmt: skip


def compile_accounts(loaded: LoadedModel, target_domains: Iterable[str] = ()) -> CompiledAccounts:
    return CompiledAccounts(loaded, frozenset(d.strip().lower() for d in target_domains))


def member_hits(
    result: ScoreResult, event_times: Mapping[str, float]
) -> tuple[tuple[str, float], ...]:
    """(rule, event time) for every event behind the contact's positive engagement reasons;
    `event_times` maps an event key ("source:source_id") to its Unix time."""
    out: list[tuple[str, float]] = []
    for r in result.reasons:
        if r.kind != "engagement" or r.points <= 0:
            continue
        for key in r.event_ids:
            t = event_times.get(key)
            if t is not None:
                out.append((r.rule, t))
    return tuple(out)


def scored_hits(result: ScoreResult) -> tuple[tuple[str, float], ...]:
    """`member_hits` from the scorer's own event times (`result.hit_times`: scored within
    `engine.keeping_hit_times`): (rule, event time) for every event behind the contact's
    positive engagement reasons, in the same order."""
    return tuple((rule, t) for rule, times in _hit_times(result) for t in times)


def _hit_times(result: ScoreResult) -> tuple[tuple[str, tuple[float, ...]], ...]:
    """The events' times of each positive engagement rule reason, as (rule, times), which a
    result scored within `engine.keeping_hit_times` carries."""
    by_reason = result.hit_times
    if by_reason is None:
        raise ValueError(
            f"contact {result.contact_id}: scored without its events' times "
            "(score within scoring.engine.keeping_hit_times)"
        )
    return by_reason


def counted_rules(loaded: LoadedModel) -> frozenset[str]:
    """The contact rules the model's account rules count (`member_part` keeps all their hits)."""
    section = loaded.model.accounts
    if section is None:
        return frozenset()
    return frozenset(n for rule in section.engagement.rules for n in rule.rules)


def member_part(
    result: ScoreResult, counted: frozenset[str], now_ts: float
) -> tuple[Any, str, tuple[tuple[str, float], ...]]:
    """What account scoring reads of a member: (engagement points, grade, rule hits), the
    hits as (rule, event time) for its positive engagement reasons' events, their times from
    the scorer (`result.hit_times`: scored within `engine.keeping_hit_times`). Only the hits
    `score_account` reads are kept: the latest one up to `now_ts` (breadth) and every one of
    the rules in `counted` (those the account rules count)."""
    hits: list[tuple[str, float]] = []
    latest = -_INF
    latest_rule = ""
    # the scorer's (rule, times) of the positive rule reasons: no walk over the reasons
    for rule, times in _hit_times(result):
        if rule in counted:
            for t in times:
                hits.append((rule, t))
                if latest < t <= now_ts:
                    latest, latest_rule = t, rule
        else:
            for t in times:
                if latest < t <= now_ts:
                    latest, latest_rule = t, rule
    if latest_rule and latest_rule not in counted:  # a counted rule's hits are all kept
        hits.append((latest_rule, latest))
    # the points as the result holds them (the compiled build would make an int a float)
    return (_engagement_points(result), result.grade, tuple(hits))


_INF: Final = float("inf")


def member_name(first: str | None, last: str | None, email: str | None, contact_id: str) -> str:
    """How account reasons name a member: first and last name, else the e-mail, else the id."""
    if first and last:
        return f"{first} {last}"
    return first or last or email or contact_id


def collect_members(
    rescored: Iterable[Any],
    links: Sequence[tuple[str, str]],
    counted: frozenset[str],
    now_ts: float,
    seniority: dict[str | None, str],
    classify: Callable[[str | None], str],
    into: list[Any],
) -> dict[str, list[AccountMember]]:
    """{account id: its members} of `links` ((account id, contact id), by account then
    contact id), each member built from its contact and first result as `rescored` (contact
    id order: each a `Rescored`, (contact, enrichment, results)) yields them, with its
    `member_part`; every item of `rescored` is appended to `into` (the batch's scores, to save).
    A contact of `links` that `rescored` does not yield is not live: left out, and an account
    with no live member too. `seniority`: a memo of `classify(job title)` (titles repeat),
    filled here. A full rescore's batch of whole accounts (`ops.rescore.recompute_all(
    accounts=...)`).

    Each member is built as soon as its contact is scored, while its result is still in the
    CPU's caches: walking the batch's 500 results afterwards measured ~3 µs a contact more
    (the results are cold by then). The members of an account come in contact-id order, as
    `links` lists them; the accounts in the order of `links`."""
    account_of: dict[str, str] = {}
    out: dict[str, list[AccountMember]] = {}
    for account_id, cid in links:
        account_of[cid] = account_id
        if account_id not in out:
            out[account_id] = []
    for item in rescored:  # items as `Any`: a compiled tuple type would drop the NamedTuple
        into.append(item)
        contact: Contact = item[0]
        result: ScoreResult = item[2][0]
        cid = contact.id
        account = account_of.get(cid)
        if account is None:
            continue
        title = contact.job_title
        level = seniority.get(title)
        if level is None:
            level = seniority[title] = classify(title)
        points, grade, hits = member_part(result, counted, now_ts)
        name = member_name(contact.first_name, contact.last_name, contact.email, cid)
        out[account].append(AccountMember(cid, name, title, level, grade, points, hits))
    return {a: people for a, people in out.items() if people}


_engagement_points = attrgetter("engagement_points")


def score_account(
    ca: CompiledAccounts,
    account: Account,
    members: Sequence[AccountMember],
    now: datetime,
) -> AccountResult:
    now_ts = now.timestamp()
    reasons: list[Reason] = []
    memo = _Shown()

    fit_points, grade, blocked, fit_reasons = _fit(ca, account)

    # roll-up: each member's points, capped; most engaged first, then by id for a stable order
    # (sorted by plain tuples, the member's index last: no key function, members never compared)
    order = [(-m.engagement_points, m.contact_id, i) for i, m in enumerate(members)]
    order.sort()
    engaged = [members[i] for points, _, i in order if points < 0]
    top = ca.top
    counted = engaged if top is None else engaged[:top]
    cap = ca.cap
    parts = [(m, min(m.engagement_points, cap)) for m in counted]
    rollup = round(sum(p for _, p in parts), 2)
    if parts:
        shown = ", ".join(
            [
                f"{memo.person(m)} {_signed(p)}"
                + (f" (of {_num(m.engagement_points)})" if p < m.engagement_points else "")
                for m, p in parts[:_NAMES_SHOWN]
            ]
        )
        more = len(parts) - _NAMES_SHOWN
        text = (
            f"engagement of {_people(len(parts))} (at most {_num(cap)} each): "
            + shown
            + (f", …and {more} more" if more > 0 else "")
        )
        if top is not None and len(engaged) > len(counted):
            text += f" (top {top} of {len(engaged)} engaged)"
        reasons.append(
            Reason(
                "member_engagement",
                "account",
                rollup,
                text,
                tuple([f"contact:{m.contact_id}" for m, _ in parts]),
            )
        )

    # breadth: distinct people engaged within the breadth window
    days = ca.breadth_days
    window = days * DAY
    since = now_ts - window
    min_points = ca.breadth_min
    recent: list[AccountMember] = []
    next_change = _INF
    for m in engaged:
        if m.engagement_points < min_points:
            continue
        last = -_INF  # the member's latest event up to now
        for _, t in m.hits:
            if last < t <= now_ts:
                last = t
        if last >= since and last > -_INF:
            recent.append(m)
            next_change = min(next_change, last + window)
    breadth_points = _tier(ca.breadth_tiers, len(recent))
    if breadth_points:
        names = _names(recent, memo, titles=True)
        reasons.append(
            Reason(
                "breadth",
                "account",
                float(breadth_points),
                f"{_people(len(recent))} engaged in {_num(days)} days: {names}",
                tuple([f"contact:{m.contact_id}" for m in recent]),
            )
        )

    # committee: roles the recently engaged people span
    roles: dict[str, list[AccountMember]] = {}
    role_of = ca.role_of
    for m in recent:
        role = role_of.get(m.seniority)
        if role is not None:
            roles.setdefault(role, []).append(m)
    committee_points = _tier(ca.committee_tiers, len(roles))
    if committee_points:
        covered = sorted(roles, key=ca.role_order.index)
        text = f"buying committee, {len(covered)} roles: " + "; ".join(
            [f"{role.replace('_', ' ')} ({_names(roles[role], memo, shown=2)})" for role in covered]
        )
        reasons.append(
            Reason(
                "committee",
                "account",
                float(committee_points),
                text,
                tuple([f"contact:{m.contact_id}" for r in covered for m in roles[r]]),
            )
        )

    # account rules: N people matched by given rules within D days of each other
    rule_points = 0.0
    if ca.rules:
        by_rule = _hits_by_rule(members, ca.account_rule_names, now_ts)
        ranked = [i for _, _, i in order]
        for name, label, points, people, span, names_counted in ca.rules:
            fired = _account_rule(people, span, names_counted, members, by_rule, ranked)
            if fired is None:
                continue
            rule_points += points
            who = _names(fired, memo)
            reasons.append(
                Reason(
                    name,
                    "account",
                    float(points),
                    f"{label}: {who}",
                    tuple([f"contact:{m.contact_id}" for m in fired]),
                )
            )

    score = round(rollup + breadth_points + committee_points + rule_points, 2)
    threshold = ca.mqa_threshold
    is_mqa = (
        not blocked
        and score >= threshold
        and grade in ca.mqa_grades
        and len(engaged) >= ca.mqa_min_people
    )
    mqa_reason = (
        f"score {_shown(score, threshold)} ≥ {_bar(threshold)}, grade {grade}, "
        f"{_people(len(engaged))} engaged"
        if is_mqa
        else None
    )
    reasons.extend(fit_reasons)
    return AccountResult(
        account_id=account.id,
        score=score,
        engagement_points=rollup,
        fit_points=fit_points,
        grade=grade,
        mqa=is_mqa,
        mqa_reason=mqa_reason,
        members=len(members),
        engaged_contacts=tuple(m.contact_id for m in engaged),
        model_version=ca.version,
        model_fingerprint=ca.fingerprint,
        scored_at=now,
        next_change_at=_moment(next_change),
        reasons=tuple(reasons),
    )


def mqa_misses(
    section: AccountsModel, score: float, grade: str, engaged: int, rules: Iterable[str]
) -> tuple[str, ...]:
    """What of the MQA definition (`score_account`'s `is_mqa`) an account misses, each named:
    a force rule among its `rules` that blocks MQAs (`blocked: vendor domain`), the score, the
    grade, the engaged people; empty for an MQA."""
    mqa = section.mqa
    blocking = {f.name: f.description or f.name for f in section.fit.force if f.block_mqa}
    out = [f"blocked: {blocking[r]}" for r in rules if r in blocking]
    if score < mqa.threshold:
        out.append(f"score {_num(score)} < {_bar(mqa.threshold)}")  # rounded down: under it
    if grade not in mqa.grades:
        out.append(f"grade {grade}, not {' or '.join(mqa.grades)}")
    if engaged < mqa.min_people:
        out.append(f"{_people(engaged)} engaged, {mqa.min_people} needed")
    return tuple(out)


def _moment(ts: float) -> datetime | None:
    """The UTC time of `ts`; None past what a datetime holds (a breadth window of "forever":
    the account never changes by time alone)."""
    try:
        return datetime.fromtimestamp(ts, UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _fit(ca: CompiledAccounts, account: Account) -> tuple[float, str, bool, list[Reason]]:
    """(fit points, grade, blocked from MQA by a `force` rule, the fit reasons: each rule's,
    each force rule's, then the grade's)."""
    c = account.company
    domain = (c.domain or "").lower() or None
    target = account.target or (domain is not None and domain in ca.target_domains)
    facts: dict[str, Any] = {
        "employee_count": c.employee_count,
        "annual_revenue_usd": c.annual_revenue_usd,
        "industry": c.industry,
        "industry_group": c.industry_group,
        "country": c.country,
        "domain": domain,
        "name": c.name,
        "target_account": target,
    }
    points = 0.0
    reasons: list[Reason] = []
    labels: list[tuple[float, str]] = []
    for name, label, rule_points, fields, checks in ca.fit_checks:
        if not check_all(checks, facts.get):
            continue
        points += rule_points
        detail = _fit_detail(fields, facts)
        reasons.append(
            Reason(
                name,
                "account_fit",
                float(rule_points),
                f"{_signed(rule_points)} {label}" + (f" ({detail})" if detail else ""),
                (),
                "fit",
            )
        )
        labels.append((rule_points, label))
    to_a, to_b, to_c = ca.grade_a, ca.grade_b, ca.grade_c
    grade = "A" if points >= to_a else "B" if points >= to_b else "C" if points >= to_c else "D"
    blocked = False
    forced: list[str] = []
    for name, label, forced_grade, blocks, fields, checks in ca.force_checks:
        if not check_all(checks, facts.get):
            continue
        if forced_grade > grade:  # "A" < "B" < "C" < "D": the worse grade wins
            grade = forced_grade
        blocked = blocked or blocks
        forced.append(label)
        detail = _fit_detail(fields, facts)
        text = f"grade {forced_grade} forced: {label}" + (f" ({detail})" if detail else "")
        if blocks:
            text += "; blocked from MQA"
        reasons.append(Reason(name, "account_fit", 0.0, text, (), "fit"))
    if forced:
        summary = f"account grade {grade}: " + ", ".join(forced)
    else:
        best = [lbl for p, lbl in sorted(labels, key=lambda x: -x[0]) if p > 0][:2]
        summary = f"account grade {grade}: " + (", ".join(best) or "no firmographic match")
    reasons.append(Reason("grade", "account_fit", round(points, 2), summary, (), "fit"))
    return round(points, 2), grade, blocked, reasons


def account_fit(ca: CompiledAccounts, account: Account) -> tuple[str, bool]:
    """The account's grade and whether a `force` rule blocks it from MQA: what
    `score_account` makes of its fit, without its members."""
    _, grade, blocked, _ = _fit(ca, account)
    return grade, blocked


def _fit_detail(fields: Iterable[str], facts: Mapping[str, Any]) -> str:
    out: list[str] = []
    for name in fields:
        v = facts.get(name)
        if v is None or v == "" or v is False:
            continue
        if name == "employee_count":
            out.append(f"{int(v):,} employees")
        elif name == "annual_revenue_usd":
            out.append(f"revenue ${float(v) / 1e6:,.0f}M")
        elif name == "target_account":
            out.append("on the target-account list")
        else:
            out.append(f"{name.replace('_', ' ')} {v}")
    return ", ".join(out)


def _hits_by_rule(
    members: Sequence[AccountMember], names: frozenset[str], now_ts: float
) -> dict[str, tuple[list[float], list[int]]]:
    """The members' hits up to `now_ts` of the contact rules `names` (those the account rules
    count), by rule: (their event times, the index of each one's member), two lists side by
    side (no tuple a hit: the compiled build boxed each time into one and out again). One
    walk over the hits for every rule."""
    out: dict[str, tuple[list[float], list[int]]] = {}
    for i, m in enumerate(members):
        for name, t in m.hits:
            if t <= now_ts and name in names:
                got = out.get(name)
                if got is None:
                    got = out[name] = ([], [])
                got[0].append(t)
                got[1].append(i)
    return out


def _account_rule(
    people: int,
    span: float,
    rules: Sequence[str],
    members: Sequence[AccountMember],
    by_rule: Mapping[str, tuple[list[float], list[int]]],
    ranked: Sequence[int],
) -> list[AccountMember] | None:
    """The people of the most recent `span` (seconds: an account rule's `within_days`) in
    which at least `people` distinct members were matched by the contact rules `rules`
    (each once), most engaged first (`ranked`: the members' indexes in that order); None
    when no span has them. `by_rule`: the members' hits by contact rule (`_hits_by_rule`).
    The span that ends at the latest hit first, in one pass (no sort); else one sort and
    one pass: two pointers over the hits in time order, counting hits per member.

    The hits are sorted by time alone (their indexes, by a float key: a sort of (time,
    member) tuples compared tuple by tuple cost ~650 instructions a hit): hits at the same
    time end the same spans, so their order among themselves changes no span's people."""
    times: list[float] = []
    who: list[int] = []
    for name in rules:
        got = by_rule.get(name)
        if got is not None:
            times.extend(got[0])
            who.extend(got[1])
    n = len(times)
    if n < people:
        return None
    # the most recent span ends at the latest hit: the people with a hit in it, without a
    # sort (an account whose rule holds now: the usual case)
    start = max(times) - span
    chosen = [False] * len(members)
    inside = 0
    for h in range(n):
        if times[h] >= start:
            i = who[h]
            if not chosen[i]:
                chosen[i] = True
                inside += 1
    if inside < people:  # an earlier span, if any: the hits in time order
        order = sorted(range(n), key=times.__getitem__)
        # a count of hits per member in a list: the compiled build reads them unboxed, where
        # a dict of counts boxed every int
        count = [0] * len(members)
        inside = 0  # members with a hit in the span
        best_lo = best_hi = -1  # the hits of the most recent span with enough people
        lo = 0
        for k in range(n):
            h = order[k]
            i = who[h]
            c = count[i]
            if c == 0:
                inside += 1
            count[i] = c + 1
            start = times[h] - span
            while times[order[lo]] < start:
                j = who[order[lo]]
                c = count[j] - 1
                count[j] = c
                if c == 0:
                    inside -= 1
                lo += 1
            if inside >= people:  # later spans overwrite: the most recent one wins
                best_lo, best_hi = lo, k
        if best_hi < 0:
            return None
        chosen = [False] * len(members)
        for k in range(best_lo, best_hi + 1):
            chosen[who[order[k]]] = True
    return [members[i] for i in ranked if chosen[i]]


def account_mql_candidate(
    result: ScoreResult, ca: CompiledAccounts, blocked: frozenset[str] = frozenset()
) -> bool:
    """Whether an MQA would make this contact MQL-qualified (`apply_account_mql` with an
    account that is an MQA): the model names a lower bar, the contact's grade is allowed and
    its score reaches the bar, and nothing else decided (a verdict of the model, a stage past
    MQL or an SQL from sales, a recycle, a block). `blocked`: names of force rules that block
    MQL. A contact at the MQL stage already qualifies (the verdict, whatever the stage, like
    the model's own): its stage stays."""
    mqa = ca.section.mqa
    decision = result.lifecycle
    return not (
        mqa.contact_mql_threshold is None
        or decision.mql_reason is not None
        or decision.recycled
        or stage_rank(decision.target_stage) > stage_rank(MQL)
        or stage_rank(decision.current_stage) > stage_rank(MQL)
        or result.grade not in mqa.contact_grades
        or result.score < mqa.contact_mql_threshold
        or any(r.rule in blocked for r in result.reasons)
    )


ACCOUNT_MQL = "account MQA"  # how an MQL reason through the contact's account begins


def by_account(reason: str | None) -> bool:
    """Whether an MQL reason is the account's (`apply_account_mql`'s `account MQA: ...`)."""
    return reason is not None and reason.startswith(ACCOUNT_MQL)


def apply_account_mql(
    contact: Contact,
    result: ScoreResult,
    account: AccountResult,
    ca: CompiledAccounts,
    lifecycle: Lifecycle,
    blocked: frozenset[str] = frozenset(),
) -> ScoreResult:
    """A contact at an MQA becomes MQL at the lower contact threshold the model names, when
    its grade is allowed and nothing else decided its stage (an MQL, SQL, recycle or a block
    keep their decision; `account_mql_candidate`). `blocked`: names of force rules that block
    MQL. A contact the CRM shows at MQL already keeps the verdict at every pass. A result
    that carries an earlier pass's account verdict (a stored score) is first taken back to the
    contact's own (`without_account_mql`): at an account that is no MQA any more, that is
    what it gets."""
    result = without_account_mql(contact, result, lifecycle)
    if not account.mqa or not account_mql_candidate(result, ca, blocked):
        return result
    mqa = ca.section.mqa
    assert mqa.contact_mql_threshold is not None  # a candidate has a bar
    decision = result.lifecycle
    bar = mqa.contact_mql_threshold
    reason = (
        f"{ACCOUNT_MQL}: {account.account_id} (score {_shown(result.score, bar)} ≥ "
        f"{_bar(bar)} at an MQA)"
    )
    shown = stage_rank(decision.current_stage) >= stage_rank(MQL)
    new = LifecycleDecision(
        decision.current_stage,
        MQL if lifecycle.write_stage and not shown else None,
        mql=True,
        mql_reason=reason,
    )
    return dataclasses.replace(result, lifecycle=new)


def without_account_mql(contact: Contact, result: ScoreResult, lifecycle: Lifecycle) -> ScoreResult:
    """`result` with the verdict the contact has of its own where its MQL was its account's,
    as the scorer decides it (`decide_lifecycle`) for such a contact: `apply_account_mql`
    gives one only to a contact nothing else decided (no hand-raiser, no sales signal, no
    block), so no MQL reason, MQL only where the CRM shows the stage already, the initial
    stage for a contact with none. Any other result as it is."""
    if not by_account(result.lifecycle.mql_reason):
        return result
    own = decide_lifecycle(
        contact, score=result.score, grade=result.grade, hand_raiser=None, block_mql=False,
        sales_signal=None, policy=lifecycle,
    )  # fmt: skip
    return dataclasses.replace(result, lifecycle=own)


def _of(counted: float, points: float) -> str:
    return f" (of {_num(points)})" if counted < points else ""


def _tier(tiers: Sequence[tuple[int, int]], n: int) -> int:
    """The points of the highest tier `n` reaches: tiers as (min, points), ascending by min
    (validated)."""
    points = 0
    for least, tier_points in tiers:
        if n >= least:
            points = tier_points
    return points


def _names(
    members: Sequence[AccountMember],
    memo: _Shown,
    *,
    shown: int = _NAMES_SHOWN,
    titles: bool = False,
) -> str:
    """The first `shown` people by name (with their titles), then "…and N more"."""
    head = members[:shown]
    if titles:
        out = ", ".join([memo.person(m) + memo.title(m) for m in head])
    else:
        out = ", ".join([memo.person(m) for m in head])
    if len(members) > shown:
        out += f", …and {len(members) - shown} more"
    return out


class _Shown:
    """How one account's reasons show its members' names and job titles (`_person`,
    `_title`): each checked once, however many of the reasons name the member (up to four:
    its engagement, breadth, committee and account rules)."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.titles: dict[str, str] = {}

    def person(self, m: AccountMember) -> str:
        cid = m.contact_id
        got = self.names.get(cid)
        if got is None:
            got = self.names[cid] = _person(m)
        return got

    def title(self, m: AccountMember) -> str:
        title = m.title
        if not title:
            return ""
        got = self.titles.get(title)
        if got is None:
            got = self.titles[title] = _title(m)
        return got


def _person(m: AccountMember) -> str:
    """A member's name as reasons show it (`shown_text`: a 10 kB name imported by mistake
    must not fill the company's reasons); the usual name as it is, after one check."""
    name = m.name
    if len(name) <= NAME_SHOWN and name.isprintable():
        return name
    return shown_text(name, NAME_SHOWN)


def _title(m: AccountMember) -> str:
    title = m.title
    if not title:
        return ""
    if len(title) <= TITLE_SHOWN and title.isprintable():
        return f" ({title})"
    return f" ({shown_text(title, TITLE_SHOWN)})"


def shown_text(text: str, limit: int) -> str:
    """CRM text as a reason shows it: control characters dropped and lone surrogates
    replaced (`display_text`), at most `limit` characters (longer: cut at a space where
    there is one, ending in "…")."""
    if len(text) <= limit and text.isprintable():
        return text  # the usual name: as it is, at the cost of one check
    text = display_text(text).replace("\t", " ").replace("\n", " ").replace("\r", " ")
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "…"


def _people(n: int) -> str:
    return f"{n} {'person' if n == 1 else 'people'}"


def _shown(score: float, bar: float) -> str:
    """A score that reached `bar`, in its verdict's reason: as the CRM's score property shows
    it (a whole number, rounded down: `types.crm_score`), so the reason moves only when that
    does, not with every step of decay (each step would be one more write of an unchanged
    verdict); to a tenth only where the whole number would read under the bar ("60.6 ≥
    60.4", never "60 ≥ 60.4")."""
    whole = math.floor(score)
    if whole >= bar:
        return str(whole)
    tenth = _num(score)  # rounded down too; two decimals where the tenth is under the bar
    return tenth if float(tenth) >= bar else f"{math.floor(round(score * 100, 9)) / 100:.2f}"
