"""Account coverage of `leadscore calibrate` (issue 21): did the accounts convert, by account
grade and MQA, is a contact at an MQA likelier to convert, and which MQA threshold would have
separated the accounts that converted from those that did not?

**Account outcome**, from its members' outcomes (outcomes.py, the contact rule): an account
*converted* when any member converted within its horizon (at the first such conversion); it did
*not* when none converted, at least one member's horizon passed without it, and no member is
still inside its horizon or reached SQL at an unknown time (it could still convert, or may
have: left out, as for contacts). Members are the account's contacts today (`contact_accounts`).

**Replay**, as for contacts (observe.py): every member is scored as a plain lead by the real
engine at the end of each UTC day on which any member had a scored event, from the account's
first scored engagement to just before its first conversion (or the end of the last member's
horizon), and the account is rolled up from those scores by the sync's scorer
(`connector.scoring.accounts.score_account`, members' parts as the sync reads them). The
account's grade is today's (its company's firmographics). An account *was an MQA* when, at some
checkpoint, its score reached the threshold with an allowed grade and enough engaged people.

**Contacts at an MQA**: a labelled contact counts as "at an MQA" when its account was an MQA at
a checkpoint inside the contact's own observation (from its first scored engagement to its
conversion or the end of its horizon), so an MQA that came after a contact's outcome never
counts for it.

**Suggested MQA threshold**: over the labelled accounts whose grade may be an MQA, the threshold
that best separates those that converted (Youden's J: the share of converting accounts it makes
MQAs minus the share of the others it does), ties going to the threshold nearest the current
one; only with at least `min_account_conversions` converted and as many non-converted accounts
(else "not enough data", nothing suggested).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connector.calibrate.observe import Dataset, as_plain_lead, checkpoints
from connector.calibrate.outcomes import Outcome, outcome_for
from connector.calibrate.stats import Interval, lift_interval, wilson
from connector.model.loader import LoadedModel
from connector.scoring.accounts import account_fit, member_hits, score_account
from connector.scoring.engine import score
from connector.types import AccountMember, Contact, Enrichment, Event

GRADES = ("A", "B", "C", "D")
AT_MQA, NOT_MQA, NO_ACCOUNT = "at an MQA", "at another account", "no scored account"


@dataclass(frozen=True, slots=True)
class AccountObservation:
    """One account replayed over its observation."""

    account_id: str
    label: str
    grade: str
    status: str  # "converted", "not_converted", or why it is left out
    members: int
    first_engaged_at: datetime | None
    end: datetime | None  # checkpoints are strictly before this
    trail: tuple[tuple[datetime, float, int], ...] = ()  # (checkpoint, score, engaged people)
    blocked: bool = False  # a `force` rule of the account fit blocks it from MQA

    @property
    def converted(self) -> bool:
        return self.status == "converted"

    @property
    def labelled(self) -> bool:
        return self.status in ("converted", "not_converted")

    def peak(self, min_people: int) -> float | None:
        """The highest score at a checkpoint with at least `min_people` engaged."""
        return max((s for _, s, n in self.trail if n >= min_people), default=None)

    def mqa_between(self, start: datetime, end: datetime, threshold: float, rule: MqaRule) -> bool:
        """Was it an MQA at some checkpoint in [start, end)?"""
        if self.blocked or self.grade not in rule.grades:
            return False
        return any(
            start <= at < end and s >= threshold and n >= rule.min_people for at, s, n in self.trail
        )


@dataclass(frozen=True, slots=True)
class MqaRule:
    threshold: float
    grades: tuple[str, ...]
    min_people: int

    def mqa(self, o: AccountObservation, threshold: float | None = None) -> bool:
        t = self.threshold if threshold is None else threshold
        peak = o.peak(self.min_people)
        return not o.blocked and o.grade in self.grades and peak is not None and peak >= t


@dataclass(frozen=True, slots=True)
class GroupRate:
    """Conversion of one group (of accounts or contacts), with its 95% Wilson interval."""

    key: str
    total: int
    converted: int
    rate: Interval | None


@dataclass(frozen=True, slots=True)
class ThresholdRow:
    """What one MQA threshold does to the labelled accounts whose grade may be an MQA."""

    threshold: float
    mqas: int
    mqas_converted: int
    others: int
    others_converted: int
    recall: float | None  # share of the converting accounts that are MQAs
    false_rate: float | None  # share of the others that are MQAs
    separation: float | None  # Youden's J = recall - false_rate

    @property
    def mqa_rate(self) -> Interval | None:
        return wilson(self.mqas_converted, self.mqas)

    @property
    def other_rate(self) -> Interval | None:
        return wilson(self.others_converted, self.others)


@dataclass(frozen=True, slots=True)
class AccountCalibration:
    accounts: int  # accounts with live members
    converted: int
    not_converted: int
    left_out: dict[str, int]  # why, how many
    by_grade: tuple[GroupRate, ...]
    by_mqa: tuple[GroupRate, ...]  # was an MQA (the model's threshold) / was not
    contacts: tuple[GroupRate, ...]  # labelled contacts at an MQA / another account / none
    contact_lift: Interval | None  # contacts at an MQA vs at another account
    rule: MqaRule
    min_conversions: int
    current: ThresholdRow | None
    suggested: ThresholdRow | None
    thresholds: tuple[ThresholdRow, ...]  # every candidate, ascending
    insufficient: str | None  # why no MQA threshold is suggested
    observations: tuple[AccountObservation, ...] = ()

    @property
    def labelled(self) -> int:
        return self.converted + self.not_converted

    @property
    def suggested_threshold(self) -> float | None:
        return None if self.suggested is None else self.suggested.threshold


def account_coverage(
    ds: Dataset, model: LoadedModel, *, min_conversions: int = 10
) -> AccountCalibration | None:
    """Account outcomes, conversion by grade and MQA, the lift of an MQA for its contacts and
    a suggested MQA threshold (see the module docstring). None: the model scores no accounts
    or no account has members. Reads the state DB; writes nothing."""
    from connector.account_stage import AccountStage
    from connector.state.accounts import live_account_members

    section = model.model.accounts
    if section is None or not section.enabled:
        return None
    store, crm = ds.store, ds.crm
    members_of = live_account_members(store, crm)
    if not members_of:
        return None
    stage = AccountStage.detached(store, crm, model)
    stage.learn(ds.enrichments())  # the firmographics the members' enrichment found
    companies = store.get_crm_companies(
        crm, [a.partition(":")[2] for a in members_of if a.startswith("company:")]
    )
    rule = MqaRule(float(section.mqa.threshold), tuple(section.mqa.grades), section.mqa.min_people)
    observations: list[AccountObservation] = []
    contact_outcomes: dict[str, Outcome] = {}
    account_of: dict[str, str] = {}
    for account_id, rows in members_of.items():
        ids = [cid for cid, _, _ in rows]
        account, _ = stage._account_from(account_id, companies)
        c = account.company
        label = f"{c.name} ({c.domain})" if c.name and c.domain else c.name or c.domain or ""
        pairs = list(store.iter_contacts_with_events(crm, ids, batch=ds.batch))
        outcomes = {
            contact.id: outcome_for(contact, events, ds.types, ds.horizon, ds.as_of)
            for contact, events in pairs
        }
        for cid in outcomes:
            account_of[cid] = account_id
        contact_outcomes.update(outcomes)
        status, start, end = _account_outcome(outcomes.values(), ds)
        grade, blocked = account_fit(stage.ca, account)
        trail: tuple[tuple[datetime, float, int], ...] = ()
        if start is not None and end is not None:
            names = {cid: (name, title) for cid, name, title in rows}
            trail = _replay(ds, model, stage, account, pairs, names, start, end)
        observations.append(
            AccountObservation(
                account_id,
                label or account_id,
                grade,
                status,
                len(ids),
                start,
                end,
                trail,
                blocked,
            )
        )
    return _summarise(observations, contact_outcomes, account_of, ds, rule, min_conversions)


def _account_outcome(
    outcomes: Iterable[Outcome], ds: Dataset
) -> tuple[str, datetime | None, datetime | None]:
    """(status, first scored engagement, observation end) of an account from its members'."""
    engaged = [o for o in outcomes if o.first_engaged_at is not None]
    if not engaged:
        return "no engagement", None, None
    start = min(o.first_engaged_at for o in engaged if o.first_engaged_at is not None)
    converted = [o.converted_at for o in engaged if o.status == "converted" and o.converted_at]
    if converted:
        return "converted", start, min(converted)
    last = max(o.first_engaged_at + ds.horizon for o in engaged if o.first_engaged_at)
    end = min(last, ds.as_of)
    statuses = {o.status for o in engaged}
    for why in ("inside_horizon", "undated", "converted_before"):
        if why in statuses:
            return why, start, end
    return "not_converted", start, end


def _replay(
    ds: Dataset,
    model: LoadedModel,
    stage: Any,
    account: Any,
    pairs: Sequence[tuple[Contact, list[Event]]],
    names: Mapping[str, tuple[str, str | None]],
    start: datetime,
    end: datetime,
) -> tuple[tuple[datetime, float, int], ...]:
    """The account's (checkpoint, score, engaged people) at the end of each day any member had
    a scored event, from its members scored as plain leads (see the module docstring).

    Linear in the members' events, not in members × checkpoints: a member is scored again only
    at a checkpoint where it has a new event, its last score said it would change
    (`next_change_at`: an event leaving the window, decay) or it was recycled in between;
    otherwise its last part is reused as it is. So the engine runs at most (events + score
    changes) times per member, and each checkpoint adds one roll-up of the engaged members."""
    every = [e for _, events in pairs for e in events if e.occurred_at < end]
    enrichment = _enrichments(ds, [c for c, _ in pairs])
    members = [
        _Member(c, sorted((e for e in evs if e.occurred_at < end), key=_at)) for c, evs in pairs
    ]
    out: list[tuple[datetime, float, int]] = []
    for at in checkpoints(every, ds.types, start, end):
        people: list[AccountMember] = []
        for m in members:
            part = m.at(at, model, enrichment, names)
            if part is not None:
                people.append(part)
        acc = score_account(stage.ca, account, people, at)
        out.append((at, acc.score, len(acc.engaged_contacts)))
    return tuple(out)


def _at(e: Event) -> datetime:
    return e.occurred_at


class _Member:
    """One member during an account's replay: its events in time order, how many it had at
    its last score, and the part that score gave the account."""

    __slots__ = ("contact", "events", "part", "recycled", "seen", "until")

    def __init__(self, contact: Contact, events: list[Event]) -> None:
        self.contact, self.events = contact, events
        self.seen = 0
        self.part: AccountMember | None = None
        self.until: datetime | None = None  # its score changes at this time (None: never)
        self.recycled = False

    def at(
        self,
        at: datetime,
        model: LoadedModel,
        enrichment: Mapping[str, Enrichment],
        names: Mapping[str, tuple[str, str | None]],
    ) -> AccountMember | None:
        n = self.seen
        while n < len(self.events) and self.events[n].occurred_at <= at:
            n += 1
        if n == 0:
            return None
        c = self.contact
        recycled = c.recycled_at is not None and c.recycled_at < at
        stale = self.until is not None and at >= self.until
        if self.part is None or n != self.seen or stale or recycled != self.recycled:
            seen = self.events[:n]
            result = score(as_plain_lead(c, at), seen, enrichment.get(c.email or ""), model, at)
            times = {e.key: e.occurred_at.timestamp() for e in seen}
            name, title = names.get(c.id, (c.id, c.job_title))
            self.part = AccountMember(
                c.id,
                name,
                title,
                model.titles.classify(title).seniority,
                result.grade,
                result.engagement_points,
                member_hits(result, times),
            )
            self.seen, self.until, self.recycled = n, result.next_change_at, recycled
        return self.part


def _enrichments(ds: Dataset, contacts: Sequence[Contact]) -> dict[str, Enrichment]:
    if ds.enrich is None:
        return {}
    emails = sorted({c.email for c in contacts if c.email})
    found = ds.enrich(emails, ds.as_of) if emails else {}
    return {e: found.get(e) or found[e.lower()] for e in emails if e in found or e.lower() in found}


def _group(key: str, accounts: Sequence[AccountObservation]) -> GroupRate:
    return _rate(key, len(accounts), sum(o.converted for o in accounts))


def _rate(key: str, total: int, converted: int) -> GroupRate:
    return GroupRate(key, total, converted, wilson(converted, total))


def _row(labelled: Sequence[AccountObservation], rule: MqaRule, t: float) -> ThresholdRow:
    mqa = [o for o in labelled if rule.mqa(o, t)]
    other = [o for o in labelled if not rule.mqa(o, t)]
    pos = sum(o.converted for o in labelled)
    neg = len(labelled) - pos
    tp = sum(o.converted for o in mqa)
    fp = len(mqa) - tp
    recall = tp / pos if pos else None
    false_rate = fp / neg if neg else None
    sep = recall - false_rate if recall is not None and false_rate is not None else None
    return ThresholdRow(
        t, len(mqa), tp, len(other), sum(o.converted for o in other), recall, false_rate, sep
    )


def _summarise(
    obs: list[AccountObservation],
    outcomes: Mapping[str, Outcome],
    account_of: Mapping[str, str],
    ds: Dataset,
    rule: MqaRule,
    min_conversions: int,
) -> AccountCalibration:
    labelled = [o for o in obs if o.labelled]
    left: dict[str, int] = {}
    for o in obs:
        if not o.labelled:
            left[o.status] = left.get(o.status, 0) + 1
    by_grade = tuple(_group(g, [o for o in labelled if o.grade == g]) for g in GRADES)
    by_mqa = (
        _group("MQA", [o for o in labelled if rule.mqa(o)]),
        _group("not MQA", [o for o in labelled if not rule.mqa(o)]),
    )

    # labelled contacts: at an MQA during their own observation, at another account, or none
    by_id = {o.account_id: o for o in obs}
    groups: dict[str, list[bool]] = {AT_MQA: [], NOT_MQA: [], NO_ACCOUNT: []}
    for cid, out in ds.outcomes.items():
        contact_outcome = outcomes.get(cid, out)
        acc = by_id.get(account_of.get(cid, ""))
        label = contact_outcome.label
        if label is None or contact_outcome.first_engaged_at is None:
            continue
        if acc is None:
            groups[NO_ACCOUNT].append(label)
            continue
        end = contact_outcome.observation_end(ds.horizon)
        at = acc.mqa_between(contact_outcome.first_engaged_at, end, rule.threshold, rule)
        groups[AT_MQA if at else NOT_MQA].append(label)
    contacts = tuple(_rate(k, len(v), sum(v)) for k, v in groups.items())
    lift = lift_interval(
        contacts[0].converted, contacts[0].total, contacts[1].converted, contacts[1].total
    )

    eligible = [o for o in labelled if o.grade in rule.grades and not o.blocked]
    peaks = sorted({round(p, 2) for o in eligible if (p := o.peak(rule.min_people)) is not None})
    candidates = sorted(set(peaks) | {rule.threshold})
    rows = tuple(_row(eligible, rule, t) for t in candidates)
    current = next((r for r in rows if r.threshold == rule.threshold), None)
    pos = sum(o.converted for o in eligible)
    neg = len(eligible) - pos
    insufficient: str | None = None
    suggested: ThresholdRow | None = None
    if min(pos, neg) < min_conversions:
        grades = ", ".join(rule.grades)
        insufficient = (
            f"not enough data: {pos} converted and {neg} not converted account(s) of grade "
            f"{grades} with a known outcome; at least {min_conversions} of each are needed to "
            "suggest an MQA threshold (--min-accounts)"
        )
    else:
        scored = [r for r in rows if r.separation is not None]
        if scored:
            suggested = max(
                scored,
                key=lambda r: (
                    round(r.separation or 0.0, 9),
                    -abs(r.threshold - rule.threshold),
                    r.threshold,
                ),
            )
    return AccountCalibration(
        accounts=len(obs),
        converted=sum(o.converted for o in labelled),
        not_converted=sum(not o.converted for o in labelled),
        left_out=left,
        by_grade=by_grade,
        by_mqa=by_mqa,
        contacts=contacts,
        contact_lift=lift,
        rule=rule,
        min_conversions=min_conversions,
        current=current,
        suggested=suggested,
        thresholds=rows,
        insufficient=insufficient,
        observations=tuple(obs),
    )
