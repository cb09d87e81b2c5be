"""Crashes: a sync or a backfill killed at every request, in the middle of its transactions and,
as real `leadscore` processes, by SIGKILL, then restarted, ends exactly like a clean run with no
contact written twice. Each test is one row of docs/reliability.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from .reliability_matrix import names, run_scenario


@pytest.mark.parametrize("name", names("Crashes"))
def test_crash(name: str, tmp_path: Path) -> None:
    run_scenario(name, tmp_path)
