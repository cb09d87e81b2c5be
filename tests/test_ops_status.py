"""`leadscore status`: runs, cursors, queues and model versions, from the state DB alone."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from connector.cli import cli
from connector.model.loader import load_model
from connector.ops.status import build_status, run_counts, run_duration
from connector.state.store import StateStore

from .conftest import NOW, Harness
from .test_ops_rescore import DEFAULT_VERSION, changed_model, dump

CRM = "hubspot"


def test_status_after_a_sync_with_dead_letters(demo: Harness, tmp_path: Path) -> None:
    grade = demo.sb.portal.properties["leadscore_grade"]
    grade.options = [o for o in grade.options if o[0] != "D"]
    summary = demo.pipeline.sync()
    model = load_model()
    st = build_status(demo.store, CRM, NOW, model)
    assert len(st.runs) == 1
    run = st.runs[0]
    assert (run.kind, run.status, run.api_calls) == ("sync", "ok", summary.api_calls)
    assert run_counts(run).startswith(f"pulled {summary.pulled}, new events {summary.new_events:,}")
    assert f"dead-lettered {summary.dead_lettered}" in run_counts(run)
    assert run_duration(run).endswith("s")
    assert [c.stream for c in st.cursors] == ["contacts", "events:email", "events:events"]
    assert all(c.position is None and c.since is not None for c in st.cursors)
    assert st.contacts == demo.store.count_contacts(CRM)
    assert st.events == demo.store.count_events(CRM) > 0
    assert st.scored == st.contacts
    assert st.pending_writes == 0
    assert st.dead_letters == {"write": summary.dead_lettered}
    assert st.due == len(demo.store.due_contact_ids(CRM, NOW)) == 0
    later = build_status(demo.store, CRM, NOW + timedelta(days=90), model)
    assert later.due > 0  # events leave the 60-day window: those contacts are due
    assert st.model_in_use == f"{model.version} ({model.fingerprint})"
    assert st.stored_models == [(model.version, model.fingerprint, st.scored)]
    assert st.scored_with_other_models == 0
    other = changed_model(tmp_path, "v2", (DEFAULT_VERSION, 'version: "2026.12-next"'))
    assert build_status(demo.store, CRM, NOW, other).scored_with_other_models == st.scored

    before = dump(demo.store)
    res = CliRunner().invoke(cli, ["--state", str(tmp_path / "state.db"), "status"])
    assert res.exit_code == 0, res.output
    out = res.output
    assert f"model in use: {model.version} ({model.fingerprint})" in out
    assert f"open dead letters {summary.dead_lettered} (write {summary.dead_lettered})" in out
    assert "pending writes 0" in out and "due for rescore" in out
    assert "events:email" in out and "Last 1 run(s)" in out
    assert dump(demo.store) == before  # status only reads


def test_status_counts_the_scores_of_live_contacts_and_the_queues_in_their_indexes(
    demo: Harness,
) -> None:
    """A contact archived and one merged away keep their stored scores (history), and
    `scored` leaves them out as `contacts` does (it said `contacts 52 · scored 54`). The due
    and pending counts are counted in their indexes, and equal the lists the sync reads."""
    assert demo.pipeline.sync().status == "ok"
    store = demo.store
    store.mark_archived(CRM, "105", NOW)
    store._conn.execute(
        "UPDATE contacts SET merged_into = '101' WHERE crm = ? AND id = '106'", (CRM,)
    )
    store.set_write_pending(CRM, ["101", "102", "103"], True)
    model = load_model()
    st = build_status(store, CRM, NOW + timedelta(days=90), model)
    assert st.contacts == store.count_contacts(CRM) == 52
    assert store.count_contacts(CRM, include_inactive=True) == 55  # one merged in the demo
    assert st.scored == 52 and st.stored_models == [(model.version, model.fingerprint, 52)]
    assert st.pending_writes == len(store.pending_write_ids(CRM)) == 3
    assert st.due == len(store.due_contact_ids(CRM, NOW + timedelta(days=90))) > 0


def test_status_without_a_state_db_is_one_line_exit_1(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["--state", str(tmp_path / "none.db"), "status"])
    assert res.exit_code == 1
    assert res.output.startswith("error: no state DB at")
    assert len(res.output.strip().splitlines()) == 1


def test_status_on_a_fresh_db_and_a_broken_model_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with StateStore.open(tmp_path / "s.db"):
        pass
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: [\n")
    monkeypatch.setenv("LEADSCORE_MODEL_PATH", str(bad))
    res = CliRunner().invoke(cli, ["--state", str(tmp_path / "s.db"), "status"])
    assert res.exit_code == 0, res.output
    assert "invalid model file" in res.output
    assert "no sync has run yet" in res.output
    assert "scores stored: none yet" in " ".join(res.output.split())


def _busy_db(path: Path) -> None:
    """A state DB as months of work leave it: a long backfill with big counts, a rescore
    whose writes were refused (its message holds `[...]`), a stopped and a failed sync, a
    sync under 0.1 s and a webhook pass still running (in another container: pid 4242 on
    worker-2, its heartbeat at 12:25); a contacts pass interrupted on a long paging token,
    an events cursor stored with a +02:00 offset, a cursor of another shape."""
    at = datetime(2026, 12, 6, 21, 0, 5, 123456, tzinfo=UTC)
    with StateStore.open(path) as store:
        runs: list[tuple[str, str, dict[str, int], int, str | None, timedelta]] = [
            ("backfill", "ok", {"pulled": 123456, "new_events": 2345678, "scored": 123456,
             "written": 98765}, 12345, None, timedelta(hours=2, minutes=15, seconds=7)),
            ("rescore", "partial", {"scored": 54, "written": 3, "dead_lettered": 2}, 4,
             "2 write(s) dead-lettered: HubSpot refused property leadscore_grade value 'E' "
             "[not an option] for contact 1234567; see `leadscore dead-letters`",
             timedelta(seconds=75)),
            ("sync", "stopped", {"pulled": 10}, 2, "stopped by SIGTERM", timedelta(seconds=1)),
            ("sync", "failed", {"pulled": 0}, 5, "HubSpot unreachable at "
             "http://127.0.0.1:9: connection refused (properties.list)", timedelta(seconds=3.3)),
            ("sync", "ok", {"pulled": 54, "unchanged": 54}, 6, None, timedelta(seconds=0.03)),
        ]  # fmt: skip
        for n, (kind, status, counts, calls, message, took) in enumerate(runs):
            begun = at + timedelta(hours=3 * n)
            run = store.start_run(CRM, kind, at=begun)
            store.finish_run(run, status, counts, calls, message=message, at=begun + took)
        webhook = store.start_run(CRM, "webhook", at=at + timedelta(hours=15))
        store.beat_runs([webhook], at + timedelta(hours=15, minutes=25))  # at work
        store.set_cursor(CRM, "contacts", json.dumps({
            "since": "2026-12-06T20:16:01.530754+00:00",
            "position": "GIYDAOBNGEYS2MBWKQYDAORQGA5DAMBOGAYDAKZQGAYDALBQ"}))  # fmt: skip
        store.set_cursor(CRM, "events:email", json.dumps(
            {"position": None, "high_water": "2026-12-03T20:25:32.5+02:00"}))  # fmt: skip
        store.set_cursor(CRM, "legacy", "a cursor value of another shape, from an older leadscore")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE cursors SET updated_at = ?", ("2026-12-07T12:30:59.987654+00:00",))
        conn.execute("UPDATE runs SET pid = 4242, host = 'worker-2' WHERE kind = 'webhook'")


def test_status_tables_fit_80_columns_in_utc_minutes_and_whole_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Times are UTC to the minute (no seconds or microseconds, a cursor's offset converted),
    counts have thousands separators, durations read 2h15m07s or <0.1s, a run with nothing
    counted shows —, nothing is cut inside a word at 80 columns, and each run's message is a
    line of its own under the table, whole (markup-like text kept); a running run's line
    names its process."""
    db = tmp_path / "busy.db"
    _busy_db(db)
    # half an hour after the webhook pass started (its process, of another host, unchecked)
    monkeypatch.setattr(
        "connector.ops.analysis._now", lambda: datetime(2026, 12, 7, 12, 30, tzinfo=UTC)
    )
    res = CliRunner().invoke(cli, ["--state", str(db), "status"], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    lines = [line.rstrip() for line in res.output.splitlines()]
    assert max(map(len, lines)) <= 80
    start = lines.index("stored: contacts 0 · events 0 · scored 0")
    assert lines[start:] == [
        "stored: contacts 0 · events 0 · scored 0",
        "queues: pending writes 0 · open dead letters 0 · due for rescore 0",
        "Cursors",
        "┏━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━┓",
        "┃ stream       ┃ position (UTC)                             ┃ updated (UTC)    ┃",
        "┡━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━┩",
        "│ contacts     │ up to 2026-12-06 20:16; pass in progress,  │ 2026-12-07 12:30 │",
        "│              │ resumes after GIYDAOBNGEYS2MBW…            │                  │",
        "│ events:email │ up to 2026-12-03 18:25                     │ 2026-12-07 12:30 │",
        "│ legacy       │ a cursor value of another shape, from an   │ 2026-12-07 12:30 │",
        "│              │ older leadscore                            │                  │",
        "└──────────────┴────────────────────────────────────────────┴──────────────────┘",
        "Last 6 run(s)",
        "┏━━━┳━━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━┓",
        "┃   ┃          ┃         ┃ started    ┃          ┃                    ┃    API ┃",
        "┃ # ┃ kind     ┃ status  ┃ (UTC)      ┃ duration ┃ counts             ┃  calls ┃",
        "┡━━━╇━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━┩",
        "│ 6 │ webhook  │ running │ 2026-12-07 │  running │ —                  │      0 │",
        "│   │          │         │ 12:00      │          │                    │        │",
        "│ 5 │ sync     │ ok      │ 2026-12-07 │    <0.1s │ pulled 54,         │      6 │",
        "│   │          │         │ 09:00      │          │ unchanged 54       │        │",
        "│ 4 │ sync     │ failed  │ 2026-12-07 │     3.3s │ —                  │      5 │",
        "│   │          │         │ 06:00      │          │                    │        │",
        "│ 3 │ sync     │ stopped │ 2026-12-07 │     1.0s │ pulled 10          │      2 │",
        "│   │          │         │ 03:00      │          │                    │        │",
        "│ 2 │ rescore  │ partial │ 2026-12-07 │    1m15s │ scored 54, written │      4 │",
        "│   │          │         │ 00:00      │          │ 3, dead-lettered 2 │        │",
        "│ 1 │ backfill │ ok      │ 2026-12-06 │ 2h15m07s │ pulled 123,456,    │ 12,345 │",
        "│   │          │         │ 21:00      │          │ new events         │        │",
        "│   │          │         │            │          │ 2,345,678, scored  │        │",
        "│   │          │         │            │          │ 123,456, written   │        │",
        "│   │          │         │            │          │ 98,765             │        │",
        "└───┴──────────┴─────────┴────────────┴──────────┴────────────────────┴────────┘",
        "run 6 (webhook, running): the process (pid 4242 on worker-2) runs on another",
        "host (not checked from here)",
        "run 4 (sync, failed): HubSpot unreachable at http://127.0.0.1:9: connection",
        "refused (properties.list)",
        "run 3 (sync, stopped): stopped by SIGTERM",
        "run 2 (rescore, partial): 2 write(s) dead-lettered: HubSpot refused property",
        "leadscore_grade value 'E' [not an option] for contact 1234567; see `leadscore",
        "dead-letters`",
    ]
    res = CliRunner().invoke(cli, ["--state", str(db), "status"], env={"COLUMNS": "200"})
    lines = [line.rstrip() for line in res.output.splitlines()]
    counts = [  # the counts column, as wide as its longest
        "—",
        "pulled 54, unchanged 54",
        "—",
        "pulled 10",
        "scored 54, written 3, dead-lettered 2",
        "pulled 123,456, new events 2,345,678, scored 123,456, written 98,765",
    ]
    assert lines[-11:-5] == [
        f"│ {n} │ {kind:<8} │ {status:<7} │ {started} │ {took:>8} │ {c:<68} │ {calls:>9} │"
        for (n, kind, status, started, took, calls), c in zip(
            [
                (6, "webhook", "running", "2026-12-07 12:00", "running", "0"),
                (5, "sync", "ok", "2026-12-07 09:00", "<0.1s", "6"),
                (4, "sync", "failed", "2026-12-07 06:00", "3.3s", "5"),
                (3, "sync", "stopped", "2026-12-07 03:00", "1.0s", "2"),
                (2, "rescore", "partial", "2026-12-07 00:00", "1m15s", "4"),
                (1, "backfill", "ok", "2026-12-06 21:00", "2h15m07s", "12,345"),
            ],
            counts,
            strict=True,
        )
    ]
    assert lines[-4:] == [
        "run 6 (webhook, running): the process (pid 4242 on worker-2) runs on another host "
        "(not checked from here)",
        "run 4 (sync, failed): HubSpot unreachable at http://127.0.0.1:9: connection refused "
        "(properties.list)",
        "run 3 (sync, stopped): stopped by SIGTERM",
        "run 2 (rescore, partial): 2 write(s) dead-lettered: HubSpot refused property "
        "leadscore_grade value 'E' [not an option] for contact 1234567; see `leadscore "
        "dead-letters`",
    ]


def test_status_counts_the_scored_accounts_their_mqas_and_those_due(
    demo_accounts: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo portal with accounts on: 12 accounts, 6 of them MQAs (as `leadscore demo`
    shows); an account in the backlog, or whose score changes by then, is due."""
    h = demo_accounts
    assert h.pipeline.sync().status == "ok"
    st = build_status(h.store, CRM, NOW, load_model())
    assert (st.accounts, st.mqas, st.accounts_due) == (12, 6, 0)
    h.store.add_accounts_due(CRM, ["company:9001"], "firmographics")
    assert build_status(h.store, CRM, NOW).accounts_due == 1
    # a month on, people leave the 30-day breadth windows: those accounts' scores change
    changing = h.store.due_account_ids(CRM, NOW + timedelta(days=30))
    assert "company:9001" in changing and len(changing) > 1
    later = build_status(h.store, CRM, NOW + timedelta(days=30))
    assert later.accounts_due == len(changing)
    monkeypatch.setattr("connector.ops.analysis._now", lambda: NOW)  # the portal's clock
    res = CliRunner().invoke(cli, ["--state", str(h.store.path), "status"])
    assert res.exit_code == 0, res.output
    assert (
        "accounts: scored 12 · MQA 6 · due for rescore 1 (`leadscore accounts` lists the hottest)"
    ) in res.output.splitlines()
    doc = json.loads(
        CliRunner().invoke(cli, ["--state", str(h.store.path), "status", "--json"]).output
    )
    assert (doc["accounts"], doc["mqas"], doc["accounts_due"]) == (12, 6, 1)


def test_status_without_accounts_shows_no_accounts_line(demo: Harness, tmp_path: Path) -> None:
    assert demo.pipeline.sync().status == "ok"
    res = CliRunner().invoke(cli, ["--state", str(tmp_path / "state.db"), "status"])
    assert res.exit_code == 0, res.output
    assert "accounts:" not in res.output


def test_a_dry_run_is_recorded_and_shown_apart_from_a_real_sync(
    demo: Harness, tmp_path: Path
) -> None:
    """A dry run's run row is `sync (dry run)`: `status` shows it so, and the last successful
    sync (what the worker's health check and its schedule read) is not a dry run."""
    demo.pipeline.options.dry_run = True
    assert demo.pipeline.sync().status == "ok"
    assert demo.store.last_successful_run("hubspot", "sync") is None
    demo.pipeline.options.dry_run = False
    real = demo.pipeline.sync()
    assert real.status == "ok"
    last = demo.store.last_successful_run("hubspot", "sync")
    assert last is not None and last.id == real.run_id
    assert [(r.kind, r.status) for r in demo.store.last_runs("hubspot")] == [
        ("sync", "ok"),
        ("sync (dry run)", "ok"),
    ]
    res = CliRunner().invoke(cli, ["--state", str(tmp_path / "state.db"), "status", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert [r["kind"] for r in doc["runs"]] == ["sync", "sync (dry run)"]


def test_status_shows_a_run_whose_process_is_gone_as_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On host leadscore-1: a webhook pass whose process is gone (pid 4999999: above any pid
    Linux gives) is `interrupted`; a rescore of another host started 3 hours ago whose
    heartbeat is a minute old `running`, a sync of another host started 20 minutes ago whose
    heartbeat is 15 minutes old `probably interrupted`, saying since when; a sync from before
    migration 012 (no process recorded) `running` as before. Each line names the process;
    `--json` carries the status shown, pid, host and heartbeat."""
    monkeypatch.setattr(socket, "gethostname", lambda: "leadscore-1")
    now = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
    monkeypatch.setattr("connector.ops.analysis._now", lambda: now)
    db = tmp_path / "state.db"
    with StateStore.open(db) as store:
        done = store.start_run(CRM, "backfill", at=now - timedelta(hours=5))
        store.finish_run(done, "ok", {"pulled": 5}, 3, at=now - timedelta(hours=4))
        runs = [
            store.start_run(CRM, kind, at=now - ago)
            for kind, ago in (
                ("sync", timedelta(hours=4)),
                ("rescore", timedelta(hours=3)),
                ("sync", timedelta(minutes=20)),
                ("webhook", timedelta(minutes=5)),
            )
        ]
        store.beat_runs([runs[1]], now - timedelta(minutes=1))
        store.beat_runs([runs[2]], now - timedelta(minutes=15))
    with sqlite3.connect(db) as conn:
        for (pid, host, start), run in zip(
            [(None, None, None), (4242, "worker-2", 7), (4243, "worker-2", 8),
             (4999999, "leadscore-1", 9)],
            runs,
            strict=True,
        ):  # fmt: skip
            conn.execute(
                "UPDATE runs SET pid = ?, host = ?, process_start = ? WHERE id = ?",
                (pid, host, start, run),
            )
        conn.execute("UPDATE runs SET pid = 4241, process_start = 6 WHERE id = ?", (done,))
    conn.close()
    res = CliRunner().invoke(cli, ["--state", str(db), "status"], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    lines = [line.rstrip() for line in res.output.splitlines()]
    assert lines[lines.index("Last 5 run(s)") :] == [
        "Last 5 run(s)",
        "┏━━━┳━━━━━━━━━━┳━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━┓",
        "┃   ┃          ┃             ┃                  ┃          ┃          ┃    API ┃",
        "┃ # ┃ kind     ┃ status      ┃ started (UTC)    ┃ duration ┃ counts   ┃  calls ┃",
        "┡━━━╇━━━━━━━━━━╇━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━┩",
        "│ 5 │ webhook  │ interrupted │ 2026-12-07 14:55 │        — │ —        │      0 │",
        "│ 4 │ sync     │ probably    │ 2026-12-07 14:40 │        — │ —        │      0 │",
        "│   │          │ interrupted │                  │          │          │        │",
        "│ 3 │ rescore  │ running     │ 2026-12-07 12:00 │  running │ —        │      0 │",
        "│ 2 │ sync     │ running     │ 2026-12-07 11:00 │  running │ —        │      0 │",
        "│ 1 │ backfill │ ok          │ 2026-12-07 10:00 │ 1h00m00s │ pulled 5 │      3 │",
        "└───┴──────────┴─────────────┴──────────────────┴──────────┴──────────┴────────┘",
        "run 5 (webhook, interrupted): the process (pid 4999999 on leadscore-1) ended",
        "without finishing it",
        "run 4 (sync, probably interrupted): the process (pid 4243 on worker-2) runs on",
        "another host (not checked from here) and has shown no progress since 14:45 UTC",
        "(15 min)",
        "run 3 (rescore, running): the process (pid 4242 on worker-2) runs on another",
        "host (not checked from here)",
    ]
    res = CliRunner().invoke(cli, ["--state", str(db), "status", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["runs"] == [
        {
            "id": run,
            "crm": CRM,
            "kind": kind,
            "started_at": (now - ago).isoformat(),
            "finished_at": None,
            "duration": None,
            "status": status,
            "counts": {},
            "api_calls": 0,
            "errors": 0,
            "message": message,
            "pid": pid,
            "host": host,
            "process_start": start,
            "heartbeat_at": (now - beat).isoformat(),
        }
        for run, kind, ago, status, message, pid, host, start, beat in [
            (runs[3], "webhook", timedelta(minutes=5), "interrupted",
             "the process (pid 4999999 on leadscore-1) ended without finishing it",
             4999999, "leadscore-1", 9, timedelta(minutes=5)),
            (runs[2], "sync", timedelta(minutes=20), "probably interrupted",
             "the process (pid 4243 on worker-2) runs on another host (not checked from here) "
             "and has shown no progress since 14:45 UTC (15 min)", 4243, "worker-2", 8,
             timedelta(minutes=15)),
            (runs[1], "rescore", timedelta(hours=3), "running",
             "the process (pid 4242 on worker-2) runs on another host (not checked from here)",
             4242, "worker-2", 7, timedelta(minutes=1)),
            (runs[0], "sync", timedelta(hours=4), "running", None, None, None, None,
             timedelta(hours=4)),
        ]
    ] + [
        {
            "id": done,
            "crm": CRM,
            "kind": "backfill",
            "started_at": (now - timedelta(hours=5)).isoformat(),
            "finished_at": (now - timedelta(hours=4)).isoformat(),
            "duration": 3600.0,
            "status": "ok",
            "counts": {"pulled": 5},
            "api_calls": 3,
            "errors": 0,
            "message": None,
            "pid": 4241,
            "host": "leadscore-1",
            "process_start": 6,
            "heartbeat_at": (now - timedelta(hours=5)).isoformat(),
        }
    ]  # fmt: skip
    with sqlite3.connect(db) as conn:  # status only reads: the DB still says running
        assert conn.execute("SELECT count(*) FROM runs WHERE status = 'running'").fetchone() == (4,)
    conn.close()


def _status(db: Path) -> tuple[list[str], dict[str, Any]]:
    """`leadscore status`'s lines at 200 columns, and the first run of `status --json`."""
    env = {"COLUMNS": "200"}
    text = CliRunner().invoke(cli, ["--state", str(db), "status"], env=env)
    assert text.exit_code == 0, text.output
    doc = CliRunner().invoke(cli, ["--state", str(db), "status", "--json"])
    assert doc.exit_code == 0, doc.output
    run: dict[str, Any] = json.loads(doc.output)["runs"][0]
    return [line.rstrip() for line in text.output.splitlines()], run


def test_a_leadscore_sync_killed_mid_run_shows_running_then_interrupted(tmp_path: Path) -> None:
    """A real `leadscore sync` process, held at its first contacts search (its run row
    written): `status` shows its run `running`, naming its pid on this host; SIGKILLed, the
    same run `interrupted` (the DB still says running: status only reads). The next run
    started here records it `interrupted`, finished_at left NULL."""
    from .reliability_matrix import LEADSCORE, child_env, sandbox

    db, host = tmp_path / "state.db", socket.gethostname()
    with sandbox(now=None) as sb:
        real, reached, release = sb.app.route, threading.Event(), threading.Event()

        def held(req: Any) -> Any:
            if req.path.rstrip("/").endswith("/search"):
                reached.set()
                release.wait(60)
            return real(req)

        sb.app.route = held  # type: ignore[method-assign]
        proc = subprocess.Popen(
            [*LEADSCORE, "sync"], env=child_env(sb, db), cwd=tmp_path,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            assert reached.wait(60), "the child never searched"
            lines, run = _status(db)
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait(30) == -signal.SIGKILL
        finally:
            release.set()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        who = f"the process (pid {proc.pid} on {host})"
        assert (run["id"], run["kind"], run["status"], run["pid"], run["host"]) == (
            1, "sync", "running", proc.pid, host,
        )  # fmt: skip
        assert (run["finished_at"], run["message"]) == (None, f"{who} is at work")
        assert lines[-1] == f"run 1 (sync, running): {who} is at work"
        started = run["started_at"][:16].replace("T", " ")
        assert [line for line in lines if line.startswith("│ 1 ")] == [
            f"│ 1 │ sync │ running │ {started} │  running │ —      │         0 │"
        ]

        lines, run = _status(db)
        assert (run["id"], run["status"], run["pid"], run["host"], run["finished_at"]) == (
            1, "interrupted", proc.pid, host, None,
        )  # fmt: skip
        assert run["message"] == f"{who} ended without finishing it"
        assert lines[-1] == f"run 1 (sync, interrupted): {who} ended without finishing it"
        assert [line for line in lines if line.startswith("│ 1 ")] == [
            f"│ 1 │ sync │ interrupted │ {started} │        — │ —      │         0 │"
        ]
        with StateStore.open(db) as store:
            assert store.db.execute("SELECT status FROM runs WHERE id = 1").fetchone() == (
                "running",
            )
            later = store.start_run(CRM, "sync")
            assert store.db.execute(
                "SELECT status, finished_at, message, pid, host FROM runs WHERE id = 1"
            ).fetchone() == (
                "interrupted",
                None,
                f"{who} ended without finishing it (found when run {later} started)",
                proc.pid,
                host,
            )
