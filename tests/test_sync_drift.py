"""Score properties changed in the CRM behind our back (a rep, a workflow, an import, a
property deleted and re-created) are written again on the next sync, and counted "repaired";
an idle resync still writes nothing. Issue 19 item 3."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import SimplePublicObjectInput
from hubspot.crm.properties import PropertyCreate

from connector.crm.hubspot import PROPERTY_DEFS

from .conftest import NOW, Harness


def sdk(h: Harness) -> HubSpot:
    return HubSpot(access_token=h.sb.token, host=h.sb.url)


def batch_updates(h: Harness) -> list[list[dict[str, Any]]]:
    """The inputs of every batch update the sandbox accepted, one list per request."""
    return [
        r.body["inputs"]
        for r in h.sb.requests
        if r.path.endswith("/batch/update") and r.status in (200, 207)
    ]


def crm(h: Harness, cid: str, prop: str) -> Any:
    return h.sb.contact(cid).properties.get(prop)


def test_a_hand_edited_score_is_written_back_once_and_counted_repaired(
    demo: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    first = demo.pipeline.sync()
    assert first.status == "ok", first.message
    assert crm(demo, "101", "leadscore_score") == "110"
    sdk(demo).crm.contacts.basic_api.update(
        "101", SimplePublicObjectInput(properties={"leadscore_score": "999"})
    )
    assert crm(demo, "101", "leadscore_score") == "999"
    demo.sb.clear_log()
    caplog.set_level(logging.INFO, logger="connector.pipeline")

    second = demo.pipeline.sync()

    assert second.status == "ok", second.message
    assert (second.written, second.repaired) == (1, 1)
    updates = batch_updates(demo)
    assert len(updates) == 1 and len(updates[0]) == 1
    assert updates[0][0]["id"] == "101"
    assert set(updates[0][0]["properties"]) == {"leadscore_score", "leadscore_scored_at"}
    assert updates[0][0]["properties"]["leadscore_score"] == "110"
    assert crm(demo, "101", "leadscore_score") == "110"
    assert ", written 1, repaired 1, unchanged " in second.line()
    run = demo.store.get_run(second.run_id or 0)
    assert run is not None and run.counts["repaired"] == 1
    logged = [r for r in caplog.records if getattr(r, "summary", None)]
    assert logged[-1].summary["repaired"] == 1  # type: ignore[attr-defined]

    demo.sb.clear_log()
    third = demo.pipeline.sync()  # idle: contact 101 was pulled again (our write), no drift
    assert (third.written, third.repaired) == (0, 0)
    assert third.pulled > 0
    assert batch_updates(demo) == []


def test_a_hand_edit_the_score_agrees_with_is_not_a_repair(demo: Harness) -> None:
    demo.pipeline.sync()
    # a rep empties the MQL reason of a contact and sets a grade equal to ours: one repair
    sdk(demo).crm.contacts.basic_api.update(
        "102",
        SimplePublicObjectInput(properties={"leadscore_mql_reason": "", "leadscore_grade": "D"}),
    )
    demo.sb.clear_log()
    second = demo.pipeline.sync()
    assert (second.written, second.repaired) == (1, 1)
    (update,) = batch_updates(demo)
    assert update[0]["id"] == "102"
    assert set(update[0]["properties"]) == {"leadscore_mql_reason", "leadscore_scored_at"}
    assert crm(demo, "102", "leadscore_mql_reason") == "hand-raiser: Request a demo"


@pytest.mark.parametrize("sync_while_deleted", [False, True])
def test_a_deleted_and_recreated_property_is_refilled_on_the_next_sync(
    demo: Harness, sync_while_deleted: bool
) -> None:
    first = demo.pipeline.sync()
    demo.clock[0] = NOW + timedelta(minutes=15)
    assert demo.pipeline.sync().written == 0
    # later than the lookback: the next sync pulls no contact at all
    demo.clock[0] = NOW + timedelta(minutes=30)
    api = sdk(demo).crm.properties.core_api
    api.archive("contacts", "leadscore_score")
    if sync_while_deleted:  # nothing to write meanwhile: the run only notes it is gone
        assert demo.pipeline.sync().written == 0
        demo.clock[0] = NOW + timedelta(minutes=31)
    spec = next(p for p in PROPERTY_DEFS if p["name"] == "leadscore_score")
    api.create(
        "contacts",
        PropertyCreate(
            name=spec["name"],
            label=spec["label"],
            type=spec["type"],
            field_type=spec["fieldType"],
            group_name="lead_scoring",
        ),
    )
    assert crm(demo, "101", "leadscore_score") is None
    demo.sb.clear_log()

    third = demo.pipeline.sync()

    assert third.status == "ok", third.message
    assert third.pulled == 0
    assert third.written == first.written
    inputs = [i for batch in batch_updates(demo) for i in batch]
    assert len(inputs) == first.written
    assert {frozenset(i["properties"]) for i in inputs} == {
        frozenset({"leadscore_score", "leadscore_scored_at"})
    }
    assert crm(demo, "101", "leadscore_score") == "110"
    assert crm(demo, "103", "leadscore_score") == "-75"
    stamps = json.loads(demo.store.get_cursor("hubspot", "properties") or "{}")
    assert set(stamps) >= {"score", "grade", "reasons"}

    demo.clock[0] = NOW + timedelta(minutes=45)
    demo.sb.clear_log()
    assert demo.pipeline.sync().written == 0
    assert batch_updates(demo) == []


def test_the_worker_counts_repairs_in_its_metrics(demo: Harness, tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from .test_worker_scheduler import get, service_for

    service = service_for(demo, tmp_path)
    with service:
        service.start(schedule=False)
        first = service.worker.run_sync()
        assert first is not None and first.status == "ok"
        sdk(demo).crm.contacts.basic_api.update(
            "104", SimplePublicObjectInput(properties={"leadscore_grade": "A"})
        )
        second = service.worker.run_sync()
        assert second is not None and (second.written, second.repaired) == (1, 1)
        code, body = get(service.url + "/metrics")
    assert code == 200
    repaired = [
        s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
        if s.name == "leadscore_contacts_repaired_total"
    ]
    assert repaired == [1.0]
    assert crm(demo, "104", "leadscore_grade") == "D"
