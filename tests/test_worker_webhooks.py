"""HubSpot webhooks: signature v3 checked against the SDK's own validator, replays, and a
hand-raiser written back within seconds (not at the next poll)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hubspot.exceptions import InvalidSignatureTimestampError
from hubspot.utils.signature import Signature
from pydantic import SecretStr

from connector.crm.hubspot import HubSpotAdapter
from connector.crm.pacing import RollingPacer
from connector.enrich.enricher import build_enricher
from connector.model.loader import load_model
from connector.pipeline import Pipeline
from connector.retry import RetryPolicy
from connector.sandbox.demo_portal import build_demo_portal, build_portal
from connector.settings import load_settings
from connector.state.store import StateStore
from connector.worker.service import WorkerService
from connector.worker.webhooks import (
    RecentIds,
    StoredIds,
    hand_raiser_contact,
    signature_v3,
    signing_uri,
    verify_v3,
)

from .conftest import NOW, Harness, make_harness

SECRET = "app-client-secret-0f3c9a"
PATH = "/webhooks/hubspot"


def oracle(signature: str | None, body: bytes, uri: str, timestamp: str | None) -> bool:
    """What hubspot-api-client's own validator says (stale timestamps raise there)."""
    if signature is None or timestamp is None:
        return False
    try:
        return bool(
            Signature.is_valid(
                signature=signature,
                client_secret=SECRET,
                request_body=body.decode(),
                http_uri=uri,
                http_method="POST",
                signature_version="v3",
                timestamp=timestamp,
            )
        )
    except InvalidSignatureTimestampError:
        return False


def now_ms() -> int:
    return int(time.time() * 1000)


def sign(body: bytes, uri: str, ts: int, secret: str = SECRET) -> str:
    return str(
        Signature.get_signature(secret, body.decode(), "v3", uri, "POST", str(ts))
    )  # signed by the SDK, so our side is checked against an independent implementation


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=body, method="POST")
    req.add_header("Content-Type", "application/json")
    for k, v in headers.items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def event(event_id: int, object_id: str = "107", **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "eventId": event_id,
        "subscriptionId": 77,
        "portalId": 4242,
        "occurredAt": now_ms(),
        "subscriptionType": "contact.propertyChange",
        "objectId": int(object_id),
        "propertyName": "recent_conversion_event_name",
        "propertyValue": "Request a demo",
    }
    base.update(kw)
    return base


# ------------------------------------------------------------------------ pure functions


def test_verify_v3_agrees_with_the_sdk_validator_on_every_case() -> None:
    uri = "https://hooks.example.com/webhooks/hubspot?portal=4242"
    body = json.dumps([event(1)]).encode()
    ts = now_ms()
    good = sign(body, uri, ts)
    old = ts - 5 * 60 * 1000 - 1500
    cases = {
        "valid": (good, body, uri, str(ts), True),
        "bad signature": (sign(body, uri, ts, "other-secret"), body, uri, str(ts), False),
        "tampered body": (good, body.replace(b"107", b"108"), uri, str(ts), False),
        "other uri": (good, body, uri + "&x=1", str(ts), False),
        "other timestamp": (good, body, uri, str(ts + 1), False),
        "missing signature": (None, body, uri, str(ts), False),
        "missing timestamp": (good, body, uri, None, False),
        "older than 5 minutes": (sign(body, uri, old), body, uri, str(old), False),
    }
    for name, (sig, b, u, t, expected) in cases.items():
        assert oracle(sig, b, u, t) is expected, name
        assert verify_v3(SECRET, "POST", u, b, sig, t).ok is expected, name
    # our signature is byte-for-byte the SDK's
    assert signature_v3(SECRET, "POST", uri, body, str(ts)) == good


def test_verify_v3_rejects_timestamps_far_in_the_future_and_garbage() -> None:
    body, uri = b"[]", "http://127.0.0.1/webhooks/hubspot"
    future = now_ms() + 6 * 60 * 1000
    assert not verify_v3(SECRET, "POST", uri, body, sign(body, uri, future), str(future)).ok
    assert not verify_v3(SECRET, "POST", uri, body, "x", "yesterday").ok
    assert not verify_v3(SECRET, "POST", uri, body, "ünïcode", str(now_ms())).ok


def test_the_uri_is_decoded_as_hubspot_signs_it() -> None:
    assert signing_uri("https://x.io/hook%3fa=b%2Cc%40d%21") == "https://x.io/hook?a=b,c@d!"
    assert signing_uri("https://x.io/a%20b%3D") == "https://x.io/a%20b%3D"  # others stay


def test_hand_raisers_are_conversion_changes_and_form_submissions_only() -> None:
    assert hand_raiser_contact(event(1)) == "107"
    assert hand_raiser_contact(event(1, propertyName="num_conversion_events")) == "107"
    assert hand_raiser_contact(event(1, subscriptionType="form.submission")) == "107"
    assert hand_raiser_contact(event(1, propertyName="firstname")) is None
    assert hand_raiser_contact(event(1, subscriptionType="contact.creation")) is None
    assert hand_raiser_contact({"subscriptionType": "form.submission", "objectId": "x1"}) is None


def test_recent_ids_forget_after_their_ttl_and_beyond_capacity() -> None:
    clock = [0.0]
    ids = RecentIds(capacity=3, ttl_s=10, clock=lambda: clock[0])
    ids.add_many(["a", "b", "c", "d"])
    assert not ids.seen("a") and ids.seen("d")
    clock[0] = 11
    assert not ids.seen("d")


# ------------------------------------------------------------------------ over HTTP


@pytest.fixture
def demo_service(tmp_path: Path) -> Iterator[tuple[Harness, WorkerService]]:
    for h in make_harness(tmp_path, build_demo_portal()):
        service = WorkerService(
            h.pipeline,
            state_path=tmp_path / "state.db",
            sync_interval_s=3600,
            rescore_interval_s=3600,
            client_secret=SECRET,
            webhook_poll_s=0.05,
        )
        try:
            service.start(schedule=False)  # no poll at all: only the webhook can write
            yield h, service
        finally:
            service.stop()


def test_signature_cases_over_http_and_a_replay_is_acknowledged_not_reprocessed(
    demo_service: tuple[Harness, WorkerService],
) -> None:
    h, service = demo_service
    url = service.url + PATH
    body = json.dumps([event(9001, propertyName="firstname"), event(9002, "999999")]).encode()

    def headers(sig: str | None, ts: int | None) -> dict[str, str]:
        out = {}
        if sig is not None:
            out["X-HubSpot-Signature-v3"] = sig
        if ts is not None:
            out["X-HubSpot-Request-Timestamp"] = str(ts)
        return out

    ts = now_ms()
    old = ts - 6 * 60 * 1000
    cases = [
        ("valid", sign(body, url, ts), ts, 200),
        ("bad signature", sign(body, url, ts, "wrong-secret"), ts, 401),
        ("missing signature", None, ts, 401),
        ("missing timestamp", sign(body, url, ts), None, 401),
        ("older than 5 minutes", sign(body, url, old), old, 401),
    ]
    for name, sig, t, status in cases:
        assert oracle(sig, body, url, None if t is None else str(t)) is (status == 200), name
        code, answer = post(url, body, headers(sig, t))
        assert code == status, (name, answer)
    # the same delivery again (a replay within the 5 minutes, or HubSpot's redelivery)
    assert oracle(sign(body, url, ts), body, url, str(ts))
    code, answer = post(url, body, headers(sign(body, url, ts), ts))
    assert code == 200
    assert answer["duplicates"] == 2 and answer["queued"] == 0
    # one fresh and one replayed event in the same payload: only the fresh one counts
    mixed = json.dumps([event(9002, "999999"), event(9003, propertyName="lastname")]).encode()
    t2 = now_ms()
    code, answer = post(url, mixed, headers(sign(mixed, url, t2), t2))
    assert (code, answer["duplicates"], answer["ignored"]) == (200, 1, 1)
    # nothing reached the CRM: no hand-raiser among them, and no poll ran
    assert h.written_ids() == []
    metrics = service.metrics.render().decode()
    assert 'leadscore_webhook_requests_total{crm="hubspot",result="unauthorized"} 4.0' in metrics


def test_a_hand_raiser_webhook_is_written_back_within_two_seconds(
    demo_service: tuple[Harness, WorkerService],
) -> None:
    h, service = demo_service
    first = h.pipeline.sync()
    assert first.status == "ok"
    assert h.sb.contact("107").properties.get("leadscore_mql_reason") is None
    h.clock[0] = NOW + timedelta(minutes=2)
    h.sb.submit_form("107", "Request a demo", NOW + timedelta(minutes=1), "https://x/demo")
    h.sb.clear_log()
    url = service.url + PATH
    body = json.dumps([event(5001)]).encode()
    ts = now_ms()
    started = time.monotonic()
    code, answer = post(
        url,
        body,
        {"X-HubSpot-Signature-v3": sign(body, url, ts), "X-HubSpot-Request-Timestamp": str(ts)},
    )
    assert (code, answer["queued"]) == (200, 1)
    deadline = started + 2.0
    while time.monotonic() < deadline:
        if h.sb.contact("107").properties.get("leadscore_mql_reason"):
            break
        time.sleep(0.02)
    elapsed = time.monotonic() - started
    props = h.sb.contact("107").properties
    assert props.get("leadscore_mql_reason") == "hand-raiser: Request a demo", elapsed
    assert props.get("lifecyclestage") == "marketingqualifiedlead"
    assert elapsed < 2.0
    # fetched one contact and its events; no search, no portal-wide stream read
    paths = [r.path for r in h.sb.requests]
    assert not any(p.endswith("/search") for p in paths)
    assert all(r.param("objectId") == "107" for r in h.sb.requests if "/events/v3/" in r.path)
    assert h.written_ids() == ["107"]
    # the next poll finds nothing left to write for it
    h.sb.clear_log()
    h.clock[0] = NOW + timedelta(minutes=3)
    with service.worker.lock:  # as the scheduler's poll: after the drain's pass has ended
        again = h.pipeline.sync()
    assert again.status == "ok"
    assert "107" not in h.written_ids()


def test_a_hand_raiser_arriving_during_a_long_sync_is_written_between_two_pages(
    tmp_path: Path,
) -> None:
    for h in make_harness(tmp_path, build_portal(200, events_per_contact=1, seed=3)):
        h.adapter.page_size = 10  # 20 search pages at 15 per second: a sync of ~1.4 s
        h.adapter.search_pacer = RollingPacer(max_calls=15, interval_s=1.0, headroom=1.0)
        h.sb.submit_form("195", "Request a demo", NOW - timedelta(minutes=1), "https://x/demo")
        h.sb.clear_log()
        service = WorkerService(
            h.pipeline,
            state_path=tmp_path / "state.db",
            sync_interval_s=3600,
            rescore_interval_s=3600,
            client_secret=SECRET,
        )
        with service:
            service.start(schedule=False)
            sync = threading.Thread(target=service.worker.run_sync)
            sync.start()
            try:
                while sum(r.path.endswith("/search") for r in h.sb.requests) < 3:
                    assert sync.is_alive()
                    time.sleep(0.01)
                url = service.url + PATH
                body = json.dumps([event(7001, "195")]).encode()
                ts = now_ms()
                started = time.monotonic()
                code, _ = post(
                    url,
                    body,
                    {
                        "X-HubSpot-Signature-v3": sign(body, url, ts),
                        "X-HubSpot-Request-Timestamp": str(ts),
                    },
                )
                assert code == 200
                while time.monotonic() - started < 2.0 and "195" not in h.written_ids():
                    time.sleep(0.02)
                elapsed = time.monotonic() - started
                searches_then = sum(r.path.endswith("/search") for r in h.sb.requests)
            finally:
                sync.join(timeout=30)
        assert "195" in h.written_ids() and elapsed < 2.0
        assert searches_then < 20  # the sync was still pulling when 195 reached the CRM
        props = h.sb.contact("195").properties
        assert props["leadscore_mql_reason"] == "hand-raiser: Request a demo"
        summary = service.worker.history[-1]
        assert (summary.kind, summary.status) == ("sync", "ok")
        assert h.written_ids().count("195") == 1  # the sync found it already written
        kinds = [s.kind for s in service.worker.history]
        assert kinds == ["webhook", "sync"]


def signed(url: str, body: bytes) -> dict[str, str]:
    ts = now_ms()
    return {"X-HubSpot-Signature-v3": sign(body, url, ts), "X-HubSpot-Request-Timestamp": str(ts)}


def wait_for(check: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_redelivery_after_a_restart_is_acknowledged_not_processed_again(
    demo: Harness, tmp_path: Path
) -> None:
    h = demo
    db = tmp_path / "state.db"
    assert h.pipeline.sync().status == "ok"
    h.clock[0] = NOW + timedelta(minutes=2)
    h.sb.submit_form("107", "Request a demo", NOW + timedelta(minutes=1), "https://x/demo")
    h.sb.clear_log()
    first = WorkerService(
        h.pipeline,
        state_path=db,
        sync_interval_s=3600,
        rescore_interval_s=3600,
        client_secret=SECRET,
        webhook_poll_s=0.05,
    )
    body = json.dumps([event(5001)]).encode()
    with first:
        first.start(schedule=False)
        url = first.url + PATH
        code, answer = post(url, body, signed(url, body))
        assert (code, answer["queued"], answer["duplicates"]) == (200, 1, 0)
        wait_for(lambda: h.written_ids() == ["107"])
        wait_for(lambda: len(first.worker.history) == 1)
    props = h.sb.contact("107").properties
    assert props["leadscore_mql_reason"] == "hand-raiser: Request a demo"
    with sqlite3.connect(db) as raw:
        rows = raw.execute("SELECT event_id FROM webhook_events").fetchall()
    raw.close()
    assert rows == [("5001",)]

    # a restart: new process objects (state DB connection, adapter, pipeline, service)
    h.sb.clear_log()
    store = StateStore.open(db)
    adapter = HubSpotAdapter(
        SecretStr(h.sb.token),
        h.sb.url,
        timeout_s=5,
        retry=RetryPolicy(attempts=2, base_seconds=0.01, max_seconds=0.05, seed=1),
    )
    enricher = build_enricher(load_settings(), cache=store.company_cache)
    pipeline = Pipeline(
        store,
        adapter,
        load_model(),
        enricher=enricher,
        clock=lambda: NOW + timedelta(minutes=4),
    )
    second = WorkerService(
        pipeline,
        state_path=db,
        sync_interval_s=3600,
        rescore_interval_s=3600,
        client_secret=SECRET,
        webhook_poll_s=0.05,
    )
    try:
        with second:
            second.start(schedule=False)
            url = second.url + PATH
            # HubSpot redelivers the same event (it never saw our 200, say)
            code, answer = post(url, body, signed(url, body))
            assert (code, answer) == (
                200,
                {"received": 1, "duplicates": 1, "queued": 0, "ignored": 0},
            )
            time.sleep(0.3)  # six polls of the hand-raiser thread
            assert h.sb.requests == []  # not fetched, not scored, not written again
            assert second.worker.history == deque()
            # a new event of the same contact is still handled: the restart lost nothing
            fresh = json.dumps([event(5002)]).encode()
            code, answer = post(url, fresh, signed(url, fresh))
            assert (code, answer["queued"], answer["duplicates"]) == (200, 1, 0)
            wait_for(lambda: len(second.worker.history) == 1)
        paths = {(r.method, r.path) for r in h.sb.requests}
        assert ("GET", "/crm/v3/objects/contacts/107") in paths
        assert h.written_ids() == []  # fetched and scored again: nothing changed
        with sqlite3.connect(db) as raw:
            rows = raw.execute("SELECT event_id FROM webhook_events ORDER BY event_id").fetchall()
        raw.close()
        assert rows == [("5001",), ("5002",)]
    finally:
        adapter.close()
        store.close()


def test_stored_event_ids_are_pruned_by_age_and_by_count(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    StateStore.open(db).close()
    clock = [NOW]
    ids = StoredIds(
        db, keep=timedelta(days=7), capacity=3, clock=lambda: clock[0], prune_every_s=0.0
    )
    try:
        ids.add_many(["a"])
        clock[0] = NOW + timedelta(days=1)
        ids.add_many(["b", "c"])
        assert ids.seen_many(["a", "b", "c", "d"]) == {"a", "b", "c"}
        clock[0] = NOW + timedelta(days=7, hours=1)  # "a" is older than 7 days
        ids.add_many(["d"])
        assert ids.seen_many(["a", "b", "c", "d"]) == {"b", "c", "d"}
        ids.add_many(["e", "b"])  # over 3: the oldest go; "b" keeps its first time
        assert ids.seen_many(["a", "b", "c", "d", "e"]) == {"c", "d", "e"}
    finally:
        ids.close()
    with sqlite3.connect(db) as raw:
        rows = raw.execute(
            "SELECT event_id, received_at FROM webhook_events ORDER BY received_at, event_id"
        ).fetchall()
    raw.close()
    assert [r[0] for r in rows] == ["c", "d", "e"]
