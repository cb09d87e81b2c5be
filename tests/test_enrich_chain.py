"""The enricher: provider chain, cache policy (hits ~30 days, misses ~10, errors never), one
lookup per domain however many people share it, and the factory from Settings."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import responses
from pydantic import SecretStr

from connector.enrich.cache import (
    CacheEntry,
    CachePolicy,
    InMemoryCompanyCache,
    entry_from_row,
    entry_to_row,
)
from connector.enrich.enricher import Enricher, ProviderStep, build_enricher, offline_enrich_fn
from connector.enrich.providers import (
    ApolloProvider,
    HeuristicProvider,
    LocalFirmographicsProvider,
    PeopleDataLabsProvider,
    ProviderResult,
)
from connector.errors import ConfigError
from connector.retry import RetryPolicy
from connector.settings import FIXTURES_DIR, load_settings
from connector.types import Company, Enrichment

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
PDL_KEY = "pdl-SECRET-0123456789abcdef"
APOLLO_KEY = "apollo-SECRET-fedcba9876543210"
PDL_URL = "https://api.peopledatalabs.com/v5/company/enrich"
APOLLO_URL = "https://api.apollo.io/api/v1/organizations/enrich"
PDL_BODY = {
    "status": 200,
    "display_name": "BigCo Example",
    "size": "1001-5000",
    "employee_count": 2345,
    "founded": 1999,
    "industry": "computer software",
    "location": {"country": "united states"},
}
APOLLO_BODY = {
    "organization": {
        "name": "BigCo Example",
        "industry": "marketing & advertising",
        "estimated_num_employees": 180,
        "annual_revenue": 21000000,
        "country": "Germany",
    }
}
BIGCO = Company(
    domain="bigco-example.com",
    name="BigCo Example",
    industry="computer software",
    employee_count=2345,
    employee_range="1001-5000",
    country="US",
    founded_year=1999,
    source="pdl",
    as_of="2026-11-02",
)
POLICY = RetryPolicy(attempts=3, base_seconds=0.0, max_seconds=0.0, seed=1)


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def _no_sleep(_: float) -> None:
    return None


def _http(cls: type[PeopleDataLabsProvider] | type[ApolloProvider], key: str) -> object:
    return cls(
        SecretStr(key),
        retry_policy=POLICY,
        min_interval_seconds=0.0,
        cooldown_seconds=0.0,
        sleep=_no_sleep,
    )


@pytest.fixture
def cache() -> InMemoryCompanyCache:
    return InMemoryCompanyCache()


@pytest.fixture
def enricher(cache: InMemoryCompanyCache) -> Enricher:
    """The full default chain: local fixture → PDL → Apollo → heuristic."""
    return Enricher(
        [
            LocalFirmographicsProvider(FIXTURES_DIR / "firmographics.csv"),
            _http(PeopleDataLabsProvider, PDL_KEY),  # type: ignore[list-item]
            _http(ApolloProvider, APOLLO_KEY),  # type: ignore[list-item]
            HeuristicProvider(),
        ],
        cache,
        hit_ttl_days=30,
        miss_ttl_days=10,
    )


def _urls(rsps: responses.RequestsMock) -> list[str]:
    return [c.request.url or "" for c in rsps.calls]


# ------------------------------------------------------------------ the chain


def test_local_hit_needs_no_call_and_no_cache(
    rsps: responses.RequestsMock, enricher: Enricher, cache: InMemoryCompanyCache
) -> None:
    result = enricher.enrich("dana.whitfield@mail.eu.acme-analytics.com", NOW)
    assert result.email_kind == "corporate" and result.domain == "acme-analytics.com"
    assert result.company is not None and result.company.name == "Acme Analytics"
    assert (result.company.source, result.company.as_of) == ("local_csv", "2026-10-01")
    assert len(rsps.calls) == 0
    assert cache.entries() == {}


def test_multi_part_suffix_company_from_the_fixture(enricher: Enricher) -> None:
    result = enricher.enrich("t@ops.london.globex.co.uk", NOW)
    assert result.domain == "globex.co.uk"
    assert result.company is not None and result.company.employee_count == 12000


def test_remote_hit_is_cached_for_the_hit_ttl(
    rsps: responses.RequestsMock, enricher: Enricher, cache: InMemoryCompanyCache
) -> None:
    rsps.get(PDL_URL, json=PDL_BODY)
    result = enricher.enrich("pat@bigco-example.com", NOW)
    assert result == Enrichment("corporate", domain="bigco-example.com", company=BIGCO)
    assert _urls(rsps) == [f"{PDL_URL}?website=bigco-example.com"]  # Apollo not asked
    assert cache.entries() == {
        "bigco-example.com": CacheEntry(
            "bigco-example.com", "hit", BIGCO, "pdl", NOW, NOW + timedelta(days=30)
        )
    }


def test_miss_falls_through_to_the_next_provider(
    rsps: responses.RequestsMock, enricher: Enricher, cache: InMemoryCompanyCache
) -> None:
    rsps.get(PDL_URL, status=404)
    rsps.get(APOLLO_URL, json=APOLLO_BODY)
    result = enricher.enrich("pat@bigco-example.com", NOW)
    assert result.company is not None
    assert (result.company.source, result.company.industry, result.company.country) == (
        "apollo",
        "marketing and advertising",
        "DE",
    )
    assert _urls(rsps) == [
        f"{PDL_URL}?website=bigco-example.com",
        f"{APOLLO_URL}?domain=bigco-example.com",
    ]
    entry = cache.get("bigco-example.com")
    assert entry is not None and (entry.status, entry.source) == ("hit", "apollo")


def test_all_remote_misses_are_cached_as_a_miss_and_the_heuristic_answers(
    rsps: responses.RequestsMock, enricher: Enricher, cache: InMemoryCompanyCache
) -> None:
    rsps.get(PDL_URL, status=404)
    rsps.get(APOLLO_URL, json={})
    result = enricher.enrich("kai@unbekannt-gmbh.de", NOW)
    assert result.company == Company(domain="unbekannt-gmbh.de", country="DE", source="heuristic")
    assert cache.entries() == {
        "unbekannt-gmbh.de": CacheEntry(
            "unbekannt-gmbh.de", "miss", None, "pdl+apollo", NOW, NOW + timedelta(days=10)
        )
    }
    # within the miss TTL nobody is asked again; the heuristic still answers (it is free)
    again = enricher.enrich("lea@unbekannt-gmbh.de", NOW + timedelta(days=9))
    assert again.company == result.company
    assert len(rsps.calls) == 2
    # after it, both are asked again
    enricher.enrich("lea@unbekannt-gmbh.de", NOW + timedelta(days=10, seconds=1))
    assert len(rsps.calls) == 4


def test_com_domain_with_no_data_has_no_company(
    rsps: responses.RequestsMock, enricher: Enricher
) -> None:
    rsps.get(PDL_URL, status=404)
    rsps.get(APOLLO_URL, status=404)
    assert enricher.enrich("kai@nobody-example.com", NOW) == Enrichment(
        "corporate", domain="nobody-example.com"
    )


def test_hit_ttl_expiry(
    rsps: responses.RequestsMock, enricher: Enricher, cache: InMemoryCompanyCache
) -> None:
    rsps.get(PDL_URL, json=PDL_BODY)
    enricher.enrich("pat@bigco-example.com", NOW)
    enricher.enrich("pat@bigco-example.com", NOW + timedelta(days=29, hours=23))
    assert len(rsps.calls) == 1
    later = NOW + timedelta(days=30, seconds=1)
    result = enricher.enrich("pat@bigco-example.com", later)
    assert len(rsps.calls) == 2
    assert result.company is not None and result.company.as_of == later.date().isoformat()
    entry = cache.get("bigco-example.com")
    assert entry is not None and entry.expires_at == later + timedelta(days=30)


def test_429_is_retried_then_not_cached(
    rsps: responses.RequestsMock, enricher: Enricher, cache: InMemoryCompanyCache
) -> None:
    rsps.get(PDL_URL, status=429)
    rsps.get(APOLLO_URL, status=404)
    result = enricher.enrich("pat@bigco-example.com", NOW)
    # the error falls through (Apollo asked), but it is an error, not a miss: nothing cached
    assert result == Enrichment("corporate", domain="bigco-example.com")
    assert _urls(rsps) == [f"{PDL_URL}?website=bigco-example.com"] * 3 + [
        f"{APOLLO_URL}?domain=bigco-example.com"
    ]
    assert cache.entries() == {}
    assert enricher.stats.errors["pdl"] == 1
    # the next run asks again, and this time PDL answers
    rsps.replace(responses.GET, PDL_URL, json=PDL_BODY)
    assert enricher.enrich("pat@bigco-example.com", NOW).company == BIGCO
    assert cache.get("bigco-example.com") is not None


def test_timeout_is_not_cached(
    rsps: responses.RequestsMock, enricher: Enricher, cache: InMemoryCompanyCache
) -> None:
    rsps.get(PDL_URL, status=404)
    rsps.get(APOLLO_URL, body=requests.exceptions.ConnectTimeout("connect timed out"))
    outcome = enricher.lookup_domain("bigco-example.com", NOW)
    assert outcome.company is None
    assert outcome.errors == ("apollo: timed out after 10s (gave up after 3 attempts)",)
    assert len(rsps.calls) == 1 + 3
    assert cache.entries() == {}


def test_one_lookup_for_a_thousand_people_at_one_company(
    rsps: responses.RequestsMock, enricher: Enricher, cache: InMemoryCompanyCache
) -> None:
    rsps.get(PDL_URL, json=PDL_BODY)
    emails = [f"person{i}@bigco-example.com" for i in range(1000)]
    emails += [f"p{i}@eu.bigco-example.com" for i in range(10)]  # sub-domain, same company
    found = enricher.enrich_many(emails, NOW)
    assert len(found) == 1010
    assert {e.company for e in found.values()} == {BIGCO}
    assert len(rsps.calls) == 1
    # the next run, within the TTL: no call at all
    enricher.enrich_many(emails[:500], NOW + timedelta(days=1))
    assert len(rsps.calls) == 1
    assert cache.puts == 1


def test_a_failing_provider_is_tried_once_per_run_not_once_per_person(
    rsps: responses.RequestsMock, enricher: Enricher
) -> None:
    rsps.get(PDL_URL, status=503)
    rsps.get(APOLLO_URL, status=404)
    enricher.enrich_many([f"person{i}@bigco-example.com" for i in range(1000)], NOW)
    assert len(rsps.calls) == POLICY.attempts + 1


@pytest.mark.parametrize(
    "email",
    ["riley.chen1987@gmail.com", "jane@eu.hey.com", "x@mailinator.com", "x@a.10minutemail.com"],
)
def test_free_and_disposable_mail_never_get_a_company(
    rsps: responses.RequestsMock, enricher: Enricher, cache: InMemoryCompanyCache, email: str
) -> None:
    # a provider would happily "find" Google for gmail.com: it must not be asked (bug 17)
    rsps.get(PDL_URL, json={**PDL_BODY, "display_name": "Google"})
    rsps.get(APOLLO_URL, json={"organization": {"name": "Google"}})
    result = enricher.enrich(email, NOW)
    assert result.email_kind in ("free", "disposable")
    assert result.company is None and result.error is None
    assert len(rsps.calls) == 0
    assert cache.entries() == {}


def test_a_cached_miss_is_rechecked_when_a_provider_is_added(
    rsps: responses.RequestsMock, enricher: Enricher, cache: InMemoryCompanyCache
) -> None:
    cache.put(CachePolicy().miss("bigco-example.com", ["pdl"], NOW))  # before Apollo was set up
    rsps.get(PDL_URL, status=404)
    rsps.get(APOLLO_URL, json=APOLLO_BODY)
    result = enricher.enrich("pat@bigco-example.com", NOW + timedelta(days=1))
    assert result.company is not None and result.company.source == "apollo"
    assert len(rsps.calls) == 2


def test_local_file_beats_a_cached_remote_hit(
    enricher: Enricher, cache: InMemoryCompanyCache
) -> None:
    stale = Company(domain="initech.com", name="Initech (old)", source="pdl")
    cache.put(CachePolicy().hit("initech.com", stale, "pdl", NOW))
    result = enricher.enrich("peter@initech.com", NOW)
    assert result.company is not None and result.company.name == "Initech"


class _Exploding:
    name = "exploding"
    remote = True

    def lookup(self, domain: str) -> ProviderResult:
        raise RuntimeError("provider bug")


def test_a_provider_that_raises_is_an_error_not_a_crash(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = InMemoryCompanyCache()
    enricher = Enricher([_Exploding(), HeuristicProvider()], cache)
    with caplog.at_level(logging.ERROR):
        outcome = enricher.lookup_domain("bigco-example.de", NOW)
    assert outcome.company == Company(domain="bigco-example.de", country="DE", source="heuristic")
    assert outcome.errors == ("exploding: lookup failed (RuntimeError)",)
    assert cache.entries() == {}
    assert "lookup failed for bigco-example.de (RuntimeError)" in caplog.text


def test_explain_shows_each_step_and_the_cache(
    rsps: responses.RequestsMock, enricher: Enricher
) -> None:
    rsps.get(PDL_URL, status=404)
    rsps.get(APOLLO_URL, json=APOLLO_BODY)
    first = enricher.explain("pat@bigco-example.com", NOW)
    assert [(s.provider, s.status) for s in first.steps] == [
        ("local", "miss"),
        ("pdl", "miss"),
        ("apollo", "hit"),
        ("heuristic", "skipped"),
    ]
    assert first.outcome is not None
    assert first.outcome.cache_before is None
    assert first.outcome.cache_after is not None and first.outcome.cache_after.source == "apollo"
    assert first.remote_providers == ("pdl", "apollo")
    second = enricher.explain("pat@bigco-example.com", NOW + timedelta(hours=1))
    assert [(s.provider, s.status) for s in second.steps] == [
        ("local", "miss"),
        ("cache", "cached"),
        ("pdl", "skipped"),
        ("apollo", "skipped"),
        ("heuristic", "skipped"),
    ]
    assert second.steps[1].detail == "hit from apollo, cached until 2026-12-02 09:00 UTC"
    assert second.enrichment == first.enrichment
    assert len(rsps.calls) == 2
    # a cached miss names each provider it covers
    rsps.replace(responses.GET, APOLLO_URL, status=404)
    enricher.explain("kai@nobody-example.com", NOW)
    third = enricher.explain("kai@nobody-example.com", NOW)
    assert [(s.provider, s.status) for s in third.steps] == [
        ("local", "miss"),
        ("pdl", "cached"),
        ("apollo", "cached"),
        ("heuristic", "miss"),
    ]
    assert third.steps[1].detail == "miss cached until 2026-11-12 09:00 UTC"


def test_explain_ask_all_asks_everyone_and_writes_nothing(
    rsps: responses.RequestsMock, enricher: Enricher, cache: InMemoryCompanyCache
) -> None:
    rsps.get(PDL_URL, json=PDL_BODY)
    rsps.get(APOLLO_URL, json=APOLLO_BODY)
    cache.put(CachePolicy().miss("bigco-example.com", ["pdl", "apollo"], NOW))
    result = enricher.explain("pat@bigco-example.com", NOW, ask_all=True)
    assert [(s.provider, s.status) for s in result.steps] == [
        ("local", "miss"),
        ("pdl", "hit"),
        ("apollo", "hit"),
        ("heuristic", "miss"),
    ]
    assert result.enrichment.company == BIGCO  # the first hit is still the answer
    assert len(rsps.calls) == 2
    assert result.outcome is not None
    assert result.outcome.cache_after == result.outcome.cache_before  # nothing written
    assert cache.puts == 1


def test_explain_free_mail_asks_nobody(enricher: Enricher) -> None:
    result = enricher.explain("x@gmail.com", NOW)
    assert result.outcome is None and result.steps == ()
    assert result.enrichment == Enrichment("free", domain="gmail.com")


def test_naive_now_is_utc(rsps: responses.RequestsMock, enricher: Enricher) -> None:
    rsps.get(PDL_URL, json=PDL_BODY)
    enricher.enrich("pat@bigco-example.com", datetime(2026, 11, 2, 9, 0))
    enricher.enrich("pat@bigco-example.com", NOW + timedelta(days=1))
    assert len(rsps.calls) == 1


# ------------------------------------------------------------------ cache protocol


def test_cache_entry_invariants() -> None:
    company = Company(domain="a.com", source="pdl")
    later = NOW + timedelta(days=1)
    with pytest.raises(ValueError, match="a hit has a company"):
        CacheEntry("a.com", "hit", None, "pdl", NOW, later)
    with pytest.raises(ValueError, match="a hit has a company"):
        CacheEntry("a.com", "miss", company, "pdl", NOW, later)
    with pytest.raises(ValueError, match="timezone-aware"):
        CacheEntry("a.com", "miss", None, "pdl", datetime(2026, 1, 1), later)
    with pytest.raises(ValueError, match="hit or miss"):
        CacheEntry("a.com", "error", None, "pdl", NOW, later)  # type: ignore[arg-type]
    entry = CacheEntry("a.com", "hit", company, "pdl", NOW, later)
    assert entry.is_fresh(NOW) and not entry.is_fresh(later)


def test_cache_rows_round_trip() -> None:
    policy = CachePolicy(hit_ttl_days=30, miss_ttl_days=7)
    for entry in (
        policy.hit("bigco-example.com", BIGCO, "pdl", NOW),
        policy.miss("nobody.com", ["pdl", "apollo"], NOW),
    ):
        row = entry_to_row(entry)
        assert set(row) == {
            "domain",
            "status",
            "source",
            "fetched_at",
            "expires_at",
            "company_json",
        }
        assert entry_from_row(row) == entry
    assert policy.miss("nobody.com", ["pdl"], NOW).expires_at == NOW + timedelta(days=7)


def test_the_enricher_accepts_a_store_record_with_the_same_fields() -> None:
    """A store may return its own record type (same fields, plain `source`): field access only."""
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Row:
        domain: str
        status: str
        company: Company | None
        source: str | None
        fetched_at: datetime
        expires_at: datetime

    class Store:
        def __init__(self) -> None:
            self.rows: dict[str, object] = {}

        def get(self, domain: str) -> object:
            return self.rows.get(domain)

        def put(self, entry: object) -> None:
            self.rows[entry.domain] = entry  # type: ignore[attr-defined]

    store = Store()
    store.rows["bigco-example.com"] = Row(
        "bigco-example.com", "hit", BIGCO, "pdl", NOW, NOW + timedelta(days=30)
    )
    enricher = Enricher([_Exploding(), HeuristicProvider()], store)  # type: ignore[arg-type]
    assert enricher.enrich("pat@bigco-example.com", NOW).company == BIGCO


# ------------------------------------------------------------------ factory


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no leadscore.env picked up
    for name in (
        "LEADSCORE_PDL_API_KEY",
        "LEADSCORE_APOLLO_API_KEY",
        "LEADSCORE_FIRMOGRAPHICS_PATH",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("clean_env")
def test_build_enricher_from_settings() -> None:
    bare = build_enricher(load_settings())
    assert [p.name for p in bare.providers] == ["local", "heuristic"]
    keyed = build_enricher(
        load_settings(
            pdl_api_key=SecretStr(PDL_KEY),
            apollo_api_key=SecretStr(APOLLO_KEY),
            enrich_hit_ttl_days=20,
            enrich_miss_ttl_days=7,
            request_timeout_seconds=5,
        )
    )
    assert [p.name for p in keyed.providers] == ["local", "pdl", "apollo", "heuristic"]
    assert keyed.policy == CachePolicy(20, 7)
    assert isinstance(keyed.providers[1], PeopleDataLabsProvider)
    assert keyed.providers[1].timeout == 5
    assert PDL_KEY not in repr(keyed) and APOLLO_KEY not in repr(keyed.providers)
    no_file = build_enricher(load_settings(firmographics_path=None))
    assert [p.name for p in no_file.providers] == ["heuristic"]


@pytest.mark.usefixtures("clean_env")
def test_build_enricher_uses_the_given_cache() -> None:
    cache = InMemoryCompanyCache()
    assert build_enricher(load_settings(), cache).cache is cache


def test_offline_enrich_fn() -> None:
    enrich = offline_enrich_fn()
    found = enrich(["a@initech.com", "b@gmail.com", "c@unknown-gmbh.de", "nope"], NOW)
    assert found["a@initech.com"].company is not None
    assert found["b@gmail.com"] == Enrichment("free", domain="gmail.com")
    assert found["c@unknown-gmbh.de"].company == Company(
        domain="unknown-gmbh.de", country="DE", source="heuristic"
    )
    assert found["nope"].email_kind == "invalid"


def test_stats_count_kinds_calls_and_cache_hits(
    rsps: responses.RequestsMock, enricher: Enricher
) -> None:
    rsps.get(PDL_URL, json=PDL_BODY)
    enricher.enrich_many(["a@bigco-example.com", "b@gmail.com", "c@initech.com"], NOW)
    enricher.enrich("d@bigco-example.com", NOW)
    stats = enricher.stats
    assert (stats.addresses, stats.cache_hits) == (4, 1)
    assert stats.by_kind == {"corporate": 3, "free": 1}
    assert stats.asked["pdl"] == 1


def test_step_is_plain_data() -> None:
    step = ProviderStep("pdl", "miss", "no match (HTTP 404)")
    assert step.company is None and not step.retryable


@pytest.mark.usefixtures("clean_env")
def test_missing_default_firmographics_is_a_warning_not_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import connector.enrich.enricher as enricher_module

    absent = tmp_path / "fixtures" / "firmographics.csv"  # as in an installed package
    monkeypatch.setattr(enricher_module, "DEFAULT_FIRMOGRAPHICS_PATH", absent)
    with caplog.at_level(logging.WARNING):
        built = build_enricher(load_settings(firmographics_path=absent))
    assert [p.name for p in built.providers] == ["heuristic"]
    assert "local enrichment is off" in caplog.text
    with pytest.raises(ConfigError, match="firmographics file not found"):
        build_enricher(load_settings(firmographics_path=tmp_path / "typo.csv"))
