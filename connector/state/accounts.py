"""Account-based scoring state (issue 21): a mixin `StateStore` inherits.

Tables (migration 008): `crm_companies` (the CRM's company records), `contact_accounts` (each
contact's account key and where it came from), `account_scores` (+ history by trigger),
`account_written` (company values last written, for diff-only writes) and `accounts_due` (the
persisted backlog of accounts to rescore).

An account id is `company:<crm company id>` or `domain:<registrable domain>`.

Read API for views (the CLI's `leadscore accounts`, `explain --account`):
- `top_accounts(crm, n)` -> list[StoredAccountScore], highest score first;
- `get_account(crm, key)` -> StoredAccountScore | None, `key` an account id, a company id (a
  Marketo company's own number too) or a domain;
- `accounts_named(crm, name)` -> list[StoredAccountScore], the accounts of a company name;
- `account_members(crm, account_id)` -> list[AccountMemberRow], highest contact score first;
- `account_score(crm, account_id)` -> StoredAccountScore | None.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

from connector.scoring.accounts import member_name
from connector.state.base import LAST_ID, StoreBase, _db_errors, _db_errors_iter
from connector.state.codec import (
    decode_dt,
    decode_opt_dt,
    decode_reasons,
    encode_dt,
    encode_json,
    encode_opt_dt,
    json_text,
    reasons_json,
)
from connector.state.dead_letters import resolve_input
from connector.text import clean_row
from connector.types import AccountResult, CrmCompany, Reason, company_record_id

ACCOUNT_SOURCES = ("primary_company", "company_record", "company_field", "email_domain")


def company_account_id(company_id: str) -> str:
    return f"company:{company_id}"


def domain_account_id(domain: str) -> str:
    return f"domain:{domain.lower()}"


NAME_PREFIX = "name:"  # an account keyed by the company field (Marketo without company records)


def name_account_id(name: str) -> str:
    return NAME_PREFIX + " ".join(name.lower().split())


@dataclass(frozen=True, slots=True)
class ContactAccount:
    """The account a contact belongs to: `source` says which key gave it; `company_ids` every
    company it is associated with (several: the primary one wins)."""

    contact_id: str
    account_id: str
    source: str
    company_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StoredAccountScore:
    crm: str
    account_id: str
    company_id: str | None
    domain: str | None
    name: str | None
    score: float
    engagement_points: float
    fit_points: float
    grade: str
    mqa: bool
    mqa_reason: str | None
    members: int
    engaged_contacts: tuple[str, ...]
    reasons: tuple[Reason, ...]
    model_version: str
    model_fingerprint: str
    scored_at: datetime
    next_change_at: datetime | None


@dataclass(frozen=True, slots=True)
class AccountMemberRow:
    """One member of an account for views: the contact, how it joined, its current score."""

    contact_id: str
    email: str | None
    name: str
    job_title: str | None
    source: str
    score: float | None
    grade: str | None
    mql: bool


_SELECT_ACCOUNT = (
    "SELECT crm, account_id, company_id, domain, name, score, engagement_points, fit_points, "
    "grade, mqa, mqa_reason, members, engaged_contacts, reasons, model_version, "
    "model_fingerprint, scored_at, next_change_at FROM account_scores "
    "WHERE crm = ? AND account_id = ?"
)
_TOP_ACCOUNTS = (
    "SELECT crm, account_id, company_id, domain, name, score, engagement_points, fit_points, "
    "grade, mqa, mqa_reason, members, engaged_contacts, reasons, model_version, "
    "model_fingerprint, scored_at, next_change_at FROM account_scores "
    "WHERE crm = ? ORDER BY score DESC, account_id LIMIT ?"
)
_ACCOUNTS_IN = (
    "SELECT crm, account_id, company_id, domain, name, score, engagement_points, fit_points, "
    "grade, mqa, mqa_reason, members, engaged_contacts, reasons, model_version, "
    "model_fingerprint, scored_at, next_change_at FROM account_scores "
    "WHERE crm = ? AND account_id IN (SELECT value FROM json_each(?))"
)
_ACCOUNT_BY_DOMAIN = (
    "SELECT crm, account_id, company_id, domain, name, score, engagement_points, fit_points, "
    "grade, mqa, mqa_reason, members, engaged_contacts, reasons, model_version, "
    "model_fingerprint, scored_at, next_change_at FROM account_scores "
    "WHERE crm = ? AND lower(domain) = ? ORDER BY score DESC LIMIT 1"
)


def _name_key(name: str) -> str:
    """A company name as `accounts_named` compares it: any case (Unicode), any spacing."""
    return " ".join(name.casefold().split())


def _account_row(row: Sequence[Any]) -> StoredAccountScore:
    return StoredAccountScore(
        crm=row[0],
        account_id=row[1],
        company_id=row[2],
        domain=row[3],
        name=row[4],
        score=float(row[5]),
        engagement_points=float(row[6]),
        fit_points=float(row[7]),
        grade=row[8],
        mqa=bool(row[9]),
        mqa_reason=row[10],
        members=int(row[11]),
        engaged_contacts=tuple(json.loads(row[12])),
        reasons=decode_reasons(row[13]),
        model_version=row[14],
        model_fingerprint=row[15],
        scored_at=decode_dt(row[16]),
        next_change_at=decode_opt_dt(row[17]),
    )


def _company_row(row: Sequence[Any]) -> CrmCompany:
    return CrmCompany(
        id=row[0],
        domain=row[1],
        name=row[2],
        industry=row[3],
        employee_count=row[4],
        annual_revenue_usd=row[5],
        country=row[6],
        updated_at=decode_opt_dt(row[7]),
        archived=row[8] is not None,
        merged_into=row[9],
        properties=json.loads(row[10]) if row[10] else None,
    )


# why an account is due when a member's write found the contact deleted (404): the pass may
# have scored the account with it already, and scores it again (`AccountStage.finish`)
MEMBER_DELETED_AT_WRITE = "member deleted (found at write)"


_DUE_KEEPING = (
    "INSERT INTO accounts_due (crm, account_id, reason) VALUES (?, ?, ?) "
    "ON CONFLICT (crm, account_id) DO NOTHING"
)
_DUE_REPLACING = (
    "INSERT INTO accounts_due (crm, account_id, reason) VALUES (?, ?, ?) "
    "ON CONFLICT (crm, account_id) DO UPDATE SET reason = excluded.reason"
)


def _param(items: Iterable[str]) -> str:
    return json.dumps(list(dict.fromkeys(items)))


def live_account_members(
    store: Any, crm: str, after: str = "", upto: str | None = None
) -> dict[str, list[tuple[str, str, str | None]]]:
    """{account id: [(contact id, name, job title)]} of the live members of every account
    with an id in `(after, upto]` (None: no upper bound), in one read (a rescore rolls every
    account up)."""
    # the account index (crm, account_id, contact_id) gives the order, each contact read by
    # its key: no sort (CROSS JOIN keeps SQLite from starting at the contacts)
    rows = store.db.execute(
        "SELECT a.account_id, c.id, c.first_name, c.last_name, c.email, c.job_title "
        "FROM contact_accounts a CROSS JOIN contacts_with_live c ON c.crm = a.crm AND "
        "c.id = a.contact_id WHERE a.crm = ? AND a.account_id > ? "
        "AND (? IS NULL OR a.account_id <= ?) AND c.live "
        "ORDER BY a.account_id, a.contact_id",
        [crm, after, upto, upto],
    )
    out: dict[str, list[tuple[str, str, str | None]]] = {}
    for account_id, cid, first, last, email, title in rows:
        out.setdefault(account_id, []).append((cid, member_name(first, last, email, cid), title))
    return out


# one account score as `account_scores` stores it (`account_score_row`)
AccountScoreRow = tuple[Any, ...]

_UPSERT_COMPANY = (
    "INSERT INTO crm_companies (crm, id, domain, name, industry, employee_count, "
    "annual_revenue_usd, country, archived_at, merged_into, updated_at, properties, "
    "pulled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (crm, id) DO UPDATE SET domain = excluded.domain, "
    "name = excluded.name, industry = excluded.industry, "
    "employee_count = excluded.employee_count, "
    "annual_revenue_usd = excluded.annual_revenue_usd, country = excluded.country, "
    "archived_at = excluded.archived_at, merged_into = excluded.merged_into, "
    "updated_at = excluded.updated_at, properties = excluded.properties, "
    "pulled_at = excluded.pulled_at"
)

_UPSERT_ACCOUNT = (
    "INSERT INTO account_scores (crm, account_id, company_id, domain, name, score, "
    "engagement_points, fit_points, grade, mqa, mqa_reason, members, "
    "engaged_contacts, reasons, model_version, model_fingerprint, scored_at, "
    "next_change_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS TEXT), CAST(? AS TEXT), "
    "?, ?, ?, ?) "
    "ON CONFLICT (crm, account_id) DO UPDATE SET company_id = excluded.company_id, "
    "domain = excluded.domain, name = excluded.name, score = excluded.score, "
    "engagement_points = excluded.engagement_points, "
    "fit_points = excluded.fit_points, grade = excluded.grade, mqa = excluded.mqa, "
    "mqa_reason = excluded.mqa_reason, members = excluded.members, "
    "engaged_contacts = excluded.engaged_contacts, reasons = excluded.reasons, "
    "model_version = excluded.model_version, "
    "model_fingerprint = excluded.model_fingerprint, "
    "scored_at = excluded.scored_at, next_change_at = excluded.next_change_at"
)


def account_score_row(
    crm: str,
    result: AccountResult,
    *,
    company_id: str | None,
    domain: str | None,
    name: str | None,
) -> AccountScoreRow:
    """An account score as the parameters of its upsert. The reasons are written by orjson
    as UTF-8 bytes and stored as TEXT (`reasons_json`: the same text as `encode_json`)."""
    return (
        crm,
        result.account_id,
        company_id,
        domain,
        name,
        result.score,
        result.engagement_points,
        result.fit_points,
        result.grade,
        int(result.mqa),
        result.mqa_reason,
        result.members,
        json_text(result.engaged_contacts),
        reasons_json(result.reasons),
        result.model_version,
        result.model_fingerprint,
        _encode_scored_at(result.scored_at),
        encode_opt_dt(result.next_change_at),
    )


# a rescore's accounts share their `scored_at`: encoded once
_encode_scored_at = functools.lru_cache(maxsize=1)(encode_dt)


class AccountsStateMixin(StoreBase):
    """Account tables of the state DB. Mixed into `StateStore` (uses its connection and
    transactions); every statement is a literal, lists travel as one JSON parameter."""

    # -- companies ---------------------------------------------------------------------
    @_db_errors
    def upsert_crm_companies(
        self, crm: str, companies: Iterable[CrmCompany], at: datetime
    ) -> set[str]:
        """Store pulled company records. Returns the ids whose firmographics, archived or
        merged state changed (or that are new): their accounts need a rescore."""
        items = list(companies)
        old = self.get_crm_companies(crm, [c.id for c in items])
        changed: set[str] = set()
        when = encode_dt(at)
        rows = []
        for c in items:
            prev = old.get(c.id)
            if (
                prev is None
                # as stored: a lone surrogate in a CRM text is stored replaced (below)
                or prev.firmographics() != clean_row(c.firmographics())
                or prev.archived != c.archived
                or prev.merged_into != c.merged_into
            ):
                changed.add(c.id)
            archived_at = (
                None
                if not c.archived
                else (
                    encode_dt(at)
                    if prev is None or not prev.archived
                    else self._archived_at(crm, c.id) or when
                )
            )
            rows.append(
                (
                    crm,
                    c.id,
                    c.domain,
                    c.name,
                    c.industry,
                    c.employee_count,
                    c.annual_revenue_usd,
                    c.country,
                    archived_at,
                    c.merged_into,
                    encode_opt_dt(c.updated_at),
                    encode_json(dict(c.properties)) if c.properties else None,
                    when,
                )
            )
        with self.transaction():
            self._upsert_many(_UPSERT_COMPANY, rows)  # a lone surrogate: stored replaced
            # read cleanly: an input dead letter of an earlier read of it is resolved
            resolve_input(self._conn, crm, (company_record_id(c.id) for c in items), at)
        return changed

    def _archived_at(self, crm: str, company_id: str) -> str | None:
        row = self._conn.execute(
            "SELECT archived_at FROM crm_companies WHERE crm = ? AND id = ?", (crm, company_id)
        ).fetchone()
        return None if row is None else row[0]

    @_db_errors
    def get_crm_companies(self, crm: str, ids: Iterable[str]) -> dict[str, CrmCompany]:
        rows = self._conn.execute(
            "SELECT id, domain, name, industry, employee_count, annual_revenue_usd, country, "
            "updated_at, archived_at, merged_into, properties FROM crm_companies "
            "WHERE crm = ? AND id IN (SELECT value FROM json_each(?))",
            (crm, _param(ids)),
        ).fetchall()
        return {r[0]: _company_row(r) for r in rows}

    @_db_errors
    def mark_company_archived(self, crm: str, company_id: str, at: datetime) -> None:
        """The CRM no longer has it (404 on write): never written again."""
        with self.transaction():
            self._conn.execute(
                "INSERT INTO crm_companies (crm, id, archived_at, pulled_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (crm, id) DO UPDATE SET archived_at = "
                "coalesce(crm_companies.archived_at, excluded.archived_at)",
                (crm, company_id, encode_dt(at), encode_dt(at)),
            )

    @_db_errors
    def company_ids_by_domain(self, crm: str, domain: str) -> list[str]:
        rows = self._conn.execute(
            "SELECT id FROM crm_companies WHERE crm = ? AND lower(domain) = ? "
            "AND archived_at IS NULL AND merged_into IS NULL ORDER BY id",
            (crm, domain.lower()),
        ).fetchall()
        return [r[0] for r in rows]

    @_db_errors
    def company_ids_by_number(self, crm: str, number: str) -> list[str]:
        """The live company records a CRM keeps under another number than their id (the
        property `id`: a Marketo company's own number, its id being its `externalCompanyId`)."""
        if not number.isdigit():
            return []
        rows = self._conn.execute(
            "SELECT id FROM crm_companies WHERE crm = ? AND properties IS NOT NULL "
            "AND json_extract(properties, '$.id') = ? "
            "AND archived_at IS NULL AND merged_into IS NULL ORDER BY id",
            (crm, number),
        ).fetchall()
        return [r[0] for r in rows]

    @_db_errors
    def accounts_named(self, crm: str, name: str) -> list[StoredAccountScore]:
        """The scored accounts a company name names (`Acme Analytics`, any case and spacing):
        those whose company record (or company field) has that name, highest score first."""
        wanted = _name_key(name)
        if not wanted:
            return []
        keyed = name_account_id(name)
        return self._accounts_where(
            crm, lambda aid, stored, _: aid == keyed or bool(stored and _name_key(stored) == wanted)
        )

    @_db_errors
    def accounts_containing(self, crm: str, text: str) -> list[StoredAccountScore]:
        """The scored accounts whose company name or domain contains `text` (any case and
        spacing; at least 3 characters), highest score first: what `explain --account`
        suggests for a key that names no account (`northwind`)."""
        wanted = _name_key(text)
        if len(wanted) < 3:
            return []
        return self._accounts_where(
            crm,
            lambda _, name, domain: bool(
                (name and wanted in _name_key(name)) or (domain and wanted in domain.lower())
            ),
        )

    def _accounts_where(
        self, crm: str, keep: Callable[[str, str | None, str | None], bool]
    ) -> list[StoredAccountScore]:
        """The scored accounts `keep(account id, name, domain)` keeps, highest score first.
        Compared here, not by SQLite's `lower` (ASCII only, spacing as stored): a full read of
        the names either way (no index holds them), ~50 ms at 100,000 accounts."""
        ids = [
            account_id
            for account_id, name, domain in self._conn.execute(
                "SELECT account_id, name, domain FROM account_scores WHERE crm = ?", (crm,)
            )
            if keep(account_id, name, domain)
        ]
        found = self.account_scores_many(crm, ids)
        return sorted(found.values(), key=lambda a: (-a.score, a.account_id))

    # -- contact -> account ---------------------------------------------------------------
    @_db_errors
    def set_contact_accounts(
        self, crm: str, links: Iterable[ContactAccount], at: datetime
    ) -> dict[str, str | None]:
        """Store each contact's account. Returns {contact id: previous account id (None if
        it had none)} for the contacts whose account changed: both accounts need a rescore."""
        items = list(links)
        before = self.contact_accounts_many(crm, [x.contact_id for x in items])
        moved: dict[str, str | None] = {}
        when = encode_dt(at)
        rows = []
        for x in items:
            prev = before.get(x.contact_id)
            if prev is None or prev.account_id != x.account_id:
                moved[x.contact_id] = prev.account_id if prev is not None else None
            rows.append(
                (crm, x.contact_id, x.account_id, x.source, json.dumps(list(x.company_ids)), when)
            )
        with self.transaction():
            self._conn.executemany(
                "INSERT INTO contact_accounts (crm, contact_id, account_id, source, company_ids, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (crm, contact_id) DO UPDATE "
                "SET account_id = excluded.account_id, source = excluded.source, "
                "company_ids = excluded.company_ids, updated_at = excluded.updated_at",
                rows,
            )
        return moved

    @_db_errors
    def clear_contact_accounts(self, crm: str, contact_ids: Iterable[str]) -> dict[str, str]:
        """Forget the account of contacts that no longer have one; returns {contact: old}."""
        ids = list(contact_ids)
        before = self.contact_accounts_many(crm, ids)
        with self.transaction():
            self._conn.execute(
                "DELETE FROM contact_accounts WHERE crm = ? AND contact_id IN "
                "(SELECT value FROM json_each(?))",
                (crm, _param(ids)),
            )
        return {cid: x.account_id for cid, x in before.items()}

    @_db_errors
    def contact_accounts_many(
        self, crm: str, contact_ids: Iterable[str]
    ) -> dict[str, ContactAccount]:
        rows = self._conn.execute(
            "SELECT contact_id, account_id, source, company_ids FROM contact_accounts "
            "WHERE crm = ? AND contact_id IN (SELECT value FROM json_each(?))",
            (crm, _param(contact_ids)),
        ).fetchall()
        return {
            r[0]: ContactAccount(r[0], r[1], r[2], tuple(json.loads(r[3] or "[]"))) for r in rows
        }

    @_db_errors
    def account_ids_between(self, crm: str, first: str, last: str) -> dict[str, str]:
        """{contact id: account id} of the contacts with an account and an id from `first` to
        `last`: one range scan of the table's key (a rescore asks for each batch of contacts
        it scores, in id order; ~20x cheaper than reading the batch's ids by value)."""
        rows = self._conn.execute(
            "SELECT contact_id, account_id FROM contact_accounts "
            "WHERE crm = ? AND contact_id >= ? AND contact_id <= ?",
            (crm, first, last),
        ).fetchall()
        return dict(rows)

    @_db_errors
    def split_accounts(self, crm: str, parts: int) -> list[tuple[str, str]]:
        """The accounts with a member cut into at most `parts` id ranges `(after, upto]` of
        about equal numbers of members (an account is never cut: its members are scored
        with it), in id order, covering every id (`after` of the first is "", `upto` of the
        last `LAST_ID`): the shares of a parallel rescore with accounts on."""
        ex = self._conn.execute
        total = ex("SELECT count(*) FROM contact_accounts WHERE crm = ?", (crm,)).fetchone()[0]
        parts = max(1, min(parts, total))  # as `split_live_ids`: no offset below 0
        cuts: list[str] = []
        for k in range(1, parts):
            row = ex(
                "SELECT account_id FROM contact_accounts WHERE crm = ? ORDER BY account_id "
                "LIMIT 1 OFFSET ?",
                (crm, total * k // parts - 1),
            ).fetchone()
            if row is not None and (not cuts or row[0] > cuts[-1]):
                cuts.append(row[0])
        return list(pairwise(["", *cuts, LAST_ID]))

    @_db_errors_iter
    def account_member_batches(
        self, crm: str, after: str, upto: str, size: int
    ) -> Iterator[list[tuple[str, str]]]:
        """(account id, contact id) of every member (live or not) of the accounts with ids in
        `(after, upto]`, by account id then contact id, in batches of whole accounts of about
        `size` members (at least `size`, but for the last; an account larger than `size` is
        one batch). Each batch is a read of the account index of its own: nothing is held
        open between batches (the caller writes in between)."""
        ex = self._conn.execute
        while True:
            row = ex(
                "SELECT account_id FROM contact_accounts WHERE crm = ? AND account_id > ? "
                "ORDER BY account_id LIMIT 1 OFFSET ?",
                (crm, after, max(0, size - 1)),
            ).fetchone()
            end = upto if row is None or row[0] >= upto else row[0]
            links = ex(
                "SELECT account_id, contact_id FROM contact_accounts WHERE crm = ? "
                "AND account_id > ? AND account_id <= ? ORDER BY account_id, contact_id",
                (crm, after, end),
            ).fetchall()
            if links:
                yield links
            if end == upto or not links:
                return
            after = end

    @_db_errors
    def contact_ids_without_account(self, crm: str, after: str, upto: str) -> list[str]:
        """The live contacts with ids in `(after, upto]` that belong to no account (free and
        disposable mail, no company), in id order. One merge of two range scans in id order
        (the live contacts' index, the links' key), not a look-up of the links per contact:
        0.08 s instead of 0.22–0.36 s for 500,000 contacts that all have an account."""
        rows = self._conn.execute(
            "SELECT id FROM contacts_with_live WHERE crm = ?1 AND live AND id > ?2 AND id <= ?3 "
            "EXCEPT SELECT contact_id FROM contact_accounts "
            "WHERE crm = ?1 AND contact_id > ?2 AND contact_id <= ?3 ORDER BY 1",
            (crm, after, upto),
        ).fetchall()
        return [r[0] for r in rows]

    @_db_errors
    def linked_contact_ids(self, crm: str, contact_ids: Iterable[str]) -> set[str]:
        """Those of these contacts that have an account (`contact_accounts_many`'s keys,
        without decoding the rows: a rescore asks for every batch)."""
        rows = self._conn.execute(
            "SELECT contact_id FROM contact_accounts "
            "WHERE crm = ? AND contact_id IN (SELECT value FROM json_each(?))",
            (crm, _param(contact_ids)),
        ).fetchall()
        return {r[0] for r in rows}

    @_db_errors
    def account_member_ids(self, crm: str, account_id: str) -> list[str]:
        """The live contacts of an account (archived and merged-away contacts left out)."""
        rows = self._conn.execute(
            "SELECT a.contact_id FROM contact_accounts a JOIN contacts c "
            "ON c.crm = a.crm AND c.id = a.contact_id WHERE a.crm = ? AND a.account_id = ? "
            "AND c.archived_at IS NULL AND c.merged_into IS NULL ORDER BY a.contact_id",
            (crm, account_id),
        ).fetchall()
        return [r[0] for r in rows]

    @_db_errors
    def account_ids_with_company(self, crm: str, company_ids: Iterable[str]) -> set[str]:
        """Accounts keyed by these companies, and accounts whose members list one of them."""
        ids = list(company_ids)
        out = {company_account_id(c) for c in ids}
        rows = self._conn.execute(
            "SELECT DISTINCT a.account_id FROM contact_accounts a, json_each(a.company_ids) j "
            "WHERE a.crm = ? AND j.value IN (SELECT value FROM json_each(?))",
            (crm, _param(ids)),
        ).fetchall()
        out.update(r[0] for r in rows)
        return out

    @_db_errors
    def contacts_with_company(self, crm: str, company_ids: Iterable[str]) -> list[str]:
        """Contacts associated with one of these companies (primary or not)."""
        rows = self._conn.execute(
            "SELECT DISTINCT a.contact_id FROM contact_accounts a, json_each(a.company_ids) j "
            "WHERE a.crm = ? AND j.value IN (SELECT value FROM json_each(?)) "
            "ORDER BY a.contact_id",
            (crm, _param(company_ids)),
        ).fetchall()
        return [r[0] for r in rows]

    # -- events -------------------------------------------------------------------------
    @_db_errors
    def event_times(self, crm: str, keys: Iterable[str]) -> dict[str, float]:
        """{"source:source_id": Unix time} of the stored events with these keys."""
        out: dict[str, float] = {}
        pairs = [k.split(":", 1) for k in dict.fromkeys(keys) if ":" in k]
        for i in range(0, len(pairs), 5000):
            chunk = pairs[i : i + 5000]
            # CROSS JOIN keeps the keys as the outer loop: one unique-index lookup per key
            # (a plain JOIN let SQLite scan the events once per key: quadratic)
            rows = self._conn.execute(
                "SELECT e.source, e.source_id, e.occurred_at FROM json_each(?) k CROSS JOIN "
                "events e ON e.crm = ? AND e.source = json_extract(k.value, '$[0]') "
                "AND e.source_id = json_extract(k.value, '$[1]')",
                (json.dumps(chunk), crm),
            ).fetchall()
            for source, sid, at in rows:
                out[f"{source}:{sid}"] = decode_dt(at).timestamp()
        return out

    # -- account scores -----------------------------------------------------------------
    def save_account_score(
        self,
        crm: str,
        result: AccountResult,
        *,
        company_id: str | None,
        domain: str | None,
        name: str | None,
    ) -> None:
        self.save_account_score_rows(
            [account_score_row(crm, result, company_id=company_id, domain=domain, name=name)]
        )

    def save_account_score_rows(self, rows: Iterable[AccountScoreRow]) -> None:
        """Save account scores encoded by `account_score_row`, in one statement (a rescore's
        roll-up saves every account at once); history rows come from the triggers. A lone
        surrogate in a text (a company name from the CRM, a member's id) is stored replaced,
        as `save_scores` stores it."""
        with self.transaction():
            self._upsert_many(_UPSERT_ACCOUNT, list(rows))

    @_db_errors
    def delete_account_score(self, crm: str, account_id: str) -> None:
        """An account with no member left (everyone moved away) has no score."""
        with self.transaction():
            self._conn.execute(
                "DELETE FROM account_scores WHERE crm = ? AND account_id = ?", (crm, account_id)
            )

    @_db_errors
    def account_score(self, crm: str, account_id: str) -> StoredAccountScore | None:
        row = self._conn.execute(_SELECT_ACCOUNT, (crm, account_id)).fetchone()
        return None if row is None else _account_row(row)

    @_db_errors
    def account_scores_many(
        self, crm: str, account_ids: Iterable[str]
    ) -> dict[str, StoredAccountScore]:
        rows = self._conn.execute(
            _ACCOUNTS_IN,
            (crm, _param(account_ids)),
        ).fetchall()
        return {r[1]: _account_row(r) for r in rows}

    @_db_errors
    def top_accounts(self, crm: str, n: int = 20) -> list[StoredAccountScore]:
        """The `n` highest-scored accounts, highest first (ties by account id)."""
        return [_account_row(r) for r in self._conn.execute(_TOP_ACCOUNTS, (crm, n))]

    @_db_errors
    def account_ids(self, crm: str, after: str = "", upto: str = LAST_ID) -> list[str]:
        """Every account that has a member or a score (a rescore scores them all), in id order;
        those with ids in `(after, upto]` (a range of `split_accounts`) when given."""
        rows = self._conn.execute(
            "SELECT account_id FROM contact_accounts "
            "WHERE crm = ?1 AND account_id > ?2 AND account_id <= ?3 UNION "
            "SELECT account_id FROM account_scores "
            "WHERE crm = ?1 AND account_id > ?2 AND account_id <= ?3 ORDER BY 1",
            (crm, after, upto),
        ).fetchall()
        return [r[0] for r in rows]

    @_db_errors
    def count_account_scores(self, crm: str) -> int:
        row = self._conn.execute(
            "SELECT count(*) FROM account_scores WHERE crm = ?", (crm,)
        ).fetchone()
        return int(row[0])

    @_db_errors
    def count_mqas(self, crm: str) -> int:
        """How many scored accounts are MQAs (all of them, not only those a table shows)."""
        row = self._conn.execute(
            "SELECT count(*) FROM account_scores WHERE crm = ? AND mqa", (crm,)
        ).fetchone()
        return int(row[0])

    @_db_errors
    def get_account(self, crm: str, key: str) -> StoredAccountScore | None:
        """An account by its id (`company:123`, `domain:acme.com`), its CRM company id
        (`123`; Marketo: the `externalCompanyId`, else the record's own number) or a domain
        (`acme.com`: the company account with that domain, else the domain-keyed one)."""
        k = key.strip()
        for candidate in (k, company_account_id(k), domain_account_id(k)):
            found = self.account_score(crm, candidate)
            if found is not None:
                return found
        for company_id in self.company_ids_by_number(crm, k):
            found = self.account_score(crm, company_account_id(company_id))
            if found is not None:
                return found
        row = self._conn.execute(_ACCOUNT_BY_DOMAIN, (crm, k.lower())).fetchone()
        return None if row is None else _account_row(row)

    @_db_errors
    def account_members(self, crm: str, account_id: str) -> list[AccountMemberRow]:
        """The live members of an account, highest contact score first (unscored last)."""
        rows = self._conn.execute(
            "SELECT c.id, c.email, c.first_name, c.last_name, c.job_title, a.source, s.score, "
            "s.grade, s.mql FROM contact_accounts a JOIN contacts c ON c.crm = a.crm "
            "AND c.id = a.contact_id LEFT JOIN scores s ON s.crm = a.crm "
            "AND s.contact_id = a.contact_id WHERE a.crm = ? AND a.account_id = ? "
            "AND c.archived_at IS NULL AND c.merged_into IS NULL "
            "ORDER BY s.score IS NULL, s.score DESC, c.id",
            (crm, account_id),
        ).fetchall()
        out: list[AccountMemberRow] = []
        for cid, email, first, last, title, source, score, grade, mql in rows:
            name = " ".join(p for p in (first, last) if p) or email or cid
            out.append(
                AccountMemberRow(
                    cid,
                    email,
                    name,
                    title,
                    source,
                    None if score is None else float(score),
                    grade,
                    bool(mql),
                )
            )
        return out

    @_db_errors
    def account_score_history(self, crm: str, account_id: str) -> list[dict[str, Any]]:
        rows = self._conn.execute(
            "SELECT model_version, score, grade, mqa, scored_at FROM account_score_history "
            "WHERE crm = ? AND account_id = ? ORDER BY scored_at, id",
            (crm, account_id),
        ).fetchall()
        return [
            {
                "model_version": r[0],
                "score": r[1],
                "grade": r[2],
                "mqa": bool(r[3]),
                "scored_at": decode_dt(r[4]),
            }
            for r in rows
        ]

    @_db_errors
    def due_account_ids(self, crm: str, now: datetime) -> list[str]:
        """Accounts whose score changes by `now` (a person leaves the breadth window)."""
        rows = self._conn.execute(
            "SELECT account_id FROM account_scores WHERE crm = ? AND next_change_at <= ? "
            "ORDER BY next_change_at, account_id",
            (crm, encode_dt(now)),
        ).fetchall()
        return [r[0] for r in rows]

    @_db_errors
    def stale_account_ids(self, crm: str, fingerprint: str) -> list[str]:
        """Accounts scored by another model than `fingerprint` (a rollout: rescored next)."""
        rows = self._conn.execute(
            # two ranges of the model index (`!=` would scan it): no account row is read
            # (sorted here: an ORDER BY would make SQLite walk the key instead)
            "SELECT account_id FROM account_scores WHERE crm = ? "
            "AND (model_fingerprint < ? OR model_fingerprint > ?)",
            (crm, fingerprint, fingerprint),
        ).fetchall()
        return sorted(r[0] for r in rows)

    # -- the backlog of accounts to rescore ---------------------------------------------
    @_db_errors
    def add_accounts_due(
        self, crm: str, account_ids: Iterable[str], reason: str, *, replace_reason: bool = False
    ) -> None:
        """Put these accounts in the backlog for `reason`; one there already keeps its own
        (`replace_reason`: takes this one: an account just scored is due only for its values'
        writes, whatever made it due before)."""
        with self.transaction():
            self._conn.executemany(
                _DUE_REPLACING if replace_reason else _DUE_KEEPING,
                [(crm, a, reason) for a in dict.fromkeys(account_ids)],
            )

    @_db_errors
    def add_member_accounts_due(self, crm: str, contact_ids: Iterable[str], reason: str) -> None:
        """The accounts of these contacts due (`add_accounts_due`): each of them leaves its
        account (merged into another contact, deleted in the CRM), which must be scored again
        without it: the reason replaces one the account was due for already (`finish` reads
        `MEMBER_DELETED_AT_WRITE`). Nothing for a contact with no account (accounts off: none
        has one), nor for one gone already (a deletion read again is no news: its account
        was scored then)."""
        with self.transaction():
            self._conn.execute(
                "INSERT INTO accounts_due (crm, account_id, reason) "
                "SELECT a.crm, a.account_id, ? FROM contact_accounts a JOIN contacts_with_live c "
                "ON c.crm = a.crm AND c.id = a.contact_id WHERE a.crm = ? AND c.live "
                "AND a.contact_id IN (SELECT value FROM json_each(?)) "
                "ON CONFLICT (crm, account_id) DO UPDATE SET reason = excluded.reason",
                (reason, crm, _param(contact_ids)),
            )

    @_db_errors
    def accounts_due(self, crm: str, reason: str | None = None) -> list[str]:
        """The accounts in the backlog (`reason`: only those put there for it)."""
        rows = self._conn.execute(
            "SELECT account_id FROM accounts_due WHERE crm = ?1 AND (?2 IS NULL OR reason = ?2) "
            "ORDER BY account_id",
            (crm, reason),
        ).fetchall()
        return [r[0] for r in rows]

    @_db_errors
    def accounts_due_among(self, crm: str, account_ids: Iterable[str]) -> set[str]:
        """Those of `account_ids` in the backlog (one read, by key)."""
        rows = self._conn.execute(
            "SELECT account_id FROM accounts_due WHERE crm = ? AND account_id IN "
            "(SELECT value FROM json_each(?))",
            (crm, _param(account_ids)),
        ).fetchall()
        return {r[0] for r in rows}

    @_db_errors
    def clear_accounts_due(self, crm: str, account_ids: Iterable[str]) -> None:
        with self.transaction():
            self._conn.execute(
                "DELETE FROM accounts_due WHERE crm = ? AND account_id IN "
                "(SELECT value FROM json_each(?))",
                (crm, _param(account_ids)),
            )

    # -- company values written ---------------------------------------------------------
    @_db_errors
    def get_account_written_many(
        self, crm: str, company_ids: Iterable[str]
    ) -> dict[str, dict[str, str]]:
        wanted = list(dict.fromkeys(company_ids))
        out: dict[str, dict[str, str]] = {i: {} for i in wanted}
        rows = self._conn.execute(
            "SELECT company_id, property, value FROM account_written WHERE crm = ? AND "
            "company_id IN (SELECT value FROM json_each(?))",
            (crm, _param(wanted)),
        ).fetchall()
        for cid, prop, value in rows:
            out[cid][prop] = value
        return out

    @_db_errors
    def record_account_written(
        self, crm: str, company_id: str, props: Mapping[str, str], at: datetime
    ) -> None:
        when = encode_dt(at)
        with self.transaction():
            self._conn.executemany(
                "INSERT INTO account_written (crm, company_id, property, value, written_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (crm, company_id, property) DO UPDATE SET "
                "value = excluded.value, written_at = excluded.written_at",
                [(crm, company_id, k, v, when) for k, v in props.items()],
            )
