"""Operator commands over the state DB: `rescore`, `simulate`, `status`, `dead-letters`.

A thin click layer: the logic lives in `rescore.py`, `simulate.py`, `status.py` and
`dead_letters.py` (plain functions tests call directly); `views.py` renders. Registered by
`connector.cli.PLUGINS`. The global `--crm`/`--state` options arrive through `ctx.obj`.

Exit codes: 0 done; 1 a problem with the input (no state DB, nothing stored, a bad model file,
dead letters still failing after `--retry`); 2 bad usage or configuration; the pipeline's own
codes when `rescore` applies (4 daily quota, 5 token refused, ...).
"""

from __future__ import annotations

import math
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from connector.errors import ConnectorError
from connector.jsonout import jsonable
from connector.model.loader import LoadedModel
from connector.ops.common import (
    analysis_enricher,
    console,
    fail,
    load_model_or_exit,
    open_existing_store,
    refuse_beside_a_run_worker,
    settings_from,
)
from connector.pipeline import Enricher
from connector.pipeline.summary import companies_part
from connector.progress import contacts_progress
from connector.state.store import DeadLetter, StateStore

if TYPE_CHECKING:
    from connector.model.loader import LoadedModel, NamedModel
    from connector.ops.dead_letters import RecordLabel
    from connector.ops.rescore import Applied
    from connector.ops.simulate import Simulation
    from connector.settings import Settings


def _now() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------------ rescore


@click.command("rescore")
@click.option("--model", "model_path", type=click.Path(dir_okay=False), help="The new model file.")
@click.option("--dry-run", is_flag=True, help="Show before → after for everyone; write nothing.")
@click.option(
    "--sample",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="How many changed contacts to show in detail.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Processes sharing the contacts [default: LEADSCORE_RESCORE_WORKERS, else every core].",
)
@click.option(
    "--json", "as_json", is_flag=True, help="With --dry-run: the preview as one JSON document."
)
@click.option(
    "--score",
    "score_name",
    metavar="NAME",
    help="Only this score of a model with several (its properties alone) [default: all].",
)
@click.pass_context
def rescore_cmd(
    ctx: click.Context,
    model_path: str | None,
    dry_run: bool,
    sample: int,
    workers: int | None,
    as_json: bool,
    score_name: str | None,
) -> None:
    """After a model change: before → after for every stored contact, then apply it.

    Shows grade transitions, MQLs gained and lost, score deltas and a sample of who changes
    and why. Without --dry-run it then rescores everybody with the model and writes back
    only what changed.
    """
    from connector.active_model import (
        configured_explicitly,
        describe,
        describe_active,
        rebuild,
        version_not_bumped,
    )
    from connector.ops.parallel import plan_workers
    from connector.ops.rescore import preview_rescore
    from connector.ops.views import print_preview

    if as_json and not dry_run:
        fail("--json goes with --dry-run (the preview); apply without --json", 2)
    configured = settings_from(ctx)
    settings = settings_from(ctx, model_path=Path(model_path) if model_path else None)
    model = load_model_or_exit(str(settings.model_path))
    out = console()
    workers = workers or settings.rescore_workers

    def read_only(st: StateStore) -> Enricher | None:
        return analysis_enricher(settings, st)

    store = open_existing_store(settings)
    try:
        if not dry_run:
            _refuse_beside_a_run_worker(store)  # before anything else is said or read
        active = store.get_active_model(settings.crm)
        if active is not None and not configured_explicitly(settings):
            model = rebuild(active)  # no model named: rescore everybody with the model in force
        if active is not None and active.fingerprint != model.fingerprint:
            click.echo(f"note: the model in force is {describe_active(active)}", err=True)
        # before any rollout, the model most stored scores come from stands for the one in force
        stored = store.stored_models(settings.crm)[:1] if active is None else []
        reference = [(active.version, active.fingerprint)] if active is not None else []
        for version, fp in reference or [(v, f) for v, f, _ in stored]:
            bumped = version_not_bumped(model, version, fp)
            if bumped is not None:
                click.echo(bumped, err=True)
        total = store.count_contacts(settings.crm)
        if total == 0:
            fail(f"no {settings.crm} contacts in {settings.state_path}; run `leadscore sync` first")
        check_score_name(model, score_name)
        note_accounts_off(store, settings, model)
        if score_name is not None and model.named_score(score_name) is not None:
            _rescore_named(ctx, settings, store, model, score_name, dry_run, as_json, total)
            return
        processes = plan_workers(store, settings.crm, workers)
        label = f"Previewing model {model.version}: {total:,} contacts, {processes} process(es)"
        with contacts_progress(label, total) as advance:
            preview = preview_rescore(
                store,
                settings.crm,
                model,
                read_only(store),
                _now(),
                sample=sample,
                write_company_fields=settings.write_company_fields,
                workers=workers,
                enricher_for=read_only,
                progress=advance,
                accounts=settings.accounts,
            )
    except ConnectorError as exc:
        fail(str(exc), exc.exit_code)
    finally:
        store.close()
    if as_json:
        from connector.jsonout import emit

        # `after` (every contact's new score), `write_ids` and `members` (each account
        # member's part) stay out: counts and a sample
        doc = jsonable(preview, skip=("after", "write_ids", "members", "waiting", "shown"))
        emit({**doc, "dry_run": True})
        return
    print_preview(out, preview, dry_run=dry_run)
    companies = preview.accounts.companies_to_write if preview.accounts is not None else 0
    and_companies = f" and {companies} company record(s)" if companies else ""
    if dry_run:
        click.echo(
            f"Would update {preview.to_write} contact(s){and_companies} (dry run, nothing "
            "written). Apply with the same command without --dry-run."
        )
        return
    from connector.app import build_enricher, open_app
    from connector.ops.rescore import apply_rescore

    def writable(st: StateStore) -> Enricher | None:  # what open_app gives its pipeline
        return build_enricher(settings, st)

    try:
        with open_app(settings, model, rollout=True) as app:
            _refuse_beside_a_run_worker(app.store)  # one may have started during the preview
            label = f"Rescoring with model {model.version} (after a sync)"
            with contacts_progress(label, total) as advance:
                applied = apply_rescore(
                    app.pipeline,
                    model,
                    workers=workers,
                    enricher_for=writable,
                    progress=advance,
                    score=score_name,
                )
    except ConnectorError as exc:
        fail(str(exc), exc.exit_code)
    if not _print_runs(applied):
        sys.exit(applied.exit_code or 1)
    assert applied.rescore is not None
    differs = ""
    contacts = applied.written
    if contacts != preview.to_write or applied.companies_written != companies:
        differs = (
            f"; the sync first pulled {applied.sync.pulled} changed contact(s) from the CRM, "
            f"{applied.sync.dead_lettered + applied.rescore.dead_lettered} were dead-lettered"
        )
    wrote_companies = ""
    if applied.companies_written or companies:
        wrote_companies = (
            f", {applied.companies_written} company record(s) (the preview said {companies})"
        )
    click.echo(
        f"rescored with model {model.version}: wrote {contacts} contact(s) "
        f"(the preview said {preview.to_write}){wrote_companies}{_by_the_sync(applied)}{differs}"
    )
    if active is None or active.fingerprint != model.fingerprint:
        click.echo(
            f"model {describe(model.version, model.fingerprint)} is now the model in force "
            "(recorded in the state DB): sync, run and backfill score with it"
        )
    if configured_explicitly(configured) and model_path:
        from connector.model.loader import validate_model_file

        named, _ = validate_model_file(configured.model_path)
        if named is None or named.fingerprint != model.fingerprint:
            click.echo(
                f"note: LEADSCORE_MODEL_PATH still names {configured.model_path}, another "
                f"model: sync, run and backfill refuse to start until it names "
                f"{settings.model_path} or is unset",
                err=True,
            )
    sys.exit(applied.exit_code)


def _print_runs(applied: Applied) -> bool:
    """The summary lines of an applied rescore's two runs, the first named as the sync before
    the rescore (its `written` are the contacts it pulled, already scored with the new model;
    the rescore's line counts only the rescore's own writes). False when the sync stopped and
    nothing was rescored."""
    click.echo(f"before the rescore, {applied.sync.line()}")
    if applied.rescore is None:
        click.echo("error: the sync before the rescore stopped; nothing was rescored", err=True)
        return False
    click.echo(applied.rescore.line())
    return True


def _by_the_sync(applied: Applied, *, of_them: bool = True) -> str:
    """Beside the contacts an applied rescore wrote: how many the sync before it wrote
    (`of_them`: counted in that total; else besides it), nothing when it wrote none, so that
    neither summary line reads as the whole."""
    sync = applied.sync
    if not (sync.written or sync.companies_written):
        return ""
    which = "of them" if of_them else "contact(s) besides"
    return (
        f"; the sync before the rescore wrote {sync.written} {which}"
        f"{companies_part(sync.companies_written)}, scored with the new model"
    )


def check_score_name(
    model: LoadedModel, name: str | None, other: LoadedModel | None = None
) -> None:
    """`--score NAME` must name one of the model's scores, or of `other` (a `--model` file
    that may add a score) when given (exit 2, with a did-you-mean)."""
    known = list(model.score_names())
    if other is not None:
        known += [n for n in other.score_names() if n not in known]
    if name is None or name in known:
        return
    from connector.model.problems import did_you_mean

    fail(
        f"--score: the model has no score {name!r}{did_you_mean(name, known)}; "
        f"its scores: {', '.join(known)}",
        2,
    )


def _rescore_named(
    ctx: click.Context,
    settings: Settings,
    store: StateStore,
    model: LoadedModel,
    name: str,
    dry_run: bool,
    as_json: bool,
    total: int,
) -> None:
    """`rescore --score NAME` of a named score: its preview (before → after, how many to
    write), then, without --dry-run, a sync and that score alone recomputed and written."""
    from connector.ops.rescore import apply_rescore, preview_named

    preview = preview_named(
        store, settings.crm, model, name, analysis_enricher(settings, store), _now()
    )
    store.close()
    if as_json:
        from connector.jsonout import emit

        emit({**jsonable(preview), "dry_run": True})
        return
    click.echo(preview.headline())
    if dry_run:
        click.echo(
            f"Would update {preview.to_write} contact(s) (score {name} only; dry run, nothing "
            "written). Apply with the same command without --dry-run."
        )
        return
    from connector.app import open_app

    try:
        with open_app(settings, model, rollout=True) as app:
            _refuse_beside_a_run_worker(app.store)
            with contacts_progress(f"Rescoring score {name} (after a sync)", total) as advance:
                applied = apply_rescore(app.pipeline, model, progress=advance, score=name)
    except ConnectorError as exc:
        fail(str(exc), exc.exit_code)
    if not _print_runs(applied):
        sys.exit(applied.exit_code or 1)
    assert applied.rescore is not None
    click.echo(
        f"rescored score {name} with model {model.version}: wrote {applied.rescore.written} "
        f"contact(s), its properties only (the preview said {preview.to_write})"
        f"{_by_the_sync(applied, of_them=False)}"
    )
    sys.exit(applied.exit_code)


def _refuse_beside_a_run_worker(store: StateStore) -> None:
    """Applying a rescore syncs, rewrites every score and writes to the CRM: not beside a
    `leadscore run` worker doing the same on this state DB."""
    refuse_beside_a_run_worker(
        store,
        "apply the rescore, then start it again (it resumes where it stopped). "
        "`leadscore rescore --dry-run` previews meanwhile",
    )


# ------------------------------------------------------------------------ simulate


@click.command("simulate")
@click.option("--threshold", type=float, help="MQL threshold to try with the current model.")
@click.option(
    "--model", "model_path", type=click.Path(dir_okay=False), help="Another model file to try."
)
@click.option(
    "--mqa-threshold",
    type=float,
    help="MQA threshold to try (account scoring on), alone or with --threshold / --model.",
)
@click.option("--json", "as_json", is_flag=True, help="The simulation as one JSON document.")
@click.option(
    "--score",
    "score_name",
    metavar="NAME",
    help="Simulate this score of a model with several (its threshold) [default: the lifecycle].",
)
@click.pass_context
def simulate_cmd(
    ctx: click.Context,
    threshold: float | None,
    model_path: str | None,
    mqa_threshold: float | None,
    as_json: bool,
    score_name: str | None,
) -> None:
    """What-if on the stored data: MQLs now vs at another threshold or with another model.

    One of --threshold N or --model PATH, or --mqa-threshold N (with either, or alone).
    With account scoring on, also the accounts: grade changes, MQA flips and the contacts
    their MQA qualifies. Nothing is written, to the state DB or the CRM.
    """
    from connector.ops.simulate import simulate_model, simulate_threshold
    from connector.ops.views import print_simulation

    if (threshold is not None and model_path is not None) or (
        threshold is None and model_path is None and mqa_threshold is None
    ):
        fail("give exactly one of --threshold N or --model PATH (or --mqa-threshold N)", 2)
    if threshold is not None and (not math.isfinite(threshold) or threshold < 0):
        fail(f"--threshold must be a number of points, 0 or more (got {threshold:g})", 2)
    from connector.active_model import in_force_or

    settings = settings_from(ctx)
    _check_mqa_threshold(mqa_threshold, settings.accounts)
    current = load_model_or_exit(str(settings.model_path))
    other = load_model_or_exit(model_path) if model_path else None
    store = open_existing_store(settings)
    try:
        current = in_force_or(store, settings.crm, current)  # "now" is the model in force
        if store.count_contacts(settings.crm) == 0:
            fail(f"no {settings.crm} contacts in {settings.state_path}; run `leadscore sync` first")
        _check_mqa_section(mqa_threshold, other or current)
        note_accounts_off(store, settings, other or current)
        enricher = analysis_enricher(settings, store)
        accounts = settings.accounts
        # a score new in --model (not in the model in force yet) is previewed against none
        check_score_name(current, score_name, other)
        named = _named_of(current, other, score_name)
        if named is not None:
            sim = _simulate_named(store, settings.crm, current, named, other, enricher, threshold)
        elif other is not None:
            sim = simulate_model(
                store,
                settings.crm,
                current,
                other,
                enricher,
                _now(),
                accounts=accounts,
                mqa_threshold=mqa_threshold,
            )
        else:
            alone = threshold is None  # the MQA threshold alone: no contact threshold curve
            if threshold is None:
                threshold = float(current.model.lifecycle.mql.threshold)
            sim = simulate_threshold(
                store,
                settings.crm,
                current,
                enricher,
                _now(),
                threshold,
                curve=[] if alone else None,
                accounts=accounts,
                mqa_threshold=mqa_threshold,
            )
    except ConnectorError as exc:
        fail(str(exc), exc.exit_code)
    finally:
        store.close()
    if as_json:
        from connector.jsonout import emit

        doc = jsonable(sim, skip=("by_grade", "curve", "shown"))
        doc["by_grade"] = {
            g: {"current": now_n, "simulated": sim_n} for g, (now_n, sim_n) in sim.by_grade.items()
        }
        doc["curve"] = [{"threshold": t, "mqls": n} for t, n in sim.curve]
        if named is not None:  # a named score: its "MQLs" are the qualified contacts
            doc["score"] = named.name
        emit(doc)
        return
    print_simulation(console(), sim, score=named.name if named is not None else None)


def _named_of(
    current: LoadedModel, other: LoadedModel | None, name: str | None
) -> NamedModel | None:
    """The named score `--score NAME` simulates: the model in force's, or --model's when the
    score is new there."""
    if name is None:
        return None
    found = current.named_score(name)
    if found is None and other is not None:
        found = other.named_score(name)
    return found


def _simulate_named(
    store: StateStore,
    crm: str,
    current: LoadedModel,
    named: NamedModel,
    other: LoadedModel | None,
    enricher: Enricher | None,
    threshold: float | None,
) -> Simulation:
    """`simulate --score NAME` of a named score: another threshold, or the same score in
    another model file (which must have it)."""
    from connector.ops.named_simulate import simulate_named_model, simulate_named_threshold

    if other is None:
        assert threshold is not None
        return simulate_named_threshold(store, crm, named, enricher, _now(), threshold)
    theirs = other.named_score(named.name)
    if theirs is None:
        fail(f"--score: the model {other.path} has no score {named.name!r}", 2)
    mine = current.named_score(named.name)  # None: the score is new in --model
    return simulate_named_model(
        store,
        crm,
        mine,
        theirs,
        enricher,
        _now(),
        f"model {current.version} ({current.fingerprint})"
        + ("" if mine is not None else f", no score {named.name!r}"),
        f"model {other.version} ({other.fingerprint})",
    )


def note_accounts_off(store: StateStore, settings: Settings, model: LoadedModel) -> None:
    """A state DB holding account scores, previewed without account scoring (the setting off,
    or `model` without an `accounts:` section): say so on stderr (every contact is then
    scored without its account: an MQL at its account's MQA comes out as no MQL)."""
    from connector.app import accounts_off_note

    line = accounts_off_note(settings, model, store, preview=True)
    if line is not None:
        click.echo(line, err=True)


def _check_mqa_threshold(mqa_threshold: float | None, accounts_on: bool) -> None:
    """`--mqa-threshold` needs a number of points and account scoring on (exit 2)."""
    if mqa_threshold is None:
        return
    if not math.isfinite(mqa_threshold) or mqa_threshold < 0:
        fail(f"--mqa-threshold must be a number of points, 0 or more (got {mqa_threshold:g})", 2)
    if not accounts_on:
        fail("--mqa-threshold needs account scoring on (LEADSCORE_ACCOUNTS=true)", 2)


def _check_mqa_section(mqa_threshold: float | None, model: LoadedModel) -> None:
    from connector.ops.simulate_accounts import accounts_enabled

    if mqa_threshold is not None and not accounts_enabled(model):
        fail(
            f"--mqa-threshold: the model {model.version} ({model.path}) has no enabled "
            "accounts: section",
            2,
        )


# ------------------------------------------------------------------------ status


@click.command("status")
@click.option(
    "--runs",
    "n_runs",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="How many recent runs to list.",
)
@click.option("--json", "as_json", is_flag=True, help="The status as one JSON document.")
@click.pass_context
def status_cmd(ctx: click.Context, n_runs: int, as_json: bool) -> None:
    """Last runs, cursors, queues and model versions, from the state DB (no CRM call)."""
    from connector.active_model import configured_explicitly
    from connector.model.loader import validate_model_file
    from connector.ops.status import build_status
    from connector.ops.views import print_status
    from connector.settings import state_path_label

    settings = settings_from(ctx)
    model, problems = validate_model_file(settings.model_path)
    problem = f"{settings.model_path}: {'; '.join(problems)}" if problems else None
    store = open_existing_store(settings)
    try:
        st = build_status(
            store,
            settings.crm,
            _now(),
            model,
            model_problem=problem,
            explicit=configured_explicitly(settings),
            runs=n_runs,
        )
    except ConnectorError as exc:
        fail(str(exc), exc.exit_code)
    finally:
        store.close()
    if as_json:
        from connector.jsonout import emit

        doc = jsonable(st, skip=("cursors", "stored_models"))
        doc["state_path"] = str(settings.state_path)
        doc["cursors"] = [jsonable(c, skip=("raw",)) for c in st.cursors]
        doc["stored_models"] = [
            {"version": v, "fingerprint": fp, "contacts": n} for v, fp, n in st.stored_models
        ]
        emit(doc)
        return
    print_status(console(), st, state_path_label(settings.state_path))


# ------------------------------------------------------------------------ dead letters


@click.group("dead-letters", invoke_without_command=True, subcommand_metavar="[dismiss ID...]")
@click.option("--retry", is_flag=True, help="Re-send the write dead letters (diff-only).")
@click.option("--kind", type=click.Choice(["write", "input"]), help="Only this kind.")
@click.option(
    "--all", "with_dismissed", is_flag=True, help="The dismissed dead letters too (marked)."
)
@click.option("--json", "as_json", is_flag=True, help="The dead letters (or retry) as JSON.")
@click.pass_context
def dead_letters_cmd(
    ctx: click.Context, retry: bool, kind: str | None, with_dismissed: bool, as_json: bool
) -> None:
    """Open dead letters (contact, kind, attempts, reason); --retry re-sends the writes.

    `dismiss ID...` dismisses input dead letters known and accepted. Exit 1 when a retried
    write fails again.
    """
    from connector.ops.dead_letters import contact_labels, list_dead_letters, record_labels
    from connector.ops.views import print_dead_letters

    if ctx.invoked_subcommand is not None:
        if retry or kind or with_dismissed or as_json:
            fail(f"--retry, --kind, --all and --json list or retry; `{ctx.invoked_subcommand}` "
                 "takes its own options", 2)  # fmt: skip
        return
    if retry and kind == "input":
        fail(
            "input dead letters are records the CRM sent that could not be read; they are "
            "not re-sent (fix the record in the CRM and the next sync pulls it again)",
            2,
        )
    if retry and with_dismissed:
        fail("--all lists the dismissed dead letters too; --retry re-sends the open writes", 2)
    settings = settings_from(ctx)
    out = console()
    store = open_existing_store(settings)
    try:
        unresolved = list_dead_letters(store, settings.crm, kind, with_dismissed=True)
        letters = [d for d in unresolved if with_dismissed or d.dismissed_at is None]
        shown = record_labels(store, settings.crm, letters)
        labels = contact_labels(  # the write dead letters' contacts, which a retry reports on
            store,
            settings.crm,
            [d.contact_id for d in letters if d.kind == "write" and d.contact_id],
        )
    except ConnectorError as exc:
        fail(str(exc), exc.exit_code)
    finally:
        store.close()
    dismissed = sum(d.dismissed_at is not None for d in unresolved)
    if not retry:
        if as_json:
            from connector.jsonout import emit

            emit(
                {
                    "open": len(unresolved) - dismissed,
                    "dismissed": dismissed,
                    "dead_letters": [_letter_json(d, shown.get(d.id)) for d in letters],
                }
            )
            return
        print_dead_letters(out, letters, shown, kind, hidden=0 if with_dismissed else dismissed)
        return
    if not any(d.kind == "write" for d in letters):
        if as_json:
            from connector.jsonout import emit

            emit({"retried": [], "still_open": 0, "stopped": None})
            return
        click.echo("No open write dead letters to retry.")
        return
    from connector.app import open_app
    from connector.ops.dead_letters import retry_write_dead_letters
    from connector.ops.views import print_retry

    model = load_model_or_exit(str(settings.model_path))
    try:
        with open_app(settings, model, on_note=lambda line: click.echo(line, err=True)) as app:
            result = retry_write_dead_letters(app.pipeline)
    except ConnectorError as exc:
        fail(str(exc), exc.exit_code)
    summary = result.summary
    if as_json:
        from connector.jsonout import emit

        emit(
            {
                "retried": [
                    {**jsonable(o), "contact": labels.get(o.contact_id or "", None)}
                    for o in result.outcomes
                ],
                "still_open": result.still_open,
                "stopped": summary.message if summary is not None and summary.exit_code else None,
            }
        )
    else:
        print_retry(out, result, labels)
    if summary is not None and summary.exit_code:
        click.echo(f"error: the retry stopped: {summary.message}", err=True)
        sys.exit(summary.exit_code)
    sys.exit(1 if result.still_open else 0)


def _letter_json(d: DeadLetter, record: RecordLabel | None) -> dict[str, object]:
    """One dead letter for --json (its payload stays out: `leadscore dead-letters` is a list):
    a contact's names it in `contact_id`/`contact` (its e-mail), a company's in
    `company_id`/`company` (its name, else its domain), an event's in `event_id` and its
    contact's `contact_id`/`contact`."""
    contact = record if record is not None and record.kind == "contact" else None
    company = record if record is not None and record.kind == "company" else None
    event = record if record is not None and record.kind == "event" else None
    # an event's contact: its id, or an e-mail event's recipient address (no id: `contact`)
    by_address = event is not None and "@" in (event.owner or "")
    event_contact = (event.owner if by_address else event.name) if event else None
    return {
        "id": d.id,
        "kind": d.kind,
        "contact_id": contact.id
        if contact
        else (event.owner if event and not by_address else None),
        "contact": contact.name if contact else event_contact,
        "company_id": company.id if company else None,
        "company": company.name if company else None,
        "event_id": event.id if event else None,
        "reason": d.reason,
        "attempts": d.attempts,
        "first_seen_at": d.first_seen_at.isoformat(),
        "last_tried_at": d.last_tried_at.isoformat(),
        "state": "open" if d.dismissed_at is None else "dismissed",
        "dismissed_at": d.dismissed_at.isoformat() if d.dismissed_at else None,
    }


@dead_letters_cmd.command("dismiss")
@click.argument("ids", nargs=-1, metavar="ID...")
@click.option("--all-input", is_flag=True, help="Every open input dead letter.")
@click.pass_context
def dismiss_cmd(ctx: click.Context, ids: tuple[str, ...], all_input: bool) -> None:
    """Dismiss accepted input dead letters by id.

    The ids are those `leadscore dead-letters` shows. A dismissed dead letter is not listed
    (`--all` shows it), counted, nor fails a sync with LEADSCORE_FAIL_ON_DEAD_LETTERS while its
    record reads the same; read again with another payload it reopens, read cleanly it is
    resolved. One line per id. Exit 1 when an id is unknown or not an input dead letter (the
    others are dismissed all the same).
    """
    from connector.ops.dead_letters import dismiss_dead_letters, list_dead_letters, record_labels
    from connector.ops.views import dismissal_line

    if bool(ids) == all_input:
        fail("name the dead letters to dismiss by id (`leadscore dead-letters` lists them), "
             "or give --all-input alone", 2)  # fmt: skip
    settings = settings_from(ctx)
    store = open_existing_store(settings)
    try:
        if all_input:
            ids = tuple(str(d.id) for d in list_dead_letters(store, settings.crm, "input"))
        letters = list_dead_letters(store, settings.crm, with_dismissed=True)
        labels = record_labels(store, settings.crm, letters)
        dismissed_at = {d.id: d.dismissed_at for d in letters}
        outcomes = dismiss_dead_letters(store, settings.crm, list(ids), _now())
    except ConnectorError as exc:
        fail(str(exc), exc.exit_code)
    finally:
        store.close()
    if not outcomes:
        click.echo("No open input dead letters to dismiss.")
        return
    errors = 0
    for i, outcome in outcomes:
        n = int(i) if outcome != "unknown" else -1
        line = dismissal_line(i, outcome, labels.get(n), dismissed_at.get(n), settings.crm)
        error = outcome in ("unknown", "not input")
        errors += error
        click.echo(f"error: {line}" if error else line, err=error)
    sys.exit(1 if errors else 0)
