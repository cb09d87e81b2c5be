"""What every Marketo API module builds on: the envelope every REST and bulk answer is
wrapped in, the error codes, the app's state as the modules see it, and the request helpers."""

from __future__ import annotations

import hashlib
import itertools
import random
import secrets
import threading
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from connector.sandbox.base import (
    DailyQuota,
    JsonDict,
    Request,
    Response,
    RollingWindowLimiter,
    SandboxApp,
    decode_cursor,
)

if TYPE_CHECKING:
    from connector.sandbox.marketo.faults import EnvelopeFaults, _Scripted
    from connector.sandbox.marketo.instance import Instance

MAX_BATCH = 300
_JSON = "application/json;charset=UTF-8"

ERROR_MESSAGES: dict[str, str] = {
    "600": "Access token not specified",
    "601": "Access token invalid",
    "602": "Access token expired",
    "603": "Access denied",
    "604": "Request timed out",
    "606": "Max rate limit '100' exceeded with in '20' secs",
    "607": "Daily quota reached",
    "608": "API Temporarily Unavailable",
    "609": "Invalid JSON",
    "610": "Requested resource not found",
    "611": "System error",
    "615": "Concurrent access limit reached",
    "713": "Transient Error",
    "1003": "Invalid request",
    "1029": "Too many jobs in queue",
}


class _BadRequest(Exception):
    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(message or ERROR_MESSAGES.get(code, "error"))
        self.code = code
        self.message = message or ERROR_MESSAGES.get(code, "error")


def _query_offset(
    req: Request, tag: str, filter_type: str, values: Sequence[str], fields: Sequence[str]
) -> tuple[int, str]:
    """(offset, query key) of a filtered query (leads.json, companies.json): the key names the
    query, and a `nextPageToken` is valid only for the query and the endpoint (`tag`) that
    issued it."""
    key = hashlib.sha1(  # noqa: S324 - a cache key, not security
        f"{filter_type}|{','.join(values)}|{','.join(fields)}".encode()
    ).hexdigest()[:12]
    token = req.param("nextPageToken")
    if not token:
        return 0, key
    try:
        got_tag, off, got_key = decode_cursor(token, 3)
        offset = int(off)
    except ValueError:
        raise _BadRequest("1003", "Invalid nextPageToken") from None
    if got_tag != tag or got_key != key:
        raise _BadRequest("1003", "Invalid nextPageToken")
    return offset, key


def _split(value: str | None) -> list[str]:
    if value is None:
        return []
    return [v.strip() for v in value.split(",") if v.strip()]


class MarketoApi(SandboxApp):
    """The state the API modules share (set by ``MarketoApp.__init__``), envelopes, helpers."""

    instance: Instance
    client_id: str
    client_secret: str
    token_ttl: float
    time_scale: float
    rate: RollingWindowLimiter
    daily: DailyQuota
    concurrency_limit: int
    scan_limit: int
    export_seconds: float
    # behaviour knobs tests flip at run time
    empty_page_every: int
    stuck_paging: bool
    reject_tokens: bool
    hold_seconds: float
    fail_next_export: bool
    _token: str | None
    _token_expires_ms: int
    _token_lock: threading.Lock
    _inflight: int
    _inflight_lock: threading.Lock
    _env_faults: EnvelopeFaults
    _env_rng: random.Random
    _env_lock: threading.Lock
    _scripted: deque[_Scripted]
    _scripted_lock: threading.Lock
    _request_ids: itertools.count[int]
    _token_nonce: itertools.count[int]
    _activity_pages: int

    # -- envelopes ---------------------------------------------------------------------------
    def _request_id(self) -> str:
        return f"{next(self._request_ids):x}#{secrets.token_hex(5)}"

    def envelope(
        self,
        result: list[Any] | None = None,
        *,
        next_token: str | None = None,
        more: bool | None = None,
        omit_empty: bool = False,
        warnings: list[str] | None = None,
    ) -> Response:
        body: JsonDict = {"requestId": self._request_id(), "success": True}
        if result or not omit_empty:
            body["result"] = list(result or [])
        if next_token is not None:
            body["nextPageToken"] = next_token
        if more is not None:
            body["moreResult"] = more
        body["errors"] = []
        body["warnings"] = list(warnings or [])
        return Response(200, body, content_type=_JSON)

    def error(self, code: str, message: str | None = None) -> Response:
        body = {
            "requestId": self._request_id(),
            "success": False,
            "errors": [{"code": str(code), "message": message or ERROR_MESSAGES.get(code, "")}],
            "warnings": [],
        }
        return Response(200, body, content_type=_JSON)

    # -- request helpers ---------------------------------------------------------------------
    def _json(self, req: Request) -> JsonDict:
        if req.json_error is not None:
            raise _BadRequest("609", f"Invalid JSON: {req.json_error}")
        if not isinstance(req.json, dict):
            raise _BadRequest("609", "Invalid JSON: expected an object")
        return req.json

    def _int(self, req: Request, name: str, default: int, high: int) -> int:
        raw = req.param(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise _BadRequest("1003", f"Invalid value for '{name}': {raw!r}") from None
        if value < 1 or value > high:
            raise _BadRequest("1003", f"'{name}' must be between 1 and {high}")
        return value

    def _fields_param(self, req: Request, default: Sequence[str]) -> list[str]:
        fields = _split(req.param("fields")) or list(default)
        for name in fields:
            if name not in self.instance.fields:
                raise _BadRequest("1006", f"Field '{name}' not found")
        return fields
