"""The `leadscore` command line: a thin click layer over functions that tests call directly."""

from __future__ import annotations

import sys

import click

from connector.errors import ConnectorError
from connector.model.loader import DEFAULT_MODEL_PATH, validate_model_file


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="leadscore")
def cli() -> None:
    """leadscore: explained lead scores for HubSpot and Marketo."""


@cli.command("validate-model")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
def validate_model_cmd(path: str | None) -> None:
    """Check a model file; list every problem with its location."""
    target = path or str(DEFAULT_MODEL_PATH)
    loaded, problems = validate_model_file(target)
    if loaded is None:
        for p in problems:
            click.echo(f"{target}: {p}", err=True)
        click.echo(f"{len(problems)} problem(s); nothing scored.", err=True)
        sys.exit(1)
    click.echo(f"OK {loaded.version} {loaded.fingerprint}")


def main() -> None:
    try:
        cli(standalone_mode=True)
    except ConnectorError as exc:  # pragma: no cover - click handles most paths
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
