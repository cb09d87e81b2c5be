"""`explain` says what did not count and why, and shows the stored score's history."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner

from connector.cli import cli

from .conftest import NOW, Harness


def test_explain_of_casey_shows_the_events_outside_the_window_and_the_history(
    demo: Harness, tmp_path: Path
) -> None:
    demo.clock[0] = NOW - timedelta(days=40)  # Casey's events were 52-58 days old then
    first = demo.pipeline.sync()
    demo.clock[0] = NOW
    second = demo.pipeline.sync()
    assert first.status == second.status == "ok"
    state = str(tmp_path / "state.db")
    out = CliRunner().invoke(
        cli, ["--state", state, "explain", "casey@initech.com", "--now", NOW.isoformat()]
    )
    assert out.exit_code == 0, out.output
    lines = [line.rstrip() for line in out.output.splitlines()]
    assert "score 0 (engagement 0)" in lines[1]
    assert "Engagement: no event counts" in lines
    at = lines.index("Not counted")
    assert lines[at + 1 : at + 2] == ["  3 events, the last 2026-08-01, outside the 60-day window"]
    at = lines.index("History")
    assert lines[at + 1 :] == [
        "  first scored 75 (grade A) on 2026-09-22 (model 2026.12-default)",
        "  75 → 0 on 2026-11-01 (model 2026.12-default)",
    ]


def test_not_counted_names_each_reason_with_its_events() -> None:
    from connector.explain import not_counted
    from connector.model.loader import load_model
    from connector.scoring import score
    from connector.types import Contact, Event

    model = load_model()
    contact = Contact(id="9", email="pat@example-corp.com", recycled_at=NOW - timedelta(days=10))
    pricing = {"url": "https://www.leadscore-demo.com/pricing"}

    def ev(n: int, type_: str, days: float, attrs: dict[str, str]) -> Event:
        return Event("t", str(n), "9", type_, NOW - timedelta(days=days), attrs)

    events = [
        ev(1, "page_view", 12, pricing),  # before the recycle
        ev(2, "page_view", 11, pricing),
        ev(3, "chat_started", 3, {}),  # a type no rule reads
        ev(4, "chat_started", 2, {}),
        ev(5, "page_view", 1, pricing),  # one pricing view: the "twice" pattern did not fire
        ev(6, "page_view", -1, pricing),  # after the scoring time
    ]
    result = score(contact, events, None, model, NOW)
    got = [(n.why, n.count, n.text) for n in not_counted(contact, events, result, model, NOW)]
    assert got == [
        ("recycled", 2, "2 events before the recycle on 2026-10-22"),
        (
            "not_fired",
            1,
            "1 event matched pages_30, pricing_repeat, return_visits, whose pattern did not fire",
        ),
        ("no_rule", 2, "2 chat_started events matched no rule"),
        (
            "future",
            1,
            "1 event after the scoring time (the first 2026-11-02 12:00): "
            "they count when their time comes",
        ),
    ]
