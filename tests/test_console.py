"""The console factory: the terminal's width, else COLUMNS, else 100."""

from __future__ import annotations

import io

import pytest

from connector.console import DEFAULT_WIDTH, make_console, output_width


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
