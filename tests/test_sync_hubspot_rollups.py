"""Portals without the events API (plan or scope): engagement from roll-up properties."""

from __future__ import annotations

from typing import Any

from connector.sandbox.demo_portal import build_demo_portal


def test_without_the_events_api_roll_ups_still_score_and_replays_add_nothing(
    harness_factory: Any,
) -> None:
    for h in harness_factory(build_demo_portal()):
        h.sb.app.events_api_enabled = False
        first = h.pipeline.sync()
        assert first.status == "ok", first.message
        assert h.adapter.rollups is True
        assert first.api_calls_by_kind.get("events.list", 0) == 0
        assert first.api_calls_by_kind["events.probe"] == 1
        props = h.sb.contact("102").properties
        assert props["leadscore_mql_reason"] == "hand-raiser: Request a demo"
        assert props["lifecyclestage"] == "marketingqualifiedlead"
        dana = h.store.get_score("hubspot", "101")
        assert dana is not None
        assert {r.rule for r in dana.reasons if r.kind == "engagement"} == {"pages_30"}
        rollup_events = [
            e for e in h.store.events_for("hubspot", "101") if e.source == "hubspot_rollup"
        ]
        assert len(rollup_events) == int(
            h.sb.contact("101").properties["hs_analytics_num_page_views"]
        )
        h.sb.clear_log()
        again = h.pipeline.sync(rescore_all=True)
        assert again.new_events == 0
        assert again.written == 0
