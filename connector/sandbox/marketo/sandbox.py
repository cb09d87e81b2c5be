"""The public handle: start a Marketo sandbox on 127.0.0.1, read and poke its instance."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from connector.sandbox.base import Faults, RunningSandbox, open_store, to_ms
from connector.sandbox.marketo.activities import ActivityRecord
from connector.sandbox.marketo.app import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    MarketoApp,
    MarketoRequestRecord,
)
from connector.sandbox.marketo.faults import EnvelopeFaults
from connector.sandbox.marketo.fixtures import load_instance
from connector.sandbox.marketo.instance import Instance
from connector.sandbox.marketo.leads import LeadRecord


class MarketoSandbox(RunningSandbox[MarketoApp]):
    """A running Marketo sandbox. Use :meth:`start` (a context manager), then ``stop()``."""

    @classmethod
    def start(
        cls,
        instance: Instance | Mapping[str, Any] | str | Path | None = None,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        port: int = 0,
        now: datetime | None = None,
        token_ttl: float = 3600.0,
        rate_limit: int = 100,
        rate_window: float = 20.0,
        concurrency_limit: int = 10,
        daily_limit: int = 50_000,
        time_scale: float = 1.0,
        faults: Faults | None = None,
        envelope_faults: EnvelopeFaults | None = None,
        scan_limit: int = 1000,
        export_seconds: float = 1.0,
        keep_alive: bool = False,
    ) -> MarketoSandbox:
        """Load the instance (an :class:`Instance`, a fixture dict or path; None = empty) and
        serve it on 127.0.0.1:``port`` (0 = any free port)."""
        inst = open_store(
            instance,
            Instance,
            lambda: Instance(now=now),
            lambda fixture: load_instance(fixture, now),
        )
        app = MarketoApp(
            inst,
            client_id=client_id,
            client_secret=client_secret,
            token_ttl=token_ttl,
            rate_limit=rate_limit,
            rate_window=rate_window,
            concurrency_limit=concurrency_limit,
            daily_limit=daily_limit,
            time_scale=time_scale,
            faults=faults,
            envelope_faults=envelope_faults,
            scan_limit=scan_limit,
            export_seconds=export_seconds,
        )
        return cls.serve(app, port=port, keep_alive=keep_alive)

    @property
    def instance(self) -> Instance:
        return self.app.instance

    @property
    def client_id(self) -> str:
        return self.app.client_id

    @property
    def client_secret(self) -> str:
        return self.app.client_secret

    # -- test hooks --------------------------------------------------------------------------
    @property
    def requests(self) -> list[MarketoRequestRecord]:
        """A snapshot of the request log (oldest first)."""
        return [r for r in self.app.log.snapshot() if isinstance(r, MarketoRequestRecord)]

    def calls(self, path_suffix: str, method: str | None = None) -> list[MarketoRequestRecord]:
        """Logged requests whose path ends with ``path_suffix`` (and effective method)."""
        return [
            r
            for r in self.requests
            if r.path.endswith(path_suffix) and (method is None or r.effective_method == method)
        ]

    @property
    def envelope_faults(self) -> EnvelopeFaults:
        return self.app.envelope_faults

    @envelope_faults.setter
    def envelope_faults(self, value: EnvelopeFaults) -> None:
        self.app.set_envelope_faults(value)

    def inject(
        self, answer: str, times: int = 1, *, path: str | None = None, method: str | None = None
    ) -> None:
        self.app.inject(answer, times, path=path, method=method)

    def expire_tokens(self) -> None:
        self.app.expire_tokens()

    def reset_limits(self) -> None:
        self.app.rate.reset()
        self.app.daily.reset()

    def exhaust_daily_quota(self) -> None:
        self.app.daily.use(self.app.daily.limit)

    def lead(self, lead_id: int) -> LeadRecord:
        with self.instance.lock:
            rec = self.instance.lead(lead_id)
        if rec is None:
            raise KeyError(lead_id)
        return rec

    def add_activity(
        self,
        lead_id: int,
        type_id: int,
        primary_value: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        *,
        at: datetime | None = None,
    ) -> ActivityRecord:
        return self.instance.add_activity(
            lead_id, type_id, primary_value, attributes or {},
            at_ms=None if at is None else to_ms(at),
        )  # fmt: skip

    def set_field(self, lead_id: int, name: str, value: object, source: str = "Sales") -> None:
        """Change a lead field as a user would in the UI (logs a Change Data Value)."""
        with self.instance.lock:
            self.instance.update_lead(self.lead(lead_id), {name: value}, source=source)

    def delete_lead(self, lead_id: int) -> None:
        self.instance.delete_lead(lead_id)

    def merge_leads(self, winner_id: int, *loser_ids: int) -> ActivityRecord:
        """Merge leads as a user does in the UI (Person Actions > Merge People)."""
        return self.instance.merge_leads(winner_id, loser_ids, source="Marketo UI")
