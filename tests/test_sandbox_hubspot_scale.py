"""25,000 contacts: keyset paging through search works, ``after`` past 10,000 is a 400."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import Filter, FilterGroup, PublicObjectSearchRequest
from hubspot.crm.contacts.exceptions import ApiException

from connector.sandbox.demo_portal import build_portal
from connector.sandbox.hubspot import HubSpotSandbox

TOKEN = "scale-token"
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
N = 25_000


@pytest.fixture(scope="module")
def big() -> Iterator[HubSpotSandbox]:
    started = time.monotonic()
    portal = build_portal(N, events_per_contact=1, seed=3)
    with HubSpotSandbox.start(
        portal, token=TOKEN, now=NOW, search_rate_limit=100_000, rate_limit=100_000
    ) as sb:
        assert time.monotonic() - started < 10
        yield sb
        assert sb.internal_errors == []


def search_api(sb: HubSpotSandbox) -> Any:
    return HubSpot(access_token=TOKEN, host=sb.url).crm.contacts.search_api


def keyset(sb: HubSpotSandbox, extra: list[Filter]) -> tuple[list[str], int]:
    """The connector's pattern: hs_object_id GT last, sorted ascending, limit 200."""
    api = search_api(sb)
    ids: list[str] = []
    last = "0"
    calls = 0
    for _ in range(N // 200 + 5):
        calls += 1
        page = api.do_search(
            PublicObjectSearchRequest(
                filter_groups=[
                    FilterGroup(
                        filters=[
                            *extra,
                            Filter(property_name="hs_object_id", operator="GT", value=last),
                        ]
                    )
                ],
                sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                properties=["email", "lastmodifieddate"],
                limit=200,
            )
        )
        ids += [c.id for c in page.results]
        if page.total <= len(page.results):
            break
        new_last = page.results[-1].id
        assert int(new_last) > int(last), "keyset page did not advance"
        last = new_last
    return ids, calls


def test_keyset_paging_reads_all_25000_contacts(big: HubSpotSandbox) -> None:
    big.clear_log()
    started = time.monotonic()
    ids, calls = keyset(big, [])
    assert ids == [str(i) for i in range(1, N + 1)]
    assert calls == N // 200
    assert len(big.requests) == calls and {r.status for r in big.requests} == {200}
    assert big.requests[-1].body["filterGroups"][0]["filters"][0]["value"] == "24800"
    assert time.monotonic() - started < 20


def test_incremental_keyset_with_a_lastmodifieddate_cursor(big: HubSpotSandbox) -> None:
    cursor = NOW - timedelta(days=3)
    cursor_ms = int(cursor.timestamp() * 1000)
    expected = [c.id for c in big.portal.live_contacts() if c.updated_ms >= cursor_ms]
    assert 200 < len(expected) < N
    ids, calls = keyset(
        big, [Filter(property_name="lastmodifieddate", operator="GTE", value=str(cursor_ms))]
    )
    assert ids == expected
    assert calls == -(-len(expected) // 200)


def test_offset_paging_hits_the_10000_cap(big: HubSpotSandbox) -> None:
    api = search_api(big)
    page = api.do_search(PublicObjectSearchRequest(limit=200, after="9800"))
    assert page.total == N
    assert [c.id for c in page.results][:2] == ["9801", "9802"]
    assert page.paging.next.after == "10000"  # offered, but following it fails
    with pytest.raises(ApiException) as info:
        api.do_search(PublicObjectSearchRequest(limit=200, after=page.paging.next.after))
    assert info.value.status == 400
    assert '"category":"VALIDATION_ERROR"' in info.value.body
    assert big.requests[-1].status == 400
