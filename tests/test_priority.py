"""The priority label (issue 23): grade + engagement band (A1 … D3), from the model's bands,
written to the CRM, shown by explain and the demo, and the report's grade × band matrix."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from connector.cli import cli
from connector.crm.marketo import MarketoAdapter
from connector.enrich.enricher import build_enricher
from connector.model.loader import DEFAULT_MODEL_PATH, load_model, validate_model_file
from connector.model.schema import ScoringModel
from connector.ops.report import build_report, render_html
from connector.pipeline import Pipeline, desired_properties
from connector.sandbox.hubspot import HubSpotSandbox
from connector.sandbox.marketo import MarketoSandbox
from connector.scoring.engine import priority_bands, priority_label
from connector.state.store import StateStore
from connector.worker.passes import refresh_contacts, rescore_due

from .conftest import Harness
from .test_marketo_e2e import ANCHOR, FIXTURE, offline_settings, sandbox_clock
from .test_ops_report import CRM as REPORT_CRM
from .test_ops_report import NOW as REPORT_NOW
from .test_ops_report import build_fixture
from .test_sync_drift import sdk
from .test_sync_hubspot import crm

DEFAULT = priority_bands(ScoringModel(version="x"))

# the demo personas: id → priority label written (grade + band of the score)
PERSONAS = {
    "101": "A1",  # Dana, A, 110
    "102": "D1",  # Riley, D, 100 (the band edge)
    "103": "D3",  # Jordan, D, -75 (below every band: the last)
    "104": "D1",  # Morgan, D, 145
    "105": "D3",  # D, 10
    "106": "C2",  # C, 74
    "107": "A3",  # A, 0 (the last band's edge)
    "108": "A3",  # A, 0
    "109": "B2",  # B, 55
    "112": "B2",  # B, 60
}


def _model_file(tmp_path: Path, priority: str) -> Path:
    (tmp_path / "titles.yaml").write_text((DEFAULT_MODEL_PATH.parent / "titles.yaml").read_text())
    path = tmp_path / "model.yaml"
    path.write_text(DEFAULT_MODEL_PATH.read_text() + "\n" + priority)
    return path


# ------------------------------------------------------------------ labels and the model


def test_default_labels_at_every_band_edge() -> None:
    assert DEFAULT == ((100.0, "1"), (50.0, "2"), (0.0, "3"))
    cases = {
        ("A", 110): "A1",
        ("A", 100): "A1",
        ("A", 99.4): "A2",
        ("A", 99.5): "A2",  # the CRM shows 99 (leadscore_score is rounded down)
        ("A", 99.99): "A2",
        ("B", 50): "B2",
        ("B", 49.5): "B3",  # shown as 49
        ("B", 49.4): "B3",
        ("C", 0): "C3",
        ("C", 0.01): "C3",
        ("C", -0.4): "C3",
        ("D", -75): "D3",
        ("D", 1000): "D1",
    }
    assert {k: priority_label(*k, DEFAULT) for k in cases} == cases


def test_custom_bands_below_every_minimum_take_the_last_band() -> None:
    bands = ((80.0, "hot"), (20.0, "warm"), (5.0, "cold"))
    assert priority_label("B", 80, bands) == "Bhot"
    assert priority_label("B", 79, bands) == "Bwarm"
    assert priority_label("B", 5, bands) == "Bcold"
    assert priority_label("B", 4.4, bands) == "Bcold"
    assert priority_label("B", -30, bands) == "Bcold"


def test_the_model_section_is_validated_and_its_absence_means_the_default(
    tmp_path: Path,
) -> None:
    default = load_model()
    assert default.model.priority.labels() == [g + b for g in "ABCD" for b in "123"]
    # the default bands spelled out: the same model, the same fingerprint as without them
    spelled = _model_file(
        tmp_path,
        'priority: {bands: [{name: "1", min: 100}, {name: "2", min: 50}, {name: "3", min: 0}]}',
    )
    assert load_model(spelled).fingerprint == default.fingerprint
    custom = _model_file(tmp_path, "priority: {bands: [{name: H, min: 60}, {name: L, min: 0}]}")
    loaded = load_model(custom)
    assert loaded.fingerprint != default.fingerprint
    assert loaded.model.priority.labels() == ["AH", "AL", "BH", "BL", "CH", "CL", "DH", "DL"]
    for text, problem in (
        (
            "priority: {bands: [{name: a, min: 10}, {name: b, min: 50}]}",
            "priority.bands: band minimums must descend, highest first, got a=10 > b=50",
        ),
        (
            "priority: {bands: [{name: a, min: 50}, {name: a, min: 10}]}",
            "priority.bands: band names must be unique, a repeats",
        ),
        ("priority: {bands: []}", "priority.bands: priority needs at least one band"),
    ):
        _, problems = validate_model_file(_model_file(tmp_path, text))
        assert len(problems) == 1 and problem in problems[0], problems
    _, problems = validate_model_file(_model_file(tmp_path, "priority: {bandz: []}"))
    assert len(problems) == 1 and "priority.bandz: unknown key" in problems[0], problems


# ------------------------------------------------------------------ HubSpot


def test_sync_writes_the_priority_of_each_persona_and_an_idle_resync_writes_nothing(
    demo: Harness,
) -> None:
    first = demo.pipeline.sync()
    assert first.status == "ok" and first.dead_lettered == 0
    for cid, label in PERSONAS.items():
        assert crm(demo, cid, "leadscore_priority") == label, cid
        stored = demo.store.get_score("hubspot", cid)
        assert stored is not None and stored.priority == label, cid
        assert stored.to_result().priority == label
    # every write carried the priority, once
    written = demo.writes()
    assert len(written) == first.written == 54
    assert all("leadscore_priority" in w["properties"] for w in written)
    demo.sb.clear_log()
    second = demo.pipeline.sync()
    assert second.written == 0 and demo.writes() == []


def test_a_hand_edited_priority_is_repaired(demo: Harness) -> None:
    from hubspot.crm.contacts import SimplePublicObjectInput

    demo.pipeline.sync()
    sdk(demo).crm.contacts.basic_api.update(  # a rep changes it by hand
        "101", SimplePublicObjectInput(properties={"leadscore_priority": "D3"})
    )
    demo.sb.clear_log()
    again = demo.pipeline.sync()
    assert (again.written, again.repaired) == (1, 1)
    assert [(w["id"], set(w["properties"])) for w in demo.writes()] == [
        ("101", {"leadscore_priority", "leadscore_scored_at"})
    ]
    assert crm(demo, "101", "leadscore_priority") == "A1"


def test_a_score_stored_before_the_priority_writes_no_empty_priority(demo: Harness) -> None:
    demo.pipeline.sync()
    demo.store.db.execute("UPDATE scores SET priority = NULL WHERE contact_id = '101'")
    stored = demo.store.get_score("hubspot", "101")
    assert stored is not None and stored.priority == ""
    assert "priority" not in desired_properties(stored.to_result())


def test_init_properties_creates_the_enumeration_with_the_models_labels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with HubSpotSandbox.start(portal="fixtures/hubspot_demo_portal.json") as sb:
        monkeypatch.setenv("LEADSCORE_HUBSPOT_BASE_URL", sb.url)
        monkeypatch.setenv("LEADSCORE_HUBSPOT_TOKEN", sb.token)
        monkeypatch.setenv("LEADSCORE_STATE_PATH", str(tmp_path / "s.db"))
        res = CliRunner().invoke(cli, ["init-properties"])
        assert res.exit_code == 0, res.output
        assert "leadscore_priority" in res.output
        prop = sb.portal.properties["leadscore_priority"]
        assert (prop.type, prop.field_type, prop.group_name) == (
            "enumeration",
            "select",
            "lead_scoring",
        )
        assert [v for v, _ in prop.options] == [g + b for g in "ABCD" for b in "123"]
    custom = _model_file(tmp_path, "priority: {bands: [{name: H, min: 60}, {name: L, min: 0}]}")
    with HubSpotSandbox.start(portal="fixtures/hubspot_demo_portal.json") as sb:
        monkeypatch.setenv("LEADSCORE_HUBSPOT_BASE_URL", sb.url)
        monkeypatch.setenv("LEADSCORE_HUBSPOT_TOKEN", sb.token)
        monkeypatch.setenv("LEADSCORE_MODEL_PATH", str(custom))
        res = CliRunner().invoke(cli, ["init-properties"])
        assert res.exit_code == 0, res.output
        prop = sb.portal.properties["leadscore_priority"]
        assert [v for v, _ in prop.options] == ["AH", "AL", "BH", "BL", "CH", "CL", "DH", "DL"]


def test_renamed_bands_are_checked_before_a_sync_writes(demo: Harness, tmp_path: Path) -> None:
    """The portal's leadscore_priority has the default options (A1 … D3); the model now names
    its bands H and L. A dry run notes the missing options and writes nothing; a real sync
    stops before writing (status error, exit 2, nothing dead-lettered); once init-properties'
    step has added the options, the sync writes the new labels."""
    from connector.errors import MissingPropertiesError
    from connector.pipeline.summary import SyncOptions

    custom = _model_file(tmp_path, "priority: {bands: [{name: H, min: 60}, {name: L, min: 0}]}")
    demo.pipeline.model = load_model(custom)
    with pytest.raises(MissingPropertiesError) as err:
        demo.adapter.check_properties()
    new = ["AH", "AL", "BH", "BL", "CH", "CL", "DH", "DL"]
    assert err.value.missing == [f"leadscore_priority (options {', '.join(new)})"]
    demo.pipeline.options = SyncOptions(dry_run=True)
    dry = demo.pipeline.sync()
    assert dry.status == "ok" and demo.writes() == []
    assert dry.notes == [
        f"HubSpot property leadscore_priority lacks the options {', '.join(new)}: run "
        "`leadscore init-properties` to add them before a real sync (this dry run writes nothing)"
    ]
    demo.pipeline.options = SyncOptions()
    demo.pipeline.properties_checked = False
    stopped = demo.pipeline.sync()
    assert (stopped.status, stopped.exit_code, stopped.written, stopped.dead_lettered) == (
        "error",
        2,
        0,
        0,
    )
    # the worker's other passes check before they write too (they wrote, and every write
    # naming a new label was refused and dead-lettered)
    demo.clock[0] = demo.clock[0] + timedelta(days=40)  # events leave the window: contacts due
    assert demo.store.due_contact_ids("hubspot", demo.clock[0])
    for other in (rescore_due(demo.pipeline), refresh_contacts(demo.pipeline, ["101"])):
        assert (other.status, other.exit_code, other.written, other.dead_lettered) == (
            "error",
            2,
            0,
            0,
        )
    assert demo.writes() == []
    # an option a HubSpot admin relabelled keeps its label; the model's labels come first
    prop = demo.sb.portal.properties["leadscore_priority"]
    prop.options = [(v, "A1 - hottest" if v == "A1" else label) for v, label in prop.options]
    assert demo.adapter.ensure_properties() == [f"options {', '.join(new)} of leadscore_priority"]
    assert prop.options == [(v, v) for v in new] + [
        (g + b, "A1 - hottest" if g + b == "A1" else g + b) for g in "ABCD" for b in "123"
    ]
    done = demo.pipeline.sync()
    assert (done.status, done.dead_lettered) == ("ok", 0)
    assert {cid: crm(demo, cid, "leadscore_priority") for cid in ("101", "103", "109")} == {
        "101": "AH",
        "103": "DL",
        "109": "BL",
    }


def test_options_removed_while_the_worker_runs_are_checked_again(
    demo: Harness, tmp_path: Path
) -> None:
    """The check passed, then the dropdown lost the options (a HubSpot admin deleted them, a
    property re-created by hand): the pass's writes are refused (INVALID_OPTION) and
    dead-lettered, and the next pass checks again and stops before writing, rather than
    dead-lettering every write of every pass until the worker restarts."""
    custom = _model_file(tmp_path, "priority: {bands: [{name: H, min: 60}, {name: L, min: 0}]}")
    demo.pipeline.model = load_model(custom)
    demo.pipeline.properties_checked = True  # as if checked before the options went away
    first = demo.pipeline.sync()
    assert (first.written, first.dead_lettered) == (0, 54)
    assert demo.pipeline.properties_checked is False
    demo.sb.clear_log()
    second = demo.pipeline.sync()
    assert (second.status, second.exit_code, second.written, second.dead_lettered) == (
        "error",
        2,
        0,
        0,
    )
    assert demo.writes() == []


def test_a_listing_without_options_is_not_judged_nor_patched(demo: Harness, tmp_path: Path) -> None:
    """A properties list whose dropdown carries no `options` (a proxy's trimmed answer): the
    check cannot tell what the dropdown lacks, so it reports nothing and init-properties sends
    no PATCH; a blind PATCH of the model's labels alone would have deleted every other option."""
    custom = _model_file(tmp_path, "priority: {bands: [{name: H, min: 60}, {name: L, min: 0}]}")
    demo.pipeline.model = load_model(custom)
    prop = demo.sb.portal.properties["leadscore_priority"]
    listed = prop.to_json

    def without_options() -> dict[str, Any]:
        out = dict(listed())
        del out["options"]
        return out

    prop.to_json = without_options  # type: ignore[method-assign]
    demo.adapter.check_properties()  # nothing judged: no error
    assert demo.adapter.lacking_options() == {}
    assert demo.adapter.ensure_properties() == []
    assert [r.method for r in demo.sb.requests if r.method == "PATCH"] == []
    assert [v for v, _ in prop.options] == [g + b for g in "ABCD" for b in "123"]


def test_explain_shows_the_priority(demo: Harness, tmp_path: Path) -> None:
    demo.pipeline.sync()
    path = str(demo.store.path)
    demo.store.close()
    res = CliRunner().invoke(cli, ["--state", path, "explain", "103"])
    assert res.exit_code == 0, res.output
    assert "· grade D (fit " in res.output and "· priority D3 ·" in res.output
    res = CliRunner().invoke(cli, ["--state", path, "explain", "101", "--json"])
    assert res.exit_code == 0, res.output
    assert '"priority": "A1"' in res.output


# ------------------------------------------------------------------ Marketo


def test_marketo_writes_the_priority_field(tmp_path: Path) -> None:
    with (
        MarketoSandbox.start(FIXTURE, now=ANCHOR) as sb,  # the hour must not move a band
        StateStore.open(tmp_path / "m.db") as store,
    ):
        adapter = MarketoAdapter(sb.url, SecretStr(sb.client_id), SecretStr(sb.client_secret))
        enricher = build_enricher(offline_settings(), cache=store.company_cache)
        try:
            pipeline = Pipeline(
                store, adapter, load_model(), enricher=enricher, clock=sandbox_clock(sb)
            )
            assert pipeline.sync().status == "ok"
            got = {cid: sb.lead(int(cid)).values.get("leadPriority__c") for cid in PERSONAS}
            assert got == PERSONAS  # on the pinned clock, the same bands as the HubSpot portal
            stored = store.get_score("marketo", "109")
            assert stored is not None and (stored.grade, stored.score) == ("B", 55)
            again = pipeline.sync()
            assert again.written == 0
        finally:
            adapter.close()


# ------------------------------------------------------------------ report


def test_report_matrix_exact_cells(tmp_path: Path) -> None:
    with StateStore.open(tmp_path / "state.db") as store:
        build_fixture(store)
        r = build_report(store, REPORT_CRM, REPORT_NOW)
        assert r.priority_bands == ["1", "2", "3"]
        cells = {
            f.key: (f.contacts, f.mqls, f.sqls, f.customers) for f in r.by_priority if f.contacts
        }
        # hand-off: 1 A110, 2 A105, 3 A120 → A1; 4 B100, 5 B130 → B1; 10 C55 → C2; 6 C30 → C3;
        # 9 D100 → D1; 7 D-10 → D3; 8 unscored, 11 archived: in no cell
        assert cells == {
            "A1": (3, 3, 2, 1),
            "B1": (2, 2, 0, 0),
            "C2": (1, 0, 0, 0),
            "C3": (1, 0, 0, 0),
            "D1": (1, 1, 1, 1),
            "D3": (1, 0, 0, 0),
        }
        assert [f.key for f in r.by_priority] == [g + b for g in "ABCD" for b in "123"]
        assert r.priority_cell("A", "1").mql_to_sql == pytest.approx(2 / 3)
        custom = build_report(store, REPORT_CRM, REPORT_NOW, bands=((110.0, "H"), (0.0, "L")))
        assert {f.key: f.contacts for f in custom.by_priority if f.contacts} == {
            "AH": 2,  # 1 (110) and 3 (120)
            "AL": 1,
            "BH": 1,
            "BL": 1,
            "CL": 2,
            "DL": 2,
        }
        html = render_html(r)
        assert '<section id="priority">' in html
        assert 'A1 · 67%</span><span class="c">3 contacts · 2 of 3 MQLs</span>' in html
        assert (
            '<td class="none" title="C2: 1 contact · no MQLs, MQL → SQL —">'
            '<span class="r">C2</span>'
        ) in html
        assert 'style="background: rgba(37, 99, 235, 0.67); color: #fff"' in html  # A1: 2/3


def test_report_cli_prints_the_matrix_on_the_demo_portal(demo: Harness) -> None:
    demo.pipeline.sync()
    r = build_report(demo.store, "hubspot", REPORT_NOW)
    cells = {f.key: (f.contacts, f.mqls, f.sqls) for f in r.by_priority}
    assert cells == {
        "A1": (2, 2, 0),
        "A2": (1, 0, 0),
        "A3": (3, 0, 0),  # + Elena Marsh (Northwind Data, 24)
        "B1": (9, 9, 0),
        "B2": (6, 0, 0),
        "B3": (4, 0, 0),  # + Marcus Lee (40), Tom Becker (15)
        "C1": (4, 4, 0),
        "C2": (5, 0, 0),
        "C3": (4, 0, 0),  # + Nadia Okafor (20)
        "D1": (6, 1, 0),
        "D2": (2, 0, 0),
        "D3": (8, 0, 0),
    }
    path = str(demo.store.path)
    demo.store.close()
    res = CliRunner().invoke(cli, ["--state", path, "report", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["priority_bands"] == ["1", "2", "3"]
    assert doc["priority_band_ranges"] == ["100+", "50–<100", "<50"]
    assert {f["key"]: (f["contacts"], f["mqls"], f["sqls"]) for f in doc["by_priority"]} == cells
    res = CliRunner().invoke(cli, ["--state", path, "report"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    at = lines.index(next(x for x in lines if x.startswith("Priority at hand-off")))
    rows = [x for x in lines[at : at + 12] if x.startswith(("│ A", "│ D"))]
    assert [" ".join(x.split()) for x in rows] == [
        "│ A │ 2 · 0% (0/2) │ 1 · no MQL │ 3 · no MQL │",
        "│ D │ 6 · 0% (0/1) │ 2 · no MQL │ 8 · no MQL │",
    ]


def test_after_an_upgrade_one_rescore_writes_the_priority_once_to_every_contact(
    demo: Harness,
) -> None:
    from connector.ops.rescore import apply_rescore

    demo.pipeline.sync()
    demo.pipeline.sync()  # idle: our own writes pulled back
    # the state a version before the priority left: no priority stored, none written
    demo.store.db.execute("UPDATE scores SET priority = NULL")
    demo.store.db.execute("DELETE FROM written WHERE property = 'priority'")
    demo.sb.clear_log()
    applied = apply_rescore(demo.pipeline, load_model())
    assert applied.written == 54
    assert {frozenset(w["properties"]) for w in demo.writes()} == {
        frozenset({"leadscore_priority", "leadscore_scored_at"})
    }
    assert {w["id"]: w["properties"]["leadscore_priority"] for w in demo.writes()}.items() >= (
        PERSONAS.items()
    )
    demo.sb.clear_log()
    assert demo.pipeline.sync().written == 0 and demo.writes() == []


def test_simulate_counts_each_contact_at_the_score_the_crm_shows() -> None:
    """`calibrate` refits the bands from simulate's shown scores: 99.6 is shown 99 (band 2, as
    the sync labels it), not 100."""
    from connector.ops.simulate import Side, Simulation, _tally

    sim = Simulation("hubspot", datetime(2026, 11, 1, tzinfo=UTC), "now", "sim")
    for cid, score in (("1", 99.6), ("2", 100.0), ("3", 49.5), ("4", -0.4)):
        _tally(sim, cid, cid, Side(score, "A", None), Side(score + 0.5, "A", None))
    assert dict(sim.shown[0]) == {99: 1, 100: 1, 49: 1, -1: 1}
    assert dict(sim.shown[1]) == {100: 2, 50: 1, 0: 1}
