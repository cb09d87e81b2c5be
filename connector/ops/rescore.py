"""`leadscore rescore`: what a model change does to every stored contact, then applying it.

Before = the stored score of each contact (with the model version that produced it).
After = the contact rescored with its stored events and enrichment at `now`, with the new model:
exactly what the pipeline computes. The write count comes from `pipeline.planned_changes`, the
function the sync itself uses, so the preview says how many contacts the real rescore writes
(when the CRM has not changed meanwhile: the real run pulls first).

"MQL-qualified" means the model's verdict (`mql_reason`: threshold or hand-raiser), whatever the
stage; "moved to MQL" counts the contacts whose lifecycle stage would be written as MQL.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from itertools import islice
from typing import TYPE_CHECKING

from connector.active_model import activate
from connector.crm.base import WRITES_COMPANY_RECORDS
from connector.model.loader import LoadedModel, NamedModel
from connector.ops.common import (
    READ_BATCH,
    SCORE_BATCH,
    Rescored,
    reason_line,
    rescore_stored,
    with_hit_times,
)
from connector.ops.parallel import by_id_range, by_piece, plan_workers, tick
from connector.pipeline import (
    Enricher,
    Pipeline,
    SyncSummary,
    company_changes,
    needs_write,
    write_changes,
)
from connector.pipeline.named import is_qualified, named_properties
from connector.scoring.accounts import collect_members, counted_rules, member_part
from connector.scoring.engine import keeping_hit_times
from connector.state.accounts import AccountScoreRow
from connector.state.named import StoredNamedScore
from connector.state.store import LAST_ID, StateStore, StoredScore
from connector.types import (
    MQL,
    AccountResult,
    Contact,
    CrmCompany,
    Enrichment,
    Reason,
    ScoreResult,
    WriteBack,
)

if TYPE_CHECKING:
    from connector.account_stage import AccountStage

NO_GRADE = "—"  # the "before" grade of a contact that had no stored score
NO_SCORE = "no score"  # the "after" of an account left with no live member: score dropped


@dataclass(frozen=True, slots=True)
class ContactChange:
    """One contact whose score, grade, MQL verdict or reasons change."""

    contact_id: str
    label: str  # e-mail, or the id
    before_score: float | None
    before_grade: str | None
    before_mql: str | None
    before_version: str | None
    after_score: float
    after_grade: str
    after_mql: str | None
    removed: tuple[str, ...]  # reasons that no longer apply (or apply differently)
    added: tuple[str, ...]  # reasons that are new (or new values of changed ones)
    writes: tuple[str, ...]  # the properties the rescore would send
    stage: str | None = None  # `sync --dry-run`: the stage shown, and where it would move

    @property
    def delta(self) -> float:
        return self.after_score - (self.before_score or 0.0)

    @property
    def mql_flip(self) -> bool:
        return (self.before_mql is not None) != (self.after_mql is not None)

    @property
    def grade_change(self) -> bool:
        return self.before_grade != self.after_grade


@dataclass(frozen=True, slots=True)
class AccountChange:
    """One account whose score, grade or MQA verdict changes with the new model."""

    account_id: str
    label: str
    before_score: float | None
    before_grade: str | None
    before_mqa: bool
    after_score: float
    after_grade: str
    after_mqa: bool
    after_mqa_reason: str | None
    dropped: bool = False  # no live member left: its score goes, its company values cleared

    @property
    def delta(self) -> float:
        return self.after_score - (self.before_score or 0.0)

    @property
    def mqa_flip(self) -> bool:
        return self.before_mqa != self.after_mqa


# what account scoring reads of a member, recorded by the contact preview:
# (engagement points, grade, ((rule, event time), ...))
MemberPart = tuple[float, str, tuple[tuple[str, float], ...]]


@dataclass
class AccountPreview:
    """Before → after for every stored account, from its members' recomputed scores."""

    accounts: int = 0
    score_changes: int = 0
    grade_changes: int = 0
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    mqa_before: int = 0
    mqa_after: int = 0
    became_mqa: int = 0
    stopped_mqa: int = 0
    sample: list[AccountChange] = field(default_factory=list)
    companies_to_write: int = 0  # company records whose values change (diff-only)
    # accounts left with no live member (all moved away, archived or merged away): the
    # applied rescore drops their score and clears their company record's values
    dropped: int = 0
    companies_to_clear: int = 0  # of `companies_to_write`, the records whose values clear

    def headline(self) -> str:
        gone = f", {self.dropped} left with no live member (score dropped)" if self.dropped else ""
        return (
            f"{self.accounts} account(s): {self.score_changes} score change(s), "
            f"{self.grade_changes} grade change(s){gone}, MQA {self.mqa_before} → "
            f"{self.mqa_after} (+{self.became_mqa} became / −{self.stopped_mqa} stopped being "
            "MQA)"
        )

    def companies_line(self) -> str:
        cleared = (
            f" ({self.companies_to_clear} cleared: their account has no live member left)"
            if self.companies_to_clear
            else ""
        )
        return f"company record(s) to write: {self.companies_to_write}{cleared}"


@dataclass(frozen=True, slots=True)
class Waiting:
    """An account member whose MQL verdict depends on its account (an MQA lowers the bar):
    what its preview needs once the account's new score is known."""

    contact: Contact
    enrichment: Enrichment | None
    stored: StoredScore | None
    result: ScoreResult
    written: dict[str, str]
    account_id: str
    extra: dict[str, str] = field(default_factory=dict)  # the named scores' changed values


@dataclass
class NamedPreview:
    """Before → after of one named score (a model's `scores:`) over every stored contact."""

    name: str
    threshold: float | None = None
    contacts: int = 0
    unscored: int = 0  # contacts without a stored value of this score
    score_changes: int = 0
    qualified_before: int = 0
    qualified_after: int = 0
    to_write: int = 0  # contacts whose CRM values of this score change

    def merge(self, other: NamedPreview) -> None:
        self.contacts += other.contacts
        self.unscored += other.unscored
        self.score_changes += other.score_changes
        self.qualified_before += other.qualified_before
        self.qualified_after += other.qualified_after
        self.to_write += other.to_write

    def headline(self) -> str:
        qualified = (
            f", qualified {self.qualified_before} → {self.qualified_after}"
            if self.threshold is not None
            else ""
        )
        return (
            f"score {self.name}: {self.contacts} contact(s), {self.score_changes} score "
            f"change(s){qualified}, {self.to_write} contact(s) to write"
        )


@dataclass
class RescorePreview:
    crm: str
    now: datetime
    model_version: str
    model_fingerprint: str
    contacts: int = 0
    unscored: int = 0  # live contacts without a stored score
    stored_versions: Counter[str] = field(default_factory=Counter)  # "version (fingerprint)"
    score_changes: int = 0
    grade_changes: int = 0
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    mql_before: int = 0
    mql_after: int = 0
    new_mqls: int = 0
    lost_mqls: int = 0
    stage_to_mql: int = 0
    write_ids: list[str] = field(default_factory=list)
    write_properties: Counter[str] = field(default_factory=Counter)  # property -> contacts
    delta_sum: float = 0.0
    delta_n: int = 0
    largest_up: ContactChange | None = None
    largest_down: ContactChange | None = None
    sample: list[ContactChange] = field(default_factory=list)
    after: dict[str, tuple[float, str, str | None]] = field(default_factory=dict)
    # accounts on: each account member's part (recorded by the contact preview, in any
    # process) and the accounts' preview computed from them in the parent
    members: dict[str, MemberPart] = field(default_factory=dict)
    accounts: AccountPreview | None = None
    # accounts on: the members an MQA would make MQL (its lower bar), whose verdict waits for
    # their account's new score (`_settle_at_accounts`, in the parent, after the accounts)
    waiting: list[Waiting] = field(default_factory=list)
    # accounts on: every other member's account id, the account values last written on it
    # and whether it is written anyway; its account values are compared in the parent too
    shown: dict[str, tuple[str, str, str, bool]] = field(default_factory=dict)
    # the model's named scores, each previewed like the lifecycle score (by name)
    named: dict[str, NamedPreview] = field(default_factory=dict)

    @property
    def to_write(self) -> int:
        return len(self.write_ids)

    @property
    def mean_delta(self) -> float:
        return self.delta_sum / self.delta_n if self.delta_n else 0.0

    def merge(self, other: RescorePreview, sample: int) -> None:
        """Add the preview of the next id range (`other`'s contacts all sort after ours)."""
        self.contacts += other.contacts
        self.unscored += other.unscored
        self.stored_versions.update(other.stored_versions)
        self.score_changes += other.score_changes
        self.grade_changes += other.grade_changes
        self.transitions.update(other.transitions)
        self.mql_before += other.mql_before
        self.mql_after += other.mql_after
        self.new_mqls += other.new_mqls
        self.lost_mqls += other.lost_mqls
        self.stage_to_mql += other.stage_to_mql
        self.write_ids.extend(other.write_ids)
        self.write_properties.update(other.write_properties)
        self.delta_sum += other.delta_sum
        self.delta_n += other.delta_n
        for attr, better in (("largest_up", 1), ("largest_down", -1)):
            mine, theirs = getattr(self, attr), getattr(other, attr)
            if theirs is not None and (mine is None or theirs.delta * better > mine.delta * better):
                setattr(self, attr, theirs)
        # best first; equal priorities keep contact order (the sort is stable)
        self.sample = sorted(self.sample + other.sample, key=_priority, reverse=True)[:sample]
        self.after.update(other.after)
        self.members.update(other.members)
        self.waiting.extend(other.waiting)
        self.shown.update(other.shown)
        for name, part in other.named.items():
            if name in self.named:
                self.named[name].merge(part)
            else:
                self.named[name] = part

    def headline(self) -> str:
        return (
            f"{self.contacts} contact(s): {self.score_changes} score change(s), "
            f"{self.grade_changes} grade change(s), MQL-qualified {self.mql_before} → "
            f"{self.mql_after} (+{self.new_mqls} / −{self.lost_mqls}), "
            f"{self.to_write} contact(s) to write"
        )


def _reason_key(r: Reason) -> tuple[str, str, float, str]:
    return (r.rule, r.kind, round(r.points, 2), r.text)


def reason_diff(
    before: tuple[Reason, ...], after: tuple[Reason, ...]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(removed, added) reasons, as rep-readable lines; event ids are ignored."""
    old = {_reason_key(r): r for r in before}
    new = {_reason_key(r): r for r in after}
    removed = tuple(reason_line(r) for k, r in old.items() if k not in new)
    added = tuple(reason_line(r) for k, r in new.items() if k not in old)
    return removed, added


def _priority(c: ContactChange) -> tuple[int, int, float]:
    return (int(c.mql_flip), int(c.grade_change), abs(c.delta))


EnricherFor = Callable[[StateStore], "Enricher | None"]


def preview_rescore(
    store: StateStore,
    crm: str,
    model: LoadedModel,
    enricher: Enricher | None,
    now: datetime,
    *,
    sample: int = 10,
    keep_after: bool = False,
    write_company_fields: bool = False,
    workers: int | None = 1,
    enricher_for: EnricherFor | None = None,
    progress: Callable[[int], None] | None = None,
    accounts: bool = True,
) -> RescorePreview:
    """Before → after for every live stored contact. Reads only; writes nothing anywhere.

    `sample`: how many contacts to keep in detail (MQL flips first, then grade changes, then
    the largest score changes). `keep_after`: keep every contact's (score, grade, mql_reason)
    after the rescore in `after` (tests compare it with what the real rescore stores).
    `write_company_fields`: count the blank company fields a sync fills too (the setting).
    `workers`: processes sharing the contacts by id range (None: every core; see
    `connector.ops.parallel`); with more than one, `enricher_for(store)` builds each
    process's enricher on its own connection (without it, one process runs). `progress(n)`:
    `n` more contacts previewed. `accounts`: account scoring is on (`LEADSCORE_ACCOUNTS`);
    off, the applied rescore scores no account, and neither does the preview."""
    accounts = accounts and _accounts_on(model)

    def job(st: StateStore, after: str, upto: str) -> RescorePreview:
        enr = enricher_for(st) if enricher_for is not None else enricher
        return _preview_range(
            st, crm, model, enr, now, sample, keep_after, write_company_fields, after, upto,
            accounts,
        )  # fmt: skip

    if enricher is not None and enricher_for is None:
        workers = 1
    parts = by_id_range(store, crm, job, workers, progress)
    out = parts[0]
    for part in parts[1:]:
        out.merge(part, sample)
    if accounts and (out.waiting or out.shown or store.count_account_scores(crm)):
        results: dict[str, AccountResult] = {}
        summary = preview_accounts(
            store, crm, model, out.members, now, sample=sample, results=results,
            enricher=enricher if enricher is not None or enricher_for is None
            else enricher_for(store),
        )  # fmt: skip
        if store.count_account_scores(crm):
            out.accounts = summary
        _settle_at_accounts(out, model, results, sample, keep_after, write_company_fields)
    return out


def _settle_at_accounts(
    out: RescorePreview,
    model: LoadedModel,
    accounts: dict[str, AccountResult],
    sample: int,
    keep_after: bool,
    write_company_fields: bool,
) -> None:
    """What the members' accounts' new scores decide, as the applied rescore does: the
    account values each member shows (`account_score`, `account_grade`, written diff-only:
    a member whose own values stay is written for them), and the verdict of the members
    waiting for it (MQL at an MQA, its lower bar: `AccountStage._mql`), counted like every
    contact then."""
    from connector.account_stage import _contact_values
    from connector.scoring.accounts import apply_account_mql, compile_accounts

    def diff(account_id: str, written: Mapping[str, str]) -> dict[str, str]:
        acc = accounts.get(account_id)
        if acc is None:  # not an account the rescore scores: its members are not touched
            return {}
        return {k: v for k, v in _contact_values(acc).items() if written.get(k, "") != v}

    ca = compile_accounts(model, model.target_accounts)
    blocked = frozenset(f.name for f in model.model.fit.force if f.block_mql)
    found: list[ContactChange] = []
    for w in out.waiting:
        result = w.result
        acc = accounts.get(w.account_id)
        if acc is not None:
            result = apply_account_mql(w.contact, result, acc, ca, model.model.lifecycle, blocked)
        values = {**w.extra, **diff(w.account_id, w.written)}
        change = _tally(out, w.contact, w.enrichment, w.stored, result, w.written,
                        write_company_fields, keep_after, values)  # fmt: skip
        if change is not None:
            found.append(change)
    out.waiting = []
    more: dict[str, list[str]] = {}
    for cid, (account_id, score, grade, writes) in out.shown.items():
        keys = sorted(diff(account_id, {"account_score": score, "account_grade": grade}))
        if keys:
            out.write_properties.update(keys)
            more[cid] = keys
            if not writes:
                out.write_ids.append(cid)
    out.shown = {}
    if more:
        out.write_ids.sort()  # contact order, as the ranges give them
        found = [replace(c, writes=tuple(sorted({*c.writes, *more.get(c.contact_id, ())})))
                 for c in found]  # fmt: skip
        out.sample = [
            replace(c, writes=tuple(sorted({*c.writes, *more[c.contact_id]})))
            if c.contact_id in more else c
            for c in out.sample
        ]  # fmt: skip
    # best first; equal priorities in contact order, as `merge` keeps them
    merged = sorted(out.sample + found, key=lambda c: c.contact_id)
    out.sample = sorted(merged, key=_priority, reverse=True)[:sample]


def _accounts_on(model: LoadedModel) -> bool:
    section = model.model.accounts
    return section is not None and section.enabled


def preview_accounts(
    store: StateStore,
    crm: str,
    model: LoadedModel,
    members: dict[str, MemberPart],
    now: datetime,
    *,
    sample: int = 10,
    results: dict[str, AccountResult] | None = None,
    enricher: Enricher | None = None,
) -> AccountPreview:
    """Every stored account scored again with `model` from its members' recomputed parts
    (`members`), compared with its stored score. Reads only. `results`: filled with every
    account's new result. `enricher`: its local providers fill the accounts' firmographics
    as the sync's enrichment does (`AccountStage._local`)."""

    from connector.account_stage import AccountStage
    from connector.state.accounts import live_account_members

    stage = AccountStage.detached(store, crm, model, enricher)
    out = AccountPreview()
    changes: list[AccountChange] = []
    members_of = live_account_members(store, crm)
    companies = store.get_crm_companies(
        crm, [a.partition(":")[2] for a in members_of if a.startswith("company:")]
    )
    stored_all = store.account_scores_many(crm, list(members_of))
    shown = store.get_account_written_many(crm, list(companies))  # on the company records
    for account_id, account, result in stage.score_parts(members_of, companies, members, now):
        if results is not None:
            results[account_id] = result
        record = companies.get(account_id.partition(":")[2]) if account.crm_id else None
        out.companies_to_write += _company_writes(stage, record, result, shown)
        stored = stored_all.get(account_id)
        out.accounts += 1
        before_grade = stored.grade if stored is not None else NO_GRADE
        out.transitions[(before_grade, result.grade)] += 1
        before_mqa = stored is not None and stored.mqa
        out.mqa_before += before_mqa
        out.mqa_after += result.mqa
        out.became_mqa += result.mqa and not before_mqa
        out.stopped_mqa += before_mqa and not result.mqa
        grade_changed = stored is not None and stored.grade != result.grade
        score_changed = stored is None or round(stored.score, 2) != round(result.score, 2)
        out.grade_changes += grade_changed
        out.score_changes += score_changed
        if score_changed or grade_changed or before_mqa != result.mqa:
            label = (stored.name or stored.domain) if stored is not None else None
            changes.append(
                AccountChange(
                    account_id,
                    label or account.company.name or account.company.domain or account_id,
                    stored.score if stored is not None else None,
                    stored.grade if stored is not None else None,
                    before_mqa,
                    result.score,
                    result.grade,
                    result.mqa,
                    result.mqa_reason,
                )
            )
    changes += _preview_dropped(store, crm, stage, set(members_of), out)
    changes.sort(
        key=lambda c: (int(c.mqa_flip), int(c.before_grade != c.after_grade), abs(c.delta)),
        reverse=True,
    )
    out.sample = changes[:sample]
    return out


def _company_writes(
    stage: AccountStage,
    record: CrmCompany | None,
    result: AccountResult | None,
    written: Mapping[str, Mapping[str, str]],
) -> bool:
    """Whether the applied rescore writes this company record (`result` None: its values
    cleared): a live record whose values differ from those last written, in a CRM whose
    company records we write (not Marketo's)."""
    from connector.account_stage import company_diff

    if record is None or record.archived or record.merged_into:
        return False
    if stage.crm not in WRITES_COMPANY_RECORDS:
        return False
    return bool(company_diff(stage.company_changes(result), written.get(record.id, {})))


def _preview_dropped(
    store: StateStore, crm: str, stage: AccountStage, live: set[str], out: AccountPreview
) -> list[AccountChange]:
    """The accounts the applied rescore drops (`AccountStage.rolled_up`: no live member left,
    every member moved away, archived or merged away): counted into `out` (their score goes,
    an MQA stops being one, their company record's values are cleared); their changes."""
    gone = [a for a in store.account_ids(crm) if a not in live]
    if not gone:
        return []
    stored_all = store.account_scores_many(crm, gone)
    records = store.get_crm_companies(
        crm, [a.partition(":")[2] for a in gone if a.startswith("company:")]
    )
    written = store.get_account_written_many(crm, list(records))
    changes: list[AccountChange] = []
    for account_id in gone:
        kind, _, key = account_id.partition(":")
        cleared = _company_writes(stage, records.get(key) if kind == "company" else None, None,
                                  written)  # fmt: skip
        out.companies_to_write += cleared
        out.companies_to_clear += cleared
        stored = stored_all.get(account_id)
        if stored is None:  # never scored: nothing shown goes
            continue
        out.accounts += 1
        out.dropped += 1
        out.transitions[(stored.grade, NO_SCORE)] += 1
        out.score_changes += 1
        out.mqa_before += stored.mqa
        out.stopped_mqa += stored.mqa
        changes.append(
            AccountChange(
                account_id, stored.name or stored.domain or account_id, stored.score,
                stored.grade, stored.mqa, 0.0, NO_SCORE, False, None, dropped=True,
            )
        )  # fmt: skip
    return changes


def _preview_range(
    store: StateStore,
    crm: str,
    model: LoadedModel,
    enricher: Enricher | None,
    now: datetime,
    sample: int,
    keep_after: bool,
    write_company_fields: bool,
    after: str,
    upto: str,
    accounts: bool = True,
) -> RescorePreview:
    out = RescorePreview(crm, now, model.version, model.fingerprint)
    heap: list[tuple[tuple[int, int, float], int, ContactChange]] = []
    seq = 0
    members = accounts and _accounts_on(model)
    waits = _waits_for_account(model) if members else None
    named = model.named
    out.named = {n.name: NamedPreview(n.name, n.threshold) for n in named}
    rescored = rescore_stored(
        store,
        crm,
        [model, *(n.loaded for n in named)],  # the events read once for every score
        enricher,
        now,
        after=after,
        upto=upto,
    )
    if members:
        rescored = with_hit_times([model], rescored)
    for chunk in _chunks(rescored, SCORE_BATCH):
        ids = [r.contact.id for r in chunk]
        stored_scores = store.get_scores_many(crm, ids)
        written_many = store.get_written_many(crm, ids)
        stored_named = {n.name: store.named_scores_many(crm, n.name, ids) for n in named}
        linked: dict[str, str] = {}
        if members:
            linked = _record_members(store, crm, chunk, out.members, model, now)
        for contact, enrichment, (result, *named_results) in chunk:
            stored = stored_scores.get(contact.id)
            extra: dict[str, str] = {}  # the named scores' values that change
            for n, r in zip(named, named_results, strict=True):
                extra.update(
                    _preview_named(
                        out.named[n.name],
                        n,
                        r,
                        stored_named[n.name].get(contact.id),
                        written_many[contact.id],
                    )
                )
            account_id = linked.get(contact.id)
            if account_id is not None and waits is not None and waits(result):
                # an MQA would make it MQL: decided once its account is scored again
                out.waiting.append(
                    Waiting(contact, enrichment, stored, result, written_many[contact.id],
                            account_id, extra)
                )  # fmt: skip
                continue
            written = written_many[contact.id]
            change = _tally(out, contact, enrichment, stored, result, written,
                            write_company_fields, keep_after, extra)  # fmt: skip
            if account_id is not None:  # its account values: once the account is scored
                writes = change is not None and bool(change.writes)
                out.shown[contact.id] = (account_id, written.get("account_score", ""),
                                         written.get("account_grade", ""), writes)  # fmt: skip
            if change is None or sample <= 0:
                continue
            seq += 1
            item = (_priority(change), -seq, change)  # ties: the earlier contact wins
            if len(heap) < sample:
                heapq.heappush(heap, item)
            elif item[:2] > heap[0][:2]:
                heapq.heapreplace(heap, item)
        tick(len(chunk))
    out.sample = [c for _, _, c in sorted(heap, key=lambda x: (x[0], x[1]), reverse=True)]
    return out


def _waits_for_account(model: LoadedModel) -> Callable[[ScoreResult], bool] | None:
    """With accounts on and an MQA bar for contacts: whether a contact's verdict depends on its
    account (`account_mql_candidate`); None when none does."""
    section = model.model.accounts
    if section is None or not section.enabled or section.mqa.contact_mql_threshold is None:
        return None
    from connector.scoring.accounts import account_mql_candidate, compile_accounts

    ca = compile_accounts(model, model.target_accounts)
    blocked = frozenset(f.name for f in model.model.fit.force if f.block_mql)
    return lambda result: account_mql_candidate(result, ca, blocked)


def _tally(
    out: RescorePreview,
    contact: Contact,
    enrichment: Enrichment | None,
    stored: StoredScore | None,
    result: ScoreResult,
    written: dict[str, str],
    write_company_fields: bool,
    keep_after: bool,
    account_values: Mapping[str, str] | None = None,
) -> ContactChange | None:
    """One contact's before → after counted into `out` (live contacts only, from
    `rescore_stored`: every one is writable); its change, or None when nothing shows.
    `account_values`: the account values its write carries too (those that differ)."""
    changes = write_changes(
        contact, result, written, enrichment, company_fields=write_company_fields
    )
    changes.update(account_values or {})
    change = _compare(out, contact, stored, result, changes)
    if keep_after:
        out.after[contact.id] = (result.score, result.grade, result.lifecycle.mql_reason)
    if change is None:
        return None
    for attr, better in (("largest_up", 1), ("largest_down", -1)):
        best = getattr(out, attr)
        if (
            change.before_score is not None
            and change.delta * better > 0
            and (best is None or change.delta * better > best.delta * better)
        ):
            setattr(out, attr, change)
    return change


def _preview_named(
    out: NamedPreview,
    named: NamedModel,
    result: ScoreResult,
    stored: StoredNamedScore | None,
    written: Mapping[str, str],
) -> dict[str, str]:
    """Count one contact's named score in `out`; returns its CRM values that change."""
    out.contacts += 1
    if stored is None:
        out.unscored += 1
    if stored is None or round(stored.score, 2) != round(result.score, 2):
        out.score_changes += 1
    out.qualified_before += stored is not None and stored.qualified
    out.qualified_after += is_qualified(named, result)
    diff = named_changes(named, result, written)
    out.to_write += bool(diff)
    return diff


def named_changes(
    named: NamedModel, result: ScoreResult, written: Mapping[str, str]
) -> dict[str, str]:
    """The values of one named score that differ from what the CRM was last written."""
    return {k: v for k, v in named_properties(named, result).items() if written.get(k, "") != v}


def preview_named(
    store: StateStore,
    crm: str,
    model: LoadedModel,
    name: str,
    enricher: Enricher | None,
    now: datetime,
) -> NamedPreview:
    """Before → after of one named score over every live stored contact (`rescore --score
    NAME --dry-run`). Reads only."""
    named = model.named_score(name)
    assert named is not None
    out = NamedPreview(name, named.threshold)
    for chunk in _chunks(rescore_stored(store, crm, [named.loaded], enricher, now), SCORE_BATCH):
        ids = [r.contact.id for r in chunk]
        stored = store.named_scores_many(crm, name, ids)
        written = store.get_written_many(crm, ids)
        for contact, _enrichment, (result,) in chunk:
            _preview_named(out, named, result, stored.get(contact.id), written[contact.id])
    return out


def _record_members(
    store: StateStore,
    crm: str,
    chunk: list[Rescored],
    into: dict[str, MemberPart],
    model: LoadedModel,
    now: datetime,
) -> dict[str, str]:
    """What account scoring reads of the chunk's account members, rescored (`model`'s results
    carry their events' times: `ops.common.with_hit_times`; no second read, nothing parsed
    again). Of a member's rule hits, only what `score_account` reads is kept: the latest one
    (breadth) and those of the rules the account rules count (`member_part`). Returns each
    member's account id."""
    ids = [r.contact.id for r in chunk]
    linked = store.account_ids_between(crm, min(ids), max(ids)) if ids else {}
    if not linked:
        return {}
    counted = counted_rules(model)
    now_ts = now.timestamp()
    mine: dict[str, str] = {}
    for r in chunk:
        account_id = linked.get(r.contact.id)
        if account_id is not None:
            mine[r.contact.id] = account_id
            res = r.results[0]
            into[res.contact_id] = member_part(res, counted, now_ts)
    return mine


def _chunks(items: Iterable[Rescored], size: int) -> Iterator[list[Rescored]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _compare(
    out: RescorePreview,
    contact: Contact,
    stored: StoredScore | None,
    result: ScoreResult,
    changes: dict[str, str],
) -> ContactChange | None:
    out.contacts += 1
    after_mql = result.lifecycle.mql_reason
    before_grade = stored.grade if stored is not None else NO_GRADE
    out.transitions[(before_grade, result.grade)] += 1
    if stored is None:
        out.unscored += 1
    else:
        out.stored_versions[f"{stored.model_version} ({stored.model_fingerprint})"] += 1
        out.delta_sum += result.score - stored.score
        out.delta_n += 1
    before_mql = stored.mql_reason if stored is not None else None
    out.mql_before += before_mql is not None
    out.mql_after += after_mql is not None
    out.new_mqls += before_mql is None and after_mql is not None
    out.lost_mqls += before_mql is not None and after_mql is None
    grade_changed = stored is not None and stored.grade != result.grade
    score_changed = stored is None or round(stored.score, 2) != round(result.score, 2)
    out.grade_changes += grade_changed
    out.score_changes += score_changed
    if changes:
        out.write_ids.append(contact.id)
        out.stage_to_mql += changes.get("lifecycle_stage") == MQL
        out.write_properties.update(changes.keys())
    removed, added = reason_diff(stored.reasons if stored is not None else (), result.reasons)
    visible = score_changed or grade_changed or removed or added or before_mql != after_mql
    if not (visible or changes):
        return None
    return ContactChange(
        contact_id=contact.id,
        label=contact.email or contact.id,
        before_score=stored.score if stored is not None else None,
        before_grade=stored.grade if stored is not None else None,
        before_mql=before_mql,
        before_version=stored.model_version if stored is not None else None,
        after_score=result.score,
        after_grade=result.grade,
        after_mql=after_mql,
        removed=removed,
        added=added,
        writes=tuple(sorted(changes)),
    )


@dataclass
class Applied:
    """The two runs of an applied rescore."""

    sync: SyncSummary  # pull what changed in the CRM first (scored with the new model)
    rescore: SyncSummary | None  # then every live contact; None when the sync stopped

    @property
    def written(self) -> int:
        """Contacts written by both runs."""
        return self.sync.written + (self.rescore.written if self.rescore is not None else 0)

    @property
    def companies_written(self) -> int:
        """Company records written by both runs (account scoring)."""
        later = self.rescore.companies_written if self.rescore is not None else 0
        return self.sync.companies_written + later

    @property
    def exit_code(self) -> int:
        codes = [self.sync.exit_code] + ([self.rescore.exit_code] if self.rescore else [])
        return next((c for c in codes if c), 0)


def recompute_range(
    store: StateStore,
    crm: str,
    model: LoadedModel,
    enricher: Enricher | None,
    now: datetime,
    after: str = "",
    upto: str = LAST_ID,
    *,
    write_company_fields: bool = False,
    with_named: bool = True,
    contact_ids: Sequence[str] | None = None,
) -> tuple[int, int]:
    """Score the live contacts with ids in `(after, upto]` (or of `contact_ids`) with `model`,
    save every score, and put those whose CRM values would change on the write backlog
    (committed with their scores, batch by batch: a stop loses nothing). No CRM call. Returns
    (scored, put on the backlog). `with_named`: the model's named scores too, from the same
    event rows (read once)."""
    scored = backlog = 0
    named = model.named if with_named else ()
    rescored = rescore_stored(
        store,
        crm,
        [model, *(n.loaded for n in named)],  # the events read once for every score
        enricher,
        now,
        batch=READ_BATCH,
        after=after,
        upto=upto,
        contact_ids=contact_ids,
    )
    for chunk in _chunks(rescored, SCORE_BATCH):
        backlog += _save_chunk(store, crm, chunk, named, write_company_fields)
        scored += len(chunk)
    return scored, backlog


def _save_chunk(
    store: StateStore,
    crm: str,
    chunk: list[Rescored],
    named: Sequence[NamedModel],
    write_company_fields: bool,
    accounts: tuple[list[AccountScoreRow], list[str]] | None = None,
) -> int:
    """Save a chunk's scores (and named scores), put those whose CRM values would change on
    the write backlog, and save `accounts` (their rows, and their ids kept due until their
    values are written) in the same transaction. Returns how many went on the backlog."""
    written = store.get_written_many(crm, [r.contact.id for r in chunk])
    changed: list[str] = []
    named_rows: list[tuple[str, ScoreResult, bool]] = []
    for contact, enrichment, (result, *named_results) in chunk:
        before = written[contact.id]
        write = needs_write(contact, result, before) or (
            write_company_fields and company_changes(contact, enrichment, before)
        )
        for n, r in zip(named, named_results, strict=True):
            named_rows.append((n.name, r, is_qualified(n, r)))
            write = write or bool(named_changes(n, r, before))
        if write:
            changed.append(contact.id)
    with store.transaction():
        store.save_scores(crm, (r.results[0] for r in chunk))
        store.save_named_scores(crm, named_rows)
        store.set_write_pending(crm, changed, True)
        if accounts is not None:
            rows, account_ids = accounts
            store.save_account_score_rows(rows)
            # kept in the backlog until `AccountStage.finish` has written their members and
            # company records: a run stopped in between writes them next pass
            store.add_accounts_due(crm, account_ids, "scored, values to write")
    tick(len(chunk))
    return len(changed)


def recompute_all(
    store: StateStore,
    crm: str,
    model: LoadedModel,
    now: datetime,
    *,
    enricher_for: EnricherFor | None = None,
    workers: int | None = None,
    write_company_fields: bool = False,
    progress: Callable[[int], None] | None = None,
    with_named: bool = True,
    accounts: AccountStage | None = None,
) -> tuple[int, int]:
    """`recompute_range` over every live contact, by id range in `workers` processes
    (`connector.ops.parallel`), each with the enricher `enricher_for(its store)` builds.
    Every score row is rewritten: the due-time index is rebuilt once at the end instead of
    updated row by row (`StateStore.bulk_scoring`). `progress(n)`: `n` more contacts saved.
    `accounts`: with accounts on, every account is scored with its members in the same pass
    (`_with_accounts`)."""
    if accounts is not None:
        return _with_accounts(
            store, crm, model, now, accounts, enricher_for, workers, write_company_fields,
            progress, with_named,
        )  # fmt: skip

    def job(st: StateStore, after: str, upto: str) -> tuple[int, int]:
        enricher = enricher_for(st) if enricher_for is not None else None
        return recompute_range(
            st,
            crm,
            model,
            enricher,
            now,
            after,
            upto,
            write_company_fields=write_company_fields,
            with_named=with_named,
        )

    with store.bulk_scoring():
        parts = by_id_range(store, crm, job, workers, progress)
    return sum(p[0] for p in parts), sum(p[1] for p in parts)


def _with_accounts(
    store: StateStore,
    crm: str,
    model: LoadedModel,
    now: datetime,
    stage: AccountStage,
    enricher_for: EnricherFor | None,
    workers: int | None,
    write_company_fields: bool,
    progress: Callable[[int], None] | None,
    with_named: bool,
) -> tuple[int, int]:
    """`recompute_all` with accounts on (`stage`): every account is scored with its members, in the
    same pass, from the results just computed. The accounts are cut into id ranges of about
    equal numbers of members (`StateStore.split_accounts`; an account is never cut), and each
    range reads its accounts' members in batches of whole accounts (20 contacts a read:
    `READ_BATCH`), scores them, scores the batch's accounts from their members' parts
    (`scoring.accounts.member_part`: the points, grade and rule hits with the events' times
    the scorer kept), and saves the contacts' scores, the backlog and the accounts' rows in
    one transaction. The contacts with no account are scored by contact-id range beside
    them. Each piece runs in its own process (`workers`, as `recompute_all`); nothing travels
    back but counts and the ids of the accounts scored and of those left with no live
    member. Then `stage.rolled_up`: the accounts left with no live member lose
    their score, and the pass's `finish` writes the scored ones (their results read back
    from the state DB). Returns (contacts scored, put on the backlog)."""
    n = plan_workers(store, crm, workers)
    account_ranges = store.split_accounts(crm, n)
    pieces = [(True, *r) for r in account_ranges] + [
        (False, *r) for r in store.split_live_ids(crm, n)
    ]
    ca, known = stage.ca, stage.known

    def job(st: StateStore, i: int) -> tuple[int, int, list[str], list[str]]:
        with_accounts, after, upto = pieces[i]
        enricher = enricher_for(st) if enricher_for is not None else None
        if not with_accounts:
            alone = st.contact_ids_without_account(crm, after, upto)
            scored, backlog = recompute_range(
                st,
                crm,
                model,
                enricher,
                now,
                write_company_fields=write_company_fields,
                with_named=with_named,
                contact_ids=alone,
            )
            return scored, backlog, [], []
        mine = stage
        if st is not store:  # a process's own connection: the caller's compiled section
            mine = stage.detached(st, crm, model, enricher)  # and the firmographics learned
            mine._compiled, mine.known = ca, known
        return _recompute_accounts(
            st, crm, model, enricher, now, after, upto, mine,
            write_company_fields=write_company_fields, with_named=with_named,
        )  # fmt: skip

    with store.bulk_scoring(accounts=True):
        got = by_piece(store, job, len(pieces), n, progress)
    stage.rolled_up([a for g in got for a in g[3]], [a for g in got for a in g[2]])
    return sum(g[0] for g in got), sum(g[1] for g in got)


def _recompute_accounts(
    store: StateStore,
    crm: str,
    model: LoadedModel,
    enricher: Enricher | None,
    now: datetime,
    after: str,
    upto: str,
    stage: AccountStage,
    *,
    write_company_fields: bool,
    with_named: bool,
) -> tuple[int, int, list[str], list[str]]:
    """`recompute_all(accounts=...)`'s work on the accounts with ids in `(after, upto]`: (contacts
    scored, put on the backlog, the accounts scored: those with a live member, the accounts
    left with none: those of the range with a score or a member, all archived or merged)."""
    named = model.named if with_named else ()
    models = [model, *(n.loaded for n in named)]
    counted = counted_rules(model)
    now_ts = now.timestamp()
    titles = model.titles
    seniority: dict[str | None, str] = {}  # job titles repeat: classified once each

    def classify(title: str | None) -> str:
        return titles.classify(title).seniority

    scored = backlog = 0
    done: list[str] = []
    with keeping_hit_times(model):
        for links in store.account_member_batches(crm, after, upto, SCORE_BATCH):
            ids = [cid for _, cid in links]
            chunk: list[Rescored] = []  # archived and merged-away: not read
            scored_now = rescore_stored(
                store, crm, models, enricher, now, contact_ids=ids, batch=READ_BATCH
            )
            members = collect_members(
                scored_now, links, counted, now_ts, seniority, classify, chunk
            )
            rows = stage.rows_for(members, now)
            backlog += _save_chunk(
                store, crm, chunk, named, write_company_fields, (rows, list(members))
            )
            scored += len(chunk)
            done.extend(members)
    scored_ids = set(done)
    gone = [a for a in store.account_ids(crm, after, upto) if a not in scored_ids]
    return scored, backlog, done, gone


def apply_rescore(
    pipeline: Pipeline,
    model: LoadedModel,
    *,
    workers: int | None = 1,
    enricher_for: EnricherFor | None = None,
    progress: Callable[[int], None] | None = None,
    score: str | None = None,
) -> Applied:
    """Rescore every live contact with `model` and write back only what changed.

    `score`: only that score (`rescore --score NAME`): the lifecycle score's name recomputes
    and writes the lifecycle score alone (no named score), a named score's name that score
    alone (its four properties, nothing else); None: every score.

    First a normal sync (so the stages and properties we score against are the CRM's current
    ones: a rescore never writes over what sales changed since the last sync), then one run of
    kind `rescore` over everybody: every score is recomputed and saved locally (in `workers`
    processes by id range; `enricher_for(store)` builds each one's enricher, and without it
    a pipeline with an enricher rescores in one process), the contacts whose CRM values
    change go on the write backlog, and the pipeline scores and writes those. Scores remember
    their model version; nothing is written twice. The pipeline keeps `model` afterwards.
    `progress(n)`: `n` more contacts recomputed and saved.

    Once the sync went through, `model` becomes the model in force (the state DB's active
    model, `connector.active_model`), before any score is recomputed: every later sync, and a
    running worker from its next pass, score with it (a dry-run pipeline records nothing)."""
    pipeline.model = model
    first = pipeline.sync()
    if first.status in ("quota", "auth", "stopped", "error"):
        return Applied(first, None)
    if pipeline.enricher is not None and enricher_for is None:
        workers = 1

        def enricher_for(_store: StateStore) -> Enricher | None:
            return pipeline.enricher

    named = model.named_score(score) if score is not None else None
    if named is not None:
        return Applied(
            first, pipeline.run_pass("rescore", partial(_apply_named, pipeline, named, progress))
        )
    lifecycle_only = score is not None  # the lifecycle score's name: no named score

    def body(summary: SyncSummary) -> None:
        if not pipeline.options.dry_run:
            activate(pipeline.store, pipeline.crm, model, now=pipeline.clock())
        if lifecycle_only:
            pipeline.named.only = frozenset()
        try:
            _recompute_and_write(summary)
        finally:
            pipeline.named.only = None

    def _recompute_and_write(summary: SyncSummary) -> None:
        stage = pipeline.accounts
        accounts = stage if stage is not None and stage.enabled() else None
        if accounts is not None:
            # every account is scored again with its members, from their new scores, before
            # the writes (their MQL at an MQA reads the new account scores)
            from connector.account_stage import PassState

            accounts.state, accounts.contact_props = PassState(), {}

        def recomputed(n: int) -> None:  # the run's heartbeat as the contacts are saved
            pipeline.beat()
            if progress is not None:
                progress(n)

        scored, queued = recompute_all(
            pipeline.store,
            pipeline.crm,
            model,
            pipeline.clock(),
            enricher_for=enricher_for,
            workers=workers,
            write_company_fields=pipeline.options.write_company_fields,
            progress=recomputed,
            with_named=not lifecycle_only,
            accounts=accounts,
        )
        pipeline.score_and_write(pipeline.store.pending_write_ids(pipeline.crm), summary)
        if stage is not None and stage.enabled():
            stage.finish(pipeline.clock(), summary)
        summary.scored = scored  # each contact once (those written were scored twice)
        # those the recompute left off the backlog: their CRM values stay as they are (the
        # backlog's are counted unchanged or written by the pass above)
        summary.unchanged += max(0, scored - queued)

    return Applied(first, pipeline.run_pass("rescore", body))


def _apply_named(
    pipeline: Pipeline,
    named: NamedModel,
    progress: Callable[[int], None] | None,
    summary: SyncSummary,
) -> None:
    """`rescore --score NAME` of a named score: recompute it for every live contact from the
    stored events, save it, and write the contacts whose values of it differ from what the
    CRM was last written: those four properties only, diff-only, through the sync's write
    path (batches, per-record outcomes, dead letters). The model becomes the model in force."""
    store, crm = pipeline.store, pipeline.crm
    now = pipeline.clock()
    if not pipeline.options.dry_run:
        activate(store, crm, pipeline.model, now=now)
    writes: list[WriteBack] = []
    meta: dict[str, ScoreResult] = {}
    rescored = rescore_stored(store, crm, [named.loaded], pipeline.enricher, now)
    for chunk in _chunks(rescored, SCORE_BATCH):
        written = store.get_written_many(crm, [r.contact.id for r in chunk])
        rows: list[tuple[str, ScoreResult, bool]] = []
        for contact, _enrichment, (result,) in chunk:
            rows.append((named.name, result, is_qualified(named, result)))
            changes = named_changes(named, result, written[contact.id])
            if changes:
                writes.append(WriteBack(contact.id, changes))
                meta[contact.id] = result
        store.save_named_scores(crm, rows)
        summary.scored += len(chunk)
        pipeline.beat()
        if progress is not None:
            progress(len(chunk))
    summary.to_write += len(writes)
    summary.unchanged += summary.scored - len(writes)
    if pipeline.options.dry_run:
        summary.changes.extend((w.contact_id, dict(w.properties)) for w in writes)
        return
    pipeline.write_planned(writes, meta, summary)
