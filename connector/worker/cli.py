"""`leadscore run` and `leadscore backfill` (registered by `connector.cli.PLUGINS`): thin click
commands over `run_worker` and `run_backfill`, which tests call directly."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

import click
from rich.console import Console
from rich.progress import TaskID

from connector.cli_common import note_sink
from connector.console import make_console
from connector.errors import ConfigError, ConnectorError, InputError, StopRunError
from connector.model.loader import LoadedModel, validate_model_file
from connector.parse import parse_timestamp
from connector.pipeline import SyncSummary
from connector.progress import progress_bar
from connector.settings import Settings, load_settings
from connector.state.codec import decode_dt
from connector.worker.backfill import BackfillJob, run_backfill
from connector.worker.logs import configure_logging, settings_secrets
from connector.worker.server import WEBHOOK_PATH
from connector.worker.service import WorkerService

if TYPE_CHECKING:
    from connector.state.store import StateStore

log = logging.getLogger("connector.worker")

EXIT_INTERRUPTED = 130
STAGE_LABELS = {
    "contacts": "contacts",
    "events:events": "web events",
    "events:email": "e-mail events",
    "companies": "companies",
    "score": "scoring",
}


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _settings(ctx: click.Context, **more: object) -> Settings:
    overrides = dict(ctx.obj or {})
    overrides.update({k: v for k, v in more.items() if v is not None})
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        _fail(str(exc), exc.exit_code)


def _model(path: Path) -> LoadedModel:
    loaded, problems = validate_model_file(str(path))
    if loaded is None:
        for p in problems:
            click.echo(f"{path}: {p}", err=True)
        _fail(f"{len(problems)} problem(s) in the model file", 2)
    for note in loaded.notes:
        click.echo(f"{path}: warning: {note}", err=True)
    return loaded


@contextmanager
def stop_on_signals(on_stop: Callable[[str], None]) -> Iterator[None]:
    """SIGTERM/SIGINT call `on_stop(name)` once (from the signal handler: it must only set
    flags); a second signal exits at once (the state DB stays consistent: every page is one
    transaction). Only in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    seen: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if seen:
            os.write(2, b"second signal: exiting now; the next run resumes from the state DB\n")
            os._exit(128 + signum)
        seen.append(signum)
        on_stop(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


# ---------------------------------------------------------------------------------- run


def run_worker(
    settings: Settings,
    model: LoadedModel,
    *,
    webhooks: bool = False,
    webhook_url: str | None = None,
    stop: threading.Event | None = None,
    on_ready: Callable[[WorkerService], None] | None = None,
) -> int:
    """Run until `stop` is set or SIGTERM/SIGINT arrives; return the exit code (0 on a clean
    shutdown: the run in flight stopped at a committed boundary)."""
    from connector.app import open_app

    stop = stop or threading.Event()
    secret = settings.hubspot_client_secret
    client_secret = secret.get_secret_value() if secret is not None else ""
    if webhooks and not client_secret:
        raise ConfigError("--webhooks needs LEADSCORE_HUBSPOT_CLIENT_SECRET (the app's secret)")
    if webhooks and settings.crm != "hubspot":
        raise ConfigError("--webhooks is for HubSpot (LEADSCORE_CRM=hubspot)")
    with open_app(settings, model) as app:
        try:
            service = WorkerService(
                app.pipeline,
                state_path=settings.state_path,
                sync_interval_s=settings.sync_interval_minutes * 60,
                rescore_interval_s=settings.rescore_interval_minutes * 60,
                http_host=settings.http_host,
                http_port=settings.http_port,
                client_secret=client_secret if webhooks else None,
                webhook_url=webhook_url,
            )
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {settings.http_host}:{settings.http_port}: {exc}"
            ) from None

        signalled: list[str] = []

        def request_stop(signal_name: str) -> None:
            # in a signal handler: no lock the main thread may hold (not `stop.set()`)
            signalled.append(signal_name)
            service.request_stop()  # the run in flight stops at its next committed boundary

        _hint_optimize(app.store, app.pipeline.crm)  # before the worker's threads start
        with stop_on_signals(request_stop):
            try:
                service.start()
                log.info(
                    "leadscore worker: %s, sync every %g min, rescore every %g min; "
                    "listening on %s (%s)",
                    app.pipeline.crm,
                    settings.sync_interval_minutes,
                    settings.rescore_interval_minutes,
                    service.url,
                    service.endpoints,
                )
                if on_ready is not None:
                    on_ready(service)
                while not (signalled or stop.is_set()):
                    time.sleep(0.1)  # a signal interrupts the sleep; its handler sets the flag
                log.info(
                    "stopping (%s): finishing the work in flight at a committed boundary",
                    signalled[0] if signalled else "requested",
                )
            finally:
                service.stop()
        log.info("leadscore worker stopped cleanly")
    return 0


def _hint_optimize(store: StateStore, crm: str) -> None:
    """A warning at start when the stored events lie spread over the file (`leadscore
    optimize`, which needs the worker stopped): an admin reads the worker's log more often
    than `leadscore status`. The events are counted only for a spread table (20M take
    seconds to count; the sample, milliseconds)."""
    from dataclasses import replace

    from connector.state.layout import SPREAD_HINT

    layout = store.events_layout(events=0)
    if layout.spread < SPREAD_HINT:
        return
    layout = replace(layout, events=store.count_events(crm))
    if layout.worth_optimizing:
        log.warning(
            "%.0f%% of the %s stored events lie apart from their contact's others: full "
            "rescores read a page per event. Stop the worker and run `leadscore optimize` "
            "(it rewrites them in contact order)",
            layout.spread * 100,
            f"{layout.events:,}",
        )


@click.command("run")
@click.option(
    "--webhooks",
    is_flag=True,
    help=f"Also receive HubSpot webhooks on POST {WEBHOOK_PATH} (hand-raisers scored within "
    "seconds); needs LEADSCORE_HUBSPOT_CLIENT_SECRET.",
)
@click.option(
    "--webhook-url",
    envvar="LEADSCORE_WEBHOOK_URL",
    help="The exact target URL set in the HubSpot app, when a proxy rewrites host or path "
    "(signature v3 covers the URL). Default: scheme, Host header and path as received.",
)
@click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False),
    help="Model file [default: LEADSCORE_MODEL_PATH].",
)
@click.pass_context
def run_cmd(
    ctx: click.Context, webhooks: bool, webhook_url: str | None, model_path: str | None
) -> None:
    """Run the worker: a sync every LEADSCORE_SYNC_INTERVAL_MINUTES, a rescore of contacts whose
    score decays every LEADSCORE_RESCORE_INTERVAL_MINUTES, /healthz and /metrics on
    LEADSCORE_HTTP_HOST:LEADSCORE_HTTP_PORT. SIGTERM/Ctrl-C stop it cleanly."""
    settings = _settings(ctx, model_path=Path(model_path) if model_path else None)
    configure_logging(
        json_lines=settings.log_json, level=settings.log_level, secrets=settings_secrets(settings)
    )
    model = _model(settings.model_path)
    try:
        code = run_worker(settings, model, webhooks=webhooks, webhook_url=webhook_url)
    except ConnectorError as exc:
        _fail(str(exc), exc.exit_code)
    sys.exit(code)


# ---------------------------------------------------------------------------------- backfill


class RichBackfillProgress:
    """A rich progress display: one bar per stage with pages, items and the time left."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = progress_bar(console, transient=False, bold_label=True, note=True)
        self.tasks: dict[str, TaskID] = {}
        self.pages: dict[str, int] = {}
        self.contacts_total: int | None = None

    def begin(self, job: BackfillJob, resumed: bool, contacts_total: int | None) -> None:
        verb = "Resuming" if resumed else "Starting"
        self.console.print(
            f"{verb} backfill {_when(job.since)} → {_when(job.until)}"
            + (f" at stage {job.stage} ({job.pages} page(s) already committed)" if resumed else "")
        )
        self.contacts_total = contacts_total
        self.progress.start()

    def stage(self, job: BackfillJob, stage: str, total: int | None) -> None:
        if stage in self.tasks:
            if total is not None:
                self.progress.update(self.tasks[stage], total=total)
            return
        done = job.stage_pages.get(stage, 0)
        completed = 0
        if stage == "contacts":
            total, completed = self.contacts_total, job.contacts
        label = STAGE_LABELS.get(stage, stage)
        self.pages[stage] = done
        self.tasks[stage] = self.progress.add_task(
            label, total=total, completed=completed, note=_pages_note(stage, done)
        )

    def page(self, job: BackfillJob, stage: str, items: int) -> None:
        if stage not in self.tasks:
            self.stage(job, stage, None)
        self.pages[stage] = job.stage_pages.get(stage, self.pages.get(stage, 0))
        self.progress.update(
            self.tasks[stage], advance=items, note=_pages_note(stage, self.pages[stage])
        )

    def end(self, job: BackfillJob, summary: SyncSummary) -> None:
        for task in self.tasks.values():
            t = self.progress.tasks[task]
            if summary.status == "ok" and t.total is None:
                self.progress.update(task, total=t.completed)
        self.progress.stop()


def _when(text: str) -> str:
    return decode_dt(text).strftime("%Y-%m-%d %H:%M UTC")


def _pages_note(stage: str, pages: int) -> str:
    return "" if stage == "score" else f"{pages} page(s)"


@click.command("backfill")
@click.option("--since", "since_text", required=True, help="Start of the window (ISO date/time).")
@click.option("--until", "until_text", help="End of the window (default: when it first starts).")
@click.option("--restart", is_flag=True, help="Discard an unfinished backfill of another window.")
@click.option("--dry-run", is_flag=True, help="Pull and score; write nothing to the CRM.")
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
def backfill_cmd(
    ctx: click.Context,
    since_text: str,
    until_text: str | None,
    restart: bool,
    dry_run: bool,
    model_path: str | None,
    as_json: bool,
) -> None:
    """Pull the full history of a window, then score and write back what changed. Resumable:
    after a crash or Ctrl-C, the same command continues from the last committed page. Never
    moves the live sync's cursors."""
    from connector.app import open_app

    try:
        since = parse_timestamp(since_text, "--since")
        until = parse_timestamp(until_text, "--until") if until_text else None
    except InputError as exc:
        raise click.BadParameter(str(exc)) from None
    settings = _settings(
        ctx,
        dry_run=dry_run or None,
        model_path=Path(model_path) if model_path else None,
    )
    configure_logging(
        json_lines=settings.log_json,
        level="WARNING" if settings.log_level.upper() == "INFO" else settings.log_level,
        secrets=settings_secrets(settings),
    )
    model = _model(settings.model_path)
    console = make_console(stderr=as_json)  # --json: the document alone on stdout
    interrupted: list[str] = []

    def checkpoint(where: str) -> None:
        if interrupted:
            raise StopRunError(f"interrupted ({interrupted[0]})")

    try:
        # the notes before any write: on stderr as `sync` has them (log records in JSON mode)
        note = note_sink(settings.log_json)
        with open_app(settings, model, on_note=note) as app, stop_on_signals(interrupted.append):
            app.pipeline.checkpoint = checkpoint
            result = run_backfill(
                app.pipeline,
                since,
                until,
                restart=restart,
                observer=RichBackfillProgress(console),
            )
    except ConnectorError as exc:
        _fail(str(exc), exc.exit_code)
    summary, job = result.summary, result.job
    if as_json:  # `sync --json`'s keys, and the job's
        from connector.cli import sync_json
        from connector.jsonout import emit

        emit({**sync_json(summary, dry_run=dry_run), "backfill": job.to_state()})
        sys.exit(EXIT_INTERRUPTED if interrupted else summary.exit_code)
    if dry_run and summary.status == "ok":  # what it would write, as `sync --dry-run` shows it
        from connector.ops.views import print_sync_preview

        print_sync_preview(console, summary.planned, summary.to_write, summary.companies_to_write)
    click.echo(summary.line())
    if summary.status == "ok":
        click.echo(
            f"Backfill {_when(job.since)} → {_when(job.until)} done: {job.pages} page(s), "
            f"{job.contacts} "
            f"contact(s), {job.events} event(s); live cursors untouched."
        )
        sys.exit(summary.exit_code)
    # settings, token or state DB: the same command again meets the same error
    fix_first = summary.exit_code in (2, 5, 6) and not interrupted
    click.echo(
        f"Backfill stopped at stage {job.stage} after {job.pages} committed page(s); "
        + ("fix the error above, then run " if fix_first else "run ")
        + "the same command again to resume from there.",
        err=True,
    )
    if interrupted:
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(summary.exit_code or 1)


__all__ = ["backfill_cmd", "run_cmd", "run_worker", "stop_on_signals"]
