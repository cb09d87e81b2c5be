"""``leadscore sandbox hubspot``: run the HubSpot sandbox in the foreground for manual trials.

The command object is :data:`sandbox_hubspot_cmd`; the CLI registers it under its ``sandbox``
group. It prints the URL and the token to use, then serves until Ctrl-C.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import click

from connector.sandbox.base import Faults, fixture_or_default, wait_for_interrupt
from connector.sandbox.hubspot import COMPANIES, DEFAULT_TOKEN, HubSpotSandbox

DEMO_FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "hubspot_demo_portal.json"


def load_fixture(path: str | None) -> str | dict[str, Any]:
    """The portal to serve: the given file, else the committed demo fixture, else a fresh one."""

    def build() -> dict[str, Any]:
        from connector.sandbox.demo_portal import build_demo_portal

        return build_demo_portal()

    return fixture_or_default(path, DEMO_FIXTURE, build)


@click.command("hubspot")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port on 127.0.0.1 (0 = any free port).")  # fmt: skip
@click.option("--fixtures", "fixtures", type=click.Path(exists=True, dir_okay=False),
              help="Portal fixture JSON (default: the demo portal).")  # fmt: skip
@click.option("--rate-limit", type=click.IntRange(min=1), default=100, show_default=True,
              help="Requests per 10-second window.")  # fmt: skip
@click.option("--daily-limit", type=click.IntRange(min=1), default=250_000, show_default=True,
              help="API calls a day before the sandbox answers 429 (daily quota).")  # fmt: skip
@click.option("--token", default=DEFAULT_TOKEN, show_default=True,
              help="The bearer token the sandbox accepts.")  # fmt: skip
@click.option("--error-rate", type=click.FloatRange(0, 1), default=0.0,
              help="Fraction of requests answered with 500/502/503.")  # fmt: skip
@click.option("--seed", type=int, default=0, help="Seed of the fault injector.")
def sandbox_hubspot_cmd(
    port: int,
    fixtures: str | None,
    rate_limit: int,
    daily_limit: int,
    token: str,
    error_rate: float,
    seed: int,
) -> None:
    """Run a local HubSpot API sandbox (loopback only) until Ctrl-C."""
    run_sandbox(port, fixtures, rate_limit, daily_limit, token, error_rate, seed, threading.Event())


def run_sandbox(
    port: int,
    fixtures: str | None,
    rate_limit: int,
    daily_limit: int,
    token: str,
    error_rate: float,
    seed: int,
    stop: threading.Event,
) -> None:
    portal = load_fixture(fixtures)
    try:
        sandbox = HubSpotSandbox.start(
            portal,
            token=token,
            port=port,
            rate_limit=rate_limit,
            daily_limit=daily_limit,
            faults=Faults(seed=seed, error_rate=error_rate),
        )
    except ValueError as exc:  # a fixture a client could not have written (or not JSON)
        raise click.ClickException(f"{fixtures or 'the demo portal'}: {exc}") from None
    with sandbox:
        live = len(sandbox.portal.live_contacts())
        companies = len(sandbox.portal.live_records(COMPANIES))
        click.echo(f"HubSpot sandbox listening on {sandbox.url}")
        click.echo(f"  token:    {token}")
        click.echo(
            f"  portal:   {sandbox.portal.portal_id} ({live} contacts, {companies} companies)"
        )
        click.echo(f'  try:      curl -H "Authorization: Bearer {token}" '
                   f"{sandbox.url}/crm/v3/objects/contacts?limit=5")  # fmt: skip
        click.echo("Press Ctrl-C to stop.")
        wait_for_interrupt(stop)
    click.echo("Sandbox stopped.")
