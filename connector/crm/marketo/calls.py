"""Identity and the one place a Marketo call is made: the access token (cached until it
expires, dropped on 601/602 and fetched again once), the call wrapper (pacing, stats, retries
through `connector.retry`) and the envelope check that maps Marketo's error codes onto the
project's error tree.

:class:`MarketoCalls` holds the adapter's state; the mixins of this package build on it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
from pydantic import SecretStr

from connector.crm.base import ApiStats
from connector.crm.marketo.config import FieldInfo, MarketoConfig, named_field_map
from connector.crm.network import unreachable
from connector.crm.pacing import RollingPacer
from connector.errors import (
    AuthError,
    ConnectorError,
    QuotaExhaustedError,
    RetryableError,
)
from connector.retry import RetryPolicy, call_with_retry

log = logging.getLogger("connector.crm.marketo")  # the package logger, as before the split
RETRYABLE_CODES = frozenset({"502", "604", "606", "608", "611", "615", "713", "1029"})
TOKEN_CODES = frozenset({"600", "601", "602"})
MAX_BATCH = 300
MAX_PAGES = 100_000  # a hard bound on any paging loop (30M records at 300 a page)
LONG_QUERY = 4_000  # longer GET queries go as a form POST with _method=GET


class MarketoApiError(ConnectorError):
    """Marketo said `success: false` with a code that is neither retryable nor auth/quota
    (1003 bad request, 1006 field not found, 609 invalid JSON, 610 not found, ...)."""

    def __init__(self, code: str, message: str, kind: str = "") -> None:
        where = f" ({kind})" if kind else ""
        super().__init__(f"Marketo error {code}: {message[:300]}{where}")
        self.code = code
        self.message = message


class _Rejected(RetryableError):
    """Marketo refused the call before doing anything (HTTP 429, 606 rate, 615 concurrency):
    a write it answered this way was not applied and may simply be sent again."""


class _TokenRejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _next_reset(now: datetime) -> str:
    """Marketo's daily quota resets at midnight US Central."""
    try:
        tz: Any = ZoneInfo("America/Chicago")
    except ZoneInfoNotFoundError:  # pragma: no cover - no tz database
        tz = timezone(timedelta(hours=-6))
    local = now.astimezone(tz)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return _iso(midnight)


class MarketoCalls:
    """The adapter's state (set by `MarketoAdapter.__init__`), its token and call wrapper."""

    accounts: bool
    companies_available: bool
    base_url: str
    config: MarketoConfig
    timeout_s: float
    retry_policy: RetryPolicy
    page_size: int
    write_batch: int
    rate_window_s: float
    stats: ApiStats
    pacer: RollingPacer
    max_pages: int
    max_stalled_pages: int
    max_empty_pages: int
    export_poll_s: float
    export_max_polls: int
    export_chunk_bytes: int
    long_query: int
    named_scores: tuple[str, ...]
    _client_id: SecretStr
    _client_secret: SecretStr
    _sleep: Callable[[float], None]
    _clock: Callable[[], float]
    _now: Callable[[], datetime]
    _http: requests.Session
    _auth_lock: threading.Lock
    _token: SecretStr | None
    _token_expires_at: float
    _refresh_at: float
    _fields: dict[str, FieldInfo] | None
    _types: dict[int, tuple[str, str]] | None
    _merge_type: int | None
    _known: set[str]
    # the ids among these the caller stores already, live (`use_stored_contacts`)
    _stored_leads: Callable[[Sequence[str]], set[str]] | None
    _status_stages: dict[str, str]
    _warned_statuses: set[str]

    def use_stored_contacts(self, stored: Callable[[Sequence[str]], set[str]]) -> None:
        """`stored(ids)`: the ids among these the caller's state DB holds, live. A lead an
        activity page brings is read with the page only when it is not one of them (a new
        process starts with no lead known: without this it read every lead of the activities
        the sync reads again behind its cursor, and scored it again)."""
        self._stored_leads = stored

    # -- our fields ------------------------------------------------------------------------
    def use_named_scores(self, names: tuple[str, ...]) -> None:
        """The model's named scores (issue 23): their fields are written, read back and
        checked at start."""
        self.named_scores = names

    def field_map(self) -> dict[str, str]:
        """Our property → Marketo field: the configured map, and the named scores' fields
        (defaults `servicesScore__c`, ... unless LEADSCORE_MARKETO_FIELD_MAP names them)."""
        return {**named_field_map(self.named_scores), **self.config.field_map}

    # -- auth ------------------------------------------------------------------------------
    def _access_token(self) -> str:
        with self._auth_lock:
            now = self._clock()
            if self._token is None or now >= self._refresh_at:
                self._authenticate(now)
            assert self._token is not None
            return self._token.get_secret_value()

    def _authenticate(self, now: float) -> None:
        self.stats.count("identity")
        try:
            r = self._http.post(
                f"{self.base_url}/identity/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": self._client_id.get_secret_value(),
                    "client_secret": self._client_secret.get_secret_value(),
                },
                timeout=self.timeout_s,
            )
        except requests.RequestException as exc:
            raise unreachable("Marketo", self.base_url, exc, "identity") from None
        if r.status_code >= 500:
            raise RetryableError(f"Marketo identity endpoint error HTTP {r.status_code}")
        try:
            body = r.json()
        except ValueError:
            body = None
        if r.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
            reason = body.get("error") if isinstance(body, dict) else None
            raise AuthError(
                f"Marketo refused the client credentials (HTTP {r.status_code}"
                + (f", {reason}" if isinstance(reason, str) else "")
                + "): check LEADSCORE_MARKETO_CLIENT_ID / LEADSCORE_MARKETO_CLIENT_SECRET"
            )
        token = str(body["access_token"])
        try:
            expires_in = max(0.0, float(body.get("expires_in", 3600)))
        except (TypeError, ValueError):
            expires_in = 0.0
        same = self._token is not None and self._token.get_secret_value() == token
        self._token = SecretStr(token)
        self._token_expires_at = now + expires_in
        # Asked early, Marketo returns the same token with what is left of its life: then use
        # it to the end instead of asking again on every call.
        margin = 0.0 if same else min(60.0, expires_in * 0.1)
        self._refresh_at = self._token_expires_at - margin

    def _drop_token(self, token: str) -> None:
        with self._auth_lock:
            if self._token is not None and self._token.get_secret_value() == token:
                self._token = None

    # -- the one place a call is made ------------------------------------------------------
    def _call(
        self,
        kind: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        raw: bool = False,
    ) -> Any:
        """One logical call: auth, envelope check, 601/602 handled once, retries by policy.
        Returns the envelope dict (or the `requests.Response` when `raw`)."""
        return call_with_retry(
            lambda: self._authed(kind, method, path, params, json_body, headers, raw),
            self.retry_policy,
            sleep=self._sleep,
            on_retry=self._on_retry(kind),
        )

    def _on_retry(self, kind: str) -> Callable[[RetryableError, int], None]:
        def on_retry(exc: RetryableError, attempt_no: int) -> None:
            self.stats.retries += 1
            log.info("marketo %s retry %d: %s", kind, attempt_no, exc)

        return on_retry

    def _authed(
        self,
        kind: str,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        raw: bool = False,
    ) -> Any:
        """One attempt with a token; a token Marketo rejects (601/602) is renewed once."""
        token = self._access_token()
        try:
            return self._once(kind, method, path, token, params, json_body, headers, raw)
        except _TokenRejected:
            self._drop_token(token)
        token = self._access_token()  # one re-auth ...
        try:
            return self._once(kind, method, path, token, params, json_body, headers, raw)
        except _TokenRejected as second:  # ... and one retry, never a loop
            self._drop_token(token)
            raise AuthError(
                f"Marketo rejected a freshly issued access token ({second.code}: "
                f"{second.message}); stopping instead of re-authenticating in a loop"
            ) from None

    def _once(
        self,
        kind: str,
        method: str,
        path: str,
        token: str,
        params: Mapping[str, str] | None,
        json_body: Any,
        headers: Mapping[str, str] | None,
        raw: bool,
    ) -> Any:
        self.pacer.acquire()
        self.stats.count(kind)
        hdrs = {"Authorization": f"Bearer {token}", **(headers or {})}
        url = f"{self.base_url}{path}"
        data: dict[str, str] | None = None
        query = dict(params or {})
        if method == "GET" and sum(len(k) + len(v) + 2 for k, v in query.items()) > self.long_query:
            method, data, query = "POST", {"_method": "GET", **query}, {}
        try:
            r = self._http.request(
                method,
                url,
                params=query or None,
                json=json_body,
                data=data,
                headers=hdrs,
                timeout=self.timeout_s,
            )
        except requests.RequestException as exc:  # refused, DNS, TLS, timeout, dropped
            raise unreachable("Marketo", self.base_url, exc, kind) from None
        status = r.status_code
        if status == 429:
            self.stats.rate_limited += 1
            wait = self.rate_window_s / 5
            self.pacer.backoff(wait)
            raise _Rejected(f"Marketo HTTP 429 ({kind})", wait)
        if status >= 500:
            raise RetryableError(f"Marketo server error HTTP {status} ({kind})")
        if status in (401, 403):
            raise AuthError(f"Marketo refused the request (HTTP {status}, {kind})")
        ctype = r.headers.get("Content-Type", "")
        if raw and status in (200, 206) and "json" not in ctype.lower():
            return r
        try:
            body = r.json()
        except ValueError:
            if status != 200:
                raise MarketoApiError(str(status), f"HTTP {status}", kind) from None
            raise RetryableError(f"Marketo sent an unreadable answer ({kind})") from None
        return self._check(kind, body)

    def _check(self, kind: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or "success" not in body:
            raise RetryableError(f"Marketo answered without an envelope ({kind})")
        if body.get("success") is True:
            for warning in body.get("warnings") or []:
                log.warning("marketo %s warning: %s", kind, str(warning)[:300])
            return body
        errors = [
            (str(e.get("code", "")), str(e.get("message", "")))
            for e in body.get("errors") or []
            if isinstance(e, dict)
        ] or [("", "success: false without errors")]
        for code, message in errors:
            if code in TOKEN_CODES:
                raise _TokenRejected(code, message)
        for code, message in errors:
            if code == "607":
                self.stats.rate_limited += 1
                reset = _next_reset(self._now())
                raise QuotaExhaustedError(
                    f"Marketo daily API quota reached (607: {message}); the run stops and "
                    f"resumes after the reset at midnight US Central ({reset})",
                    resets_at=reset,
                )
        code, message = errors[0]
        if code in ("606", "615"):
            self.stats.rate_limited += 1
            wait = self.rate_window_s / (5 if code == "606" else 20)  # 4 s / 1 s by default
            self.pacer.backoff(wait)
            raise _Rejected(f"Marketo {code}: {message} ({kind})", wait)
        if code in RETRYABLE_CODES:
            raise RetryableError(f"Marketo {code}: {message} ({kind})")
        if code == "603":
            raise AuthError(
                f"Marketo denied access (603: {message}, {kind}): check the API user's role"
            )
        raise MarketoApiError(code, message, kind)
