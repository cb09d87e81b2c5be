"""The worker's HTTP endpoint (stdlib `ThreadingHTTPServer` in a thread):

- `GET /healthz`: 200 `{"status": "ok", "last_successful_sync_age_seconds": …, "db": "ok", …}`
  when the last successful sync finished less than `max_age` ago (3× the sync interval by
  default) and the state DB answers; 503 with the same fields otherwise (also before the first
  successful sync of a new install);
- `GET /metrics`: the Prometheus text format;
- `POST /webhooks/hubspot` (when enabled): HubSpot webhooks, see `connector.worker.webhooks`.

Health reads the state DB through a connection of its own (WAL: readers never wait for the
sync's writes), so a long sync never makes the probe hang.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CONTENT_TYPE_LATEST

from connector.errors import ConnectorError
from connector.state.store import StateStore
from connector.worker.metrics import WorkerMetrics
from connector.worker.webhooks import WebhookReceiver

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/hubspot"
MAX_BODY = 1024 * 1024


class HealthCheck:
    """Is the worker syncing? Reads the newest successful sync from the state DB."""

    def __init__(
        self,
        state_path: str | Path,
        crm: str,
        max_age: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.state_path = state_path
        self.crm = crm
        self.max_age = max_age
        self.clock = clock
        self._store: StateStore | None = None
        self._lock = threading.Lock()

    def __call__(self) -> tuple[int, dict[str, Any]]:
        body: dict[str, Any] = {
            "status": "ok",
            "crm": self.crm,
            "last_successful_sync_age_seconds": None,
            "max_age_seconds": self.max_age.total_seconds(),
            "db": "ok",
        }
        with self._lock:
            try:
                if self._store is None:
                    self._store = StateStore.open(self.state_path)
                last = self._store.last_successful_run(self.crm, "sync")
            except (ConnectorError, OSError, ValueError) as exc:
                self._close()
                body.update(status="db error", db=f"error: {exc}"[:300])
                return 503, body
            except Exception as exc:  # sqlite3 errors that are not StateError
                self._close()
                body.update(status="db error", db=f"error: {type(exc).__name__}: {exc}"[:300])
                return 503, body
        if last is None or last.finished_at is None:
            body["status"] = "no successful sync yet"
            return 503, body
        age = (self.clock() - last.finished_at).total_seconds()
        body["last_successful_sync_age_seconds"] = round(age, 3)
        body["last_successful_sync_at"] = last.finished_at.isoformat()
        if age > self.max_age.total_seconds():
            body["status"] = "stale"
            return 503, body
        return 200, body

    def _close(self) -> None:
        if self._store is not None:
            try:
                self._store.close()
            finally:
                self._store = None

    def close(self) -> None:
        with self._lock:
            self._close()


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # handler threads are joined on close: no socket outlives stop()
    block_on_close = True
    app: WorkerServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 15  # a stuck client cannot hold a handler thread (or shutdown) for long
    server_version = "leadscore"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        app = self.server.app
        if path == "/healthz":
            code, body = app.health()
            self._send(code, json.dumps(body).encode(), "application/json")
        elif path == "/metrics":
            self._send(200, app.metrics.render(), CONTENT_TYPE_LATEST)
        else:
            self._send(404, b'{"error": "not found"}', "application/json")

    def do_POST(self) -> None:
        app = self.server.app
        split = urlsplit(self.path)
        if app.webhooks is None or split.path.rstrip("/") != app.webhook_path:
            self._send(404, b'{"error": "not found"}', "application/json")
            return
        length_text = self.headers.get("Content-Length")
        try:
            length = int(length_text or "")
        except ValueError:
            self._send(411, b'{"error": "Content-Length required"}', "application/json")
            return
        if length < 0 or length > MAX_BODY:
            self._send(413, b'{"error": "body too large"}', "application/json")
            return
        body = self.rfile.read(length)
        result = app.webhooks.handle("POST", app.full_uri(self), dict(self.headers), body)
        self._send(result.status, json.dumps(result.body).encode(), "application/json")

    def _send(self, code: int, payload: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)
        self.close_connection = True


class WorkerServer:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        health: Callable[[], tuple[int, dict[str, Any]]],
        metrics: WorkerMetrics,
        webhooks: WebhookReceiver | None = None,
        webhook_path: str = WEBHOOK_PATH,
        public_webhook_url: str | None = None,
    ) -> None:
        self.health = health
        self.metrics = metrics
        self.webhooks = webhooks
        self.webhook_path = webhook_path.rstrip("/")
        self.public_webhook_url = public_webhook_url
        self._httpd = _Server((host, port), _Handler)
        self._httpd.app = self
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = self._httpd.server_address[0]
        text = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{text}:{self.port}"

    def full_uri(self, handler: BaseHTTPRequestHandler) -> str:
        """The URI HubSpot signed: the configured public URL (plus the query), or the scheme,
        Host header and path as received."""
        split = urlsplit(handler.path)
        if self.public_webhook_url:
            return self.public_webhook_url + (f"?{split.query}" if split.query else "")
        proto = (handler.headers.get("X-Forwarded-Proto") or "http").split(",")[0].strip()
        host = handler.headers.get("Host") or self.url.split("://", 1)[1]
        return f"{proto}://{host}{handler.path}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="leadscore-http",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> WorkerServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
