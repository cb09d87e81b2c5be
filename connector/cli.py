"""The `leadscore` command line: a thin click layer over functions that tests call directly."""

from __future__ import annotations

import importlib
import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console

from connector.cli_common import add_global_options, note_sink, run_cli, with_global_options
from connector.cli_help import COMPLETION, LazyGroup, SectionedGroup, exit_codes_text
from connector.errors import ConfigError, ConnectorError, InputError
from connector.model.loader import DEFAULT_MODEL_PATH, LoadedModel, validate_model_file
from connector.offline import EnrichFn
from connector.parse import parse_timestamp
from connector.scoring import BUILD as SCORING_BUILD
from connector.settings import Settings, load_settings


@click.group(
    cls=SectionedGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=exit_codes_text() + "\n\n" + COMPLETION,
)
@click.version_option(
    package_name="leadscore", message=f"%(prog)s %(version)s (scoring core: {SCORING_BUILD})"
)
@click.option("--crm", type=click.Choice(["hubspot", "marketo"]), help="Overrides LEADSCORE_CRM.")
@click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False),
    help="State DB path (LEADSCORE_STATE_PATH).",
)
@click.pass_context
def cli(ctx: click.Context, crm: str | None, state_path: str | None) -> None:
    """leadscore: explained lead scores for HubSpot and Marketo.

    Settings come from LEADSCORE_* environment variables or a leadscore.env file
    (see config/leadscore.env.example); the options here override them.
    """
    overrides: dict[str, object] = {}
    if crm:
        overrides["crm"] = crm
    if state_path:
        overrides["state_path"] = Path(state_path)
    ctx.obj = overrides


def _settings(ctx: click.Context, **more: object) -> Settings:
    overrides = dict(ctx.obj or {})
    overrides.update({k: v for k, v in more.items() if v is not None})
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)


def _fail(exc: ConnectorError) -> NoReturn:
    click.echo(f"error: {exc}", err=True)
    sys.exit(exc.exit_code)


@cli.command("validate-model")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON object: ok, version, problems.")
@click.pass_context
def validate_model_cmd(ctx: click.Context, path: str | None, as_json: bool) -> None:
    """Check a model file; list every problem with its location (exit 1 if any).

    With a state DB, also compares it with the model in force there: a model whose content
    changed while its `version` did not gets a warning."""
    if as_json:
        from connector.jsonout import emit

        target = path or str(DEFAULT_MODEL_PATH)
        found, problems = validate_model_file(target)
        emit(
            {
                "path": target,
                "ok": found is not None,
                "version": found.version if found else None,
                "fingerprint": found.fingerprint if found else None,
                "problems": problems,
                "notes": _compare_with_active(ctx, found) if found is not None else [],
            }
        )
        sys.exit(0 if found is not None else 1)
    loaded = _load_model_or_exit(path, exit_code=1)  # the problems found are its answer
    click.echo(f"OK {loaded.version} {loaded.fingerprint}")
    for line in _compare_with_active(ctx, loaded):
        click.echo(line, err=True)


def _compare_with_active(ctx: click.Context, loaded: LoadedModel) -> list[str]:
    """What the state DB's model in force says about `loaded` (nothing without a state DB or
    with settings that do not load: validating a file needs neither)."""
    from connector.active_model import describe_active, version_not_bumped
    from connector.state.store import StateStore

    try:
        settings = load_settings(**dict(ctx.obj or {}))
    except ConfigError:
        return []
    if not Path(settings.state_path).exists():
        return []
    try:
        with StateStore.open(settings.state_path) as store:
            active = store.get_active_model(settings.crm)
    except ConnectorError as exc:
        return [f"note: state DB not read ({exc})"]
    if active is None or active.fingerprint == loaded.fingerprint:
        return [] if active is None else ["note: this is the model in force"]
    out = [f"note: the model in force is {describe_active(active)}"]
    bumped = version_not_bumped(loaded, active.version, active.fingerprint)
    return out if bumped is None else [*out, bumped]


@cli.command("init-model")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Overwrite files that already exist there.")
def init_model_cmd(directory: str, force: bool) -> None:
    """Write editable copies of the shipped model, title rules, free-mail overrides and
    env example into DIRECTORY."""
    from connector.resources import write_editable_copies

    dest = Path(directory)
    try:
        written = write_editable_copies(dest, force=force)
    except FileExistsError as exc:
        click.echo(f"error: {exc}; nothing written (--force overwrites)", err=True)
        sys.exit(1)
    except OSError as exc:
        click.echo(f"error: cannot write to {dest} ({exc.strerror})", err=True)
        sys.exit(1)
    for path in written:
        click.echo(f"wrote {path}")
    model = dest / "model.yaml"
    click.echo(
        "Next: edit them, bump `version`, then\n"
        f"  leadscore validate-model {model}\n"
        f"  leadscore rescore --dry-run --model {model}   # preview against the stored scores\n"
        f"  leadscore rescore --model {model}   # roll it out: the model in force from now on\n"
        f"and set LEADSCORE_MODEL_PATH={model.resolve()} (and LEADSCORE_FREEMAIL_PATH="
        f"{(dest / 'freemail.yaml').resolve()}) so the worker's settings name it too."
    )


def _console() -> Console:
    from connector.console import make_console

    return make_console()


def _load_model_or_exit(path: str | None, exit_code: int = 2) -> LoadedModel:
    """The model, or every problem on stderr and exit 2 (a configuration error; validate-model
    passes 1: the problems are what it was asked for)."""
    target = path or str(DEFAULT_MODEL_PATH)
    loaded, problems = validate_model_file(target)
    if loaded is None:
        for p in problems:
            click.echo(f"{target}: {p}", err=True)
        click.echo(f"{len(problems)} problem(s) in the model file; nothing scored.", err=True)
        sys.exit(exit_code)
    for note in loaded.notes:
        click.echo(f"{target}: warning: {note}", err=True)
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
@click.option(
    "--contacts",
    "contacts_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Contacts, one JSON object a line.",
)
@click.option(
    "--events",
    "events_path",
    type=click.Path(dir_okay=False),
    help="Engagement events, one JSON object a line.",
)
@click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False),
    help="Model file [default: config/model.yaml].",
)
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
        "priority": r.priority,
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


@cli.command("demo")
@click.option(
    "--keep-state",
    "keep_path",
    type=click.Path(dir_okay=False),
    help="Keep the demo's state DB at this path (to try explain, report, ...): a new file, or "
    "one an earlier demo kept (started afresh); any other state DB is refused, never written.",
)
@click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False),
    help="The same as --keep-state (also before the command: `leadscore --state PATH demo`). "
    "Without either, a temporary state DB: LEADSCORE_STATE_PATH is never used.",
)
@click.option(
    "--all", "show_all", is_flag=True, help="List every contact, not only the six personas."
)
@click.pass_context
def demo_cmd(
    ctx: click.Context, keep_path: str | None, state_path: str | None, show_all: bool
) -> None:
    """Sandbox + demo portal: a full sync, the scored contacts with reasons, an idle resync.

    With `leadscore --crm marketo demo`: the Marketo sandbox with the same personas."""
    from connector.demo import run_demo

    obj = ctx.obj or {}
    crm = str(obj.get("crm", "hubspot"))
    # `--state` after the command wins over one before it, as for every command
    given = state_path or (str(obj["state_path"]) if obj.get("state_path") else None)
    if given and keep_path and Path(given).resolve() != Path(keep_path).resolve():
        click.echo(
            f"error: --state {given} and --keep-state {keep_path} name two state DBs; the demo "
            "keeps one: give one of them",
            err=True,
        )
        sys.exit(2)
    kept = keep_path or given
    try:
        result = run_demo(
            _console(),
            state_path=Path(kept) if kept else None,
            crm=crm,
            show_all=show_all,
        )
    except ConnectorError as exc:
        _fail(exc)
    bad = [s for s in (result.first, result.second) if s.exit_code]
    sys.exit(bad[0].exit_code if bad else 0)


@cli.command("init-properties")
@click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False),
    help="The model whose properties to create (default: LEADSCORE_MODEL_PATH): a model "
    "with more scores before its `rescore`.",
)
@click.pass_context
def init_properties_cmd(ctx: click.Context, model_path: str | None) -> None:
    """Create the lead_scoring property group and our properties in the CRM (idempotent)."""
    from connector.app import build_adapter
    from connector.model.loader import priority_labels_of

    settings = _settings(ctx)
    model = _load_model_or_exit(model_path or str(settings.model_path))
    try:
        adapter = build_adapter(settings)
        from connector.crm.hubspot import HubSpotAdapter

        if isinstance(adapter, HubSpotAdapter):  # the priority options: the model's labels
            adapter.use_priority_labels(*priority_labels_of(model))
        use = getattr(adapter, "use_named_scores", None)
        if callable(use):  # each named score's properties (Marketo: checks its fields)
            use(tuple(n.name for n in model.named))
        try:
            created = adapter.ensure_properties()
        finally:
            adapter.close()
    except ConnectorError as exc:
        _fail(exc)
    if created:
        click.echo("created: " + ", ".join(created))
    else:
        click.echo("all properties already exist; nothing to do")


@cli.command("sync")
@click.option("--dry-run", is_flag=True, help="Pull and score; show what would be written.")
@click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False),
    help="Model file [default: LEADSCORE_MODEL_PATH].",
)
@click.option(
    "--json", "as_json", is_flag=True, help="The run's summary (and dry-run changes) as JSON."
)
@click.pass_context
def sync_cmd(ctx: click.Context, dry_run: bool, model_path: str | None, as_json: bool) -> None:
    """One incremental pass: pull, score, write back what changed.

    Logs go to standard error, as JSON lines with LEADSCORE_LOG_JSON=true."""
    from connector.app import log_note, open_app
    from connector.worker.logs import configure_logging, settings_secrets

    settings = _settings(
        ctx, dry_run=dry_run or None, model_path=Path(model_path) if model_path else None
    )
    handler = configure_logging(
        json_lines=settings.log_json,
        level=settings.log_level
        if settings.log_json or settings.log_level.upper() != "INFO"
        else "WARNING",  # text: the summary line below says it all
        secrets=settings_secrets(settings),
    )
    ctx.call_on_close(lambda: _drop_log_handler(handler))
    model = _load_model_or_exit(str(settings.model_path), exit_code=2)
    try:
        # the notes before any write: JSON lines in JSON log mode, like every other line there
        with open_app(settings, model, on_note=note_sink(settings.log_json)) as app:
            summary = app.pipeline.sync()
    except ConnectorError as exc:
        _fail(exc)
    for note in summary.notes:  # as the notes before it: a log record in JSON log mode
        if settings.log_json:
            log_note(note)
        else:
            click.echo(f"note: {note}", err=as_json)
    if as_json:
        from connector.jsonout import emit

        emit(sync_json(summary, dry_run=dry_run))
        sys.exit(summary.exit_code)
    if dry_run and summary.status == "ok":
        from connector.ops.views import print_sync_preview

        print_sync_preview(
            _console(), summary.planned, summary.to_write, summary.companies_to_write
        )
    click.echo(summary.line())
    sys.exit(summary.exit_code)


def _drop_log_handler(handler: logging.Handler) -> None:
    """The command's log handler off the root logger when it ends (it writes to this
    command's stderr)."""
    logging.getLogger().removeHandler(handler)
    handler.close()


def sync_json(summary: object, *, dry_run: bool) -> dict[str, object]:
    """A sync's summary for --json: status, exit code, every count, its notes (a dry run
    before `init-properties`: what is missing), and in a dry run the properties each contact
    would get."""
    from connector.pipeline import SyncSummary

    assert isinstance(summary, SyncSummary)
    doc: dict[str, object] = {
        "kind": summary.kind,
        "crm": summary.crm,
        "run_id": summary.run_id,
        "status": summary.status,
        "message": summary.message or None,
        "exit_code": summary.exit_code,
        "api_calls": summary.api_calls,
        "duration_s": round(summary.duration_s, 3),
        "dry_run": dry_run,
        "notes": list(summary.notes),
        **summary.counts(),
    }
    if dry_run:
        doc["changes"] = [{"id": cid, "properties": props} for cid, props in summary.changes]
    return doc


@cli.command("explain")
@click.argument("who", required=False)
@click.option(
    "--account",
    "account_key",
    metavar="DOMAIN|ID",
    help="Explain an account (a company domain, CRM company id, account id or company name) "
    "instead.",
)
@click.option(
    "--contacts",
    "contacts_path",
    type=click.Path(dir_okay=False),
    help="Explain from this contacts JSONL file instead of the state DB.",
)
@click.option(
    "--events",
    "events_path",
    type=click.Path(dir_okay=False),
    help="The events JSONL file that goes with --contacts.",
)
@click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False),
    help="Model file [default: config/model.yaml].",
)
@click.option("--now", "now_text", help="Explain as of this ISO-8601 time (default: now).")
@click.option(
    "--json", "as_json", is_flag=True, help="The score, reasons, what did not count, history."
)
def explain_cmd(
    who: str | None,
    account_key: str | None,
    contacts_path: str | None,
    events_path: str | None,
    model_path: str | None,
    now_text: str | None,
    as_json: bool,
) -> None:
    """Every point of one contact's score, with its rule and events (WHO = e-mail or id).

    With --account DOMAIN|ID: every point of an account's score with the people behind it,
    its members, its history and what did not count."""
    from connector.explain import not_counted
    from connector.offline import score_files
    from connector.views import print_explanation

    if (who is None) == (account_key is None):
        click.echo("error: give a contact (e-mail or id) or --account DOMAIN|ID", err=True)
        sys.exit(2)
    if account_key is not None and contacts_path is not None:
        click.echo("error: --account explains from the state DB, not from --contacts", err=True)
        sys.exit(2)
    model = _load_model_or_exit(model_path)
    now = _parse_now(now_text)
    if account_key is not None:
        _explain_account(click.get_current_context(), account_key, model, now, as_json)
        return
    assert who is not None
    if contacts_path is None:
        # without --model: the state DB's model in force; without --now and --model: the
        # stored score, a recompute as of now compared with it
        _explain_from_state(
            click.get_current_context(),
            who,
            model,
            now,
            as_json,
            in_force=model_path is None,
            as_of=now_text is not None or model_path is not None,
        )
        return
    run = score_files(contacts_path, events_path, model, now, enrich=_offline_enrich())
    for contact, r in run.scored:
        if who in (contact.id, (contact.email or "").lower(), contact.email):
            events = run.events_by_contact[contact.id]
            skipped = not_counted(contact, events, r, model, now)
            named = _named_results(model, contact, events, run.enrichments.get(contact.id), now)
            if as_json:
                _emit_explanation(contact, r, skipped, None, model, named)
                return
            print_explanation(
                _console(),
                contact,
                r,
                events,
                [n.text for n in skipped],
                score_name=model.lifecycle_name if named else None,
            )
            _print_named(named, events)
            return
    click.echo(f"error: no contact {who!r} in {Path(contacts_path).name}", err=True)
    sys.exit(1)


def _emit_explanation(
    contact: object,
    result: object,
    skipped: list[Any],
    history: list[dict[str, Any]] | None,
    model: LoadedModel | None = None,
    named: list[tuple[Any, Any]] | None = None,
    extra: dict[str, object] | None = None,
) -> None:
    from connector.explain import NotCounted
    from connector.jsonout import emit
    from connector.pipeline.named import is_qualified, named_reasons
    from connector.types import ScoreResult

    assert isinstance(result, ScoreResult)
    doc: dict[str, object] = result_json(contact, result)
    doc["scored_at"] = result.scored_at.isoformat()
    doc.update(extra or {})
    doc["not_counted"] = [n.as_json() for n in skipped if isinstance(n, NotCounted)]
    doc["history"] = history
    if named and model is not None:  # a model with named scores: the lifecycle one's name
        doc["score_name"] = model.lifecycle_name
        doc["named_scores"] = [
            {
                "name": n.name,
                **{
                    k: v
                    for k, v in result_json(contact, r).items()
                    if k in ("score", "engagement_points", "fit_points", "grade", "priority")
                },
                "threshold": n.threshold,
                "qualified": is_qualified(n, r),
                "top_reasons": named_reasons(n, r),
                "reasons": result_json(contact, r)["reasons"],
            }
            for n, r in named
        ]
    emit(doc)


def _named_results(
    model: LoadedModel,
    contact: Any,
    events: Any,
    enrichment: Any,
    now: datetime,
) -> list[tuple[Any, Any]]:
    """Each named score of the model for this contact, as of `now` (explain)."""
    from connector.scoring import score

    return [(n, score(contact, events, enrichment, n.loaded, now)) for n in model.named]


def _print_named(named: list[tuple[Any, Any]], events: Any, as_of: str | None = None) -> None:
    from connector.views import print_named_explanation

    console = _console()
    if named and as_of:
        console.print(f"the other scores, recomputed as of {as_of}:", highlight=False)
    for n, r in named:
        print_named_explanation(console, n.name, n.threshold, r, events)


def _explain_from_state(
    ctx: click.Context,
    who: str,
    model: LoadedModel,
    now: datetime,
    as_json: bool = False,
    in_force: bool = False,
    as_of: bool = False,
) -> None:
    """Explain from the state DB. The stored score (what the sync saved and wrote, its own
    scored_at), with its account's part when accounts are on, and a recompute as of `now`
    said to match it or not; with `as_of` (--now or --model given) the recompute is explained
    and the stored score compared. The recompute scores as the sync does: the model in force
    when `in_force` (else `model`), and with accounts on the MQA's lower MQL bar from the
    contact's account as last scored (`AccountStage`, the sync's own step)."""
    from connector.active_model import in_force_or
    from connector.app import build_enricher
    from connector.explain import account_part, differences, history_lines, not_counted, verdict
    from connector.ops.analysis import note_accounts_off
    from connector.scoring import score
    from connector.state.store import StateStore
    from connector.views import print_explanation

    settings = _settings(ctx)
    if not settings.state_path.exists():
        click.echo(
            f"error: no state DB at {settings.state_path}; run `leadscore sync` first", err=True
        )
        sys.exit(1)
    try:
        store = StateStore.open(settings.state_path)
    except ConnectorError as exc:
        _fail(exc)
    try:
        crm = settings.crm
        if in_force:
            model = in_force_or(store, crm, model)
        cid = who
        if "@" in who:
            found = store.find_contact_ids_by_email(crm, [who.lower()])
            cid = found.get(who.lower(), "")
        cid = store.resolve_id(crm, cid) if cid else cid
        contact = store.get_contact(crm, cid) if cid else None
        if contact is None:
            click.echo(f"error: no contact {who!r} in {settings.state_path}", err=True)
            sys.exit(1)
        events = store.events_for(crm, contact.id)
        enricher = build_enricher(settings, store)
        enrichment = None
        if enricher is not None and contact.email:
            enrichment = enricher.enrich_many([contact.email], now).get(contact.email)
        fresh = score(contact, events, enrichment, model, now)
        account = _contact_account(store, settings, contact, model)
        if account is not None and account[2].model_fingerprint != model.fingerprint:
            # the account as this model scores it (`--model`: another model than the one
            # that scored it), as `simulate` and `rescore --dry-run` do
            account = _account_under(store, settings, account, model, now, enricher)
        if account is not None:
            fresh = account[0]._mql(contact, fresh, account[1])
        else:
            note_accounts_off(store, settings, model)
        stored = store.get_score(crm, contact.id)
        kept = stored.to_result() if stored is not None else None
        result = fresh if as_of or kept is None else kept
        now_text = now.isoformat()
        if result is fresh:
            when = f"recomputed as of {now_text}" + ("" if as_of else " (no stored score yet)")
            diff = differences(kept, fresh) if kept is not None else []
            compared = (
                "no stored score yet"
                if kept is None
                else f"the stored score (scored at {kept.scored_at.isoformat()}): "
                + (f"{verdict(kept)} — differs: " + "; ".join(diff) if diff else "the same")
            )
        else:
            assert kept is not None
            when = f"stored score, scored at {kept.scored_at.isoformat()}"
            diff = differences(kept, fresh)
            compared = f"recomputed as of now ({now_text}): " + (
                f"{verdict(fresh)} — differs from the stored score: " + "; ".join(diff)
                if diff
                else "the same as the stored score"
            )
        part = account_part(account[2], result, model) if account is not None else None
        skipped = not_counted(
            contact, events, result, model, result.scored_at, stored=result is kept
        )
        rows = store.score_history(crm, contact.id)
        named = _named_results(model, contact, events, enrichment, now)
        if as_json:
            other = fresh if result is kept else kept
            extra: dict[str, object] = {
                "explained": "stored" if result is kept else "recomputed",
                "account": part.as_json() if part is not None else None,
                "recomputed" if result is kept else "stored": None
                if other is None
                else {
                    "scored_at": other.scored_at.isoformat(),
                    "score": other.score,
                    "grade": other.grade,
                    "priority": other.priority,
                    "mql": other.lifecycle.mql,
                    "mql_reason": other.lifecycle.mql_reason,
                    "model_version": other.model_version,
                    "model_fingerprint": other.model_fingerprint,
                    "same": not diff,
                    "differences": diff,
                },
            }
            if result is kept:
                extra["named_scores_as_of"] = now_text if named else None
            _emit_explanation(contact, result, skipped, rows, model, named, extra)
            return
        print_explanation(
            _console(),
            contact,
            result,
            events,
            [n.text for n in skipped],
            history_lines(rows),
            score_name=model.lifecycle_name if named else None,
            when=when,
            account=part,
            compared=compared,
        )
        _print_named(named, events, now_text if result is kept else None)
    finally:
        store.close()


def _contact_account(
    store: Any, settings: Settings, contact: Any, model: LoadedModel
) -> tuple[Any, Any, Any] | None:
    """With accounts on (the setting and the model's section): the sync's account stage, the
    contact's account as last scored (its result) and its stored row; None otherwise or when
    the contact has no scored account."""
    from connector.account_stage import AccountStage, _as_result

    if not settings.accounts:
        return None
    stage = AccountStage.detached(store, settings.crm, model)
    if not stage.enabled():
        return None
    link = store.contact_accounts_many(settings.crm, [contact.id]).get(contact.id)
    row = store.account_score(settings.crm, link.account_id) if link is not None else None
    return None if row is None else (stage, _as_result(row), row)


def _account_under(
    store: Any,
    settings: Settings,
    account: tuple[Any, Any, Any],
    model: LoadedModel,
    now: datetime,
    enricher: Any,
) -> tuple[Any, Any, Any]:
    """`_contact_account`'s account scored again under `model` (its stage's) from its live
    members, each scored with `model` as of `now`, as the sync scores an account
    (`AccountStage.score_of`); reads only. The row explain shows carries the new score,
    grade and MQA verdict."""
    from dataclasses import replace

    from connector.scoring import score

    stage, _, row = account
    crm = settings.crm
    members = list(store.iter_contacts(crm, store.account_member_ids(crm, row.account_id)))
    emails = [m.email for m in members if m.email]
    found = enricher.enrich_many(emails, now) if enricher is not None and emails else {}
    fresh = {
        m.id: score(m, store.events_for(crm, m.id), found.get(m.email or ""), model, now)
        for m in members
    }
    _, _, result = stage.score_of(row.account_id, members, fresh, now)
    shown = replace(
        row, score=result.score, grade=result.grade, mqa=result.mqa,
        mqa_reason=result.mqa_reason, scored_at=now, model_version=result.model_version,
        model_fingerprint=result.model_fingerprint,
    )  # fmt: skip
    return stage, result, shown


def _open_state_or_exit(settings: Settings) -> Any:
    from connector.state.store import StateStore

    if not settings.state_path.exists():
        click.echo(
            f"error: no state DB at {settings.state_path}; run `leadscore sync` first", err=True
        )
        sys.exit(1)
    try:
        return StateStore.open(settings.state_path)
    except ConnectorError as exc:
        _fail(exc)


def _explain_account(
    ctx: click.Context, key: str, model: LoadedModel, now: datetime, as_json: bool
) -> None:
    """`explain --account`: the stored account score, its people, members and history. The
    key is read as `find_account` reads it (a domain normalised, a merged company's survivor;
    notes say so, and name the other accounts a domain matches)."""
    from connector.active_model import in_force_or
    from connector.ops.accounts import explain_found, find_account

    settings = _settings(ctx)
    store = _open_state_or_exit(settings)
    try:
        model = in_force_or(store, settings.crm, model)
        lookup = find_account(store, settings.crm, key, model)
        found = (
            explain_found(store, settings.crm, lookup, model)
            if lookup.account is not None
            else None
        )
    finally:
        store.close()
    if found is None:
        from connector.views import crm_text

        for note in lookup.notes:
            click.echo(f"note: {crm_text(note, 400)}", err=True)
        click.echo(
            f"error: no scored account {key!r} in {settings.state_path} (a domain, a CRM "
            "company id, an account id or a company name; `leadscore accounts` lists them)",
            err=True,
        )
        sys.exit(1)
    if as_json:
        from connector.jsonout import emit

        emit(found)
        return
    from connector.ops.views import print_account_explanation

    print_account_explanation(_console(), found)


@cli.command("accounts")
@click.option(
    "--top",
    "top_n",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="How many accounts to list, hottest first.",
)
@click.option("--json", "as_json", is_flag=True, help="The accounts as one JSON document.")
@click.pass_context
def accounts_cmd(ctx: click.Context, top_n: int, as_json: bool) -> None:
    """The hottest accounts: grade, score, MQA and reason, engaged people, members."""
    from connector.ops.accounts import top_account_rows
    from connector.ops.views import print_accounts

    settings = _settings(ctx)
    store = _open_state_or_exit(settings)
    try:
        rows = top_account_rows(store, settings.crm, top_n)
        scored = store.count_account_scores(settings.crm)
        mqas = store.count_mqas(settings.crm)
    finally:
        store.close()
    if as_json:
        from connector.jsonout import emit

        emit({"scored": scored, "mqas": mqas, "accounts": rows})
        return
    print_accounts(_console(), rows, scored, mqas, accounts_on=settings.accounts)


def _state_cache(settings: Settings):  # type: ignore[no-untyped-def]
    """The enrichment cache in the state DB when there is one (closed at exit)."""
    import atexit

    from connector.enrich.cache import InMemoryCompanyCache
    from connector.state.store import StateStore

    if not Path(settings.state_path).exists():
        return InMemoryCompanyCache()
    store = StateStore.open(settings.state_path)
    atexit.register(store.close)
    return store.company_cache


sandbox_group = LazyGroup("sandbox", help="Run a CRM emulator on 127.0.0.1 for manual trials.")
sandbox_group.example_prefix = "sandbox "
cli.add_command(sandbox_group)

# Commands that live beside the code they drive, imported only when one of them runs (or shows
# its own --help): (where, the command's name, module, attribute, its short help in the
# list of `leadscore --help`, which `tests/test_cli_help.py` checks against the command's own)
LAZY: tuple[tuple[LazyGroup, str, str, str, str], ...] = (
    (sandbox_group, "hubspot", "connector.sandbox.hubspot_cli", "sandbox_hubspot_cmd",
     "Run a local HubSpot API sandbox (loopback only) until Ctrl-C."),
    (sandbox_group, "marketo", "connector.sandbox.marketo_cli", "sandbox_marketo_cmd",
     "Run a local Marketo REST/bulk API sandbox (loopback only) until Ctrl-C."),
    (cli, "rescore", "connector.ops.analysis", "rescore_cmd",
     "After a model change: before → after for every stored contact, then apply it."),
    (cli, "simulate", "connector.ops.analysis", "simulate_cmd",
     "What-if on the stored data: MQLs now vs at another threshold or with another model."),
    (cli, "status", "connector.ops.analysis", "status_cmd",
     "Last runs, cursors, queues and model versions, from the state DB (no CRM call)."),
    (cli, "dead-letters", "connector.ops.analysis", "dead_letters_cmd",
     "Open dead letters (contact, kind, attempts, reason); --retry re-sends the writes."),
    (cli, "report", "connector.ops.report", "report_cmd",
     "Conversion MQL → SQL → customer by grade, score band, program and model version."),
    (cli, "run", "connector.worker.cli", "run_cmd",
     "Run the worker: a sync every LEADSCORE_SYNC_INTERVAL_MINUTES, a rescore of contacts..."),
    (cli, "backfill", "connector.worker.cli", "backfill_cmd",
     "Pull the full history of a window, then score and write back what changed."),
    (cli, "calibrate", "connector.calibrate.cli", "calibrate_cmd",
     "How did the scored leads convert, and should the points change? Suggests a model..."),
    (cli, "optimize", "connector.ops.optimize", "optimize_cmd",
     "Rewrite the stored events in contact order: faster full rescores after months of syncs."),
)  # fmt: skip


def _attribute(module: str, attr: str) -> Callable[[], click.Command]:
    def load() -> click.Command:
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command), f"{module}.{attr}"
        return command

    return load


def _enrich_command() -> click.Command:
    from connector.enrich.cli import make_enrich_command

    return make_enrich_command(_state_cache)


for _group, _name, _module, _attr, _short in LAZY:
    _group.add_lazy(_name, _attribute(_module, _attr), _short)
cli.add_lazy(
    "enrich",
    _enrich_command,
    "Show what enrichment makes of EMAIL: domain, kind, each provider's answer, cache.",
)
# `leadscore sync --state x.db` as well as `leadscore --state x.db sync`: the commands here
# now, and each lazy one as it is loaded
add_global_options(cli)
cli.on_load = with_global_options


def main() -> None:
    run_cli(cli)  # a user error anywhere: one line and an exit code, never a traceback
