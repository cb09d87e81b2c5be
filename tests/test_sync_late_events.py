"""Late events: engagement that reaches the CRM dated in the past (a custom event sent with an
earlier `occurredAt`, a form submission imported with its `submittedAt`, a backdated Marketo
activity). The sync reads each such stream `events_lookback` (3 days) behind its cursor, so the
next sync scores them; events read again are stored once and make no rescore and no write.
Events dated further back are left to `leadscore backfill`. Over real HTTP, against the
sandboxes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from hubspot import HubSpot
from hubspot.events.send import BehavioralEventHttpCompletionRequest

from connector.app import App, open_app, sync_options
from connector.cli import cli
from connector.model.loader import load_model
from connector.pipeline import SyncSummary
from connector.sandbox.demo_portal import PORTAL_ID, build_demo_portal, build_portal, form_id
from connector.sandbox.marketo import MarketoSandbox
from connector.settings import load_settings
from connector.state.store import StateStore
from connector.worker.backfill import run_backfill

from .conftest import NOW, Harness, make_harness, shipped_model_variant

CALCULATOR = "pe4242_pricing_calculator_used"
GUIDE = form_id("Download the scoring guide")


def with_calculator_rule(doc: dict[str, Any]) -> None:
    """A custom event rule: the pricing calculator (a custom behavioural event) is worth 20."""
    doc["engagement"]["rules"].append(
        {
            "name": "pricing_calculator",
            "category": "content",
            "event": "custom",
            "when": {"name": CALCULATOR},
            "points": 20,
            "description": "used the pricing calculator",
        }
    )


@pytest.fixture
def hs(tmp_path: Path) -> Iterator[Harness]:
    model = load_model(shipped_model_variant(tmp_path, "2026.11-late", with_calculator_rule))
    yield from make_harness(tmp_path, build_demo_portal(), model=model)


def send_calculator_event(h: Harness, contact_id: str, occurred_at: datetime, uuid: str) -> None:
    """What a product backend does: the custom event sent with the time it happened."""
    HubSpot(access_token=h.sb.token, host=h.sb.url).events.send.basic_api.send(
        BehavioralEventHttpCompletionRequest(
            event_name=CALCULATOR,
            object_id=contact_id,
            properties={"plan": "growth"},
            uuid=uuid,
            occurred_at=occurred_at,
        )
    )


def event_rows(h: Harness) -> list[tuple[str, str, str, str]]:
    rows = h.store._conn.execute(
        "SELECT source, source_id, contact_id, occurred_at FROM events WHERE crm = 'hubspot' "
        "ORDER BY source, source_id"
    ).fetchall()
    return [tuple(r) for r in rows]


def events_calls(h: Harness) -> list[Any]:
    return [r for r in h.sb.requests if r.path.startswith("/events/v3/events")]


def test_a_custom_event_backdated_two_days_is_scored_by_the_next_sync_once(hs: Harness) -> None:
    first = hs.pipeline.sync()
    assert first.status == "ok", first.message
    assert hs.store.get_score("hubspot", "109").score == 55  # type: ignore[union-attr]
    hs.clock[0] = NOW + timedelta(minutes=15)
    hs.pipeline.sync()  # settles: reads our own writes back, writes nothing
    hs.clock[0] = NOW + timedelta(minutes=30)
    # sent now, dated two days back: before the events cursor (the newest event read)
    send_calculator_event(hs, "109", NOW - timedelta(days=2), "late-0001")
    hs.sb.clear_log()
    rows_before = event_rows(hs)

    late = hs.pipeline.sync()
    assert late.status == "ok", late.message
    assert (late.new_events, late.scored, late.written) == (1, 1, 1)
    assert hs.writes() == [
        {
            "id": "109",
            "properties": {
                "leadscore_score": "75",
                "leadscore_reasons": "+30 product page ×3; +25 visits on 3 days within 3 days; "
                "+20 used the pricing calculator; grade B: company size 51-5,000, manager title",
                "leadscore_scored_at": "2026-11-01T12:30:00.000Z",
            },
        }
    ]
    # one events call, from three days before the newest event read (Oct 31, 19:49:09.621)
    [call] = events_calls(hs)
    assert call.param("occurredAfter") == "2026-10-28T19:49:09.621000+00:00"
    stored = hs.store.get_score("hubspot", "109")
    assert stored is not None and stored.score == 75
    assert event_rows(hs) == sorted(
        [*rows_before, ("hubspot_events", "late-0001", "109", "2026-10-30T12:00:00.000000+00:00")]
    )

    # the next syncs read the event again (it stays inside the margin) and do nothing with it
    hs.clock[0] = NOW + timedelta(minutes=45)
    hs.pipeline.sync()  # settles the write above
    rows = event_rows(hs)
    hs.clock[0] = NOW + timedelta(hours=1)
    scored_at = hs.store.get_score("hubspot", "109").scored_at  # type: ignore[union-attr]
    due = hs.store.due_contact_ids("hubspot", hs.clock[0])
    assert due == ["139"]  # its score changes by now (an event ages out)
    hs.sb.clear_log()
    again = hs.pipeline.sync()
    assert again.status == "ok", again.message
    # the event is read again (the same one events call) and is stored already
    [call] = events_calls(hs)
    assert call.param("occurredAfter") == "2026-10-28T19:49:09.621000+00:00"
    assert (again.new_events, again.scored, again.written, again.to_write) == (0, 1, 0, 0)
    assert [r.path for r in hs.sb.requests if r.method != "GET"] == [
        "/crm/v3/objects/contacts/search"
    ]
    assert event_rows(hs) == rows
    stored = hs.store.get_score("hubspot", "109")
    assert stored is not None and (stored.score, stored.scored_at) == (75, scored_at)


def submit_guide(h: Harness, email: str, submitted_at: datetime) -> None:
    """A form submission imported late: posted now with the time it was made."""
    r = requests.post(
        f"{h.sb.url}/submissions/v3/integration/submit/{PORTAL_ID}/{GUIDE}",
        json={
            "fields": [{"objectTypeId": "0-1", "name": "email", "value": email}],
            "submittedAt": str(int(submitted_at.timestamp() * 1000)),
            "context": {"pageUri": "https://www.leadscore-demo.com/resources/scoring-guide"},
        },
        timeout=10,
    )
    assert r.status_code == 200, r.text


def test_an_event_dated_before_the_lookback_is_left_to_backfill(hs: Harness) -> None:
    assert hs.pipeline.sync().status == "ok"
    hs.clock[0] = NOW + timedelta(minutes=15)
    hs.pipeline.sync()  # settles
    before = hs.store.get_score("hubspot", "109")
    assert before is not None and before.score == 55
    hs.clock[0] = NOW + timedelta(minutes=30)
    # both reach HubSpot now: a custom event dated two days back, inside the 3-day margin,
    # and a form submission imported with its date, five days back: outside it
    send_calculator_event(hs, "109", NOW - timedelta(days=2), "late-0002")
    submit_guide(hs, hs.sb.contact("109").properties["email"], NOW - timedelta(days=5))
    hs.sb.clear_log()
    sync = hs.pipeline.sync()
    assert sync.status == "ok", sync.message
    assert (sync.new_events, sync.written) == (1, 1)  # the custom event only: documented
    [write] = hs.writes()
    assert (write["id"], write["properties"]["leadscore_score"]) == ("109", "75")
    assert "scoring guide" not in write["properties"]["leadscore_reasons"]

    hs.sb.clear_log()
    done = run_backfill(hs.pipeline, NOW - timedelta(days=7)).summary
    assert done.status == "ok", done.message
    assert (done.new_events, done.written) == (1, 1)
    assert hs.writes() == [
        {
            "id": "109",
            "properties": {
                "leadscore_score": "90",
                "leadscore_reasons": "+30 product page ×3; +25 visits on 3 days within 3 days; "
                "+20 used the pricing calculator; +15 downloaded 'Download the scoring guide'; "
                "grade B: company size 51-5,000, manager title",
                "leadscore_scored_at": "2026-11-01T12:30:00.000Z",
            },
        }
    ]
    hs.clock[0] = NOW + timedelta(minutes=45)
    after = hs.pipeline.sync()  # the backfill's write read back: nothing more to do
    assert (after.new_events, after.written) == (0, 0)


def test_the_margin_costs_one_call_per_page_of_three_days_of_events_and_nothing_else(
    tmp_path: Path,
) -> None:
    """The quota the margin costs, from the sandbox's request log: an idle sync reads the
    events of the last three days again in the same paged stream (one more call per page of
    them), and nothing else: the same contacts search, the same e-mail events call."""
    for h in make_harness(tmp_path, build_portal(1_000, events_per_contact=2, seed=5)):
        h.adapter.event_page_size = 20  # small pages, to count them
        assert h.pipeline.sync().status == "ok"
        h.clock[0] = NOW + timedelta(minutes=15)
        assert h.pipeline.sync().written == 0  # settles: reads our own writes back
        newest = max(e.occurred_ms for e in h.sb.portal.events)
        assert newest <= NOW.timestamp() * 1000  # the events cursor: the newest event read
        window = [e for e in h.sb.portal.events if e.occurred_ms > newest - 3 * 86_400_000]
        assert len(window) == 63
        calls: dict[timedelta, dict[str, int]] = {}
        for minutes, margin in ((30, timedelta(0)), (45, timedelta(days=3))):
            h.clock[0] = NOW + timedelta(minutes=minutes)
            h.pipeline.options.events_lookback = margin
            h.sb.clear_log()
            idle = h.pipeline.sync()
            assert (idle.new_events, idle.scored, idle.written) == (0, 0, 0)
            calls[margin] = idle.api_calls_by_kind
            assert len(events_calls(h)) == calls[margin]["events.list"]
        # without the margin: one (empty) events page; with it: the 63 events again, 20 a page
        assert calls[timedelta(0)] == {
            "properties.list": 1,
            "contacts.search": 1,
            "events.list": 1,
            "email_events.list": 1,
        }
        assert calls[timedelta(days=3)] == {**calls[timedelta(0)], "events.list": 4}


# -- Marketo ------------------------------------------------------------------------------------
MARKETO_FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "marketo_demo_instance.json"


def marketo_now(sb: MarketoSandbox) -> datetime:
    return datetime.fromtimestamp(sb.instance.now_ms() / 1000, tz=UTC)


@contextmanager
def marketo_app(sb: MarketoSandbox, path: Path, **overrides: Any) -> Iterator[App]:
    """What one `leadscore` command on Marketo opens: a process of its own (a fresh adapter,
    which knows no lead yet), on the sandbox's clock."""
    settings = load_settings(
        crm="marketo",
        state_path=path,
        marketo_base_url=sb.url,
        marketo_client_id=sb.client_id,
        marketo_client_secret=sb.client_secret,
        pdl_api_key=None,
        apollo_api_key=None,
        **overrides,
    )
    with open_app(settings) as app:
        app.pipeline.clock = lambda: marketo_now(sb)
        yield app


def marketo_sync(sb: MarketoSandbox, path: Path, **overrides: Any) -> SyncSummary:
    """One `leadscore sync`."""
    with marketo_app(sb, path, **overrides) as app:
        summary = app.pipeline.sync()
    assert summary.status == "ok", summary.message
    return summary


def marketo_writes(sb: MarketoSandbox, mark: int) -> list[dict[str, Any]]:
    return [
        row
        for r in sb.requests[mark:]
        if r.path == "/rest/v1/leads.json" and r.effective_method == "POST"
        for row in r.body["input"]
    ]


def marketo_events(path: Path) -> list[tuple[str, str, str]]:
    with StateStore.open(path) as store:
        rows = store._conn.execute(
            "SELECT source_id, contact_id, occurred_at FROM events WHERE crm = 'marketo' "
            "ORDER BY source_id"
        ).fetchall()
    return [tuple(r) for r in rows]


def marketo_due(path: Path, at: datetime) -> list[str]:
    with StateStore.open(path) as store:
        return store.due_contact_ids("marketo", at)


def test_a_backdated_marketo_activity_is_scored_by_the_next_sync_once(tmp_path: Path) -> None:
    """Marketo has the same gap: a date-based paging token (`sinceDatetime`) returns the
    activities dated after it, and the sync asks for one from its events cursor."""
    demo = json.loads(MARKETO_FIXTURE.read_text(encoding="utf-8"))
    state = tmp_path / "state.db"
    with MarketoSandbox.start(demo, now=NOW) as sb:
        marketo_sync(sb, state)
        sb.instance.advance(15 * 60)
        marketo_sync(sb, state)  # settles: our own writes come back as lead changes
        sb.instance.advance(15 * 60)
        # a form fill added now, dated two days back (a custom activity or an import can be)
        act = sb.add_activity(
            109, 2, "Download the scoring guide", {"Referrer URL": "https://x/guide"},
            at=NOW - timedelta(days=2),
        )  # fmt: skip
        rows = marketo_events(state)
        mark = len(sb.requests)
        late = marketo_sync(sb, state)
        assert (late.new_events, late.scored, late.written) == (1, 1, 1)
        [write] = marketo_writes(sb, mark)
        assert {k: v for k, v in write.items() if k != "leadScoredAt__c"} == {
            "id": 109,
            "leadScore": 70,
            "leadScoreReasons__c": "+30 product page ×3; +25 visits on 3 days within 3 days; "
            "+15 downloaded 'Download the scoring guide'; grade B: company size 51-5,000, "
            "manager title",
        }
        assert "leads.get" not in late.api_calls_by_kind  # lead 109 is stored: not read again
        assert marketo_events(state) == sorted(
            [*rows, (act.guid, "109", "2026-10-30T12:00:00.000000+00:00")]
        )
        sb.instance.advance(15 * 60)
        marketo_sync(sb, state)  # settles the write
        rows = marketo_events(state)

        # read again by the next syncs (it stays inside the margin): nothing scored, written
        # or stored, no lead read; and the calls of a sync without the margin
        calls = []
        for margin, minutes in ((0.0, 15), (3.0, 1)):
            sb.instance.advance(minutes * 60)
            due = marketo_due(state, marketo_now(sb))
            mark = len(sb.requests)
            again = marketo_sync(sb, state, events_lookback_days=margin)
            assert (again.new_events, again.written, again.to_write) == (0, 0, 0)
            assert again.scored == len(due)  # the contacts due (decay) only, never 109
            assert "109" not in due
            assert marketo_writes(sb, mark) == []
            calls.append(again.api_calls_by_kind)
        # the margin costs no call here: the three days of activities fit in one page
        assert calls[0] == calls[1]
        assert calls[1] == {
            "identity": 1,
            "leads.describe": 1,
            "activities.types": 1,
            "activities.pagingtoken": 3,  # lead changes, deleted leads, activities
            "activities.leadchanges": 1,
            "activities.deletedleads": 1,
            "activities.list": 1,
        }
        assert marketo_events(state) == rows


def test_a_marketo_activity_dated_before_the_lookback_is_left_to_backfill(tmp_path: Path) -> None:
    demo = json.loads(MARKETO_FIXTURE.read_text(encoding="utf-8"))
    state = tmp_path / "state.db"
    with MarketoSandbox.start(demo, now=NOW, export_seconds=0.01) as sb:
        marketo_sync(sb, state)
        sb.instance.advance(15 * 60)
        marketo_sync(sb, state)  # settles
        sb.instance.advance(15 * 60)
        # both added now: one dated two days back (inside the margin), one five (outside)
        inside = sb.add_activity(
            109, 2, "Download the scoring guide", {"Referrer URL": "https://x/guide"},
            at=NOW - timedelta(days=2),
        )  # fmt: skip
        outside = sb.add_activity(
            109, 2, "Download the ROI whitepaper", {"Referrer URL": "https://x/roi"},
            at=NOW - timedelta(days=5),
        )  # fmt: skip
        mark = len(sb.requests)
        sync = marketo_sync(sb, state)
        assert (sync.new_events, sync.written) == (1, 1)  # the first only: documented
        [write] = marketo_writes(sb, mark)
        assert (write["id"], write["leadScore"]) == (109, 70)
        guids = {row[0] for row in marketo_events(state)}
        assert inside.guid in guids and outside.guid not in guids

        mark = len(sb.requests)
        with marketo_app(sb, state, marketo_export_poll_seconds=0.01) as app:
            done = run_backfill(app.pipeline, NOW - timedelta(days=7)).summary
        assert done.status == "ok", done.message
        assert (done.new_events, done.written) == (1, 1)
        [write] = marketo_writes(sb, mark)
        assert {k: v for k, v in write.items() if k != "leadScoredAt__c"} == {
            "id": 109,
            "leadScore": 85,
            # the two guides named apart (it read "'Download the ROI whitepaper' ×2")
            "leadScoreReasons__c": "+30 downloaded 'Download the ROI whitepaper'; downloaded "
            "'Download the scoring guide'; +30 product page ×3; +25 visits on 3 days within 3 "
            "days; grade B: company size 51-5,000, manager title",
        }
        assert (outside.guid, "109", "2026-10-27T12:00:00.000000+00:00") in marketo_events(state)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("-1", "Input should be greater than or equal to 0"),
        ("400", "Input should be less than or equal to 365"),
        ("three", "Input should be a valid number, unable to parse string as a number"),
    ],
)
def test_a_bad_events_lookback_is_a_one_line_error_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, problem: str
) -> None:
    monkeypatch.setenv("LEADSCORE_HUBSPOT_TOKEN", "pat-na1-secret")
    monkeypatch.setenv("LEADSCORE_STATE_PATH", str(tmp_path / "s.db"))
    monkeypatch.setenv("LEADSCORE_EVENTS_LOOKBACK_DAYS", value)
    result = CliRunner().invoke(cli, ["sync"])
    assert result.exit_code == 2
    assert result.output == (
        f"error: invalid settings: LEADSCORE_EVENTS_LOOKBACK_DAYS: {problem}\n"
    )
    assert not (tmp_path / "s.db").exists()  # nothing opened, nothing lost


def test_the_events_lookback_setting_reaches_the_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    assert sync_options(load_settings()).events_lookback == timedelta(days=3)
    monkeypatch.setenv("LEADSCORE_EVENTS_LOOKBACK_DAYS", "0.5")
    assert sync_options(load_settings()).events_lookback == timedelta(hours=12)
