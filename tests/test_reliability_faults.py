"""Faults: a full sync of the demo portal under injected 5xx, timeouts, dropped connections,
writes applied but unanswered and 429 bursts ends exactly like a clean run, every write applied
once. Each test is one row of docs/reliability.md (see tests/reliability_matrix.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .reliability_matrix import names, run_scenario


@pytest.mark.parametrize("name", names("Faults"))
def test_fault(name: str, tmp_path: Path) -> None:
    run_scenario(name, tmp_path)
