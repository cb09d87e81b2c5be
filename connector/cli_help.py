"""`leadscore --help`: commands grouped by what an admin is doing, an example per command, the
exit codes of every command, shell completion; and Ctrl-C's exit code, the same everywhere."""

from __future__ import annotations

import sys
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


class SectionedGroup(click.Group):
    """A click group that lists its commands in SECTIONS, each with an example under its own
    --help (as its epilog)."""

    def invoke(self, ctx: click.Context) -> Any:
        """Ctrl-C exits 130 (the table's "interrupted") for every command, not click's 1."""
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        super().add_command(cmd, name)
        with_examples(cmd, name or cmd.name or "")

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
            cmd = self.get_command(ctx, name)
            if cmd is None or cmd.hidden:
                continue
            rows.append((name, cmd.get_short_help_str(90)))
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
