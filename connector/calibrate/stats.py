"""Rule lift with confidence intervals, in plain Python (no numpy needed to read a lift table).

- Conversion rates with and without a rule carry a 95% **Wilson score interval**.
- Lift = rate with / rate without, with a 95% **log-ratio (Katz) interval**; a cell that is zero
  gets the usual +0.5 (Haldane) correction so the interval stays finite.
- A rule "points the wrong way" when its points are positive and the whole lift interval is below
  1, or its points are negative (a forced grade counts as negative) and the whole interval is
  above 1. A rule that never fired on a labelled contact is named too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from connector.calibrate.observe import Observation, features_of
from connector.model.loader import LoadedModel

Z95 = 1.959963984540054

Kind = Literal["engagement", "tier", "fit", "force"]
Verdict = Literal["never fires", "fires on all", "wrong way", "helps", "hurts", "no clear effect"]


@dataclass(frozen=True, slots=True)
class Interval:
    value: float
    low: float
    high: float

    def excludes(self, x: float) -> bool:
        return self.low > x or self.high < x


def wilson(successes: int, n: int, z: float = Z95) -> Interval | None:
    """Wilson score interval of a proportion; None when n is 0. With no success the interval
    starts at 0 exactly, with every one it ends at 1 (computed, they come out 5.55e-17 and
    0.9999999999999999)."""
    if n <= 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= n else min(1.0, centre + half)
    return Interval(p, low, high)


def _shown(v: float, places: int) -> float:
    """`v` to print at `places` decimals: 0 when it rounds to 0 there (a float error such as
    0.1 + 0.2 - 0.3 = 5.55e-17 prints as 0, and nothing prints as -0)."""
    return 0.0 if round(v, places) == 0 else v


def fixed(v: float, places: int = 2) -> str:
    """`0.46`, `0.00` (never `-0.00`)."""
    return f"{_shown(v, places):.{places}f}"


def pct(v: float | None, digits: int = 1) -> str:
    """A share as a percentage (`20.6%`, `0.0%`, never `-0.0%`); `–` for none."""
    return "–" if v is None else f"{_shown(v, digits + 2):.{digits}%}"


def num(v: float) -> str:
    """A threshold or score: at most two decimals, without trailing zeros (`96`, `2.5`, `0`
    for 5.55e-17, never an exponent)."""
    return f"{_shown(v, 2):.2f}".rstrip("0").rstrip(".")


def ci_text(i: Interval | None, as_pct: bool = True) -> str:
    """`52.9% [37%–69%]` (a rate) or `2.81 [1.97–4.00]` (a ratio); `–` for none."""
    if i is None:
        return "–"
    if as_pct:
        return f"{pct(i.value)} [{pct(i.low, 0)}–{pct(i.high, 0)}]"
    return f"{fixed(i.value)} [{fixed(i.low)}–{fixed(i.high)}]"


def lift_interval(a: int, n1: int, c: int, n0: int, z: float = Z95) -> Interval | None:
    """Risk ratio (a/n1) / (c/n0) with a log-ratio interval; None when a group is empty or
    nobody converted in either (no ratio to speak of)."""
    if n1 <= 0 or n0 <= 0 or (a == 0 and c == 0):
        return None
    if a == 0 or c == 0 or a == n1 or c == n0:
        a_, n1_, c_, n0_ = a + 0.5, n1 + 1.0, c + 0.5, n0 + 1.0
    else:
        a_, n1_, c_, n0_ = float(a), float(n1), float(c), float(n0)
    log_rr = math.log((a_ / n1_) / (c_ / n0_))
    value = (a / n1) / (c / n0) if c > 0 else math.exp(log_rr)  # never infinite
    se = math.sqrt(1 / a_ - 1 / n1_ + 1 / c_ - 1 / n0_)
    return Interval(value, math.exp(log_rr - z * se), math.exp(log_rr + z * se))


@dataclass(frozen=True, slots=True)
class RuleLift:
    """How one rule of the current model did on the labelled contacts."""

    name: str  # rule name, or "rule:tier"
    kind: Kind
    points: int | None  # None for a forced grade
    description: str
    fired: int
    fired_converted: int
    not_fired: int
    not_fired_converted: int
    rate_with: Interval | None
    rate_without: Interval | None
    lift: Interval | None
    verdict: Verdict
    grade: str | None = None  # forced grade

    @property
    def fired_share(self) -> float:
        total = self.fired + self.not_fired
        return self.fired / total if total else 0.0

    @property
    def direction(self) -> int:
        """The sign the team gave it: +1 raises the score/grade, -1 lowers it, 0 neither."""
        if self.kind == "force":
            return -1
        if self.points is None or self.points == 0:
            return 0
        return 1 if self.points > 0 else -1


def verdict_for(direction: int, fired: int, not_fired: int, lift: Interval | None) -> Verdict:
    if fired == 0:
        return "never fires"
    if not_fired == 0:  # nobody without it: nothing to compare
        return "fires on all"
    if lift is None:
        return "no clear effect"
    if direction > 0 and lift.high < 1:
        return "wrong way"
    if direction < 0 and lift.low > 1:
        return "wrong way"
    if lift.low > 1:
        return "helps"
    if lift.high < 1:
        return "hurts"
    return "no clear effect"


def _row(
    name: str,
    kind: Kind,
    points: int | None,
    description: str,
    obs: Sequence[Observation],
    grade: str | None = None,
) -> RuleLift:
    a = n1 = c = n0 = 0
    for o in obs:
        if name in o.fired:
            n1 += 1
            a += o.converted
        else:
            n0 += 1
            c += o.converted
    lift = lift_interval(a, n1, c, n0)
    direction = -1 if kind == "force" else (0 if not points else (1 if points > 0 else -1))
    return RuleLift(
        name,
        kind,
        points,
        description,
        n1,
        a,
        n0,
        c,
        wilson(a, n1),
        wilson(c, n0),
        lift,
        verdict_for(direction, n1, n0, lift),
        grade,
    )


def lift_table(model: LoadedModel, obs: Sequence[Observation]) -> list[RuleLift]:
    """One row per rule of the model, in model order: engagement rules (tiers after their rule),
    then fit rules and forced grades. Sales-signal rules are the outcome, so they have no row."""
    m = model.model
    rows: list[RuleLift] = []
    feats = features_of(model)
    done: set[str] = set()
    for f in feats:
        if f.rule not in done:
            done.add(f.rule)
            rule = m.engagement.rules[f.rule_index]
            if rule.tiers is not None:
                best = max(t.points for t in rule.tiers)
                rows.append(_row(f.rule, "engagement", best, rule.description or rule.name, obs))
        rows.append(_row(f.name, "tier" if f.tier else "engagement", f.points, f.description, obs))
    for r in m.fit.rules:
        rows.append(_row(r.name, "fit", r.points, r.description or r.name, obs))
    for fg in m.fit.force:
        rows.append(_row(fg.name, "force", None, fg.description or fg.name, obs, fg.grade))
    return rows


def ranked(rows: Sequence[RuleLift]) -> list[RuleLift]:
    """Rows that fired, highest lift first (then the ones that never fired)."""
    return sorted(rows, key=lambda r: (r.lift is None, -(r.lift.value if r.lift else 0.0), r.name))
