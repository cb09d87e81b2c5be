"""E-mail → `Enrichment`: parse, classify, then ask the provider chain once per domain.

The chain, for a corporate address's registrable domain (free, disposable, invalid and missing
addresses never reach a provider and never get a company):

- providers are asked in order; the first hit wins, a miss falls through, an error falls
  through too but is remembered as an error (so the answer is not cached as a miss);
- before the first *remote* provider the cache is read once: a fresh hit is the answer; a fresh
  miss that covers every remote provider now configured skips them all (local ones still run);
- after the chain: a remote hit is cached for `hit_ttl_days`; if every remote provider answered
  "miss" the miss is cached for `miss_ttl_days`; if any of them failed (429, 5xx, timeout, a
  rejected key) nothing is cached, so the next run asks again;
- local providers (the firmographics file, the domain heuristic) are read live and never cached.

`enrich_many` resolves each registrable domain once per call whatever the number of people on it;
the cache makes that once per TTL across runs.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import requests

from connector.enrich.cache import (
    CacheEntry,
    CachePolicy,
    CompanyCache,
    InMemoryCompanyCache,
    entry_sources,
    is_fresh,
)
from connector.enrich.email import DomainLists, ParsedEmail, load_domain_lists, parse_email
from connector.enrich.providers import (
    ApolloProvider,
    HeuristicProvider,
    LocalFirmographicsProvider,
    PeopleDataLabsProvider,
    Provider,
    ProviderResult,
)
from connector.retry import RetryPolicy
from connector.settings import FIXTURES_DIR, Settings
from connector.types import Company, Enrichment

log = logging.getLogger(__name__)

DEFAULT_FIRMOGRAPHICS_PATH = FIXTURES_DIR / "firmographics.csv"

StepStatus = Literal["hit", "miss", "error", "cached", "skipped"]


@dataclass(frozen=True, slots=True)
class ProviderStep:
    """What one provider said (or why it was not asked) for one domain.

    `cached`: the answer came from the cache (`provider` is `cache` for a cached hit, whose
    detail names the provider that gave it, or the provider a cached miss covers);
    `skipped`: not asked, because an earlier or a cached answer won.
    """

    provider: str
    status: StepStatus
    detail: str
    company: Company | None = None
    retryable: bool = False


@dataclass(frozen=True, slots=True)
class DomainOutcome:
    """The chain's answer for one registrable domain."""

    domain: str
    company: Company | None
    steps: tuple[ProviderStep, ...]
    cache_before: CacheEntry | None
    cache_after: CacheEntry | None

    @property
    def errors(self) -> tuple[str, ...]:
        return tuple(f"{s.provider}: {s.detail}" for s in self.steps if s.status == "error")


@dataclass(frozen=True, slots=True)
class Explanation:
    """Everything `leadscore enrich EMAIL` shows."""

    email: str | None
    parsed: ParsedEmail
    enrichment: Enrichment
    outcome: DomainOutcome | None  # None when the address never reaches a provider
    remote_providers: tuple[str, ...] = ()  # the configured providers whose answers are cached

    @property
    def steps(self) -> tuple[ProviderStep, ...]:
        return self.outcome.steps if self.outcome is not None else ()


@dataclass
class EnrichStats:
    """Counters for a run summary."""

    addresses: int = 0
    domains: int = 0  # registrable domains resolved through the chain
    cache_hits: int = 0  # fresh cache entries used instead of asking remote providers
    by_kind: Counter[str] = field(default_factory=Counter)
    asked: Counter[str] = field(default_factory=Counter)  # provider → lookups
    errors: Counter[str] = field(default_factory=Counter)  # provider → errors


class Enricher:
    """E-mail addresses in, `Enrichment`s out. Pass `now`; nothing here reads the clock."""

    def __init__(
        self,
        providers: Sequence[Provider],
        cache: CompanyCache,
        hit_ttl_days: float = 30,
        miss_ttl_days: float = 10,
        *,
        lists: DomainLists | None = None,
    ) -> None:
        self.providers: tuple[Provider, ...] = tuple(providers)
        self.cache = cache
        self.policy = CachePolicy(hit_ttl_days, miss_ttl_days)
        self.lists = lists or load_domain_lists()
        self.stats = EnrichStats()
        self._remote = frozenset(p.name for p in self.providers if p.remote)

    def __repr__(self) -> str:
        names = ", ".join(p.name for p in self.providers)
        return f"Enricher(providers=[{names}], cache={self.cache!r})"

    def close(self) -> None:
        for provider in self.providers:
            close = getattr(provider, "close", None)
            if callable(close):
                close()

    # -- public API -------------------------------------------------------------------------

    def parse(self, email: str | None) -> ParsedEmail:
        return parse_email(email, self.lists)

    def enrich(self, email: str | None, now: datetime) -> Enrichment:
        """One address → Enrichment. Never raises for a bad address."""
        return self._enrich_one(email, _utc(now), {})

    def enrich_many(self, emails: Iterable[str], now: datetime) -> dict[str, Enrichment]:
        """Many addresses → {address: Enrichment}; each registrable domain is resolved once
        (1,000 people at acme.com → at most one call per remote provider)."""
        moment = _utc(now)
        memo: dict[str, DomainOutcome] = {}
        out: dict[str, Enrichment] = {}
        for email in emails:
            if email not in out:
                out[email] = self._enrich_one(email, moment, memo)
        return out

    def lookup_domain(self, domain: str, now: datetime) -> DomainOutcome:
        """Run the chain (with the cache) for one registrable domain."""
        return self._resolve(domain, _utc(now))

    def local_company(self, domain: str) -> Company | None:
        """What the local providers (a firmographics file...: no network, never cached) say
        of a registrable domain, the first that knows it: what `enrich` finds for the
        domain's people when no remote provider is asked. None: none knows it."""
        for provider in self.providers:
            if not provider.remote:
                result = self._ask(provider, domain)
                if result.status == "hit" and result.company is not None:
                    return result.company
        return None

    def explain(self, email: str | None, now: datetime, *, ask_all: bool = False) -> Explanation:
        """What the address parses to, what each provider said and what the cache holds.

        By default exactly what `enrich` does (same cache reads and writes). `ask_all=True`
        asks every provider, bypassing the cache and writing nothing: a comparison for a human.
        """
        moment = _utc(now)
        parsed = self.parse(email)
        outcome = None
        if parsed.kind == "corporate" and parsed.domain is not None:
            outcome = self._resolve(parsed.domain, moment, ask_all=ask_all)
        company = outcome.company if outcome is not None else None
        remote = tuple(p.name for p in self.providers if p.remote)
        return Explanation(email, parsed, _enrichment(parsed, company), outcome, remote)

    # -- the chain --------------------------------------------------------------------------

    def _enrich_one(
        self, email: str | None, now: datetime, memo: dict[str, DomainOutcome]
    ) -> Enrichment:
        parsed = self.parse(email)
        self.stats.addresses += 1
        self.stats.by_kind[parsed.kind] += 1
        company = None
        if parsed.kind == "corporate" and parsed.domain is not None:
            outcome = memo.get(parsed.domain)
            if outcome is None:
                outcome = memo[parsed.domain] = self._resolve(parsed.domain, now)
            company = outcome.company
        return _enrichment(parsed, company)

    def _resolve(self, domain: str, now: datetime, *, ask_all: bool = False) -> DomainOutcome:
        self.stats.domains += 1
        steps: list[ProviderStep] = []
        before = self.cache.get(domain)
        use_cache = not ask_all
        cache_read = False
        cached_miss: CacheEntry | None = None
        winner: ProviderResult | None = None
        winner_remote = False
        remote_missed: list[str] = []
        remote_failed = False

        for provider in self.providers:
            if winner is not None and not ask_all:
                steps.append(ProviderStep(provider.name, "skipped", "an earlier answer won"))
                continue
            if provider.remote and use_cache:
                if not cache_read:
                    cache_read = True
                    if before is not None and is_fresh(before, now):
                        if before.status == "hit" and before.company is not None:
                            self.stats.cache_hits += 1
                            until = f"{_utc(before.expires_at):%Y-%m-%d %H:%M} UTC"
                            steps.append(
                                ProviderStep(
                                    "cache",
                                    "cached",
                                    f"hit from {before.source}, cached until {until}",
                                    before.company,
                                )
                            )
                            steps.append(ProviderStep(provider.name, "skipped", "answer cached"))
                            winner = ProviderResult.hit(before.source, before.company)
                            continue
                        if self._remote <= entry_sources(before):
                            self.stats.cache_hits += 1
                            cached_miss = before
                if cached_miss is not None:
                    until = f"{_utc(cached_miss.expires_at):%Y-%m-%d %H:%M} UTC"
                    steps.append(
                        ProviderStep(provider.name, "cached", f"miss cached until {until}")
                    )
                    continue
            result = self._ask(provider, domain)
            company = result.company
            if result.status == "hit" and company is not None:
                if provider.remote and company.as_of is None:
                    company = dataclasses.replace(company, as_of=now.date().isoformat())
                if winner is None:
                    winner = dataclasses.replace(result, company=company)
                    winner_remote = provider.remote
            elif provider.remote and result.status == "miss":
                remote_missed.append(provider.name)
            elif provider.remote:
                remote_failed = True
            steps.append(
                ProviderStep(provider.name, result.status, result.detail, company, result.retryable)
            )

        after = before
        if use_cache:
            entry = None
            if winner_remote and winner is not None and winner.company is not None:
                entry = self.policy.hit(domain, winner.company, winner.provider, now)
            elif (
                not winner_remote
                and not remote_failed
                and remote_missed
                and set(remote_missed) == self._remote
            ):
                entry = self.policy.miss(domain, remote_missed, now)
            if entry is not None:
                self.cache.put(entry)
                after = entry
        answer = winner.company if winner is not None else None
        return DomainOutcome(domain, answer, tuple(steps), before, after)

    def _ask(self, provider: Provider, domain: str) -> ProviderResult:
        self.stats.asked[provider.name] += 1
        try:
            result = provider.lookup(domain)
        except Exception as exc:  # a provider bug must not stop a sync; it is not a miss
            log.error("%s: lookup failed for %s (%s)", provider.name, domain, type(exc).__name__)
            log.debug("%s: lookup traceback", provider.name, exc_info=True)
            result = ProviderResult.error(
                provider.name, f"lookup failed ({type(exc).__name__})", retryable=False
            )
        if result.status == "error":
            self.stats.errors[provider.name] += 1
        return result


def _enrichment(parsed: ParsedEmail, company: Company | None) -> Enrichment:
    if parsed.kind == "invalid":
        return Enrichment("invalid", error=parsed.reason or "invalid e-mail address")
    if parsed.kind == "corporate":
        return Enrichment("corporate", domain=parsed.domain, company=company)
    return Enrichment(parsed.kind, domain=parsed.domain)  # free / disposable / missing: no company


def _utc(now: datetime) -> datetime:
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def _local_provider(path: Path) -> LocalFirmographicsProvider | None:
    """The firmographics file; the embedded default may be absent (an installed package has no
    fixtures/): then a warning, not an error. Any other path must exist."""
    if path == DEFAULT_FIRMOGRAPHICS_PATH and not path.is_file():
        log.warning("no firmographics file at %s: local enrichment is off", path)
        return None
    return LocalFirmographicsProvider(path)


def build_enricher(
    settings: Settings,
    cache: CompanyCache | None = None,
    *,
    overrides_path: Path | None = None,
    session: requests.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Enricher:
    """The default chain from settings: local file → PDL (when `LEADSCORE_PDL_API_KEY` is
    set) → Apollo (when `LEADSCORE_APOLLO_API_KEY` is set) → domain heuristic.

    Config problems (a missing firmographics file, a bad override file) raise ConfigError here,
    before any contact is read.
    """
    policy = RetryPolicy(attempts=settings.retry_attempts, max_seconds=settings.retry_max_seconds)
    providers: list[Provider] = []
    if settings.firmographics_path is not None:
        local = _local_provider(Path(settings.firmographics_path))
        if local is not None:
            providers.append(local)
    for key, cls in (
        (settings.pdl_api_key, PeopleDataLabsProvider),
        (settings.apollo_api_key, ApolloProvider),
    ):
        if key is not None and key.get_secret_value():
            providers.append(
                cls(
                    key,
                    timeout=settings.request_timeout_seconds,
                    retry_policy=policy,
                    session=session,
                    sleep=sleep,
                    clock=clock,
                )
            )
    providers.append(HeuristicProvider())
    return Enricher(
        providers,
        cache if cache is not None else InMemoryCompanyCache(),
        settings.enrich_hit_ttl_days,
        settings.enrich_miss_ttl_days,
        lists=load_domain_lists(overrides_path or settings.freemail_path),
    )


def offline_enricher(
    firmographics_path: Path | None = DEFAULT_FIRMOGRAPHICS_PATH,
    freemail_path: Path | None = None,
) -> Enricher:
    """An enricher over the local firmographics file and the domain heuristic only, with an
    in-memory cache: it never calls out."""
    providers: list[Provider] = []
    if firmographics_path is not None:
        local = _local_provider(Path(firmographics_path))
        if local is not None:
            providers.append(local)
    providers.append(HeuristicProvider())
    return Enricher(providers, InMemoryCompanyCache(), lists=load_domain_lists(freemail_path))


def offline_enrich_fn(
    firmographics_path: Path | None = DEFAULT_FIRMOGRAPHICS_PATH,
    freemail_path: Path | None = None,
) -> Callable[[list[str], datetime], dict[str, Enrichment]]:
    """`enrich_many` of `offline_enricher`: for offline scoring, which never calls out."""
    enricher = offline_enricher(firmographics_path, freemail_path)

    def enrich(emails: list[str], now: datetime) -> dict[str, Enrichment]:
        return enricher.enrich_many(emails, now)

    return enrich
