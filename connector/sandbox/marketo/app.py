"""The Marketo API application: the API modules combined, the route table and the request
pipeline (``_method=GET`` form posts, the identity endpoint, the gate, scripted and seeded
faults, routing, and the request log with what each envelope said)."""

from __future__ import annotations

import dataclasses
import itertools
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from connector.sandbox.base import (
    DailyQuota,
    FaultKind,
    Faults,
    Handler,
    Request,
    RequestRecord,
    Response,
    RollingWindowLimiter,
    Routes,
    logged_body,
)
from connector.sandbox.marketo.activities import ActivitiesAPI
from connector.sandbox.marketo.api import _BadRequest
from connector.sandbox.marketo.bulk import BulkAPI
from connector.sandbox.marketo.companies import CompaniesAPI
from connector.sandbox.marketo.faults import EnvelopeFaults, FaultAnswers, _Scripted
from connector.sandbox.marketo.identity import IdentityAPI
from connector.sandbox.marketo.instance import Instance
from connector.sandbox.marketo.leads import LeadsAPI
from connector.sandbox.marketo.limits import AuthAndLimits

DEFAULT_CLIENT_ID = "leadscore-demo-client"


DEFAULT_CLIENT_SECRET = "leadscore-demo-secret"  # noqa: S105 - a public demo value


@dataclass(frozen=True, slots=True)
class MarketoRequestRecord(RequestRecord):
    """A request log entry plus what the envelope said."""

    effective_method: str = ""  # "GET" for a form POST with _method=GET, else the method
    success: bool | None = None  # None when the answer was not an envelope
    error_codes: tuple[str, ...] = ()


class MarketoApp(
    IdentityAPI, LeadsAPI, CompaniesAPI, ActivitiesAPI, BulkAPI, AuthAndLimits, FaultAnswers
):
    """Marketo's API over an :class:`Instance`: identity, envelopes, limits, routes."""

    def __init__(
        self,
        instance: Instance,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
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
    ) -> None:
        super().__init__(faults)
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        self.instance = instance
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_ttl = token_ttl
        self.time_scale = time_scale
        self.rate = RollingWindowLimiter(rate_limit, rate_window * time_scale)
        self.daily = DailyQuota(daily_limit, 86_400.0 * time_scale)
        self.concurrency_limit = concurrency_limit
        self.scan_limit = scan_limit
        self.export_seconds = export_seconds
        # behaviour knobs tests flip at run time
        self.empty_page_every = 0
        self.stuck_paging = False
        self.reject_tokens = False
        self.hold_seconds = 0.0
        self.fail_next_export = False
        self._token: str | None = None
        self._token_expires_ms = 0
        self._token_lock = threading.Lock()
        self._inflight = 0
        self._inflight_lock = threading.Lock()
        self._env_faults = envelope_faults or EnvelopeFaults()
        self._env_rng = random.Random(self._env_faults.seed)
        self._env_lock = threading.Lock()
        self._scripted: deque[_Scripted] = deque()
        self._scripted_lock = threading.Lock()
        self._request_ids = itertools.count(0x1000)
        self._token_nonce = itertools.count(1)
        self._activity_pages = 0
        table: list[tuple[str, str, Handler]] = [
            ("GET", r"/rest/v1/leads\.json", self._get_leads),
            ("POST", r"/rest/v1/leads\.json", self._sync_leads),
            ("POST", r"/rest/v1/leads/delete\.json", self._delete_leads),
            ("POST", r"/rest/v1/leads/(?P<id>\d+)/merge\.json", self._merge_leads),
            ("GET", r"/rest/v1/lead/(?P<id>\d+)\.json", self._get_lead),
            ("GET", r"/rest/v1/leads/describe\.json", self._describe),
            ("GET", r"/rest/v1/leads/describe2\.json", self._describe2),
            ("GET", r"/rest/v1/companies/describe\.json", self._companies_describe),
            ("GET", r"/rest/v1/companies\.json", self._companies_query),
            ("POST", r"/rest/v1/companies/sync\.json", self._companies_sync),
            ("POST", r"/rest/v1/companies\.json", self._companies_sync),
            ("GET", r"/rest/v1/activities/types\.json", self._activity_types),
            ("GET", r"/rest/v1/activities/pagingtoken\.json", self._paging_token),
            ("GET", r"/rest/v1/activities\.json", self._activities),
            ("GET", r"/rest/v1/activities/leadchanges\.json", self._lead_changes),
            ("GET", r"/rest/v1/activities/deletedleads\.json", self._deleted_leads),
            ("GET", r"/bulk/v1/(?P<kind>leads|activities)/export\.json", self._export_list),
            ("POST", r"/bulk/v1/(?P<kind>leads|activities)/export/create\.json",
             self._export_create),
            ("POST", r"/bulk/v1/(?P<kind>leads|activities)/export/(?P<id>[^/]+)/enqueue\.json",
             self._export_enqueue),
            ("POST", r"/bulk/v1/(?P<kind>leads|activities)/export/(?P<id>[^/]+)/cancel\.json",
             self._export_cancel),
            ("GET", r"/bulk/v1/(?P<kind>leads|activities)/export/(?P<id>[^/]+)/status\.json",
             self._export_status),
            ("GET", r"/bulk/v1/(?P<kind>leads|activities)/export/(?P<id>[^/]+)/file\.json",
             self._export_file),
        ]  # fmt: skip
        self._routes = Routes(table)

    # -- the request pipeline ----------------------------------------------------------------
    def _method_override(self, req: Request) -> tuple[Request, str]:
        ctype = (req.header("content-type") or "").lower()
        if req.method == "POST" and isinstance(req.json, dict):
            return _json_query(req, req.json)
        if req.method != "POST" or "application/x-www-form-urlencoded" not in ctype:
            return req, req.method
        form = parse_qs(req.raw_body.decode("utf-8", "replace"), keep_blank_values=True)
        # ``_method=GET`` in the form body or in the query string (marketorestpython sends it
        # there)
        override = form.get("_method", []) + req.query.get("_method", [])
        if [v.upper() for v in override] != ["GET"]:
            return req, req.method
        query = {k: list(v) for k, v in req.query.items() if k != "_method"}
        for k, v in form.items():
            if k != "_method":
                query.setdefault(k, []).extend(v)
        return (
            Request(
                method="GET",
                path=req.path,
                query=query,
                headers=req.headers,
                raw_body=b"",
                json=None,
                json_error=None,
            ),
            "GET",
        )

    def dispatch(self, req: Request) -> Response:
        original = req
        kind: FaultKind | None = None
        effective = req.method
        with self._inflight_lock:
            self._inflight += 1
            inflight = self._inflight
        try:
            req, effective = self._method_override(req)
            req = _joined_lists(req)
            if req.path.rstrip("/") == "/identity/oauth/token":
                resp = self._identity(req)
            else:
                early = self._gate(req, inflight)
                if early is not None:
                    resp = early
                else:
                    scripted = self._take_scripted(req)
                    if scripted is not None:
                        resp = scripted
                    else:
                        resp, kind = self.apply_faults(req, self._route_or_envelope_fault)
        except Exception as exc:
            resp = self.internal_error(req, exc)
        finally:
            with self._inflight_lock:
                self._inflight -= 1
        success: bool | None = None
        codes: tuple[str, ...] = ()
        if isinstance(resp.body, dict) and "success" in resp.body:
            success = bool(resp.body["success"])
            codes = tuple(str(e.get("code")) for e in resp.body.get("errors") or [])
        self.log.append(
            MarketoRequestRecord(
                method=original.method,
                path=original.path,
                query=req.query if effective != original.method else original.query,
                body=logged_body(original),
                status=None if resp.drop else resp.status,
                fault=kind,
                at=time.monotonic(),
                effective_method=effective,
                success=success,
                error_codes=codes,
            )
        )
        return resp

    def route(self, req: Request) -> Response:
        if self.hold_seconds > 0:
            self.stopping.wait(self.hold_seconds)
        path = req.path
        handler, groups, known = self._routes.find(req.method, path)
        if handler is not None:
            try:
                with self.instance.lock:
                    return handler(req, groups)
            except _BadRequest as exc:
                return self.error(exc.code, exc.message)
        if known:
            return self.error("610", f"Requested resource not found ({req.method} {path})")
        return self.error("610")


def _json_query(req: Request, body: dict[str, Any]) -> tuple[Request, str]:
    """A JSON POST with ``_method=GET`` in the query string: the lead database's query form
    for keys a comma-separated ``filterValues`` cannot carry (compound keys, a value with a
    comma). The body's members are the query's parameters (a list joined with commas), its
    ``input`` records stay in ``json`` for the handler; without ``_method=GET`` it is a POST."""
    if [v.upper() for v in req.query.get("_method", [])] != ["GET"]:
        return req, req.method
    query = {k: list(v) for k, v in req.query.items() if k != "_method"}
    for k, v in body.items():
        if k == "input" or v is None:
            continue
        text = ",".join(str(x) for x in v) if isinstance(v, list) else str(v)
        query.setdefault(k, []).append(text)
    return dataclasses.replace(req, method="GET", query=query), "GET"


# The comma-separated list parameters, which a client may also send repeated (`fields=email&
# fields=company`, as requests encodes marketorestpython's documented list form): read as one
# list, as Marketo does, never cut to the first value.
LIST_PARAMS = frozenset({"fields", "filterValues", "activityTypeIds", "leadIds"})


def _joined_lists(req: Request) -> Request:
    repeated = {k for k, v in req.query.items() if k in LIST_PARAMS and len(v) > 1}
    if not repeated:
        return req
    query = {k: ([",".join(v)] if k in repeated else v) for k, v in req.query.items()}
    return dataclasses.replace(req, query=query)
