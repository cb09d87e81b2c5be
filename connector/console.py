"""One console factory for every command: it fits the terminal.

On a terminal the terminal's width; piped or redirected, `COLUMNS` when set, else
`DEFAULT_WIDTH`. Tables keep identifiers
(e-mails, URLs) on one line, cut with an ellipsis (`overflow="ellipsis", no_wrap=True`) rather
than broken across lines.
"""

from __future__ import annotations

import os
import sys
from typing import IO

from rich.console import Console

DEFAULT_WIDTH = 100  # piped output without COLUMNS


def output_width(
    stream: IO[str] | None = None, environ: dict[str, str] | None = None
) -> int | None:
    """The width to render at: None (rich asks the terminal) on a TTY, else `COLUMNS` or
    `DEFAULT_WIDTH`."""
    env = os.environ if environ is None else environ
    columns = (env.get("COLUMNS") or "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    target = sys.stdout if stream is None else stream
    try:
        if target.isatty():
            return None
    except (AttributeError, ValueError):  # a closed or odd stream
        pass
    return DEFAULT_WIDTH


def make_console(*, stderr: bool = False, file: IO[str] | None = None) -> Console:
    """A console for human output that fits where it is going."""
    stream = file if file is not None else (sys.stderr if stderr else sys.stdout)
    return Console(file=file, stderr=stderr, width=output_width(stream), soft_wrap=False)
