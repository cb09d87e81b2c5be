"""`leadscore calibrate` end to end through click's CliRunner, on a state DB file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from connector.cli import cli
from connector.model.loader import validate_model_file
from connector.state.store import StateStore
from tests.test_calibrate import CRM, build_history, misset_model

NOW_ARG = "2026-11-01T12:00:00Z"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("calibrate-cli")
    db = tmp / "state.db"
    store = StateStore.open(db)
    try:
        build_history(store, 800, seed=11)
    finally:
        store.close()
    return db, Path(misset_model(tmp).path)


def run(monkeypatch: pytest.MonkeyPatch, where: Path, *args: str) -> Result:
    monkeypatch.chdir(where)  # no stray leadscore.env; default --out lands here
    return CliRunner().invoke(cli, list(args))


def test_calibrate_writes_a_suggested_model_and_a_page(
    setup: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, model = setup
    res = run(
        monkeypatch, tmp_path, "--state", str(db), "calibrate", "--model", str(model),
        "--now", NOW_ARG, "--horizon", "90d", "--target-mql-rate", "0.1",
        "--html", "calibration.html",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    out = tmp_path / "model.suggested.yaml"
    loaded, problems = validate_model_file(out)
    assert problems == [] and loaded is not None
    assert loaded.version == "misset-1-calibrated-2026-11-01"
    text = res.output
    assert "Rules: conversion with and without" in text
    assert "Points the wrong way: product_guide" in text
    assert "Held-out comparison" in text and "ROC AUC" in text
    assert "Plain logistic regression on the same features and split" in text
    assert "Expected MQL → SQL rate on the held-out contacts (95% interval): suggested" in text
    assert "Conversion by score band (held-out contacts, 95% intervals)" in text
    assert "Wrote model.suggested.yaml" in text
    assert "Nothing was applied" in text and "leadscore simulate --model" in text
    html = (tmp_path / "calibration.html").read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert 'id="leadscore-calibration"' in html and "<script" not in html
    assert "wrote calibration.html" in text


def test_calibrate_with_too_little_data_exits_3_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setup: tuple[Path, Path]
) -> None:
    db = tmp_path / "tiny.db"
    store = StateStore.open(db)
    try:
        build_history(store, 40, seed=5)
    finally:
        store.close()
    res = run(
        monkeypatch, tmp_path, "--crm", CRM, "--state", str(db), "calibrate",
        "--model", str(setup[1]), "--now", NOW_ARG, "--min-conversions", "30",
    )  # fmt: skip
    assert res.exit_code == 3, res.output
    assert "too little data" in res.output and "Nothing suggested" in res.output
    assert not (tmp_path / "model.suggested.yaml").exists()


def test_calibrate_without_the_extra_says_how_to_install_it(
    setup: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "numpy", None)
    res = run(
        monkeypatch, tmp_path, "--state", str(setup[0]), "calibrate", "--model", str(setup[1]),
        "--now", NOW_ARG,
    )  # fmt: skip
    assert res.exit_code == 2
    assert "pip install 'leadscore[calibrate]'" in res.output


def test_calibrate_rejects_a_bad_horizon_and_a_missing_state_db(
    setup: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    res = run(monkeypatch, tmp_path, "--state", str(setup[0]), "calibrate", "--horizon", "soon")
    assert res.exit_code == 2 and "90d, 12w or 36h" in res.output
    res = run(monkeypatch, tmp_path, "--state", str(tmp_path / "none.db"), "calibrate")
    assert res.exit_code == 1 and "no state DB" in res.output
    assert not (tmp_path / "none.db").exists()


def test_calibrate_can_keep_the_profile_and_leave_new_rules_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the education-shaped history the default refits the profile and adds a rule; the
    flags keep the profile as written and leave the proposed rule out (still reported)."""
    import yaml

    from tests.test_calibrate_synthetic import build_education_history, education_model

    db = tmp_path / "edu.db"
    store = StateStore.open(db)
    try:
        build_education_history(store, 1200, seed=4)
    finally:
        store.close()
    model = Path(education_model(tmp_path).path)
    old = yaml.safe_load(model.read_text(encoding="utf-8"))
    base = ["--state", str(db), "calibrate", "--model", str(model), "--now", NOW_ARG]
    res = run(monkeypatch, tmp_path, *base, "--out", "full.yaml")
    assert res.exit_code == 0, res.output
    full = yaml.safe_load((tmp_path / "full.yaml").read_text(encoding="utf-8"))
    assert full["fit"] != old["fit"] and full["fit"]["add_to_score"] is True
    assert full["engagement"]["rules"][-1]["name"] == "new_page_scholarship"
    assert "Profile refit with the same outcomes" in res.output
    res = run(monkeypatch, tmp_path, *base, "--keep-profile", "--no-new-rules", "--out", "k.yaml")
    assert res.exit_code == 0, res.output
    kept = yaml.safe_load((tmp_path / "k.yaml").read_text(encoding="utf-8"))
    assert kept["fit"] == old["fit"]
    assert [r["name"] for r in kept["engagement"]["rules"]] == [
        r["name"] for r in old["engagement"]["rules"]
    ]
    assert "Profile refit" not in res.output and "page /scholarship" in res.output
    out = " ".join(res.output.split())  # rich wraps long lines
    assert "the plain logistic regression ranks the held-out contacts at ROC AUC" in out
    assert "the profile was not refit (--keep-profile)" in out
    assert "strong signals no rule of the suggested model counts: page /scholarship" in out


def test_calibrate_json_is_one_document_with_the_suggestion(
    setup: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--json: the calibration as one JSON document on stdout (the suggested model's YAML is
    the file --out names); the page's line goes to stderr."""
    db, model = setup
    res = run(
        monkeypatch, tmp_path, "--state", str(db), "calibrate", "--model", str(model),
        "--now", NOW_ARG, "--json", "--html", "calibration.html",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["written"] == "model.suggested.yaml" and doc["insufficient"] is None
    assert doc["suggestion"]["version"] == "misset-1-calibrated-2026-11-01"
    assert "text" not in doc["suggestion"] and "model" not in doc["suggestion"]
    assert doc["counts"]["converted"] + doc["counts"]["not_converted"] == doc["counts"]["labelled"]
    assert {r["name"] for r in doc["lift"]} >= {"pricing_repeat", "product_guide"}
    assert doc["comparison"]["suggested"]["auc"] > doc["comparison"]["current"]["auc"]
    assert doc["accounts"] is None  # account scoring off
    assert res.stderr == "wrote calibration.html (report page)\n"


def test_calibrate_tables_fit_80_columns_with_every_rule_name_whole(
    setup: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 80 columns the tables lose their borders and wrap at spaces (a rule's kind and an
    interval go on a second line) instead of cutting rule names and intervals with `…`; at
    200 they keep their borders and one line a rule."""
    db, model = setup
    args = ("--state", str(db), "calibrate", "--model", str(model), "--now", NOW_ARG)
    monkeypatch.setenv("COLUMNS", "80")
    res = run(monkeypatch, tmp_path, *args)
    assert res.exit_code == 0, res.output
    lines = [line.rstrip() for line in res.output.splitlines()]
    assert max(len(line) for line in lines) <= 80 and "…" not in res.output
    start = lines.index(
        "     Rules: conversion with and without (95% intervals), highest lift first"
    )
    assert lines[start + 1 : start + 12] == [
        "                                      converted converted",
        "rule (kind)            points   fired      with   without         lift verdict",
        "─" * 80,
        "demo_request             +100 34 (5%)     52.9%     18.9%         2.81 helps",
        "(engagement)                          [37%–69%] [16%–22%]  [1.97–4.00]",
        "pricing_repeat             +2     196     37.8%     13.7%         2.76 helps",
        "(engagement)                    (29%) [31%–45%] [11%–17%]  [2.07–3.68]",
        "webinar_attended          +50     152     38.8%     15.4%         2.53 helps",
        "(engagement)                    (22%) [31%–47%] [13%–19%]  [1.91–3.35]",
        "webinar_attended:full     +50     152     38.8%     15.4%         2.53 helps",
        "(tier)                          (22%) [31%–47%] [13%–19%]  [1.91–3.35]",
    ]
    # the note the 14 profile rules share is shown once, under the table, not on every row
    assert "fit:company_size_enterprise     +15       +15     –       0 kept:      [1]" in lines
    assert "[1] fewer than four distinct profile scores: grades kept" in lines
    assert res.output.count("fewer than four") == 1 and res.output.count("[2]") == 0
    # a note of one rule stays on its row
    assert res.output.count("strongly:") == 1
    assert (
        "product_guide                   +15        +1 ×1.00     117 sign kept  the data" in lines
    )
    doc = run(monkeypatch, tmp_path, *args, "--json")
    names = [r["name"] for r in json.loads(doc.stdout)["lift"] if r["fired"]]
    assert len(names) == 13
    for name in names:  # each on a line of its own table row, whole
        assert any(line.split(" ")[0] == name for line in lines), name

    monkeypatch.setenv("COLUMNS", "200")
    res = run(monkeypatch, tmp_path, *args)
    lines = [line.rstrip() for line in res.output.splitlines()]
    head = lines.index(
        "┃ rule (kind)                    ┃  points ┃      fired ┃  converted with ┃ converted "
        "without ┃             lift ┃ verdict         ┃"
    )
    assert lines[head + 2] == (
        "│ demo_request (engagement)      │    +100 │    34 (5%) │ 52.9% [37%–69%] │   18.9% "
        "[16%–22%] │ 2.81 [1.97–4.00] │ helps           │"
    )
