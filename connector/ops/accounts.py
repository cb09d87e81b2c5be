"""Accounts for the operator (issue 21): `leadscore accounts` (the hottest accounts with their
engaged people) and `leadscore explain --account` (every point of one account's score with the
people behind it, its members, its history, and what did not count). Read-only over the state
DB; the pure scorer's numbers (`scoring/accounts.py`) say what counted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connector.model.loader import LoadedModel
from connector.model.schema import AccountsModel
from connector.scoring.accounts import (
    NAME_SHOWN,
    TITLE_SHOWN,
    member_hits,
    mqa_misses,
    shown_text,
)
from connector.state.accounts import (
    AccountMemberRow,
    StoredAccountScore,
    company_account_id,
    domain_account_id,
)
from connector.state.store import StateStore
from connector.types import Reason
from connector.types import shown_num as _num

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
    # how the key asked for was read (`find_account`): a merged company's survivor, and the
    # other accounts the same domain names (the shown one not among them)
    notes: tuple[str, ...] = ()
    also_matching: tuple[dict[str, Any], ...] = ()
    # an account that is no MQA: what of the model's MQA definition it misses, each named
    # (`score 80 < 100`, `grade C, not A or B`, `1 person engaged, 2 needed`, `blocked:
    # vendor domain`); empty for an MQA
    not_mqa: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AccountLookup:
    """The stored account a key names (`find_account`): `notes` say how it was reached (a
    merged company stands for its survivor), `others` the other scored accounts of the same
    domain (an e-mail-domain account beside company records), highest score first."""

    account: StoredAccountScore | None
    notes: tuple[str, ...] = ()
    others: tuple[StoredAccountScore, ...] = ()


def find_account(store: StateStore, crm: str, key: str, model: LoadedModel) -> AccountLookup:
    """The stored account `key` names: an account id (`company:9001`, `domain:acme.com`), a
    CRM company id (`9001`; a company merged into another stands for its survivor, as the
    sync resolves it; Marketo: the `externalCompanyId` `ACC-9001`, else the record's own
    number `9001` its UI shows), a domain as a person writes it (`ACME.com`, `www.acme.com`,
    `https://acme.com/`: normalised as enrichment normalises an e-mail's domain, the
    registrable domain tried after the host), else a company name (`Acme Analytics`, any
    case) that names one account only. A domain names its company accounts (highest score
    first) before its e-mail-domain account; the others it names are in `others`."""
    k = key.strip()
    kind, sep, rest = k.partition(":")
    if sep and kind in ("company", "domain", "name"):
        found = store.account_score(crm, k)
        if found is not None or kind == "name":
            return AccountLookup(found)
        if kind == "company":
            by_number = _by_number(store, crm, rest)
            return by_number if by_number.account else _survivor(store, crm, rest, model)
        k = rest
    elif k:
        found = store.account_score(crm, company_account_id(k))
        if found is not None:
            return AccountLookup(found)
        merged = _survivor(store, crm, k, model)
        if merged.account is not None or merged.notes:
            return merged
        by_number = _by_number(store, crm, k)
        if by_number.account is not None:
            return by_number
    by_domain = _by_domain(store, crm, k)
    if by_domain.account is not None or kind == "domain":
        return by_domain
    return _by_name(store, crm, k)


def _by_number(store: StateStore, crm: str, number: str) -> AccountLookup:
    """The account of a company record the CRM numbers apart from its id (a Marketo
    company's own `id`, its account keyed by its `externalCompanyId`)."""
    ids = [company_account_id(c) for c in store.company_ids_by_number(crm, number)]
    found = sorted(
        store.account_scores_many(crm, ids).values(), key=lambda a: (-a.score, a.account_id)
    )
    return AccountLookup(found[0], (), tuple(found[1:])) if found else AccountLookup(None)


def _by_name(store: StateStore, crm: str, name: str) -> AccountLookup:
    """The account a company name names, when it names one only; several: none, and a note
    naming them (an id or a domain tells them apart)."""
    found = store.accounts_named(crm, name)
    if len(found) == 1:
        return AccountLookup(found[0])
    if not found:
        near = store.accounts_containing(crm, name)
        if not near:
            return AccountLookup(None)
        shown = ", ".join(
            f"{a.name or a.account_id}" + (f" ({a.domain})" if a.domain else "") for a in near[:5]
        )
        more = f" and {len(near) - 5} more" if len(near) > 5 else ""
        return AccountLookup(None, (f"did you mean {shown}{more}?",))
    shown = ", ".join(a.account_id for a in found[:5])
    more = f" and {len(found) - 5} more" if len(found) > 5 else ""
    return AccountLookup(
        None, (f"{len(found)} accounts are named {name!r}: {shown}{more}; give one's id",)
    )


def _survivor(store: StateStore, crm: str, company_id: str, model: LoadedModel) -> AccountLookup:
    """A company merged away (or archived) in the CRM: the account of the live company it
    stands for, followed as the sync follows it (`AccountStage._follow`)."""
    from connector.account_stage import AccountStage

    c = store.get_crm_companies(crm, [company_id]).get(company_id)
    if c is None:
        return AccountLookup(None)
    if c.archived:
        return AccountLookup(None, (f"company {company_id} is archived in the CRM",))
    if c.merged_into is None:
        return AccountLookup(None)
    live = AccountStage.detached(store, crm, model)._follow(company_id, {})
    if live is None:
        return AccountLookup(
            None, (f"company {company_id} was merged into {c.merged_into}, no longer live",)
        )
    note = f"company {company_id} was merged into {live}: showing its survivor"
    return AccountLookup(store.account_score(crm, company_account_id(live)), (note,))


def _by_domain(store: StateStore, crm: str, key: str) -> AccountLookup:
    """The account of a domain as an admin types it: as given, as a host, its registrable
    domain, and as a CRM company's domain field reads (`company_domain`: an address, a
    port, a path without a scheme)."""
    from connector.enrich.email import company_domain, normalize_domain, registrable_domain

    tried = [key.lower()]
    try:
        host = normalize_domain(key)
    except ValueError:
        host = ""
    if host:
        tried += [host, registrable_domain(host) or host]
    tried.append(company_domain(key) or "")
    for d in dict.fromkeys(t for t in tried if t):
        ids = [company_account_id(c) for c in store.company_ids_by_domain(crm, d)]
        matches = sorted(
            store.account_scores_many(crm, ids).values(), key=lambda a: (-a.score, a.account_id)
        )
        by_mail = store.account_score(crm, domain_account_id(d))
        if by_mail is not None:
            matches.append(by_mail)
        if not matches:  # an account keyed otherwise that carries the domain
            other = store.get_account(crm, d)
            matches = [other] if other is not None else []
        if matches:
            return AccountLookup(matches[0], (), tuple(matches[1:]))
    return AccountLookup(None)


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
    """The stored account (by id, company id or domain: `find_account`) explained, as of when
    it was scored (its stored points); None when unknown. `now` is kept for callers'
    symmetry with the contact explanation."""
    found = find_account(store, crm, key, model)
    return None if found.account is None else explain_found(store, crm, found, model)


def explain_found(
    store: StateStore, crm: str, found: AccountLookup, model: LoadedModel
) -> AccountExplanation:
    """`explain_account` of an account `find_account` found."""
    a = found.account
    assert a is not None
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
    missing = () if a.mqa or section is None else _not_mqa(a, section)
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
        found.notes,
        tuple(
            {"account_id": o.account_id, "name": account_label(o), "score": o.score}
            for o in found.others
        ),
        missing,
    )


def _not_mqa(a: StoredAccountScore, section: AccountsModel) -> tuple[str, ...]:
    """What of `section`'s MQA definition the stored account `a` misses, as it was scored
    (a force rule's block is kept among its reasons)."""
    rules = [r.rule for r in a.reasons]
    return mqa_misses(section, a.score, a.grade, len(a.engaged_contacts), rules)


def _people_ids(r: Reason) -> list[str]:
    return [k.partition(":")[2] for k in r.event_ids if k.startswith("contact:")]
