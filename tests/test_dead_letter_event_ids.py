"""An engagement record's input dead letter is kept under `event:<id>` (as a company's under
`company:<id>`): a contact of the same number read cleanly no longer resolves it, and the
event itself read cleanly does. Before, both were kept under the bare id (found by the
dead-letter dismissal's helper: Marketo activity and lead ids are both numbers)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from connector.sandbox.marketo import MarketoSandbox
from connector.state import migrations
from connector.state.codec import encode_dt
from connector.state.store import StateStore

from .conftest import NOW
from .test_accounts_input import CRM, _move_event, harness, open_letters
from .test_sync_late_events import MARKETO_FIXTURE, marketo_app, marketo_now


def test_a_future_dated_event_read_within_the_day_settles_its_dead_letter(
    tmp_path: Path,
) -> None:
    with harness(tmp_path) as h:
        url = {"hs_url": "https://www.leadscore-demo.com/pricing"}
        ev = h.sb.add_event("302", "e_visited_page", url, NOW + timedelta(days=400))
        first = h.pipeline.sync()
        assert first.bad_records == 1
        [letter] = h.store.open_dead_letters(CRM)
        assert letter.contact_id == f"event:{ev.id}"
        # the CRM's date mended (now within the day): stored, scored, the dead letter settled
        _move_event(h, ev, NOW + timedelta(minutes=10))
        h.clock[0] = NOW + timedelta(minutes=15)
        mended = h.pipeline.sync()
        assert (mended.status, mended.bad_records, mended.new_events) == ("ok", 0, 1)
        assert open_letters(h) == []
        [resolved] = h.store.db.execute(
            "SELECT contact_id, resolved_at FROM dead_letters WHERE id = ?", [letter.id]
        ).fetchall()
        assert resolved == (f"event:{ev.id}", encode_dt(NOW + timedelta(minutes=15)))


def test_a_lead_read_cleanly_leaves_the_dead_letter_of_an_activity_of_its_number(
    tmp_path: Path,
) -> None:
    """Marketo: an activity the CRM sends without its GUID (bad input, kept under its id)
    whose id is 105, the number of a lead the same sync reads cleanly: its dead letter stays
    open and counts its attempts (before: the lead's clean read resolved it, and the next read
    opened another)."""
    demo = json.loads(MARKETO_FIXTURE.read_text(encoding="utf-8"))
    with MarketoSandbox.start(demo, now=NOW) as sb:
        act = sb.instance.add_activity(104, 2, "Contact Us", {"Referrer URL": "https://x/c"})
        act.guid = ""  # sent without one
        sb.instance._next_activity_id = max(sb.instance._next_activity_id, act.id + 1)
        act.id = 105
        with marketo_app(sb, tmp_path / "state.db") as app:
            summary = app.pipeline.sync()
            letters = app.store.open_dead_letters("marketo")
            lead = app.store.get_contact("marketo", "105")
        assert summary.bad_records == 1 and lead is not None  # lead 105 read cleanly
        assert [(d.kind, d.contact_id) for d in letters] == [("input", "event:105")]
        sb.instance.advance(14 * 60)
        sb.set_field(105, "title", "VP Sales")  # lead 105 changes: read cleanly again
        sb.instance.advance(60)
        with marketo_app(sb, tmp_path / "state.db") as app:
            # the sandbox's clock runs on in real time: read it on both sides
            before = marketo_now(sb)
            assert before <= app.pipeline.clock() <= marketo_now(sb)
            again = app.pipeline.sync()
            after = app.store.open_dead_letters("marketo")
        assert again.bad_records == 0 and "105" in again._pulled_ids  # the same: no news
        assert [(d.id, d.contact_id, d.attempts) for d in after] == [
            (letters[0].id, "event:105", 2)
        ]


def test_migration_015_moves_the_event_dead_letters_kept_before_under_their_prefix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = migrations.MIGRATIONS
    assert migrations._version(real[14]) == (15, "event_dead_letter_ids")
    monkeypatch.setattr(migrations, "MIGRATIONS", real[:14])
    path = tmp_path / "state.db"
    at = encode_dt(NOW)
    with StateStore.open(path) as old:
        old.db.execute(
            "INSERT INTO dead_letters (crm, kind, contact_id, payload, reason, attempts, "
            "first_seen_at, last_tried_at) VALUES "
            "('hubspot', 'input', 'e1', '{\"id\": \"e1\", \"contact_id\": \"302\"}', 'f', 1, "
            "?1, ?1), "
            "('marketo', 'input', '77', '{\"id\": 77, \"leadId\": 105}', 'a', 1, ?1, ?1), "
            "('hubspot', 'input', '9', '{\"recipient\": \"ed@x.io\"}', 'm', 1, ?1, ?1), "
            "('hubspot', 'input', '302', '{\"id\": \"302\", \"properties\": {}}', 'c', 1, "
            "?1, ?1), "
            "('hubspot', 'input', 'company:5', '{\"id\": \"5\"}', 'co', 1, ?1, ?1), "
            "('hubspot', 'write', '303', '{\"contact_id\": \"x\"}', 'w', 1, ?1, ?1), "
            "('hubspot', 'input', '400', '[1, 2]', 'l', 1, ?1, ?1)",
            [at],
        )
    monkeypatch.setattr(migrations, "MIGRATIONS", real)
    with StateStore.open(path) as new:
        ids = new.db.execute("SELECT kind, contact_id FROM dead_letters ORDER BY id").fetchall()
    assert ids == [
        ("input", "event:e1"),
        ("input", "event:77"),
        ("input", "event:9"),
        ("input", "302"),  # a contact's own record
        ("input", "company:5"),
        ("write", "303"),
        ("input", "400"),
    ]
