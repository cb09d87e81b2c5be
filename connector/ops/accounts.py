"""Accounts for the operator (issue 21): `leadscore accounts` (the hottest accounts with their
engaged people) and `leadscore explain --account` (every point of one account's score with the
people behind it, its members, its history, and what did not count). Read-only over the state
DB; the pure scorer's numbers (`scoring/accounts.py`) say what counted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connector.model.loader import LoadedModel
from connector.scoring.accounts import NAME_SHOWN, TITLE_SHOWN, member_hits, shown_text
from connector.state.accounts import AccountMemberRow, StoredAccountScore
from connector.state.store import StateStore
from connector.types import Reason

DAY = 86400.0
PEOPLE_SHOWN = 3  # engaged people named in the accounts table before "…and N more"


@dataclass(frozen=True, slots=True)
class EngagedPerson:
    contact_id: str
    name: str
    title: str | None
    score: float | None
    grade: str | None


@dataclass(frozen=True, slots=True)
class AccountRow:
    """One line of `leadscore accounts`."""

    account_id: str
    name: str
    domain: str | None
    grade: str
    score: float
    mqa: bool
    mqa_reason: str | None
    members: int
    engaged: tuple[EngagedPerson, ...]  # most engaged first

    @property
    def label(self) -> str:
        if self.domain and self.name and self.name.lower() != self.domain.lower():
            return f"{self.name} ({self.domain})"
        return self.name or self.domain or self.account_id

    def people(self, shown: int = PEOPLE_SHOWN) -> str:
        """`Elena Marsh (VP Marketing), Marcus Lee (Marketing Manager), …and 2 more`."""
        parts = [
            shown_text(p.name, NAME_SHOWN)
            + (f" ({shown_text(p.title, TITLE_SHOWN)})" if p.title else "")
            for p in self.engaged[:shown]
        ]
        more = len(self.engaged) - shown
        return ", ".join(parts) + (f", …and {more} more" if more > 0 else "")


def _who(x: MemberLine) -> str:
    """A member named in an explanation's lines, as reasons name people (`shown_text`)."""
    return shown_text(x.name, NAME_SHOWN)


def account_label(a: StoredAccountScore) -> str:
    kind, _, key = a.account_id.partition(":")
    return a.name or a.domain or (key if kind != "company" else a.account_id)


def _row(a: StoredAccountScore, members: list[AccountMemberRow]) -> AccountRow:
    by_id = {m.contact_id: m for m in members}
    engaged = tuple(
        EngagedPerson(cid, m.name, m.job_title, m.score, m.grade)
        for cid in a.engaged_contacts
        if (m := by_id.get(cid)) is not None
    )
    return AccountRow(
        a.account_id,
        account_label(a),
        a.domain,
        a.grade,
        a.score,
        a.mqa,
        a.mqa_reason,
        a.members,
        engaged,
    )


def top_account_rows(store: StateStore, crm: str, n: int) -> list[AccountRow]:
    """The `n` highest-scored accounts, highest first, with their engaged people."""
    return [_row(a, store.account_members(crm, a.account_id)) for a in store.top_accounts(crm, n)]


def demo_account_rows(store: StateStore, crm: str, n: int) -> list[AccountRow]:
    """The demo's table: the MQAs first (hottest first), then the hottest of the others."""
    every = store.top_accounts(crm, 10_000)
    ranked = [a for a in every if a.mqa] + [a for a in every if not a.mqa]
    return [_row(a, store.account_members(crm, a.account_id)) for a in ranked[:n]]


# ------------------------------------------------------------------------ explain --account


@dataclass(frozen=True, slots=True)
class AccountPoint:
    """One reason of the account's score and the people behind it."""

    rule: str
    category: str  # "account" (engagement) or "account_fit"
    points: float
    text: str
    people: tuple[str, ...]  # names


@dataclass(frozen=True, slots=True)
class MemberLine:
    contact_id: str
    name: str
    email: str | None
    title: str | None
    score: float | None
    grade: str | None
    stage: str | None
    mql: bool
    engagement_points: float
    counted_points: float  # what the roll-up took of them (0: not counted)


@dataclass(frozen=True, slots=True)
class AccountExplanation:
    account_id: str
    name: str
    domain: str | None
    score: float
    engagement_points: float
    fit_points: float
    grade: str
    mqa: bool
    mqa_reason: str | None
    model_version: str
    scored_at: datetime
    points: tuple[AccountPoint, ...]
    members: tuple[MemberLine, ...]
    not_counted: tuple[str, ...]
    history: tuple[dict[str, Any], ...]


def _people_of(r: Reason, names: dict[str, str]) -> tuple[str, ...]:
    out = []
    for key in r.event_ids:
        kind, _, cid = key.partition(":")
        if kind == "contact":
            out.append(names.get(cid, cid))
    return tuple(out)


def explain_account(
    store: StateStore, crm: str, key: str, model: LoadedModel, now: datetime
) -> AccountExplanation | None:
    """The stored account (by id, company id or domain) explained, as of when it was scored
    (its stored points); None when unknown. `now` is kept for callers' symmetry with the
    contact explanation."""
    a = store.get_account(crm, key)
    if a is None:
        return None
    rows = store.account_members(crm, a.account_id)
    names = {m.contact_id: m.name for m in rows}
    contacts = {c.id: c for c in store.iter_contacts(crm, [m.contact_id for m in rows])}
    stored = store.get_scores_many(crm, [m.contact_id for m in rows])
    results = {cid: s.to_result() for cid, s in stored.items()}
    section = model.model.accounts
    cap = section.engagement.per_contact_cap if section is not None else None
    top = section.engagement.top_contacts if section is not None else None
    rollup = next((r for r in a.reasons if r.rule == "member_engagement"), None)
    counted_ids = set(_people_ids(rollup)) if rollup is not None else set()
    members: list[MemberLine] = []
    for m in rows:
        r = results.get(m.contact_id)
        points = r.engagement_points if r is not None else 0.0
        counted = 0.0
        if m.contact_id in counted_ids:
            counted = min(points, cap) if cap is not None else points
        c = contacts.get(m.contact_id)
        members.append(
            MemberLine(
                m.contact_id,
                m.name,
                m.email,
                m.job_title,
                m.score,
                m.grade,
                c.lifecycle_stage if c is not None else None,
                m.mql,
                points,
                counted,
            )
        )
    members.sort(key=lambda x: (-x.engagement_points, x.contact_id))
    skipped: list[str] = []
    if cap is not None:
        for x in members:
            if x.contact_id in counted_ids and x.engagement_points > cap:
                skipped.append(
                    f"{_who(x)}: {_num(x.engagement_points - cap)} of {_num(x.engagement_points)} "
                    f"points over the {_num(cap)}-point cap per person"
                )
    engaged = [x for x in members if x.engagement_points > 0]
    left_out = [x for x in engaged if x.contact_id not in counted_ids]
    if left_out:
        skipped.append(
            f"{len(left_out)} engaged {'person' if len(left_out) == 1 else 'people'} beyond the "
            f"top {top} most engaged: "
            + ", ".join(_who(x) for x in left_out[:4])
            + (f", …and {len(left_out) - 4} more" if len(left_out) > 4 else "")
        )
    if section is not None:
        b = section.engagement.breadth
        keys = [
            k
            for cid in (x.contact_id for x in engaged)
            if (res := results.get(cid)) is not None
            for reason in res.reasons
            if reason.kind == "engagement" and reason.points > 0
            for k in reason.event_ids
        ]
        times = store.event_times(crm, keys)
        # as of when the stored points were computed (they are what is explained)
        now = a.scored_at
        since = now.timestamp() - b.within_days * DAY
        for x in engaged:
            res = results.get(x.contact_id)
            if res is None:
                continue
            if x.engagement_points < b.min_points:
                skipped.append(
                    f"{_who(x)}: {_num(x.engagement_points)} points, under the "
                    f"{_num(b.min_points)} that count toward breadth"
                )
                continue
            hits = member_hits(res, times)
            last = max((t for _, t in hits if t <= now.timestamp()), default=None)
            if last is not None and last < since:
                day = datetime.fromtimestamp(last, now.tzinfo).strftime("%Y-%m-%d")
                skipped.append(
                    f"{_who(x)}: last engaged {day}, outside the {_num(b.within_days)}-day "
                    "breadth window"
                )
    quiet = [x for x in members if x.engagement_points <= 0]
    if quiet:
        skipped.append(
            f"{len(quiet)} member(s) with no engagement points: "
            + ", ".join(_who(x) for x in quiet[:4])
            + (f", …and {len(quiet) - 4} more" if len(quiet) > 4 else "")
        )
    why = tuple(
        AccountPoint(r.rule, r.category, r.points, r.text, _people_of(r, names)) for r in a.reasons
    )
    return AccountExplanation(
        a.account_id,
        account_label(a),
        a.domain,
        a.score,
        a.engagement_points,
        a.fit_points,
        a.grade,
        a.mqa,
        a.mqa_reason,
        a.model_version,
        a.scored_at,
        why,
        tuple(members),
        tuple(skipped),
        tuple(store.account_score_history(crm, a.account_id)),
    )


def _people_ids(r: Reason) -> list[str]:
    return [k.partition(":")[2] for k in r.event_ids if k.startswith("contact:")]


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.1f}"
