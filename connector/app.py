"""Builds the pieces from settings. The CLI and the worker call these; so do tests."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from connector.active_model import configured_explicitly, follow_active, model_in_force
from connector.crm.base import CrmAdapter
from connector.errors import ConfigError
from connector.model.loader import LoadedModel, load_model
from connector.pipeline import COMPANY_FIELDS, Enricher, Pipeline, SyncOptions
from connector.retry import RetryPolicy
from connector.settings import Settings
from connector.state.store import StateStore

log = logging.getLogger("connector.app")


def build_adapter(settings: Settings) -> CrmAdapter:
    policy = RetryPolicy(attempts=settings.retry_attempts, max_seconds=settings.retry_max_seconds)
    if settings.crm == "hubspot":
        from connector.crm.hubspot import HubSpotAdapter, scopes_text

        if settings.hubspot_token is None:
            raise ConfigError(
                "LEADSCORE_HUBSPOT_TOKEN is not set (a HubSpot private-app token with the "
                f"scopes {scopes_text()})"
            )
        return HubSpotAdapter(
            settings.hubspot_token,
            settings.hubspot_base_url,
            timeout_s=settings.request_timeout_seconds,
            retry=policy,
            page_size=settings.hubspot_search_page_size,
            write_batch=settings.hubspot_write_batch,
            search_per_second=settings.hubspot_search_per_second,
            extra_properties=COMPANY_FIELDS if settings.write_company_fields else (),
            accounts=settings.accounts,
        )
    if settings.crm == "marketo":
        try:
            from connector.crm.marketo import build_marketo_adapter
        except ImportError as exc:  # pragma: no cover - until the Marketo adapter lands
            raise ConfigError("the Marketo adapter is not available in this build") from exc
        adapter: CrmAdapter = build_marketo_adapter(settings, policy)
        return adapter
    raise ConfigError(f"unknown CRM {settings.crm!r}")  # pragma: no cover


def build_enricher(settings: Settings, store: StateStore) -> Enricher | None:
    try:
        from connector.enrich.enricher import build_enricher as build
    except ImportError:  # pragma: no cover - enrichment not in this build
        return None
    return build(settings, cache=store.company_cache)


def sync_options(settings: Settings) -> SyncOptions:
    return SyncOptions(
        lookback=timedelta(minutes=settings.lookback_minutes),
        events_lookback=timedelta(days=settings.events_lookback_days),
        dry_run=settings.dry_run,
        write_retry_attempts=settings.write_retry_attempts,
        fail_on_dead_letters=settings.fail_on_dead_letters,
        write_company_fields=settings.write_company_fields,
        allow_fresh_state=settings.allow_fresh_state,
    )


@dataclass
class App:
    settings: Settings
    store: StateStore
    adapter: CrmAdapter
    model: LoadedModel
    pipeline: Pipeline

    def close(self) -> None:
        self.adapter.close()
        self.store.close()


def log_note(line: str) -> None:
    """A note or warning as a warning log record (its `note: `/`warning: ` prefix dropped):
    what the worker and JSON log mode (LEADSCORE_LOG_JSON) show."""
    log.warning("%s", line.removeprefix("warning: ").removeprefix("note: "))


def accounts_gap(model: LoadedModel) -> str | None:
    """Why `model` scores no account whatever LEADSCORE_ACCOUNTS says (None: it can)."""
    section = model.model.accounts
    if section is None:
        return f"model {model.version} has no `accounts:` section"
    if not section.enabled:
        return f"model {model.version} has its `accounts:` section off (enabled: false)"
    return None


def accounts_off_note(
    settings: Settings, model: LoadedModel, store: StateStore, *, preview: bool = False
) -> str | None:
    """The one-line note for a state DB that holds account scores while this command scores
    contacts without their accounts (LEADSCORE_ACCOUNTS off, or `model` scores none: see
    `accounts_gap`); None when accounts are scored or none is stored. `preview` (rescore
    --dry-run, simulate, explain): contacts are scored here, nothing is written. Else (sync,
    backfill, run) the stored account scores go stale; with the setting on and a model that
    scores no account, `open_app`'s warning says so and this is None."""
    gap = accounts_gap(model)
    if settings.accounts and (gap is None or not preview):
        return None
    held = store.count_account_scores(settings.crm)
    if not held:
        return None
    if settings.accounts:  # a preview with a model that scores no account
        return (
            f"note: LEADSCORE_ACCOUNTS=true, but {gap}: contacts are scored here without their "
            f"accounts (an MQL at an MQA comes out as no MQL) although the state DB holds "
            f"{held:,} account score(s)"
        )
    if preview:
        what = "contacts are scored here without their accounts (an MQL at an MQA comes out as "
        what += "no MQL)"
        remedy = "set LEADSCORE_ACCOUNTS=true as the worker has it"
    else:
        what = "they are left to go stale, and contacts are scored without their accounts (no "
        what += "MQL by an account's MQA)"
        remedy = "set LEADSCORE_ACCOUNTS=true to score accounts again"
    off = "LEADSCORE_ACCOUNTS"
    if gap is not None:  # the setting alone would not do: say what the model lacks
        off += f", and {gap}"
        section = (
            "an `accounts:` section"
            if model.model.accounts is None
            else "its `accounts:` section enabled"
        )
        remedy = f"scoring accounts takes LEADSCORE_ACCOUNTS=true and a model with {section}"
    return (
        f"note: account scoring is off ({off}) but the state DB holds {held:,} account "
        f"score(s): {what}; {remedy}"
    )


@contextmanager
def open_app(
    settings: Settings,
    model: LoadedModel | None = None,
    *,
    rollout: bool = False,
    on_note: Callable[[str], None] = log_note,
) -> Iterator[App]:
    """The pieces wired from `settings`. `model`: the configured model (default: the file of
    `settings.model_path`). The pipeline scores with the model in force
    (`connector.active_model`): a configured model named explicitly that is not the active one
    raises `ModelNotInForceError` before anything is written, and the pipeline follows a
    rollout made meanwhile by another process. `on_note(line)` gets the warnings to show
    before any write (stored scores from another model, stored account scores this run leaves
    stale, ...): once, when the app opens (a worker's start). `rollout=True` (`leadscore
    rescore`): `model` is used as given; the rescore makes it the active model (its preview
    has said what accounts off means)."""
    loaded = model or load_model(settings.model_path)
    adapter = build_adapter(settings)  # a missing token fails here, before any file exists
    try:
        store = StateStore.open(settings.state_path)
    except BaseException:
        adapter.close()
        raise
    active = stale = None
    if not rollout:
        try:
            found = model_in_force(
                store,
                settings.crm,
                loaded,
                explicit=configured_explicitly(settings),
                record=not settings.dry_run,
            )
            stale = accounts_off_note(settings, found.model, store)
        except BaseException:
            adapter.close()
            store.close()
            raise
        loaded, active = found.model, found.active
        for line in found.notes:
            on_note(line)
    gap = accounts_gap(loaded)
    if settings.accounts and gap is not None:
        on_note(
            f"warning: LEADSCORE_ACCOUNTS=true, but {gap}: no account is scored (stored "
            "account scores stay as they are)"
        )
    if stale is not None:
        on_note(stale)
    enricher = build_enricher(settings, store)
    pipeline = Pipeline(
        store,
        adapter,
        loaded,
        enricher=enricher,
        options=sync_options(settings),
    )
    if settings.accounts:
        from connector.account_stage import AccountStage

        pipeline.accounts = AccountStage(pipeline)  # also a post-score stage
    if not rollout:
        pipeline.before_pass = follow_active(pipeline, active)
    app = App(settings, store, adapter, loaded, pipeline)
    try:
        yield app
    finally:
        app.close()
