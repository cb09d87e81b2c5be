"""`leadscore --help`: sections, an example and described options for every command, the exit
codes table, shell completion."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from connector.cli import LAZY, cli
from connector.cli_help import SECTIONS, LazyGroup
from connector.errors import EXIT_CODES


def _walk(cmd: click.Command, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], click.Command]]:
    out = [(path, cmd)]
    if isinstance(cmd, click.Group):
        every = cmd.load_all() if isinstance(cmd, LazyGroup) else cmd.commands
        for name, sub in sorted(every.items()):
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
        assert listed == [n for n in names if n in cli.list_commands(click.Context(cli))], title
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


def test_the_lazy_commands_are_listed_with_their_own_short_help() -> None:
    """`leadscore --help` lists a lazy command from `LAZY`'s text without importing it: the
    text is the command's own short help, as click words it from its docstring."""
    assert len(LAZY) >= 11
    every: list[tuple[LazyGroup, str]] = [(g, name) for g, name, *_ in LAZY] + [(cli, "enrich")]
    for group, name in every:
        listed = group.lazy[name][1]
        command = group.get_command(click.Context(group), name)
        assert command is not None, name
        assert listed == command.get_short_help_str(90), name


LAZY_MODULES = (
    "connector.calibrate.cli",
    "connector.enrich.cli",
    "connector.sandbox.hubspot_cli",
    "connector.sandbox.marketo_cli",
    "connector.ops.analysis",
    "connector.ops.report",
    "connector.worker.cli",
    "connector.ops.optimize",
)


def _loaded_after(args: list[str]) -> set[str]:
    """Which of `LAZY_MODULES` a fresh interpreter has imported after running the CLI with
    `args` (its output discarded)."""
    import subprocess
    import sys

    code = (
        "import sys, contextlib, io\n"
        "from connector.cli import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    try: cli({args!r})\n"
        "    except SystemExit: pass\n"
        f"print(','.join(m for m in {LAZY_MODULES!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(filter(None, out.stdout.strip().split(",")))


def test_a_command_imports_only_its_own_module() -> None:
    assert _loaded_after(["--help"]) == set()
    assert _loaded_after(["status", "--help"]) == {"connector.ops.analysis"}
    assert _loaded_after(["sandbox", "--help"]) == set()
    assert _loaded_after(["sandbox", "marketo", "--help"]) == {"connector.sandbox.marketo_cli"}


def test_a_lazy_command_takes_the_global_options_after_its_name(tmp_path: Path) -> None:
    """`--state` and `--crm` after a lazy command's name, as after an eager one's."""
    missing = tmp_path / "none.db"
    out = CliRunner().invoke(cli, ["status", "--crm", "marketo", "--state", str(missing)])
    assert out.exit_code == 1  # as before the command was lazy: the --state given was read
    assert f"no state DB at {missing};" in out.output
    shown = CliRunner().invoke(cli, ["rescore", "--help"])
    assert "--allow-fresh-state" in shown.output and "--state FILE" in shown.output


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
