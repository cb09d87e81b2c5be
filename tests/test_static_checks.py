"""The project's static checks run in CI: `mypy --strict connector tests bench` (which also
holds the records of connector/types.py immutable: assigning a field is a type error; the
tests and benchmarks call the code as typed), `ruff check .` and `ruff format --check .`. A
failure prints the checker's own report."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_mypy_strict_is_clean(tmp_path: Path) -> None:
    proc = _run(
        [
            *(sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path)),
            *("connector", "tests", "bench"),
        ]
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("Success: no issues found")


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]])
def test_ruff_is_clean(args: list[str]) -> None:
    proc = _run([sys.executable, "-m", "ruff", *args, "--no-cache"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
