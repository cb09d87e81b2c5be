"""docs/reliability.md is the table tests/reliability_matrix.py writes: one row per scenario,
nothing typed by hand. (Each scenario's test checks its own row's content.)"""

from __future__ import annotations

from .reliability_matrix import AREAS, DOC, SCENARIOS, doc_lines, render


def test_the_doc_has_one_row_per_scenario_and_nothing_else() -> None:
    assert DOC.exists(), "run `.venv/bin/python tests/reliability_matrix.py`"
    rows = [ln for ln in doc_lines() if not ln.startswith("| area ")]
    assert len(rows) == len(SCENARIOS), "docs/reliability.md is stale: rerun the script"
    text = DOC.read_text(encoding="utf-8")
    assert text.startswith(render([]).split("\n## ")[0]), "the doc's header was edited by hand"
    for area in AREAS:
        assert f"## {area}" in text


def test_every_area_has_scenarios() -> None:
    assert {sc.area for sc in SCENARIOS.values()} == set(AREAS)
