"""`leadscore demo`, the newcomer's first command, end to end through the CLI."""

from __future__ import annotations

import json
import re
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from click.testing import CliRunner
from rich.console import Console

from connector.cli import cli
from connector.demo import DEMO_FIXTURE, run_demo

from .conftest import NOW


def test_demo_syncs_the_portal_and_the_second_sync_writes_nothing(tmp_path: Path) -> None:
    console = Console(file=open(tmp_path / "out.txt", "w"), width=200)  # noqa: SIM115
    try:
        result = run_demo(console, state_path=tmp_path / "demo.db", now=NOW)
    finally:
        console.file.close()
    assert result.first.status == "ok" and result.second.status == "ok"
    # 54 contacts and the 12 companies that have members (accounts are on in the demo)
    assert (result.first.scored, result.first.written, result.first.companies_written) == (
        54,
        54,
        12,
    )
    assert result.first.api_calls_by_kind["companies.batch_update"] == 1
    assert result.second.written == 0
    assert result.second.api_calls_by_kind.get("contacts.batch_update", 0) == 0
    assert result.second.api_calls_by_kind.get("companies.batch_update", 0) == 0
    rows = {r["email"]: r for r in result.rows}
    dana = rows["dana.whitfield@acme-analytics.com"]
    assert dana["priority"] == "A1"  # leadPriority__c
    assert (dana["grade"], dana["score"], dana["stage"], dana["mql_reason"]) == (
        "A",
        "110",
        "marketingqualifiedlead",
        "threshold",
    )
    riley = rows["riley.chen1987@gmail.com"]
    assert riley["mql_reason"] == "hand-raiser: Request a demo" and riley["mismatch"]
    assert rows["taylor.brooks@globex.co.uk"]["stage"] == "salesqualifiedlead"
    # the Northwind Data buying committee: engaged together, none an MQL alone
    committee = {
        email: (rows[email]["grade"], rows[email]["score"], rows[email]["stage"])
        for email in (
            "elena.marsh@northwind-data.com",
            "marcus.lee@northwind-data.com",
            "nadia.okafor@northwind-data.com",
            "tom.becker@northwind-data.com",
        )
    }
    assert committee == {
        "elena.marsh@northwind-data.com": ("A", "24", "lead"),
        "marcus.lee@northwind-data.com": ("B", "40", "lead"),
        "nadia.okafor@northwind-data.com": ("C", "20", "lead"),
        "tom.becker@northwind-data.com": ("B", "15", "lead"),
    }
    assert "leadscore_score" in ",".join(result.created)
    text = (tmp_path / "out.txt").read_text()
    assert "What sales sees in HubSpot now" in text
    assert "second sync: 0 write(s), 54 contact(s) unchanged" in text


def test_demo_command_exits_zero_and_explain_reads_its_kept_state(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    runner = CliRunner()
    out = runner.invoke(cli, ["demo", "--keep-state", str(db)])
    assert out.exit_code == 0, out.output
    assert "second sync: 0 write(s)" in out.output
    explained = runner.invoke(cli, ["--state", str(db), "explain", "riley.chen1987@gmail.com"])
    assert explained.exit_code == 0, explained.output
    assert "requested a demo ('Request a demo')" in explained.output
    assert "hand-raiser: Request a demo" in explained.output


def test_marketo_demo_gives_the_same_personas_and_an_idle_resync(tmp_path: Path) -> None:
    console = Console(file=open(tmp_path / "out.txt", "w"), width=200)  # noqa: SIM115
    try:
        result = run_demo(console, state_path=tmp_path / "m.db", now=NOW, crm="marketo")
    finally:
        console.file.close()
    assert result.first.status == "ok" and result.second.status == "ok"
    assert result.second.written == 0
    rows = {r["email"]: r for r in result.rows}
    dana = rows["dana.whitfield@acme-analytics.com"]
    assert dana["priority"] == "A1"  # leadPriority__c
    assert (dana["grade"], dana["score"], dana["stage"], dana["mql_reason"]) == (
        "A",
        "110",
        "MQL",
        "threshold",
    )
    assert rows["riley.chen1987@gmail.com"]["mql_reason"] == "hand-raiser: Request a demo"
    assert rows["taylor.brooks@globex.co.uk"]["stage"] == "SQL"
    text = (tmp_path / "out.txt").read_text()
    assert "What sales sees in Marketo now" in text
    # the same story as on HubSpot: accounts scored from the leads' company records, the
    # account values on each lead's fields, the two more MQLs at an MQA
    assert "by stage: Subscriber 5 · Open 29 · MQL 19 · SQL 1" in text
    assert "Accounts: 6 MQA of 12 scored; the 5 hottest here" in text
    assert "Northwind Data     A       174   MQA   4/4: " in text
    robin = rows["robin.hale@acme-analytics.com"]
    assert (robin["stage"], robin["mql_reason"]) == (
        "MQL",
        "account MQA: company:ACC-9001 (score 60 ≥ 60 at an MQA)",
    )
    # accountScore__c, accountGrade__c: as leadscore_account_score/_grade on HubSpot
    assert (robin["account_score"], robin["account_grade"]) == ("375", "A")


def test_crm_option_selects_the_marketo_demo() -> None:
    out = CliRunner().invoke(cli, ["--crm", "marketo", "demo"])
    assert out.exit_code == 0, out.output
    assert "Marketo sandbox with the demo data" in out.output
    assert "second sync: 0 write(s)" in out.output


def _demo_lines(*args: str, columns: str = "100") -> list[str]:
    """`leadscore demo` as printed, on the portal's own clock (NOW): scores that depend on
    where the wall clock stands in the day would otherwise move between runs."""
    import functools

    import connector.demo

    pinned = functools.partial(connector.demo.run_demo, now=NOW)
    with mock.patch.object(connector.demo, "run_demo", pinned):
        out = CliRunner().invoke(cli, ["demo", *args], env={"COLUMNS": columns})
    assert out.exit_code == 0, out.output
    return out.output.splitlines()


def test_demo_fits_a_100_column_screen_personas_first() -> None:
    lines = _demo_lines()
    # one screen: the contacts part in 37 lines (the priority column leaves the reasons a little
    # less room), and the accounts table in 8 (title, header, rule, five accounts one line each)
    # — 45 at 100 columns, a laptop terminal's height
    start = next(i for i, line in enumerate(lines) if line.startswith("Accounts: "))
    assert len(lines) - 8 <= 37 and len(lines) <= 45, "\n".join(lines)
    assert max(len(line) for line in lines) <= 100
    first = "\n".join(lines[:10])
    assert "dana.whitfield@acme-analytics.com" in first
    rows = [line.split() for line in lines if "@" in line and line.split()[0].count("@") == 1]
    got = {r[0]: (r[1], r[2], r[3]) for r in rows}
    # the six personas of the README, in its order, each whole on one line, with its priority
    # label (grade + engagement band), score and stage
    assert list(got) == [
        "dana.whitfield@acme-analytics.com",
        "riley.chen1987@gmail.com",
        "jordan.pike@outlook.com",
        "morgan@rivalscore.io",
        "taylor.brooks@globex.co.uk",
        "casey@initech.com",
    ]
    assert got["dana.whitfield@acme-analytics.com"] == ("A1", "110", "MQL")
    assert got["riley.chen1987@gmail.com"] == ("D1", "100", "MQL")
    assert got["jordan.pike@outlook.com"] == ("D3", "-75", "lead")
    assert got["morgan@rivalscore.io"] == ("D1", "145", "lead")
    assert got["taylor.brooks@globex.co.uk"] == ("A3", "0", "SQL")
    assert got["casey@initech.com"] == ("A3", "0", "lead")
    text = "\n".join(lines)
    assert "All 54 contacts by grade: A 6 · B 19 · C 13 · D 16" in text
    # two more MQLs than without accounts: grade A/B people with 60+ points at an MQA
    assert "by stage: subscriber 5 · lead 29 · MQL 19 · SQL 1" in text
    # the accounts table after the contacts: the MQAs, hottest first; Northwind Data's four
    # people (none an MQL alone) make an MQA together
    assert lines[start].rstrip() == (  # Wayne Enterprises, the sixth MQA, is not shown
        "Accounts: 6 MQA of 12 scored; the 5 hottest here (`leadscore accounts`, "
        "`explain --account DOMAIN`)"
    )
    assert [line.rstrip() for line in lines[start + 3 : start + 8]] == [
        "Acme Analytics     A       375   MQA   6/6: Hannah Foster (Marketing Operations "
        "Manager), Cameron L…",
        "Initech            B       275   MQA   4/5: Cameron Underwood (Marketing Intern), "
        "Devon Underwood (…",
        "Northwind Data     A       174   MQA   4/4: Marcus Lee (Marketing Manager), Elena "
        "Marsh (VP Marketi…",
        "Hooli              B       154   MQA   3/3: Lucas Lindgren (Software Engineer), "
        "Skyler Bennett (Dem…",
        "Globex             B       131   MQA   2/3: Hayden Foster (Sales Development "
        "Representative), Rowan…",
    ]
    assert lines[start + 8].startswith("sync hubspot ok: pulled 54, new events 0")
    assert "…and 48 more: `leadscore demo --all` lists them" in text


def test_demo_all_lists_everyone_and_never_breaks_an_email() -> None:
    lines = _demo_lines("--all", columns="80")
    assert max(len(line) for line in lines) <= 80
    firsts = [line.split()[0] for line in lines if line.split() and "@" in line.split()[0]]
    assert len(firsts) == 54
    portal = json.loads(DEMO_FIXTURE.read_text())
    emails = {c["properties"]["email"] for c in portal["contacts"]}
    # each address whole, or its beginning cut with an ellipsis, never broken across lines
    for first in firsts:
        assert first in emails or (
            first.endswith("…") and any(e.startswith(first[:-1]) for e in emails)
        ), first
    assert any(f.endswith("…") for f in firsts)  # 80 columns: the longest are cut


def _pinned_demo(args: list[str]) -> Any:
    """`leadscore ARGS` with the demo on the portal's own clock (NOW), 400 columns wide."""
    import functools

    import connector.demo

    pinned = functools.partial(connector.demo.run_demo, now=NOW)
    with mock.patch.object(connector.demo, "run_demo", pinned):
        return CliRunner().invoke(cli, args, env={"COLUMNS": "400"})


def _demo_rows(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    with closing(sqlite3.connect(db)) as conn:
        return {
            "jobs": conn.execute("SELECT name, state FROM jobs").fetchall(),
            "runs": conn.execute("SELECT id, crm, kind, status FROM runs ORDER BY id").fetchall(),
            "counts": conn.execute(
                "SELECT (SELECT count(*) FROM contacts), (SELECT count(*) FROM scores), "
                "(SELECT count(*) FROM account_scores)"
            ).fetchall(),
        }


# what a demo leaves in the state DB it keeps: its two syncs, and the row marking it the demo's
DEMO_ROWS = {
    "jobs": [("demo", '{"crm":"hubspot","last_run":2}')],
    "runs": [(1, "hubspot", "sync", "ok"), (2, "hubspot", "sync", "ok")],
    "counts": [(55, 54, 12)],
}


@pytest.mark.parametrize("where", ["before", "after"])
def test_the_state_option_keeps_the_demos_state_db_as_keep_state_does(
    tmp_path: Path, where: str
) -> None:
    db = tmp_path / "demo.db"
    args = ["--state", str(db), "demo"] if where == "before" else ["demo", "--state", str(db)]
    res = _pinned_demo(args)
    assert res.exit_code == 0, res.output
    assert res.stderr == ""
    assert res.stdout.splitlines()[-1] == (
        f"State DB kept at {db}; the demo scored accounts, so give later commands "
        f"LEADSCORE_ACCOUNTS=true as it did: try `LEADSCORE_ACCOUNTS=true leadscore --state {db} "
        "explain casey@initech.com`"
    )
    assert _demo_rows(db) == DEMO_ROWS
    # the command it suggests: Casey's stored score with its account's part, and no note
    explained = CliRunner().invoke(
        cli,
        ["--state", str(db), "explain", "casey@initech.com"],
        env={"LEADSCORE_ACCOUNTS": "true", "COLUMNS": "200"},
    )
    assert explained.exit_code == 0, explained.output
    assert "note:" not in explained.output
    assert "account company:9002 Initech (initech.com)" in explained.output
    # without the setting it notes that account scoring is off
    bare = CliRunner().invoke(cli, ["--state", str(db), "explain", "casey@initech.com"])
    assert bare.exit_code == 0, bare.output
    assert bare.output.startswith("note: account scoring is off (LEADSCORE_ACCOUNTS)")


def test_state_and_keep_state_naming_two_files_are_refused_before_anything_runs(
    tmp_path: Path,
) -> None:
    one, two = tmp_path / "one.db", tmp_path / "two.db"
    for args in (
        ["--state", str(one), "demo", "--keep-state", str(two)],
        ["demo", "--state", str(one), "--keep-state", str(two)],
    ):
        res = CliRunner().invoke(cli, args)
        assert res.exit_code == 2, res.output
        assert res.stdout == ""
        assert res.stderr == (
            f"error: --state {one} and --keep-state {two} name two state DBs; the demo keeps "
            "one: give one of them\n"
        )
        assert list(tmp_path.iterdir()) == []


def test_state_and_keep_state_naming_one_file_twice_is_that_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    res = _pinned_demo(["--state", "demo.db", "demo", "--keep-state", str(tmp_path / "demo.db")])
    assert res.exit_code == 0, res.output
    assert _demo_rows(tmp_path / "demo.db") == DEMO_ROWS


def _a_state_db(path: Path) -> None:
    """A state DB the worker has used: a sync run recorded, nothing of the demo's."""
    from connector.state.store import StateStore

    with StateStore.open(path) as store:
        store.start_run("hubspot", "sync", at=NOW)


@pytest.mark.parametrize("option", ["--state before", "--state", "--keep-state"])
@pytest.mark.parametrize("kind", ["state DB", "demo DB used since", "not a DB"])
def test_the_demo_never_writes_into_another_state_db(
    tmp_path: Path, option: str, kind: str
) -> None:
    """An existing file that is not a state DB an earlier demo kept, untouched since, is
    refused (exit 2), byte for byte as it was, no -wal or -shm file made beside it."""
    from connector.state.store import StateStore

    db = tmp_path / "state.db"
    if kind == "state DB":
        _a_state_db(db)
    elif kind == "not a DB":
        db.write_text("my notes\n")
    else:
        assert _pinned_demo(["demo", "--keep-state", str(db)]).exit_code == 0
        with StateStore.open(db) as store:  # then a sync of a real portal in it
            store.start_run("hubspot", "sync", at=NOW)
    before = db.read_bytes()
    flag = option.removesuffix(" before")
    args = ["--state", str(db), "demo"] if option.endswith("before") else ["demo", flag, str(db)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2, res.output
    assert res.stdout == ""
    assert res.stderr == (
        f"error: {db} exists and is not a state DB an earlier demo kept (closed and unused "
        "since); the demo writes into no other file: give a new path, or remove it yourself\n"
    )
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.db"]


def test_a_state_db_an_earlier_demo_kept_is_started_afresh(tmp_path: Path) -> None:
    """The demo again on its own state DB: the same full sync as the first time (synced into
    its old state, the second demo's portal would meet the first one's cursors)."""
    db = tmp_path / "demo.db"
    first = _pinned_demo(["demo", "--keep-state", str(db)])
    assert first.exit_code == 0, first.output
    again = _pinned_demo(["--state", str(db), "demo"])
    assert again.exit_code == 0, again.output
    lines = again.stdout.splitlines()
    assert lines[1] == f"(state DB {db}: an earlier demo's, started afresh)"
    assert lines[2] == "init-properties: created group lead_scoring and 18 properties"
    full_sync = (
        "sync hubspot ok: pulled 54, new events 2,342, scored 54, written 54 (+12 companies), "
        "repaired 0, unchanged 0, dead-lettered 0, API calls 11 (0 rate-limited)"
    )
    # the same first sync as the first demo's (to its duration)
    assert lines[3].rsplit(", ", 1)[0] == full_sync
    assert first.stdout.splitlines()[2].rsplit(", ", 1)[0] == full_sync
    assert _demo_rows(db) == DEMO_ROWS


def test_demo_help_says_what_state_does() -> None:
    res = CliRunner().invoke(cli, ["demo", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert (
        "--keep-state FILE Keep the demo's state DB at this path (to try explain, report, ...): "
        "a new file, or one an earlier demo kept (started afresh); any other state DB is "
        "refused, never written." in text
    )
    assert (
        "--state FILE The same as --keep-state (also before the command: `leadscore --state "
        "PATH demo`). Without either, a temporary state DB: LEADSCORE_STATE_PATH is never used."
        in text
    )


def test_the_demo_clock_is_the_latest_anchor_time_of_day_up_to_now() -> None:
    from datetime import UTC, datetime, timedelta

    from connector.demo import DEMO_ANCHOR, demo_clock

    noon7, noon8 = datetime(2026, 12, 7, 12, tzinfo=UTC), datetime(2026, 12, 8, 12, tzinfo=UTC)
    assert datetime(2026, 11, 1, 12, tzinfo=UTC) == DEMO_ANCHOR
    for fixture in (DEMO_FIXTURE, DEMO_FIXTURE.with_name("marketo_demo_instance.json")):
        anchor = json.loads(fixture.read_text())["anchor"]
        assert datetime.fromisoformat(anchor) == DEMO_ANCHOR  # both shift by whole days
    day = datetime(2026, 12, 8, tzinfo=UTC)
    assert demo_clock(day) == demo_clock(day + timedelta(hours=11, minutes=59)) == noon7
    assert demo_clock(day + timedelta(hours=12)) == noon8
    assert demo_clock(day + timedelta(hours=23, minutes=59)) == noon8
    assert demo_clock(DEMO_ANCHOR - timedelta(seconds=1)) == DEMO_ANCHOR - timedelta(days=1)


@pytest.mark.parametrize("crm", ["hubspot", "marketo"])
def test_the_demo_scores_the_same_at_any_hour(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crm: str
) -> None:
    """Run at 01:30 and at 19:30 UTC (the demo clock a day and a half apart), the demo
    prints the same scores: its clock is the data's. With the real time as its clock, events
    near midnight moved to another UTC day, and "visits on 3 days" fired at some hours only
    (Globex's account score read 131 at 01:30 and 144 at 19:30)."""
    from datetime import UTC, datetime

    import connector.demo as demo

    seen: list[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], str]] = []
    for hour in (1, 19):
        real = datetime(2026, 12, 8, hour, 30, tzinfo=UTC)
        monkeypatch.setattr(demo, "_real_now", lambda real=real: real)
        db = tmp_path / f"{crm}-{hour}.db"
        console = Console(file=open(tmp_path / "out.txt", "w"), width=200)  # noqa: SIM115
        try:
            run_demo(console, state_path=db, crm=crm)
        finally:
            console.file.close()
        out = (tmp_path / "out.txt").read_text()
        with closing(sqlite3.connect(db)) as conn:
            contacts = conn.execute(
                "SELECT contact_id, score, grade, mql, reasons FROM scores ORDER BY 1"
            ).fetchall()
            accounts = conn.execute(
                "SELECT account_id, score, grade, mqa, reasons FROM account_scores ORDER BY 1"
            ).fetchall()
        clock = "2026-12-07 12:00 UTC" if hour == 1 else "2026-12-08 12:00 UTC"
        assert f"its clock at {clock}" in out
        # what follows the sandbox's line, but the syncs' durations and the state DB's name
        shown = re.sub(r"\d+\.\ds\n", "", out.split("\n", 1)[1].replace(str(db), "DB"))
        seen.append((contacts, accounts, shown))
    assert len(seen[0][0]) == 54 and len(seen[0][1]) == 12
    assert seen[0] == seen[1]  # scores, reasons, and every line printed
