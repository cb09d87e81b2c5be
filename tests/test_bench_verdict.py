"""`bench/accounts.py full` judges the accounts' overhead target on a bootstrap interval of
the median of its rounds' ratios, not on one fastest pass."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    sys.path.insert(0, str(BENCH))  # the bench imports its `_harness` as a sibling
    try:
        spec = importlib.util.spec_from_file_location("bench_accounts", BENCH / "accounts.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def test_one_round_is_its_own_interval(bench: ModuleType) -> None:
    assert bench.median_interval([1.2]) == (1.2, 1.2)


def test_the_interval_holds_the_median_and_lies_within_the_rounds(bench: ModuleType) -> None:
    # the twenty-third session's first full-size run
    rounds = [1.134, 1.121, 1.182, 1.304, 1.230, 1.202, 1.174, 1.172]
    low, high = bench.median_interval(rounds)
    assert (low, high) == (1.153, 1.216)
    assert min(rounds) <= low <= 1.178 <= high <= max(rounds)
    assert bench.median_interval(rounds) == (low, high)  # seeded: the same rounds, the same


def test_the_verdict_is_met_only_when_the_whole_interval_clears_the_target(
    bench: ModuleType,
) -> None:
    assert bench.overhead_verdict(1.10, 1.15).startswith("met")
    assert bench.overhead_verdict(1.151, 1.20).startswith("not met")
    assert bench.overhead_verdict(1.137, 1.197).startswith("undecided")
    low, high = bench.median_interval([1.10, 1.12, 1.11, 1.13, 1.09])
    assert bench.overhead_verdict(low, high).startswith("met")
    low, high = bench.median_interval([1.16, 1.18, 1.17, 1.25, 1.21])
    assert bench.overhead_verdict(low, high).startswith("not met")
