"""`leadscore enrich EMAIL`: what enrichment makes of one address, step by step.

Shows the parse (host, registrable domain, kind and why), what each provider said, and what the
cache held before and holds after. Exit 1 with a one-line reason for an invalid or empty address;
2 for a configuration problem.

The command is built by `make_enrich_command(cache_factory)`; `enrich_cmd` is the default, with an
in-memory cache (nothing persists between runs). Give a factory that opens the state DB's cache to
see and fill the real one.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from connector.console import make_console
from connector.enrich.cache import CacheEntry, CompanyCache, InMemoryCompanyCache, is_fresh
from connector.enrich.enricher import Explanation, build_enricher
from connector.errors import ConnectorError
from connector.settings import Settings, load_settings
from connector.types import Company

CacheFactory = Callable[[Settings], CompanyCache]


def explain_email(
    email: str,
    settings: Settings,
    now: datetime,
    *,
    cache: CompanyCache | None = None,
    ask_all: bool = False,
) -> Explanation:
    """The command's logic, callable from tests: build the chain from settings and explain."""
    enricher = build_enricher(settings, cache if cache is not None else InMemoryCompanyCache())
    try:
        return enricher.explain(email, now, ask_all=ask_all)
    finally:
        enricher.close()


def make_enrich_command(cache_factory: CacheFactory | None = None) -> click.Command:
    @click.command("enrich")
    @click.argument("email")
    @click.option("--now", "now_text", help="Judge cache freshness as of this ISO-8601 time.")
    @click.option(
        "--all",
        "ask_all",
        is_flag=True,
        help="Ask every provider, bypassing the cache (nothing is cached).",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
    def enrich_cmd(email: str, now_text: str | None, ask_all: bool, as_json: bool) -> None:
        """Show what enrichment makes of EMAIL: domain, kind, each provider's answer, cache."""
        now = _parse_now(now_text)
        try:
            settings = load_settings(**_overrides())
            cache = cache_factory(settings) if cache_factory is not None else None
            result = explain_email(email, settings, now, cache=cache, ask_all=ask_all)
        except ConnectorError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        if result.parsed.kind in ("invalid", "missing"):
            reason = result.parsed.reason or "not an e-mail address"
            click.echo(f"error: invalid e-mail address {email!r}: {reason}", err=True)
            sys.exit(1)
        if as_json:
            click.echo(json.dumps(explanation_json(result), indent=2, sort_keys=True))
            return
        print_explanation(make_console(), result, now)

    return enrich_cmd


def _overrides() -> dict[str, object]:
    """Settings overrides the parent `leadscore` group put in ctx.obj (e.g. --state)."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    return dict(obj) if isinstance(obj, dict) else {}


def _parse_now(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"not an ISO-8601 time: {text!r}", param_hint="--now") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# ------------------------------------------------------------------------------ rendering


def company_summary(company: Company | None) -> str:
    if company is None:
        return ""
    parts: list[str] = []
    if company.name:
        parts.append(company.name)
    if company.employee_count is not None:
        parts.append(f"{company.employee_count:,} employees")
    elif company.employee_range:
        parts.append(f"{company.employee_range} employees")
    if company.industry:
        parts.append(company.industry)
    if company.annual_revenue_usd is not None:
        parts.append(f"revenue ${company.annual_revenue_usd / 1e6:,.0f}M")
    elif company.revenue_range:
        parts.append(f"revenue {company.revenue_range}")
    if company.country:
        parts.append(company.country)
    parts.append(f"source {company.source}" + (f" {company.as_of}" if company.as_of else ""))
    return ", ".join(parts)


def _cache_text(entry: CacheEntry | None, now: datetime) -> str:
    if entry is None:
        return "nothing"
    state = "fresh" if is_fresh(entry, now) else "expired"
    what = f"hit from {entry.source}" if entry.status == "hit" else f"miss ({entry.source})"
    return (
        f"{what}, fetched {entry.fetched_at:%Y-%m-%d %H:%M}, "
        f"expires {entry.expires_at:%Y-%m-%d %H:%M} UTC ({state})"
    )


def print_explanation(console: Console, result: Explanation, now: datetime | None = None) -> None:
    parsed = result.parsed
    address = Table(title="Address", show_header=False)
    address.add_column("field", style="bold")
    address.add_column("value")
    address.add_row("e-mail", result.email or "")
    address.add_row("host", parsed.host or "")
    address.add_row("registrable domain", parsed.domain or "")
    address.add_row("kind", parsed.kind)
    address.add_row("why", parsed.reason or "")
    console.print(address)

    if result.outcome is None:
        console.print(f"Providers not asked: {parsed.kind} mail never gets a company.")
    else:
        providers = Table(title=f"Providers for {result.outcome.domain}")
        for column in ("provider", "answer", "detail", "company"):
            providers.add_column(column)
        for step in result.outcome.steps:
            summary = company_summary(step.company)
            providers.add_row(step.provider, step.status, step.detail, summary)
        console.print(providers)
        moment = now or datetime.now(UTC)
        cache = Table(title="Cache", show_header=False)
        cache.add_column("when", style="bold")
        cache.add_column("entry")
        cache.add_row("before", _cache_text(result.outcome.cache_before, moment))
        cache.add_row("after", _cache_text(result.outcome.cache_after, moment))
        console.print(cache)
        if not result.remote_providers:
            console.print(
                "No remote provider configured (LEADSCORE_PDL_API_KEY, LEADSCORE_APOLLO_API_KEY): "
                "local answers are read live and never cached."
            )
    company = result.enrichment.company
    console.print(f"Company: {company_summary(company) if company else 'none'}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def explanation_json(result: Explanation) -> dict[str, Any]:
    out = {
        "email": result.email,
        "parsed": _jsonable(result.parsed),
        "enrichment": _jsonable(result.enrichment),
        "steps": _jsonable(list(result.steps)),
        "cache_before": None,
        "cache_after": None,
        "remote_providers": list(result.remote_providers),
    }
    if result.outcome is not None:
        out["cache_before"] = _jsonable(result.outcome.cache_before)
        out["cache_after"] = _jsonable(result.outcome.cache_after)
    return out


enrich_cmd = make_enrich_command()

__all__ = [
    "CacheFactory",
    "enrich_cmd",
    "explain_email",
    "explanation_json",
    "make_enrich_command",
    "print_explanation",
]
