"""The HubSpot sandbox, driven through the official SDK (and plain HTTP where the SDK has no
call): contacts, batch 200/207, validation, lifecycle, properties, search, merge, engagement."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from hubspot import HubSpot
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInput,
    BatchReadInputSimplePublicObjectId,
    Filter,
    FilterGroup,
    PublicMergeInput,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInput,
    SimplePublicObjectId,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.contacts.exceptions import ApiException, NotFoundException, UnauthorizedException
from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate
from hubspot.crm.properties.exceptions import ApiException as PropertiesApiException

from connector.sandbox.base import RequestRecord, iso_ms, parse_time_ms
from connector.sandbox.demo_portal import form_id
from connector.sandbox.hubspot import LIFECYCLE_STAGES, ContactRecord, HubSpotSandbox

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "hubspot_demo_portal.json"
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
TOKEN = "test-token"
DEMO: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
LIVE_IDS = sorted(
    (c["id"] for c in DEMO["contacts"] if c["id"] not in ("110", "111")), key=int
)  # 110 absorbed into 109, 111 archived


@pytest.fixture
def sb() -> Iterator[HubSpotSandbox]:
    # search is limited to 5/s by default; these tests search a lot (the limit is tested in
    # test_sandbox_hubspot_limits.py)
    with HubSpotSandbox.start(DEMO, token=TOKEN, now=NOW, search_rate_limit=10_000) as sandbox:
        yield sandbox
        assert sandbox.internal_errors == []


def sdk(sb: HubSpotSandbox, token: str = TOKEN) -> HubSpot:
    return HubSpot(access_token=token, host=sb.url)


def http(
    sb: HubSpotSandbox,
    method: str,
    path: str,
    *,
    token: str | None = TOKEN,
    **kwargs: Any,
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers.update(kwargs.pop("headers", {}))
    return requests.request(method, sb.url + path, headers=headers, timeout=10, **kwargs)


def body_of(exc: Exception) -> dict[str, Any]:
    raw = exc.body  # type: ignore[attr-defined]
    return dict(json.loads(raw))


def search(sb: HubSpotSandbox, **kwargs: Any) -> Any:
    return sdk(sb).crm.contacts.search_api.do_search(PublicObjectSearchRequest(**kwargs))


def f(prop: str, op: str, value: Any = None, **kw: Any) -> Filter:
    return Filter(property_name=prop, operator=op, value=value, **kw)


def expect_ids(sb: HubSpotSandbox, pred: Callable[[ContactRecord], bool]) -> list[str]:
    return [c.id for c in sb.portal.live_contacts() if pred(c)]


# ---------------------------------------------------------------------------------------------
# contacts: read
# ---------------------------------------------------------------------------------------------


def test_sdk_host_override_reads_a_contact_and_the_request_is_logged(sb: HubSpotSandbox) -> None:
    contact = sdk(sb).crm.contacts.basic_api.get_by_id("101")
    assert contact.id == "101"
    stored = sb.portal.contacts["101"].properties
    assert contact.properties == {
        "createdate": stored["createdate"],
        "email": "dana.whitfield@acme-analytics.com",
        "firstname": "Dana",
        "hs_object_id": "101",
        "lastmodifieddate": stored["lastmodifieddate"],
        "lastname": "Whitfield",
    }
    assert contact.archived is False
    assert contact.created_at == datetime.fromisoformat(stored["createdate"])
    assert sb.requests == [
        RequestRecord(
            method="GET",
            path="/crm/v3/objects/contacts/101",
            query={},
            body=None,
            status=200,
            fault=None,
            at=sb.requests[0].at,
        )
    ]
    sb.clear_log()
    assert sb.requests == []


def test_properties_param_returns_requested_plus_defaults_and_null_for_unset(
    sb: HubSpotSandbox,
) -> None:
    contact = sdk(sb).crm.contacts.basic_api.get_by_id(
        "102", properties=["jobtitle", "hs_lead_status", "no_such_property"]
    )
    assert set(contact.properties) == {
        "jobtitle",
        "hs_lead_status",
        "createdate",
        "hs_object_id",
        "lastmodifieddate",
    }
    assert contact.properties["jobtitle"] == "Freelance designer"
    assert contact.properties["hs_lead_status"] is None
    assert sb.requests[-1].query == {
        "properties": ["jobtitle", "hs_lead_status", "no_such_property"]
    }


def test_missing_and_wrong_token_get_401_with_hubspot_body(sb: HubSpotSandbox) -> None:
    with pytest.raises(UnauthorizedException) as info:
        sdk(sb, token="wrong").crm.contacts.basic_api.get_by_id("101")
    assert info.value.status == 401
    body = body_of(info.value)
    assert body["status"] == "error"
    assert body["category"] == "INVALID_AUTHENTICATION"
    assert set(body) == {"status", "message", "correlationId", "category"}
    assert "X-HubSpot-RateLimit-Remaining" not in info.value.headers

    resp = http(sb, "GET", "/crm/v3/objects/contacts/101", token=None)
    assert resp.status_code == 401
    assert resp.json()["category"] == "INVALID_AUTHENTICATION"
    assert resp.json()["message"].startswith("Authentication credentials not found")
    assert [r.status for r in sb.requests] == [401, 401]

    sb.token = "rotated"  # the old token is now revoked
    with pytest.raises(UnauthorizedException):
        sdk(sb).crm.contacts.basic_api.get_by_id("101")
    assert sdk(sb, "rotated").crm.contacts.basic_api.get_by_id("101").id == "101"


def test_archived_contact_is_404_and_absorbed_id_answers_with_the_survivor(
    sb: HubSpotSandbox,
) -> None:
    api = sdk(sb).crm.contacts.basic_api
    with pytest.raises(NotFoundException) as info:
        api.get_by_id("111")
    assert info.value.status == 404
    body = body_of(info.value)
    assert (body["status"], body["category"], body["context"]) == (
        "error",
        "OBJECT_NOT_FOUND",
        {"id": ["111"]},
    )
    archived = api.get_by_id("111", archived=True)
    assert (archived.id, archived.archived) == ("111", True)

    survivor = api.get_by_id("110", properties=["hs_merged_object_ids", "jobtitle"])
    assert survivor.id == "109"
    assert survivor.properties["hs_merged_object_ids"] == "110"
    assert survivor.properties["jobtitle"] == "Marketing Manager"


def test_list_pages_with_limit_and_after_skipping_archived_and_absorbed(
    sb: HubSpotSandbox,
) -> None:
    api = sdk(sb).crm.contacts.basic_api
    seen: list[str] = []
    after = None
    for _ in range(20):
        page = api.get_page(limit=7, after=after, properties=["jobtitle"])
        seen += [c.id for c in page.results]
        assert all(set(c.properties) == {"jobtitle", *DEFAULTS3} for c in page.results)
        if page.paging is None:
            break
        after = page.paging.next.after
        assert page.paging.next.link.startswith(f"{sb.url}/crm/v3/objects/contacts?")
    assert seen == LIVE_IDS
    assert len(sb.requests) == -(-len(LIVE_IDS) // 7)
    assert (
        http(sb, "GET", "/crm/v3/objects/contacts?archived=true").json()["results"][0]["id"]
        == "111"
    )


DEFAULTS3 = {"createdate", "hs_object_id", "lastmodifieddate"}


def test_batch_read_reports_missing_ids_in_a_207(sb: HubSpotSandbox) -> None:
    api = sdk(sb).crm.contacts.batch_api
    ok = api.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[SimplePublicObjectId(id="101"), SimplePublicObjectId(id="102")],
            properties=["email"],
            properties_with_history=[],
        )
    )
    assert type(ok).__name__ == "BatchResponseSimplePublicObject"
    assert [r.id for r in ok.results] == ["101", "102"]
    partial, status, _ = api.read_with_http_info(
        BatchReadInputSimplePublicObjectId(
            inputs=[SimplePublicObjectId(id=i) for i in ("101", "110", "111", "999")],
            properties=["email"],
            properties_with_history=[],
        )
    )
    assert status == 207
    assert [r.id for r in partial.results] == ["101", "109"]
    assert partial.num_errors == 1
    assert partial.errors[0].category == "OBJECT_NOT_FOUND"
    assert partial.errors[0].context == {"ids": ["111", "999"]}


# ---------------------------------------------------------------------------------------------
# contacts: write
# ---------------------------------------------------------------------------------------------


def test_create_update_archive_and_duplicate_email(sb: HubSpotSandbox) -> None:
    api = sdk(sb).crm.contacts.basic_api
    created = api.create(
        SimplePublicObjectInputForCreate(
            properties={
                "email": "new.person@hooli.io",
                "firstname": "New",
                "lifecyclestage": "lead",
            }
        )
    )
    assert created.id == "157"
    assert created.properties["email"] == "new.person@hooli.io"
    assert created.properties["createdate"] == created.properties["lastmodifieddate"]
    assert sb.requests[-1].status == 201

    with pytest.raises(ApiException) as info:
        api.create(SimplePublicObjectInputForCreate(properties={"email": "NEW.person@hooli.io"}))
    assert info.value.status == 409
    assert body_of(info.value)["category"] == "CONFLICT"
    assert body_of(info.value)["message"] == "Contact already exists. Existing ID: 157"

    updated = api.update("157", SimplePublicObjectInput(properties={"jobtitle": "CTO"}))
    assert updated.properties["jobtitle"] == "CTO"
    assert updated.properties["lastmodifieddate"] > created.properties["lastmodifieddate"]

    assert api.archive("157") is None
    assert sb.requests[-1].status == 204
    with pytest.raises(NotFoundException):
        api.get_by_id("157")


def test_every_write_bumps_lastmodifieddate_even_when_nothing_changes(sb: HubSpotSandbox) -> None:
    api = sdk(sb).crm.contacts.basic_api
    before = sb.portal.contacts["105"].properties["lastmodifieddate"]
    first = api.update("105", SimplePublicObjectInput(properties={"jobtitle": "Student"}))
    second = api.update("105", SimplePublicObjectInput(properties={"jobtitle": "Student"}))
    assert before < first.properties["lastmodifieddate"] < second.properties["lastmodifieddate"]
    # the portal clock started at NOW (the fixture's anchor), so writes land just after it
    written = parse_time_ms(second.properties["lastmodifieddate"])
    assert 0 <= written - parse_time_ms(NOW.isoformat()) < 60_000
    sb.portal.advance(3600)  # let an hour pass on the portal clock
    third = api.update("105", SimplePublicObjectInput(properties={"jobtitle": "Student"}))
    assert parse_time_ms(third.properties["lastmodifieddate"]) - written >= 3_600_000


def test_batch_update_all_good_is_200_complete(sb: HubSpotSandbox) -> None:
    batch = sdk(sb).crm.contacts.batch_api
    result, status, headers = batch.update_with_http_info(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[
                SimplePublicObjectBatchInput(id="101", properties={"hs_lead_status": "OPEN"}),
                SimplePublicObjectBatchInput(id="102", properties={"jobtitle": "Designer"}),
            ]
        )
    )
    assert status == 200
    assert type(result).__name__ == "BatchResponseSimplePublicObject"
    assert result.status == "COMPLETE"
    assert [r.id for r in result.results] == ["101", "102"]
    assert set(result.results[0].properties) == {"hs_lead_status", *DEFAULTS3}
    assert result.started_at <= result.completed_at
    assert headers["X-HubSpot-RateLimit-Max"] == "100"
    assert sb.portal.contacts["101"].properties["hs_lead_status"] == "OPEN"
    assert sb.portal.contacts["102"].properties["jobtitle"] == "Designer"


def test_batch_update_207_applies_the_good_records_and_details_the_bad(
    sb: HubSpotSandbox,
) -> None:
    batch = sdk(sb).crm.contacts.batch_api
    before_102 = dict(sb.portal.contacts["102"].properties)
    result, status, _ = batch.update_with_http_info(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[
                SimplePublicObjectBatchInput(id="101", properties={"hs_lead_status": "OPEN"}),
                SimplePublicObjectBatchInput(id="102", properties={"lead_score_x": "5"}),
                SimplePublicObjectBatchInput(id="103", properties={"hs_lead_status": "MAYBE"}),
                SimplePublicObjectBatchInput(id="999", properties={"firstname": "Ghost"}),
                SimplePublicObjectBatchInput(id="111", properties={"firstname": "Gone"}),
                SimplePublicObjectBatchInput(id="110", properties={"hs_lead_status": "NEW"}),
            ]
        )
    )
    assert status == 207
    assert type(result).__name__ == "BatchResponseSimplePublicObjectWithErrors"
    assert result.status == "COMPLETE"
    assert [r.id for r in result.results] == ["101", "109"]  # 110 resolved to its survivor
    assert result.num_errors == 3
    bad_prop, bad_option, not_found = result.errors
    assert (bad_prop.status, bad_prop.category) == ("error", "PROPERTY_DOESNT_EXIST")
    assert bad_prop.context == {"ids": ["102"], "propertyName": ["lead_score_x"]}
    assert bad_prop.message.startswith("Property values were not valid: ")
    detail = json.loads(bad_prop.message.removeprefix("Property values were not valid: "))
    assert detail[0]["error"] == "PROPERTY_DOESNT_EXIST"
    assert detail[0]["name"] == "lead_score_x"
    assert (bad_option.category, bad_option.context["ids"]) == ("INVALID_OPTION", ["103"])
    assert not_found.category == "OBJECT_NOT_FOUND"
    assert not_found.context == {"ids": ["999", "111"]}
    # the good records are applied, the bad ones untouched
    assert sb.portal.contacts["101"].properties["hs_lead_status"] == "OPEN"
    assert sb.portal.contacts["109"].properties["hs_lead_status"] == "NEW"
    assert sb.portal.contacts["102"].properties == before_102
    assert "hs_lead_status" not in sb.portal.contacts["103"].properties

    raw = sb.requests[-1]
    assert (raw.method, raw.path, raw.status) == (
        "POST",
        "/crm/v3/objects/contacts/batch/update",
        207,
    )
    assert raw.body["inputs"][1] == {"id": "102", "properties": {"lead_score_x": "5"}}


def test_batch_update_207_raw_json_shape(sb: HubSpotSandbox) -> None:
    resp = http(
        sb,
        "POST",
        "/crm/v3/objects/contacts/batch/update",
        json={
            "inputs": [
                {"id": "101", "properties": {"jobtitle": "CMO"}},
                {"id": "5", "properties": {}},
            ]
        },
    )
    assert resp.status_code == 207
    body = resp.json()
    assert set(body) == {"status", "results", "numErrors", "errors", "startedAt", "completedAt"}
    assert body["numErrors"] == 1
    assert body["errors"] == [
        {
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "message": "Could not get some CONTACT objects, they may be deleted or not exist. "
            "Check that ids are valid.",
            "context": {"ids": ["5"]},
            "links": {},
            "errors": [],
        }
    ]
    assert body["results"][0]["properties"]["jobtitle"] == "CMO"
    assert body["startedAt"].endswith("Z") and len(body["startedAt"]) == 24


def test_batch_limits_and_malformed_batches_are_400(sb: HubSpotSandbox) -> None:
    batch = sdk(sb).crm.contacts.batch_api
    too_many = [SimplePublicObjectBatchInput(id=str(i), properties={}) for i in range(101)]
    with pytest.raises(ApiException) as info:
        batch.update(BatchInputSimplePublicObjectBatchInput(inputs=too_many))
    assert info.value.status == 400
    assert body_of(info.value)["category"] == "VALIDATION_ERROR"
    assert "at most 100" in body_of(info.value)["message"]
    with pytest.raises(ApiException) as info:
        batch.read(
            BatchReadInputSimplePublicObjectId(
                inputs=[SimplePublicObjectId(id=str(i)) for i in range(101)],
                properties=[],
                properties_with_history=[],
            )
        )
    assert info.value.status == 400
    dup = [SimplePublicObjectBatchInput(id="101", properties={}) for _ in range(2)]
    with pytest.raises(ApiException) as info:
        batch.update(BatchInputSimplePublicObjectBatchInput(inputs=dup))
    assert body_of(info.value)["message"] == "Duplicate IDs found in batch input: ['101']"
    payloads: list[dict[str, Any]] = [
        {"inputs": {"id": "101"}},
        {"inputs": [{"id": "101", "properties": ["jobtitle"]}]},
        {"inputs": [{"properties": {}}]},
        {"inputs": [{"id": "101", "properties": {"jobtitle": {"nested": 1}}}]},
    ]
    for payload in payloads:
        resp = http(sb, "POST", "/crm/v3/objects/contacts/batch/update", json=payload)
        assert resp.status_code == 400, payload
        assert resp.json()["category"] == "VALIDATION_ERROR"
    assert sb.portal.contacts["101"].properties["jobtitle"] == "VP Marketing"


def test_single_patch_with_bad_property_or_option_is_400_validation_error(
    sb: HubSpotSandbox,
) -> None:
    api = sdk(sb).crm.contacts.basic_api
    with pytest.raises(ApiException) as info:
        api.update("101", SimplePublicObjectInput(properties={"lead_score": "50", "jobtitle": "X"}))
    assert info.value.status == 400
    body = body_of(info.value)
    assert (body["status"], body["category"]) == ("error", "VALIDATION_ERROR")
    assert set(body) == {"status", "message", "correlationId", "category"}
    detail = json.loads(body["message"].removeprefix("Property values were not valid: "))
    assert detail == [
        {
            "isValid": False,
            "message": 'Property "lead_score" does not exist',
            "error": "PROPERTY_DOESNT_EXIST",
            "name": "lead_score",
            "localizedErrorMessage": 'Property "lead_score" does not exist',
            "portalId": 4242,
        }
    ]
    assert sb.portal.contacts["101"].properties["jobtitle"] == "VP Marketing"  # nothing applied

    with pytest.raises(ApiException) as info:
        api.update("101", SimplePublicObjectInput(properties={"hs_lead_status": "HOT"}))
    assert '\\"error\\":\\"INVALID_OPTION\\"' in info.value.body
    with pytest.raises(ApiException) as info:
        api.update("101", SimplePublicObjectInput(properties={"hs_object_id": "7"}))
    assert "READ_ONLY_VALUE" in body_of(info.value)["message"]
    with pytest.raises(ApiException) as info:
        api.update("101", SimplePublicObjectInput(properties={"num_associated_deals": "2"}))
    assert info.value.status == 400


def test_lifecyclestage_moves_forward_only_unless_cleared_first(sb: HubSpotSandbox) -> None:
    api = sdk(sb).crm.contacts.basic_api
    assert sb.portal.contacts["108"].properties["lifecyclestage"] == "salesqualifiedlead"
    with pytest.raises(ApiException) as info:
        api.update("108", SimplePublicObjectInput(properties={"lifecyclestage": "lead"}))
    assert info.value.status == 400
    detail = json.loads(body_of(info.value)["message"].split(": ", 1)[1])
    assert detail[0]["error"] == "LIFECYCLE_STAGE_BACKWARD"
    assert sb.portal.contacts["108"].properties["lifecyclestage"] == "salesqualifiedlead"

    api.update("108", SimplePublicObjectInput(properties={"lifecyclestage": ""}))
    back = api.update("108", SimplePublicObjectInput(properties={"lifecyclestage": "lead"}))
    assert back.properties["lifecyclestage"] == "lead"

    mql = api.update(
        "101", SimplePublicObjectInput(properties={"lifecyclestage": "marketingqualifiedlead"})
    )
    assert mql.properties["lifecyclestage"] == "marketingqualifiedlead"
    stamped = sb.portal.contacts["101"].properties["hs_lifecyclestage_marketingqualifiedlead_date"]
    assert stamped == mql.properties["lastmodifieddate"]

    result = sdk(sb).crm.contacts.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[
                SimplePublicObjectBatchInput(id="101", properties={"lifecyclestage": "subscriber"}),
                SimplePublicObjectBatchInput(
                    id="102", properties={"lifecyclestage": "marketingqualifiedlead"}
                ),
            ]
        )
    )
    assert [r.id for r in result.results] == ["102"]
    assert result.errors[0].category == "VALIDATION_ERROR"
    assert result.errors[0].context == {"ids": ["101"], "propertyName": ["lifecyclestage"]}
    assert LIFECYCLE_STAGES[-1] == "other"


# ---------------------------------------------------------------------------------------------
# properties and groups
# ---------------------------------------------------------------------------------------------


def test_properties_and_groups_create_idempotently_with_409_on_duplicates(
    sb: HubSpotSandbox,
) -> None:
    props = sdk(sb).crm.properties
    all_props = {p.name: p for p in props.core_api.get_all("contacts").results}
    for name in (
        "email",
        "jobtitle",
        "hs_analytics_num_page_views",
        "hs_email_optout",
        "num_associated_deals",
        "engagements_last_meeting_booked",
        "hs_merged_object_ids",
        "lead_source_detail",
    ):
        assert name in all_props
    assert [o.value for o in all_props["lifecyclestage"].options] == list(LIFECYCLE_STAGES)
    status = props.core_api.get_by_name("contacts", "hs_lead_status")
    assert [o.value for o in status.options] == [
        "NEW",
        "OPEN",
        "IN_PROGRESS",
        "OPEN_DEAL",
        "UNQUALIFIED",
        "ATTEMPTED_TO_CONTACT",
        "CONNECTED",
        "BAD_TIMING",
    ]

    group = props.groups_api.create(
        "contacts", PropertyGroupCreate(name="lead_scoring", label="Lead scoring")
    )
    assert (group.name, group.label) == ("lead_scoring", "Lead scoring")
    with pytest.raises(PropertiesApiException) as info:
        props.groups_api.create("contacts", PropertyGroupCreate(name="lead_scoring", label="Again"))
    assert info.value.status == 409
    assert body_of(info.value)["category"] == "OBJECT_ALREADY_EXISTS"
    assert {"status", "message", "correlationId", "category"} <= set(body_of(info.value))

    spec = PropertyCreate(
        name="lead_score",
        label="Lead score",
        type="number",
        field_type="number",
        group_name="lead_scoring",
    )
    created = props.core_api.create("contacts", spec)
    assert (created.name, created.type, created.group_name) == (
        "lead_score",
        "number",
        "lead_scoring",
    )
    with pytest.raises(PropertiesApiException) as info:
        props.core_api.create("contacts", spec)
    assert info.value.status == 409
    assert body_of(info.value)["message"] == "Property named 'lead_score' already exists."
    grade = PropertyCreate(
        name="lead_grade",
        label="Grade",
        type="enumeration",
        field_type="select",
        group_name="lead_scoring",
        options=[{"label": g, "value": g} for g in "ABCD"],
    )
    props.core_api.create("contacts", grade)

    api = sdk(sb).crm.contacts.basic_api
    written = api.update(
        "101", SimplePublicObjectInput(properties={"lead_score": 85, "lead_grade": "A"})
    )
    assert (written.properties["lead_score"], written.properties["lead_grade"]) == ("85", "A")
    with pytest.raises(ApiException) as bad:
        api.update("101", SimplePublicObjectInput(properties={"lead_grade": "E"}))
    assert "INVALID_OPTION" in body_of(bad.value)["message"]

    with pytest.raises(PropertiesApiException) as missing:
        props.core_api.get_by_name("contacts", "nope")
    assert missing.value.status == 404
    for payload in (
        {
            "name": "Bad Name",
            "label": "x",
            "type": "string",
            "fieldType": "text",
            "groupName": "lead_scoring",
        },
        {
            "name": "x1",
            "label": "x",
            "type": "money",
            "fieldType": "text",
            "groupName": "lead_scoring",
        },
        {"name": "x2", "label": "x", "type": "string", "fieldType": "text", "groupName": "nope"},
        {
            "name": "x3",
            "label": "x",
            "type": "enumeration",
            "fieldType": "select",
            "groupName": "lead_scoring",
        },
        {"label": "no name"},
    ):
        resp = http(sb, "POST", "/crm/v3/properties/contacts", json=payload)
        assert resp.status_code == 400, payload
        assert resp.json()["category"] == "VALIDATION_ERROR"


# ---------------------------------------------------------------------------------------------
# search
# ---------------------------------------------------------------------------------------------


def test_search_filters_every_operator(sb: HubSpotSandbox) -> None:
    def ids(*filters: Filter, **kw: Any) -> list[str]:
        res = search(sb, filter_groups=[FilterGroup(filters=list(filters))], limit=200, **kw)
        assert res.total == len(res.results)
        return [c.id for c in res.results]

    assert ids(f("email", "EQ", "DANA.whitfield@acme-analytics.com")) == ["101"]

    def props(c: ContactRecord) -> dict[str, str]:
        return c.properties

    assert ids(f("lifecyclestage", "NEQ", "lead")) == expect_ids(
        sb, lambda c: props(c).get("lifecyclestage") != "lead"
    )
    # hs_object_id compares numerically: "99" < "101"
    assert ids(f("hs_object_id", "GT", "99"))[:2] == ["101", "102"]
    assert ids(f("hs_object_id", "GTE", "150")) == ["150", "151", "152", "153", "154", "155", "156"]
    assert ids(f("hs_object_id", "LT", "103")) == ["101", "102"]
    assert ids(f("hs_object_id", "LTE", "103")) == ["101", "102", "103"]
    assert ids(f("hs_object_id", "BETWEEN", "108", high_value="112")) == ["108", "109", "112"]
    assert ids(f("hs_object_id", "IN", values=["112", "101", "110"])) == ["101", "112"]
    assert ids(
        f("lifecyclestage", "IN", values=["salesqualifiedlead", "SUBSCRIBER"])
    ) == expect_ids(
        sb, lambda c: props(c).get("lifecyclestage") in ("salesqualifiedlead", "subscriber")
    )
    assert ids(f("lifecyclestage", "NOT_IN", values=["lead"])) == ids(
        f("lifecyclestage", "NEQ", "lead")
    )
    assert ids(f("hs_lead_status", "HAS_PROPERTY")) == ["108"]
    assert ids(f("country", "NOT_HAS_PROPERTY")) == expect_ids(
        sb, lambda c: not props(c).get("country")
    )
    assert ids(f("hs_analytics_num_page_views", "GT", "30")) == expect_ids(
        sb, lambda c: int(props(c)["hs_analytics_num_page_views"]) > 30
    )
    assert "101" in ids(f("hs_analytics_num_page_views", "GT", "30"))
    assert ids(f("email", "CONTAINS_TOKEN", "*@acme-analytics.com"))[:2] == ["101", "112"]
    # two groups are ORed
    res = search(
        sb,
        filter_groups=[
            FilterGroup(filters=[f("email", "EQ", "riley.chen1987@gmail.com")]),
            FilterGroup(filters=[f("hs_object_id", "EQ", "108")]),
        ],
    )
    assert [c.id for c in res.results] == ["102", "108"]


def test_search_datetimes_accept_epoch_ms_and_iso_and_sort_both_forms(sb: HubSpotSandbox) -> None:
    cutoff = NOW - timedelta(days=3)
    as_ms = str(int(cutoff.timestamp() * 1000))
    as_iso = cutoff.isoformat().replace("+00:00", "Z")
    expected = expect_ids(sb, lambda c: c.updated_ms >= int(as_ms))
    assert 0 < len(expected) < len(LIVE_IDS)
    for value in (as_ms, as_iso):
        res = search(
            sb,
            filter_groups=[FilterGroup(filters=[f("lastmodifieddate", "GTE", value)])],
            limit=200,
        )
        assert [c.id for c in res.results] == expected
    by_dict = search(
        sb, sorts=[{"propertyName": "lastmodifieddate", "direction": "DESCENDING"}], limit=5
    )
    by_text = search(sb, sorts=["-lastmodifieddate"], limit=5)
    newest = sorted(sb.portal.live_contacts(), key=lambda c: -c.updated_ms)[:5]
    assert [c.id for c in by_dict.results] == [c.id for c in newest]
    assert [c.id for c in by_text.results] == [c.id for c in newest]
    first = by_dict.results[0]
    assert set(first.properties) == {
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    }
    assert first.properties["lastmodifieddate"].endswith("Z")
    assert first.updated_at == datetime.fromisoformat(first.properties["lastmodifieddate"])


def test_search_response_shape_paging_and_no_rate_limit_headers(sb: HubSpotSandbox) -> None:
    resp = http(
        sb,
        "POST",
        "/crm/v3/objects/contacts/search",
        json={"filterGroups": [], "properties": ["jobtitle"], "limit": 3, "after": "3"},
    )
    assert resp.status_code == 200
    assert not [h for h in resp.headers if h.lower().startswith("x-hubspot-ratelimit")]
    body = resp.json()
    assert body["total"] == len(LIVE_IDS)
    assert body["paging"] == {"next": {"after": "6"}}
    assert [r["id"] for r in body["results"]] == LIVE_IDS[3:6]
    assert set(body["results"][0]) == {"id", "properties", "createdAt", "updatedAt", "archived"}
    assert set(body["results"][0]["properties"]) == {"jobtitle", *DEFAULTS3}
    last = http(sb, "POST", "/crm/v3/objects/contacts/search", json={"limit": 200}).json()
    assert "paging" not in last and last["total"] == len(LIVE_IDS)
    assert "110" not in [r["id"] for r in last["results"]]
    assert "111" not in [r["id"] for r in last["results"]]


def test_search_validation_errors_are_400(sb: HubSpotSandbox) -> None:
    def post(payload: dict[str, Any]) -> requests.Response:
        return http(sb, "POST", "/crm/v3/objects/contacts/search", json=payload)

    eq = {"propertyName": "email", "operator": "EQ", "value": "x"}
    cases: dict[str, dict[str, Any]] = {
        "limit": {"limit": 201},
        "string limit": {"limit": "10"},
        "groups": {"filterGroups": [{"filters": [eq]}] * 6},
        "per group": {"filterGroups": [{"filters": [eq] * 7}]},
        "in all": {"filterGroups": [{"filters": [eq] * 6}] * 3 + [{"filters": [eq]}]},
        "operator": {"filterGroups": [{"filters": [{**eq, "operator": "LIKE"}]}]},
        "property": {"filterGroups": [{"filters": [{**eq, "propertyName": "nope"}]}]},
        "number": {
            "filterGroups": [
                {"filters": [{"propertyName": "hs_object_id", "operator": "GT", "value": "abc"}]}
            ]
        },
        "date": {
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": "lastmodifieddate", "operator": "GT", "value": "yesterday"}
                    ]
                }
            ]
        },
        "between": {
            "filterGroups": [
                {"filters": [{"propertyName": "hs_object_id", "operator": "BETWEEN", "value": "1"}]}
            ]
        },
        "two sorts": {"sorts": ["email", "firstname"]},
        "sort dir": {"sorts": [{"propertyName": "email", "direction": "UP"}]},
        "after": {"after": "abc"},
        "cap": {"after": "9950", "limit": 100},
    }
    for name, payload in cases.items():
        resp = post(payload)
        assert resp.status_code == 400, name
        assert resp.json()["status"] == "error", name
        assert resp.json()["category"] == "VALIDATION_ERROR", name
    assert post({"after": "9800", "limit": 200}).status_code == 200
    assert (
        post({"after": "9801", "limit": 200})
        .json()["message"]
        .startswith("Search cannot page past 10000 results")
    )


# ---------------------------------------------------------------------------------------------
# merge
# ---------------------------------------------------------------------------------------------


def test_merge_endpoint_moves_events_and_hides_the_absorbed_contact(sb: HubSpotSandbox) -> None:
    client = sdk(sb)
    views_101 = int(sb.portal.contacts["101"].properties["hs_analytics_num_page_views"])
    views_112 = int(sb.portal.contacts["112"].properties["hs_analytics_num_page_views"])
    before = sb.portal.contacts["101"].properties["lastmodifieddate"]
    merged = client.crm.contacts.basic_api.merge(
        PublicMergeInput(primary_object_id="101", object_id_to_merge="112")
    )
    assert merged.id == "101"
    assert merged.properties["hs_merged_object_ids"] == "112"
    assert merged.properties["lastmodifieddate"] > before
    survivor = client.crm.contacts.basic_api.get_by_id(
        "112", properties=["hs_analytics_num_page_views", "num_conversion_events"]
    )
    assert survivor.id == "101"
    assert survivor.properties["hs_analytics_num_page_views"] == str(views_101 + views_112)
    assert survivor.properties["num_conversion_events"] == "1"
    events = client.events.events_api.get_page(object_type="contact", object_id="101", limit=1000)
    assert {e.object_id for e in events.results} == {"101"}
    assert (
        len([e for e in events.results if e.event_type == "e_visited_page"])
        == views_101 + views_112
    )
    found = search(
        sb, filter_groups=[FilterGroup(filters=[f("email", "EQ", "robin.hale@acme-analytics.com")])]
    )
    assert found.total == 0
    with pytest.raises(ApiException) as info:
        client.crm.contacts.basic_api.merge(
            PublicMergeInput(primary_object_id="101", object_id_to_merge="112")
        )
    assert info.value.status == 400
    with pytest.raises(NotFoundException):
        client.crm.contacts.basic_api.merge(
            PublicMergeInput(primary_object_id="101", object_id_to_merge="111")
        )
    # chains: merging 101 into 109 makes 112 resolve to 109 as well
    client.crm.contacts.basic_api.merge(
        PublicMergeInput(primary_object_id="109", object_id_to_merge="101")
    )
    chained = client.crm.contacts.basic_api.get_by_id("112", properties=["hs_merged_object_ids"])
    assert (chained.id, chained.properties["hs_merged_object_ids"]) == ("109", "110;101;112")


# ---------------------------------------------------------------------------------------------
# engagement
# ---------------------------------------------------------------------------------------------


def test_events_api_pages_every_contact_with_one_stream(sb: HubSpotSandbox) -> None:
    api = sdk(sb).events.events_api
    since = NOW - timedelta(days=7)
    got: list[Any] = []
    after = None
    for _ in range(50):
        page = api.get_page(
            object_type="contact",
            event_type="e_visited_page",
            occurred_after=since,
            limit=100,
            sort=["ASCENDING"],
            after=after,
        )
        got += page.results
        if page.paging is None:
            break
        after = page.paging.next.after
        assert page.paging.next.link.startswith(f"{sb.url}/events/v3/events/?")
    since_ms = int(since.timestamp() * 1000)
    expected = [
        e
        for e in sb.portal.events_by_type["e_visited_page"]
        if e.occurred_ms > since_ms and sb.portal.contacts[e.object_id].live
    ]
    assert [e.id for e in got] == [e.id for e in expected]
    assert len(sb.requests) == -(-len(expected) // 100)
    first = got[0]
    assert first.object_type == "CONTACT"
    assert first.event_type == "e_visited_page"
    assert set(first.properties) == {"hs_url", "hs_referrer", "hs_page_title"}
    assert sb.requests[0].path == "/events/v3/events/"
    assert sb.requests[0].query["occurredAfter"] == [since.isoformat()]


def test_events_api_filters_and_errors(sb: HubSpotSandbox) -> None:
    api = sdk(sb).events.events_api
    webinar = api.get_page(
        object_type="contact", object_id="101", event_type="pe4242_webinar_attended"
    )
    assert [(e.object_id, e.properties) for e in webinar.results] == [
        (
            "101",
            {
                "webinar_name": "Scoring that sales trusts",
                "minutes_watched": "58",
                "webinar_minutes": "60",
            },
        )
    ]
    # 110's events were re-attributed to 109 at load; asking for 110 answers with 109's stream
    assert {e.object_id for e in api.get_page(object_type="contact", object_id="110").results} == {
        "109"
    }
    casey = api.get_page(
        object_type="contact", object_id="107", occurred_before=NOW - timedelta(days=93)
    ).results
    assert sorted(e.event_type for e in casey) == ["e_visited_page", "pe4242_webinar_attended"]
    newest_first = api.get_page(object_type="contact", object_id="101", limit=5).results
    assert [e.occurred_at for e in newest_first] == sorted(
        (e.occurred_at for e in newest_first), reverse=True
    )
    no_slash = http(sb, "GET", "/events/v3/events?objectType=contact&objectId=102&limit=2")
    assert no_slash.status_code == 200
    assert len(no_slash.json()["results"]) == 2
    assert http(sb, "GET", "/events/v3/events/").status_code == 200  # no parameter required
    archived = http(sb, "GET", "/events/v3/events/?objectType=contact&objectId=111").json()
    assert archived == {"results": []}
    for query in (
        "objectId=101",
        "objectType=contact&objectId=abc",
        "occurredAfter=soon",
        "sort=SIDEWAYS",
        "after=garbage",
        "limit=0",
    ):
        resp = http(sb, "GET", f"/events/v3/events/?{query}")
        assert resp.status_code == 400, query
        assert resp.json()["category"] == "VALIDATION_ERROR"
    assert "pe4242_webinar_registered" in api.get_types().event_types


def test_add_event_recomputes_rollups_and_bumps_lastmodifieddate(sb: HubSpotSandbox) -> None:
    rec = sb.portal.contacts["102"]
    before = dict(rec.properties)
    ev = sb.add_event(
        "102",
        "e_visited_page",
        {
            "hs_url": "https://www.leadscore-demo.com/pricing",
            "hs_referrer": "",
            "hs_page_title": "Pricing",
        },
    )
    assert rec.properties["hs_analytics_num_page_views"] == str(
        int(before["hs_analytics_num_page_views"]) + 1
    )
    assert rec.properties["hs_analytics_last_visit_timestamp"] == iso_ms(ev.occurred_ms)
    assert rec.properties["lastmodifieddate"] > before["lastmodifieddate"]
    sb.submit_form("102", "Start a free trial", page_url="https://www.leadscore-demo.com/signup")
    assert rec.properties["num_conversion_events"] == "2"
    assert rec.properties["recent_conversion_event_name"] == "Start a free trial"
    assert rec.properties["first_conversion_event_name"] == "Request a demo"
    stamp = rec.properties["lastmodifieddate"]
    sb.add_event("102", "pe4242_webinar_registered", {"webinar_name": "X"})  # no roll-up: no bump
    assert rec.properties["lastmodifieddate"] == stamp
    sb.add_email_event("102", "UNSUBSCRIBED")
    assert rec.properties["hs_email_optout"] == "true"
    changed = search(
        sb,
        filter_groups=[
            FilterGroup(
                filters=[
                    f("lastmodifieddate", "GTE", before["lastmodifieddate"]),
                    f("hs_object_id", "EQ", "102"),
                ]
            )
        ],
    )
    assert [c.id for c in changed.results] == ["102"]


def test_set_property_acts_like_a_rep_and_keeps_history(sb: HubSpotSandbox) -> None:
    before = sb.portal.contacts["101"].properties["lastmodifieddate"]
    sb.set_property("101", "hs_lead_status", "IN_PROGRESS")
    sb.set_property("101", "engagements_last_meeting_booked", NOW.isoformat())
    rec = sb.portal.contacts["101"]
    assert rec.properties["lastmodifieddate"] > before
    assert rec.properties["engagements_last_meeting_booked"] == "2026-11-01T12:00:00.000Z"
    got = sdk(sb).crm.contacts.basic_api.get_by_id(
        "101", properties_with_history=["hs_lead_status"]
    )
    history = got.properties_with_history["hs_lead_status"]
    assert [(h.value, h.source_type) for h in history] == [("IN_PROGRESS", "CRM_UI")]
    with pytest.raises(ValueError, match="does not exist"):
        sb.set_property("101", "nope", "1")


def test_marketing_email_events_v1_paging_and_filters(sb: HubSpotSandbox) -> None:
    path = "/email/public/v1/events?recipient=alex.moreno.mktg@gmail.com&limit=2"
    seen: list[dict[str, Any]] = []
    offset = ""
    for _ in range(10):
        body = http(sb, "GET", path + (f"&offset={offset}" if offset else "")).json()
        seen += body["events"]
        if not body["hasMore"]:
            break
        offset = body["offset"]
    assert [e["type"] for e in seen].count("OPEN") == 3
    assert [e["type"] for e in seen].count("CLICK") == 2
    assert len(seen) == 5 and len(sb.requests) == 3
    assert [e["created"] for e in seen] == sorted((e["created"] for e in seen), reverse=True)
    click = next(e for e in seen if e["type"] == "CLICK")
    assert {"id", "type", "recipient", "created", "emailCampaignId", "url"} <= set(click)
    assert click["url"] == "https://www.leadscore-demo.com/product/explain"
    clicks = http(
        sb, "GET", "/email/public/v1/events?eventType=CLICK&recipient=alex.moreno.mktg@gmail.com"
    ).json()
    assert [e["type"] for e in clicks["events"]] == ["CLICK", "CLICK"]
    start = min(e["created"] for e in seen if e["type"] == "CLICK")
    recent = http(
        sb,
        "GET",
        f"/email/public/v1/events?recipient=alex.moreno.mktg@gmail.com&startTimestamp={start}",
    ).json()
    assert all(e["created"] >= start for e in recent["events"]) and len(recent["events"]) == 4
    until = http(sb, "GET", f"{path}&limit=100&endTimestamp={start}").json()["events"]
    assert until and all(e["created"] <= start for e in until)
    assert until[0]["created"] == start and until[0]["type"] == "CLICK"
    assert http(sb, "GET", "/email/public/v1/events?eventType=NOPE").status_code == 400


def test_forms_list_and_submissions(sb: HubSpotSandbox) -> None:
    forms = sdk(sb).marketing.forms.forms_api.get_page()
    assert [x.name for x in forms.results] == [
        "Contact Us",
        "Request a demo",
        "Download the scoring guide",
        "Newsletter signup",
        "Start a free trial",
    ]
    demo = next(x for x in forms.results if x.name == "Request a demo")
    assert demo.id == form_id("Request a demo")
    body = http(sb, "GET", f"/form-integrations/v1/submissions/forms/{demo.id}").json()
    assert len(body["results"]) == 1
    sub = body["results"][0]
    assert {"name": "email", "value": "riley.chen1987@gmail.com", "objectTypeId": "0-1"} in sub[
        "values"
    ]
    assert sub["pageUrl"] == "https://www.leadscore-demo.com/demo"
    assert isinstance(sub["submittedAt"], int)
    news = form_id("Newsletter signup")
    first = http(sb, "GET", f"/form-integrations/v1/submissions/forms/{news}?limit=1").json()
    assert len(first["results"]) == 1 and "after" in first["paging"]["next"]
    second = http(
        sb,
        "GET",
        f"/form-integrations/v1/submissions/forms/{news}?limit=1&after={first['paging']['next']['after']}",
    ).json()
    assert second["results"][0]["submittedAt"] <= first["results"][0]["submittedAt"]
    missing = http(sb, "GET", "/form-integrations/v1/submissions/forms/not-a-form")
    assert missing.status_code == 404 and missing.json()["category"] == "OBJECT_NOT_FOUND"


# ---------------------------------------------------------------------------------------------
# bad requests, concurrency, lifecycle
# ---------------------------------------------------------------------------------------------


def test_bad_requests_get_hubspot_shaped_errors_never_500(sb: HubSpotSandbox) -> None:
    cases: list[tuple[str, str, dict[str, Any], int]] = [
        ("PATCH", "/crm/v3/objects/contacts/101", {"data": b"{not json"}, 400),
        ("PATCH", "/crm/v3/objects/contacts/101", {"data": b"\xff\xfe"}, 400),
        ("PATCH", "/crm/v3/objects/contacts/101", {"json": ["properties"]}, 400),
        ("PATCH", "/crm/v3/objects/contacts/101", {"json": {"properties": "x"}}, 400),
        ("POST", "/crm/v3/objects/contacts", {}, 400),
        ("POST", "/crm/v3/objects/contacts/merge", {"json": {"primaryObjectId": "101"}}, 400),
        (
            "POST",
            "/crm/v3/objects/contacts/merge",
            {"json": {"primaryObjectId": True, "objectIdToMerge": "2"}},
            400,
        ),
        ("GET", "/crm/v3/objects/contacts?limit=lots", {}, 400),
        ("GET", "/crm/v3/objects/contacts?after=x", {}, 400),
        ("GET", "/crm/v3/objects/contacts/abc", {}, 404),
        ("GET", "/crm/v3/objects/contacts/101?idProperty=firstname", {}, 400),
        ("GET", "/crm/v3/objects/widgets", {}, 404),
        ("GET", "/nothing/here", {}, 404),
        ("PUT", "/crm/v3/objects/contacts/101", {"json": {}}, 405),
        ("DELETE", "/crm/v3/properties/contacts/email", {}, 400),
        ("GET", "/crm/v3/properties/contacts/groups/nope", {}, 404),
    ]
    for method, path, kwargs, status in cases:
        resp = http(sb, method, path, **kwargs)
        assert resp.status_code == status, (method, path, kwargs)
        body = resp.json()
        assert body["status"] == "error" and body["message"] and body["correlationId"], path
        assert resp.headers["X-HubSpot-Correlation-Id"] == body["correlationId"]
    assert sb.requests[0].body == "{not json"
    assert [r.status for r in sb.requests] == [c[3] for c in cases]
    assert sb.internal_errors == []


def test_malformed_http_gets_a_json_400_not_a_hang(sb: HubSpotSandbox) -> None:
    raw_requests = [
        b"POST /crm/v3/objects/contacts HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n",
    ]
    for raw, status in zip(raw_requests, (b"400", b"414"), strict=True):
        with socket.create_connection(("127.0.0.1", sb.port), timeout=5) as conn:
            conn.sendall(raw)
            reply = b""
            while chunk := conn.recv(4096):
                reply += chunk
        head, _, payload = reply.partition(b"\r\n\r\n")
        assert head.split(b" ")[1] == status
        assert json.loads(payload)["category"] == "VALIDATION_ERROR"


def test_request_log_is_thread_safe_under_concurrent_clients(sb: HubSpotSandbox) -> None:
    errors: list[BaseException] = []

    def worker(cid: str) -> None:
        try:
            for _ in range(5):
                assert http(sb, "GET", f"/crm/v3/objects/contacts/{cid}").status_code == 200
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(cid,)) for cid in LIVE_IDS[:8]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == []
    log = sb.requests
    assert len(log) == 40 and {r.status for r in log} == {200}
    assert sorted({r.path for r in log}) == sorted(
        f"/crm/v3/objects/contacts/{c}" for c in LIVE_IDS[:8]
    )


def test_stop_is_idempotent_and_closes_the_port() -> None:
    sandbox = HubSpotSandbox.start(token=TOKEN)
    url = sandbox.url
    assert http(sandbox, "GET", "/crm/v3/objects/contacts").json() == {"results": []}
    sandbox.stop()
    sandbox.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/crm/v3/objects/contacts", timeout=2)
