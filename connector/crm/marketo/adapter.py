"""The Marketo adapter: its constructor composed with the mixins of this package, and
:func:`build_marketo_adapter` (from settings)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import requests
from pydantic import SecretStr

from connector.crm.base import ApiStats
from connector.crm.marketo.bulk import BulkMixin
from connector.crm.marketo.calls import LONG_QUERY, MAX_BATCH, MAX_PAGES
from connector.crm.marketo.companies import CompaniesMixin
from connector.crm.marketo.config import FieldInfo, MarketoConfig
from connector.crm.marketo.writes import WritesMixin
from connector.crm.pacing import RollingPacer
from connector.errors import ConfigError
from connector.retry import RetryPolicy

if TYPE_CHECKING:
    from connector.settings import Settings


class MarketoAdapter(BulkMixin, WritesMixin, CompaniesMixin):
    name = "marketo"

    def __init__(
        self,
        base_url: str,
        client_id: SecretStr,
        client_secret: SecretStr,
        *,
        config: MarketoConfig | None = None,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        page_size: int = MAX_BATCH,
        write_batch: int = MAX_BATCH,
        rate_limit: int = 100,
        rate_window_s: float = 20.0,
        pacer: RollingPacer | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_pages: int = MAX_PAGES,
        max_stalled_pages: int = 3,
        max_empty_pages: int = 10_000,
        export_poll_s: float = 10.0,
        export_max_polls: int = 2_000,
        export_chunk_bytes: int = 8 * 1024 * 1024,
        session: requests.Session | None = None,
        accounts: bool = False,
    ) -> None:
        if not base_url:
            raise ConfigError("LEADSCORE_MARKETO_BASE_URL is not set")
        # account scoring: the account fields are checked and written, `externalCompanyId`
        # read with leads (where the instance has it), company records read where offered
        self.accounts = accounts
        self.companies_available = accounts
        for label, secret in (("CLIENT_ID", client_id), ("CLIENT_SECRET", client_secret)):
            if secret is None or not secret.get_secret_value():
                raise ConfigError(f"LEADSCORE_MARKETO_{label} is not set")
        self.base_url = re.sub(r"/(rest|identity)/?$", "", base_url.rstrip("/"))
        self._client_id = client_id
        self._client_secret = client_secret
        self.config = config or MarketoConfig()
        self.named_scores: tuple[str, ...] = ()  # the model's (`use_named_scores`)
        self.timeout_s = timeout_s
        self.retry_policy = retry or RetryPolicy()
        self.page_size = max(1, min(page_size, MAX_BATCH))
        self.write_batch = max(1, min(write_batch, MAX_BATCH))
        self.rate_window_s = rate_window_s
        self.stats = ApiStats()
        self._sleep = sleep
        self._clock = clock
        self._now = now
        self.pacer = pacer or RollingPacer(
            max_calls=rate_limit, interval_s=rate_window_s, sleep=sleep, clock=clock
        )
        self.max_pages = max_pages
        self.max_stalled_pages = max(1, max_stalled_pages)
        self.max_empty_pages = max_empty_pages
        self.export_poll_s = export_poll_s
        self.export_max_polls = export_max_polls
        self.export_chunk_bytes = max(1024, export_chunk_bytes)
        self._http = session or requests.Session()
        self.long_query = LONG_QUERY
        self._auth_lock = threading.Lock()
        self._token: SecretStr | None = None
        self._token_expires_at = 0.0
        self._refresh_at = 0.0
        self._fields: dict[str, FieldInfo] | None = None
        self._types: dict[int, tuple[str, str]] | None = None
        self._merge_type: int | None = None  # Merge Leads, found with the types
        self._known: set[str] = set()  # lead ids already handed out as Contacts (bounded)
        self._stored_leads: Callable[[Sequence[str]], set[str]] | None = None
        self._status_stages = {k.lower(): v for k, v in self.config.status_stages.items()}
        self._warned_statuses: set[str] = set()

    def __repr__(self) -> str:
        return (
            f"MarketoAdapter(base_url={self.base_url!r}, client_id=SecretStr('**********'), "
            "client_secret=SecretStr('**********'))"
        )

    def close(self) -> None:
        self._http.close()


def build_marketo_adapter(settings: Settings, policy: RetryPolicy) -> MarketoAdapter:
    """The adapter from settings (LEADSCORE_MARKETO_*)."""
    if not settings.marketo_base_url:
        raise ConfigError(
            "LEADSCORE_MARKETO_BASE_URL is not set (the REST endpoint, "
            "https://<munchkin-id>.mktorest.com)"
        )
    if settings.marketo_client_id is None or settings.marketo_client_secret is None:
        raise ConfigError(
            "LEADSCORE_MARKETO_CLIENT_ID and LEADSCORE_MARKETO_CLIENT_SECRET must be set "
            "(a Marketo LaunchPoint API service for an API-only user)"
        )
    config = MarketoConfig.with_overrides(
        field_map=settings.marketo_field_map,
        stage_values=settings.marketo_stage_values,
        status_stages=settings.marketo_status_stages,
        activity_types=settings.marketo_activity_types,
        status_field=settings.marketo_status_field,
        backfill_days=settings.marketo_backfill_days,
    )
    return MarketoAdapter(
        settings.marketo_base_url,
        settings.marketo_client_id,
        settings.marketo_client_secret,
        config=config,
        timeout_s=settings.request_timeout_seconds,
        retry=policy,
        write_batch=settings.marketo_write_batch,
        accounts=settings.accounts,
        rate_limit=settings.marketo_rate_limit,
        rate_window_s=settings.marketo_rate_window_seconds,
        export_poll_s=settings.marketo_export_poll_seconds,
    )
