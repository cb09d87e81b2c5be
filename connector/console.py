"""One console factory for every command: it fits the terminal.

On a terminal the terminal's width; piped or redirected, `COLUMNS` when set, else
`DEFAULT_WIDTH`. Tables keep identifiers
(e-mails, URLs) on one line, cut with an ellipsis (`overflow="ellipsis", no_wrap=True`) rather
than broken across lines.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import IO

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.measure import Measurement
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

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


# Lighter layouts `fit_table` falls back to, in order, when a table's words do not fit with its
# own borders and padding: no borders but the header's rule, then a gap of two, then of one.
_LIGHTER: tuple[tuple[int, int, int, int], ...] = ((0, 1, 0, 1), (0, 1, 0, 0), (0, 0, 0, 0))


def fit_table(console: Console, table: Table) -> Table:
    """`table` laid out to fit `console` without cutting a word.

    rich shrinks the widest columns of a table that is too wide, down to widths that cut
    words (`webinar_a…`, `[37%–6…`). Here each column keeps at least its longest word (a
    `no_wrap` column its longest line) and wraps at spaces; the room left goes, a little at a
    time, where it saves the most lines, then to what still wraps. When even the words do not
    fit, the table loses its borders (the header's rule stays) and then narrows the gap
    between columns to two spaces, then one. A table that fits as it is is left alone; one
    whose words fit in no layout is left to rich."""
    cols = table.columns
    if not cols:
        return table
    options = console.options
    low: list[int] = []
    natural: list[int] = []
    texts: list[list[str]] = []  # per column: the header, then each row's cell, as plain text
    for col in cols:
        cells = [col.header, *col.cells] if table.show_header else list(col.cells)
        sizes = [Measurement.get(console, options, cell) for cell in cells] or [Measurement(1, 1)]
        floor = max(col.min_width or 0, 1)
        low.append(max(floor, *(m.maximum if col.no_wrap else m.minimum for m in sizes)))
        natural.append(max(low[-1], *(m.maximum for m in sizes)))
        texts.append([_plain(console, cell) for cell in cells])
    for layout in (None, *_LIGHTER):
        if layout is not None:
            table.box, table.show_edge, table.pad_edge = box.SIMPLE_HEAD, False, False
            table.padding = layout
        room = console.width - _chrome(table)
        if sum(natural) <= room:
            return table
        if sum(low) <= room:
            for col, width in zip(cols, _spread(texts, low, natural, room), strict=True):
                col.width = width
            return table
    return table


def _chrome(table: Table) -> int:
    """The columns a table's borders and padding take (as rich counts them)."""
    _, right, _, left = Padding.unpack(table.padding)
    n = len(table.columns)
    pads = n * (left + right) - (0 if table.pad_edge else left + right)
    lines = (2 if table.box and table.show_edge else 0) + (n - 1 if table.box else 0)
    return pads + lines


def _plain(console: Console, cell: object) -> str:
    if isinstance(cell, Text):
        return cell.plain
    if isinstance(cell, str):
        return console.render_str(cell).plain
    return ""  # another renderable: one line, as far as the spread knows


@functools.lru_cache(maxsize=4096)
def _lines(text: str, width: int) -> int:
    """How many lines `text` takes wrapped at spaces to `width` (a longer word: one line)."""
    count = 0
    for para in text.split("\n"):
        count += 1
        used = 0
        for word in para.split():
            size = cell_len(word)
            if used and used + 1 + size > width:
                count += 1
                used = size
            else:
                used += size + (1 if used else 0)
    return count


def _spread(texts: list[list[str]], low: list[int], natural: list[int], room: int) -> list[int]:
    """Widths within `room`, from the natural ones down to no less than `low`: each step
    narrows the column that loses the fewest lines per column of width it gives up (a row is
    as tall as its tallest cell, so a cell that wraps beside a taller one costs nothing)."""
    n, rows = len(low), len(texts[0])
    widths = list(natural)
    tall = {(i, w): [_lines(t, w) for t in texts[i]] for i in range(n) for w in (widths[i],)}
    while (excess := sum(widths) - room) > 0:
        best: tuple[float, int, int] | None = None  # (lines lost per column, column, step)
        for i in range(n):
            rest = [max([tall[j, widths[j]][r] for j in range(n) if j != i], default=1)
                    for r in range(rows)]  # fmt: skip
            now = sum(map(max, rest, tall[i, widths[i]]))
            for step in range(1, min(excess, widths[i] - low[i]) + 1):
                w = widths[i] - step
                if (i, w) not in tall:
                    tall[i, w] = [_lines(t, w) for t in texts[i]]
                cost = (sum(map(max, rest, tall[i, w])) - now) / step
                if best is None or cost < best[0] or (cost == best[0] and step > best[2]):
                    best = (cost, i, step)
        if best is None:  # cannot happen while sum(low) <= room
            break
        widths[best[1]] -= best[2]
    return widths
