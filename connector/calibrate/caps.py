"""Caps refit with the points, so each keeps its meaning at the new scale.

A cap is written in points, but what it means is a number of *units* (events counted, firings):
`points: -20, cap: 20` means "counts once"; a `product` category capped at 60 with 10-point
product pages means "six product pages". When calibration changes the points, a cap left at
its old value changes meaning (a rule refit from +20 to +79 that keeps `cap: 20` can never give
more than 20). So:

- a **rule cap** keeps its units: `new cap = old cap / |old points| x |new points|` (for a
  tiered rule, the points of its largest tier);
- a **category cap** scales with its rules: by the largest ratio `|new| / |old|` among the
  category's rules, so no rule is held tighter (in units) than before and the category still
  bounds them together.

Caps of rules whose points did not change stay as they are. Every change is reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from connector.calibrate.fit import PointChange
from connector.model.loader import LoadedModel


@dataclass(frozen=True, slots=True)
class CapChange:
    """One cap of the suggested model that differs from the current one."""

    kind: str  # "rule" or "category"
    name: str
    current: int
    suggested: int
    units: float  # what the cap means, in units of the (largest) rule's points

    @property
    def meaning(self) -> str:
        if self.kind == "rule":
            if abs(self.units - 1) < 1e-9:
                return "counts once"
            return f"counts {self.units:g} times"
        return f"×{self.suggested / self.current:.2f}, as its rules" if self.current else ""


def _largest(points: Sequence[int]) -> int:
    return max((abs(p) for p in points), default=0)


def refit_caps(model: LoadedModel, changes: Sequence[PointChange]) -> list[CapChange]:
    """The caps of the suggested model that change with the suggested points."""
    m = model.model
    new_pts: dict[tuple[str, str | None], int] = {
        (c.rule, c.tier): c.suggested for c in changes if c.section == "engagement"
    }
    out: list[CapChange] = []
    ratios: dict[str, list[float]] = {}
    for r in m.engagement.rules:
        old = [t.points for t in r.tiers] if r.tiers is not None else [r.points or 0]
        labels: list[str | None] = [t.label for t in r.tiers] if r.tiers is not None else [None]
        new = [new_pts.get((r.name, lbl), p) for lbl, p in zip(labels, old, strict=True)]
        old_max, new_max = _largest(old), _largest(new)
        if old_max == 0:
            continue
        ratio = new_max / old_max
        ratios.setdefault(r.category, []).append(ratio)
        if r.cap is None or new == old:
            continue
        units = r.cap / old_max
        cap = max(1, round(units * new_max)) if new_max else r.cap
        if cap != r.cap:
            out.append(CapChange("rule", r.name, r.cap, cap, units))
    for name, cat in m.engagement.categories.items():
        rs = ratios.get(name)
        if cat.cap is None or not rs:
            continue
        cap = max(1, round(cat.cap * max(rs)))
        if cap != cat.cap:
            out.append(CapChange("category", name, cat.cap, cap, cat.cap / 1.0))
    return out


def cap_edits(model: LoadedModel, caps: Sequence[CapChange]) -> Mapping[tuple[str | int, ...], int]:
    """(path → value) edits of the model file for these cap changes."""
    index = {r.name: i for i, r in enumerate(model.model.engagement.rules)}
    edits: dict[tuple[str | int, ...], int] = {}
    for c in caps:
        if c.kind == "rule":
            edits[("engagement", "rules", index[c.name], "cap")] = c.suggested
        else:
            edits[("engagement", "categories", c.name, "cap")] = c.suggested
    return edits
