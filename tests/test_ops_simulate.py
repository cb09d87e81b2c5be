"""`leadscore simulate`: what-if numbers equal real rescoring, and nothing is written anywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import cli
from connector.model.loader import LoadedModel, load_model
from connector.ops.common import rescore_stored
from connector.ops.simulate import (
    curve_thresholds,
    nice_step,
    simulate_model,
    simulate_threshold,
    with_threshold,
)
from connector.pipeline import Enricher
from connector.state.store import StateStore

from .conftest import NOW, Harness
from .test_ops_rescore import THRESHOLD_80, changed_model, dump, model_file, read_only_enricher

CRM = "hubspot"


def qualified(store: StateStore, model: LoadedModel, enricher: Enricher) -> set[str]:
    """The contacts a real scoring with `model` makes MQL-qualified."""
    return {
        c.id
        for c, _, (r,) in rescore_stored(store, CRM, [model], enricher, NOW)
        if r.lifecycle.mql_reason is not None
    }


def test_threshold_what_if_equals_real_scoring_and_writes_nothing(
    demo: Harness, tmp_path: Path
) -> None:
    demo.pipeline.sync()
    model = load_model()
    enricher = read_only_enricher(demo.store)
    before = dump(demo.store)
    demo.sb.clear_log()
    sim = simulate_threshold(demo.store, CRM, model, enricher, NOW, 80)
    assert dump(demo.store) == before
    assert demo.sb.requests == []

    now_q = qualified(demo.store, model, enricher)
    file_q = qualified(demo.store, changed_model(tmp_path, "t80", THRESHOLD_80), enricher)
    assert sim.contacts == demo.store.count_contacts(CRM)
    assert (sim.current_mqls, sim.simulated_mqls) == (len(now_q), len(file_q))
    assert {f.contact_id for f in sim.flips} == now_q ^ file_q
    assert (sim.gained, sim.lost) == (len(file_q - now_q), len(now_q - file_q)) == (3, 0)
    assert sum(cur for cur, _ in sim.by_grade.values()) == len(now_q)
    assert sum(new for _, new in sim.by_grade.values()) == len(file_q)
    # the curve (two scoring passes) equals a real scoring at every threshold
    assert [t for t, _ in sim.curve] == [50, 60, 70, 80, 90, 100, 110, 120, 130]
    for t, n in sim.curve:
        assert n == len(qualified(demo.store, with_threshold(model, t), enricher)), t
    assert dict(sim.curve)[100] == sim.current_mqls and dict(sim.curve)[80] == sim.simulated_mqls

    # --model with the same change gives the same answer
    other = changed_model(tmp_path, "t80b", THRESHOLD_80)
    by_model = simulate_model(demo.store, CRM, model, other, enricher, NOW)
    assert (by_model.current_mqls, by_model.simulated_mqls) == (len(now_q), len(file_q))
    assert [f.contact_id for f in by_model.flips] == [f.contact_id for f in sim.flips]
    assert by_model.curve == []
    assert dump(demo.store) == before


def test_curve_thresholds_are_round_and_cover_both_settings() -> None:
    assert curve_thresholds(100, 100) == [60, 70, 80, 90, 100, 110, 120, 130, 140]
    assert curve_thresholds(100, 80) == [50, 60, 70, 80, 90, 100, 110, 120, 130]
    assert curve_thresholds(1000, 1000)[:3] == [600, 700, 800]
    assert curve_thresholds(100, 5)[0] == 0  # never below zero
    assert 95 in curve_thresholds(100, 95)
    assert [nice_step(x) for x in (0.7, 1, 8, 10, 12, 40)] == [1, 1, 10, 10, 20, 50]


def test_cli_simulate_prints_the_curve_and_writes_nothing(demo: Harness, tmp_path: Path) -> None:
    demo.pipeline.sync()
    state = str(tmp_path / "state.db")
    before = dump(demo.store)
    demo.sb.clear_log()
    res = CliRunner().invoke(cli, ["--state", state, "simulate", "--threshold", "80"])
    assert res.exit_code == 0, res.output
    assert "MQL-qualified: " in res.output and "with threshold 80" in res.output
    assert "← simulated" in res.output and "← current" in res.output
    path = model_file(tmp_path, "t80", THRESHOLD_80)
    res = CliRunner().invoke(cli, ["--state", state, "simulate", "--model", str(path)])
    assert res.exit_code == 0, res.output
    assert "MQL-qualified by grade" in res.output
    assert dump(demo.store) == before
    assert demo.sb.requests == []


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--threshold", "80", "--model", "x.yaml"],
        ["--threshold", "-5"],
        ["--threshold", "nan"],
    ],
)
def test_cli_simulate_bad_usage_is_one_line_exit_2(tmp_path: Path, args: list[str]) -> None:
    with StateStore.open(tmp_path / "s.db"):
        pass
    res = CliRunner().invoke(cli, ["--state", str(tmp_path / "s.db"), "simulate", *args])
    assert res.exit_code == 2
    assert len(res.output.strip().splitlines()) == 1
    assert res.output.startswith("error: ")


def test_cli_simulate_on_an_empty_state_db(tmp_path: Path) -> None:
    with StateStore.open(tmp_path / "s.db"):
        pass
    res = CliRunner().invoke(
        cli, ["--state", str(tmp_path / "s.db"), "simulate", "--threshold", "90"]
    )
    assert res.exit_code == 1
    assert "no hubspot contacts" in res.output and "leadscore sync" in res.output


def test_the_analysis_cache_reads_the_state_db_and_never_writes_it(tmp_path: Path) -> None:
    from datetime import timedelta

    from connector.enrich.cache import CacheEntry
    from connector.ops.common import ReadOnlyCompanyCache
    from connector.types import Company

    def entry(domain: str) -> CacheEntry:
        return CacheEntry(domain, "hit", Company(domain), "pdl", NOW, NOW + timedelta(days=30))

    with StateStore.open(tmp_path / "s.db") as store:
        store.company_cache.put(entry("acme.com"))
        view = ReadOnlyCompanyCache(store.company_cache)
        assert view.get("ACME.com") == entry("acme.com")
        view.put(entry("initech.com"))
        assert view.get("initech.com") == entry("initech.com")
        assert store.company_cache.get("initech.com") is None
