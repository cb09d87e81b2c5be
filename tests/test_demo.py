"""`leadscore demo`, the newcomer's first command, end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

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
    assert result.first.written == result.first.scored == 50
    assert result.second.written == 0
    assert result.second.api_calls_by_kind.get("contacts.batch_update", 0) == 0
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
    assert "leadscore_score" in ",".join(result.created)
    text = (tmp_path / "out.txt").read_text()
    assert "What sales sees in HubSpot now" in text
    assert "second sync: 0 write(s), 50 contact(s) unchanged" in text


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
    assert "What sales sees in Marketo now" in (tmp_path / "out.txt").read_text()


def test_crm_option_selects_the_marketo_demo() -> None:
    out = CliRunner().invoke(cli, ["--crm", "marketo", "demo"])
    assert out.exit_code == 0, out.output
    assert "Marketo sandbox with the demo data" in out.output
    assert "second sync: 0 write(s)" in out.output


def _demo_lines(*args: str, columns: str = "100") -> list[str]:
    out = CliRunner().invoke(cli, ["demo", *args], env={"COLUMNS": columns})
    assert out.exit_code == 0, out.output
    return out.output.splitlines()


def test_demo_fits_a_100_column_screen_personas_first() -> None:
    lines = _demo_lines()
    assert len(lines) <= 40, "\n".join(lines)
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
    assert "All 50 contacts by grade: A 5 · B 17 · C 12 · D 16" in text
    assert "by stage: subscriber 6 · lead 26 · MQL 17 · SQL 1" in text
    assert "…and 44 more: `leadscore demo --all` lists them" in text


def test_demo_all_lists_everyone_and_never_breaks_an_email() -> None:
    lines = _demo_lines("--all", columns="80")
    assert max(len(line) for line in lines) <= 80
    firsts = [line.split()[0] for line in lines if line.split() and "@" in line.split()[0]]
    assert len(firsts) == 50
    portal = json.loads(DEMO_FIXTURE.read_text())
    emails = {c["properties"]["email"] for c in portal["contacts"]}
    # each address whole, or its beginning cut with an ellipsis, never broken across lines
    for first in firsts:
        assert first in emails or (
            first.endswith("…") and any(e.startswith(first[:-1]) for e in emails)
        ), first
    assert any(f.endswith("…") for f in firsts)  # 80 columns: the longest are cut
