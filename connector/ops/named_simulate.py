"""`leadscore simulate --score NAME` of a named score (a model's `scores:`, issue 23): what-if
on its verdict, "qualified" (the score at or above its threshold), on the stored data. The
same `Simulation` as the lifecycle score's, its "MQLs" the qualified contacts; nothing is
written anywhere. A threshold changes no point, so one scoring pass gives the whole curve."""

from __future__ import annotations

from datetime import datetime

from connector.model.loader import NamedModel
from connector.ops.common import rescore_stored
from connector.ops.simulate import Flip, Side, Simulation, curve_thresholds
from connector.pipeline import Enricher
from connector.state.store import StateStore
from connector.types import shown_num as num

VERDICT = "qualified"


def _side(score: float, grade: str, threshold: float | None) -> Side:
    return Side(score, grade, VERDICT if threshold is not None and score >= threshold else None)


def simulate_named_threshold(
    store: StateStore,
    crm: str,
    named: NamedModel,
    enricher: Enricher | None,
    now: datetime,
    threshold: float,
) -> Simulation:
    """Qualified at the score's own threshold (none: nobody) vs at `threshold`, by grade,
    who flips, and the qualified count at thresholds around both."""
    current_t = named.threshold
    points = curve_thresholds(current_t if current_t is not None else threshold, threshold)
    sim = Simulation(
        crm,
        now,
        f"score {named.name}, threshold {num(current_t) if current_t is not None else 'none'}",
        f"threshold {num(threshold)}",
        current_threshold=current_t,
        simulated_threshold=threshold,
    )
    counts = [0] * len(points)
    for contact, _, (r,) in rescore_stored(store, crm, [named.loaded], enricher, now):
        sim.contacts += 1
        for i, t in enumerate(points):
            counts[i] += r.score >= t
        _tally(
            sim,
            contact.id,
            contact.email or contact.id,
            _side(r.score, r.grade, current_t),
            _side(r.score, r.grade, threshold),
        )
    sim.curve = list(zip(points, counts, strict=True))
    _order(sim)
    return sim


def simulate_named_model(
    store: StateStore,
    crm: str,
    current: NamedModel | None,
    other: NamedModel,
    enricher: Enricher | None,
    now: datetime,
    current_label: str,
    other_label: str,
) -> Simulation:
    """Qualified for the score with the current model vs another model file's same score
    (its rules, fit and threshold); the events are read once for both. `current` None: the
    score is new in the other file (nobody is qualified for it now, its score 0)."""
    sim = Simulation(crm, now, current_label, other_label)
    models = [other.loaded] if current is None else [other.loaded, current.loaded]
    for contact, _, (b, *a) in rescore_stored(store, crm, models, enricher, now):
        sim.contacts += 1
        now_side = (
            _side(a[0].score, a[0].grade, current.threshold)
            if current is not None
            else Side(0.0, b.grade, None)
        )
        _tally(
            sim,
            contact.id,
            contact.email or contact.id,
            now_side,
            _side(b.score, b.grade, other.threshold),
        )
    _order(sim)
    return sim


def _tally(sim: Simulation, cid: str, label: str, cur: Side, new: Side) -> None:
    sim._count(cur, 0)
    sim._count(new, 1)
    if (cur.mql is None) != (new.mql is None):
        sim.flips.append(Flip(cid, label, cur, new))


def _order(sim: Simulation) -> None:
    sim.flips.sort(key=lambda f: (not f.gained, -f.simulated.score, f.label))
