from pathlib import Path

from click.testing import CliRunner

from connector.cli import cli
from connector.model.loader import DEFAULT_MODEL_PATH, load_model, validate_model_file


def test_default_model_loads_with_stable_fingerprint() -> None:
    a = load_model()
    b = load_model(DEFAULT_MODEL_PATH)
    assert a.version == "2026.11-default"
    assert a.fingerprint == b.fingerprint
    assert len(a.fingerprint) == 12


def test_broken_model_lists_every_problem_with_location(tmp_path: Path) -> None:
    (tmp_path / "titles.yaml").write_text((DEFAULT_MODEL_PATH.parent / "titles.yaml").read_text())
    bad = tmp_path / "model.yaml"
    bad.write_text(
        """
version: "x"
lists: {careers: ["*/careers*"]}
fit:
  grades: {A: 10, B: 40, C: 20}
  rules:
    - {name: t, when: {seniority: vp}, points: "lots"}
engagement:
  categories: {c: {}}
  rules:
    - {name: a, category: c, event: page_view, points: 5}
    - {name: b, category: nope, event: page_view, points: 5, when: {url: {in_list: missing}}}
    - {name: c, category: c, event: page_view, points: 1.5}
    - {name: d, category: c, event: page_view, pionts: 1}
"""
    )
    loaded, problems = validate_model_file(bad)
    assert loaded is None
    joined = "\n".join(problems)
    assert "fit.rules[0].points: must be an integer" in joined
    assert "engagement.rules[2].points: must be an integer" in joined
    assert "engagement.rules[3].pionts: unknown key (typo?)" in joined
    assert "fit.grades: grade minimums must descend A > B > C, got A=10 B=40 C=20" in joined
    assert "engagement.rules[1].category: unknown category 'nope'" in joined
    assert "engagement.rules[1].when.url.in_list: unknown list 'missing'" in joined
    assert len(problems) == 6, problems
    result = CliRunner().invoke(cli, ["validate-model", str(bad)])
    assert result.exit_code == 1
    assert "nothing scored" in result.output


def test_validate_model_ok_prints_version_and_fingerprint() -> None:
    result = CliRunner().invoke(cli, ["validate-model"])
    assert result.exit_code == 0, result.output
    loaded = load_model()
    assert result.output.strip() == f"OK {loaded.version} {loaded.fingerprint}"


def test_an_empty_words_group_is_a_model_error_with_its_location(tmp_path: Path) -> None:
    (tmp_path / "titles.yaml").write_text((DEFAULT_MODEL_PATH.parent / "titles.yaml").read_text())
    bad = tmp_path / "model.yaml"
    bad.write_text(
        """
version: "x"
fit:
  grades: {A: 80, B: 55, C: 25}
  rules: []
engagement:
  categories: {c: {}}
  rules:
    - {name: a, category: c, event: form_submit, points: 5, when: {form: {words: [[book], []]}}}
"""
    )
    loaded, problems = validate_model_file(bad)
    assert loaded is None
    assert len(problems) == 1, problems
    assert problems == [
        "engagement.rules[0].when.form.words: every words group needs at least one non-empty word"
    ]
