"""``leadscore sandbox marketo``: run the Marketo sandbox in the foreground for manual trials.

The command object is :data:`sandbox_marketo_cmd`; the CLI registers it under its ``sandbox``
group. It prints the URL and the client id and secret to use, then serves until Ctrl-C.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from connector.sandbox.base import Faults, fixture_or_default, wait_for_interrupt
from connector.sandbox.marketo import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    EnvelopeFaults,
    MarketoSandbox,
)

DEMO_FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "marketo_demo_instance.json"


def load_fixture(path: str | None) -> str | dict[str, Any]:
    """The instance to serve: the given file, else the committed demo fixture, else a fresh one."""

    def build() -> dict[str, Any]:
        from connector.sandbox.marketo_demo import build_demo_instance

        return build_demo_instance()

    return fixture_or_default(path, DEMO_FIXTURE, build)


@click.command("marketo")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port on 127.0.0.1 (0 = any free port).")  # fmt: skip
@click.option("--fixtures", "fixtures", type=click.Path(exists=True, dir_okay=False),
              help="Instance fixture JSON (default: the demo instance).")  # fmt: skip
@click.option("--client-id", default=DEFAULT_CLIENT_ID, show_default=True,
              help="The client id the identity endpoint accepts (a demo value).")  # fmt: skip
@click.option("--client-secret", default=DEFAULT_CLIENT_SECRET, show_default=True,
              help="The client secret the identity endpoint accepts (a demo value).")  # fmt: skip
@click.option("--token-ttl", type=click.FloatRange(min=1), default=3600.0, show_default=True,
              help="Access token lifetime in seconds.")  # fmt: skip
@click.option("--rate-limit", type=click.IntRange(min=1), default=100, show_default=True,
              help="Calls per 20-second window (606 beyond).")  # fmt: skip
@click.option("--daily-limit", type=click.IntRange(min=1), default=50_000, show_default=True,
              help="Calls per day (607 beyond).")  # fmt: skip
@click.option("--error-rate", type=click.FloatRange(0, 1), default=0.0,
              help="Fraction of calls answered with HTTP 500/502/503.")  # fmt: skip
@click.option("--envelope-error-rate", type=click.FloatRange(0, 1), default=0.0,
              help="Fraction of calls answered with a 604/608/611/713 envelope.")  # fmt: skip
@click.option("--empty-page-every", type=click.IntRange(min=0), default=0,
              help="Answer every n-th activity page empty (moreResult stays true).")  # fmt: skip
@click.option("--seed", type=int, default=0, help="Seed of the fault injectors.")
def sandbox_marketo_cmd(
    port: int,
    fixtures: str | None,
    client_id: str,
    client_secret: str,
    token_ttl: float,
    rate_limit: int,
    daily_limit: int,
    error_rate: float,
    envelope_error_rate: float,
    empty_page_every: int,
    seed: int,
) -> None:
    """Run a local Marketo REST/bulk API sandbox (loopback only) until Ctrl-C."""
    run_sandbox(
        port=port,
        fixtures=fixtures,
        client_id=client_id,
        client_secret=client_secret,
        token_ttl=token_ttl,
        rate_limit=rate_limit,
        daily_limit=daily_limit,
        error_rate=error_rate,
        envelope_error_rate=envelope_error_rate,
        empty_page_every=empty_page_every,
        seed=seed,
        stop=threading.Event(),
    )


def run_sandbox(
    *,
    port: int = 0,
    fixtures: str | None = None,
    client_id: str = DEFAULT_CLIENT_ID,
    client_secret: str = DEFAULT_CLIENT_SECRET,
    token_ttl: float = 3600.0,
    rate_limit: int = 100,
    daily_limit: int = 50_000,
    error_rate: float = 0.0,
    envelope_error_rate: float = 0.0,
    empty_page_every: int = 0,
    seed: int = 0,
    stop: threading.Event,
    echo: Callable[[str], None] = click.echo,
) -> None:
    sandbox = MarketoSandbox.start(
        load_fixture(fixtures),
        client_id=client_id,
        client_secret=client_secret,
        port=port,
        token_ttl=token_ttl,
        rate_limit=rate_limit,
        daily_limit=daily_limit,
        faults=Faults(seed=seed, error_rate=error_rate),
        envelope_faults=EnvelopeFaults(seed=seed, rate=envelope_error_rate),
    )
    sandbox.app.empty_page_every = empty_page_every
    with sandbox:
        live = len(sandbox.instance.live_leads())
        echo(f"Marketo sandbox listening on {sandbox.url}")
        echo(f"  munchkin:      {sandbox.instance.munchkin_id} ({live} leads)")
        echo(f"  client id:     {client_id}")
        echo(f"  client secret: {client_secret}")
        echo(f"  use:           LEADSCORE_CRM=marketo LEADSCORE_MARKETO_BASE_URL={sandbox.url} "
             f"LEADSCORE_MARKETO_CLIENT_ID={client_id} "
             f"LEADSCORE_MARKETO_CLIENT_SECRET={client_secret}")  # fmt: skip
        token_url = f"{sandbox.url}/identity/oauth/token?grant_type=client_credentials"
        echo(f"  try:           curl '{token_url}&client_id={client_id}"
             f"&client_secret={client_secret}'")  # fmt: skip
        echo("Press Ctrl-C to stop.")
        wait_for_interrupt(stop)
    echo("Sandbox stopped.")
