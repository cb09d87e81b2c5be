"""The company cache: one entry per registrable domain, and the policy for what goes in it.

The protocol is deliberately tiny so the SQLite store can implement it in a few lines:

    class CompanyCache(Protocol):
        def get(self, domain: str) -> CacheEntry | None: ...
        def put(self, entry: CacheEntry) -> None: ...

- `get` returns the stored entry for a registrable domain (`acme.co.uk`) **even when it has
  expired**; the caller decides freshness with its own `now` (`entry.is_fresh(now)`), so a store
  needs no clock. None when nothing was ever stored.
- `put` replaces the entry for `entry.domain` (one row per domain, upsert).
- Only the remote providers' answers are stored (People Data Labs, Apollo): the local file and the
  domain heuristic are read live, so an edit to the firmographics file counts at once.
- Policy (see `CachePolicy`): a hit is kept `hit_ttl_days` (~30), a miss `miss_ttl_days` (7–14);
  an error (429, 5xx, timeout, auth) is **never** stored, so the next run asks again.

`entry_to_row` / `entry_from_row` turn an entry into flat, JSON-friendly columns and back, for a
store that keeps one row per domain:
`domain TEXT PRIMARY KEY, status TEXT, source TEXT, fetched_at TEXT, expires_at TEXT,
company_json TEXT NULL` (timestamps as ISO 8601 with offset).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from connector.types import Company

CacheStatus = Literal["hit", "miss"]
CACHE_STATUSES: tuple[str, ...] = ("hit", "miss")


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """What the remote providers said about one registrable domain, and until when it holds.

    `source` names the provider of a hit (`pdl`), or the providers that all missed, joined by
    `+` (`pdl+apollo`): a miss is only trusted while it covers every provider now configured.
    """

    domain: str
    status: CacheStatus
    company: Company | None
    source: str
    fetched_at: datetime
    expires_at: datetime

    def __post_init__(self) -> None:
        if self.status not in CACHE_STATUSES:
            raise ValueError(f"cache entry {self.domain}: status must be hit or miss")
        if (self.status == "hit") != (self.company is not None):
            raise ValueError(f"cache entry {self.domain}: a hit has a company, a miss has none")
        if self.fetched_at.tzinfo is None or self.expires_at.tzinfo is None:
            raise ValueError(f"cache entry {self.domain}: timestamps must be timezone-aware")

    def is_fresh(self, now: datetime) -> bool:
        return is_fresh(self, now)

    @property
    def sources(self) -> frozenset[str]:
        return entry_sources(self)


class CompanyCache(Protocol):
    """Per-registrable-domain store of remote enrichment answers (see the module docstring)."""

    def get(self, domain: str) -> CacheEntry | None: ...

    def put(self, entry: CacheEntry) -> None: ...


class InMemoryCompanyCache:
    """A dict. For tests, the CLI without a state DB, and one-off runs."""

    def __init__(self, entries: dict[str, CacheEntry] | None = None) -> None:
        self._entries: dict[str, CacheEntry] = dict(entries or {})
        self.puts = 0

    def get(self, domain: str) -> CacheEntry | None:
        return self._entries.get(domain)

    def put(self, entry: CacheEntry) -> None:
        self.puts += 1
        self._entries[entry.domain] = entry

    def entries(self) -> dict[str, CacheEntry]:
        return dict(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"InMemoryCompanyCache({len(self._entries)} entries)"


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """How long an answer is kept. Errors are never kept."""

    hit_ttl_days: float = 30
    miss_ttl_days: float = 10

    def __post_init__(self) -> None:
        if self.hit_ttl_days < 0 or self.miss_ttl_days < 0:
            raise ValueError("cache TTLs must be zero or more days")

    def hit(self, domain: str, company: Company, source: str, now: datetime) -> CacheEntry:
        return CacheEntry(
            domain, "hit", company, source, now, now + timedelta(days=self.hit_ttl_days)
        )

    def miss(self, domain: str, sources: list[str], now: datetime) -> CacheEntry:
        return CacheEntry(
            domain, "miss", None, "+".join(sources), now, now + timedelta(days=self.miss_ttl_days)
        )


def is_fresh(entry: CacheEntry, now: datetime) -> bool:
    """`now < expires_at`, by field access only (a store may return its own record type with
    the same fields); a naive timestamp is taken as UTC."""
    return _aware(now) < _aware(entry.expires_at)


def entry_sources(entry: CacheEntry) -> frozenset[str]:
    """The providers an entry speaks for: `pdl+apollo` → {pdl, apollo}."""
    return frozenset(s for s in (entry.source or "").split("+") if s)


def entry_to_row(entry: CacheEntry) -> dict[str, Any]:
    """Flat columns for a store: company as JSON text, timestamps as ISO 8601."""
    company = dataclasses.asdict(entry.company) if entry.company is not None else None
    return {
        "domain": entry.domain,
        "status": entry.status,
        "source": entry.source,
        "fetched_at": entry.fetched_at.isoformat(),
        "expires_at": entry.expires_at.isoformat(),
        "company_json": json.dumps(company, sort_keys=True) if company is not None else None,
    }


def entry_from_row(row: dict[str, Any]) -> CacheEntry:
    """Inverse of `entry_to_row`. Unknown company keys (a newer version wrote them) are dropped."""
    company = None
    if row.get("company_json"):
        data = json.loads(row["company_json"])
        known = {f.name for f in dataclasses.fields(Company)}
        company = Company(**{k: v for k, v in data.items() if k in known})
    return CacheEntry(
        domain=row["domain"],
        status=row["status"],
        company=company,
        source=row["source"],
        fetched_at=_aware(datetime.fromisoformat(row["fetched_at"])),
        expires_at=_aware(datetime.fromisoformat(row["expires_at"])),
    )


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)
