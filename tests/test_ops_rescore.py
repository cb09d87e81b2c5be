"""`leadscore rescore`: the dry-run preview says exactly what the real rescore then writes."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from connector.cli import cli
from connector.enrich.enricher import build_enricher
from connector.model.loader import LoadedModel, load_model
from connector.ops.common import ReadOnlyCompanyCache
from connector.ops.rescore import apply_rescore, preview_rescore, reason_diff
from connector.pipeline import Enricher
from connector.settings import load_settings
from connector.state.store import StateStore
from connector.types import MQL, Reason

from .conftest import NOW, Harness

CRM = "hubspot"
DEFAULT_VERSION = 'version: "2026.12-default"'


def model_file(tmp_path: Path, name: str, *edits: tuple[str, str]) -> Path:
    """A copy of the default model (with its title rules) with text replacements applied."""
    src = Path(load_model().path)
    folder = tmp_path / "models"
    folder.mkdir(exist_ok=True)
    (folder / "titles.yaml").write_text((src.parent / "titles.yaml").read_text())
    text = src.read_text()
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


def changed_model(tmp_path: Path, name: str, *edits: tuple[str, str]) -> LoadedModel:
    return load_model(model_file(tmp_path, name, *edits))


THRESHOLD_80 = ("    threshold: 100", "    threshold: 80")
PRODUCT_15 = (
    "{name: product_page, category: product, event: page_view, points: 10,",
    "{name: product_page, category: product, event: page_view, points: 15,",
)


def read_only_enricher(store: StateStore) -> Enricher:
    return build_enricher(load_settings(), cache=ReadOnlyCompanyCache(store.company_cache))


def dump(store: StateStore) -> list[str]:
    return list(store.db.conn.iterdump())


def test_dry_run_counts_match_what_the_real_rescore_writes(demo: Harness, tmp_path: Path) -> None:
    first = demo.pipeline.sync()
    assert first.status == "ok", first.message
    # same version, threshold 80: only the contacts that become MQL have anything to write
    model = changed_model(tmp_path, "t80", THRESHOLD_80)
    before = dump(demo.store)
    demo.sb.clear_log()
    preview = preview_rescore(
        demo.store, CRM, model, read_only_enricher(demo.store), NOW, keep_after=True
    )
    assert dump(demo.store) == before  # the dry run wrote nothing to the state DB
    assert demo.sb.requests == []  # ... and made no CRM call
    assert preview.contacts == len(preview.after) == demo.store.count_contacts(CRM)
    assert (preview.grade_changes, preview.score_changes) == (0, 0)
    assert (preview.new_mqls, preview.lost_mqls) == (3, 0)
    assert preview.mql_after == preview.mql_before + 3
    assert (preview.to_write, preview.stage_to_mql) == (4, 3)
    # a D-grade contact at 80-99 points is now "behaviour yes, profile no"
    assert preview.write_properties == {
        "mql_reason": 3,
        "lifecycle_stage": 3,
        "profile_mismatch": 1,
    }
    assert {c.contact_id for c in preview.sample} == set(preview.write_ids)
    assert sum(c.mql_flip for c in preview.sample) == 3
    for c in preview.sample:
        assert c.before_mql is None and c.after_mql in (None, "threshold")

    applied = apply_rescore(demo.pipeline, model)
    assert applied.rescore is not None
    assert (applied.sync.status, applied.rescore.status) == ("ok", "ok")
    # the sync pulls what changed first (here: what our own writes touched), the rescore the rest
    assert applied.written == preview.to_write
    assert applied.rescore.scored == preview.contacts
    assert [r.kind for r in demo.store.last_runs(CRM, 2)] == ["rescore", "sync"]
    assert sorted(demo.written_ids()) == sorted(preview.write_ids)
    sent = [w["properties"] for w in demo.writes()]
    assert sum(p.get("lifecyclestage") == MQL for p in sent) == 3
    assert sum(p.get("leadscore_mql_reason") == "threshold" for p in sent) == 3
    assert sum(p.get("leadscore_profile_mismatch") == "true" for p in sent) == 1
    stored = {s.contact_id: (s.score, s.grade, s.mql_reason) for s in demo.store.iter_scores(CRM)}
    assert {k: stored[k] for k in preview.after} == preview.after
    # applied: a new preview finds nothing left to do
    again = preview_rescore(demo.store, CRM, model, read_only_enricher(demo.store), NOW)
    assert (again.to_write, again.score_changes, again.new_mqls) == (0, 0, 0)


def test_a_new_model_version_is_written_to_everyone_and_remembered(
    demo: Harness, tmp_path: Path
) -> None:
    demo.pipeline.sync()
    model = changed_model(
        tmp_path, "p15", PRODUCT_15, (DEFAULT_VERSION, 'version: "2026.12-product15"')
    )
    preview = preview_rescore(
        demo.store, CRM, model, read_only_enricher(demo.store), NOW, sample=3, keep_after=True
    )
    live = demo.store.count_contacts(CRM)
    assert preview.to_write == preview.write_properties["model_version"] == live
    assert preview.stored_versions == {f"2026.12-default ({load_model().fingerprint})": live}
    assert preview.score_changes > 0 and preview.mean_delta > 0
    assert preview.largest_up is not None and preview.largest_down is None
    assert len(preview.sample) == 3
    assert all(
        any("product page" in r for r in c.added) for c in preview.sample if c.delta
    )  # the reason that differs is named

    demo.sb.clear_log()
    applied = apply_rescore(demo.pipeline, model)
    assert applied.written == preview.to_write and applied.exit_code == 0
    assert sorted(demo.written_ids()) == sorted(preview.write_ids)
    assert {s.model_version for s in demo.store.iter_scores(CRM)} == {"2026.12-product15"}
    history = demo.store.score_history(CRM, "101")
    assert [h["model_version"] for h in history][-2:] == ["2026.12-default", "2026.12-product15"]
    stored = {s.contact_id: (s.score, s.grade, s.mql_reason) for s in demo.store.iter_scores(CRM)}
    assert {k: stored[k] for k in preview.after} == preview.after


def test_reason_diff_names_what_changed() -> None:
    old = (Reason("product_page", "product", 40, "product page ×4"), Reason("x", "c", 5, "same"))
    new = (Reason("product_page", "product", 60, "product page ×4"), Reason("x", "c", 5, "same"))
    assert reason_diff(old, new) == (("+40 product page ×4",), ("+60 product page ×4",))


def test_cli_dry_run_writes_nothing_and_bad_input_is_one_line(
    demo: Harness, tmp_path: Path
) -> None:
    demo.pipeline.sync()
    path = model_file(tmp_path, "t80", THRESHOLD_80)
    state = str(tmp_path / "state.db")
    before = dump(demo.store)
    demo.sb.clear_log()
    res = CliRunner().invoke(
        cli, ["--state", state, "rescore", "--dry-run", "--model", str(path), "--sample", "2"]
    )
    assert res.exit_code == 0, res.output
    assert "Rescore preview — model 2026.12-default" in res.output
    assert "Grade: stored (rows) → rescored (columns)" in res.output
    assert "(dry run, nothing written)" in res.output
    assert dump(demo.store) == before
    assert demo.sb.requests == []

    m = re.search(r"Would update (\d+) contact", res.output)
    assert m is not None
    expected = int(m.group(1))
    assert expected > 0  # the CLI scores as of the real clock: events have aged since NOW

    # applied through the CLI against the sandbox: writes what the preview said
    env = {"LEADSCORE_HUBSPOT_TOKEN": demo.sb.token, "LEADSCORE_HUBSPOT_BASE_URL": demo.sb.url}
    res = CliRunner().invoke(cli, ["--state", state, "rescore", "--model", str(path)], env=env)
    assert res.exit_code == 0, res.output
    assert f"wrote {expected} contact(s) (the preview said {expected})" in res.output
    assert len(set(demo.written_ids())) == expected
    # threshold 80 under the same version: the rescore says so, and the model is now in force
    assert f"warning: version not bumped: {path} is version 2026.12-default" in res.output
    assert "(recorded in the state DB): sync, run and backfill score with it" in res.output
    active = demo.store.get_active_model(CRM)
    assert active is not None and active.fingerprint == load_model(path).fingerprint
    assert demo.sb.token not in res.output

    bad_model = tmp_path / "bad.yaml"
    bad_model.write_text("version: 1\nfit: [\n")
    res = CliRunner().invoke(cli, ["--state", state, "rescore", "--model", str(bad_model)])
    assert res.exit_code == 2  # a bad model file is a configuration error, as for sync
    assert "not valid YAML" in res.output
    missing = CliRunner().invoke(cli, ["--state", str(tmp_path / "x.db"), "rescore", "--dry-run"])
    assert missing.exit_code == 1
    assert missing.output.startswith("error: no state DB at")
    neg = CliRunner().invoke(cli, ["--state", state, "rescore", "--dry-run", "--sample", "-1"])
    assert neg.exit_code == 2


def test_profile_reasons_show_their_points_once() -> None:
    from connector.ops.common import reason_line

    engine_made = Reason(
        "company_size", "fit", 20.0, "+20 company size 51-5,000 (300 employees)", (), "fit"
    )
    assert reason_line(engine_made) == "fit +20 company size 51-5,000 (300 employees)"
    plain = Reason("legacy", "fit", -5.0, "student title", (), "fit")
    assert reason_line(plain) == "fit -5 student title"
    assert reason_line(Reason("competitor", "fit", 0.0, "competitor domain", (), "fit")) == (
        "fit: competitor domain"
    )
    assert reason_line(Reason("pricing", "product", 25, "pricing page")) == "+25 pricing page"
