"""The Marketo sandbox over real HTTP: faithful to reference/marketo-api.md, and its demo instance.

Every test talks to a loopback server with plain `requests`, the way any client would.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from connector.sandbox.marketo import (
    CHANGE_DATA_VALUE,
    DELETE_LEAD,
    WEBINAR_ATTENDED,
    ActivityRecord,
    EnvelopeFaults,
    Faults,
    Instance,
    MarketoSandbox,
    load_instance,
)
from connector.sandbox.marketo_cli import run_sandbox
from connector.sandbox.marketo_demo import build_demo_instance, build_instance

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "marketo_demo_instance.json"
DEMO: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))


@pytest.fixture
def sb() -> Iterator[MarketoSandbox]:
    with MarketoSandbox.start(DEMO) as sandbox:
        yield sandbox
        assert sandbox.internal_errors == []


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def token_of(sb: MarketoSandbox, http: requests.Session) -> str:
    r = http.get(
        f"{sb.url}/identity/oauth/token",
        params={
            "grant_type": "client_credentials",
            "client_id": sb.client_id,
            "client_secret": sb.client_secret,
        },
    )
    assert r.status_code == 200
    return str(r.json()["access_token"])


def call(
    sb: MarketoSandbox, http: requests.Session, method: str, path: str, **kw: Any
) -> dict[str, Any]:
    token = kw.pop("token", None) or token_of(sb, http)
    headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
    r = http.request(method, f"{sb.url}{path}", headers=headers, **kw)
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body, dict)
    return body


def codes(body: dict[str, Any]) -> list[str]:
    return [e["code"] for e in body.get("errors", [])]


# -- identity and envelopes ----------------------------------------------------------------


def test_identity_returns_the_same_token_with_its_remaining_lifetime(
    sb: MarketoSandbox, http: requests.Session
) -> None:
    params = {
        "grant_type": "client_credentials",
        "client_id": sb.client_id,
        "client_secret": sb.client_secret,
    }
    first = http.get(f"{sb.url}/identity/oauth/token", params=params).json()
    assert first["token_type"] == "bearer" and first["expires_in"] == 3600
    sb.instance.advance(100)
    again = http.post(f"{sb.url}/identity/oauth/token", data=params).json()  # form POST too
    assert again["access_token"] == first["access_token"]
    assert 3400 <= again["expires_in"] <= 3500
    sb.instance.advance(3600)
    fresh = http.get(f"{sb.url}/identity/oauth/token", params=params).json()
    assert fresh["access_token"] != first["access_token"] and fresh["expires_in"] == 3600
    bad = http.get(f"{sb.url}/identity/oauth/token", params={**params, "client_secret": "x"})
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    assert http.get(f"{sb.url}/identity/oauth/token").status_code == 400


def test_errors_arrive_in_a_200_envelope_with_string_codes(
    sb: MarketoSandbox, http: requests.Session
) -> None:
    r = http.get(f"{sb.url}/rest/v1/leads/describe.json")
    assert r.status_code == 200
    body = r.json()
    assert body["success"] is False and codes(body) == ["600"]
    assert set(body) >= {"requestId", "success", "errors", "warnings"}
    assert codes(call(sb, http, "GET", "/rest/v1/leads/describe.json", token="nope")) == ["601"]
    token = token_of(sb, http)
    ok = call(sb, http, "GET", "/rest/v1/leads/describe.json", token=token)
    assert ok["success"] is True and ok["errors"] == []
    sb.expire_tokens()
    assert codes(call(sb, http, "GET", "/rest/v1/leads/describe.json", token=token)) == ["602"]
    assert codes(call(sb, http, "GET", "/rest/v1/nothing.json")) == ["610"]
    last = sb.requests[-1]
    assert last.success is False and last.error_codes == ("610",)
    sb.app.reject_tokens = True
    assert codes(call(sb, http, "GET", "/rest/v1/leads/describe.json")) == ["601"]


def test_describe_names_the_instance_specific_fields(
    sb: MarketoSandbox, http: requests.Session
) -> None:
    body = call(sb, http, "GET", "/rest/v1/leads/describe.json")
    names = {f["rest"]["name"]: f for f in body["result"]}
    for name in (
        "leadScore",
        "leadGrade__c",
        "leadScoreReasons__c",
        "leadScoreModel__c",
        "leadScoredAt__c",
        "mqlReason__c",
        "profileMismatch__c",
        "leadStatus",
        "email",
        "firstName",
        "lastName",
        "title",
        "company",
        "country",
        "updatedAt",
        "createdAt",
    ):
        assert name in names
    assert names["updatedAt"]["rest"]["readOnly"] is True
    assert names["profileMismatch__c"]["dataType"] == "boolean"
    two = call(sb, http, "GET", "/rest/v1/leads/describe2.json")["result"][0]
    assert ["email"] in two["searchableFields"]
    assert {f["name"] for f in two["fields"]} == set(names)


# -- leads ---------------------------------------------------------------------------------


def test_leads_by_filter_with_limits_and_paging(sb: MarketoSandbox, http: requests.Session) -> None:
    path = "/rest/v1/leads.json"
    ids = "101,102,103,104,105"
    first = call(
        sb,
        http,
        "GET",
        path,
        params={
            "filterType": "id",
            "filterValues": ids,
            "fields": "email,leadStatus",
            "batchSize": 2,
        },
    )
    assert [r["id"] for r in first["result"]] == [101, 102]
    assert first["result"][0] == {
        "id": 101,
        "email": "dana.whitfield@acme-analytics.com",
        "leadStatus": "Open",
    }
    seen = [r["id"] for r in first["result"]]
    token = first["nextPageToken"]
    for _ in range(5):
        page = call(
            sb,
            http,
            "GET",
            path,
            params={
                "filterType": "id",
                "filterValues": ids,
                "fields": "email,leadStatus",
                "batchSize": 2,
                "nextPageToken": token,
            },
        )
        seen += [r["id"] for r in page["result"]]
        token = page.get("nextPageToken")
        if not token:
            break
    assert seen == [101, 102, 103, 104, 105]
    too_many = ",".join(str(i) for i in range(301))
    assert codes(
        call(sb, http, "GET", path, params={"filterType": "id", "filterValues": too_many})
    ) == ["1003"]
    assert codes(
        call(
            sb,
            http,
            "GET",
            path,
            params={"filterType": "id", "filterValues": "1", "batchSize": 301},
        )
    ) == ["1003"]
    assert codes(
        call(
            sb,
            http,
            "GET",
            path,
            params={"filterType": "id", "filterValues": "1", "fields": "nope"},
        )
    ) == ["1006"]
    assert codes(
        call(sb, http, "GET", path, params={"filterType": "title", "filterValues": "x"})
    ) == ["1003"]


def test_more_than_1000_matches_is_1003(http: requests.Session) -> None:
    inst = Instance()
    for i in range(1001):
        inst.create_lead({"email": "shared@example.com", "firstName": f"n{i}"}, log_activity=False)
    with MarketoSandbox.start(inst) as sb:
        body = call(
            sb,
            http,
            "GET",
            "/rest/v1/leads.json",
            params={"filterType": "email", "filterValues": "shared@example.com"},
        )
        assert codes(body) == ["1003"] and "1000" in body["errors"][0]["message"]


def test_form_post_with_method_get_is_answered_as_the_get(
    sb: MarketoSandbox, http: requests.Session
) -> None:
    token = token_of(sb, http)
    params = {"filterType": "email", "filterValues": "casey@initech.com", "fields": "email,title"}
    got = call(sb, http, "GET", "/rest/v1/leads.json", params=params, token=token)
    posted = call(
        sb, http, "POST", "/rest/v1/leads.json", data={"_method": "GET", **params}, token=token
    )
    assert posted["success"] is True
    assert (
        posted["result"]
        == got["result"]
        == [{"id": 107, "email": "casey@initech.com", "title": "Director of Sales Operations"}]
    )
    record = sb.requests[-1]
    assert record.method == "POST" and record.effective_method == "GET"
    assert record.param("filterValues") == "casey@initech.com"


def test_sync_reports_created_updated_and_skipped_per_record(
    sb: MarketoSandbox, http: requests.Session
) -> None:
    token = token_of(sb, http)
    dana_before = sb.lead(101).updated_ms
    body = call(
        sb,
        http,
        "POST",
        "/rest/v1/leads.json",
        token=token,
        json={
            "action": "updateOnly",
            "lookupField": "id",
            "input": [
                {"id": 101, "leadScore": "110", "leadGrade__c": "A"},
                {"id": 999999, "leadScore": 1},
                {"id": 102, "leadScore": 5, "fitPoints__c": 3},
                {"id": 103, "leadScore": "lots"},
            ],
        },
    )
    result = body["result"]
    assert body["success"] is True
    assert result[0] == {"seq": 0, "id": 101, "status": "updated"}
    assert [r["status"] for r in result[1:]] == ["skipped"] * 3
    assert [r["reasons"][0]["code"] for r in result[1:]] == ["1004", "1006", "1003"]
    assert sb.lead(101).values["leadScore"] == 110 and sb.lead(101).updated_ms > dana_before
    assert sb.lead(102).values.get("leadScore") is None  # skipped: nothing applied
    change = [
        a for a in sb.instance.activities if a.lead_id == 101 and a.type_id == CHANGE_DATA_VALUE
    ]
    assert change[-1].fields[0]["name"] == "leadGrade__c"
    upsert = call(
        sb,
        http,
        "POST",
        "/rest/v1/leads.json",
        token=token,
        json={
            "action": "createOrUpdate",
            "lookupField": "email",
            "input": [
                {"email": "new.person@hooli.io", "firstName": "New"},
                {"email": "casey@initech.com", "title": "VP Sales"},
            ],
        },
    )["result"]
    assert [r["status"] for r in upsert] == ["created", "updated"]
    call(
        sb,
        http,
        "POST",
        "/rest/v1/leads.json",
        token=token,
        json={"action": "createDuplicate", "input": [{"email": "casey@initech.com"}]},
    )
    dup = call(
        sb,
        http,
        "POST",
        "/rest/v1/leads.json",
        token=token,
        json={"action": "createOrUpdate", "input": [{"email": "casey@initech.com"}]},
    )["result"][0]
    assert dup["reasons"][0]["code"] == "1007"
    only = call(
        sb,
        http,
        "POST",
        "/rest/v1/leads.json",
        token=token,
        json={"action": "createOnly", "input": [{"email": "new.person@hooli.io"}]},
    )["result"][0]
    assert only["reasons"][0]["code"] == "1005"
    big = [{"id": 101}] * 301
    assert codes(
        call(sb, http, "POST", "/rest/v1/leads.json", token=token, json={"input": big})
    ) == ["1003"]
    assert codes(
        call(
            sb,
            http,
            "POST",
            "/rest/v1/leads.json",
            token=token,
            data=b"{not json",
            headers={"Content-Type": "application/json"},
        )
    ) == ["609"]


# -- activities ----------------------------------------------------------------------------


def _since_token(sb: MarketoSandbox, http: requests.Session, token: str) -> str:
    body = call(
        sb,
        http,
        "GET",
        "/rest/v1/activities/pagingtoken.json",
        token=token,
        params={"sinceDatetime": "2000-01-01T00:00:00Z"},
    )
    return str(body["nextPageToken"])


def test_activity_pages_can_be_short_or_empty_while_more_result_is_true(
    http: requests.Session,
) -> None:
    with MarketoSandbox.start(DEMO, scan_limit=80) as sb:
        sb.app.empty_page_every = 3
        token = token_of(sb, http)
        types = call(sb, http, "GET", "/rest/v1/activities/types.json", token=token)["result"]
        assert {t["id"]: t["name"] for t in types}[WEBINAR_ATTENDED] == "Webinar Attended"
        assert {1, 2, 3, 6, 7, 8, 9, 10, 11, 12, 13} <= {t["id"] for t in types}
        page_token = _since_token(sb, http, token)
        seen: list[str] = []
        sizes: list[int] = []
        for _ in range(500):
            body = call(
                sb,
                http,
                "GET",
                "/rest/v1/activities.json",
                token=token,
                params={"nextPageToken": page_token, "activityTypeIds": f"2,{WEBINAR_ATTENDED}"},
            )
            assert "moreResult" in body and body["nextPageToken"]
            if not body.get("result"):
                assert "result" not in body  # empty pages carry no result at all
            sizes.append(len(body.get("result", [])))
            seen += [a["marketoGUID"] for a in body.get("result", [])]
            page_token = body["nextPageToken"]
            if not body["moreResult"]:
                break
        expected = [a.guid for a in sb.instance.activities if a.type_id in (2, WEBINAR_ATTENDED)]
        assert seen == expected and len(expected) == 19  # + the Northwind Data webinar
        assert sizes.count(0) >= 5 and any(0 < s < 300 for s in sizes)
        sb.app.empty_page_every, sb.app.scan_limit = 0, 1000
        one = call(
            sb,
            http,
            "GET",
            "/rest/v1/activities.json",
            token=token,
            params={
                "nextPageToken": _since_token(sb, http, token),
                "activityTypeIds": "1",
                "batchSize": 2,
            },
        )["result"][0]
        assert set(one) >= {
            "id",
            "marketoGUID",
            "leadId",
            "activityDate",
            "activityTypeId",
            "primaryAttributeValue",
            "attributes",
        }
        assert {a["name"] for a in one["attributes"]} >= {"Webpage URL", "Referrer URL"}
        eleven = ",".join(str(i) for i in (1, 2, 3, 6, 7, 8, 9, 10, 11, 12, 13))
        assert codes(
            call(
                sb,
                http,
                "GET",
                "/rest/v1/activities.json",
                token=token,
                params={"nextPageToken": page_token, "activityTypeIds": eleven},
            )
        ) == ["1003"]
        leads = ",".join(str(i) for i in range(1, 32))
        assert codes(
            call(
                sb,
                http,
                "GET",
                "/rest/v1/activities.json",
                token=token,
                params={"nextPageToken": page_token, "activityTypeIds": "1", "leadIds": leads},
            )
        ) == ["1003"]
        sb.app.stuck_paging = True
        stuck = call(
            sb,
            http,
            "GET",
            "/rest/v1/activities.json",
            token=token,
            params={"nextPageToken": page_token, "activityTypeIds": "1"},
        )
        assert stuck["nextPageToken"] == page_token and stuck["moreResult"] is True


def test_lead_changes_and_deleted_leads(sb: MarketoSandbox, http: requests.Session) -> None:
    token = token_of(sb, http)
    since = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    start = call(
        sb,
        http,
        "GET",
        "/rest/v1/activities/pagingtoken.json",
        token=token,
        params={"sinceDatetime": since},
    )["nextPageToken"]
    assert codes(
        call(
            sb,
            http,
            "GET",
            "/rest/v1/activities/leadchanges.json",
            token=token,
            params={"nextPageToken": start},
        )
    ) == ["1003"]  # fields required
    sb.set_field(107, "title", "Student")  # an old lead (created 400 days ago) changes
    sb.set_field(106, "leadScore", 5)  # not a watched field
    body = call(
        sb,
        http,
        "GET",
        "/rest/v1/activities/leadchanges.json",
        token=token,
        params={"nextPageToken": start, "fields": "title,email"},
    )
    assert body["moreResult"] is False
    [change] = body["result"]
    assert change["leadId"] == 107 and change["activityTypeId"] == CHANGE_DATA_VALUE
    assert change["fields"] == [
        {
            "id": change["fields"][0]["id"],
            "name": "title",
            "newValue": "Student",
            "oldValue": "Director of Sales Operations",
        }
    ]
    ten_days = (datetime.now(UTC) - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    recent = call(
        sb,
        http,
        "GET",
        "/rest/v1/activities/pagingtoken.json",
        token=token,
        params={"sinceDatetime": ten_days},
    )["nextPageToken"]
    deleted = call(
        sb,
        http,
        "GET",
        "/rest/v1/activities/deletedleads.json",
        token=token,
        params={"nextPageToken": recent},
    )
    assert [(d["leadId"], d["activityTypeId"]) for d in deleted["result"]] == [(111, DELETE_LEAD)]
    gone = call(
        sb,
        http,
        "GET",
        "/rest/v1/leads.json",
        token=token,
        params={"filterType": "id", "filterValues": "111"},
    )
    assert gone["result"] == []


# -- limits and faults ---------------------------------------------------------------------


def test_rate_daily_and_concurrency_limits(http: requests.Session) -> None:
    with MarketoSandbox.start(DEMO, rate_limit=3, daily_limit=5, concurrency_limit=1) as sb:
        token = token_of(sb, http)
        bodies = [
            call(sb, http, "GET", "/rest/v1/leads/describe.json", token=token) for _ in range(4)
        ]
        assert [codes(b) for b in bodies] == [[], [], [], ["606"]]
        assert bodies[-1]["errors"][0]["message"] == "Max rate limit '3' exceeded with in '20' secs"
        sb.app.rate.reset()
        assert codes(call(sb, http, "GET", "/rest/v1/leads/describe.json", token=token)) == []
        sb.exhaust_daily_quota()
        assert codes(call(sb, http, "GET", "/rest/v1/leads/describe.json", token=token)) == ["607"]
        sb.reset_limits()
        sb.app.hold_seconds = 0.3
        seen: list[list[str]] = []

        def one() -> None:
            with requests.Session() as s:
                r = s.get(
                    f"{sb.url}/rest/v1/leads/describe.json",
                    headers={"Authorization": f"Bearer {token}"},
                )
                seen.append(codes(r.json()))

        threads = [threading.Thread(target=one) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(5)
        assert sorted(seen) == [[], ["615"]]


def test_faults_5xx_drops_and_envelope_errors(http: requests.Session) -> None:
    with MarketoSandbox.start(DEMO) as sb:
        token = token_of(sb, http)
        url = f"{sb.url}/rest/v1/leads/describe.json"
        auth = {"Authorization": f"Bearer {token}"}
        sb.inject("502")
        r = http.get(url, headers=auth)
        assert r.status_code == 502 and "Bad Gateway" in r.text
        sb.inject("drop")
        with pytest.raises(requests.ConnectionError):
            http.get(url, headers=auth)
        sb.inject("713", times=2, path="/rest/v1/leads/")
        assert [codes(http.get(url, headers=auth).json()) for _ in range(3)] == [
            ["713"],
            ["713"],
            [],
        ]
        sb.faults = Faults(burst_429_every=1)
        assert codes(http.get(url, headers=auth).json()) == ["606"]
        sb.faults = Faults()

        def run(seed: int) -> list[list[str]]:
            sb.envelope_faults = EnvelopeFaults(seed=seed, rate=0.5)
            return [codes(http.get(url, headers=auth).json()) for _ in range(12)]

        first, again = run(4), run(4)
        assert first == again  # reproducible from the seed
        assert {c for cs in first for c in cs} <= {"604", "608", "611", "713"} and any(first)
        sb.envelope_faults = EnvelopeFaults()


# -- bulk export ---------------------------------------------------------------------------


def test_bulk_lead_export_lifecycle_csv_nulls_and_ranges(http: requests.Session) -> None:
    with MarketoSandbox.start(DEMO, export_seconds=0.05) as sb:
        token = token_of(sb, http)
        base = "/bulk/v1/leads/export"
        now = datetime.now(UTC)
        window = {"startAt": (now - timedelta(days=40)).isoformat(), "endAt": now.isoformat()}
        too_long = call(
            sb,
            http,
            "POST",
            f"{base}/create.json",
            token=token,
            json={"fields": ["id"], "filter": {"createdAt": window}},
        )
        assert codes(too_long) == ["1003"]
        window["startAt"] = (now - timedelta(days=30)).isoformat()
        job = call(
            sb,
            http,
            "POST",
            f"{base}/create.json",
            token=token,
            json={
                "fields": ["id", "email", "company", "leadScore"],
                "filter": {"updatedAt": window},
            },
        )["result"][0]
        assert job["status"] == "Created"
        export = f"{base}/{job['exportId']}"
        assert codes(call(sb, http, "GET", f"{export}/file.json", token=token)) == ["1003"]
        queued = call(sb, http, "POST", f"{export}/enqueue.json", token=token)["result"][0]
        assert queued["status"] in ("Queued", "Processing")
        status: dict[str, Any] = {}
        for _ in range(100):
            status = call(sb, http, "GET", f"{export}/status.json", token=token)["result"][0]
            if status["status"] == "Completed":
                break
            time.sleep(0.02)
        assert status["status"] == "Completed" and status["numberOfRecords"] > 0
        auth = {"Authorization": f"Bearer {token}"}
        whole = http.get(f"{sb.url}{export}/file.json", headers=auth)
        assert whole.status_code == 200 and whole.headers["Content-Type"].startswith("text/csv")
        assert len(whole.content) == status["fileSize"]
        lines = whole.text.splitlines()
        assert lines[0] == "id,email,company,leadScore"
        assert all(line.endswith(",null") for line in lines[1:])  # no scores yet: "null"
        part = http.get(f"{sb.url}{export}/file.json", headers={**auth, "Range": "bytes=0-9"})
        assert part.status_code == 206 and part.content == whole.content[:10]
        assert part.headers["Content-Range"] == f"bytes 0-9/{len(whole.content)}"
        bad = http.get(f"{sb.url}{export}/file.json", headers={**auth, "Range": "bytes=99999-"})
        assert bad.status_code == 416


@pytest.mark.parametrize(("end_shift", "exported"), [(0, True), (-1, False)])
def test_a_bulk_export_window_takes_in_the_whole_second_it_ends_on(
    http: requests.Session, end_shift: int, exported: bool
) -> None:
    """Marketo's export windows and record times are whole seconds (ISO 8601 without
    milliseconds): a lead updated at 10:00:00.700 is in a window ending at 10:00:00, not in
    one ending at 09:59:59."""
    second = datetime(2026, 1, 15, 10, tzinfo=UTC)
    with MarketoSandbox.start(DEMO, export_seconds=0.01) as sb:
        lead = sb.instance.leads[101]
        lead.updated_ms = int(second.timestamp()) * 1000 + 700
        token = token_of(sb, http)
        window = {
            "startAt": (second - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "endAt": (second + timedelta(seconds=end_shift)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        base = "/bulk/v1/leads/export"
        body = {"fields": ["id"], "filter": {"updatedAt": window}}
        job = call(sb, http, "POST", f"{base}/create.json", token=token, json=body)["result"][0]
        export = f"{base}/{job['exportId']}"
        call(sb, http, "POST", f"{export}/enqueue.json", token=token)
        for _ in range(200):
            status = call(sb, http, "GET", f"{export}/status.json", token=token)["result"][0]
            if status["status"] == "Completed":
                break
            time.sleep(0.01)
        auth = {"Authorization": f"Bearer {token}"}
        rows = http.get(f"{sb.url}{export}/file.json", headers=auth).text.splitlines()
        assert rows == (["id", "101"] if exported else ["id"])


def test_bulk_export_queue_limits_cancel_and_failure(http: requests.Session) -> None:
    with MarketoSandbox.start(DEMO, export_seconds=60) as sb:
        token = token_of(sb, http)
        base = "/bulk/v1/activities/export"
        now = datetime.now(UTC)
        flt = {
            "createdAt": {
                "startAt": (now - timedelta(days=7)).isoformat(),
                "endAt": now.isoformat(),
            }
        }
        ids = [
            call(sb, http, "POST", f"{base}/create.json", token=token, json={"filter": flt})[
                "result"
            ][0]["exportId"]
            for _ in range(13)
        ]
        answers = [
            codes(call(sb, http, "POST", f"{base}/{i}/enqueue.json", token=token)) for i in ids
        ]
        assert answers == [[]] * 12 + [["1029"]]
        listed = call(sb, http, "GET", f"{base}.json", token=token)["result"]
        assert sorted(j["status"] for j in listed).count("Processing") == 2
        assert sum(j["status"] == "Queued" for j in listed) == 10
        cancelled = call(sb, http, "POST", f"{base}/{ids[0]}/cancel.json", token=token)
        assert cancelled["result"][0]["status"] == "Cancelled"
        assert codes(call(sb, http, "POST", f"{base}/{ids[12]}/enqueue.json", token=token)) == []
        sb.app.export_seconds = 0.0
        sb.app.fail_next_export = True
        failing = call(sb, http, "POST", f"{base}/create.json", token=token, json={"filter": flt})[
            "result"
        ][0]["exportId"]
        for job_id in ids:
            call(sb, http, "POST", f"{base}/{job_id}/cancel.json", token=token)
        call(sb, http, "POST", f"{base}/{failing}/enqueue.json", token=token)
        status = call(sb, http, "GET", f"{base}/{failing}/status.json", token=token)["result"][0]
        assert status["status"] == "Failed"


# -- the demo instance ---------------------------------------------------------------------


def _acts(inst: Instance, lead: int, type_id: int) -> list[Any]:
    return [a for a in inst.activities if a.lead_id == lead and a.type_id == type_id]


def test_demo_instance_has_every_persona() -> None:
    now = datetime.now(UTC)
    inst = load_instance(DEMO, now=now)
    leads = {r.id: r.values for r in inst.live_leads()}
    assert len(leads) >= 50 and 111 not in leads and inst.leads[111].deleted_ms is not None
    day = 86_400_000

    def ago(act: ActivityRecord) -> float:
        return (inst.now_ms() - act.date_ms) / day

    dana = leads[101]
    assert (dana["email"], dana["title"]) == ("dana.whitfield@acme-analytics.com", "VP Marketing")
    views = _acts(inst, 101, 1)
    assert len(views) >= 30
    pricing = [a for a in views if dict(a.attributes)["Webpage URL"] == "/pricing"]
    assert len(pricing) == 2 and len({int(ago(a)) for a in pricing}) == 2
    days = sorted({int(ago(a)) for a in views})
    assert any(days[i + 2] - days[i] == 2 for i in range(len(days) - 2))  # 3 days in a row
    [webinar] = _acts(inst, 101, WEBINAR_ATTENDED)
    attrs = dict(webinar.attributes)
    assert attrs["Minutes Watched"] / attrs["Webinar Minutes"] >= 0.9

    riley = leads[102]
    assert riley["email"].endswith("@gmail.com") and riley["title"] == "Freelance designer"
    assert [a.primary_value for a in _acts(inst, 102, 2)] == ["Request a demo"]

    jordan = leads[103]
    assert jordan["email"].endswith("@outlook.com")
    careers = [a for a in _acts(inst, 103, 1) if "/careers" in dict(a.attributes)["Webpage URL"]]
    assert len(careers) >= 2
    assert all("indeed.com" in dict(a.attributes)["Referrer URL"] for a in careers)

    assert leads[104]["email"].endswith("@rivalscore.io")
    assert [a.primary_value for a in _acts(inst, 104, 2)] == ["Contact Us"]
    assert leads[105]["email"].endswith("@stanford.edu")
    alex = leads[106]
    assert alex["email"].endswith("@gmail.com") and alex["title"] == "Marketing Director"
    assert any("/product" in dict(a.attributes)["Webpage URL"] for a in _acts(inst, 106, 1))
    assert len(_acts(inst, 106, 11)) == 2  # Click Email
    casey = [a for t in (1, WEBINAR_ATTENDED) for a in _acts(inst, 107, t)]
    assert leads[107]["email"].endswith("@initech.com")
    assert casey and all(89 <= ago(a) <= 101 for a in casey)
    taylor = leads[108]
    assert taylor["email"].endswith("@globex.co.uk") and taylor["leadStatus"] == "SQL"
    [by_sales] = [a for a in _acts(inst, 108, CHANGE_DATA_VALUE)]
    assert dict(by_sales.attributes)["Source"] == "Sales"
    assert len([i for i in leads if i >= 113]) >= 40  # fillers
    newest = max(a.date_ms for a in inst.activities if a.type_id == 1)
    assert 0 < inst.now_ms() - newest < 2 * day  # shifted to the present at load


def test_demo_fixture_matches_its_generator_for_the_personas() -> None:
    built = build_demo_instance()
    fixture_leads = {lead["id"]: lead for lead in DEMO["leads"] if lead["id"] < 113}
    assert {lead["id"]: lead for lead in built["leads"] if lead["id"] < 113} == fixture_leads
    persona = set(fixture_leads)
    built_acts = [a for a in built["activities"] if a["leadId"] in persona]
    assert built_acts == [a for a in DEMO["activities"] if a["leadId"] in persona]
    big = build_instance(50, 1)
    assert len(big["leads"]) == 50 and len(big["activities"]) == 50


def test_cli_run_sandbox_prints_what_to_use(http: requests.Session) -> None:
    lines: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(
        target=run_sandbox, kwargs={"stop": stop, "echo": lines.append}, daemon=True
    )
    thread.start()
    try:
        for _ in range(200):
            if any(line.startswith("Press Ctrl-C") for line in lines):
                break
            time.sleep(0.01)
        url = lines[0].split()[-1]
        assert url.startswith("http://127.0.0.1:")
        assert any("leadscore-demo-secret" in line for line in lines)
        r = http.get(
            f"{url}/identity/oauth/token",
            params={
                "grant_type": "client_credentials",
                "client_id": "leadscore-demo-client",
                "client_secret": "leadscore-demo-secret",
            },
        )
        assert r.status_code == 200
    finally:
        stop.set()
        thread.join(10)
    assert lines[-1] == "Sandbox stopped."
