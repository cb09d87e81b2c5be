"""`Reason`, one rule that fired with its points and the events behind them (re-exported by
`connector.types`). A module of its own, compiled with the scoring core (setup.py's
`COMPILED`), as `connector.member` is for `AccountMember`: in the compiled build a native
class, whose `__init__` is C and whose fields the engine, the account scoring and the row
codec read as C struct members. A contact's score carries ~8 reasons and an account's ~10;
as a `record` each one ran an interpreted `__init__` (~2,900 instructions called from the
compiled engine) and each field read from compiled code was a generic attribute look-up.

Equality, hash, repr and pickling are a frozen dataclass's: the repr written out, the rest by
its fields from `connector.byfields.ByFields` (a dataclass's `__init__` stays interpreted in
the compiled build).

It imports nothing of the project but `connector.byfields`, so `connector.types` can import it."""

from __future__ import annotations

import math
from typing import Any, Final, Literal, final

from connector.byfields import ByFields

ReasonKind = Literal["fit", "engagement", "lifecycle"]


@final
class Reason(ByFields):
    """One rule that fired: its points and the events behind them. Immutable, as a `record`:
    the type checker refuses an assignment to a field."""

    __slots__ = ("category", "event_ids", "kind", "points", "rule", "text")

    def __init__(
        self,
        rule: str,
        category: str,
        # `float | int`, not `float`: the compiled build stores a `float` field as a C double
        # and would turn the whole points of a reason read back from JSON (`50`) into `50.0`,
        # changing the stored text and losing digits past 2**53
        points: float | int,
        text: str,
        event_ids: tuple[str, ...] = (),
        kind: ReasonKind = "engagement",
    ) -> None:
        self.rule: Final = rule
        self.category: Final = category
        self.points: Final = points
        self.text: Final = text
        self.event_ids: Final = event_ids
        self.kind: Final = kind

    def _key(self) -> tuple[Any, ...]:
        return (self.rule, self.category, self.points, self.text, self.event_ids, self.kind)

    def __repr__(self) -> str:
        return (
            f"Reason(rule={self.rule!r}, category={self.category!r}, points={self.points!r}, "
            f"text={self.text!r}, event_ids={self.event_ids!r}, kind={self.kind!r})"
        )


def shown_points(v: float) -> str:
    """A score or points as leadscore shows them, in a reason's text, the terminal, `explain`:
    a whole number bare, else to a tenth rounded down, as the CRM's whole-number properties
    round down (`types.crm_score`): 99.96 reads "99.9" beside the CRM's 99, never "100.0" on
    a contact that is no MQL at 100. Here (a compiled module) for the scoring core's reason
    texts; `types.shown_num` is this."""
    f = float(v)
    # `f % 1.0 == 0.0`: `f.is_integer()` (inf and nan: neither), read without a method call
    if f % 1.0 == 0.0:
        return str(int(f))
    if f - f != 0.0:  # inf or nan
        return f"{f:.1f}"
    # round(…, 9) first: 0.3 * 10 is 3.0000000000000004 and 0.7 * 10 is 7.000000000000001
    return f"{math.floor(round(f * 10, 9)) / 10:.1f}"


def shown_signed(v: float) -> str:
    """`shown_points` with its sign, as a reason's text starts ("+30 ...", "-10 ..."): one
    function for the engine's, the accounts' and the CLI's texts, which `ops.common` reads
    back by it."""
    return ("+" if v >= 0 else "") + shown_points(v)


def shown_bar(v: float) -> str:
    """A bar (a threshold the model file writes) as written: 60, 59.6, 60.45; never rounded,
    so a score shown rounded down never reads as over a bar it is under, nor the other way."""
    f = float(v)
    return str(int(f)) if f % 1.0 == 0.0 else f"{f:g}"
