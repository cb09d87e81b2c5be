"""The enrichment cache (one row per registrable domain) and its `CompanyCache` view."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, fields
from typing import Any

from connector.enrich.cache import CacheEntry
from connector.state.base import StoreBase, _db_errors
from connector.state.codec import decode_dt, decode_json, encode_dt, encode_json
from connector.types import Company

_COMPANY_FIELDS = frozenset(f.name for f in fields(Company))


def _company(text: str | None) -> Company | None:
    data = decode_json(text)
    if not isinstance(data, dict):
        return None
    return Company(**{k: v for k, v in data.items() if k in _COMPANY_FIELDS})


def _entry(row: Any) -> CacheEntry:
    return CacheEntry(
        domain=row[0],
        status=row[1],
        company=_company(row[2]),
        source=row[3],
        fetched_at=decode_dt(row[4]),
        expires_at=decode_dt(row[5]),
    )


class CompaniesMixin(StoreBase):
    """The enrichment cache."""

    # -- enrichment cache ----------------------------------------------------------------

    @property
    def company_cache(self) -> CompanyCacheView:
        """This DB as the enrichment `CompanyCache` (`get(domain)` / `put(entry)`)."""
        return CompanyCacheView(self)

    @_db_errors
    def get_company_entry(self, domain: str) -> CacheEntry | None:
        """The cached entry for a registrable domain, fresh or not (the caller checks
        `expires_at`)."""
        row = self._conn.execute(
            "SELECT domain, status, company, source, fetched_at, expires_at FROM companies "
            "WHERE domain = ?",
            (domain.lower(),),
        ).fetchone()
        return None if row is None else _entry(row)

    @_db_errors
    def get_company_entries(self, domains: Iterable[str]) -> dict[str, CacheEntry]:
        """`get_company_entry` of many domains in one read, by lower-cased domain (an account
        roll-up fills every account's blank firmographics from the cache)."""
        wanted = sorted({d.lower() for d in domains})
        rows = self._conn.execute(
            "SELECT domain, status, company, source, fetched_at, expires_at FROM companies "
            "WHERE domain IN (SELECT value FROM json_each(?))",
            (json.dumps(wanted),),
        ).fetchall()
        return {row[0]: _entry(row) for row in rows}

    @_db_errors
    def put_company_entry(self, entry: CacheEntry) -> None:
        """Replace the entry of `entry.domain` (one row per domain)."""
        company = None if entry.company is None else encode_json(asdict(entry.company))
        with self.transaction():
            self._conn.execute(
                "INSERT OR REPLACE INTO companies "
                "(domain, status, company, source, fetched_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    entry.domain.lower(),
                    entry.status,
                    company,
                    entry.source,
                    encode_dt(entry.fetched_at),
                    encode_dt(entry.expires_at),
                ),
            )


class CompanyCacheView:
    """The `connector.enrich.cache.CompanyCache` protocol over a `StateStore`'s companies table."""

    __slots__ = ("_store",)

    def __init__(self, store: CompaniesMixin) -> None:
        self._store = store

    def get(self, domain: str) -> CacheEntry | None:
        return self._store.get_company_entry(domain)

    def put(self, entry: CacheEntry) -> None:
        self._store.put_company_entry(entry)

    def __repr__(self) -> str:
        return f"CompanyCacheView({self._store.path!r})"
