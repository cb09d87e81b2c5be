"""What `explain` adds to a score: the events that did not count and why, and the score's
history. Pure: reads the contact, its events, the score and the model; no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connector.model.loader import LoadedModel
from connector.scoring import compile_model
from connector.types import Contact, Event, ScoreResult


@dataclass(frozen=True)
class NotCounted:
    """A group of events that add nothing to the score, and why."""

    why: str  # "window" | "recycled" | "no_rule" | "not_fired" | "capped" | "future"
    count: int
    last: datetime | None  # the newest event of the group (the first, for "future")
    text: str

    def as_json(self) -> dict[str, Any]:
        return {
            "why": self.why,
            "events": self.count,
            "last": self.last.isoformat() if self.last else None,
            "text": self.text,
        }


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def not_counted(
    contact: Contact,
    events: Iterable[Event],
    result: ScoreResult,
    model: LoadedModel,
    now: datetime,
) -> list[NotCounted]:
    """The contact's events that add nothing to `result`, grouped by reason: after `now`,
    before the recycle date, outside the window, matched by no rule, matched only by a pattern
    rule that did not fire; and the rules whose cap was reached."""
    cm = compile_model(model)
    window_days = model.model.engagement.window_days
    try:
        window_start = now - timedelta(days=window_days)
    except OverflowError:
        window_start = datetime.min.replace(tzinfo=now.tzinfo)
    counted = {key for r in result.reasons for key in r.event_ids}
    future: list[Event] = []
    recycled: list[Event] = []
    old: list[Event] = []
    no_rule: dict[str, list[Event]] = {}
    not_fired: dict[str, list[Event]] = {}
    seen: set[str] = set()
    for ev in sorted(events, key=lambda e: (e.occurred_at, e.source, e.source_id)):
        if ev.key in seen or ev.key in counted:
            seen.add(ev.key)
            continue
        seen.add(ev.key)
        if ev.occurred_at > now:
            future.append(ev)
            continue
        if contact.recycled_at is not None and ev.occurred_at <= contact.recycled_at:
            recycled.append(ev)
            continue
        matched = cm.matched(ev.type, ev.attributes).all if ev.type in cm.by_type else []
        if not matched:
            no_rule.setdefault(ev.type, []).append(ev)
        elif ev.occurred_at < window_start:
            old.append(ev)
        else:
            names = ", ".join(sorted({cr.name for cr, _, _ in matched}))
            not_fired.setdefault(names, []).append(ev)
    out: list[NotCounted] = []
    if old:
        last = old[-1].occurred_at
        out.append(
            NotCounted(
                "window",
                len(old),
                last,
                f"{_plural(len(old), 'event')}, the last {last:%Y-%m-%d}, outside the "
                f"{_num(window_days)}-day window",
            )
        )
    if recycled:
        assert contact.recycled_at is not None
        out.append(
            NotCounted(
                "recycled",
                len(recycled),
                recycled[-1].occurred_at,
                f"{_plural(len(recycled), 'event')} before the recycle on "
                f"{contact.recycled_at:%Y-%m-%d}",
            )
        )
    for names, evs in not_fired.items():
        out.append(
            NotCounted(
                "not_fired",
                len(evs),
                evs[-1].occurred_at,
                f"{_plural(len(evs), 'event')} matched {names}, whose pattern did not fire",
            )
        )
    for et, evs in sorted(no_rule.items()):
        out.append(
            NotCounted(
                "no_rule",
                len(evs),
                evs[-1].occurred_at,
                f"{_plural(len(evs), et + ' event')} matched no rule",
            )
        )
    for r in result.reasons:
        if r.kind == "engagement" and "capped at" in r.text:
            out.append(
                NotCounted(
                    "capped",
                    len(r.event_ids),
                    None,
                    f"{r.rule} reached its cap: {r.text}; more of these add nothing",
                )
            )
    if future:
        first = future[0].occurred_at
        out.append(
            NotCounted(
                "future",
                len(future),
                first,
                f"{_plural(len(future), 'event')} after the scoring time (the first "
                f"{first:%Y-%m-%d %H:%M}): they count when their time comes",
            )
        )
    return out


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.1f}"


def history_lines(rows: Sequence[Mapping[str, Any]], limit: int = 10) -> list[str]:
    """The stored score's history, oldest first: `first scored 140 (grade A) on 2026-09-01
    (model X)`, then `140 → 110 on 2026-10-02 (model X)` per change (grade and MQL changes
    said too); the last `limit` lines, with how many earlier ones were left out."""
    lines: list[str] = []
    prev: Mapping[str, Any] | None = None
    for row in rows:
        when = f"{row['scored_at']:%Y-%m-%d}"
        model = f"model {row['model_version']}"
        if prev is None:
            mql = ", MQL" if row["mql"] else ""
            lines.append(
                f"first scored {_num(row['score'])} (grade {row['grade']}{mql}) on {when} ({model})"
            )
        else:
            extra = []
            if row["grade"] != prev["grade"]:
                extra.append(f"grade {prev['grade']} → {row['grade']}")
            if row["mql"] != prev["mql"]:
                extra.append("became MQL" if row["mql"] else "no longer MQL")
            if row["model_version"] != prev["model_version"]:
                extra.append(f"model {prev['model_version']} → {row['model_version']}")
            more = "; " + ", ".join(extra) if extra else ""
            lines.append(f"{_num(prev['score'])} → {_num(row['score'])} on {when} ({model}){more}")
        prev = row
    if len(lines) > limit:
        dropped = len(lines) - limit
        lines = [f"… {dropped} earlier change(s)", *lines[-limit:]]
    return lines
