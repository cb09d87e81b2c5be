"""The HubSpot sandbox's rate limits (ten-secondly, daily, search) and fault injection."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import urllib3
from hubspot import HubSpot
from hubspot.crm.contacts import PublicObjectSearchRequest, SimplePublicObjectInput
from hubspot.crm.contacts.exceptions import ApiException, ServiceException

from connector.sandbox.base import DailyQuota, FaultInjector, Faults, RollingWindowLimiter
from connector.sandbox.hubspot import HubSpotSandbox

TOKEN = "t0ken"
PORTAL = {
    "portal_id": 4242,
    "contacts": [
        {"id": str(i), "properties": {"email": f"c{i}@example.com", "firstname": f"C{i}"}}
        for i in range(1, 21)
    ],
}


def start(**kwargs: Any) -> HubSpotSandbox:
    return HubSpotSandbox.start(PORTAL, token=TOKEN, **kwargs)


@pytest.fixture
def sb() -> Iterator[HubSpotSandbox]:
    with start() as sandbox:
        yield sandbox
        assert sandbox.internal_errors == []


def get(
    sb: HubSpotSandbox, path: str = "/crm/v3/objects/contacts/1", **kw: Any
) -> requests.Response:
    return requests.get(
        sb.url + path, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5, **kw
    )


def outcome(sb: HubSpotSandbox) -> int | str:
    try:
        return get(sb).status_code
    except requests.ConnectionError:
        return "dropped"


def sdk(sb: HubSpotSandbox) -> HubSpot:
    return HubSpot(access_token=TOKEN, host=sb.url)


# ---------------------------------------------------------------------------------------------
# limiter units (fake clocks)
# ---------------------------------------------------------------------------------------------


def test_rolling_window_limiter_counts_accepted_requests_in_a_rolling_window() -> None:
    now = [0.0]
    limiter = RollingWindowLimiter(3, 10.0, clock=lambda: now[0])
    assert [limiter.try_acquire() for _ in range(4)] == [
        (True, 2),
        (True, 1),
        (True, 0),
        (False, 0),
    ]
    assert limiter.retry_after() == 10.0
    now[0] = 9.999
    assert limiter.try_acquire() == (False, 0)
    now[0] = 10.0  # the first hit leaves the window
    assert limiter.remaining() == 3
    assert limiter.try_acquire() == (True, 2)
    assert limiter.interval_ms == 10_000


def test_daily_quota_resets_after_a_scaled_day() -> None:
    now = [0.0]
    quota = DailyQuota(2, day_seconds=864.0, clock=lambda: now[0])
    assert [quota.try_acquire() for _ in range(3)] == [(True, 1), (True, 0), (False, 0)]
    now[0] = 863.9
    assert quota.remaining() == 0 and quota.seconds_to_reset() == pytest.approx(0.1)
    now[0] = 864.0
    assert quota.try_acquire() == (True, 1)


# ---------------------------------------------------------------------------------------------
# rate limits over HTTP
# ---------------------------------------------------------------------------------------------


def test_ten_secondly_budget_answers_429_then_recovers_after_the_scaled_window() -> None:
    with start(rate_limit=3, time_scale=0.05) as sb:  # 10 s window -> 0.5 s
        api = sdk(sb).crm.contacts.basic_api
        remaining = []
        for _ in range(3):
            _, status, headers = api.get_by_id_with_http_info("1")
            assert status == 200
            remaining.append(headers["X-HubSpot-RateLimit-Remaining"])
            assert headers["X-HubSpot-RateLimit-Max"] == "3"
            assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "500"
            assert headers["X-HubSpot-RateLimit-Daily"] == "250000"
        assert remaining == ["2", "1", "0"]
        with pytest.raises(ApiException) as info:
            api.get_by_id("1")
        exc = info.value
        assert exc.status == 429
        body = json.loads(exc.body)
        assert body == {
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": body["correlationId"],
            "policyName": "TEN_SECONDLY_ROLLING",
        }
        assert exc.headers["X-HubSpot-RateLimit-Remaining"] == "0"
        assert exc.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "249997"
        assert "Retry-After" not in exc.headers
        assert [r.status for r in sb.requests] == [200, 200, 200, 429]
        time.sleep(sb.app.ten_secondly.retry_after() + 0.01)
        assert api.get_by_id("1").id == "1"


def test_daily_budget_answers_429_daily_on_every_call_until_reset() -> None:
    with start(daily_limit=2) as sb:
        assert [get(sb).status_code for _ in range(2)] == [200, 200]
        for _ in range(2):
            resp = get(sb)
            assert resp.status_code == 429
            assert resp.json()["policyName"] == "DAILY"
            assert resp.json()["errorType"] == "RATE_LIMIT"
            assert resp.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"
        search = requests.post(
            sb.url + "/crm/v3/objects/contacts/search",
            json={},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=5,
        )
        assert search.status_code == 429 and search.json()["policyName"] == "DAILY"
        sb.reset_limits()
        assert get(sb).headers["X-HubSpot-RateLimit-Daily-Remaining"] == "1"
        sb.exhaust_daily_quota()
        assert get(sb).status_code == 429


def test_search_is_limited_to_five_per_second_without_rate_limit_headers() -> None:
    with start(time_scale=0.5) as sb:  # a 0.5 s search window
        api = sdk(sb).crm.contacts.search_api
        for _ in range(5):
            _, status, headers = api.do_search_with_http_info(PublicObjectSearchRequest(limit=1))
            assert status == 200
            assert not [h for h in headers if h.lower().startswith("x-hubspot-ratelimit")]
        with pytest.raises(ApiException) as info:
            api.do_search(PublicObjectSearchRequest(limit=1))
        assert info.value.status == 429
        assert json.loads(info.value.body)["policyName"] == "SECONDLY"
        assert not [h for h in info.value.headers if h.lower().startswith("x-hubspot-ratelimit")]
        # the ten-secondly budget is untouched by search
        assert get(sb).headers["X-HubSpot-RateLimit-Remaining"] == "99"
        time.sleep(sb.app.search_limiter.retry_after() + 0.01)
        assert api.do_search(PublicObjectSearchRequest(limit=1)).total == 20


# ---------------------------------------------------------------------------------------------
# fault injection
# ---------------------------------------------------------------------------------------------


def test_faults_are_off_by_default_and_validated() -> None:
    assert not Faults().active
    for bad in (
        {"error_rate": 1.5},
        {"drop_rate": -0.1},
        {"slow_seconds": -1},
        {"burst_429_length": 0},
        {"error_statuses": (404,)},
    ):
        with pytest.raises(ValueError):
            Faults(**bad)


def test_fault_injection_is_reproducible_with_a_seed(sb: HubSpotSandbox) -> None:
    plan = Faults(seed=42, error_rate=0.25, drop_rate=0.15, burst_429_every=9)

    def run() -> tuple[list[int | str], list[str | None]]:
        sb.faults = plan  # (re)setting the plan restarts its random sequence
        sb.clear_log()
        outcomes = [outcome(sb) for _ in range(30)]
        return outcomes, [r.fault for r in sb.requests]

    first, second = run(), run()
    assert first == second
    outcomes, faults = first
    assert {"error", "drop", "burst_429", None} <= set(faults)
    assert all(o == "dropped" for o, k in zip(outcomes, faults, strict=True) if k == "drop")
    assert all(o == 429 for o, k in zip(outcomes, faults, strict=True) if k == "burst_429")
    assert all(o in (500, 502, 503) for o, k in zip(outcomes, faults, strict=True) if k == "error")
    assert all(o == 200 for o, k in zip(outcomes, faults, strict=True) if k is None)
    sb.faults = plan.with_(seed=43)
    sb.clear_log()
    assert [outcome(sb) for _ in range(30)] != outcomes
    # the injector alone is deterministic too
    a, b = FaultInjector(plan), FaultInjector(plan)
    assert [a.decide("GET", "/x") for _ in range(50)] == [b.decide("GET", "/x") for _ in range(50)]


def test_error_faults_are_never_applied_and_carry_hubspot_or_edge_bodies(
    sb: HubSpotSandbox,
) -> None:
    api = sdk(sb).crm.contacts.basic_api
    sb.faults = Faults(error_rate=1.0, error_statuses=(500,))
    with pytest.raises(ServiceException) as info:
        api.update("1", SimplePublicObjectInput(properties={"firstname": "Changed"}))
    assert info.value.status == 500
    assert json.loads(info.value.body)["category"] == "INTERNAL_ERROR"
    sb.faults = Faults(error_rate=1.0, error_statuses=(502,))
    with pytest.raises(ServiceException) as info:
        api.update("1", SimplePublicObjectInput(properties={"firstname": "Changed"}))
    assert info.value.status == 502
    assert info.value.headers["Content-Type"] == "text/html"
    assert info.value.body.startswith("<html>")
    assert sb.portal.contacts["1"].properties["firstname"] == "C1"
    assert [(r.status, r.fault) for r in sb.requests] == [(500, "error"), (502, "error")]


def test_dropped_connection_is_not_applied_and_drop_after_apply_is(sb: HubSpotSandbox) -> None:
    api = sdk(sb).crm.contacts.basic_api
    before = sb.portal.contacts["1"].properties["lastmodifieddate"]
    sb.faults = Faults(drop_rate=1.0)
    with pytest.raises(urllib3.exceptions.ProtocolError):
        api.update("1", SimplePublicObjectInput(properties={"firstname": "Lost"}))
    assert sb.portal.contacts["1"].properties["firstname"] == "C1"
    assert sb.portal.contacts["1"].properties["lastmodifieddate"] == before

    sb.faults = Faults(drop_after_apply_rate=1.0)
    with pytest.raises(urllib3.exceptions.ProtocolError):
        api.update("1", SimplePublicObjectInput(properties={"firstname": "Applied"}))
    assert sb.portal.contacts["1"].properties["firstname"] == "Applied"
    assert sb.portal.contacts["1"].properties["lastmodifieddate"] > before
    assert [(r.method, r.status, r.fault) for r in sb.requests] == [
        ("PATCH", None, "drop"),
        ("PATCH", None, "drop_after_apply"),
    ]
    # GETs are retried by urllib3 (3 retries) before the SDK gives up
    sb.clear_log()
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        api.get_by_id("1")
    assert [r.fault for r in sb.requests] == ["drop_after_apply"] * 4


def test_slow_response_times_out_the_client_but_is_applied(sb: HubSpotSandbox) -> None:
    api = sdk(sb).crm.contacts.basic_api
    sb.faults = Faults(slow_rate=1.0, slow_seconds=1.0)
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        api.update(
            "1", SimplePublicObjectInput(properties={"firstname": "Slow"}), _request_timeout=0.1
        )
    assert time.monotonic() - started < 0.9  # the client gave up before the answer came
    assert sb.portal.contacts["1"].properties["firstname"] == "Slow"
    assert [(r.status, r.fault) for r in sb.requests] == [(200, "slow")]


def test_burst_429_every_nth_request(sb: HubSpotSandbox) -> None:
    sb.faults = Faults(burst_429_every=3, burst_429_length=2)
    responses = [get(sb) for _ in range(8)]
    assert [r.status_code for r in responses] == [200, 200, 429, 429, 200, 429, 429, 200]
    assert responses[2].json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert responses[2].headers["X-HubSpot-RateLimit-Remaining"] == "0"


def test_faults_can_target_methods_and_paths(sb: HubSpotSandbox) -> None:
    sb.faults = Faults(error_rate=1.0, methods=("PATCH",), path_prefixes=("/crm/v3/objects/",))
    assert get(sb).status_code == 200
    assert get(sb, "/crm/v3/properties/contacts/email").status_code == 200
    resp = requests.patch(
        sb.url + "/crm/v3/objects/contacts/1",
        json={"properties": {}},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )
    assert resp.status_code in (500, 502, 503)
    sb.faults = Faults()
    assert [r.fault for r in sb.requests] == [None, None, "error"]


def test_stop_does_not_wait_for_a_slow_response() -> None:
    sb = start(faults=Faults(slow_rate=1.0, slow_seconds=30))
    errors: list[BaseException] = []

    def client() -> None:
        try:
            get(sb)
        except requests.RequestException as exc:
            errors.append(exc)

    t = threading.Thread(target=client)
    t.start()
    for _ in range(200):
        if sb.requests:
            break
        time.sleep(0.005)
    started = time.monotonic()
    sb.stop()
    t.join(5)
    assert time.monotonic() - started < 2
    assert not t.is_alive()
    assert len(errors) == 1  # the client saw the connection close
