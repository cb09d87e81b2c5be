"""Profile fit refit from the same outcomes: fit points, grade thresholds and grade points.

The profile rules (title seniority, company size, industry, country, e-mail kind) are fitted in
the same logistic regression as the engagement rules (`fit:<rule>` features, 1 when the rule
holds), so their suggested points are on the same scale as engagement points. The model still
reads as grades A-D:

- the **grade thresholds** cut the training contacts' suggested fit points into four groups,
  chosen so that each group is as homogeneous as possible (the least squared spread of fit
  points around the group's mean, an exact 1-D optimal partition over the distinct values);
- each grade's **score points** (`fit.score_points`) are the mean suggested fit points of its
  contacts, and `fit.add_to_score` is turned on, so the profile counts in the score (and in its
  ranking) as much as the data says; a forced grade (student, competitor, ...) stays a forced
  grade and takes its grade's points (forced contacts are left out of the cut and the means).

With fewer than four distinct suggested fit values (too few profile rules fire) the profile is
not refit and the report says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from connector.calibrate.fit import PointChange
from connector.calibrate.observe import FORCE_PREFIX, Observation

GRADE_ORDER = ("A", "B", "C", "D")


@dataclass(frozen=True, slots=True)
class GradeFit:
    grades: dict[str, int]  # minimum fit points of A, B, C
    score_points: dict[str, int]  # points added to the score per grade
    contacts: dict[str, int]  # training contacts per grade (forced ones included)


def fit_points_of(o: Observation, changes: Sequence[PointChange]) -> float:
    return sum(c.suggested * o.units.get(c.feature, 0.0) for c in changes if c.section == "fit")


def _partition(values: list[tuple[float, int]], groups: int) -> list[int]:
    """Start indices of `groups` contiguous groups of sorted (value, count) minimising the
    weighted squared spread around each group's mean (dynamic programming, O(groups x n^2))."""
    n = len(values)
    pre_w, pre_s, pre_q = [0.0], [0.0], [0.0]
    for v, w in values:
        pre_w.append(pre_w[-1] + w)
        pre_s.append(pre_s[-1] + w * v)
        pre_q.append(pre_q[-1] + w * v * v)

    def cost(i: int, j: int) -> float:  # values[i:j]
        w = pre_w[j] - pre_w[i]
        s = pre_s[j] - pre_s[i]
        return (pre_q[j] - pre_q[i]) - s * s / w

    inf = float("inf")
    best = [[inf] * (n + 1) for _ in range(groups + 1)]
    back = [[0] * (n + 1) for _ in range(groups + 1)]
    best[0][0] = 0.0
    for g in range(1, groups + 1):
        for j in range(g, n + 1):
            for i in range(g - 1, j):
                c = best[g - 1][i] + cost(i, j)
                if c < best[g][j]:
                    best[g][j], back[g][j] = c, i
    starts: list[int] = []
    j = n
    for g in range(groups, 0, -1):
        i = back[g][j]
        starts.append(i)
        j = i
    return sorted(starts)


def _forced_grade(o: Observation, force_grades: Mapping[str, str]) -> str | None:
    """The most severe grade a forced-grade rule gives the contact (None: none fired)."""
    grades = [
        force_grades.get(k.removeprefix(FORCE_PREFIX), "D")
        for k in o.units
        if k.startswith(FORCE_PREFIX)
    ]
    return max(grades, key=GRADE_ORDER.index) if grades else None


def refit_grades(
    changes: Sequence[PointChange],
    train: Sequence[Observation],
    force_grades: Mapping[str, str] | None = None,
) -> GradeFit | None:
    """Grade thresholds and per-grade score points from the suggested fit points (see the
    module docstring); None when there are fewer than four distinct values to grade.
    `force_grades`: forced-grade rule name -> its grade (default D)."""
    forced_to = [_forced_grade(o, force_grades or {}) for o in train]
    forced = [g is not None for g in forced_to]
    points = [round(fit_points_of(o, changes)) for o in train]
    counts: dict[int, int] = {}
    for p, f in zip(points, forced, strict=True):
        if not f:
            counts[p] = counts.get(p, 0) + 1
    if len(counts) < 4:
        return None
    values = sorted((float(v), w) for v, w in counts.items())
    starts = _partition(values, 4)  # ascending: D, C, B, A
    mins = [int(values[i][0]) for i in starts]
    grades = {"C": mins[1], "B": mins[2], "A": mins[3]}

    def grade_of(p: int) -> str:
        if p >= grades["A"]:
            return "A"
        if p >= grades["B"]:
            return "B"
        return "C" if p >= grades["C"] else "D"

    sums = dict.fromkeys(GRADE_ORDER, 0.0)
    n = dict.fromkeys(GRADE_ORDER, 0)
    plain = dict.fromkeys(GRADE_ORDER, 0)
    for p, fg in zip(points, forced_to, strict=True):
        g = grade_of(p)
        if fg is not None:  # as the engine grades: the more severe of the two
            n[max(g, fg, key=GRADE_ORDER.index)] += 1
            continue
        n[g] += 1
        plain[g] += 1
        sums[g] += p
    score_points = {g: round(sums[g] / plain[g]) if plain[g] else 0 for g in GRADE_ORDER}
    return GradeFit(grades, score_points, n)
