"""The suggested model's `accounts:` section, refit to the suggested contact points' scale.

An account's score is in contact points: the sum of its members' contact engagement points,
each capped at `per_contact_cap`, plus the breadth, committee and account-rule points, held
against `mqa.threshold`; `breadth.min_points` is a contact's engagement points, and
`mqa.contact_mql_threshold` a contact's score (the MQA's lower MQL bar). When calibration
moves the contact points, a section left as it was means something else: the MQAs and the
contacts that get the lower bar change silently. So, for the lifecycle score's suggestion:

1. **One contact scale.** The refit points are scaled so that the MQL threshold keeps its
   meaning (fit.py): the threshold is the contact scale's anchor. `scale` = suggested MQL
   threshold / current one, and every number on the contact scale is multiplied by it and
   rounded to a whole number (a non-zero one keeps at least 1 and its sign):
   `per_contact_cap`, `breadth.min_points`, the breadth and committee tiers' points, the
   account rules' points and `mqa.contact_mql_threshold`. So with the shipped numbers a
   contact still adds at most half the MQL bar to its account, 3 engaged people still add
   30% of it, and the MQA's contact bar is still 60% of it. Scale 1 (the threshold kept):
   they stay as they are. Counts (people, roles, days, top contacts) and the account fit (the
   company's firmographics, its own scale) are never touched.
2. **The MQA threshold, from the data.** The refit moves members' points unevenly (a rule
   from 90 to 1, another from 2 to 75), so no factor carries the MQA threshold over. With
   account scoring on, the accounts are scored by `simulate --model`'s machinery
   (`ops.simulate.model_sides`: every stored contact rescored with the current model and
   with the suggested one, every account rolled up by the sync's scorer, as of the
   calibration's `now`) and the suggested threshold is the whole number whose MQAs differ
   from the current model's MQAs in the fewest accounts (those that would stop being MQAs
   plus those that would become one). Of the thresholds that give those MQAs, the scaled
   threshold when it is one of them (scale 1 and the same MQAs: the threshold stays), else
   the middle of the gap between the accounts on either side, so that no account sits on the
   edge (`keep_mqas`). It translates the current MQA definition to the new points and learns
   nothing: what the account outcomes say about the threshold is `accounts.py`'s suggestion,
   reported on the current model's points. Without account scoring, or no account with a
   live member, the threshold is scaled like the rest.

Every number changed is reported (old → new), with the MQAs now and with the suggested model.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from connector.calibrate.observe import EnrichFn
from connector.calibrate.suggest import Additions, PathKey, edits_or_additions, load_suggested
from connector.model.loader import LoadedModel
from connector.model.schema import AccountsModel
from connector.state.store import StateStore
from connector.types import Company, Enrichment

if TYPE_CHECKING:
    from connector.ops.simulate import Simulation

KEPT = "kept the current MQAs"  # the threshold chosen on the data
SCALED = "scaled"  # no account data: the threshold scaled like the rest


@dataclass(frozen=True, slots=True)
class AccountNumber:
    """One number of the `accounts:` section the suggestion changes."""

    key: str  # its place in the model file: "accounts.engagement.per_contact_cap"
    label: str  # "per_contact_cap", "breadth tier 3+ people", "account rule pricing_together"
    current: float
    suggested: float


@dataclass(frozen=True, slots=True)
class AccountsRefit:
    scale: float  # suggested MQL threshold / current one: the contact scale's change
    numbers: tuple[AccountNumber, ...]  # every number changed, the MQA threshold last
    mqa_threshold: float  # the current one
    suggested_mqa_threshold: float
    method: str  # KEPT: chosen on the data; SCALED: no account data
    accounts: int = 0  # accounts with a live member, scored on both sides
    current_mqas: int | None = None  # on the same data: the current model
    suggested_mqas: int | None = None  # and the suggested one
    kept_mqas: int | None = None  # MQAs under both
    gained: tuple[str, ...] = ()  # the accounts that would become MQAs (labels)
    lost: tuple[str, ...] = ()  # and stop being one


def scaled(value: float, scale: float) -> float:
    """`value` on the new scale, a whole number; a non-zero value keeps at least 1 and its
    sign; scale 1 keeps it as it is."""
    if scale == 1 or value == 0:
        return value
    out = round(value * scale)
    return out if out != 0 else (1 if value > 0 else -1)


def contact_scale_numbers(section: AccountsModel) -> list[tuple[PathKey, str, float]]:
    """(path in the model file, label, value) of every number on the contact points' scale
    but the MQA threshold."""
    eng, mqa = section.engagement, section.mqa
    at: PathKey = ("accounts", "engagement")
    out: list[tuple[PathKey, str, float]] = [
        ((*at, "per_contact_cap"), "per_contact_cap", eng.per_contact_cap),
        ((*at, "breadth", "min_points"), "breadth.min_points", eng.breadth.min_points),
    ]
    out += [
        ((*at, "breadth", "tiers", i, "points"), f"breadth tier {t.min}+ people", t.points)
        for i, t in enumerate(eng.breadth.tiers)
    ]
    out += [
        ((*at, "committee", "tiers", i, "points"), f"committee tier {t.min}+ roles", t.points)
        for i, t in enumerate(eng.committee.tiers)
    ]
    out += [
        ((*at, "rules", i, "points"), f"account rule {r.name}", r.points)
        for i, r in enumerate(eng.rules)
    ]
    if mqa.contact_mql_threshold is not None:
        out.append(
            (
                ("accounts", "mqa", "contact_mql_threshold"),
                "mqa.contact_mql_threshold",
                mqa.contact_mql_threshold,
            )
        )
    return out


def keep_mqas(current: Collection[str], eligible: Mapping[str, float], target: float) -> int:
    """The whole-number MQA threshold whose MQAs (the `eligible` accounts, those of an MQA
    grade with enough people engaged, scoring at or above it) differ from `current` in the
    fewest accounts (`pick_threshold`'s choice among the thresholds that do so). At a whole
    threshold T a score s counts when floor(s) >= T."""
    levels = sorted({math.floor(s) for s in eligible.values()}, reverse=True)
    ordered = sorted(eligible, key=lambda a: (-eligible[a], a))
    diff = len(current)  # above every score: every current MQA lost
    top = diff
    plateaus: list[tuple[int, float]] = []
    i = 0
    for level in levels:
        while i < len(ordered) and math.floor(eligible[ordered[i]]) >= level:
            diff += -1 if ordered[i] in current else 1
            i += 1
        plateaus.append((level, diff))
    return pick_threshold(plateaus, top, target)


def pick_threshold(plateaus: Sequence[tuple[int, float]], top: float, target: float) -> int:
    """The whole threshold of the least cost. `plateaus`: (level, cost), the distinct whole
    score levels highest first, each with the cost of every whole threshold from the next
    level + 1 up to it (they count the same records); `top`: the cost above every level.
    Several thresholds cost the least: the scaled threshold `target` when it is one of them,
    else the middle of the gap between the records on either side (the widest margin: the
    nearest record is as far as can be), else (no record below, or none above) the one next
    to the records; then the nearest to `target`."""
    aim = round(target)
    first = max(aim, plateaus[0][0] + 1) if plateaus else aim  # above every score
    best = (top, abs(first - target), first)
    for j, (level, cost) in enumerate(plateaus):
        # the whole thresholds with these records: from the next level + 1 up to this one
        low = plateaus[j + 1][0] + 1 if j + 1 < len(plateaus) else None
        if low is None:
            t = min(aim, level)
        elif low <= aim <= level:
            t = aim
        else:
            t = (low + level) // 2
        best = min(best, (cost, abs(t - target), t))
    return best[2]


@dataclass(frozen=True, slots=True)
class OfflineEnricher:
    """calibrate's enrichment (never calls out) as the enricher simulate's account roll-up
    takes: `enrich_many`, and `local_company` for a company's blank firmographics (the
    function's own, `cli.state_enrich_fn`; else none: the enrichment cache fills them)."""

    fn: EnrichFn

    def enrich_many(self, emails: Iterable[str], now: datetime) -> dict[str, Enrichment]:
        return self.fn(list(emails), now)

    def local_company(self, domain: str) -> Company | None:
        local = getattr(self.fn, "local_company", None)
        found = local(domain) if local is not None else None
        return found if isinstance(found, Company) else None


def merged_additions(a: Additions, b: Additions) -> Additions:
    """Two sets of additions to a model file as one (items under one path kept in order)."""
    out: Additions = {path: list(items) for path, items in a.items()}
    for path, items in b.items():
        out.setdefault(path, []).extend(items)
    return out


def refit_accounts(
    model: LoadedModel,
    scale: float,
    edits: dict[PathKey, Any],
    additions: Additions,
    *,
    store: StateStore,
    crm: str,
    now: datetime,
    enrich: EnrichFn | None = None,
    use_data: bool = False,
) -> tuple[dict[PathKey, Any], Additions, AccountsRefit, Simulation | None] | None:
    """The edits and additions that refit `model`'s accounts section to the suggestion's
    scale (see the module docstring), what they do, and the simulation of the stored contacts
    it ran (None: not on the data), which the priority bands' refit reads too (a contact's
    score does not read the accounts section: its shown scores are the suggestion's); None:
    the model has no accounts section. `edits`/`additions`: the suggestion's own (the contact
    points), for the draft the accounts are scored with; `use_data`: account scoring is on
    (the setting). Reads the state DB; writes nothing."""
    section = model.model.accounts
    if section is None:
        return None
    values: dict[PathKey, Any] = {}
    numbers: list[AccountNumber] = []
    for path, label, value in contact_scale_numbers(section):
        new = scaled(value, scale)
        if new != value:
            values[path] = new
            numbers.append(AccountNumber(_key(path), label, value, new))
    old_t = float(section.mqa.threshold)
    new_t = float(scaled(old_t, scale))
    counts: dict[str, Any] = {}
    method = SCALED
    sim: Simulation | None = None
    if use_data and section.enabled:
        found, sim = _on_the_data(
            model, values, edits, additions, store, crm, now, enrich, old_t * scale
        )
        if found is not None:
            new_t, counts = found
            method = KEPT
    if new_t != old_t:
        values[("accounts", "mqa", "threshold")] = int(new_t) if new_t.is_integer() else new_t
        numbers.append(AccountNumber("accounts.mqa.threshold", "mqa.threshold", old_t, new_t))
    acc_edits, acc_adds = edits_or_additions(model, values)
    refit = AccountsRefit(scale, tuple(numbers), old_t, new_t, method, **counts)
    return acc_edits, acc_adds, refit, sim


def _on_the_data(
    model: LoadedModel,
    values: dict[PathKey, Any],
    edits: dict[PathKey, Any],
    additions: Additions,
    store: StateStore,
    crm: str,
    now: datetime,
    enrich: EnrichFn | None,
    target: float,
) -> tuple[tuple[float, dict[str, Any]] | None, Simulation]:
    """(the MQA threshold that keeps the current MQAs, the counts of the report) from the
    accounts scored by `simulate --model`'s machinery with the current model and with the
    draft suggestion at an MQA threshold of −∞ (its MQAs: every account of an MQA grade with
    enough people engaged), None: no account with a live member; and that simulation."""
    from connector.ops.simulate import model_sides
    from connector.ops.simulate_accounts import with_mqa_threshold

    acc_edits, acc_adds = edits_or_additions(model, values)
    draft, _ = load_suggested(
        model, {**edits, **acc_edits}, (), merged_additions(additions, acc_adds)
    )
    sim, sides = model_sides(
        store,
        crm,
        model,
        with_mqa_threshold(draft, -math.inf),
        OfflineEnricher(enrich) if enrich is not None else None,
        now,
        accounts=True,
    )
    if sides is None or not sides.members_of:
        return None, sim
    current = {a for a, r in sides.results[0].items() if r.mqa}
    eligible = {a: r.score for a, r in sides.results[1].items() if r.mqa}
    threshold = keep_mqas(current, eligible, target)
    suggested = {a for a, s in eligible.items() if s >= threshold}

    def labels(ids: Iterable[str]) -> tuple[str, ...]:
        return tuple(sorted(sides.labels.get(a, a) for a in ids))

    return (
        float(threshold),
        {
            "accounts": len(sides.members_of),
            "current_mqas": len(current),
            "suggested_mqas": len(suggested),
            "kept_mqas": len(current & suggested),
            "gained": labels(suggested - current),
            "lost": labels(current - suggested),
        },
    ), sim


def _key(path: PathKey) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + part
    return out
