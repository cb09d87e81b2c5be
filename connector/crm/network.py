"""What went wrong on the wire, in words an admin can act on.

urllib3 (under the HubSpot SDK) and requests (Marketo, the e-mail events call) wrap the socket's
own error two or three levels deep (`requests.ConnectionError` → `MaxRetryError` →
`NewConnectionError` → `ConnectionRefusedError`). `network_cause` walks that chain and names the
cause: connection refused, DNS, TLS, timeout or a dropped connection. `unreachable` builds the
error the adapters raise: it names the URL (a base URL, never a token or a query string) and
the cause, and carries its own exit code (`UnreachableError`, 7).
"""

from __future__ import annotations

import http.client
import socket
import ssl
from urllib.parse import urlsplit

import requests
import urllib3

from connector.errors import UnreachableError

_MAX_DEPTH = 8  # exception chains are short; a bound keeps a cycle from looping


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and what it wraps: `reason` (urllib3), the first argument (requests), the cause."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo and len(seen) < _MAX_DEPTH:
        cur = todo.pop(0)
        if any(cur is s for s in seen):
            continue
        seen.append(cur)
        for nxt in (
            getattr(cur, "reason", None),
            cur.args[0] if cur.args else None,
            cur.__cause__,
            cur.__context__,
        ):
            if isinstance(nxt, BaseException):
                todo.append(nxt)
    return seen


def network_cause(exc: BaseException) -> str:
    """One of: connection refused, DNS lookup failed, TLS error, connect timed out, read timed
    out, timed out, connection dropped, or the exception's type name when nothing matches."""
    chain = _chain(exc)
    text = " ".join(str(e) for e in chain)
    for e in chain:
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
    for e in chain:
        if isinstance(e, socket.gaierror | urllib3.exceptions.NameResolutionError):
            return "DNS lookup failed (no such host)"
    for e in chain:
        if isinstance(
            e, ssl.SSLError | urllib3.exceptions.SSLError | requests.exceptions.SSLError
        ) or (type(e).__name__ == "ApiException" and "SSL" in str(getattr(e, "reason", ""))):
            return "TLS error (certificate or handshake)"
    for e in chain:
        if isinstance(e, urllib3.exceptions.ConnectTimeoutError | requests.ConnectTimeout):
            return "connect timed out"
    for e in chain:
        if isinstance(e, urllib3.exceptions.ReadTimeoutError | requests.ReadTimeout):
            return "read timed out"
    for e in chain:
        if isinstance(e, TimeoutError | requests.Timeout | urllib3.exceptions.TimeoutError):
            return "timed out"
    for e in chain:
        if isinstance(
            e,
            ConnectionResetError
            | ConnectionAbortedError
            | BrokenPipeError
            | http.client.RemoteDisconnected
            | urllib3.exceptions.ProtocolError,
        ):
            return "connection dropped"
    if "Connection refused" in text:
        return "connection refused"
    return type(exc).__name__


def safe_url(url: str) -> str:
    """The scheme, host and port of `url`: no user info, path or query (where secrets live)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}" if parts.scheme else url.split("?")[0]


def unreachable(crm: str, base_url: str, exc: BaseException, kind: str) -> UnreachableError:
    """The error for a call to `base_url` that got no HTTP answer."""
    return UnreachableError(
        f"{crm} unreachable at {safe_url(base_url)}: {network_cause(exc)} ({kind})"
    )
