"""Security: secrets never leak, webhook signatures are checked in constant time with a replay
window, SQL is parameterized, files are owner-only, sandboxes bind loopback only (the Docker
image's non-root user is tests/test_dockerfile.py). Each test is one row of
docs/reliability.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from .reliability_matrix import names, run_scenario


@pytest.mark.parametrize("name", names("Security"))
def test_security(name: str, tmp_path: Path) -> None:
    run_scenario(name, tmp_path)
