"""CRM-neutral building blocks for the loopback API sandboxes (HubSpot and Marketo).

What lives here knows nothing about any CRM:

* time and JSON helpers (epoch-ms <-> ISO 8601 with milliseconds and ``Z``, opaque cursors);
* :class:`Request` / :class:`Response` / :class:`RequestRecord` and the thread-safe
  :class:`RequestLog` that tests read;
* :class:`RollingWindowLimiter` (a rolling N-requests-per-window budget) and :class:`DailyQuota`,
  both driven by a ``time_scale`` so a 10 s window can last 0.1 s in tests (kept in
  :mod:`connector.sandbox.limits`, re-exported here);
* :class:`Faults` (what to inject, reproducible from a seed) and :class:`FaultInjector` (kept in
  :mod:`connector.sandbox.faults`, re-exported here);
* paging cursors (:func:`encode_cursor`, :func:`decode_key_cursor`), fixture loading
  (:func:`read_fixture`, :func:`open_store`);
* :class:`SandboxApp`, the request pipeline (preflight -> fault decision -> route -> log), and
  :class:`SandboxServer`, a ``ThreadingHTTPServer`` on 127.0.0.1 in a daemon thread that stops
  cleanly (open connections are shut down, every handler thread is joined, no socket leaks).

Fault semantics (the same for every sandbox built on this module). A faulted request is either
applied fully or not at all, never half:

=====================  ==========================================================  =========
kind                   what the client sees                                        applied?
=====================  ==========================================================  =========
``error``              a 5xx from ``Faults.error_statuses``                        no
``burst_429``          the CRM's 429 (a burst of ``burst_429_length`` requests)    no
``drop``               the connection closes without a response                   no
``drop_after_apply``   the request is applied, then the connection closes          **yes**
``slow``               the request is applied, the response waits ``slow_seconds``  **yes**
=====================  ==========================================================  =========

``slow`` therefore models the nasty real case of a client that times out on a write that did
happen; ``drop_after_apply`` is the same without any response at all.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import math
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Generic, Self, TypeVar
from urllib.parse import parse_qs, urlsplit

from connector.sandbox.faults import PROXY_PAGE, FaultDecision, FaultInjector, FaultKind, Faults
from connector.sandbox.limits import Clock, DailyQuota, RollingWindowLimiter

__all__ = [  # what the sandboxes and tests import from here, including the re-exports
    "DAY_MS",
    "JSON",
    "LOOPBACK",
    "MAX_BODY_BYTES",
    "Clock",
    "DailyQuota",
    "FaultDecision",
    "FaultInjector",
    "FaultKind",
    "Faults",
    "Handler",
    "JsonDict",
    "Request",
    "RequestLog",
    "RequestRecord",
    "Response",
    "RollingWindowLimiter",
    "Routes",
    "RunningSandbox",
    "SandboxApp",
    "SandboxServer",
    "decode_cursor",
    "decode_key_cursor",
    "encode_cursor",
    "fixture_or_default",
    "from_ms",
    "iso_ms",
    "iso_s",
    "json_bytes",
    "logged_body",
    "new_correlation_id",
    "open_store",
    "parse_time_ms",
    "read_fixture",
    "to_ms",
    "utc_now",
    "wait_for_interrupt",
]

JSON = Any
JsonDict = dict[str, Any]

LOOPBACK = "127.0.0.1"
MAX_BODY_BYTES = 10 * 1024 * 1024
DAY_MS = 86_400_000

# --------------------------------------------------------------------------------------------
# time helpers
# --------------------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DIGITS = re.compile(r"^-?\d+$")


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_ms(dt: datetime) -> int:
    """Epoch milliseconds of an aware datetime (naive datetimes are taken as UTC)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


_NAIVE_EPOCH = datetime(1970, 1, 1)


def iso_ms(ms: int) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z``: ``2026-11-01T12:00:00.000Z``."""
    return (_NAIVE_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds") + "Z"


def iso_s(ms: int) -> str:
    """Marketo's timestamp format: ISO 8601 UTC to the second with ``Z``."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time_ms(value: object) -> int:
    """Epoch ms from epoch-ms (int or digit string), ISO 8601 (``Z`` or offset) or a date.

    Raises ``ValueError`` for anything else (bools, floats with fractions, garbage).
    """
    if isinstance(value, bool):
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise ValueError(f"not a timestamp: {value!r}")
        return int(value)
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {value!r}")
    text = value.strip()
    if _DIGITS.match(text):
        return int(text)
    if not text:
        raise ValueError("empty timestamp")
    try:
        dt = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ValueError(f"not a timestamp: {value!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return to_ms(dt)


# --------------------------------------------------------------------------------------------
# JSON helpers
# --------------------------------------------------------------------------------------------


def json_bytes(obj: JSON) -> bytes:
    """UTF-8 JSON. Text holding a lone UTF-16 surrogate (a cut-off emoji, which real CRMs
    store and serve) cannot be UTF-8: such a body is written all-ASCII, the surrogate as the
    `\\ud83d` escape the real APIs send, instead of failing and dropping the connection."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj, separators=(",", ":")).encode("ascii")


def encode_cursor(*parts: object) -> str:
    """An opaque, URL-safe cursor made of a few values (decoded by :func:`decode_cursor`)."""
    raw = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, n_parts: int) -> list[str]:
    """Inverse of :func:`encode_cursor`; ``ValueError`` if it is not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise ValueError(f"invalid cursor {cursor!r}") from None
    parts = raw.split("\x1f")
    if len(parts) != n_parts:
        raise ValueError(f"invalid cursor {cursor!r}")
    return parts


def decode_key_cursor(cursor: str, tag: str) -> tuple[int, str]:
    """The (epoch ms, id) key of a keyset cursor made by ``encode_cursor(tag, ms, id)``;
    ValueError if it is malformed or was made for another listing (another ``tag``)."""
    found, ms_text, key_id = decode_cursor(cursor, 3)
    if found != tag:
        raise ValueError(cursor)
    return int(ms_text), key_id


def new_correlation_id() -> str:
    return str(uuid.uuid4())


# --------------------------------------------------------------------------------------------
# requests, responses and the request log
# --------------------------------------------------------------------------------------------

_NO_JSON = object()


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed HTTP request. ``json`` is the parsed body (None if empty or not JSON)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]  # lower-case names
    raw_body: bytes = b""
    json: JSON = None
    json_error: str | None = None  # set when a non-empty body is not valid JSON

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    @classmethod
    def build(
        cls, method: str, target: str, headers: Mapping[str, str], body: bytes = b""
    ) -> Request:
        split = urlsplit(target)
        query = parse_qs(split.query, keep_blank_values=True)
        parsed: JSON = None
        error: str | None = None
        if body.strip():
            try:
                parsed = json.loads(body.decode("utf-8"))
            except UnicodeDecodeError as exc:
                error = f"body is not UTF-8: {exc}"
            except json.JSONDecodeError as exc:
                error = f"line {exc.lineno}, column {exc.colno}: {exc.msg}"
        return cls(
            method=method.upper(),
            path=split.path or "/",
            query=query,
            headers={k.lower(): v for k, v in headers.items()},
            raw_body=body,
            json=parsed,
            json_error=error,
        )


@dataclass(slots=True)
class Response:
    """What to send back. ``drop`` closes the connection without a response."""

    status: int
    body: JSON = None  # JSON-serializable, or bytes/str sent as is with ``content_type``
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json;charset=utf-8"
    drop: bool = False
    delay: float = 0.0

    def payload(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str) and not self.content_type.startswith("application/json"):
            return self.body.encode("utf-8")
        return json_bytes(self.body)


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One entry of the request log. ``status`` is None when the connection was dropped."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: JSON
    status: int | None
    fault: FaultKind | None = None
    at: float = 0.0  # time.monotonic() when the response was decided

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


class RequestLog:
    """Thread-safe, append-only list of :class:`RequestRecord`; tests read snapshots."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def snapshot(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def __iter__(self) -> Iterator[RequestRecord]:
        return iter(self.snapshot())


# --------------------------------------------------------------------------------------------
# the request pipeline
# --------------------------------------------------------------------------------------------


Handler = Callable[[Request, dict[str, str]], Response]


class Routes:
    """A route table: (method, path pattern, handler), matched in order against the whole path."""

    def __init__(self, table: Iterable[tuple[str, str, Handler]]) -> None:
        self._table = [(method, re.compile(rx), handler) for method, rx, handler in table]

    def find(self, method: str, path: str) -> tuple[Handler | None, dict[str, str], bool]:
        """The handler for ``method`` on ``path`` and the path's named groups, and whether any
        route knows the path (a known path asked with another method is the CRM's 405)."""
        known = False
        for route_method, rx, handler in self._table:
            match = rx.fullmatch(path)
            if match is None:
                continue
            known = True
            if route_method == method:
                return handler, match.groupdict(), True
        return None, {}, known


def logged_body(req: Request) -> JSON:
    """A request body as the request log keeps it: the JSON, or the text that is not JSON."""
    if req.json_error is not None:
        return req.raw_body.decode("utf-8", "replace")
    return req.json


class SandboxApp:
    """The CRM-neutral request pipeline; subclasses implement the CRM.

    ``dispatch`` runs: ``preflight`` (auth, rate limits: answered as is, never faulted) ->
    fault decision -> ``route`` (the CRM itself) -> ``finish`` (add headers) -> log.
    Any exception escaping ``route`` is recorded in ``internal_errors`` and answered with
    ``internal_error_response`` (tests assert that list stays empty).
    """

    def __init__(self, faults: Faults | None = None) -> None:
        self.log = RequestLog()
        self.injector = FaultInjector(faults)
        self.stopping = threading.Event()
        self.internal_errors: list[BaseException] = []
        self._errors_lock = threading.Lock()
        self.base_url = f"http://{LOOPBACK}"  # the served address, set by RunningSandbox.serve

    # -- hooks ---------------------------------------------------------------------------------
    def preflight(self, req: Request) -> tuple[Response | None, dict[str, str]]:
        """Return (response to send now, headers to add to whatever is sent)."""
        return None, {}

    def route(self, req: Request) -> Response:  # pragma: no cover - abstract
        raise NotImplementedError

    def fault_response(self, req: Request, decision: FaultDecision) -> Response:
        return Response(decision.status or 500, {"message": "injected fault"})

    def internal_error_response(self, req: Request, exc: BaseException) -> Response:
        return Response(500, {"message": f"sandbox internal error: {type(exc).__name__}"})

    def finish(self, req: Request, resp: Response) -> None:
        """Last look at a response before it is logged and sent (e.g. correlation headers)."""

    # -- pipeline ------------------------------------------------------------------------------
    def internal_error(self, req: Request, exc: BaseException) -> Response:
        """Record an exception the sandbox raised while answering, and answer it."""
        with self._errors_lock:
            self.internal_errors.append(exc)
        return self.internal_error_response(req, exc)

    def apply_faults(
        self, req: Request, handle: Callable[[Request], Response]
    ) -> tuple[Response, FaultKind | None]:
        """The seeded fault for this request: an error or 429 instead of `handle`, a dropped
        connection, or `handle(req)` answered late or applied and then dropped."""
        decision = self.injector.decide(req.method, req.path)
        kind = decision.kind
        if kind in ("error", "burst_429"):
            return self.fault_response(req, decision), kind
        if kind == "drop":
            return Response(0, drop=True), kind
        if kind == "proxy_page":
            return Response(200, PROXY_PAGE, content_type="text/html"), kind
        resp = handle(req)
        if kind == "drop_after_apply":
            resp.drop = True
        elif kind == "slow":
            resp.delay = self.injector.faults.slow_seconds
        return resp, kind

    def dispatch(self, req: Request) -> Response:
        kind: FaultKind | None = None
        try:
            early, extra_headers = self.preflight(req)
            if early is not None:
                resp = early
            else:
                resp, kind = self.apply_faults(req, self.route)
            for k, v in extra_headers.items():
                resp.headers.setdefault(k, v)
            self.finish(req, resp)
        except Exception as exc:
            resp = self.internal_error(req, exc)
        self.log.append(
            RequestRecord(
                method=req.method,
                path=req.path,
                query=req.query,
                body=logged_body(req),
                status=None if resp.drop else resp.status,
                fault=kind,
                at=time.monotonic(),
            )
        )
        return resp


# --------------------------------------------------------------------------------------------
# the HTTP server
# --------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "leadscore-sandbox/1"
    sys_version = ""
    server: _Server
    timeout = 30  # idle keep-alive connections give up after this

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed HTTP (bad request line, oversized headers...): a JSON error, not HTML."""
        self.close_connection = True
        category = "VALIDATION_ERROR" if code < 500 else "INTERNAL_ERROR"
        text = message or HTTPStatus(code).phrase
        body = {"status": "error", "message": text, "correlationId": new_correlation_id(),
                "category": category}  # fmt: skip
        self._send(Response(code, body))

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log (the app keeps its own request log)."""

    def _read_body(self) -> bytes | None:
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks: list[bytes] = []
            total = 0
            for _ in range(100_000):
                line = self.rfile.readline(1024)
                try:
                    size = int(line.split(b";")[0].strip() or b"0", 16)
                except ValueError:
                    return None
                if size == 0:
                    self.rfile.readline(1024)
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY_BYTES:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
            return None
        length_text = self.headers.get("Content-Length")
        if not length_text:
            return b""
        try:
            length = int(length_text)
        except ValueError:
            return None
        if length < 0 or length > MAX_BODY_BYTES:
            return None
        return self.rfile.read(length)

    def _handle(self) -> None:
        app = self.server.app
        body = self._read_body()
        if body is None:
            self.close_connection = True
            self.send_error(400, "Unreadable request body (bad Content-Length or chunking)")
            return
        headers = {k: v for k, v in self.headers.items()}
        try:
            req = Request.build(self.command, self.path, headers, body)
        except ValueError:
            self.send_error(400, "Malformed request target")
            return
        resp = app.dispatch(req)
        if resp.delay > 0 and app.stopping.wait(resp.delay):
            self.close_connection = True
            return
        if resp.drop:
            self.close_connection = True
            return
        self._send(resp, head_only=self.command == "HEAD")

    def _send(self, resp: Response, head_only: bool = False) -> None:
        payload = resp.payload()
        try:
            self.send_response(resp.status)
            if resp.status != 204 and resp.body is not None:
                self.send_header("Content-Type", resp.content_type)
            for k, v in resp.headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(0 if resp.status == 204 else len(payload)))
            if not self.server.keep_alive:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if payload and resp.status != 204 and not head_only:
                self.wfile.write(payload)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    do_GET = _handle
    do_POST = _handle
    do_PATCH = _handle
    do_PUT = _handle
    do_DELETE = _handle
    do_HEAD = _handle
    do_OPTIONS = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = True
    allow_reuse_address = True
    request_queue_size = 128  # the default 5 drops SYNs under concurrent clients (1 s stalls)

    def __init__(self, address: tuple[str, int], app: SandboxApp, keep_alive: bool) -> None:
        self.app = app
        self.keep_alive = keep_alive
        self._conn_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # Registered in the accepting thread, so stop() can never miss a connection.
        with self._conn_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._conn_lock:
                self._connections.discard(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away is nothing to report; anything else is a sandbox bug."""
        exc = sys.exc_info()[1]
        if exc is not None and not isinstance(exc, OSError):
            with self.app._errors_lock:
                self.app.internal_errors.append(exc)

    def shutdown_connections(self) -> None:
        with self._conn_lock:
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class SandboxServer:
    """A :class:`SandboxApp` served over HTTP on 127.0.0.1 from a daemon thread.

    ``keep_alive=False`` (default) answers every request with ``Connection: close``: clients
    that never close their pools (the HubSpot SDK) then leave no open sockets behind, which
    keeps ``ResourceWarning``-as-error test suites green. Set it True for benchmarks.
    """

    def __init__(
        self, app: SandboxApp, port: int = 0, host: str = LOOPBACK, keep_alive: bool = False
    ) -> None:
        if host != LOOPBACK:
            raise ValueError(f"sandboxes only bind {LOOPBACK}, not {host!r}")
        self.app = app
        self._server = _Server((host, port), app, keep_alive)
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._lock = threading.Lock()

    @property
    def host(self) -> str:
        return LOOPBACK

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.02},
                name=f"sandbox-{self.port}",
                daemon=True,
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop serving, cut open connections, join every thread, close the socket. Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            self.app.stopping.set()
            if self._thread is not None:
                self._server.shutdown()
                self._thread.join(timeout=10)
            self._server.shutdown_connections()
            self._server.server_close()  # joins handler threads (block_on_close)


AppT = TypeVar("AppT", bound=SandboxApp)


class RunningSandbox(Generic[AppT]):
    """What every running sandbox handle shares: lifecycle, address, request log, faults.
    Use it as a context manager; `stop()` may be called more than once."""

    def __init__(self, app: AppT, server: SandboxServer) -> None:
        self.app = app
        self._server = server

    @classmethod
    def serve(cls, app: AppT, *, port: int = 0, keep_alive: bool = False) -> Self:
        """Serve ``app`` on 127.0.0.1:``port`` (0 = any free port) and return the handle."""
        server = SandboxServer(app, port=port, keep_alive=keep_alive)
        app.base_url = server.url
        server.start()
        return cls(app, server)

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def port(self) -> int:
        return self._server.port

    def clear_log(self) -> None:
        self.app.log.clear()

    @property
    def internal_errors(self) -> list[BaseException]:
        """Exceptions the sandbox itself raised while answering (should stay empty)."""
        return list(self.app.internal_errors)

    @property
    def faults(self) -> Faults:
        return self.app.injector.faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        self.app.injector.set(value)


StoreT = TypeVar("StoreT")


def open_store(
    source: StoreT | Mapping[str, Any] | str | Path | None,
    store_type: type[StoreT],
    empty: Callable[[], StoreT],
    load: Callable[[Mapping[str, Any] | str | Path], StoreT],
) -> StoreT:
    """What a sandbox serves: the given store, an empty one (None), else a loaded fixture (a
    dict or the path of a JSON file)."""
    if isinstance(source, store_type):
        return source
    if source is None:
        return empty()
    assert isinstance(source, Mapping | str | Path)
    return load(source)


def fixture_or_default(
    path: str | None, default: Path, build: Callable[[], dict[str, Any]]
) -> str | dict[str, Any]:
    """What a sandbox CLI serves: the given file, else the committed demo fixture, else a
    freshly generated demo (same content; used when the package runs outside the repo)."""
    if path is not None:
        return path
    if default.is_file():
        return str(default)
    return build()


def wait_for_interrupt(stop: threading.Event) -> None:
    """Block until Ctrl-C (or until ``stop`` is set, which tests use)."""
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass


def read_fixture(
    data: Mapping[str, Any] | str | Path, now: datetime | None
) -> tuple[Mapping[str, Any], datetime, Callable[[object, int], int]]:
    """A sandbox fixture (dict or JSON file), the clock to load it at, and `when(value,
    default)`: a fixture timestamp in epoch ms, shifted by (now - anchor) so demo data stays
    recent."""
    if isinstance(data, str | Path):
        with open(data, encoding="utf-8") as fh:
            data = json.load(fh)
    if not isinstance(data, Mapping):
        raise ValueError("a sandbox fixture must be a JSON object")
    at = now or utc_now()
    anchor = data.get("anchor")
    shift = to_ms(at) - parse_time_ms(anchor) if anchor else 0

    def when(value: object, default: int) -> int:
        if value is None or value == "":
            return default
        return parse_time_ms(value) + shift

    return data, at, when
