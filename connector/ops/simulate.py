"""`leadscore simulate`: what-if on the stored data. Nothing is written anywhere.

Both sides are computed the same way, from the stored contacts, events and enrichment as of
`now`: the current model and the simulated one (another threshold, or another model file).
"MQL" here is the model's verdict (`mql_reason`: threshold or hand-raiser), whatever the stage.

A threshold only changes the lifecycle decision, never the points, and the decision is
monotone in it: a contact qualifies at threshold T exactly when it qualifies as a hand-raiser
(the verdict at T = +∞) or when it would qualify by points at all (the verdict at T = −∞) and
its score is ≥ T. So two scoring passes give the MQL count at every threshold of the curve.

With account scoring on (`accounts=True` and an `accounts:` section), each side also rolls its
accounts up and applies the MQA's contact bar (simulate_accounts.py): a contact the threshold
leaves out is MQL-qualified at an MQA from `accounts.mqa.contact_mql_threshold`. The account
scores read points, never the MQL threshold, so the curve stays two scoring passes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from connector.model.loader import LoadedModel
from connector.ops.common import rescore_stored, with_hit_times
from connector.ops.simulate_accounts import (
    AccountContactFlip,
    AccountSides,
    AccountSimulation,
    accounts_enabled,
    strip,
    with_mqa_threshold,
)
from connector.pipeline import Enricher
from connector.scoring.accounts import by_account
from connector.state.store import StateStore
from connector.types import Contact, ScoreResult
from connector.types import shown_num as num

GRADES: tuple[str, ...] = ("A", "B", "C", "D")


@dataclass(frozen=True, slots=True)
class Side:
    score: float
    grade: str
    mql: str | None  # the MQL verdict (threshold / hand-raiser: ...) or None


@dataclass(frozen=True, slots=True)
class Flip:
    """A contact whose MQL verdict differs between the current and the simulated setting."""

    contact_id: str
    label: str
    current: Side
    simulated: Side

    @property
    def gained(self) -> bool:
        return self.simulated.mql is not None


@dataclass
class Simulation:
    crm: str
    now: datetime
    current_label: str
    simulated_label: str
    contacts: int = 0
    current_mqls: int = 0
    simulated_mqls: int = 0
    by_grade: dict[str, list[int]] = field(
        default_factory=lambda: {g: [0, 0] for g in GRADES}
    )  # grade -> [current MQLs, simulated MQLs]
    flips: list[Flip] = field(default_factory=list)
    curve: list[tuple[float, int]] = field(default_factory=list)  # (threshold, MQLs)
    current_threshold: float | None = None
    simulated_threshold: float | None = None
    accounts: AccountSimulation | None = None  # with account scoring on
    # contacts by their score as the CRM shows it (rounded down, as the priority label reads
    # it: `types.crm_score`), each side: calibrate refits the priority bands from them
    # (calibrate/priority_refit.py)
    shown: tuple[Counter[int], Counter[int]] = field(default_factory=lambda: (Counter(), Counter()))

    @property
    def gained(self) -> int:
        return sum(f.gained for f in self.flips)

    @property
    def lost(self) -> int:
        return len(self.flips) - self.gained

    def _count(self, side: Side, index: int) -> None:
        if side.mql is None:
            return
        if index == 0:
            self.current_mqls += 1
        else:
            self.simulated_mqls += 1
        self.by_grade.setdefault(side.grade, [0, 0])[index] += 1


def with_threshold(model: LoadedModel, threshold: float) -> LoadedModel:
    """The same model with another MQL threshold (in memory; never stored or written)."""
    lc = model.model.lifecycle
    mql = lc.mql.model_copy(update={"threshold": threshold})
    changed = model.model.model_copy(update={"lifecycle": lc.model_copy(update={"mql": mql})})
    return replace(model, model=changed, fingerprint=f"{model.fingerprint}~t{threshold:g}")


def nice_step(raw: float) -> float:
    """The smallest of 1, 2, 5 × 10^k that is at least `raw`."""
    raw = max(raw, 1e-9)
    k = math.floor(math.log10(raw))
    for mult in (1, 2, 5, 10):
        step = mult * 10.0**k
        if step >= raw * (1 - 1e-9):
            return step
    return 10.0 ** (k + 1)  # pragma: no cover


def curve_thresholds(current: float, simulated: float, *, min_points: int = 9) -> list[float]:
    """Thresholds around both settings, in round steps (100 → 60, 70 … 140)."""
    step = nice_step(max(abs(current), abs(simulated), 10.0) / 10)
    low, high = min(current, simulated), max(current, simulated)
    lo = math.floor(low / step) * step - 2 * step
    hi = math.ceil(high / step) * step + 2 * step
    toggle = True
    while round((hi - lo) / step) + 1 < min_points:
        if toggle:
            lo -= step
        else:
            hi += step
        toggle = not toggle
    if low >= 0:
        lo = max(lo, 0.0)
    values = {round(lo + i * step, 6) for i in range(round((hi - lo) / step) + 1)}
    values |= {current, simulated}
    return sorted(values)


def _sides(pairs: Iterable[tuple[float, str, str | None]]) -> list[Side]:
    return [Side(s, g, m) for s, g, m in pairs]


def simulate_threshold(
    store: StateStore,
    crm: str,
    model: LoadedModel,
    enricher: Enricher | None,
    now: datetime,
    threshold: float,
    *,
    curve: list[float] | None = None,
    accounts: bool = False,
    mqa_threshold: float | None = None,
) -> Simulation:
    """MQLs at the model's threshold vs `threshold`, by grade, who flips, and the curve.
    `accounts`: account scoring is on (the setting); `mqa_threshold`: the MQA threshold to
    try on the simulated side (the curve is that side's)."""
    current_t = float(model.model.lifecycle.mql.threshold)
    points = curve if curve is not None else curve_thresholds(current_t, threshold)
    simulated = f"threshold {num(threshold)}"
    if mqa_threshold is not None:
        simulated += f", MQA threshold {num(mqa_threshold)}"
    sim = Simulation(
        crm,
        now,
        f"model {model.version}, threshold {num(current_t)}",
        simulated,
        current_threshold=current_t,
        simulated_threshold=threshold,
    )
    by_points = with_threshold(model, -math.inf)  # qualifies by points at all
    raised = with_threshold(model, math.inf)  # qualifies without points: hand-raisers
    acc: AccountSides | None = None
    if accounts and accounts_enabled(model):
        other = model if mqa_threshold is None else with_mqa_threshold(model, mqa_threshold)
        acc = AccountSides(store, crm, [model, other], enricher)
        acc.parts[1] = acc.parts[0]  # the same points on both sides
    blocked = _blockers(model)
    deferred: list[tuple[Contact, ScoreResult, str | None, bool]] = []
    counts = [0] * len(points)
    rescored = rescore_stored(store, crm, [by_points, raised], enricher, now)
    if acc is not None:  # the members' parts: their events' times from the scorer
        rescored = with_hit_times([by_points], rescored)
    for contact, _, (lo, hi) in rescored:
        sim.contacts += 1
        hand = hi.lifecycle.mql_reason
        eligible = lo.lifecycle.mql_reason is not None
        if acc is not None and acc.linked(contact.id):
            acc.record(0, lo)  # tallied once its account is scored
            deferred.append((contact, strip(hi, blocked), hand, eligible))
            continue
        for i, t in enumerate(points):
            counts[i] += _verdict(hand, eligible, lo.score, t) is not None
        cur, new = _sides(
            [
                (lo.score, lo.grade, _verdict(hand, eligible, lo.score, current_t)),
                (lo.score, lo.grade, _verdict(hand, eligible, lo.score, threshold)),
            ]
        )
        _tally(sim, contact.id, contact.email or contact.id, cur, new)
    if acc is not None:
        acc.score(now)
        for contact, res, hand, eligible in deferred:
            bar = (acc.verdict(0, contact, res), acc.verdict(1, contact, res))
            for i, t in enumerate(points):
                counts[i] += (_verdict(hand, eligible, res.score, t) or bar[1]) is not None
            was = _verdict(hand, eligible, res.score, current_t) or bar[0]
            will = _verdict(hand, eligible, res.score, threshold) or bar[1]
            cur, new = _sides([(res.score, res.grade, was), (res.score, res.grade, will)])
            acc.count(cur.mql, new.mql)
            _tally(sim, contact.id, contact.email or contact.id, cur, new)
    sim.curve = list(zip(points, counts, strict=True))
    _order(sim)
    if acc is not None:
        sim.accounts = _account_summary(sim, acc)
    return sim


def _blockers(model: LoadedModel) -> frozenset[str]:
    return frozenset(f.name for f in model.model.fit.force if f.block_mql)


def _account_summary(sim: Simulation, acc: AccountSides) -> AccountSimulation:
    out = acc.summary()
    out.contact_flips = [
        AccountContactFlip(
            f.contact_id,
            f.label,
            acc.label_of(f.contact_id),
            f.simulated.grade,
            f.simulated.score,
            f.current.mql,
            f.simulated.mql,
        )
        for f in sim.flips
        if by_account(f.current.mql) or by_account(f.simulated.mql)
    ]
    return out


def _verdict(hand: str | None, eligible: bool, score: float, threshold: float) -> str | None:
    """The MQL verdict at `threshold` from the verdicts at +∞ (`hand`) and −∞ (`eligible`)."""
    if hand is not None:
        return hand
    return "threshold" if eligible and score >= threshold else None


def simulate_model(
    store: StateStore,
    crm: str,
    current: LoadedModel,
    other: LoadedModel,
    enricher: Enricher | None,
    now: datetime,
    *,
    accounts: bool = False,
    mqa_threshold: float | None = None,
) -> Simulation:
    """MQLs with the current model vs another model file, by grade, and who flips.
    `accounts`: account scoring is on (the setting); `mqa_threshold`: the other model with
    this MQA threshold."""
    return model_sides(
        store, crm, current, other, enricher, now, accounts=accounts, mqa_threshold=mqa_threshold
    )[0]


def model_sides(
    store: StateStore,
    crm: str,
    current: LoadedModel,
    other: LoadedModel,
    enricher: Enricher | None,
    now: datetime,
    *,
    accounts: bool = False,
    mqa_threshold: float | None = None,
) -> tuple[Simulation, AccountSides | None]:
    """`simulate_model`, with its accounts as each side scored them (`AccountSides.results`,
    by side; None without account scoring): `calibrate` picks the suggested model's MQA
    threshold from them (connector.calibrate.accounts_refit)."""
    if mqa_threshold is not None and accounts_enabled(other):
        other = with_mqa_threshold(other, mqa_threshold)
    sim = Simulation(
        crm,
        now,
        f"model {current.version} ({current.fingerprint})",
        f"model {other.version} ({other.fingerprint})"
        + (f", MQA threshold {num(mqa_threshold)}" if mqa_threshold is not None else ""),
    )
    acc: AccountSides | None = None
    if accounts and (accounts_enabled(current) or accounts_enabled(other)):
        acc = AccountSides(store, crm, [current, other], enricher)
    blocked = (_blockers(current), _blockers(other))
    deferred: list[tuple[Contact, ScoreResult, ScoreResult]] = []
    rescored = rescore_stored(store, crm, [current, other], enricher, now)
    if acc is not None:
        rescored = with_hit_times([current, other], rescored)
    for contact, _, (a, b) in rescored:
        sim.contacts += 1
        if acc is not None and acc.linked(contact.id):
            acc.record(0, a)
            acc.record(1, b)
            deferred.append((contact, strip(a, blocked[0]), strip(b, blocked[1])))
            continue
        cur, new = _sides(
            [
                (a.score, a.grade, a.lifecycle.mql_reason),
                (b.score, b.grade, b.lifecycle.mql_reason),
            ]
        )
        _tally(sim, contact.id, contact.email or contact.id, cur, new)
    if acc is not None:
        acc.score(now)
        for contact, a, b in deferred:
            cur, new = _sides(
                [
                    (a.score, a.grade, a.lifecycle.mql_reason or acc.verdict(0, contact, a)),
                    (b.score, b.grade, b.lifecycle.mql_reason or acc.verdict(1, contact, b)),
                ]
            )
            acc.count(cur.mql, new.mql)
            _tally(sim, contact.id, contact.email or contact.id, cur, new)
    _order(sim)
    if acc is not None:
        sim.accounts = _account_summary(sim, acc)
    return sim, acc


def _tally(sim: Simulation, cid: str, label: str, cur: Side, new: Side) -> None:
    sim.shown[0][math.floor(cur.score)] += 1
    sim.shown[1][math.floor(new.score)] += 1
    sim._count(cur, 0)
    sim._count(new, 1)
    if (cur.mql is None) != (new.mql is None):
        sim.flips.append(Flip(cid, label, cur, new))


def _order(sim: Simulation) -> None:
    sim.flips.sort(key=lambda f: (not f.gained, -f.simulated.score, f.label))
