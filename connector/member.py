"""`AccountMember`, what account scoring reads of one member contact (re-exported by
`connector.types`). A module of its own, compiled with the scoring core (setup.py's
`COMPILED`): in the compiled build it is a native class, whose fields the account scoring
reads as C struct members and whose `__init__` is C. As a `record` (an interpreted class)
each field read from compiled code was a generic attribute look-up, and each of the million
members a full rescore builds ran an interpreted `__init__` (a dataclass's `__init__` stays
interpreted in the compiled build too: hence a plain class, its `__init__` and repr written
out, its equality, hash and pickling by its fields from `connector.byfields.ByFields`).

It imports nothing of the project but `connector.byfields`, so `connector.types` can import it."""

from __future__ import annotations

from typing import Any, Final, final

from connector.byfields import ByFields


@final
class AccountMember(ByFields):
    """What account scoring reads of one member contact: its score now and, for every
    engagement rule that gave it positive points, the times (Unix seconds) of the events.
    Immutable, as a `record`: the type checker refuses an assignment to a field."""

    __slots__ = ("contact_id", "engagement_points", "grade", "hits", "name", "seniority", "title")

    def __init__(
        self,
        contact_id: str,
        name: str,
        title: str | None,
        seniority: str,
        grade: str,
        engagement_points: float,
        hits: tuple[tuple[str, float], ...] = (),  # (engagement rule name, event time)
    ) -> None:
        self.contact_id: Final = contact_id
        self.name: Final = name
        self.title: Final = title
        self.seniority: Final = seniority
        self.grade: Final = grade
        self.engagement_points: Final = engagement_points
        self.hits: Final = hits

    def _key(self) -> tuple[Any, ...]:
        return (
            self.contact_id,
            self.name,
            self.title,
            self.seniority,
            self.grade,
            self.engagement_points,
            self.hits,
        )

    def __repr__(self) -> str:
        return (
            f"AccountMember(contact_id={self.contact_id!r}, name={self.name!r}, "
            f"title={self.title!r}, seniority={self.seniority!r}, grade={self.grade!r}, "
            f"engagement_points={self.engagement_points!r}, hits={self.hits!r})"
        )
