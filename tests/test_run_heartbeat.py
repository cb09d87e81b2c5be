"""A running run's heartbeat (`runs.heartbeat_at`, migration 016): recorded at the pipeline's
safe points at most every `HEARTBEAT_EVERY`, so that `leadscore status` tells a long run of
another host at work from a dead one (`connector.state.runs.seen_run`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from connector.state.codec import encode_dt
from connector.state.runs import HEARTBEAT_EVERY

from .conftest import NOW, Harness

CRM = "hubspot"
BEAT = "UPDATE runs SET heartbeat_at"


@pytest.fixture
def traced(demo: Harness) -> Iterator[tuple[Harness, list[str]]]:
    """The demo portal read 10 contacts and 20 events a page; every statement the state DB
    runs, traced."""
    demo.adapter.page_size = 10
    demo.adapter.event_page_size = 20
    statements: list[str] = []
    demo.store.db.conn.set_trace_callback(statements.append)
    try:
        yield demo, statements
    finally:
        demo.store.db.conn.set_trace_callback(None)


def test_a_fast_sync_records_no_heartbeat_however_many_pages(
    traced: tuple[Harness, list[str]],
) -> None:
    """A sync of many pages within its first minute: not one heartbeat UPDATE (its start is
    its heartbeat), whatever the number of safe points."""
    h, statements = traced
    points: list[str] = []
    h.pipeline.checkpoint = points.append
    summary = h.pipeline.sync()
    assert summary.status == "ok"
    assert summary.run_id is not None
    assert {p: points.count(p) for p in set(points)} == {"page": 124, "score": 1, "write": 1}
    assert [s for s in statements if s.startswith(BEAT)] == []
    run = h.store.get_run(summary.run_id)
    assert run is not None and run.heartbeat_at == run.started_at == NOW


def test_a_slow_sync_records_its_heartbeat_once_a_minute_not_once_a_page(
    traced: tuple[Harness, list[str]],
) -> None:
    """Pages 25 s apart by the pipeline's clock: the heartbeat is recorded at the first safe
    point a minute or more after the last (75 s: every third page), one small UPDATE each
    time: 41 for 124 pages (51 minutes); the run keeps the last one. The score and write
    safe points, 25 s after the last beat, record none."""
    h, statements = traced
    assert timedelta(minutes=1) == HEARTBEAT_EVERY
    points: list[str] = []

    def checkpoint(where: str) -> None:  # after the pipeline's own heartbeat there
        points.append(where)
        if where == "page":
            h.clock[0] += timedelta(seconds=25)

    h.pipeline.checkpoint = checkpoint
    summary = h.pipeline.sync()
    assert summary.status == "ok" and summary.run_id is not None
    assert {p: points.count(p) for p in set(points)} == {"page": 124, "score": 1, "write": 1}
    beats = [s for s in statements if s.startswith(BEAT)]
    assert beats == [
        f"{BEAT} = '{encode_dt(NOW + timedelta(seconds=75 * k))}' WHERE status = 'running' "
        f"AND id IN (SELECT value FROM json_each('[{summary.run_id}]'))"
        for k in range(1, 42)
    ]
    run = h.store.get_run(summary.run_id)
    assert run is not None and run.status == "ok"
    assert run.heartbeat_at == NOW + timedelta(seconds=75 * 41)
    assert run.finished_at == NOW + timedelta(seconds=25 * 124)
