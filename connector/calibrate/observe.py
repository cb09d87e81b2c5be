"""What each labelled contact did before its outcome, replayed through the real scoring engine.

A contact is scored, with its stored events, at *checkpoints*: the end of every UTC day on which it
had a scored event, from its first scored engagement up to (strictly before) the end of its
observation: its conversion, or the end of its horizon. Replaying day by day (rather than scoring
once at the end) keeps the model's discovery window honest: a webinar in week one still counts for
a contact observed over 90 days with a 60-day window, exactly as it did for sales at the time.

From the replay:

- `fired`: every model rule (engagement rule, webinar-style tier, fit rule, forced grade) that
  fired at some checkpoint;
- `units`: per scoring *feature* (an engagement rule, or one tier of a tiered rule), the most
  "units" seen at a checkpoint: points given / the rule's points (so a product page viewed three
  times is 3, a frequency rule that fired is 1, a decayed event is less than 1), capped where the
  model caps the rule or its category. The score is then (almost) `sum(points x units)`, which is
  what makes a refit of points a linear problem;
- `peak_score` and `mql`: the highest score and whether the contact would have become an MQL
  (hand-raiser, or threshold with an allowed grade, never when blocked) at some checkpoint. The
  contact is replayed as a plain lead (its current stage and lead status are what happened *after*).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from connector.calibrate.outcomes import LABELLED, Outcome, SignalTypes, outcome_for
from connector.model.loader import LoadedModel
from connector.scoring.engine import compile_model, score
from connector.state.store import StateStore
from connector.types import Contact, Enrichment, Event, ScoreResult

EnrichFn = Callable[[list[str], datetime], dict[str, Enrichment]]

_TICK = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Feature:
    """One refittable number of the model: an engagement rule's points or one tier's points."""

    name: str  # "product_page" or "webinar_attended:full"
    rule: str
    tier: str | None
    points: int
    category: str
    description: str
    rule_index: int
    tier_index: int | None = None
    unit_cap: float | None = None  # most units the current model counts (rule/category caps)
    section: str = "engagement"  # or "fit" (a profile rule: 1 when it holds) or "force"


FIT_PREFIX = "fit:"
FORCE_PREFIX = "force:"


def fit_features_of(model: LoadedModel) -> list[Feature]:
    """The profile rules as features (`fit:<name>`, 1 when the rule holds), in model order."""
    return [
        Feature(FIT_PREFIX + r.name, r.name, None, r.points, "fit", r.description or r.name, i,
                section="fit")
        for i, r in enumerate(model.model.fit.rules)
    ]  # fmt: skip


def force_features_of(model: LoadedModel) -> list[Feature]:
    """The forced grades as features (`force:<name>`), for the plain logistic baseline."""
    return [
        Feature(FORCE_PREFIX + f.name, f.name, None, -1, "force", f.description or f.name, i,
                section="force")
        for i, f in enumerate(model.model.fit.force)
    ]  # fmt: skip


def features_of(model: LoadedModel) -> list[Feature]:
    """Every refittable feature, in model order. Sales-signal rules are outcomes, not features."""
    m = model.model
    sql_names = set(m.lifecycle.sql.events)
    out: list[Feature] = []
    for i, r in enumerate(m.engagement.rules):
        if r.sales_signal or r.name in sql_names:
            continue
        cat_cap = (
            m.engagement.categories[r.category].cap
            if r.category in m.engagement.categories
            else None
        )
        desc = r.description or r.name
        if r.tiers is not None:
            for j, t in enumerate(r.tiers):
                out.append(
                    Feature(
                        f"{r.name}:{t.label}",
                        r.name,
                        t.label,
                        t.points,
                        r.category,
                        f"{desc} ({t.label})",
                        i,
                        j,
                        _unit_cap(t.points, r.cap, cat_cap),
                    )
                )
        else:
            assert r.points is not None
            out.append(
                Feature(
                    r.name,
                    r.name,
                    None,
                    r.points,
                    r.category,
                    desc,
                    i,
                    None,
                    _unit_cap(r.points, r.cap, cat_cap),
                )
            )
    return out


def _unit_cap(points: int, *caps: int | None) -> float | None:
    if points == 0:
        return None
    limits = [c / abs(points) for c in caps if c is not None]
    return min(limits) if limits else None


@dataclass(frozen=True, slots=True)
class Observation:
    contact_id: str
    first_engaged_at: datetime
    converted: bool
    units: Mapping[str, float] = field(default_factory=dict)
    fired: frozenset[str] = frozenset()
    peak_score: float = 0.0
    mql: bool = False
    hand_raiser: bool = False
    # per checkpoint: (score, allowed MQL grade and not blocked, hand-raiser not blocked)
    trail: tuple[tuple[float, bool, bool], ...] = ()

    def mql_at(self, threshold: float) -> bool:
        """Would it have become an MQL at some checkpoint with this threshold (same rule as
        the lifecycle policy: a hand-raiser, or the threshold with an allowed grade)?"""
        return any(hr or (ok and s >= threshold) for s, ok, hr in self.trail)


def checkpoints(
    events: Sequence[Event], types: SignalTypes, start: datetime, end: datetime
) -> list[datetime]:
    """End of each UTC day with a scored event in [start, end), clipped to just before `end`."""
    last = end - _TICK
    out: set[datetime] = set()
    for ev in events:
        t = ev.occurred_at
        if ev.type in types.scored and start <= t < end:
            day_end = datetime.combine(t.date(), time.max, tzinfo=t.tzinfo)
            out.add(min(day_end, last))
    return sorted(out)


def as_plain_lead(contact: Contact, at: datetime) -> Contact:
    """The contact as it was for scoring at `at`: a lead, recycled only if that had happened."""
    recycled = (
        contact.recycled_at
        if contact.recycled_at is not None and contact.recycled_at < at
        else None
    )
    return dataclasses.replace(
        contact,
        lifecycle_stage="lead",
        lead_status=None,
        lead_status_changed_at=None,
        recycled_at=recycled,
        mql_at=None,
    )


def replay(
    contact: Contact,
    events: Sequence[Event],
    enrichment: Enrichment | None,
    model: LoadedModel,
    outcome: Outcome,
    horizon: timedelta,
    types: SignalTypes,
) -> list[ScoreResult]:
    """Score the contact at each checkpoint of its observation (see the module docstring)."""
    assert outcome.first_engaged_at is not None
    end = outcome.observation_end(horizon)
    before = [e for e in events if e.occurred_at < end]
    return [
        score(as_plain_lead(contact, at), before, enrichment, model, at)
        for at in checkpoints(before, types, outcome.first_engaged_at, end)
    ]


class FeatureReader:
    """Turns ScoreResults of one model into feature units and fired rule names."""

    def __init__(self, model: LoadedModel) -> None:
        self.model = model
        self.cm = compile_model(model)
        self.features = features_of(model)
        self.by_rule: dict[str, list[Feature]] = {}
        for f in self.features:
            self.by_rule.setdefault(f.rule, []).append(f)
        m = model.model
        self.rule_points = {r.name: r.points for r in m.engagement.rules}
        self.fit_names = {r.name for r in m.fit.rules} | {f.name for f in m.fit.force}
        self.fit_keys = {r.name: FIT_PREFIX + r.name for r in m.fit.rules} | {
            f.name: FORCE_PREFIX + f.name for f in m.fit.force
        }
        self.mql_grades = set(m.lifecycle.mql.grades)
        self.blockers = {f.name for f in m.fit.force if f.block_mql}

    def read(
        self, results: Sequence[ScoreResult], events: Sequence[Event]
    ) -> tuple[dict[str, float], set[str]]:
        units: dict[str, float] = {}
        fired: set[str] = set()
        by_key: dict[str, Event] | None = None
        for res in results:
            for reason in res.reasons:
                feats = self.by_rule.get(reason.rule)
                if reason.kind == "fit":
                    if reason.rule in self.fit_names:
                        fired.add(reason.rule)
                        units[self.fit_keys[reason.rule]] = 1.0
                    continue
                if not feats or reason.kind != "engagement":
                    continue
                fired.add(reason.rule)
                if feats[0].tier is None:
                    pts = self.rule_points.get(reason.rule) or 0
                    n = abs(reason.points / pts) if pts else float(len(reason.event_ids) or 1)
                    _keep_max(units, feats[0], n)
                    continue
                if by_key is None:
                    by_key = {e.key: e for e in events}
                counts: dict[str, int] = {}
                for key in reason.event_ids:
                    ev = by_key.get(key)
                    if ev is None:
                        continue
                    for cr, _pts, label in self.cm.matches(ev.type, ev.attributes):
                        if cr.name == reason.rule and label is not None:
                            counts[label] = counts.get(label, 0) + 1
                for f in feats:
                    if f.tier in counts:
                        fired.add(f.name)
                        _keep_max(units, f, float(counts[f.tier]))
        return units, fired

    def mql_state(self, last: ScoreResult) -> bool:
        blocked = any(r.rule in self.blockers for r in last.reasons if r.kind == "fit")
        return last.grade in self.mql_grades and not blocked


def _keep_max(units: dict[str, float], f: Feature, n: float) -> None:
    if f.unit_cap is not None:
        n = min(n, f.unit_cap)
    if n > units.get(f.name, 0.0):
        units[f.name] = round(n, 6)


def observe(
    reader: FeatureReader,
    contact: Contact,
    events: Sequence[Event],
    enrichment: Enrichment | None,
    outcome: Outcome,
    horizon: timedelta,
    types: SignalTypes,
) -> Observation:
    assert outcome.first_engaged_at is not None and outcome.label is not None
    results = replay(contact, events, enrichment, reader.model, outcome, horizon, types)
    units, fired = reader.read(results, events)
    return Observation(
        contact_id=contact.id,
        first_engaged_at=outcome.first_engaged_at,
        converted=outcome.label,
        units=units,
        fired=frozenset(fired),
        peak_score=max((r.score for r in results), default=0.0),
        mql=any(r.lifecycle.mql for r in results),
        hand_raiser=any(r.hand_raiser for r in results),
        trail=tuple((r.score, reader.mql_state(r), r.hand_raiser) for r in results),
    )


@dataclass
class OutcomeCounts:
    contacts: int = 0
    converted: int = 0
    not_converted: int = 0
    inside_horizon: int = 0
    converted_before: int = 0
    no_engagement: int = 0
    undated: int = 0
    signals: dict[str, int] = field(default_factory=dict)

    @property
    def labelled(self) -> int:
        return self.converted + self.not_converted

    def add(self, o: Outcome) -> None:
        self.contacts += 1
        setattr(self, o.status, getattr(self, o.status) + 1)
        if o.status == "converted" and o.signal:
            key = o.signal.split(" (")[0]
            self.signals[key] = self.signals.get(key, 0) + 1


class Dataset:
    """The labelled contacts of one CRM in the state DB; streamed again for every model replayed
    (memory holds outcomes and enrichments, never all events at once)."""

    def __init__(
        self,
        store: StateStore,
        crm: str,
        model: LoadedModel,
        horizon: timedelta,
        as_of: datetime,
        enrich: EnrichFn | None = None,
        batch: int = 500,
        types: SignalTypes | None = None,
    ) -> None:
        self.store = store
        self.crm = crm
        self.horizon = horizon
        self.as_of = as_of
        self.enrich = enrich
        self.batch = batch
        self.types = types or SignalTypes.of(model.model)
        self.counts = OutcomeCounts()
        self.outcomes: dict[str, Outcome] = {}
        self._enrichment: dict[str, Enrichment] = {}
        for contact, events in store.iter_contacts_with_events(crm, batch=batch):
            o = outcome_for(contact, events, self.types, horizon, as_of)
            self.counts.add(o)
            if o.status in LABELLED:
                self.outcomes[contact.id] = o

    def _enrich_batch(self, contacts: Iterable[Contact]) -> None:
        if self.enrich is None:
            return
        emails = sorted({c.email for c in contacts if c.email and c.email not in self._enrichment})
        if emails:
            found = self.enrich(emails, self.as_of)
            for e in emails:
                hit = found.get(e) or found.get(e.lower())
                if hit is not None:
                    self._enrichment[e] = hit

    def enrichments(self) -> Iterable[Enrichment]:
        """The enrichment of every contact read (by e-mail address)."""
        return self._enrichment.values()

    def iter_labelled(
        self, ids: Iterable[str] | None = None
    ) -> Iterator[tuple[Contact, list[Event], Enrichment | None, Outcome]]:
        wanted = list(self.outcomes) if ids is None else [i for i in ids if i in self.outcomes]
        for start in range(0, len(wanted), self.batch):
            chunk = wanted[start : start + self.batch]
            pairs = list(self.store.iter_contacts_with_events(self.crm, chunk, batch=self.batch))
            self._enrich_batch(c for c, _ in pairs)
            for contact, events in pairs:
                enrichment = self._enrichment.get(contact.email) if contact.email else None
                yield contact, events, enrichment, self.outcomes[contact.id]

    def observe(self, model: LoadedModel, ids: Iterable[str] | None = None) -> list[Observation]:
        reader = FeatureReader(model)
        return [
            observe(reader, c, evs, enr, o, self.horizon, self.types)
            for c, evs, enr, o in self.iter_labelled(ids)
        ]
