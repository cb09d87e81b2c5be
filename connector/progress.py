"""The progress bar of the long commands (`backfill`, `preview-rescore`, `rescore`): one column
layout (spinner, label, bar, done/total, elapsed, ETA) built in one place."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def progress_bar(
    console: Console,
    *,
    transient: bool,
    bold_label: bool = False,
    note: bool = False,
    auto_refresh: bool = True,
    disable: bool = False,
) -> Progress:
    """A rich `Progress` with the leadscore columns. `note`: a text column after the count,
    from each task's `note` field (the backfill's pages); `transient`: gone when stopped."""
    columns: list[ProgressColumn | str] = [
        SpinnerColumn(),
        TextColumn("[bold]{task.description}" if bold_label else "{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
    ]
    if note:
        columns.append(TextColumn("{task.fields[note]}"))
    columns += [TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    return Progress(
        *columns,
        console=console,
        transient=transient,
        auto_refresh=auto_refresh,
        disable=disable,
    )


@contextlib.contextmanager
def contacts_progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar with the time left, for work over `total` contacts: `advance(n)` as
    `n` more are done. On standard error, and only on a terminal (logs and pipes get the
    summary lines alone); gone when the work ends. Redrawn by `advance` alone, with no
    refresh thread: the work forks worker processes, and a fork must not copy a lock that
    another thread holds."""
    err = Console(stderr=True)
    bar = progress_bar(err, transient=True, auto_refresh=False, disable=not err.is_terminal)
    with bar:
        task = bar.add_task(label, total=total)
        bar.refresh()

        def advance(n: int) -> None:
            bar.advance(task, n)
            bar.refresh()

        yield advance
