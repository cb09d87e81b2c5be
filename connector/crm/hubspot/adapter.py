"""The HubSpot adapter: its constructor (SDK client, API objects, pacers) composed with the
mixins of this package."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import requests
from hubspot import HubSpot
from pydantic import SecretStr
from urllib3.util.retry import Retry

from connector.crm.base import ApiStats
from connector.crm.hubspot.companies import CompaniesMixin
from connector.crm.hubspot.contacts import ContactsMixin
from connector.crm.hubspot.events import EventsMixin
from connector.crm.hubspot.properties import DEFAULT_PRIORITY_LABELS, PROPERTY_NAMES
from connector.crm.hubspot.schema import SchemaMixin
from connector.crm.hubspot.writes import WritesMixin
from connector.crm.pacing import RollingPacer
from connector.errors import ConfigError
from connector.retry import RetryPolicy


class HubSpotAdapter(SchemaMixin, ContactsMixin, EventsMixin, CompaniesMixin, WritesMixin):
    name = "hubspot"
    # the pulled property that shows a contact already carries our scores (see Pipeline)
    score_marker = "leadscore_model_version"

    def __init__(
        self,
        token: SecretStr,
        base_url: str = "https://api.hubapi.com",
        *,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        page_size: int = 200,
        event_page_size: int = 1000,
        write_batch: int = 100,
        search_per_second: float = 4.0,
        pacer: RollingPacer | None = None,
        sleep: Callable[[float], None] = time.sleep,
        portal_id: int | None = None,
        extra_properties: Sequence[str] = (),
        accounts: bool = False,
        priority_labels: Sequence[str] = DEFAULT_PRIORITY_LABELS,
    ) -> None:
        if token is None or not token.get_secret_value():
            raise ConfigError("LEADSCORE_HUBSPOT_TOKEN is not set")
        self._token = token
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.retry_policy = retry or RetryPolicy()
        self.page_size = min(page_size, 200)
        self.event_page_size = event_page_size
        self.write_batch = min(write_batch, 100)
        self.stats = ApiStats()
        self._sleep = sleep
        self.pacer = pacer or RollingPacer(sleep=sleep)
        self.search_pacer = RollingPacer(
            max_calls=max(1, int(search_per_second)), interval_s=1.0, headroom=1.0, sleep=sleep
        )
        self.portal_id = portal_id
        # more CRM properties the sync will write (e.g. company fields): checked at start
        self.extra_properties = tuple(PROPERTY_NAMES.get(p, p) for p in extra_properties)
        # True when the portal's events API is unavailable (plan or scope): engagement then
        # comes from the roll-up properties on every plan (see ROLLUP_PROPERTIES)
        # the options `ensure_properties` gives the priority property: the model's labels
        self.priority_labels = tuple(priority_labels)
        # the model's named scores (`use_named_scores`; the pipeline sets them from its model)
        self.named_scores: tuple[str, ...] = ()
        # a named score's priority options where its bands are its own (name -> labels)
        self.named_priority_labels: dict[str, tuple[str, ...]] = {}
        # the options of our priority dropdowns as the last properties list read them
        self._options: dict[str, list[dict[str, Any]]] = {}
        self.rollups = False
        self._probed = False
        self._stamps: dict[str, str] = {}
        # account scoring: company properties in init-properties and the check, companies
        # and associations read, companies written
        self.accounts = accounts
        client = HubSpot(
            access_token=token.get_secret_value(),
            host=self.base_url,
            retry=Retry(total=0, connect=0, read=0, redirect=0, status=0, other=0),
        )
        # build each API object once: every discovery access creates a new pool
        self._search = client.crm.contacts.search_api
        self._basic = client.crm.contacts.basic_api
        self._batch = client.crm.contacts.batch_api
        self._props = client.crm.properties.core_api
        self._groups = client.crm.properties.groups_api
        self._events = client.events.events_api
        self._company_search = client.crm.companies.search_api
        self._company_batch = client.crm.companies.batch_api
        self._assoc = client.crm.associations.v4.batch_api
        self._apis = [
            self._company_search,
            self._company_batch,
            self._assoc,
            self._search,
            self._basic,
            self._batch,
            self._props,
            self._groups,
            self._events,
        ]
        self._http = requests.Session()
        self._http.headers["Authorization"] = f"Bearer {token.get_secret_value()}"

    def __repr__(self) -> str:
        return f"HubSpotAdapter(base_url={self.base_url!r}, token=SecretStr('**********'))"

    def close(self) -> None:
        self._http.close()
        for api in self._apis:
            client = api.api_client
            try:
                client.close()
            finally:
                client.rest_client.pool_manager.clear()
