"""`leadscore --help`: commands grouped by what an admin is doing, an example per command, the
exit codes of every command, shell completion; and Ctrl-C's exit code, the same everywhere."""

from __future__ import annotations

import sys
from collections.abc import Callable, MutableMapping
from typing import Any

import click

from connector.errors import EXIT_CODES

EXIT_INTERRUPTED = 130

SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Try it", ("demo",)),
    ("Set-up", ("init-properties", "init-model", "validate-model", "sandbox")),
    ("Daily", ("sync", "run", "backfill", "status")),
    ("Upkeep", ("optimize",)),
    ("Model changes", ("rescore", "simulate", "calibrate")),
    ("Diagnosis", ("explain", "accounts", "report", "dead-letters", "enrich", "score")),
)

# One example (or two) per command, shown under its --help.
EXAMPLES: dict[str, tuple[str, ...]] = {
    "demo": ("leadscore demo", "leadscore demo --keep-state demo.db --all"),
    "init-properties": (
        "leadscore init-properties",
        "leadscore init-properties --model model.v2.yaml",
    ),
    "init-model": ("leadscore init-model ./model",),
    "validate-model": ("leadscore validate-model config/model.yaml",),
    "sandbox": ("leadscore sandbox hubspot --port 8765",),
    "sandbox hubspot": ("leadscore sandbox hubspot --port 8765",),
    "sandbox marketo": ("leadscore sandbox marketo --port 8766",),
    "sync": ("leadscore sync --dry-run", "leadscore sync --json"),
    "run": ("leadscore run --webhooks",),
    "backfill": ("leadscore backfill --since 2026-01-01",),
    "status": ("leadscore status", "leadscore status --json"),
    "optimize": ("leadscore optimize --check", "leadscore optimize"),
    "rescore": ("leadscore rescore --model model.v2.yaml --dry-run",),
    "simulate": ("leadscore simulate --threshold 90", "leadscore simulate --model model.v2.yaml"),
    "calibrate": ("leadscore calibrate --horizon 90d --out model.suggested.yaml",),
    "explain": (
        "leadscore explain dana.whitfield@acme-analytics.com",
        "leadscore explain --account acme-analytics.com",
    ),
    "accounts": ("leadscore accounts --top 10", "leadscore accounts --json"),
    "report": ("leadscore report --html report.html --since 2026-01-01",),
    "dead-letters": ("leadscore dead-letters", "leadscore dead-letters --retry"),
    "dead-letters dismiss": ("leadscore dead-letters dismiss 12 15",),
    "enrich": ("leadscore enrich pat@example.com --all",),
    "score": ("leadscore score --contacts contacts.jsonl --events events.jsonl --json",),
}


def exit_codes_text() -> str:
    lines = [f"  {code:>3}  {text}" for code, text in EXIT_CODES.items()]
    return "\b\nExit codes (every command):\n" + "\n".join(lines)


COMPLETION = (
    "\b\nShell completion (bash; zsh and fish alike with zsh_source, fish_source):\n"
    '  eval "$(_LEADSCORE_COMPLETE=bash_source leadscore)"'
)


class LazyGroup(click.Group):
    """A click group whose commands may be imported only when one is run or its own --help
    shown (`add_lazy`): `leadscore status` then loads the status command's module, not the
    calibrate, sandbox or enrich modules (~0.25 s of imports every command paid). A lazy
    command is listed by its name and short help until it is loaded; `on_load(name,
    command)` finishes each one as it comes (the global options)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # name -> (what builds the command, its short help as `--help`'s list shows it)
        self.lazy: dict[str, tuple[Callable[[], click.Command], str]] = {}
        self.on_load: Callable[[str, click.Command], None] | None = None
        self.example_prefix = ""  # a subgroup's: "sandbox " (`EXAMPLES` keys)

    def add_lazy(self, name: str, load: Callable[[], click.Command], short_help: str) -> None:
        self.lazy[name] = (load, short_help)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            self._load(cmd_name)
        return self.commands.get(cmd_name)

    def load_all(self) -> MutableMapping[str, click.Command]:
        """Every command, the lazy ones loaded (what a walk over all of them needs)."""
        for name in list(self.lazy):
            if name not in self.commands:
                self._load(name)
        return self.commands

    def listed_help(self, name: str) -> str | None:
        """The command's short help without loading a lazy one; None: no such command, or
        hidden."""
        if name not in self.commands and name in self.lazy:
            return self.lazy[name][1]
        cmd = self.commands.get(name)
        return None if cmd is None or cmd.hidden else cmd.get_short_help_str(90)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(n, text) for n in self.list_commands(ctx) if (text := self.listed_help(n))]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def _load(self, name: str) -> None:
        command = self.lazy[name][0]()
        self.add_command(command, name)
        if self.on_load is not None:
            self.on_load(name, command)

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        super().add_command(cmd, name)
        with_examples(cmd, name or cmd.name or "", self.example_prefix)


class SectionedGroup(LazyGroup):
    """A click group that lists its commands in SECTIONS, each with an example under its own
    --help (as its epilog)."""

    def invoke(self, ctx: click.Context) -> Any:
        """Ctrl-C exits 130 (the table's "interrupted") for every command, not click's 1."""
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        listed: set[str] = set()
        for title, names in SECTIONS:
            rows = self._rows(ctx, names)
            listed.update(names)
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)
        rest = [n for n in self.list_commands(ctx) if n not in listed]
        rows = self._rows(ctx, tuple(rest))
        if rows:
            with formatter.section("Other"):
                formatter.write_dl(rows)

    def _rows(self, ctx: click.Context, names: tuple[str, ...]) -> list[tuple[str, str]]:
        rows = []
        for name in names:
            text = self.listed_help(name)
            if text is not None:
                rows.append((name, text))
        return rows


def with_examples(cmd: click.Command, name: str, prefix: str = "") -> None:
    """Put the command's examples in its epilog (once), and its subcommands' in theirs."""
    key = f"{prefix}{name}"
    examples = EXAMPLES.get(key)
    if examples and not cmd.epilog:
        title = "Example" if len(examples) == 1 else "Examples"
        cmd.epilog = f"\b\n{title}:\n" + "\n".join(f"  $ {e}" for e in examples)
    if isinstance(cmd, click.Group):
        for sub_name, sub in cmd.commands.items():
            with_examples(sub, sub_name, prefix=f"{key} ")
