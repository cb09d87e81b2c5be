"""The account stage of a sync (issue 21): companies and associations in, account scores and
company writes out. Called by the pipeline at three points of a pass:

- `pull(summary)`, after contacts and events are pulled: changed companies (keyset-paged since
  the `companies` cursor) are stored; an account whose firmographics changed is queued in the
  persisted backlog `accounts_due`; the contacts of an archived or merged company are marked to
  score, so their account is resolved again;
- `on_chunk(pairs, results, now)`, for every chunk of scored contacts, before its writes are
  planned: their companies are read (associations v4), their account keys resolved and
  stored, and only the accounts they belong to (and those they left) are scored, from the
  members' stored scores and this chunk's fresh ones: those a member's part in changed, and
  those due anyway (the backlog: firmographics changed; a breadth window closing; another
  model), so the members' writes carry the new values; members at an MQA get the lower MQL bar
  (`apply_account_mql`); each contact's `account_score`/`account_grade` join its write
  (diff-only, like the other properties) through `contact_props`;
- `finish(now, summary)`: the backlog (firmographics, breadth windows closing) no chunk
  scored is scored; members of accounts scored this pass that were not in a chunk (or were
  planned before a later chunk scored their account again) get their account values and
  MQL through the same write path; company records are written diff-only, batched, with a
  per-record outcome (a 404 marks the company archived; retryable errors are retried, then
  dead-lettered).

The work is linear in the members of the accounts touched: an account of 5,000 contacts costs
one read of its members, their scores and their events' times, and one pass of `score_account`.
An account none of whose members changed is not scored at all.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from connector.crm.base import COMPANY_PROPERTIES, CompanyLinks, CompanyPage, CrmCompany
from connector.enrich.cache import CacheEntry
from connector.errors import RetryableError
from connector.scoring.accounts import (
    CompiledAccounts,
    apply_account_mql,
    compile_accounts,
    member_hits,
    member_name,
    score_account,
)
from connector.state.accounts import (
    MEMBER_DELETED_AT_WRITE,
    AccountScoreRow,
    ContactAccount,
    StoredAccountScore,
    account_score_row,
    company_account_id,
    domain_account_id,
    name_account_id,
)
from connector.state.store import StoredScore
from connector.text import industry_words
from connector.types import (
    Account,
    AccountMember,
    AccountResult,
    Company,
    Contact,
    Enrichment,
    ScoreResult,
    WriteBack,
    WriteOutcome,
    crm_score,
)

if TYPE_CHECKING:
    from connector.model.loader import LoadedModel
    from connector.pipeline import Enricher, Pipeline, SyncSummary

log = logging.getLogger(__name__)

ROLLED_READ = 5_000  # account results a read brings back after a full rescore

COMPANY_WRITE = "company-write"  # company writes in flight (`StateStore.set_in_flight(of=...)`)


@dataclass
class PassState:
    """What one pass learned: accounts scored (with their result), contacts handled in a
    chunk (their writes carry the account values already, those of the result kept)."""

    scored: dict[str, AccountResult] = field(default_factory=dict)
    # contacts handled in a chunk -> the account result their write carried (None: none)
    in_chunk: dict[str, AccountResult | None] = field(default_factory=dict)
    accounts_scored: int = 0  # score_account calls (tests count them)
    # the accounts scored, each once: an account whose members fall in two chunks is scored
    # in each, and counts once in the run's summary and the worker's metric
    distinct: set[str] = field(default_factory=set)
    # accounts left with no live member (everyone moved away, archived or merged away): no
    # score any more; their company record's values are cleared (`_write_companies`)
    emptied: set[str] = field(default_factory=set)
    unwritten: set[str] = field(default_factory=set)  # company writes that failed
    # accounts a full rescore scored and saved, their results not read back yet
    rolled: list[str] = field(default_factory=list)


class AccountStage:
    def __init__(self, pipeline: Pipeline) -> None:
        self.p = pipeline
        self._compiled: CompiledAccounts | None = None
        self.contact_props: dict[str, dict[str, str]] = {}
        self.state = PassState()
        # firmographics by registrable domain, from the enrichment of this pass's contacts
        self.known: dict[str, Company] = {}
        self._local_seen: dict[str, Company | None] = {}  # the local providers' answers

    @classmethod
    def detached(
        cls, store: Any, crm: str, model: LoadedModel, enricher: Enricher | None = None
    ) -> AccountStage:
        """A stage outside any pipeline (the rescore's preview, simulate, calibrate, a
        full rescore's process): `store`, `crm` and `model` are all it reads, and `enricher`'s
        local providers fill the accounts' firmographics (`_local`)."""
        from types import SimpleNamespace

        return cls(cast(Any, SimpleNamespace(store=store, crm=crm, model=model, enricher=enricher)))

    # -- helpers ---------------------------------------------------------------------------
    @property
    def store(self) -> Any:
        return self.p.store

    @property
    def crm(self) -> str:
        return self.p.crm

    @property
    def ca(self) -> CompiledAccounts:
        loaded = self.p.model
        if self._compiled is None or self._compiled.loaded.fingerprint != loaded.fingerprint:
            self._compiled = compile_accounts(loaded, loaded.target_accounts)
        return self._compiled

    def enabled(self) -> bool:
        section = self.p.model.model.accounts
        return section is not None and section.enabled

    def _capable(self, name: str) -> bool:
        return callable(getattr(self.p.adapter, name, None))

    # -- 1. companies ------------------------------------------------------------------------
    def pull(self, summary: SyncSummary) -> None:
        """Pull changed companies since the cursor; queue the accounts they change."""
        self.reset()
        if not self.can_pull():
            return
        cur = self.p._cursor("companies")
        run_start = self.p.clock()
        from connector.pipeline import _dt, _iso

        if cur.get("position") is not None:
            since = _dt(cur.get("since"))
            next_since = _dt(cur.get("next_since")) or run_start
        else:
            prev = _dt(cur.get("since"))
            since = prev - self.p.options.lookback if prev is not None else None
            next_since = run_start
        import json

        for page in self.company_pages(since, cur.get("position")):
            with self.store.transaction():
                self.save_company_page(page, summary)
                self.store.set_cursor(
                    self.crm,
                    "companies",
                    json.dumps(
                        {
                            "since": _iso(since) if since else None,
                            "position": page.position,
                            "next_since": _iso(next_since),
                        }
                    ),
                )
            self.p._checkpoint("page")
        with self.store.transaction():
            self.store.set_cursor(
                self.crm, "companies", json.dumps({"since": _iso(next_since), "position": None})
            )

    def reset(self) -> None:
        """A new pass: nothing scored or planned yet (`pull` starts a sync's with it)."""
        self.state = PassState()
        self.contact_props = {}

    @contextmanager
    def scoring_pass(self, summary: SyncSummary) -> Iterator[None]:
        """Around the scoring of a pass that pulls no company (the worker's `rescore_due`
        and `refresh_contacts`, a backfill's score stage), as a sync drives the stage: a new
        pass state first, `finish` after the last chunk (the accounts due, the members of the
        accounts scored that no chunk wrote, the company records), so a contact rescored
        there rolls its account up and its values are written as a sync writes them. A pass
        run inside another (a webhook refresh between two pages of a sync) gives the outer
        pass its state back; a pass of its own leaves its state to be read, as a sync does.
        A pass stopped inside (a shutdown) skips `finish`: its accounts stay due."""
        outer = self.state, self.contact_props
        nested = getattr(self.p, "passes_running", 1) > 1
        self.reset()
        try:
            yield
            self.finish(self.p.clock(), summary)
        finally:
            if nested:
                self.state, self.contact_props = outer

    def can_pull(self) -> bool:
        """Account scoring is on and the CRM offers company records to pull."""
        return self.enabled() and self._capable("pull_companies")

    def company_pages(self, since: datetime | None, position: str | None) -> Iterator[CompanyPage]:
        """The CRM's companies changed since `since`, paged from `position` (a sync passes its
        cursor's, a backfill its window's start and its job's position)."""
        pull = self.p.adapter.pull_companies  # type: ignore[attr-defined]
        return cast(Iterator[CompanyPage], pull(since, position))

    def save_company_page(self, page: CompanyPage, summary: SyncSummary) -> None:
        """Store one pulled page (`save_companies`; its bad records dead-lettered). Call it in
        the transaction that saves the position after the page."""
        self.save_companies(page.companies, summary)
        summary.bad_records += self.p.puller.dead_letter_bad(page.bad, self.p.clock())

    def save_companies(self, companies: Sequence[CrmCompany], summary: SyncSummary) -> None:
        """Store company records; queue their accounts when their facts changed; contacts of
        an archived or merged company are marked to score (their account is resolved again)."""
        now = self.p.clock()
        changed = self.store.upsert_crm_companies(self.crm, companies, now)
        if not changed:
            return
        gone = [c.id for c in companies if c.id in changed and (c.archived or c.merged_into)]
        live = [c for c in changed if c not in set(gone)]
        self.store.add_accounts_due(
            self.crm, self.store.account_ids_with_company(self.crm, live), "company changed"
        )
        if gone:
            moved = self.store.contacts_with_company(self.crm, gone)
            self.store.set_write_pending(self.crm, moved, True)
            self.store.add_accounts_due(
                self.crm, [company_account_id(g) for g in gone], "company archived or merged"
            )

    # -- 2. keys ---------------------------------------------------------------------------
    def resolve(
        self,
        contacts: Sequence[Contact],
        enrichments: Mapping[str, Enrichment],
        links: Mapping[str, CompanyLinks],
    ) -> dict[str, tuple[str, str, tuple[str, ...]] | None]:
        """Each contact's (account id, source, company ids), or None: no account. The model's
        `accounts.key` order; the first that applies wins."""
        section = self.p.model.model.accounts
        keys = list(section.key) if section is not None else []
        wanted = {cid for ln in links.values() for cid in ln.company_ids}
        wanted |= {
            str(c.properties.get("externalCompanyId"))
            for c in contacts
            if c.properties.get("externalCompanyId")
        }
        companies: dict[str, CrmCompany] = self.store.get_crm_companies(self.crm, wanted)
        marketo = self.p.adapter.name == "marketo"
        # a Marketo record stored before its own number was kept (the property `id`, which
        # `explain --account` finds it by) is read once more
        missing = [
            c
            for c in wanted
            if c not in companies
            or (marketo and not companies[c].archived and not (companies[c].properties or {}))
        ]
        if missing and self._capable("get_companies"):
            fetched = self.p.adapter.get_companies(missing)  # type: ignore[attr-defined]
            self.store.upsert_crm_companies(self.crm, fetched, self.p.clock())
            companies.update({c.id: c for c in fetched})
        # Marketo: the lead's company record where the instance offers it, else its company
        # field (HubSpot contacts have no company record key: primary company, else domain)
        company_records = self._capable("get_companies") and bool(
            getattr(self.p.adapter, "companies_available", True)
        )
        out: dict[str, tuple[str, str, tuple[str, ...]] | None] = {}
        for c in contacts:
            ln = links.get(c.id)
            ids = ln.company_ids if ln is not None else ()
            found: tuple[str, str, tuple[str, ...]] | None = None
            for key in keys:
                if key == "primary_company" and ln is not None:
                    company = self._live_company(ln, companies)
                    if company is not None:
                        found = (company_account_id(company), key, ids)
                elif key == "company_record" and marketo:
                    ext = c.properties.get("externalCompanyId")
                    if ext and company_records:
                        company = self._follow(str(ext), companies)
                        if company is not None:
                            found = (company_account_id(company), key, (str(ext),))
                    if found is None and c.company_name and c.company_name.strip():
                        found = (name_account_id(c.company_name), "company_field", ids)
                elif key == "company_field" and c.company_name and c.company_name.strip():
                    found = (name_account_id(c.company_name), key, ids)
                elif key == "email_domain":
                    e = enrichments.get((c.email or "").lower())
                    if e is not None and e.email_kind == "corporate" and e.domain:
                        found = (domain_account_id(e.domain), key, ids)
                if found is not None:
                    break
            out[c.id] = found
        return out

    def _follow(self, company_id: str, companies: Mapping[str, CrmCompany]) -> str | None:
        """The live company an id stands for: a merged company's survivor (followed a few
        hops), None when archived (or unknown to the CRM)."""
        seen = 0
        cid: str | None = company_id
        while cid is not None and seen < 5:
            c = companies.get(cid)
            if c is None:
                c = self.store.get_crm_companies(self.crm, [cid]).get(cid)
            if c is None or c.archived:
                return None
            if c.merged_into is None:
                return cid
            cid = c.merged_into
            seen += 1
        return None

    def _live_company(self, ln: CompanyLinks, companies: Mapping[str, CrmCompany]) -> str | None:
        """The primary company if live; else the first live one by id (several companies,
        none primary, or the primary archived)."""
        others = sorted((i for i in ln.company_ids if i != ln.primary), key=_id_sort)
        order = ([ln.primary] if ln.primary else []) + others
        for cid in order:
            live = self._follow(cid, companies)
            if live is not None:
                return live
        return None

    # -- 3. a chunk of scored contacts ------------------------------------------------------
    def on_chunk(
        self,
        pairs: Sequence[tuple[Contact, Any]],
        results: list[ScoreResult],
        enrichments: Mapping[str, Enrichment],
        now: datetime,
    ) -> list[ScoreResult]:
        """Resolve, score the accounts these contacts touch, apply the MQA bar; returns the
        results (MQL at an MQA) and fills `contact_props` for their writes."""
        if not self.enabled() or not pairs:
            return results
        # the previous chunk's writes are planned already: keep only this chunk's values
        self.contact_props = {}
        contacts = [c for c, _ in pairs]
        ids = [c.id for c in contacts]
        self.learn(enrichments.values())
        links: dict[str, CompanyLinks] = {}
        if self._capable("company_links"):
            links = self.p.adapter.company_links(ids)  # type: ignore[attr-defined]
        resolved = self.resolve(contacts, enrichments, links)

        with self.store.transaction():
            moved = self.store.set_contact_accounts(
                self.crm,
                [ContactAccount(cid, r[0], r[1], r[2]) for cid, r in resolved.items() if r],
                now,
            )
            left = self.store.clear_contact_accounts(
                self.crm, [cid for cid, r in resolved.items() if r is None]
            )
        # an account is scored again only when a member's part in it changed (points, grade,
        # the events behind them, the model) or someone joined or left: a contact pulled
        # again because our own write bumped it changes nothing
        before = self.store.get_scores_many(self.crm, ids)
        fresh = {r.contact_id: r for r in results}
        changed = {cid for cid in ids if _member_part(fresh[cid]) != _stored_part(before.get(cid))}
        dirty: set[str] = {r[0] for cid, r in resolved.items() if r and cid in changed}
        dirty |= {r[0] for cid, r in resolved.items() if r and cid in moved}
        dirty |= {old for old in moved.values() if old}
        dirty |= set(left.values())
        # the other accounts of the chunk: one this pass scored already keeps its result; one
        # due for a reason of its own (its firmographics changed, its breadth window closed,
        # another model, never scored, values left to write) is scored now, before its
        # members' writes are planned: `finish` would score it after them, and they would
        # carry the account's old values (`_write_members` skips the contacts of a chunk)
        self._adopt_rolled()
        accounts = {r[0] for r in resolved.values() if r}
        earlier = {a: self.state.scored[a] for a in accounts - dirty if a in self.state.scored}
        rest = accounts - dirty - earlier.keys()
        known = self.store.account_scores_many(self.crm, rest) if rest else {}
        dirty |= self._due_among(rest, known, now)
        scored = self.score_accounts(sorted(dirty), now, fresh)
        scored.update(earlier)
        scored.update({a: _as_result(known[a]) for a in rest if a not in scored and a in known})
        out: list[ScoreResult] = []
        for contact, result in zip(contacts, results, strict=True):
            r = resolved.get(contact.id)
            acc = scored.get(r[0]) if r else None
            if acc is not None:
                result = self._mql(contact, result, acc)
            self.contact_props[contact.id] = _contact_values(acc)
            self.state.in_chunk[contact.id] = acc
            out.append(result)
        return out

    def _due_among(
        self, account_ids: set[str], known: Mapping[str, StoredAccountScore], now: datetime
    ) -> set[str]:
        """Those of `account_ids` that `finish` would score this pass: in the backlog, never
        scored, their score changing by `now`, or scored by another model."""
        if not account_ids:
            return set()
        due: set[str] = self.store.accounts_due_among(self.crm, account_ids)
        fingerprint = self.p.model.fingerprint
        for a in account_ids - due:
            k = known.get(a)
            if (
                k is None
                or k.model_fingerprint != fingerprint
                or (k.next_change_at is not None and k.next_change_at <= now)
            ):
                due.add(a)
        return due

    def _mql(self, contact: Contact, result: ScoreResult, acc: AccountResult) -> ScoreResult:
        model = self.p.model.model
        blocked = frozenset(f.name for f in model.fit.force if f.block_mql)
        return apply_account_mql(contact, result, acc, self.ca, model.lifecycle, blocked)

    # -- 4. scoring --------------------------------------------------------------------------
    def score_accounts(
        self,
        account_ids: Iterable[str],
        now: datetime,
        fresh: Mapping[str, ScoreResult] | None = None,
    ) -> dict[str, AccountResult]:
        """Score these accounts from their members (stored scores, `fresh` ones first) and save
        them. An account left with no member loses its score."""
        out: dict[str, AccountResult] = {}
        fresh = fresh or {}
        done: list[str] = []
        for account_id in account_ids:
            done.append(account_id)
            member_ids = self.store.account_member_ids(self.crm, account_id)
            if not member_ids:
                self.drop(account_id)
                continue
            contacts = list(self.store.iter_contacts(self.crm, list(member_ids)))
            account, company_id, result = self.score_of(account_id, contacts, fresh, now)
            self.state.accounts_scored += 1
            self.state.distinct.add(account_id)
            self.store.save_account_score(
                self.crm,
                result,
                company_id=company_id,
                domain=account.company.domain or None,
                name=account.company.name,
            )
            out[account_id] = result
            self.state.scored[account_id] = result
        # kept in the backlog until `finish` has written their members and company record:
        # a run stopped in between writes them next pass
        self.store.add_accounts_due(
            self.crm, list(out), "scored, values to write", replace_reason=True
        )
        self.store.clear_accounts_due(
            self.crm, [a for a in done if a not in out and a not in self.state.emptied]
        )
        return out

    def score_of(
        self,
        account_id: str,
        contacts: Sequence[Contact],
        fresh: Mapping[str, ScoreResult],
        now: datetime,
    ) -> tuple[Account, str | None, AccountResult]:
        """The account, its company id and its score from its member `contacts` (their
        stored scores, `fresh` ones first); saves nothing (`score_accounts` saves it;
        `explain --model` scores an account under another model with it)."""
        account, company_id = self._account(account_id, contacts)
        return (
            account,
            company_id,
            score_account(self.ca, account, self._members(contacts, fresh), now),
        )

    def drop(self, account_id: str) -> None:
        """An account left with no live member loses its score; its company record's values
        are cleared at the end of the pass, and it stays in the backlog until they are."""
        self.store.delete_account_score(self.crm, account_id)
        self.state.emptied.add(account_id)
        self.store.add_accounts_due(self.crm, [account_id], "no member left, values to clear")

    def rows_for(
        self, members: Mapping[str, Sequence[AccountMember]], now: datetime
    ) -> list[AccountScoreRow]:
        """The rows to save of `members`' accounts (account id -> its live members,
        `scoring.accounts.collect_members`), each scored from its members, their company
        records read at once: a full rescore's batch of whole accounts
        (`ops.rescore.recompute_all(accounts=...)`), which saves them with their members'
        scores. Saves nothing."""
        companies = self.store.get_crm_companies(
            self.crm, [a.partition(":")[2] for a in members if a.startswith("company:")]
        )
        return [
            account_score_row(
                self.crm,
                result,
                company_id=account.crm_id,
                domain=account.company.domain or None,
                name=account.company.name,
            )
            for _, account, result in self.score_members(members, companies, now)
        ]

    def rolled_up(self, gone: Sequence[str], scored: Sequence[str]) -> None:
        """A full rescore scored and saved `scored` with their members
        (`ops.rescore.recompute_all(accounts=...)`) and found `gone` (accounts with a score or
        a member, none of them live) left: those lose their score; `finish` writes the scored
        ones, their results read back from the state DB when it needs them (nothing travels
        back from the rescore's processes but the two lists of ids)."""
        self.state.accounts_scored += len(set(scored))
        self.state.distinct.update(scored)
        self.state.rolled.extend(scored)
        with self.store.transaction():
            for account_id in gone:  # everyone left: no score
                self.drop(account_id)

    def _adopt_rolled(self) -> None:
        """The results of the accounts a full rescore saved (`rolled_up`), read back in one
        pass into `state.scored` (an account scored again since keeps that result).

        With the cyclic garbage collector paused: the results are records, tuples and
        strings (no reference cycles: reference counting frees them), ~12 objects an
        account, all kept, and each collection would walk the ones kept so far (100,000
        accounts: 5.5 s of CPU with it, 2.7 s without)."""
        ids = [a for a in self.state.rolled if a not in self.state.scored]
        self.state.rolled = []
        collecting = gc.isenabled()
        gc.disable()
        try:
            for k in range(0, len(ids), ROLLED_READ):
                chunk = ids[k : k + ROLLED_READ]
                stored = self.store.account_scores_many(self.crm, chunk)
                self.state.scored.update((a, _as_result(stored[a])) for a in chunk if a in stored)
        finally:
            if collecting:
                gc.enable()

    def score_parts(
        self,
        members_of: Mapping[str, Sequence[tuple[str, str, str | None]]],
        companies: Mapping[str, CrmCompany],
        parts: Mapping[str, tuple[float, str, tuple[tuple[str, float], ...]]],
        now: datetime,
    ) -> Iterator[tuple[str, Account, AccountResult]]:
        """Every account of `members_of` (`live_account_members`) scored from its members'
        parts (contact id -> (engagement points, grade, hits); a member without one is not
        scored yet and left out), each job title classified once: `score_members`
        (`rescore --dry-run`, `simulate`)."""
        titles = self.p.model.titles
        seniority: dict[str | None, str] = {}  # job titles repeat: classified once each
        members: dict[str, list[AccountMember]] = {}
        for account_id, rows in members_of.items():
            people = members[account_id] = []
            for cid, name, title in rows:
                part = parts.get(cid)
                if part is None:
                    continue
                level = seniority.get(title)
                if level is None:
                    level = seniority[title] = titles.classify(title).seniority
                people.append(AccountMember(cid, name, title, level, part[1], part[0], part[2]))
        return self.score_members(members, companies, now)

    def score_members(
        self,
        members: Mapping[str, Sequence[AccountMember]],
        companies: Mapping[str, CrmCompany],
        now: datetime,
    ) -> Iterator[tuple[str, Account, AccountResult]]:
        """Every account of `members` scored: (account id, account, result), one account at
        a time. Reads the company records' facts from `companies` and the enrichment cache's
        entries of the accounts' domains in one read; writes nothing."""
        cache = self._cache_entries(members, companies)
        ca = self.ca
        for account_id, people in members.items():
            account, _ = self._account_from(account_id, companies, cache)
            yield account_id, account, score_account(ca, account, people, now)

    def _cache_entries(
        self, members_of: Mapping[str, object], companies: Mapping[str, CrmCompany]
    ) -> dict[str, CacheEntry]:
        """The enrichment cache's entries of the accounts' domains, read at once (what
        `_fill` would read one account at a time)."""
        domains: list[str] = []
        for account_id in members_of:
            kind, _, key = account_id.partition(":")
            if kind == "company" and key in companies:
                domains.append(companies[key].domain or "")
            elif kind == "domain":
                domains.append(key)
        return self.store.get_company_entries(  # type: ignore[no-any-return]
            d for d in domains if d and d not in self.known
        )

    def _account_from(
        self,
        account_id: str,
        companies: Mapping[str, CrmCompany],
        cache: Mapping[str, CacheEntry] | None = None,
    ) -> tuple[Account, str | None]:
        """The account and its company id, from the companies read (`cache`: the enrichment
        cache's entries of the domains, read beforehand; None: read here)."""
        kind, _, key = account_id.partition(":")
        if kind == "company" and key in companies:
            c = companies[key]
            company = Company(
                domain=c.domain or "",
                name=c.name,
                industry=industry_words(c.industry),
                employee_count=c.employee_count,
                annual_revenue_usd=c.annual_revenue_usd,
                country=c.country,
                source="crm",
            )
            return Account(account_id, self._fill(company, cache), crm_id=key), key
        if kind == "domain":
            company = Company(domain=key, source="domain")
            return Account(account_id, self._fill(company, cache)), None
        members = list(self.store.iter_contacts(self.crm, self.store.account_member_ids(
            self.crm, account_id)))  # fmt: skip
        return self._account(account_id, members)

    def _account(self, account_id: str, contacts: Sequence[Contact]) -> tuple[Account, str | None]:
        kind, _, key = account_id.partition(":")
        if kind == "company":
            c = self.store.get_crm_companies(self.crm, [key]).get(key)
            domain = (c.domain if c else None) or ""
            company = Company(
                domain=domain,
                name=c.name if c else None,
                industry=industry_words(c.industry) if c else None,
                employee_count=c.employee_count if c else None,
                annual_revenue_usd=c.annual_revenue_usd if c else None,
                country=c.country if c else None,
                source="crm",
            )
            return Account(account_id, self._fill(company), crm_id=key), key
        if kind == "domain":
            return Account(account_id, self._fill(Company(domain=key, source="domain"))), None
        # keyed by the company field: the firmographics of the members' corporate domain
        # (the first member, by id, whose domain enrichment knows)
        for c in sorted(contacts, key=lambda c: _id_sort(c.id)):
            domain = (c.email or "").rpartition("@")[2].lower()
            known = (self.known.get(domain) or self._local(domain)) if domain else None
            if known is not None:
                name = c.company_name or known.name
                return Account(account_id, replace(known, name=name, source="company_field")), None
        return Account(account_id, Company(domain="", name=key, source="company_field")), None

    def learn(self, enrichments: Iterable[Enrichment]) -> None:
        """Keep the firmographics the contacts' enrichment found, by registrable domain: what
        an account of that domain is filled from."""
        for e in enrichments:
            if e.email_kind == "corporate" and e.domain and e.company is not None:
                self.known[e.domain] = e.company

    def _local(self, domain: str) -> Company | None:
        """The local providers' firmographics of `domain` (the firmographics file: never
        cached, so a roll-up outside a sync, which enriches no member, asks them as the sync's
        enrichment did; asked before the cache, as enrichment does), once a domain."""
        if domain in self._local_seen:
            return self._local_seen[domain]
        enricher = getattr(self.p, "enricher", None)
        found = enricher.local_company(domain) if enricher is not None else None
        self._local_seen[domain] = found
        return found

    def _fill(self, company: Company, cache: Mapping[str, CacheEntry] | None = None) -> Company:
        """Blank firmographics filled from the enrichment cache of the company's domain
        (`cache`: its entries read beforehand, by lower-cased domain)."""
        if not company.domain:
            return company
        known = self.known.get(company.domain) or self._local(company.domain.lower())
        if known is None:
            entry = (
                self.store.get_company_entry(company.domain)
                if cache is None
                else cache.get(company.domain.lower())
            )
            known = entry.company if entry is not None else None
        if known is None:
            return company
        return replace(
            company,
            name=company.name or known.name,
            industry=company.industry or known.industry,
            industry_group=company.industry_group or known.industry_group,
            employee_count=company.employee_count
            if company.employee_count is not None
            else known.employee_count,
            annual_revenue_usd=company.annual_revenue_usd
            if company.annual_revenue_usd is not None
            else known.annual_revenue_usd,
            country=company.country or known.country,
        )

    def _members(
        self, contacts: Sequence[Contact], fresh: Mapping[str, ScoreResult]
    ) -> list[AccountMember]:
        member_ids = [c.id for c in contacts]
        stored: dict[str, StoredScore] = self.store.get_scores_many(
            self.crm, [m for m in member_ids if m not in fresh]
        )
        results: dict[str, ScoreResult] = {cid: s.to_result() for cid, s in stored.items()}
        results.update({m: fresh[m] for m in member_ids if m in fresh})
        keys = [
            k
            for r in results.values()
            for reason in r.reasons
            if reason.kind == "engagement" and reason.points > 0
            for k in reason.event_ids
        ]
        times = self.store.event_times(self.crm, keys)
        titles = self.p.model.titles
        out: list[AccountMember] = []
        for contact in contacts:
            r = results.get(contact.id)
            if r is None:
                continue  # not scored yet: it joins when it is
            out.append(
                AccountMember(
                    contact.id,
                    member_name(contact.first_name, contact.last_name, contact.email, contact.id),
                    contact.job_title,
                    titles.classify(contact.job_title).seniority,
                    r.grade,
                    r.engagement_points,
                    member_hits(r, times),
                )
            )
        return out

    # -- 5. the end of the pass ------------------------------------------------------------------
    def finish(self, now: datetime, summary: SyncSummary) -> None:
        if not self.enabled():
            return
        self._adopt_rolled()
        # a member's write found it deleted after its account was scored with it: again
        left = set(self.store.accounts_due(self.crm, MEMBER_DELETED_AT_WRITE))
        due = [
            a
            for a in dict.fromkeys(
                self.store.accounts_due(self.crm)
                + self.store.due_account_ids(self.crm, now)
                # a model rolled out (`leadscore rescore`): every account under the new one
                + self.store.stale_account_ids(self.crm, self.p.model.fingerprint)
            )
            if (a not in self.state.scored or a in left) and a not in self.state.emptied
        ]
        if due:
            self.score_accounts(due, now)
        self._write_members(now, summary)
        # a member found deleted by those writes (HubSpot shows a deletion no other way: a
        # deleted contact is never pulled again): its account again, and its other members'
        # new values, diff-only (once; one found by that round waits for the next pass)
        gone = self.store.accounts_due(self.crm, MEMBER_DELETED_AT_WRITE)
        if gone:
            self.score_accounts(gone, now)
            self._write_members(now, summary)
        self._write_companies(now, summary)
        summary.accounts_scored = len(self.state.distinct)
        if self.state.distinct:
            summary.notes.append(
                f"accounts: {len(self.state.distinct)} scored"
                + (f", {len(self.state.unwritten)} company write(s) failed (kept for the next "
                   "sync)" if self.state.unwritten else "")
            )  # fmt: skip
        if not self.p.options.dry_run:  # a company write that failed stays due: next pass
            # and an account whose member a write found deleted after it was scored (the
            # second round's): scored again next pass
            later = set(self.store.accounts_due(self.crm, MEMBER_DELETED_AT_WRITE))
            done = [
                a
                for a in (*self.state.scored, *self.state.emptied)
                if a not in self.state.unwritten and a not in later
            ]
            self.store.clear_accounts_due(self.crm, done)

    def _write_members(self, now: datetime, summary: SyncSummary) -> None:
        """Members of the accounts scored this pass that no chunk wrote, or that a chunk wrote
        with the account's values from before a later chunk scored it again: their account
        values (and an MQL at an MQA) through the pipeline's write path, diff-only."""
        from connector.pipeline import _iso

        # a contact a chunk planned with other values than the account's final ones (a later
        # chunk changed another member and scored the account again) is written again, diff-
        # only against what its chunk's write recorded (a dry run records none: left out)
        again = not self.p.options.dry_run
        planned = self.state.in_chunk
        others: list[str] = []
        for account_id, final in self.state.scored.items():
            others.extend(
                m
                for m in self.store.account_member_ids(self.crm, account_id)
                if m not in planned or (again and _shown(planned[m]) != _shown(final))
            )
        # a contact with a write whose outcome is unknown (this pass's, or one the CRM could not
        # be asked about) waits for the next run to settle it, as the chunks leave it
        # (`settle_in_flight`): sent now, what may have arrived would be sent twice (a dry run
        # sends nothing and shows them, as its chunks do)
        unsettled = {} if self.p.options.dry_run else self.store.writes_in_flight(self.crm)
        others = [m for m in others if m not in unsettled]
        if not others:
            return
        self.contact_props = {}
        links = self.store.contact_accounts_many(self.crm, others)
        written = self.store.get_written_many(self.crm, others)
        # a member whose record shows its account's values already, at an account that is no
        # MQA (no MQL through it to give), has nothing to write here (its own score's values
        # are its chunk's or its backlog's): left out before its stored score is read and
        # decoded, ~80 µs a member (after a full rescore at 1M contacts, every member)
        others = [m for m in others if not self._settled(links.get(m), written[m])]
        if not others:
            return
        stored = self.store.get_scores_many(self.crm, others)
        writes: list[WriteBack] = []
        meta: dict[str, ScoreResult] = {}
        changed_scores: list[ScoreResult] = []
        for contact in self.store.iter_contacts(self.crm, others):
            s = stored.get(contact.id)
            link = links.get(contact.id)
            if s is None or link is None:
                continue
            acc = self.state.scored.get(link.account_id)
            result = s.to_result()
            if acc is not None:
                mql = self._mql(contact, result, acc)
                if mql != result:  # the account's verdict changed what is stored
                    changed_scores.append(mql)
                    result = mql
            self.contact_props[contact.id] = _contact_values(acc)
            changes = self.p.changes_for(contact, result, written.get(contact.id, {}), None)
            if not changes:
                continue
            changes["scored_at"] = _iso(now)
            writes.append(WriteBack(contact.id, changes))
            meta[contact.id] = result
        with self.store.transaction():
            if changed_scores:
                self.store.save_scores(self.crm, changed_scores)
            self.store.set_write_pending(self.crm, [w.contact_id for w in writes], True)
        summary.to_write += len(writes)
        if self.p.options.dry_run:
            summary.changes.extend((w.contact_id, dict(w.properties)) for w in writes)
            return
        if writes:
            self.p._write(writes, meta, now, summary)

    def _settled(self, link: ContactAccount | None, written: Mapping[str, str]) -> bool:
        """Whether `_write_members` has nothing to write for a member: no link (it is not
        written), or its record shows its account's values and the account is no MQA."""
        if link is None:
            return True
        acc = self.state.scored.get(link.account_id)
        if acc is not None and acc.mqa:
            return False
        return all(written.get(k, "") == v for k, v in _contact_values(acc).items())

    def company_changes(self, result: AccountResult | None) -> dict[str, str]:
        """What a company record should show for this account, by our property names (None:
        the account has no score any more: every value blank)."""
        if result is None:
            return dict.fromkeys(COMPANY_PROPERTIES, "")
        return {
            "account_score": crm_score(result.score),
            "account_grade": result.grade,
            "account_reasons": result.top_reasons(),
            "engaged_contacts": str(len(result.engaged_contacts)),
            "mqa_reason": result.mqa_reason or "",
            "model_version": result.model_version,
        }

    def _write_companies(self, now: datetime, summary: SyncSummary) -> None:
        """Company records of the accounts scored this pass, and of those left with no live
        member (their values cleared: blank, sent only over values written): diff-only,
        batched, an outcome per record. Domain- and name-keyed accounts have no record:
        stored only. Like contact writes, each batch is recorded in flight before it is
        sent; one whose answer never came is read back before it is sent again (here, or by
        the next run: `_settle_in_flight`), so no company is written twice."""
        if not self._capable("write_companies"):
            return
        unknown = self._settle_in_flight()
        targets: dict[str, dict[str, str]] = {}
        results: list[tuple[str, AccountResult | None]] = list(self.state.scored.items())
        results += [(a, None) for a in sorted(self.state.emptied)]
        for account_id, result in results:
            kind, _, company_id = account_id.partition(":")
            if kind != "company":
                continue
            if company_id in unknown:  # the CRM could not be asked: written next pass
                self.state.unwritten.add(account_id)
                continue
            targets[company_id] = self.company_changes(result)
        if not targets:
            return
        companies = self.store.get_crm_companies(self.crm, list(targets))
        written = self.store.get_account_written_many(self.crm, list(targets))
        pending: list[WriteBack] = []
        for company_id, desired in sorted(targets.items()):
            c = companies.get(company_id)
            if c is None or c.archived or c.merged_into:
                continue
            diff = company_diff(desired, written[company_id])
            if diff:
                pending.append(WriteBack(company_id, diff))
        summary.companies_to_write += len(pending)
        if self.p.options.dry_run or not pending:
            summary.changes.extend((f"company:{w.contact_id}", dict(w.properties)) for w in pending)
            return
        write = self.p.adapter.write_companies  # type: ignore[attr-defined]
        attempts = self.p.options.write_retry_attempts
        for attempt in range(1, attempts + 1):
            self.p._checkpoint("write")
            # committed before the request goes out: a run that dies before the outcome is
            # recorded leaves them to be read back, not sent again
            props = {w.contact_id: w.properties for w in pending}
            self.store.set_in_flight(self.crm, props, of=COMPANY_WRITE)
            try:
                outcomes = write(pending)
            except RetryableError as exc:  # no answer at all: every one may have arrived
                log.warning("company write failed: %s", exc)
                outcomes = [WriteOutcome(w.contact_id, False, True, str(exc)) for w in pending]
            retry = self._record_company_outcomes(pending, outcomes, attempt, summary)
            if not retry:
                return
            summary.write_retries += len(retry)
            # an answer that never came may hide an applied write: read back before resending
            try:
                arrived = self._confirm(retry)
            except RetryableError as exc:  # cannot tell: never resend blind; the next run checks
                with self.store.transaction():
                    at = self.p.clock()
                    for w in retry:
                        self._company_dead_letter(
                            w, f"outcome unknown after {attempt} attempt(s), checked next run: "
                            f"{exc}", at, summary)  # fmt: skip
                return
            with self.store.transaction():
                at = self.p.clock()
                for w in retry:
                    if w.contact_id in arrived:
                        self._company_written(w, at, summary)
                self.store.clear_in_flight(self.crm, arrived, of=COMPANY_WRITE)
            pending = [w for w in retry if w.contact_id not in arrived]
            if not pending:
                return

    def _record_company_outcomes(
        self,
        pending: list[WriteBack],
        outcomes: list[WriteOutcome],
        attempt: int,
        summary: SyncSummary,
    ) -> list[WriteBack]:
        """One attempt's outcomes, recorded in one transaction; returns the writes to retry.
        A write whose outcome is still unknown after the last attempt is dead-lettered and
        stays in flight: the next run reads it back."""
        by_id = {w.contact_id: w for w in pending}
        retry: list[WriteBack] = []
        settled: list[str] = []
        attempts = self.p.options.write_retry_attempts
        with self.store.transaction():
            at = self.p.clock()
            for out in outcomes:
                w = by_id.get(out.contact_id)
                if w is None:
                    continue
                if out.ok:
                    self._company_written(w, at, summary)
                elif out.archived:
                    self._company_gone(w.contact_id, at, summary)
                elif out.retryable and attempt < attempts:
                    retry.append(w)
                    continue
                elif out.retryable:
                    reason = f"gave up after {attempt} attempts: {out.error or 'no answer'}"
                    self._company_dead_letter(w, reason, at, summary)
                    continue
                else:
                    self._company_dead_letter(w, out.error or "write failed", at, summary)
                settled.append(w.contact_id)
            self.store.clear_in_flight(self.crm, settled, of=COMPANY_WRITE)
        return retry

    def _company_written(self, w: WriteBack, at: datetime, summary: SyncSummary) -> None:
        self.store.record_account_written(self.crm, w.contact_id, w.properties, at)
        self.store.resolve_dead_letters_for(self.crm, "company_write", w.contact_id, at)
        summary.companies_written += 1

    def _company_dead_letter(
        self, w: WriteBack, reason: str, at: datetime, summary: SyncSummary
    ) -> None:
        self.state.unwritten.add(company_account_id(w.contact_id))
        self.store.add_dead_letter(
            self.crm, "company_write", w.contact_id, dict(w.properties),
            f"company {w.contact_id}: {reason}", at,
        )  # fmt: skip
        summary.dead_lettered += 1

    def _confirm(self, writes: Sequence[WriteBack]) -> set[str]:
        """The company writes the CRM already shows (read back), when the adapter can tell."""
        confirm = getattr(self.p.adapter, "confirm_companies_written", None)
        if confirm is None or not writes:
            return set()
        return set(confirm(writes))

    def _settle_in_flight(self) -> set[str]:
        """Company writes an earlier run sent without recording their outcome (it was killed,
        or gave up on an answer that never came): read back what the CRM shows; those that
        arrived are recorded as written (the diff does not send them again), the others are
        forgotten (the diff sends what is still needed). Returns the company ids whose state
        is still unknown (the CRM could not be asked): not written this pass."""
        in_flight = self.store.writes_in_flight(self.crm, of=COMPANY_WRITE)
        if not in_flight or self.p.options.dry_run:
            return set()
        writes = [WriteBack(cid, props) for cid, props in in_flight.items()]
        try:
            arrived = self._confirm(writes)
        except RetryableError as exc:
            log.warning("cannot check %d unconfirmed company write(s) yet: %s", len(writes), exc)
            return set(in_flight)
        at = self.p.clock()
        with self.store.transaction():
            for w in writes:
                if w.contact_id in arrived:
                    self.store.record_account_written(self.crm, w.contact_id, w.properties, at)
                    self.store.resolve_dead_letters_for(self.crm, "company_write", w.contact_id, at)
            self.store.clear_in_flight(self.crm, in_flight, of=COMPANY_WRITE)
        if arrived:
            log.info("%d company write(s) of an interrupted run had arrived; not sent again",
                     len(arrived))  # fmt: skip
        return set()

    def _company_gone(self, company_id: str, at: datetime, summary: SyncSummary) -> None:
        """404 on write: the company is archived (or merged away). Never written again; its
        contacts are resolved again next pass (another company, or their domain)."""
        self.store.mark_company_archived(self.crm, company_id, at)
        members = self.store.contacts_with_company(self.crm, [company_id])
        self.store.set_write_pending(self.crm, members, True)
        self.store.add_accounts_due(self.crm, [company_account_id(company_id)], "archived")
        summary.archived += 1


def company_diff(desired: Mapping[str, str], written: Mapping[str, str]) -> dict[str, str]:
    """The company values to send: those that differ from the last written ones. Values
    cleared (all blank: the account lost its score) are sent only over values written."""
    if not any(desired.values()):
        return {k: v for k, v in desired.items() if written.get(k, "") != v}
    return {k: v for k, v in desired.items() if written.get(k) != v}


def _id_sort(cid: str) -> tuple[int, str]:
    return (int(cid), cid) if cid.isdigit() else (1 << 62, cid)


def _member_part(r: ScoreResult) -> tuple[Any, ...]:
    """What of a contact's score its account reads (`member_hits`, `score_account`)."""
    hits = tuple(
        (x.rule, x.event_ids) for x in r.reasons if x.kind == "engagement" and x.points > 0
    )
    return (r.engagement_points, r.grade, r.model_fingerprint, hits)


def _stored_part(s: StoredScore | None) -> tuple[Any, ...] | None:
    return None if s is None else _member_part(s.to_result())


def _as_result(s: StoredAccountScore) -> AccountResult:
    return AccountResult(
        account_id=s.account_id,
        score=s.score,
        engagement_points=s.engagement_points,
        fit_points=s.fit_points,
        grade=s.grade,
        mqa=s.mqa,
        mqa_reason=s.mqa_reason,
        members=s.members,
        engaged_contacts=s.engaged_contacts,
        model_version=s.model_version,
        model_fingerprint=s.model_fingerprint,
        scored_at=s.scored_at,
        next_change_at=s.next_change_at,
        reasons=s.reasons,
    )


def _shown(acc: AccountResult | None) -> tuple[Any, ...]:
    """What of an account its members' writes carry: their values and the MQA's lower bar."""
    return (None,) if acc is None else (crm_score(acc.score), acc.grade, acc.mqa)


def _contact_values(acc: AccountResult | None) -> dict[str, str]:
    """The account values a contact shows; blank when it has no account (cleared once)."""
    if acc is None:
        return {"account_score": "", "account_grade": ""}
    return {"account_score": crm_score(acc.score), "account_grade": acc.grade}
