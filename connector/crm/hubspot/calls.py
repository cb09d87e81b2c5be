"""The one place a HubSpot call is made: the SDK call wrapper (pacing, stats, retries through
`connector.retry`), error classification onto the project's error tree, and the helpers that
read raw SDK answers (JSON bodies, result lists, paging cursors, ids).

:class:`HubSpotCalls` holds the adapter's state; the mixins of this package build on it."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import requests
import urllib3
from pydantic import SecretStr

from connector.crm.base import ApiStats
from connector.crm.hubspot.properties import (
    ACCOUNT_CHECKED_NAMES,
    ACCOUNT_SCOPES,
    CHECKED_NAMES,
    PRIORITY_PROPERTY,
    PROPERTY_NAMES,
    READ_PROPERTIES,
    named_property_names,
    scopes_text,
)
from connector.crm.network import unreachable
from connector.crm.pacing import RollingPacer
from connector.errors import (
    AuthError,
    ConnectorError,
    QuotaExhaustedError,
    RetryableError,
)
from connector.retry import RetryPolicy, call_with_retry
from connector.types import WriteOutcome

log = logging.getLogger("connector.crm.hubspot")  # the package logger, as before the split
T = TypeVar("T")
RETRYABLE_CATEGORIES = {"RATE_LIMITS", "RATE_LIMIT", "INTERNAL_ERROR", "TIMEOUT"}
MAX_PAGES = 100_000  # a hard bound on any paging loop (20M records at 200 a page)


def _ms(dt: datetime) -> str:
    return str(int(dt.timestamp() * 1000))


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _RateLimited(RetryableError):
    """A ten-secondly 429: HubSpot refused the call before doing anything."""


class _HttpError(ConnectorError):
    """A 4xx HubSpot answered that is not auth or rate limit: the caller decides."""

    def __init__(self, status: int, message: str, body: Any) -> None:
        super().__init__(f"HubSpot HTTP {status}: {message[:300]}")
        self.status = status
        self.message = message
        self.body = body


def _read_raw(fn: Callable[[], Any]) -> tuple[bytes, int, Mapping[str, str]]:
    """Run an SDK call made with `_preload_content=False`: its body, status and headers."""
    resp = fn()
    try:
        raw = resp.data
    finally:
        resp.release_conn()
    return raw, resp.status, resp.headers


def _read_json(fn: Callable[[], Any]) -> tuple[dict[str, Any], int, Mapping[str, str]]:
    """Run an SDK call made with `_preload_content=False` and parse its body ourselves."""
    raw, status, headers = _read_raw(fn)
    return _json_object(raw, status, headers), status, headers


def _json_object(raw: bytes, status: int, headers: Mapping[str, str]) -> dict[str, Any]:
    """The JSON object of a 2xx body, or a RetryableError saying what came instead."""
    try:
        data = json.loads(raw) if raw else None
    except (ValueError, RecursionError):
        ctype = headers.get("content-type") or headers.get("Content-Type") or "no content type"
        head = raw[:60].decode("utf-8", "replace")
        raise RetryableError(
            f"HubSpot answered HTTP {status} with a body that is not JSON ({ctype}, "
            f"{len(raw)} bytes: {head!r}): a proxy page or a cut-off answer"
        ) from None
    if not isinstance(data, dict):
        raise RetryableError(
            f"HubSpot answered HTTP {status} with {type(data).__name__} instead of a JSON object"
        )
    return data


def _error_outcomes(data: Mapping[str, Any]) -> dict[str, WriteOutcome]:
    """The per-record failures of a batch update answer (200 or 207), by record id: its
    `errors` list, each naming the ids it failed in `context.ids`."""
    failed: dict[str, WriteOutcome] = {}
    for err in data.get("errors") or []:
        if not isinstance(err, Mapping):
            continue
        category = str(err.get("category") or "")
        message = str(err.get("message") or category)
        ctx = err.get("context")
        ids = ctx.get("ids") if isinstance(ctx, Mapping) else None
        for cid in ids if isinstance(ids, list) else []:
            failed[str(cid)] = WriteOutcome(
                str(cid),
                ok=False,
                retryable=category in RETRYABLE_CATEGORIES,
                error=f"{category}: {message}"[:500],
                archived=category == "OBJECT_NOT_FOUND",
            )
    return failed


def _results(data: Mapping[str, Any], what: str) -> list[Any]:
    results = data.get("results")
    if not isinstance(results, list):
        raise RetryableError(f"HubSpot {what} answer has no results list")
    return results


def _next_after(data: Mapping[str, Any]) -> str | None:
    paging = data.get("paging")
    nxt = paging.get("next") if isinstance(paging, Mapping) else None
    after = nxt.get("after") if isinstance(nxt, Mapping) else None
    if paging is not None and not isinstance(paging, Mapping):
        raise RetryableError("HubSpot events answer: paging is not an object")
    if after is None or after == "":
        return None
    if isinstance(after, bool) or not isinstance(after, str | int):
        raise RetryableError(f"HubSpot events answer: paging cursor is a {type(after).__name__}")
    return str(after)


def _numeric_id(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if raw >= 0 else None
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 30:
        return int(raw)
    return None


def _keyset_advance(last_id: int | None, ids: list[int], kind: str = "") -> int:
    """The next keyset position after a search page with these numeric ids; a page with none,
    or one that does not move past `last_id`, stops the run rather than loop (`kind`, e.g.
    "company ", names the search in the error)."""
    if not ids:
        raise ConnectorError(f"HubSpot {kind}search page had no usable ids; stopping")
    new_last = max(ids)
    if last_id is not None and new_last <= last_id:
        raise ConnectorError(
            f"HubSpot {kind}search page did not advance (last id {last_id} → {new_last}); "
            "stopping instead of looping"
        )
    return new_last


def _rid(raw: Any, position: int | None = None) -> str:
    """A record id for messages and dead letters, whatever the CRM sent (without an id: its
    position on the page)."""
    if raw is None or raw == "":
        return f"#{position} on its page" if position is not None else "?"
    text = raw if isinstance(raw, str) else repr(raw)
    return text[:100]


def _headers_of(result: Any) -> Mapping[str, str] | None:
    if isinstance(result, tuple) and len(result) == 3:
        headers = result[2]
        if isinstance(headers, Mapping):
            return headers
        try:
            return dict(headers)
        except (TypeError, ValueError):
            return None
    return None


def _body_text(body: Any) -> str:
    if body is None:
        return ""
    if isinstance(body, bytes):
        return body.decode("utf-8", "replace")
    return str(body)


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for k, v in headers.items():
        if k.lower() == "retry-after":
            try:
                return float(v)
            except ValueError:
                return None
    return None


class HubSpotCalls:
    """The adapter's state (set by `HubSpotAdapter.__init__`) and its call wrapper."""

    base_url: str
    timeout_s: float
    retry_policy: RetryPolicy
    page_size: int
    event_page_size: int
    write_batch: int
    stats: ApiStats
    pacer: RollingPacer
    search_pacer: RollingPacer
    portal_id: int | None
    extra_properties: tuple[str, ...]
    priority_labels: tuple[str, ...]
    named_scores: tuple[str, ...]
    named_priority_labels: dict[str, tuple[str, ...]]
    _options: dict[str, list[dict[str, Any]]]  # a priority dropdown's options, as listed
    rollups: bool
    accounts: bool
    _token: SecretStr
    _sleep: Callable[[float], None]
    _probed: bool
    _stamps: dict[str, str]
    _search: Any
    _basic: Any
    _batch: Any
    _props: Any
    _groups: Any
    _events: Any
    _company_search: Any
    _company_batch: Any
    _assoc: Any
    _apis: list[Any]
    _http: requests.Session

    # -- our property names (the named scores of the model in use among them) ---------------
    def use_named_scores(self, names: tuple[str, ...]) -> None:
        """The model's named scores (issue 23): their properties are written, read back
        (drift), created by init-properties and required by the startup check."""
        if names != self.named_scores:
            self.named_scores = names
            self._stamps = {}

    def use_priority_labels(
        self, labels: tuple[str, ...], own: Mapping[str, tuple[str, ...]]
    ) -> bool:
        """The labels the model writes to the priority dropdowns: `labels` to
        `leadscore_priority` (and to each named score's without bands of its own), `own[name]`
        to `leadscore_<name>_priority`. init-properties makes them the options; the startup
        check requires them (HubSpot refuses a value that is no option of its dropdown).
        Returns whether they changed."""
        own = dict(own)
        if labels == self.priority_labels and own == self.named_priority_labels:
            return False
        self.priority_labels, self.named_priority_labels = labels, own
        return True

    def priority_options_wanted(self) -> dict[str, tuple[str, ...]]:
        """{priority property: the labels the model writes to it}, the named scores' too."""
        out = {PRIORITY_PROPERTY: self.priority_labels}
        for n in self.named_scores:
            out[self.hs_name(f"{n}_priority")] = self.named_priority_labels.get(
                n, self.priority_labels
            )
        return out

    def hs_name(self, key: str) -> str:
        """The HubSpot property name of one of our keys (`services_score` →
        `leadscore_services_score`); a key that is not ours is its own name."""
        found = PROPERTY_NAMES.get(key)
        if found is not None:
            return found
        return named_property_names(self.named_scores).get(key, key)

    def checked_names(self, *, accounts: bool | None = None) -> dict[str, str]:
        """Our score properties read back with the contacts: HubSpot name → our key (with
        accounts on, the account's values on the contact too: a hand edit is written again).
        `accounts`: with the account's properties or not (None: as account scoring is)."""
        named = named_property_names(self.named_scores)
        with_account = self.accounts if accounts is None else accounts
        account = ACCOUNT_CHECKED_NAMES if with_account else {}
        return {**CHECKED_NAMES, **account, **{hs: key for key, hs in named.items()}}

    def read_properties(self) -> list[str]:
        """What a contact read asks for: the profile, ours (with accounts on, the account's
        values on the contact), and the named scores'."""
        account = list(ACCOUNT_CHECKED_NAMES) if self.accounts else []
        return READ_PROPERTIES + account + list(named_property_names(self.named_scores).values())

    # -- the one place a call is made -------------------------------------------------------
    def _call(self, kind: str, fn: Callable[[], T], *, search: bool = False) -> T:
        return call_with_retry(
            partial(self._call_once, kind, fn, search=search),
            self.retry_policy,
            sleep=self._sleep,
            on_retry=self._on_retry(kind),
        )

    def _call_once(self, kind: str, fn: Callable[[], T], *, search: bool = False) -> T:
        if search:
            self.search_pacer.acquire()
        else:
            self.pacer.acquire()
        self.stats.count(kind)
        try:
            result = fn()
        except Exception as exc:  # mapped below; nothing escapes unmapped
            log.debug("hubspot %s failed: %s", kind, type(exc).__name__)
            raise self._map_error(exc, kind) from None
        headers = _headers_of(result)
        if headers is not None and not search:
            self.pacer.observe(headers)
        return result

    def _on_retry(self, kind: str) -> Callable[[RetryableError, int], None]:
        def on_retry(exc: RetryableError, attempt_no: int) -> None:
            self.stats.retries += 1
            log.info("hubspot %s retry %d: %s", kind, attempt_no, exc)

        return on_retry

    def _json_call(
        self, kind: str, fn: Callable[[], Any], *, search: bool = False
    ) -> tuple[dict[str, Any], int, Mapping[str, str]]:
        """Call an SDK `*_with_http_info` method built with `_preload_content=False` and read
        its JSON ourselves. The SDK's models turn a body that is not JSON (a proxy's HTML page,
        a cut-off answer) into an empty page, which would end a stream early and lose records,
        and one malformed record into an exception for the whole page; here the first is a
        retryable error and the second one bad record."""
        return self._call(kind, partial(_read_json, fn), search=search)

    def _search_call(self, kind: str, api: Any, request: Any) -> dict[str, Any]:
        """One CRM search (`api`: an SDK `search_api`), paced by the search limiter: its JSON
        body."""
        data, _, _ = self._json_call(
            kind,
            partial(
                api.do_search_with_http_info,
                request,
                _request_timeout=self.timeout_s,
                _preload_content=False,
            ),
            search=True,
        )
        return data

    def _map_error(self, exc: Exception, kind: str = "call") -> Exception:
        status = getattr(exc, "status", None)
        if isinstance(status, int) and status > 0:
            body_text = _body_text(getattr(exc, "body", None))
            headers = getattr(exc, "headers", None) or {}
            return self._map_status(status, body_text, headers)
        if isinstance(exc, requests.HTTPError) and exc.response is not None:
            r = exc.response
            return self._map_status(r.status_code, r.text, r.headers)
        if isinstance(
            exc,
            urllib3.exceptions.HTTPError | requests.ConnectionError | requests.Timeout | OSError,
        ) or (status == 0 and "SSL" in str(getattr(exc, "reason", ""))):
            # no HTTP answer: refused, DNS, TLS, timeout, dropped (the SDK turns TLS trouble
            # into a status-0 ApiException)
            return unreachable("HubSpot", self.base_url, exc, kind)
        if isinstance(exc, ConnectorError):
            return exc
        if isinstance(exc, ValueError | TypeError | KeyError):
            return RetryableError(f"HubSpot sent an unreadable response: {type(exc).__name__}")
        # anything else (the SDK's status-0 ApiException on TLS trouble, a model it cannot
        # build...): stop the run with a message rather than a traceback
        reason = getattr(exc, "reason", None) or str(exc)
        return ConnectorError(f"HubSpot call failed: {type(exc).__name__}: {str(reason)[:200]}")

    def _map_status(self, status: int, body_text: str, headers: Mapping[str, str]) -> Exception:
        body = _json_or_none(body_text)
        message = str(body.get("message", "")) if isinstance(body, dict) else body_text[:200]
        if status == 429:
            self.stats.rate_limited += 1
            policy = body.get("policyName") if isinstance(body, dict) else None
            if policy == "DAILY":
                return QuotaExhaustedError(
                    "HubSpot daily API limit reached; the run stops and resumes after the reset "
                    "(midnight in the portal's time zone)",
                    resets_at=None,
                )
            wait = _retry_after(headers) or self.pacer.interval_s / 10
            self.pacer.backoff(wait)
            return _RateLimited(f"HubSpot rate limit ({policy or 'unknown policy'})", wait)
        if status in (401, 403):
            refused = AuthError(
                f"HubSpot refused the token (HTTP {status}): {message[:120].rstrip('.')}. "
                "Check LEADSCORE_HUBSPOT_TOKEN and the private app's scopes: "
                + scopes_text()
                + (
                    " and, for account scoring, " + " ".join(ACCOUNT_SCOPES)
                    if self.accounts
                    else ""
                )
            )
            refused.category = body.get("category") if isinstance(body, dict) else None
            return refused
        if status >= 500:
            return RetryableError(f"HubSpot server error HTTP {status}")
        return _HttpError(status, message, body)
