"""Marketo's equivalent of HubSpot's stage dates (issue 22): with `Change Data Value` among the
activity types read, a change of the lead status to a SQL status is a `custom` event dated by the
activity, and calibrate dates the conversion by it; changes of other fields (our own score
write-back among them) are dropped by the adapter."""

from __future__ import annotations

from datetime import timedelta

from connector.calibrate.outcomes import SignalTypes, outcome_for
from connector.crm.marketo import MarketoConfig
from connector.model.loader import load_model
from connector.sandbox.marketo import MarketoSandbox
from connector.types import SQL, Contact, Event
from tests.test_marketo_adapter import DEMO, adapter_for


def test_a_lead_status_change_to_sql_dates_the_conversion() -> None:
    with MarketoSandbox.start(DEMO) as sb:
        sb.set_field(101, "leadStatus", "Sales Accepted")
        sb.set_field(101, "leadScoreReasons__c", "+50 watched webinar")  # not a status
        sb.set_field(102, "leadStatus", "Nurture")  # a status, but not SQL
        cfg = MarketoConfig.with_overrides(activity_types={"Change Data Value": "custom"})
        with adapter_for(sb, config=cfg) as ad:
            got = [
                e
                for p in ad.pull_events("activities", None, None, None)
                for e in p.events
                if e.type == "custom" and e.contact_id in ("101", "102")
            ]
        assert sb.internal_errors == []
    assert [
        (e.contact_id, e.attributes["name"], e.attributes["new_value"], e.attributes["stage"])
        for e in got
    ][-2:] == [
        ("101", "status_changed", "Sales Accepted", SQL),
        ("102", "status_changed", "Nurture", "lead"),
    ]
    change = next(e for e in reversed(got) if e.contact_id == "101")
    assert change.attributes["lead_status"] == "SALES_ACCEPTED"
    t = change.occurred_at
    view = Event("marketo", "v1", "101", "page_view", t - timedelta(days=10), {"url": "/x"})
    lead = Contact(id="101", lifecycle_stage=SQL, updated_at=t + timedelta(days=200))
    types = SignalTypes.of(load_model().model)
    horizon = timedelta(days=90)
    o = outcome_for(lead, [view, change], types, horizon, t + timedelta(days=100))
    assert (o.status, o.converted_at, o.signal) == (
        "converted",
        t,
        "status_changed to Sales Accepted",
    )
    nurture = next(e for e in reversed(got) if e.contact_id == "102")
    other = Contact(id="102", lifecycle_stage="lead")
    o2 = outcome_for(other, [view, nurture], types, horizon, t + timedelta(days=100))
    assert o2.status == "not_converted"
