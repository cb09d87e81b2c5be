"""The console factory: the terminal's width, else COLUMNS, else 100."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.table import Table

from connector.console import DEFAULT_WIDTH, fit_table, make_console, output_width


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_piped_output_honours_columns_else_the_default() -> None:
    assert output_width(io.StringIO(), {"COLUMNS": "72"}) == 72
    assert output_width(io.StringIO(), {}) == DEFAULT_WIDTH == 100
    assert output_width(io.StringIO(), {"COLUMNS": "wide"}) == 100


def test_a_terminal_is_asked_for_its_width() -> None:
    assert output_width(_Tty(), {}) is None
    assert output_width(_Tty(), {"COLUMNS": "90"}) == 90


def test_the_console_wraps_at_that_width(monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.StringIO()
    monkeypatch.setenv("COLUMNS", "40")
    console = make_console(file=buf)
    console.print("word " * 20)
    lines = buf.getvalue().splitlines()
    assert console.width == 40
    assert len(lines) == 3 and max(len(x.rstrip()) for x in lines) <= 40


def _rules() -> Table:
    table = Table(title="Rules")
    table.add_column("rule", no_wrap=True)
    table.add_column("converted", justify="right")
    table.add_column("verdict")
    table.add_row("webinar_attended:full", "38.8% [31%–47%]", "no clear effect")
    table.add_row("demo_request", "52.9% [37%–69%]", "helps")
    return table


def _shown(table: Table, width: int, fit: bool = True) -> list[str]:
    buf = io.StringIO()
    console = Console(file=buf, width=width)
    console.print(fit_table(console, table) if fit else table)
    return [line.rstrip() for line in buf.getvalue().splitlines()]


def test_a_table_that_fits_is_left_as_it_is() -> None:
    assert _shown(_rules(), 70) == _shown(_rules(), 70, fit=False)
    assert (
        _shown(_rules(), 70)[4] == "│ webinar_attended:full │ 38.8% [31%–47%] │ no clear effect │"
    )


def test_a_narrow_table_wraps_at_spaces_and_cuts_no_word() -> None:
    assert _shown(_rules(), 40, fit=False)[2:6] == [  # rich alone cuts words
        "┃ rule                  ┃ conv… ┃ ver… ┃",
        "┡━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━╇━━━━━━┩",
        "│ webinar_attended:full │ 38.8% │ no   │",
        "│                       │ [31%… │ cle… │",
    ]
    assert _shown(_rules(), 50) == [  # borders kept: the words fit with them
        "                      Rules",
        "┏━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━┳━━━━━━━━━━┓",
        "┃ rule                  ┃   converted ┃ verdict  ┃",
        "┡━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━╇━━━━━━━━━━┩",
        "│ webinar_attended:full │       38.8% │ no clear │",
        "│                       │   [31%–47%] │ effect   │",
        "│ demo_request          │       52.9% │ helps    │",
        "│                       │   [37%–69%] │          │",
        "└───────────────────────┴─────────────┴──────────┘",
    ]
    assert _shown(_rules(), 40) == [  # no borders, one space between the columns
        "                 Rules",
        "rule                  converted verdict",
        "─" * 40,
        "webinar_attended:full     38.8% no clear",
        "                      [31%–47%] effect",
        "demo_request              52.9% helps",
        "                      [37%–69%]",
    ]
