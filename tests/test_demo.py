"""`leadscore demo`, the newcomer's first command, end to end through the CLI."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from rich.console import Console

from connector.cli import cli
from connector.demo import run_demo

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
