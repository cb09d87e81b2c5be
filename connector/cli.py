"""The `leadscore` command line: a thin click layer over functions that tests call directly."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console

from connector.errors import ConnectorError, InputError
from connector.model.loader import DEFAULT_MODEL_PATH, LoadedModel, validate_model_file
from connector.offline import EnrichFn
from connector.parse import parse_timestamp


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


def _console() -> Console:
    return Console(width=200 if not sys.stdout.isatty() else None, soft_wrap=False)


def _load_model_or_exit(path: str | None) -> LoadedModel:
    target = path or str(DEFAULT_MODEL_PATH)
    loaded, problems = validate_model_file(target)
    if loaded is None:
        for p in problems:
            click.echo(f"{target}: {p}", err=True)
        click.echo(f"{len(problems)} problem(s) in the model file; nothing scored.", err=True)
        sys.exit(1)
    return loaded


def _parse_now(value: str | None) -> datetime:
    if not value:
        return datetime.now(UTC)
    try:
        return parse_timestamp(value, "--now")
    except InputError as exc:
        raise click.BadParameter(str(exc)) from None


def _offline_enrich() -> EnrichFn | None:
    """Enrichment from the local firmographics file only: offline scoring never calls out."""
    try:
        from connector.enrich.enricher import offline_enrich_fn
    except ImportError:  # the enrichment package is not there yet
        return None
    fn: EnrichFn = offline_enrich_fn()
    return fn


@cli.command("score")
@click.option("--contacts", "contacts_path", required=True, type=click.Path(dir_okay=False))
@click.option("--events", "events_path", type=click.Path(dir_okay=False))
@click.option("--model", "model_path", type=click.Path(dir_okay=False))
@click.option("--now", "now_text", help="Score as of this ISO-8601 time (default: now).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per contact.")
def score_cmd(
    contacts_path: str,
    events_path: str | None,
    model_path: str | None,
    now_text: str | None,
    as_json: bool,
) -> None:
    """Score contacts and events from JSONL files, offline (no CRM, no state DB)."""
    from connector.offline import score_files

    model = _load_model_or_exit(model_path)
    now = _parse_now(now_text)
    run = score_files(contacts_path, events_path, model, now, enrich=_offline_enrich())
    if as_json:
        for contact, r in run.scored:
            click.echo(json.dumps(result_json(contact, r), sort_keys=True))
    else:
        from connector.views import scores_table

        _console().print(scores_table(run.scored, title=f"Scores as of {now:%Y-%m-%d %H:%M} UTC"))
        click.echo(f"{len(run.scored)} contact(s) scored with model {model.version}.")
    for err in run.errors:
        click.echo(f"error: {err}", err=True)
    if run.orphan_events:
        click.echo(f"warning: {run.orphan_events} event(s) name an unknown contact", err=True)
    if run.errors:
        click.echo(f"{len(run.errors)} bad record(s) skipped; the rest were scored.", err=True)
        sys.exit(1)


def result_json(contact: object, r: object) -> dict[str, object]:
    from connector.types import Contact, ScoreResult

    assert isinstance(contact, Contact) and isinstance(r, ScoreResult)
    return {
        "id": contact.id,
        "email": contact.email,
        "score": r.score,
        "engagement_points": r.engagement_points,
        "fit_points": r.fit_points,
        "grade": r.grade,
        "mql": r.lifecycle.mql,
        "mql_reason": r.lifecycle.mql_reason,
        "stage": r.lifecycle.current_stage,
        "target_stage": r.lifecycle.target_stage,
        "profile_mismatch": r.profile_mismatch,
        "model_version": r.model_version,
        "model_fingerprint": r.model_fingerprint,
        "next_change_at": r.next_change_at.isoformat() if r.next_change_at else None,
        "top_reasons": r.top_reasons(),
        "reasons": [
            {
                "rule": x.rule,
                "kind": x.kind,
                "points": x.points,
                "text": x.text,
                "events": list(x.event_ids),
            }
            for x in r.reasons
        ],
    }


@cli.command("explain")
@click.argument("who")
@click.option("--contacts", "contacts_path", type=click.Path(dir_okay=False))
@click.option("--events", "events_path", type=click.Path(dir_okay=False))
@click.option("--model", "model_path", type=click.Path(dir_okay=False))
@click.option("--now", "now_text")
def explain_cmd(
    who: str,
    contacts_path: str | None,
    events_path: str | None,
    model_path: str | None,
    now_text: str | None,
) -> None:
    """Every point of one contact's score, with its rule and events (WHO = e-mail or id)."""
    from connector.offline import score_files
    from connector.views import print_explanation

    model = _load_model_or_exit(model_path)
    now = _parse_now(now_text)
    if contacts_path is None:
        raise click.UsageError("give --contacts/--events files (state DB mode: see `sync`)")
    run = score_files(contacts_path, events_path, model, now, enrich=_offline_enrich())
    for contact, r in run.scored:
        if who in (contact.id, (contact.email or "").lower(), contact.email):
            print_explanation(_console(), contact, r, run.events_by_contact[contact.id])
            return
    click.echo(f"error: no contact {who!r} in {Path(contacts_path).name}", err=True)
    sys.exit(1)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except ConnectorError as exc:  # pragma: no cover - click handles most paths
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
