"""`leadscore calibrate`: learn from outcomes, suggest a model. A thin click layer over
`connector.calibrate.calibrate()` (see the package docstring for every rule it applies).

Exit codes: 0 a suggested model was written; 3 too little data, nothing suggested (the message
says what is missing; a script can tell "nothing to review" from a failure); 2 a configuration
problem (invalid model file, bad option, the `calibrate` extra not installed); 1 no state DB or
a file that cannot be written; 6 a state DB that cannot be used.

Imports nothing heavy at import time (the CLI registers this command on every start): numpy and
scikit-learn are loaded when a calibration runs.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from connector.errors import ConnectorError
from connector.files import write_private

if TYPE_CHECKING:
    from connector.calibrate.core import CalibrationResult
    from connector.calibrate.observe import EnrichFn
    from connector.model.loader import LoadedModel
    from connector.settings import Settings
    from connector.state.store import StateStore
    from connector.types import Enrichment

EXIT_TOO_LITTLE_DATA = 3

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dwh]?)\s*$", re.IGNORECASE)


def parse_horizon(text: str) -> timedelta:
    """`90d`, `12w`, `36h` or a plain number of days."""
    m = _DURATION.match(text)
    if m is None:
        raise click.BadParameter(
            f"{text!r} is not a duration such as 90d, 12w or 36h", param_hint="--horizon"
        )
    value, unit = float(m.group(1)), (m.group(2) or "d").lower()
    delta = {"d": timedelta(days=value), "w": timedelta(weeks=value), "h": timedelta(hours=value)}
    if value <= 0:
        raise click.BadParameter("the horizon must be positive", param_hint="--horizon")
    return delta[unit]


def _model_in_force(settings: Settings, store: StateStore, model: LoadedModel) -> LoadedModel:
    """Calibrate the model in force (connector.active_model) unless a model file was named:
    its file, when that still holds it; else say which model is calibrated."""
    from connector.active_model import configured_explicitly, describe_active, file_of_active

    active = store.get_active_model(settings.crm)
    if active is None or active.fingerprint == model.fingerprint:
        return model
    if not configured_explicitly(settings):
        found = file_of_active(active)
        if found is not None:
            return found
    click.echo(
        f"note: calibrating {model.path} ({model.version}, {model.fingerprint}); the model in "
        f"force is {describe_active(active)}",
        err=True,
    )
    return model


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def state_enrich_fn(settings: Settings, store: StateStore) -> EnrichFn | None:
    """Enrichment that never calls out: the local firmographics file and the domain heuristic,
    then whatever the sync cached in the state DB for the domain (of any age). The function
    also answers `local_company(domain)` (the local providers), as the enricher an account
    roll-up asks for blank firmographics does (calibrate's accounts refit scores the accounts
    as `simulate` does)."""
    try:
        from connector.enrich.enricher import offline_enricher
    except ImportError:  # pragma: no cover - enrichment not in this build
        return None
    base = offline_enricher(settings.firmographics_path, settings.freemail_path)

    def enrich(emails: list[str], now: datetime) -> dict[str, Enrichment]:
        found = base.enrich_many(emails, now)
        out: dict[str, Enrichment] = {}
        for email, e in found.items():
            weak = e.company is None or e.company.source == "heuristic"
            if e.email_kind == "corporate" and e.domain and weak:
                entry = store.get_company_entry(e.domain)
                if entry is not None and entry.company is not None:
                    e = dataclasses.replace(e, company=entry.company)
            out[email] = e
        return out

    enrich.local_company = base.local_company  # type: ignore[attr-defined]
    return enrich


def _emit_json(result: CalibrationResult, written: str | None) -> None:
    from connector.calibrate.jsondoc import calibration_document
    from connector.jsonout import emit

    emit(calibration_document(result, written))


def write_html(
    path: Path,
    result: CalibrationResult,
    store: StateStore,
    crm: str,
    now: datetime,
    out_path: str | None = None,
) -> str:
    """A full `leadscore report` page with the calibration as an extra section when the report
    module is there; a standalone page otherwise. Returns which one was written."""
    from connector.calibrate.render import render_calibration_html, render_calibration_page

    fragment = render_calibration_html(result, out_path)
    try:
        from connector.ops.report import build_report, render_html
    except ImportError:
        page, kind = render_calibration_page(result, out_path=out_path), "standalone page"
    else:
        try:
            report = build_report(store, crm, now)
        except ConnectorError:  # the report cannot be built: the calibration still can
            page, kind = render_calibration_page(result, out_path=out_path), "standalone page"
        else:
            page, kind = render_html(report, extra_sections=[fragment]), "report page"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, page)
    return kind


@click.command("calibrate")
@click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False),
    help="The current model (default: LEADSCORE_MODEL_PATH).",
)
@click.option(
    "--horizon",
    "horizon_text",
    default="90d",
    show_default=True,
    help="How long after its first scored engagement a lead may take to reach SQL.",
)
@click.option(
    "--out",
    "out_path",
    default="model.suggested.yaml",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Where to write the suggested model.",
)
@click.option(
    "--target-mql-rate",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.1,
    show_default=True,
    help="Share of leads that should become MQLs.",
)
@click.option(
    "--min-conversions",
    type=click.IntRange(1),
    default=30,
    show_default=True,
    help="Fewer conversions than this: nothing is suggested (exit 3).",
)
@click.option(
    "--min-accounts",
    type=click.IntRange(1),
    default=10,
    show_default=True,
    help="With account scoring on: fewer converted (or non-converted) accounts than this: no "
    "MQA threshold is suggested.",
)
@click.option(
    "--min-test-contacts",
    type=click.IntRange(1),
    default=50,
    show_default=True,
    help="Fewer held-out contacts than this: nothing is suggested (exit 3).",
)
@click.option(
    "--test-fraction",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.3,
    show_default=True,
    help="Share of the newest contacts held out to compare the models.",
)
@click.option(
    "--min-rule-fires",
    type=click.IntRange(1),
    default=10,
    show_default=True,
    help="A rule firing on fewer training contacts keeps its points.",
)
@click.option(
    "--allow-sign-flips",
    is_flag=True,
    help="Apply sign flips the data strongly supports (always reported).",
)
@click.option(
    "--keep-profile",
    is_flag=True,
    help="Refit engagement points only: fit points and grades stay as they are.",
)
@click.option(
    "--no-new-rules",
    is_flag=True,
    help="Propose rules to add, but keep them out of the suggested model.",
)
@click.option("--suggest-version", "version", help="Version of the suggested model.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False),
    help="Also write an HTML page (inline SVG/CSS, nothing fetched).",
)
@click.option("--now", "now_text", help="Outcomes as of this ISO-8601 time (default: now).")
@click.option("--json", "as_json", is_flag=True, help="The calibration as one JSON document.")
@click.option(
    "--score",
    "score_name",
    metavar="NAME",
    help="The score to calibrate: the lifecycle score or a named score (`scores:`); its "
    "section alone changes in --out. [default: the lifecycle score only; name each other "
    "score in its own run]",
)
@click.pass_context
def calibrate_cmd(
    ctx: click.Context,
    model_path: str | None,
    horizon_text: str,
    out_path: str,
    target_mql_rate: float,
    min_conversions: int,
    min_accounts: int,
    min_test_contacts: int,
    test_fraction: float,
    min_rule_fires: int,
    allow_sign_flips: bool,
    keep_profile: bool,
    no_new_rules: bool,
    version: str | None,
    html_path: str | None,
    now_text: str | None,
    as_json: bool,
    score_name: str | None = None,
) -> None:
    """How did the scored leads convert, and should the points change? Suggests a model
    (written to --out, never applied): review it, `simulate` it, then `rescore`."""
    from connector.calibrate.core import CalibrationOptions, calibrate, write_suggestion
    from connector.calibrate.render import print_calibration
    from connector.cli import _console, _load_model_or_exit, _parse_now, _settings
    from connector.state.store import StateStore

    horizon = parse_horizon(horizon_text)
    now = _parse_now(now_text)
    settings = _settings(ctx, model_path=Path(model_path) if model_path else None)
    model = _load_model_or_exit(str(settings.model_path))
    options = CalibrationOptions(
        horizon=horizon,
        target_mql_rate=target_mql_rate,
        min_conversions=min_conversions,
        test_fraction=test_fraction,
        min_test_contacts=min_test_contacts,
        min_rule_fires=min_rule_fires,
        allow_sign_flips=allow_sign_flips,
        refit_profile=not keep_profile,
        add_new_rules=not no_new_rules,
        version=version,
        accounts=settings.accounts,
        min_account_conversions=min_accounts,
    )
    if not settings.state_path.exists():
        _fail(f"no state DB at {settings.state_path}; run `leadscore sync` first (or --state PATH)")
    console = _console()
    try:
        store = StateStore.open(settings.state_path)
    except ConnectorError as exc:
        _fail(str(exc), exc.exit_code)
    model = _model_in_force(settings, store, model)
    if score_name is not None and score_name not in model.score_names():
        from connector.ops.analysis import check_score_name

        store.close()
        check_score_name(model, score_name)  # an unknown name: exit 2, with a did-you-mean
    others = [n for n in model.score_names()[1:] if score_name is None]
    if others:
        click.echo(
            f"note: calibrating the lifecycle score ({model.lifecycle_name}); the model's "
            f"other scores ({', '.join(others)}) are calibrated one at a time with --score NAME",
            err=True,
        )
    try:
        try:
            result = calibrate(
                store,
                settings.crm,
                model,
                now=now,
                options=options,
                enrich=state_enrich_fn(settings, store),
                score=score_name,
            )
        except ConnectorError as exc:
            _fail(str(exc), exc.exit_code)
        written: str | None = None
        if result.suggestion is not None:
            try:
                write_suggestion(result, model, out_path)
            except OSError as exc:
                _fail(f"cannot write {out_path}: {exc.strerror}")
            except ConnectorError as exc:  # pragma: no cover - validated before writing
                _fail(str(exc), exc.exit_code)
            written = out_path
        if as_json:
            _emit_json(result, written)
        else:
            print_calibration(console, result, out_path=written)
        if html_path:
            try:
                kind = write_html(Path(html_path), result, store, settings.crm, now, written)
            except OSError as exc:
                _fail(f"cannot write {html_path}: {exc.strerror}")
            click.echo(f"wrote {html_path} ({kind})", err=as_json)
    finally:
        store.close()
    sys.exit(EXIT_TOO_LITTLE_DATA if result.suggestion is None else 0)
