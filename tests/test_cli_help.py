"""`leadscore --help`: sections, an example and described options for every command, the exit
codes table, shell completion."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from connector.cli import cli
from connector.cli_help import SECTIONS
from connector.errors import EXIT_CODES


def _walk(cmd: click.Command, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], click.Command]]:
    out = [(path, cmd)]
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            out.extend(_walk(sub, (*path, name)))
    return out


def test_top_help_groups_the_commands_and_lists_the_exit_codes() -> None:
    out = CliRunner().invoke(cli, ["--help"], env={"COLUMNS": "100"})
    assert out.exit_code == 0
    text = out.output
    titles = [f"{title}:" for title, _ in SECTIONS]
    assert [line for line in text.splitlines() if line in titles] == titles
    for title, names in SECTIONS:
        block = text.split(f"{title}:\n", 1)[1].split("\n\n", 1)[0]
        listed = [line.split()[0] for line in block.splitlines() if line[2] != " "]
        assert listed == [n for n in names if n in cli.commands], title
    assert "Other:" not in text  # every command has its section
    assert "Exit codes (every command):" in text
    for code, meaning in EXIT_CODES.items():
        assert f"{code:>3}  {meaning}" in text
    assert "_LEADSCORE_COMPLETE=bash_source leadscore" in text
    assert max(len(line) for line in text.splitlines()) <= 100


def test_every_command_has_help_an_example_and_every_option_a_description() -> None:
    commands = _walk(cli, ())
    assert len(commands) >= 18
    for path, cmd in commands:
        name = " ".join(path) or "leadscore"
        assert (cmd.help or "").strip(), f"{name}: no help"
        for param in cmd.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert (param.help or "").strip(), f"{name} {param.opts[0]}: no help"
        if path:
            assert f"$ leadscore {name}" in (cmd.epilog or ""), f"{name}: no example"
            shown = CliRunner().invoke(cli, [*path, "--help"])
            assert shown.exit_code == 0, name
            assert f"  $ leadscore {name}" in shown.output


def test_the_bash_completion_script_generates_and_completes() -> None:
    runner = CliRunner()
    script = runner.invoke(
        cli, [], prog_name="leadscore", env={"_LEADSCORE_COMPLETE": "bash_source"}
    )
    assert script.exit_code == 0
    assert "_leadscore_completion()" in script.output
    assert "complete -o nosort -F _leadscore_completion leadscore" in script.output
    words = runner.invoke(
        cli,
        [],
        prog_name="leadscore",
        env={
            "_LEADSCORE_COMPLETE": "bash_complete",
            "COMP_WORDS": "leadscore de",
            "COMP_CWORD": "1",
        },
    )
    assert words.output.split() == ["plain,dead-letters", "plain,demo"]


def test_ctrl_c_exits_130_whatever_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connector.ops import status
    from connector.state.store import StateStore

    with StateStore.open(tmp_path / "s.db"):
        pass

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(status, "build_status", interrupted)
    res = CliRunner().invoke(cli, ["--state", str(tmp_path / "s.db"), "status"])
    assert res.exit_code == 130 == max(EXIT_CODES)
    assert res.stderr == "interrupted\n"


def test_python_dash_m_connector_is_the_leadscore_command(tmp_path: Path) -> None:
    """`python -m connector` runs the same CLI (a checkout without the script on PATH), with
    its one-line errors and exit codes."""
    import subprocess
    import sys

    helped = subprocess.run(
        [sys.executable, "-m", "connector", "--help"], capture_output=True, text=True, timeout=60
    )
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("Usage: python -m connector [OPTIONS] COMMAND [ARGS]...")
    missing = tmp_path / "none.db"
    failed = subprocess.run(
        [sys.executable, "-m", "connector", "status", "--state", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert failed.returncode == 1
    assert failed.stderr == (
        f"error: no state DB at {missing}; run `leadscore sync` first (or pass --state PATH)\n"
    )
