"""Plumbing every `leadscore` command shares: the global options accepted after the command
name too, and the top-level handler that turns a user error into one line.

Kept apart from `connector/cli.py`, which holds the commands themselves.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from connector.errors import ConnectorError

# (option, settings key, click type, help): given before the command name they reach the group;
# after it, each command's own copy stores the same override (the later one wins).
GLOBAL_OPTIONS: tuple[tuple[str, str, Any, str], ...] = (
    ("--crm", "crm", click.Choice(["hubspot", "marketo"]), "Overrides LEADSCORE_CRM."),
    ("--state", "state_path", click.Path(dir_okay=False), "State DB path (LEADSCORE_STATE_PATH)."),
)


# Commands that pull from the CRM into the state DB, where a new state DB meets the portal.
PULLING_COMMANDS = frozenset({"sync", "backfill", "run", "rescore"})
FRESH_STATE_HELP = (
    "Let a new, empty state DB sync a portal that already carries our scores (every contact "
    "is then written once) [LEADSCORE_ALLOW_FRESH_STATE]."
)


def _store(key: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, _: click.Parameter, value: Any) -> Any:
        if value is not None and value is not False:
            obj = ctx.find_root().obj
            if not isinstance(obj, dict):
                obj = ctx.find_root().obj = {}
            obj[key] = Path(value) if key == "state_path" else value
            if ctx.obj is not obj and isinstance(ctx.obj, dict):
                ctx.obj[key] = obj[key]
        return value

    return callback


def add_global_options(group: click.Group) -> None:
    """Give every command of `group` (not its sub-groups) `--crm` and `--state`, so that
    `leadscore sync --state x.db` works as `leadscore --state x.db sync` does, and the
    commands that pull (`PULLING_COMMANDS`) `--allow-fresh-state`."""
    for name, command in group.commands.items():
        with_global_options(name, command)


def with_global_options(name: str, command: click.Command) -> None:
    """`add_global_options` for one command of the top group (a group: left as it is, unless
    it runs itself as a command, as `dead-letters` does: then it and its commands)."""
    if isinstance(command, click.Group):
        if not command.invoke_without_command:
            return
        for sub_name, sub in command.commands.items():
            with_global_options(sub_name, sub)
    have = {o for p in command.params for o in getattr(p, "opts", [])}
    if name in PULLING_COMMANDS and "--allow-fresh-state" not in have:
        command.params.append(
            click.Option(
                ["--allow-fresh-state", "_global_allow_fresh_state"],
                is_flag=True,
                default=False,
                expose_value=False,
                is_eager=True,
                callback=_store("allow_fresh_state"),
                help=FRESH_STATE_HELP,
            )
        )
    for flag, key, kind, text in GLOBAL_OPTIONS:
        if flag in have:
            continue
        command.params.append(
            click.Option(
                [flag, f"_global_{key}"],
                type=kind,
                expose_value=False,
                is_eager=True,  # stored before the command's callback reads settings
                callback=_store(key),
                help=text,
            )
        )


def note_sink(log_json: bool) -> Callable[[str], None]:
    """Where a command shows the notes it has before any write (`open_app`'s `on_note`): a
    warning log record in JSON log mode (LEADSCORE_LOG_JSON), like every other line there;
    else a plain line on stderr."""
    if log_json:
        from connector.app import log_note

        return log_note
    return lambda line: click.echo(line, err=True)


def run_cli(group: click.Group) -> None:
    """Run the CLI; a user error anywhere ends in one line on stderr and a non-zero exit code,
    never a traceback. A file the user named that cannot be read or written (missing, a
    directory, no permission, disk full) is such an error; any other exception is a bug and
    keeps its traceback."""
    try:
        group(standalone_mode=True)
    except ConnectorError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except OSError as exc:
        if exc.filename is None and exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        name = f"{exc.filename}: " if exc.filename is not None else ""
        click.echo(f"error: {name}{exc.strerror or exc}", err=True)
        sys.exit(1)
