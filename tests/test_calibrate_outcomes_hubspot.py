"""Conversions known only by lifecycle stage keep their date through syncs (issue 22).

A contact that sales moved to SQL (no meeting, no deal) used to be dated by its last-modified
time, which our own write-back moves: after a second sync every such conversion was "reached SQL
at an unknown time". HubSpot records when a contact entered each stage
(`hs_lifecyclestage_<stage>_date`, stamped by the sandbox as by HubSpot); the adapter reads it
and calibrate dates the conversion by it. A deal is dated by its own create date.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest.mock import patch

from connector.calibrate.observe import Dataset
from connector.model.loader import load_model
from connector.sandbox.base import iso_ms, to_ms
from connector.sandbox.hubspot import PAGE_VIEW, Portal
from tests.conftest import NOW, make_harness

START = NOW - timedelta(days=300)
H = timedelta(days=90)


def _at(portal: Portal, when: datetime) -> None:
    portal.clock_offset_ms = to_ms(when) - int(time.time() * 1000)


def test_stage_only_conversions_keep_their_date_after_two_syncs(tmp_path: Path) -> None:
    portal = Portal(now=START)
    sql_at: dict[str, datetime] = {}
    deal_at: dict[str, datetime] = {}
    changes: list[tuple[datetime, str, str]] = []
    for i in range(12):
        first = START + timedelta(days=5 + 10 * i)
        values = {"email": f"p{i}@acme-corp.com", "jobtitle": "VP Marketing"}
        if i == 11:  # a deal, dated by its create date (the contact's stage is not touched)
            deal_at["d"] = first + timedelta(days=20)
            values |= {
                "num_associated_deals": "1",
                "first_deal_created_date": iso_ms(to_ms(deal_at["d"])),
            }
        rec = portal.create_contact(values, created_ms=to_ms(first - timedelta(days=1)))
        portal.add_event(rec.id, PAGE_VIEW, {"hs_url": "https://acme.com/blog/a"}, to_ms(first))
        if i == 11:
            deal_at[rec.id] = deal_at.pop("d")
        elif i % 2 == 0:  # sales moved it to SQL by hand, 30 days after its first visit
            changes.append((first + timedelta(days=30), rec.id, "salesqualifiedlead"))
            sql_at[rec.id] = first + timedelta(days=30)
    for when, cid, stage in sorted(changes):
        current = portal.resolve(cid)
        assert current is not None
        # stamped at exactly `when`: the portal's clock runs on with the real one, and a
        # millisecond passing between setting it and the change made the date 12:00:00.001
        with patch.object(portal, "now_ms", return_value=to_ms(when)):
            portal.apply(current, {"lifecyclestage": stage}, source="CRM_UI")
    _at(portal, NOW)
    model = load_model()
    h = make_harness(tmp_path, portal)
    harness = next(h)
    try:
        harness.pipeline.sync()
        harness.clock[0] += timedelta(hours=1)
        portal.advance(3600)
        harness.pipeline.sync(rescore_all=True)  # the second sync: lastmodifieddate moved again
        for cid in sql_at:
            current = portal.resolve(cid)
            assert current is not None
            assert current.properties["lastmodifieddate"] >= iso_ms(to_ms(NOW))
        ds = Dataset(harness.store, "hubspot", model, H, NOW + timedelta(hours=1))
        assert ds.counts.undated == 0
        assert ds.counts.converted == len(sql_at) + 1 == 7
        assert ds.counts.signals == {"entered salesqualifiedlead": 6, "event deal_opened": 1}
        for cid, when in sql_at.items():
            o = ds.outcomes[cid]
            assert o.status == "converted" and o.converted_at == when.astimezone(UTC)
        (deal_cid,) = deal_at
        assert ds.outcomes[deal_cid].converted_at == deal_at[deal_cid]
        events = harness.store.iter_contacts_with_events("hubspot", [deal_cid])
        ((_contact, evs),) = list(events)
        assert [(e.type, e.occurred_at) for e in evs if e.type == "deal_opened"] == [
            ("deal_opened", deal_at[deal_cid])
        ]
    finally:
        h.close()
