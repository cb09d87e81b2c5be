"""Providers: the local firmographics file, People Data Labs and Apollo over mocked HTTP
(`responses`: nothing reaches a real host), and the heuristic that invents nothing."""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import responses
from pydantic import SecretStr
from responses import matchers

from connector.enrich.providers import (
    EMPLOYEE_RANGES,
    FIRMOGRAPHICS_COLUMNS,
    ApolloProvider,
    HeuristicProvider,
    LocalFirmographicsProvider,
    PeopleDataLabsProvider,
    ProviderResult,
    canonical_industry,
    employee_range_for,
    revenue_range_for,
)
from connector.errors import ConfigError
from connector.retry import RetryPolicy
from connector.settings import FIXTURES_DIR
from connector.types import Company

FIXTURE = FIXTURES_DIR / "firmographics.csv"
PDL_KEY = "pdl-SECRET-0123456789abcdef"
APOLLO_KEY = "apollo-SECRET-fedcba9876543210"
PDL_URL = "https://api.peopledatalabs.com/v5/company/enrich"
APOLLO_URL = "https://api.apollo.io/api/v1/organizations/enrich"

PDL_BODY = {
    "status": 200,
    "likelihood": 6,
    "id": "tnHcNHbCv8MKeLh92946LAkX6PKg",
    "name": "bigco example",
    "display_name": "BigCo Example",
    "size": "1001-5000",
    "employee_count": 2345,
    "founded": 1999,
    "industry": "computer software",
    "inferred_revenue": "$100M-$250M",
    "location": {"name": "austin, texas, united states", "country": "united states"},
    "website": "bigco-example.com",
}
APOLLO_BODY = {
    "organization": {
        "id": "5e66b6381e05b4008c8331b8",
        "name": "BigCo Example",
        "website_url": "http://www.bigco-example.com",
        "primary_domain": "bigco-example.com",
        "industry": "information technology & services",
        "estimated_num_employees": 910,
        "founded_year": 2015,
        "annual_revenue": 100000000.0,
        "annual_revenue_printed": "100M",
        "country": "United Kingdom",
    }
}


class FakeTime:
    """A monotonic clock that only the (fake) sleep moves."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


POLICY = RetryPolicy(attempts=3, base_seconds=0.01, max_seconds=0.05, seed=7)


def pdl(fake_time: FakeTime, **kw: object) -> PeopleDataLabsProvider:
    opts: dict[str, object] = {"retry_policy": POLICY, "min_interval_seconds": 0.0}
    opts.update(kw)
    return PeopleDataLabsProvider(
        SecretStr(PDL_KEY),
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        **opts,  # type: ignore[arg-type]
    )


def apollo(fake_time: FakeTime, **kw: object) -> ApolloProvider:
    opts: dict[str, object] = {"retry_policy": POLICY, "min_interval_seconds": 0.0}
    opts.update(kw)
    return ApolloProvider(
        SecretStr(APOLLO_KEY),
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        **opts,  # type: ignore[arg-type]
    )


# ------------------------------------------------------------------ local firmographics


DEMO = {
    "acme-analytics.com": ("Acme Analytics", "computer software", 850, "501-1000", 120e6, "US"),
    "initech.com": ("Initech", "information technology and services", 300, "201-500", 45e6, "CA"),
    "globex.co.uk": ("Globex", "financial services", 12000, "10001+", 2.1e9, "GB"),
    "northwind-logistics.com": (
        "Northwind Logistics",
        "logistics and supply chain",
        2400,
        "1001-5000",
        400e6,
        "DE",
    ),
    "umbrella-health.com": (
        "Umbrella Health",
        "hospital & health care",
        7000,
        "5001-10000",
        900e6,
        "US",
    ),
    "hooli.io": ("Hooli", "internet", 1500, "1001-5000", 250e6, "US"),
    "stark-industries.com": ("Stark Industries", "machinery", 40000, "10001+", 9e9, "US"),
    "wayne-enterprises.com": (
        "Wayne Enterprises",
        "financial services",
        25000,
        "10001+",
        5e9,
        "US",
    ),
    "tinyshop.io": ("TinyShop", "retail", 4, "1-10", 300000.0, "US"),
    "rivalscore.io": ("RivalScore", "computer software", 120, "51-200", 15e6, "US"),
    "stanford.edu": ("Stanford University", "higher education", 15000, "10001+", None, "US"),
}


@pytest.mark.parametrize("domain", sorted(DEMO))
def test_fixture_has_the_demo_companies(domain: str) -> None:
    name, industry, count, size, revenue, country = DEMO[domain]
    result = LocalFirmographicsProvider(FIXTURE).lookup(domain)
    assert result.status == "hit" and result.company is not None
    c = result.company
    assert (c.domain, c.name, c.industry, c.employee_count, c.employee_range) == (
        domain,
        name,
        industry,
        count,
        size,
    )
    assert (c.annual_revenue_usd, c.country) == (revenue, country)
    assert (c.source, c.as_of) == ("local_csv", "2026-10-01")


def test_fixture_is_clean_and_consistent() -> None:
    provider = LocalFirmographicsProvider(FIXTURE)
    assert provider.warnings == []
    assert 55 <= len(provider) <= 70
    with FIXTURE.open(encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == FIRMOGRAPHICS_COLUMNS
        for row in reader:
            count = int(row["employee_count"])
            assert row["employee_range"] in EMPLOYEE_RANGES
            assert row["employee_range"] == employee_range_for(count), row["domain"]
            if row["annual_revenue_usd"]:
                assert row["revenue_range"] == revenue_range_for(float(row["annual_revenue_usd"]))
            assert (row["source"], row["as_of"]) == ("local_csv", "2026-10-01")


def test_fixture_aliases_point_at_the_company() -> None:
    provider = LocalFirmographicsProvider(FIXTURE)
    result = provider.lookup("globex.com")
    assert result.status == "hit" and result.company is not None
    assert result.company.domain == "globex.co.uk"
    assert "alias of globex.co.uk" in result.detail
    assert provider.lookup("nobody-here.com") == ProviderResult.miss(
        "local", "not in firmographics.csv"
    )


def test_bad_rows_are_skipped_with_a_warning_naming_file_and_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "export.csv"
    header = ",".join(FIRMOGRAPHICS_COLUMNS)
    lines = [
        header,
        "good.com,Good,retail,retail,12,11-50,1000000,,US,2001,good.de;good.fr,,2026-10-01",  # 2
        "lots.com,Lots,retail,retail,lots,,,,US,,,,",  # 3
        "atlantis.com,Atlantis,retail,retail,10,,,,Atlantis,,,,",  # 4
        "not a domain,X,,,,,,,,,,,",  # 5
        "good.com,Again,,,,,,,,,,,",  # 6: duplicate
        "wide.com,Wide,,,,,,,,,,,,extra",  # 7: more fields than columns
        "dated.com,Dated,,,,,,,,,,,01/10/2026",  # 8
        ",No Domain,,,,,,,,,,,",  # 9
        "sized.com,Sized,,,10,10-20,,,,,,,",  # 10
        "",  # 11: blank, ignored
        "WWW.Fine-Co.CO.UK,Fine Co,,,1,234,,,,gb,,,vendor_x,",  # 12 (quoted below)
    ]
    lines[-1] = 'WWW.Fine-Co.CO.UK,Fine Co,,,"1,234",,,,gb,,,vendor_x,'
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="connector.enrich"):
        provider = LocalFirmographicsProvider(path)
    assert len(provider) == 2
    good = provider.lookup("good.fr").company
    assert good is not None and good.domain == "good.com" and good.employee_range == "11-50"
    assert good.revenue_range == "$1M-$10M" and good.source == "local_csv"
    fine = provider.lookup("fine-co.co.uk").company
    assert fine is not None
    assert (fine.employee_count, fine.employee_range, fine.country, fine.source) == (
        1234,
        "1001-5000",
        "GB",
        "vendor_x",
    )
    expected = {
        3: "employee_count 'lots' is not a number",
        4: "country 'Atlantis' is not an ISO 3166-1 alpha-2 code",
        5: "domain 'not a domain' is not a domain",
        6: "duplicate domain good.com (first at",
        7: "more fields than the header has columns",
        8: "as_of '01/10/2026' is not a date",
        9: "domain is empty",
        10: "employee_range '10-20' is not one of",
    }
    assert len(provider.warnings) == len(expected)
    for warning, (line, text) in zip(provider.warnings, sorted(expected.items()), strict=True):
        assert warning.startswith(f"{path}:{line}: row skipped: "), warning
        assert text in warning
        assert "\n" not in warning
    assert [r.getMessage() for r in caplog.records] == provider.warnings


def test_json_firmographics(tmp_path: Path) -> None:
    path = tmp_path / "firmographics.json"
    path.write_text(
        json.dumps(
            {
                "companies": [
                    {
                        "domain": "json-co.com",
                        "name": "Json Co",
                        "employee_count": 77,
                        "domain_aliases": ["json-co.de"],
                        "country": "Germany",
                    },
                    {"domain": "broken.com", "employee_count": -5},
                    "not an object",
                ]
            }
        ),
        encoding="utf-8",
    )
    provider = LocalFirmographicsProvider(path)
    company = provider.lookup("json-co.de").company
    assert company == Company(
        domain="json-co.com",
        name="Json Co",
        employee_count=77,
        employee_range="51-200",
        country="DE",
        source="local_json",
    )
    assert [w.split(": row skipped")[0] for w in provider.warnings] == [
        f"{path}: item 2",
        f"{path}: item 3",
    ]


def test_unusable_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        LocalFirmographicsProvider(tmp_path / "missing.csv")
    no_domain = tmp_path / "no_domain.csv"
    no_domain.write_text("name,industry\nAcme,software\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no 'domain' column"):
        LocalFirmographicsProvider(no_domain)


# ------------------------------------------------------------------ heuristic


@pytest.mark.parametrize(
    ("domain", "country"),
    [
        ("unknown-gmbh.de", "DE"),
        ("somefirm.co.uk", "GB"),
        ("somefirm.uk", "GB"),
        ("firme.fr", "FR"),
        ("xn--bcher-kva.de", "DE"),
        ("somefirm.com", None),
        ("somefirm.io", None),  # a ccTLD used as a generic name
        ("somefirm.ai", None),
        ("somefirm.eu", None),
        ("somefirm.org", None),
    ],
)
def test_heuristic_invents_nothing(domain: str, country: str | None) -> None:
    result = HeuristicProvider().lookup(domain)
    if country is None:
        assert result.status == "miss" and result.company is None
    else:
        assert result.status == "hit"
        assert result.company == Company(domain=domain, country=country, source="heuristic")


# ------------------------------------------------------------------ People Data Labs


def test_pdl_hit_maps_fields_and_sends_the_key_in_a_header(
    rsps: responses.RequestsMock, fake_time: FakeTime
) -> None:
    rsps.get(
        PDL_URL,
        json=PDL_BODY,
        match=[
            matchers.query_param_matcher({"website": "bigco-example.com"}),
            matchers.header_matcher({"X-Api-Key": PDL_KEY}),
        ],
    )
    result = pdl(fake_time).lookup("bigco-example.com")
    assert result == ProviderResult.hit(
        "pdl",
        Company(
            domain="bigco-example.com",
            name="BigCo Example",
            industry="computer software",
            employee_count=2345,
            employee_range="1001-5000",
            revenue_range="$100M-$250M",
            country="US",
            founded_year=1999,
            source="pdl",
        ),
        "HTTP 200",
    )
    assert [c.request.url for c in rsps.calls] == [f"{PDL_URL}?website=bigco-example.com"]
    assert PDL_KEY not in (rsps.calls[0].request.url or "")


def test_pdl_404_is_a_miss(rsps: responses.RequestsMock, fake_time: FakeTime) -> None:
    rsps.get(
        PDL_URL,
        status=404,
        json={"status": 404, "error": {"type": "not_found", "message": "No records were found"}},
    )
    result = pdl(fake_time).lookup("nobody-example.com")
    assert (result.status, result.detail) == ("miss", "no match (HTTP 404)")
    assert len(rsps.calls) == 1


def test_pdl_429_is_retried_then_answers(rsps: responses.RequestsMock, fake_time: FakeTime) -> None:
    rsps.get(PDL_URL, status=429, headers={"Retry-After": "2"}, json={"error": "slow down"})
    rsps.get(PDL_URL, status=503)
    rsps.get(PDL_URL, json=PDL_BODY)
    result = pdl(fake_time).lookup("bigco-example.com")
    assert result.status == "hit"
    assert len(rsps.calls) == 3
    assert fake_time.sleeps[0] == POLICY.max_seconds  # Retry-After 2 s, capped by the policy
    assert len(fake_time.sleeps) == 2


def test_pdl_429_until_retries_run_out_is_a_retryable_error_then_a_pause(
    rsps: responses.RequestsMock, fake_time: FakeTime
) -> None:
    rsps.get(PDL_URL, status=429)
    provider = pdl(fake_time, cooldown_seconds=60.0)
    result = provider.lookup("bigco-example.com")
    assert (result.status, result.retryable) == ("error", True)
    assert result.detail == "HTTP 429 (rate limited) (gave up after 3 attempts)"
    assert len(rsps.calls) == POLICY.attempts
    paused = provider.lookup("other-example.com")  # no request while paused
    assert paused.status == "error" and paused.retryable and "paused" in paused.detail
    assert len(rsps.calls) == POLICY.attempts
    fake_time.now += 61
    rsps.replace(responses.GET, PDL_URL, json=PDL_BODY)
    assert provider.lookup("other-example.com").status == "hit"


def test_pdl_timeout_is_retried_then_a_retryable_error(
    rsps: responses.RequestsMock, fake_time: FakeTime
) -> None:
    rsps.get(PDL_URL, body=requests.exceptions.ReadTimeout("read timed out"))
    result = pdl(fake_time, timeout=4.0).lookup("bigco-example.com")
    assert (result.status, result.retryable) == ("error", True)
    assert result.detail == "timed out after 4s (gave up after 3 attempts)"
    assert len(rsps.calls) == 3


def test_http_timeout_is_passed_to_requests(fake_time: FakeTime) -> None:
    seen: list[object] = []

    class Session(requests.Session):
        def get(self, url: str | bytes, **kw: object) -> requests.Response:
            seen.append(kw.get("timeout"))
            response = requests.Response()
            response.status_code = 404
            return response

    assert pdl(fake_time, timeout=7.5, session=Session()).lookup("x-example.com").status == "miss"
    assert seen == [7.5]


def test_pdl_rejected_key_disables_the_provider(
    rsps: responses.RequestsMock, fake_time: FakeTime
) -> None:
    rsps.get(PDL_URL, status=401, json={"error": {"message": f"invalid key {PDL_KEY}"}})
    provider = pdl(fake_time)
    first = provider.lookup("a-example.com")
    second = provider.lookup("b-example.com")
    assert (first.status, first.retryable) == ("error", False)
    assert "LEADSCORE_PDL_API_KEY" in first.detail
    assert second == first
    assert len(rsps.calls) == 1  # 401 is never retried, and nothing more is sent


def test_pdl_spent_credits_disable_the_provider(
    rsps: responses.RequestsMock, fake_time: FakeTime
) -> None:
    rsps.get(PDL_URL, status=402)
    provider = pdl(fake_time)
    assert "credits" in provider.lookup("a-example.com").detail
    assert provider.lookup("b-example.com").status == "error"
    assert len(rsps.calls) == 1


def test_pdl_bad_request_and_garbage_are_errors_not_misses(
    rsps: responses.RequestsMock, fake_time: FakeTime
) -> None:
    rsps.get(PDL_URL, status=400, json={"error": {"type": "invalid", "message": f"bad {PDL_KEY}"}})
    result = pdl(fake_time).lookup("a-example.com")
    assert (result.status, result.retryable) == ("error", False)
    assert result.detail == "HTTP 400: bad **********"
    rsps.replace(responses.GET, PDL_URL, body="<html>oops</html>")
    assert pdl(fake_time).lookup("a-example.com").detail == "HTTP 200 but not JSON"
    rsps.replace(responses.GET, PDL_URL, json=["not", "an", "object"])
    assert pdl(fake_time).lookup("a-example.com").detail == "unexpected answer (TypeError)"


def test_min_interval_between_calls(rsps: responses.RequestsMock, fake_time: FakeTime) -> None:
    rsps.get(PDL_URL, status=404)
    provider = pdl(fake_time, min_interval_seconds=0.6)
    provider.lookup("a-example.com")
    provider.lookup("b-example.com")
    fake_time.now += 5
    provider.lookup("c-example.com")
    assert len(rsps.calls) == 3
    assert fake_time.sleeps == [pytest.approx(0.6)]  # only the back-to-back call waited


def test_base_url_override(rsps: responses.RequestsMock, fake_time: FakeTime) -> None:
    rsps.get("http://127.0.0.1:9/v5/company/enrich", json=PDL_BODY)
    assert pdl(fake_time, base_url="http://127.0.0.1:9/").lookup("bigco-example.com").status == (
        "hit"
    )


# ------------------------------------------------------------------ Apollo


def test_apollo_hit_maps_fields(rsps: responses.RequestsMock, fake_time: FakeTime) -> None:
    rsps.get(
        APOLLO_URL,
        json=APOLLO_BODY,
        match=[
            matchers.query_param_matcher({"domain": "bigco-example.com"}),
            matchers.header_matcher({"X-Api-Key": APOLLO_KEY}),
        ],
    )
    result = apollo(fake_time).lookup("bigco-example.com")
    assert result.company == Company(
        domain="bigco-example.com",
        name="BigCo Example",
        industry="information technology and services",
        employee_count=910,
        employee_range="501-1000",
        annual_revenue_usd=100000000.0,
        revenue_range="$100M-$250M",
        country="GB",
        founded_year=2015,
        source="apollo",
    )
    assert [c.request.url for c in rsps.calls] == [f"{APOLLO_URL}?domain=bigco-example.com"]


@pytest.mark.parametrize(
    ("status", "body"),
    [(200, {}), (200, {"organization": None}), (200, {"organization": {}}), (404, {})],
)
def test_apollo_no_organization_is_a_miss(
    rsps: responses.RequestsMock, fake_time: FakeTime, status: int, body: dict[str, object]
) -> None:
    rsps.get(APOLLO_URL, status=status, json=body)
    assert apollo(fake_time).lookup("nobody-example.com").status == "miss"


def test_apollo_5xx_is_retried_then_an_error(
    rsps: responses.RequestsMock, fake_time: FakeTime
) -> None:
    rsps.get(APOLLO_URL, status=502)
    result = apollo(fake_time).lookup("bigco-example.com")
    assert (result.status, result.retryable, len(rsps.calls)) == ("error", True, 3)


def test_canonical_industry() -> None:
    assert canonical_industry("Information Technology & Services") == (
        "information technology and services"
    )
    assert canonical_industry("hospital & health care") == "hospital & health care"
    assert canonical_industry(None) is None


def test_ranges() -> None:
    assert [employee_range_for(n) for n in (1, 10, 11, 200, 201, 10000, 10001)] == [
        "1-10",
        "1-10",
        "11-50",
        "51-200",
        "201-500",
        "5001-10000",
        "10001+",
    ]
    assert revenue_range_for(None) is None
    assert revenue_range_for(999_999) == "$0-$1M"
    assert revenue_range_for(1e6) == "$1M-$10M"
    assert revenue_range_for(2e10) == "$10B+"


# ------------------------------------------------------------------ secrets


def test_api_keys_never_in_logs_errors_or_reprs(
    rsps: responses.RequestsMock, fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    scenarios: list[tuple[str, dict[str, object]]] = [
        ("hit", {"json": PDL_BODY}),
        ("404", {"status": 404, "json": {"error": {"message": f"none for key {PDL_KEY}"}}}),
        ("429", {"status": 429, "json": {"error": {"message": f"key {PDL_KEY} throttled"}}}),
        ("500", {"status": 500, "body": f"upstream said {PDL_KEY}"}),
        ("timeout", {"body": requests.exceptions.ReadTimeout(f"timeout {PDL_KEY}")}),
        ("conn", {"body": requests.exceptions.ConnectionError(f"refused {PDL_KEY}")}),
        ("other", {"body": requests.exceptions.InvalidURL(f"bad url {PDL_KEY}")}),
        ("400", {"status": 400, "json": {"error": {"message": f"bad key {PDL_KEY}"}}}),
        ("401", {"status": 401, "json": {"error": {"message": f"bad key {PDL_KEY}"}}}),
    ]
    for name, kwargs in scenarios:
        rsps.reset()
        rsps.get(PDL_URL, **kwargs)
        provider = pdl(fake_time, cooldown_seconds=0.0)
        result = provider.lookup("bigco-example.com")
        seen += [repr(provider), str(provider), repr(result), result.detail]
        assert rsps.calls, name
        assert all(c.request.headers["X-Api-Key"] == PDL_KEY for c in rsps.calls), name
    # an unmatched request: the mock's own error message names the headers it was sent
    rsps.reset()
    rsps.get(PDL_URL, json=PDL_BODY, match=[matchers.header_matcher({"X-Api-Key": "x"})])
    seen.append(pdl(fake_time).lookup("bigco-example.com").detail)
    for record in caplog.records:
        seen.append(record.getMessage())
        if record.exc_info and record.exc_info[1] is not None:
            seen.append(repr(record.exc_info[1]))
        if record.exc_text:
            seen.append(record.exc_text)
    leaked = [s for s in seen if PDL_KEY in s or "SECRET" in s]
    assert leaked == []
