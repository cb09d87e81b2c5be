"""The suggested model's priority bands (`priority:`), refit to the suggested contact points.

The priority label (`leadscore_priority`, A1 … D3) is the grade and the band of the contact's
score as the CRM shows it (rounded): the bands' minimums are contact scores. When calibration
moves the contact points, bands left as they were sort the contacts differently, so applying
the suggestion silently moves contacts between bands and reshapes the priority matrix sales
works from. So, for the lifecycle score's suggestion (the bands are the model's, shared by
every score: a named score's run leaves them as they are):

1. **On the stored data, each band keeps its share of the contacts.** The contacts are scored
   by `simulate --model`'s machinery (`ops.simulate.model_sides`: every stored contact
   rescored with the current model and with the draft suggestion, as of the calibration's
   `now`; with account scoring on, the accounts refit's pass: one pass per calibration, a
   contact's score not reading the accounts section), and each band's minimum becomes the
   whole score at or above which as many contacts score with the suggested model as score at
   or above the current minimum with the current model (`pick_threshold`, as the MQA
   threshold is picked: of the minimums that do it equally well, the scaled one when it is
   one of them, else the middle of the gap). A band is a rank:
   "the hottest few percent", sized to what sales can work. The refit reorders the contacts on
   purpose (the converters up), so the same contacts in the same band would undo it, and one
   factor cannot carry a minimum over either (the refit moves rules unevenly: one from 90 to
   1, another from 2 to 75, so the score distribution changes shape, not just scale); the
   share is what keeps each band's meaning and workload.
   Two minimums are not shares. A band whose minimum is the MQL threshold (the default band 1
   at 100) is the MQL bar: it follows the suggested threshold, which calibrate tuned to the
   MQL volume asked for, so that band 1 still holds the contacts scoring an MQL (kept at its
   share it would hold contacts below the new bar, or leave MQLs out). The last band's minimum
   decides nothing (a score below every minimum takes the last band): it is scaled.
2. **Without enough data** (fewer than `MIN_CONTACTS` stored contacts scored: a share is then
   a handful of contacts) each minimum is scaled like the accounts section's numbers: times the
   contact scale (suggested MQL threshold / current one), rounded (`accounts_refit.scaled`).

Minimums stay strictly descending (one that would meet the band above goes one below it). No
minimum changed (e.g. the default bands, the threshold kept and the shares already kept): no
edit, and the suggested file gains no `priority:` section (the fingerprint drops a default one).
Every band is reported, old → new, with its contacts now and with the suggestion on the same
data (and with the suggested points under the bands left as they were).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from connector.calibrate.accounts_refit import OfflineEnricher, pick_threshold, scaled
from connector.calibrate.observe import EnrichFn
from connector.calibrate.suggest import Additions, PathKey, edits_or_additions, load_suggested
from connector.model.loader import LoadedModel
from connector.scoring.engine import priority_bands, priority_label
from connector.state.store import StateStore

if TYPE_CHECKING:
    from connector.ops.simulate import Simulation

SHARES = "kept each band's share of the contacts"  # chosen on the stored data
SCALED = "scaled"  # too few scored contacts: every minimum scaled

# how one minimum was chosen
BY_SHARE = "as many contacts at or above it"
BY_THRESHOLD = "the MQL threshold's"
BY_SCALE = "scaled"
LAST = "last band"

MIN_CONTACTS = 50  # scored contacts the shares are kept on; fewer: the minimums are scaled


@dataclass(frozen=True, slots=True)
class BandRefit:
    """One priority band: its minimum now and suggested, and its contacts on the stored data."""

    name: str
    current: float  # its minimum
    suggested: float
    how: str  # BY_SHARE, BY_THRESHOLD, BY_SCALE or LAST
    contacts_now: int | None = None  # the current model, the current bands
    contacts_suggested: int | None = None  # the suggested model, the suggested bands
    contacts_unrefit: int | None = None  # the suggested model, the bands left as they were


@dataclass(frozen=True, slots=True)
class PriorityRefit:
    scale: float  # suggested MQL threshold / current one: the contact scale's change
    method: str  # SHARES: on the stored data; SCALED: too few scored contacts
    bands: tuple[BandRefit, ...]  # every band, highest first
    contacts: int = 0  # stored contacts scored with both models

    @property
    def changed(self) -> bool:
        return any(b.suggested != b.current for b in self.bands)


def refit_priority(
    model: LoadedModel,
    threshold: float,
    edits: dict[PathKey, Any],
    additions: Additions,
    *,
    store: StateStore,
    crm: str,
    now: datetime,
    enrich: EnrichFn | None = None,
    min_contacts: int = MIN_CONTACTS,
    sim: Simulation | None = None,
    entry: PathKey = (),
    source: LoadedModel | None = None,
) -> tuple[dict[PathKey, Any], Additions, PriorityRefit]:
    """The edits and additions that refit `model`'s priority bands to the suggestion (see the
    module docstring), and what they do. `threshold`: the suggested MQL threshold;
    `edits`/`additions`: the suggestion's own, for the draft the contacts are scored with.
    `sim`: the stored contacts already simulated with `model` and a draft with these contact
    points as of `now` (the accounts refit's: a contact's score does not read the accounts
    section, so its edits and MQA threshold leave `sim.shown` as it is); None: simulated here.
    A named score with bands of its own (`calibrate --score NAME`): `model` is the model it is
    computed with, `sim` its two sides, `entry` its place in the file (`("scores", i)`) and
    `source` the whole model file, where the edits land. Reads the state DB; writes nothing."""
    from connector.ops.simulate import model_sides

    current_t = float(model.model.lifecycle.mql.threshold)
    scale = threshold / current_t if threshold > 0 and current_t > 0 else 1.0
    bands = priority_bands(model.model)
    if sim is None:
        draft, _ = load_suggested(model, edits, (), additions)
        sim, _ = model_sides(
            store, crm, model, draft, OfflineEnricher(enrich) if enrich is not None else None, now
        )
    on_data = sim.contacts >= min_contacts
    mins: list[float] = []
    how: list[str] = []
    for i, (low, _) in enumerate(bands):
        if i == len(bands) - 1:
            new, why = scaled(low, scale), LAST
        elif not on_data:
            new, why = scaled(low, scale), BY_SCALE
        elif low == current_t:
            new, why = threshold, BY_THRESHOLD
        else:
            new, why = keep_share(sim.shown[0], sim.shown[1], low, scaled(low, scale)), BY_SHARE
        if mins and new >= mins[-1]:  # minimums descend
            new = mins[-1] - 1
        mins.append(float(new))
        how.append(why)
    new_bands = tuple((m, name) for m, (_, name) in zip(mins, bands, strict=True))
    counts: list[tuple[int | None, int | None, int | None]] = (
        list(
            zip(
                band_counts(sim.shown[0], bands),
                band_counts(sim.shown[1], new_bands),
                band_counts(sim.shown[1], bands),
                strict=True,
            )
        )
        if on_data
        else [(None, None, None)] * len(bands)
    )
    refit = PriorityRefit(
        scale,
        SHARES if on_data else SCALED,
        tuple(
            BandRefit(name, low, new, why, *n)
            for (low, name), new, why, n in zip(bands, mins, how, counts, strict=True)
        ),
        sim.contacts,
    )
    return *_edits(source or model, refit, entry), refit


def keep_share(current: Counter[int], suggested: Counter[int], low: float, target: float) -> int:
    """The whole minimum at or above which as many `suggested` scores are as `current` scores
    are at or above `low` (the counters: contacts by shown score), the nearest count when none
    is exact; of the minimums that do it equally well, `pick_threshold`'s choice (`target`,
    the scaled minimum, when it is one of them)."""
    want = sum(n for score, n in current.items() if score >= low)
    plateaus: list[tuple[int, float]] = []
    above = 0
    for level in sorted(suggested, reverse=True):
        above += suggested[level]
        plateaus.append((level, abs(above - want)))
    return pick_threshold(plateaus, want, target)


def band_counts(shown: Counter[int], bands: Sequence[tuple[float, str]]) -> list[int]:
    """Contacts per band (highest first), the counter's shown scores labelled as the sync
    labels them (`priority_label`)."""
    per: Counter[str] = Counter()
    for score, n in shown.items():
        per[priority_label("", score, bands)] += n
    return [per[name] for _, name in bands]


def _edits(
    model: LoadedModel, refit: PriorityRefit, entry: PathKey = ()
) -> tuple[dict[PathKey, Any], Additions]:
    """The changed minimums as edits of the model file where it writes its bands (under
    `entry`: a named score's own), else the whole `priority: {bands: [...]}` added; nothing
    changed: nothing."""
    if not refit.changed:
        return {}, {}
    values: dict[PathKey, Any] = {
        (*entry, "priority", "bands", i, "min"): _number(b.suggested)
        for i, b in enumerate(refit.bands)
        if b.suggested != b.current
    }
    edits, adds = edits_or_additions(model, values)
    if adds:  # the file leaves the bands to their defaults: write them whole
        whole = [{"name": b.name, "min": _number(b.suggested)} for b in refit.bands]
        edits, adds = edits_or_additions(model, {(*entry, "priority", "bands"): whole})
    return edits, adds


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value
