"""`leadscore optimize`: the events rewritten in contact order, nothing lost or reordered."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import sqlite3
import subprocess
import threading
from collections import namedtuple
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from click.testing import CliRunner

import connector.state.layout as layout_mod
from connector.cli import cli
from connector.errors import StateError
from connector.model.loader import load_model
from connector.ops.rescore import recompute_all
from connector.ops.status import build_status
from connector.sandbox.demo_portal import build_portal
from connector.sandbox.hubspot import HubSpotSandbox
from connector.settings import load_settings
from connector.state.layout import NEAR_ROWS, NotEnoughDisk
from connector.state.store import StateStore
from connector.synth import synth_dataset
from connector.types import Event
from connector.worker.cli import run_worker

from .conftest import NOW

CRM = "hubspot"
CONTACTS = 120  # a contact's neighbouring events, inserted a day at a time, lie this far apart
DAYS = 8


def _arrived_by_day(store: StateStore) -> list[str]:
    """Contacts with their events stored as syncs store them: a day at a time, for everyone.
    Contact 5 also has two events at the same moment, inserted "z" before "a" (a tie the
    reads break by insertion order)."""
    people = list(synth_dataset(CONTACTS, DAYS, NOW, seed=3))
    store.upsert_contacts(CRM, [c for c, _, _ in people], at=NOW)
    oldest_first = [sorted(events, key=lambda e: e.occurred_at) for _, _, events in people]
    for day in range(DAYS):
        store.insert_events(CRM, [events[day] for events in oldest_first])
    tie = NOW - timedelta(days=1)
    five = people[5][0].id
    store.insert_events(
        CRM,
        [Event("web", f"{five}-{k}", five, "page_view", tie, {"url": "/pricing"}) for k in "za"],
    )
    return [c.id for c, _, _ in people]


def _spread_db(tmp_path: Path) -> Path:
    """A state DB file holding `_arrived_by_day`'s contacts and events."""
    path = tmp_path / "state.db"
    with StateStore.open(path) as store:
        _arrived_by_day(store)
    return path


def _rows(path: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Every event row (sorted), and the events table's schema entries."""
    with sqlite3.connect(path) as conn:
        rows = sorted(conn.execute("SELECT * FROM events").fetchall())
        schema = sorted(
            conn.execute(
                "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE tbl_name = 'events'"
            ).fetchall()
        )
    return rows, schema


def _rowids(path: Path, contact_id: str) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT rowid FROM events WHERE contact_id = ? ORDER BY occurred_at, rowid",
                (contact_id,),
            )
        ]


def test_optimize_stores_each_contacts_events_together_and_loses_or_reorders_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.db"
    with StateStore.open(path) as store:
        ids = _arrived_by_day(store)
        before_rows, before_schema = _rows(path)
        before_events = {cid: store.events_for(CRM, cid) for cid in ids}
        assert CONTACTS > NEAR_ROWS
        spread = store.events_layout()
        # 200 rowids spread by the golden ratio meet 61 contacts, each with 7 neighbours apart
        assert (spread.events, spread.contacts_sampled) == (CONTACTS * DAYS + 2, 61)
        assert (spread.pairs, spread.apart, spread.spread) == (427, 427, 1.0)
        gaps = _rowids(path, ids[7])
        assert [b - a for a, b in pairwise(gaps)] == [CONTACTS] * (DAYS - 1)

        done = store.recluster_events()

        assert done.events == CONTACTS * DAYS + 2
        assert (done.before.spread, done.after.spread, done.after.apart) == (1.0, 0.0, 0)
        # the sample now meets every contact (8 rows each, a sample every ~5 rows)
        assert (done.after.contacts_sampled, done.after.pairs) == (CONTACTS, CONTACTS * 7 + 2)
        assert _rows(path) == (before_rows, before_schema)  # every row, the same table
        assert {cid: store.events_for(CRM, cid) for cid in ids} == before_events
        tied = [e.source_id for e in store.events_for(CRM, ids[5])][-2:]
        assert tied == [f"{ids[5]}-z", f"{ids[5]}-a"]  # the tie keeps its insertion order
        for cid in ids:
            got = _rowids(path, cid)
            assert got == list(range(got[0], got[0] + len(got)))  # side by side, in order
        assert store.events_layout().spread == 0.0
        # the unique key still holds, and new events go in as before
        replay = before_events[ids[0]][:2]
        assert store.insert_events(CRM, replay) == set()
        fresh = Event("web", "fresh-1", ids[0], "page_view", NOW, {"url": "/demo"})
        assert store.insert_events(CRM, [fresh]) == {ids[0]}
        assert store.events_for(CRM, ids[0])[-1] == fresh
        assert not layout_mod.EventsLayout(1, 1, 1, 1, 1.0).worth_optimizing  # too few events


def test_a_full_rescore_gives_the_same_scores_after_optimize(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    model = load_model()
    with StateStore.open(path) as store:
        _arrived_by_day(store)
        recompute_all(store, CRM, model, NOW, workers=1)
        query = "SELECT * FROM scores ORDER BY contact_id"
        before = store.db.execute(query).fetchall()
        assert len(before) == CONTACTS and any(r[2] > 0 for r in before)
        store.recluster_events()
        recompute_all(store, CRM, model, NOW, workers=1)
        assert store.db.execute(query).fetchall() == before


def test_optimize_refuses_without_free_disk_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _spread_db(tmp_path)
    before = _rows(path)
    size = path.stat().st_size
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: usage(0, 0, 2 * size - 1))
    with StateStore.open(path) as store, pytest.raises(NotEnoughDisk) as err:
        store.recluster_events()
    assert "optimize needs" in str(err.value) and "nothing changed" in str(err.value)
    res = CliRunner().invoke(cli, ["--state", str(path), "optimize"])
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == [f"error: {err.value}"]
    assert _rows(path) == before
    with StateStore.open(path) as store:
        assert store.events_layout().spread == 1.0


def test_cli_check_then_optimize_then_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _spread_db(tmp_path)
    run = CliRunner().invoke
    total = CONTACTS * DAYS + 2
    monkeypatch.setattr(layout_mod, "SPREAD_HINT_EVENTS", total)  # a test-sized table

    res = run(cli, ["--state", str(path), "status"])
    assert res.exit_code == 0, res.output
    assert "100% of the events lie apart from their contact's others" in res.output
    assert "`leadscore optimize`" in res.output

    res = run(cli, ["--state", str(path), "optimize", "--check"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith(f"{total:,} events, 100% stored apart from their contact's")
    assert lines[1] == (
        "worth optimizing: 100% stored apart, on 962 events: a full rescore reads a page for "
        "each event stored apart; run `leadscore optimize`"
    )
    with StateStore.open(path) as store:
        assert store.events_layout().spread == 1.0  # --check changed nothing

    res = run(cli, ["--state", str(path), "optimize", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["events"] == total
    assert (doc["before"]["spread"], doc["after"]["spread"]) == (1.0, 0.0)
    assert doc["after"]["worth_optimizing"] is False

    res = run(cli, ["--state", str(path), "optimize"])
    assert res.exit_code == 0, res.output
    assert f"rewrote {total:,} events in contact order in" in res.output
    assert "before: " in res.output and "after:  " in res.output

    with StateStore.open(path) as store:
        st = build_status(store, CRM, NOW)
    assert (st.events_spread, st.optimize_hint) == (0.0, False)
    res = run(cli, ["--state", str(path), "status"])
    assert res.exit_code == 0, res.output
    assert "leadscore optimize" not in res.output
    res = run(cli, ["--state", str(path), "optimize", "--check"])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[1] == (
        "no need to optimize: 0% stored apart: under 50%, each contact's events mostly lie "
        "together already"
    )


def test_check_on_a_small_db_says_why_no_optimize_is_needed(tmp_path: Path) -> None:
    """Under 100,000 events the order hardly matters: --check says so in one line, however
    spread they are; --json carries the reason and both bars."""
    path = _spread_db(tmp_path)  # every event apart from its contact's previous one
    res = CliRunner().invoke(cli, ["--state", str(path), "optimize", "--check"])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines() == [
        "962 events, 100% stored apart from their contact's previous one (61 contacts sampled)",
        "no need to optimize: 962 events stored: under 100,000, a full rescore reads them fast "
        "whatever their order",
    ]
    res = CliRunner().invoke(cli, ["--state", str(path), "optimize", "--check", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["worth_optimizing"] is False
    assert (doc["events"], doc["spread"], doc["min_events"], doc["min_spread"]) == (
        962, 1.0, 100_000, 0.5,
    )  # fmt: skip
    assert doc["reason"] == (
        "962 events stored: under 100,000, a full rescore reads them fast whatever their order"
    )


def test_a_spread_just_under_the_bar_does_not_read_as_the_bar() -> None:
    near = layout_mod.EventsLayout(250_000, 200, 1000, 498, 0.498)
    assert not near.worth_optimizing
    assert near.reason == (
        "49.8% stored apart: under 50%, each contact's events mostly lie together already"
    )
    at = layout_mod.EventsLayout(250_000, 200, 1000, 500, 0.5)
    assert at.worth_optimizing
    assert at.reason == (
        "50% stored apart, on 250,000 events: a full rescore reads a page for each event "
        "stored apart"
    )


def test_optimize_without_a_state_db_is_one_line(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["--state", str(tmp_path / "none.db"), "optimize"])
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == [
        f"error: no state DB at {tmp_path / 'none.db'}; run `leadscore sync` first "
        "(or pass --state PATH)"
    ]
    assert not (tmp_path / "none.db").exists()


def test_optimize_refuses_beside_a_running_worker_and_check_still_answers(tmp_path: Path) -> None:
    path = _spread_db(tmp_path)
    with StateStore.open(path) as store:
        store.hold_run_lease(timedelta(hours=2))  # this (live) process: a worker
    before = _rows(path)
    res = CliRunner().invoke(cli, ["--state", str(path), "optimize"])
    assert res.exit_code == 6
    assert res.output.strip().splitlines() == [
        f"error: a `leadscore run` worker (pid {os.getpid()} on {socket.gethostname()}) is "
        f"using {path}; stop it, run `leadscore optimize`, then start it again"
    ]
    assert _rows(path) == before
    res = CliRunner().invoke(cli, ["--state", str(path), "optimize", "--check"])
    assert res.exit_code == 0 and "stored apart" in res.output


def test_an_empty_events_table_reads_as_together_and_optimizes_to_itself(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with StateStore.open(path) as store:
        assert store.events_layout() == layout_mod.EventsLayout(0, 0, 0, 0, 0.0)
        done = store.recluster_events()
        assert (done.events, done.after) == (0, layout_mod.EventsLayout(0, 0, 0, 0, 0.0))
        fresh = Event("web", "w-1", "c1", "page_view", NOW, {})
        assert store.insert_events(CRM, [fresh]) == {"c1"}
        assert store.events_for(CRM, "c1") == [fresh]


def test_an_events_table_it_does_not_know_is_left_as_it_is(tmp_path: Path) -> None:
    """A later migration that changes the events table must teach optimize its columns: until
    then the rewrite refuses (a copy with the old columns would lose the new one)."""
    path = _spread_db(tmp_path)
    with StateStore.open(path) as store:
        store.db.execute("ALTER TABLE events ADD COLUMN campaign TEXT")
        before = _rows(path)
        with pytest.raises(StateError, match=r"events table: unexpected columns .*campaign"):
            store.recluster_events()
        assert _rows(path) == before
        assert store.count_contacts(CRM) == CONTACTS  # the connection's TEMP view still there


def test_one_busy_contact_neither_hides_the_spread_nor_slows_the_estimate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each sampled contact weighs the same, and at most `LAYOUT_ROWS` of its events are read:
    a contact with many events stored side by side (a bot, an import) neither outvotes the
    spread contacts nor makes `status` read all of its rows."""
    monkeypatch.setattr(layout_mod, "LAYOUT_ROWS", 50)
    path = _spread_db(tmp_path)
    busy = [
        Event("web", f"busy-{k}", "busy", "page_view", NOW - timedelta(seconds=k), {})
        for k in range(3000)
    ]
    reads: list[str] = []
    with StateStore.open(path) as store:
        store.insert_events(CRM, busy)
        store._conn.set_trace_callback(reads.append)
        got = store.events_layout()
        store._conn.set_trace_callback(None)
    # the busy contact holds 3,000 of 3,962 rows: most of the sample lands on it, once
    assert got.events == CONTACTS * DAYS + 2 + 3000
    per_contact = [r for r in reads if "ORDER BY occurred_at, rowid LIMIT 50" in r]
    assert len(per_contact) == got.contacts_sampled == 42
    # its 49 side-by-side pairs (of 50 rows read) count as one contact of spread 0
    assert got.pairs == 49 + 7 * (got.contacts_sampled - 1)
    assert got.apart == 7 * (got.contacts_sampled - 1)
    expected = round((got.contacts_sampled - 1) / got.contacts_sampled, 3)
    assert got.spread == expected == 0.976  # pooled pairs would say 287 / 336 = 0.854, and
    # without the cap 287 / 3,286 = 0.087: the spread contacts drowned
    assert got.worth_optimizing is False  # (4k events: under the hint's minimum)


def test_ctrl_c_during_the_rewrite_stops_it_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _spread_db(tmp_path)
    before = _rows(path)
    calls = []

    def interrupted() -> int:  # what a pending SIGINT does the first time SQLite calls back
        calls.append(1)
        raise KeyboardInterrupt

    monkeypatch.setattr(layout_mod, "_keep_going", interrupted)
    monkeypatch.setattr(layout_mod, "_PROGRESS_STEPS", 100)
    with StateStore.open(path) as store:
        with pytest.raises(KeyboardInterrupt):
            store.recluster_events()
        assert calls  # the copy was under way
        assert store.count_contacts(CRM) == CONTACTS  # the connection still whole
        assert not store._conn.in_transaction
    assert _rows(path) == before


def test_a_disk_that_fills_during_the_rewrite_is_one_line_and_changes_nothing(
    tmp_path: Path,
) -> None:
    path = _spread_db(tmp_path)
    before = _rows(path)
    with StateStore.open(path) as store:
        pages = store.db.execute("PRAGMA page_count").fetchone()[0]
        store.db.execute(f"PRAGMA max_page_count = {pages + 2}")  # a disk that is all but full
        with pytest.raises(NotEnoughDisk, match="the disk filled during optimize"):
            store.recluster_events()
        assert store.count_contacts(CRM) == CONTACTS
    assert _rows(path) == before


@pytest.mark.parametrize("optimized", [False, True])
def test_the_run_worker_says_at_start_when_optimize_is_worth_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    optimized: bool,
) -> None:
    path = _spread_db(tmp_path)
    if optimized:
        with StateStore.open(path) as store:
            store.recluster_events()
    monkeypatch.setattr(layout_mod, "SPREAD_HINT_EVENTS", CONTACTS * DAYS)  # a test-sized table
    monkeypatch.setenv("LEADSCORE_ENV_FILE", str(tmp_path / "none.env"))
    with HubSpotSandbox.start(build_portal(5, events_per_contact=1, seed=5)) as sb:
        settings = load_settings(
            crm="hubspot",
            hubspot_base_url=sb.url,
            hubspot_token=sb.token,
            state_path=path,
            http_port=0,
            sync_interval_minutes=60,
        )
        stop = threading.Event()
        with caplog.at_level(logging.WARNING, logger="connector.worker"):
            code = run_worker(settings, load_model(), stop=stop, on_ready=lambda _s: stop.set())
    assert code == 0
    hints = [r.getMessage() for r in caplog.records if "leadscore optimize" in r.getMessage()]
    if optimized:
        assert hints == []
    else:
        assert hints == [
            f"100% of the {CONTACTS * DAYS + 2:,} stored events lie apart from their contact's "
            "others: full rescores read a page per event. Stop the worker and run "
            "`leadscore optimize` (it rewrites them in contact order)"
        ]


def test_a_process_that_finds_the_db_locked_by_the_rewrite_is_told_who_holds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _spread_db(tmp_path)
    seen: list[str] = []

    def meanwhile() -> int:  # called by SQLite during the copy: the write lock is held
        if not seen:
            with StateStore.open(path, busy_timeout=0.05) as other:
                with pytest.raises(StateError) as err:
                    other.set_job("a-sync", {"cursor": 1})  # any write
                seen.append(str(err.value))
        return 0

    monkeypatch.setattr(layout_mod, "_keep_going", meanwhile)
    monkeypatch.setattr(layout_mod, "_PROGRESS_STEPS", 100)
    with StateStore.open(path) as store:
        done = store.recluster_events()
        assert done.events == CONTACTS * DAYS + 2
        assert store.get_job(layout_mod.OPTIMIZE_JOB) is None  # the marker goes with it
    assert len(seen) == 1
    assert seen[0].startswith(
        f"state DB {path} is locked: `leadscore optimize` (pid {os.getpid()} on "
        f"{socket.gethostname()}) is rewriting its events, since "
    )
    assert "; run this again once it ends (gave up after 0.05s): database is locked" in seen[0]


def test_the_marker_of_an_interrupted_or_dead_rewrite_names_nobody(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _spread_db(tmp_path)

    def interrupted() -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(layout_mod, "_keep_going", interrupted)
    monkeypatch.setattr(layout_mod, "_PROGRESS_STEPS", 100)
    with StateStore.open(path) as store:
        with pytest.raises(KeyboardInterrupt):
            store.recluster_events()
        assert store.get_job(layout_mod.OPTIMIZE_JOB) is None
        assert store._lock_holder() is None
        # a rewrite killed -9 leaves its marker: a dead pid on this host names nobody
        dead = subprocess.Popen(["true"])
        dead.wait()
        store.set_job(layout_mod.OPTIMIZE_JOB, {"pid": dead.pid, "host": socket.gethostname()})
        assert store._lock_holder() is None
        store.set_job(layout_mod.OPTIMIZE_JOB, {"pid": os.getpid(), "host": "other-container"})
        held = store._lock_holder()
        assert held is not None and held.startswith(
            f"`leadscore optimize` (pid {os.getpid()} on other-container) is rewriting"
        )
