"""What `explain` adds to a score: the events that did not count and why, the score's
history, the account's part in it (an MQA's lower MQL bar) and how a recompute differs from
the stored score. Pure: reads the contact, its events, the scores and the model; no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connector.model.loader import LoadedModel
from connector.scoring import compile_model
from connector.scoring.accounts import by_account
from connector.state.accounts import StoredAccountScore
from connector.types import Contact, Event, ScoreResult, shown_bar
from connector.types import shown_num as _num


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
    *,
    stored: bool = False,
) -> list[NotCounted]:
    """The contact's events that add nothing to `result`, grouped by reason: after `now`,
    before the recycle date, outside the window, matched by no rule, matched only by a pattern
    rule that did not fire; and the rules whose cap was reached. `stored`: `result` is the
    stored score and `now` its scoring time (later events came after it)."""
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
        when = (
            "the stored score was computed (the first {:%Y-%m-%d %H:%M}): a recompute counts them"
            if stored
            else "the scoring time (the first {:%Y-%m-%d %H:%M}): they count when their time comes"
        )
        out.append(
            NotCounted(
                "future",
                len(future),
                first,
                f"{_plural(len(future), 'event')} after " + when.format(first),
            )
        )
    return out


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


# ------------------------------------------------------------------------ the account's part


@dataclass(frozen=True)
class AccountPart:
    """The contact's account as its score sees it (accounts on): the account's stored score
    and verdict, the MQA's lower MQL bar, and whether the contact's MQL is the account's."""

    account_id: str
    name: str | None
    domain: str | None
    score: float
    grade: str
    mqa: bool
    mqa_reason: str | None
    scored_at: datetime
    contact_mql_threshold: float | None  # the MQL bar at an MQA (None: the model has none)
    mql_threshold: float  # the usual MQL bar
    contact_grades: tuple[str, ...]  # the grades the lower bar is for
    mql_by_account: bool  # the contact's MQL verdict is its account's

    def as_json(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "name": self.name,
            "domain": self.domain,
            "score": self.score,
            "grade": self.grade,
            "mqa": self.mqa,
            "mqa_reason": self.mqa_reason,
            "scored_at": self.scored_at.isoformat(),
            "contact_mql_threshold": self.contact_mql_threshold,
            "mql_threshold": self.mql_threshold,
            "contact_grades": list(self.contact_grades),
            "mql_by_account": self.mql_by_account,
        }

    def bar_text(self) -> str:
        """`not an MQA`, or what the MQA does for its contacts and for this one."""
        if not self.mqa:
            return "not an MQA"
        out = f"MQA ({self.mqa_reason})" if self.mqa_reason else "MQA"
        if self.contact_mql_threshold is not None:
            grades = " or ".join(self.contact_grades)
            out += (
                f": a grade {grades} contact is an MQL from "
                f"{shown_bar(self.contact_mql_threshold)} points instead of "
                f"{shown_bar(self.mql_threshold)}"
            )
            out += (
                "; this contact's MQL is the account's"
                if self.mql_by_account
                else "; not what decides this contact's verdict"
            )
        return out


def account_part(
    account: StoredAccountScore, result: ScoreResult, model: LoadedModel
) -> AccountPart:
    """`account`'s part in `result` (the contact's score), by `model`'s MQA bar."""
    section = model.model.accounts
    mqa = section.mqa if section is not None else None
    return AccountPart(
        account_id=account.account_id,
        name=account.name,
        domain=account.domain,
        score=account.score,
        grade=account.grade,
        mqa=account.mqa,
        mqa_reason=account.mqa_reason,
        scored_at=account.scored_at,
        contact_mql_threshold=mqa.contact_mql_threshold if mqa is not None else None,
        mql_threshold=model.model.lifecycle.mql.threshold,
        contact_grades=tuple(mqa.contact_grades) if mqa is not None else (),
        mql_by_account=by_account(result.lifecycle.mql_reason),
    )


# ------------------------------------------------------------------------ stored vs recomputed


def verdict(r: ScoreResult) -> str:
    """`score 60, grade B, MQL (reason)` / `..., no MQL`: a score in one phrase."""
    lc = r.lifecycle
    mql = f"MQL ({lc.mql_reason})" if lc.mql and lc.mql_reason else "MQL" if lc.mql else "no MQL"
    return f"score {_num(r.score)}, grade {r.grade}, {mql}"


def differences(before: ScoreResult, after: ScoreResult, shown: int = 5) -> list[str]:
    """What differs from `before` to `after`, as `score 60 → 45`, `grade B → C`, `MQL yes
    (…) → no`, `model a → b`, and the rules whose points moved (the first `shown`); [] when
    they say the same."""
    out: list[str] = []
    if before.score != after.score:
        out.append(f"score {_num(before.score)} → {_num(after.score)}")
    if before.grade != after.grade:
        out.append(f"grade {before.grade} → {after.grade}")
    if (before.priority or "—") != (after.priority or "—"):
        out.append(f"priority {before.priority or '—'} → {after.priority or '—'}")
    b, a = before.lifecycle, after.lifecycle
    if (b.mql, b.mql_reason) != (a.mql, a.mql_reason):
        out.append(f"MQL {_yes(b.mql, b.mql_reason)} → {_yes(a.mql, a.mql_reason)}")
    # a stage the stored score had to write and the CRM now shows (the sync wrote it) is no
    # difference: the recompute, reading that stage, has nothing left to write
    written = a.target_stage is None and b.target_stage == a.current_stage
    if b.target_stage != a.target_stage and not written:
        out.append(f"stage to write {b.target_stage or '—'} → {a.target_stage or '—'}")
    if before.model_fingerprint != after.model_fingerprint:
        out.append(
            f"model {before.model_version} ({before.model_fingerprint}) → "
            f"{after.model_version} ({after.model_fingerprint})"
        )
    old, new = _points(before), _points(after)
    moved = [
        f"{rule} {_opt(old.get(rule))} → {_opt(new.get(rule))}"
        for rule in dict.fromkeys([*old, *new])
        if old.get(rule) != new.get(rule)
    ]
    if len(moved) > shown:
        moved = [*moved[:shown], f"…and {len(moved) - shown} more rule(s)"]
    if moved:
        out.append("points by rule: " + ", ".join(moved))
    return out


def _points(r: ScoreResult) -> dict[str, float]:
    out: dict[str, float] = {}
    for x in r.reasons:
        if x.rule != "grade":
            out[x.rule] = out.get(x.rule, 0.0) + x.points
    return out


def _opt(v: float | None) -> str:
    return "—" if v is None else _num(v)


def _yes(mql: bool, reason: str | None) -> str:
    if not mql:
        return "no"
    return f"yes ({reason})" if reason else "yes"
