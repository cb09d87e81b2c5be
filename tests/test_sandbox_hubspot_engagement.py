"""The HubSpot sandbox's public routes that create engagement: forms submission v3 (plain HTTP,
as a web page posts it) and custom behavioural events (the official SDK's events.send). What
they create is read back the way the product reads engagement: the events API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from hubspot import HubSpot
from hubspot.events.send import (
    BatchedBehavioralEventHttpCompletionRequest,
    BehavioralEventHttpCompletionRequest,
)
from hubspot.events.send.exceptions import ApiException

from connector.sandbox.base import parse_time_ms
from connector.sandbox.demo_portal import form_id
from connector.sandbox.hubspot import HubSpotSandbox

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "hubspot_demo_portal.json"
DEMO: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
TOKEN = "test-token"
GUIDE = form_id("Download the scoring guide")
SUBMIT = f"/submissions/v3/integration/submit/4242/{GUIDE}"


@pytest.fixture
def sb() -> Iterator[HubSpotSandbox]:
    with HubSpotSandbox.start(DEMO, token=TOKEN, now=NOW, search_rate_limit=10_000) as sandbox:
        yield sandbox
        assert sandbox.internal_errors == []


def sdk(sb: HubSpotSandbox) -> HubSpot:
    return HubSpot(access_token=TOKEN, host=sb.url)


def post(sb: HubSpotSandbox, path: str, body: Any, token: str | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(sb.url + path, json=body, headers=headers, timeout=10)


def fields(**values: str) -> list[dict[str, str]]:
    return [{"objectTypeId": "0-1", "name": k, "value": v} for k, v in values.items()]


def errors_of(r: requests.Response) -> tuple[int, list[dict[str, str]]]:
    body = r.json()
    assert body["status"] == "error" and body["message"] == "The request is not valid"
    return r.status_code, body["errors"]


def test_public_submission_creates_the_contact_and_a_form_event(sb: HubSpotSandbox) -> None:
    submitted = parse_time_ms("2026-11-01T11:30:00Z")
    r = post(
        sb,
        SUBMIT,
        {
            "fields": fields(email="kim.ng@hooli.io", firstname="Kim", company="Hooli"),
            "submittedAt": str(submitted),
            "context": {
                "pageUri": "https://www.leadscore-demo.com/resources/scoring-guide",
                "hutk": "0123456789abcdef0123456789abcdef",
            },
        },
    )
    assert (r.status_code, r.json()) == (200, {"inlineMessage": "Thanks for submitting the form."})
    assert (sb.requests[-1].method, sb.requests[-1].path, sb.requests[-1].status) == (
        "POST",
        SUBMIT,
        200,
    )  # no token sent: the public route needs none
    kim = sb.portal.by_email("kim.ng@hooli.io")
    assert kim is not None and kim.id == "157"
    assert (kim.properties["firstname"], kim.properties["company"]) == ("Kim", "Hooli")
    assert kim.properties["num_conversion_events"] == "1"
    assert kim.properties["recent_conversion_event_name"] == "Download the scoring guide"
    page = sdk(sb).events.events_api.get_page(
        object_type="contact", object_id="157", event_type="e_submitted_form"
    )
    (ev,) = page.results
    assert ev.properties == {
        "hs_form_id": GUIDE,
        "hs_form_title": "Download the scoring guide",
        "hs_url": "https://www.leadscore-demo.com/resources/scoring-guide",
    }
    assert int(ev.occurred_at.timestamp() * 1000) == submitted
    subs = requests.get(
        f"{sb.url}/form-integrations/v1/submissions/forms/{GUIDE}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    ).json()["results"]
    assert subs[0]["conversionId"] == ev.id and subs[0]["submittedAt"] == submitted


def test_secure_submission_needs_the_token_and_reuses_the_contact(sb: HubSpotSandbox) -> None:
    path = f"/submissions/v3/integration/secure/submit/4242/{GUIDE}"
    body = {"fields": fields(email="Riley.Chen1987@gmail.com", lastname="Chen-Ortiz")}
    assert post(sb, path, body).status_code == 401
    before = sb.contact("102").properties["lastmodifieddate"]
    r = post(sb, path, body, token=TOKEN)
    assert r.status_code == 200
    riley = sb.contact("102").properties
    assert riley["lastname"] == "Chen-Ortiz"
    assert riley["num_conversion_events"] == "2"
    assert parse_time_ms(riley["lastmodifieddate"]) > parse_time_ms(before)
    assert [(q.method, q.path, q.status) for q in sb.requests] == [
        ("POST", path, 401),
        ("POST", path, 200),
    ]


def test_submission_errors(sb: HubSpotSandbox) -> None:
    bad_field = post(sb, SUBMIT, {"fields": fields(email="a@b.co", jobtitle="CMO")})
    assert errors_of(bad_field) == (
        400,
        [
            {
                "message": "Error in 'fields.jobtitle'. Field 'jobtitle' is not in the form "
                "definition.",
                "errorType": "FIELD_NOT_IN_FORM_DEFINITION",
            }
        ],
    )
    assert sb.portal.by_email("a@b.co") is None  # the whole submission was rejected
    assert errors_of(post(sb, SUBMIT, {"fields": fields(firstname="X")}))[1][0]["errorType"] == (
        "REQUIRED_FIELD"
    )
    assert errors_of(post(sb, SUBMIT, {"fields": fields(email="nope")}))[1] == [
        {"message": "Error in 'fields.email'. Invalid email address", "errorType": "INVALID_EMAIL"}
    ]
    context = {"hutk": "xyz", "pageUri": "not a url"}
    assert [
        e["errorType"]
        for e in errors_of(
            post(sb, SUBMIT, {"fields": fields(email="a@b.co"), "context": context})
        )[1]
    ] == ["INVALID_HUTK", "INVALID_PAGE_URI"]
    many = {"fields": [{"name": "email", "value": "a@b.co"}] * 1001}
    assert errors_of(post(sb, SUBMIT, many))[1][0]["errorType"] == (
        "MAX_NUMBER_OF_SUBMITTED_VALUES_EXCEEDED"
    )
    unknown = post(sb, "/submissions/v3/integration/submit/4242/no-such-form", {"fields": []})
    assert errors_of(unknown) == (
        404,
        [{"message": "Form no-such-form not found", "errorType": "FORM_NOT_FOUND"}],
    )
    assert (
        errors_of(post(sb, f"/submissions/v3/integration/submit/1/{GUIDE}", {"fields": []}))[0]
        == 404
    )
    assert [q.status for q in sb.requests] == [400, 400, 400, 400, 400, 404, 404]


def test_custom_event_send_and_uuid_dedup(sb: HubSpotSandbox) -> None:
    client = sdk(sb)
    before = sb.contact("101").properties["lastmodifieddate"]
    sent = client.events.send.basic_api.send(
        BehavioralEventHttpCompletionRequest(
            event_name="pe4242_pricing_calculator_used",
            email="dana.whitfield@acme-analytics.com",
            properties={"seats": "25", "plan": "growth"},
            uuid="5f2a0c5e-0000-4000-8000-000000000001",
            occurred_at=datetime(2026, 11, 1, 11, 0, tzinfo=UTC),
        )
    )
    assert sent is None
    assert (sb.requests[-1].path, sb.requests[-1].status) == ("/events/v3/send", 204)
    assert sb.requests[-1].body == {
        "eventName": "pe4242_pricing_calculator_used",
        "email": "dana.whitfield@acme-analytics.com",
        "properties": {"seats": "25", "plan": "growth"},
        "uuid": "5f2a0c5e-0000-4000-8000-000000000001",
        "occurredAt": "2026-11-01T11:00:00+00:00",
    }
    page = client.events.events_api.get_page(
        object_type="contact", object_id="101", event_type="pe4242_pricing_calculator_used"
    )
    assert [(e.id, e.properties) for e in page.results] == [
        ("5f2a0c5e-0000-4000-8000-000000000001", {"seats": "25", "plan": "growth"})
    ]
    assert sb.contact("101").properties["lastmodifieddate"] == before  # no property changed
    with pytest.raises(ApiException) as exc:
        client.events.send.basic_api.send(
            BehavioralEventHttpCompletionRequest(
                event_name="pe4242_pricing_calculator_used",
                object_id="102",
                properties={},
                uuid="5f2a0c5e-0000-4000-8000-000000000001",
            )
        )
    assert exc.value.status == 400
    assert json.loads(exc.value.body)["message"] == (
        "event: an event with uuid 5f2a0c5e-0000-4000-8000-000000000001 was already sent"
    )
    for name in ("pe999_x", "pe4242_Bad-Name", "webinar"):
        with pytest.raises(ApiException) as exc:
            client.events.send.basic_api.send(
                BehavioralEventHttpCompletionRequest(
                    event_name=name, object_id="101", properties={}
                )
            )
        assert exc.value.status == 400 and "is not valid" in json.loads(exc.value.body)["message"]
    with pytest.raises(ApiException) as exc:
        client.events.send.basic_api.send(
            BehavioralEventHttpCompletionRequest(
                event_name="pe4242_x", object_id="101", properties={"note": "y" * 51}
            )
        )
    assert json.loads(exc.value.body)["message"] == (
        "event: property 'note' is longer than 50 characters"
    )


def test_custom_event_batch_is_all_or_nothing(sb: HubSpotSandbox) -> None:
    batch = sdk(sb).events.send.batch_api
    good = BehavioralEventHttpCompletionRequest(
        event_name="pe4242_trial_seat_added", email="new.admin@initech.com", properties={"n": "1"}
    )
    bad = BehavioralEventHttpCompletionRequest(
        event_name="pe4242_trial_seat_added", utk="abc", properties={}
    )
    with pytest.raises(ApiException) as exc:
        batch.send(BatchedBehavioralEventHttpCompletionRequest(inputs=[good, bad]))
    assert json.loads(exc.value.body)["message"] == (
        "inputs[1]: the utk is not linked to any contact"
    )
    assert sb.portal.by_email("new.admin@initech.com") is None
    assert sb.portal.events_by_type.get("pe4242_trial_seat_added", []) == []
    batch.send(BatchedBehavioralEventHttpCompletionRequest(inputs=[good, good]))
    assert sb.requests[-1].status == 204
    admin = sb.portal.by_email("new.admin@initech.com")
    assert admin is not None  # created by e-mail, once
    assert [e.object_id for e in sb.portal.events_by_type["pe4242_trial_seat_added"]] == [
        admin.id,
        admin.id,
    ]
