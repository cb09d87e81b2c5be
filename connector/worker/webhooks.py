"""HubSpot webhooks: signature v3, de-duplication by eventId, and the hand-raiser queue.

A POST is accepted only with a valid `X-HubSpot-Signature-v3`: base64(HMAC-SHA256(client
secret, method + full URI + raw body + `X-HubSpot-Request-Timestamp`)), compared in constant
time, with a timestamp at most 5 minutes away from our clock (older: a replay; newer: a clock
we do not trust). Anything else answers 401 and changes nothing.

The payload is a JSON array of events. Each handled `eventId` is remembered in the state DB
(`StoredIds`, table `webhook_events`: 7 days, at most a million ids, older ones pruned), so a
replayed or redelivered event is acknowledged (2xx, or HubSpot retries it for a day) but not
processed twice, also after the worker restarted. A hand-raiser (a `contact.propertyChange`
of a conversion property such as `recent_conversion_event_name`, or a form-submission event)
queues its contact; a worker thread drains the queue under the pipeline lock and fetches,
scores and writes back that contact within seconds (`connector.worker.passes.
refresh_contacts`). Every other event is left to the next poll, which reads it anyway (so does
a hand-raiser still queued when the worker stops).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from connector.errors import ConnectorError
from connector.state.store import StateStore
from connector.text import clean_text

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-hubspot-signature-v3"
TIMESTAMP_HEADER = "x-hubspot-request-timestamp"
MAX_SKEW_MS = 5 * 60 * 1000

# HubSpot's conversion roll-ups: they change when a contact submits a form.
CONVERSION_PROPERTIES = frozenset(
    {
        "recent_conversion_event_name",
        "recent_conversion_date",
        "first_conversion_event_name",
        "first_conversion_date",
        "num_conversion_events",
        "num_unique_conversion_events",
    }
)
# Form submissions relayed as their own event type (workflow webhooks, relays).
FORM_SUBMISSION_TYPES = frozenset({"form.submission", "form.submitted", "contact.formsubmission"})

# HubSpot decodes these in the URI before signing (v3 docs); everything else stays encoded.
_URI_DECODE = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
_URI_ESCAPE = re.compile("|".join(_URI_DECODE), re.IGNORECASE)


def signing_uri(uri: str) -> str:
    """The URI as HubSpot signs it: the listed percent-escapes decoded."""
    return _URI_ESCAPE.sub(lambda m: _URI_DECODE[m.group(0).upper()], uri)


def signature_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """base64(HMAC-SHA256(secret, method + uri + body + timestamp))."""
    message = method.upper().encode() + signing_uri(uri).encode() + body + timestamp.encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str = ""


def verify_v3(
    secret: str,
    method: str,
    uri: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    *,
    now_ms: int | None = None,
) -> Verdict:
    """Check one request's v3 signature. `now_ms` defaults to the wall clock."""
    if not signature:
        return Verdict(False, "missing X-HubSpot-Signature-v3")
    if not timestamp:
        return Verdict(False, "missing X-HubSpot-Request-Timestamp")
    try:
        ts = int(timestamp.strip())
    except ValueError:
        return Verdict(False, "X-HubSpot-Request-Timestamp is not epoch milliseconds")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if now - ts > MAX_SKEW_MS:
        return Verdict(False, "timestamp older than 5 minutes")
    if ts - now > MAX_SKEW_MS:
        return Verdict(False, "timestamp more than 5 minutes in the future")
    expected = signature_v3(secret, method, uri, body, timestamp.strip())
    if not hmac.compare_digest(expected.encode(), signature.strip().encode("utf-8", "replace")):
        return Verdict(False, "signature mismatch")
    return Verdict(True)


class SeenIds(Protocol):
    """Where handled event ids are remembered."""

    def seen_many(self, keys: Sequence[str]) -> set[str]: ...

    def add_many(self, keys: Iterable[str]) -> None: ...


class RecentIds:
    """Event ids seen within `ttl_s` (at most `capacity`, oldest forgotten first), in memory
    only (tests, and a receiver without a state DB)."""

    def __init__(
        self,
        capacity: int = 100_000,
        ttl_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = capacity
        self.ttl_s = ttl_s
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        while self._seen:
            key, at = next(iter(self._seen.items()))
            if now - at <= self.ttl_s and len(self._seen) <= self.capacity:
                return
            del self._seen[key]

    def seen(self, key: str) -> bool:
        with self._lock:
            self._expire(self._clock())
            return key in self._seen

    def seen_many(self, keys: Sequence[str]) -> set[str]:
        with self._lock:
            self._expire(self._clock())
            return {k for k in keys if k in self._seen}

    def add_many(self, keys: Iterable[str]) -> None:
        with self._lock:
            now = self._clock()
            for key in keys:
                self._seen[key] = now
                self._seen.move_to_end(key)
            self._expire(now)

    def __len__(self) -> int:
        return len(self._seen)


WEBHOOK_IDS_KEEP = timedelta(days=7)  # HubSpot retries a failed delivery for about a day
WEBHOOK_IDS_MAX = 1_000_000
WEBHOOK_IDS_PRUNE_EVERY_S = 60.0
WEBHOOK_DB_BUSY_TIMEOUT_S = 2.0  # then 503: HubSpot retries, its own timeout is 5 s


class StoredIds:
    """Handled event ids in the state DB (`webhook_events`), through a connection of its own
    (the pipeline's belongs to the sync thread), so they survive a restart. Ids older than
    `keep`, and all but the newest `capacity`, are pruned when it opens and then at most every
    `prune_every_s` seconds as ids are added."""

    def __init__(
        self,
        state_path: str | Path,
        *,
        keep: timedelta = WEBHOOK_IDS_KEEP,
        capacity: int = WEBHOOK_IDS_MAX,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        prune_every_s: float = WEBHOOK_IDS_PRUNE_EVERY_S,
        busy_timeout: float = WEBHOOK_DB_BUSY_TIMEOUT_S,
    ) -> None:
        self.keep = keep
        self.capacity = capacity
        self.prune_every_s = prune_every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._store = StateStore.open(state_path, busy_timeout=busy_timeout)
        self._pruned_at = time.monotonic()
        try:
            self.prune()
        except BaseException:
            self._store.close()
            raise

    def seen_many(self, keys: Sequence[str]) -> set[str]:
        with self._lock:
            return self._store.seen_webhook_events(keys)

    def add_many(self, keys: Iterable[str]) -> None:
        ids = list(keys)
        with self._lock:
            self._store.remember_webhook_events(ids, self._clock())
        if time.monotonic() - self._pruned_at >= self.prune_every_s:
            self.prune()

    def prune(self) -> int:
        with self._lock:
            self._pruned_at = time.monotonic()
            gone = self._store.prune_webhook_events(self._clock() - self.keep, self.capacity)
        if gone:
            log.debug("forgot %d webhook event id(s)", gone)
        return gone

    def close(self) -> None:
        with self._lock:
            self._store.close()


class ContactQueue:
    """Contacts waiting for an immediate refresh, each once, with when it was first queued."""

    def __init__(self, maxsize: int = 10_000) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[str, float] = OrderedDict()
        self._cond = threading.Condition()

    def put_many(self, contact_ids: Iterable[str]) -> bool:
        """Queue contacts; False (nothing queued) when they do not all fit."""
        ids = [i for i in dict.fromkeys(contact_ids)]
        with self._cond:
            new = [i for i in ids if i not in self._items]
            if len(self._items) + len(new) > self.maxsize:
                return False
            now = time.monotonic()
            for i in new:
                self._items[i] = now
            if ids:
                self._cond.notify_all()
            return True

    def take_all(self) -> dict[str, float]:
        with self._cond:
            items = dict(self._items)
            self._items.clear()
            return items

    def wait(self, timeout: float) -> bool:
        """True as soon as something is queued (or already is); False after `timeout`."""
        with self._cond:
            if self._items:
                return True
            self._cond.wait(timeout)
            return bool(self._items)

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


@dataclass
class WebhookResult:
    status: int
    body: dict[str, Any]


def hand_raiser_contact(event: Mapping[str, Any]) -> str | None:
    """The contact id when this webhook event is a hand-raiser, else None."""
    kind = str(event.get("subscriptionType") or "").strip()
    object_id = event.get("objectId", event.get("contactId"))
    if object_id is None or isinstance(object_id, bool):
        return None
    cid = str(object_id).strip()
    if not cid.isdigit():
        return None
    if kind.lower() in FORM_SUBMISSION_TYPES:
        return cid
    if kind == "contact.propertyChange" and event.get("propertyName") in CONVERSION_PROPERTIES:
        return cid
    return None


class WebhookReceiver:
    """Verifies and sorts HubSpot webhook POSTs; hand-raisers go to `queue`."""

    def __init__(
        self,
        client_secret: str,
        queue: ContactQueue,
        *,
        recent: SeenIds | None = None,
        metrics: Any = None,
        now_ms: Callable[[], int] | None = None,
    ) -> None:
        if not client_secret:
            raise ValueError("a client secret is required to verify webhooks")
        self._secret = client_secret
        self.queue = queue
        self.recent: SeenIds = recent or RecentIds()
        self.metrics = metrics
        self._now_ms = now_ms
        self._lock = threading.Lock()  # check-then-mark of event ids is one step

    def __repr__(self) -> str:
        return "WebhookReceiver(client_secret='**********')"

    def handle(
        self, method: str, uri: str, headers: Mapping[str, str], body: bytes
    ) -> WebhookResult:
        lower = {k.lower(): v for k, v in headers.items()}
        verdict = verify_v3(
            self._secret,
            method,
            uri,
            body,
            lower.get(SIGNATURE_HEADER),
            lower.get(TIMESTAMP_HEADER),
            now_ms=self._now_ms() if self._now_ms else None,
        )
        if not verdict.ok:
            log.warning("webhook rejected (401): %s", verdict.reason)
            self._count_request("unauthorized")
            return WebhookResult(401, {"error": "invalid signature", "reason": verdict.reason})
        try:
            payload = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            self._count_request("bad_request")
            return WebhookResult(400, {"error": "body is not JSON"})
        events = payload if isinstance(payload, list) else [payload]
        if not all(isinstance(e, dict) for e in events):
            self._count_request("bad_request")
            return WebhookResult(400, {"error": "expected an array of event objects"})
        with self._lock:
            fresh: list[dict[str, Any]] = []
            keys: list[str] = []
            duplicates = 0
            try:
                known = self.recent.seen_many(
                    [k for k in (_event_key(e) for e in events) if k is not None]
                )
            except (
                ConnectorError,
                sqlite3.Error,
            ) as exc:  # the state DB is locked or gone: HubSpot retries
                log.warning("webhook answered 503: event ids cannot be checked: %s", exc)
                self._count_request("busy")
                return WebhookResult(503, {"error": "busy, retry later"})
            for event in events:
                key = _event_key(event)
                if key is not None and (key in known or key in keys):
                    duplicates += 1
                    continue
                fresh.append(event)
                if key is not None:
                    keys.append(key)
            contacts = [c for c in (hand_raiser_contact(e) for e in fresh) if c is not None]
            if contacts and not self.queue.put_many(contacts):
                log.warning("webhook queue full (%d new): HubSpot will retry", len(contacts))
                self._count_request("busy")
                return WebhookResult(503, {"error": "busy, retry later"})
            try:  # remembered only once handled (a 503 is retried)
                self.recent.add_many(keys)
            except (
                ConnectorError,
                sqlite3.Error,
            ) as exc:  # handled all the same: a 503 would queue them twice
                log.warning(
                    "webhook event ids not recorded (a redelivery is handled again): %s", exc
                )
        self._count_request("accepted")
        if self.metrics is not None:
            self.metrics.webhook_event("duplicate", duplicates)
            self.metrics.webhook_event("queued", len(contacts))
            self.metrics.webhook_event("ignored", len(fresh) - len(contacts))
        if contacts:
            log.info("webhook: hand-raiser(s) %s queued for an immediate rescore", contacts)
        return WebhookResult(
            200,
            {
                "received": len(events),
                "duplicates": duplicates,
                "queued": len(contacts),
                "ignored": len(fresh) - len(contacts),
            },
        )

    def _count_request(self, result: str) -> None:
        if self.metrics is not None:
            self.metrics.webhook_request(result)


def _event_key(event: Mapping[str, Any]) -> str | None:
    eid = event.get("eventId")
    if eid is None or isinstance(eid, bool) or str(eid).strip() == "":
        return None
    return clean_text(str(eid).strip())  # a lone surrogate would not bind in SQLite


class HandRaiserWorker:
    """A thread that drains the queue under the pipeline lock. `drain()` may also be called by
    whoever already holds the lock (a running sync, between two committed pages)."""

    def __init__(
        self,
        queue: ContactQueue,
        lock: threading.RLock,
        refresh: Callable[[list[str]], Any],
        *,
        on_done: Callable[[dict[str, float], Any], None] | None = None,
        poll_s: float = 0.2,
    ) -> None:
        self.queue = queue
        self.lock = lock
        self.refresh = refresh
        self.on_done = on_done
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._draining = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="leadscore-webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        left = len(self.queue)
        if left:
            log.info("%d queued hand-raiser(s) left to the next sync", left)

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self.queue.wait(self.poll_s):
                continue
            with self.lock:
                if self._stop.is_set():
                    return
                try:
                    self.drain()
                except Exception:  # the poll picks these contacts up anyway
                    log.exception("webhook refresh failed; the next sync will score them")

    def drain(self) -> Any:
        """Refresh every queued contact now (the caller holds the pipeline lock)."""
        if self._draining:  # a refresh reached a checkpoint: no recursion
            return None
        items = self.queue.take_all()
        if not items:
            return None
        self._draining = True
        try:
            result = self.refresh(list(items))
        finally:
            self._draining = False
        if self.on_done is not None:
            self.on_done(items, result)
        return result
