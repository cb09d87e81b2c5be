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


def _log_note(line: str) -> None:
    log.warning("%s", line.removeprefix("warning: ").removeprefix("note: "))


@contextmanager
def open_app(
    settings: Settings,
    model: LoadedModel | None = None,
    *,
    rollout: bool = False,
    on_note: Callable[[str], None] = _log_note,
) -> Iterator[App]:
    """The pieces wired from `settings`. `model`: the configured model (default: the file of
    `settings.model_path`). The pipeline scores with the model in force
    (`connector.active_model`): a configured model named explicitly that is not the active one
    raises `ModelNotInForceError` before anything is written, and the pipeline follows a
    rollout made meanwhile by another process. `on_note(line)` gets the warnings to show
    before any write (stored scores from another model, ...). `rollout=True` (`leadscore
    rescore`): `model` is used as given; the rescore makes it the active model."""
    loaded = model or load_model(settings.model_path)
    adapter = build_adapter(settings)  # a missing token fails here, before any file exists
    try:
        store = StateStore.open(settings.state_path)
    except BaseException:
        adapter.close()
        raise
    active = None
    if not rollout:
        try:
            found = model_in_force(
                store,
                settings.crm,
                loaded,
                explicit=configured_explicitly(settings),
                record=not settings.dry_run,
            )
        except BaseException:
            adapter.close()
            store.close()
            raise
        loaded, active = found.model, found.active
        for line in found.notes:
            on_note(line)
    if settings.accounts and loaded.model.accounts is None:
        on_note(
            f"warning: LEADSCORE_ACCOUNTS=true, but model {loaded.version} has no `accounts:` "
            "section: no account is scored (stored account scores stay as they are)"
        )
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
