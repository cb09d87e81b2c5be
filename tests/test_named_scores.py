"""Named scores (issue 23): several scores per portal in one model file. The top-level sections
are the lifecycle score (today's property names); `scores:` declares the others, each written
as leadscore_<name>_score / _grade / _reasons / _priority, diff-only, in the contact's one
write. The example model config/two_products.yaml has `analytics` (lifecycle) and
`services` (threshold 60)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hubspot.crm.contacts import SimplePublicObjectInput

from connector.cli import cli
from connector.errors import MissingPropertiesError
from connector.model.loader import (
    DEFAULT_MODEL_PATH,
    LoadedModel,
    fingerprint,
    load_model,
    validate_model_file,
)
from connector.model.schema import Priority
from connector.sandbox.demo_portal import build_demo_portal
from connector.sandbox.hubspot import HubSpotSandbox

from .conftest import NOW, Harness, make_harness
from .test_ops_rescore import read_only_enricher
from .test_sync_drift import batch_updates, sdk

EXAMPLE = DEFAULT_MODEL_PATH.parent / "two_products.yaml"
SERVICES_KEYS = (
    "leadscore_services_score",
    "leadscore_services_grade",
    "leadscore_services_reasons",
    "leadscore_services_priority",
)

# the demo personas' services score as the CRM shows it: score, grade, priority (its own
# bands: 60+, 30+, below), reasons
SERVICES = {
    "101": (
        "80",
        "A",
        "A1",
        "qualified (60+); +40 watched webinar 'Scoring that sales trusts' (full); "
        "+30 implementation docs ×10 (docs capped at 30); +10 pricing page twice in 7 days; "
        "grade A: decision-making title, company size 51-5,000",
    ),
    "102": (
        "60",
        "D",
        "D1",
        "qualified (60+); +60 asked to talk ('Request a demo'); grade D: no profile match",
    ),
    "103": ("0", "D", "D3", "grade D: no profile match"),
    "104": (
        "70",
        "D",
        "D1",
        "qualified (60+); +60 asked to talk ('Contact Us'); +10 pricing page twice in 7 days; "
        "grade D: competitor domain",
    ),
    "105": (
        "5",
        "D",
        "D3",
        "+5 watched webinar 'Scoring that sales trusts' (part); grade D: student",
    ),
    "106": ("0", "C", "C3", "grade C: decision-making title, works in marketing, sales or revops"),
    "112": (
        "15",
        "B",
        "B3",
        "+15 downloaded 'Download the scoring guide'; grade B: company size 51-5,000, "
        "manager title",
    ),
}
# the lifecycle (analytics) score is the default model's: the same values as the demo
LIFECYCLE = {"101": ("110", "A", "A1"), "102": ("100", "D", "D1"), "104": ("145", "D", "D1")}


def _two() -> LoadedModel:
    return load_model(EXAMPLE)


@pytest.fixture
def two(tmp_path: Path) -> Iterator[Harness]:
    """The demo portal synced with the two-score model; init-properties run with it."""
    for h in make_harness(tmp_path, build_demo_portal(), model=_two()):
        assert h.adapter.named_scores == ("services",)  # the pipeline told the adapter
        assert h.adapter.ensure_properties() == list(SERVICES_KEYS)
        h.sb.clear_log()
        yield h


def _props(h: Harness, cid: str) -> dict[str, Any]:
    return dict(h.sb.contact(cid).properties)


# ------------------------------------------------------------------ the model file


def test_the_example_model_declares_two_scores_and_the_default_keeps_its_fingerprint() -> None:
    m = _two()
    assert m.lifecycle_name == "analytics"
    assert m.score_names() == ["analytics", "services"]
    (services,) = m.named
    assert (services.name, services.threshold) == ("services", 60)
    assert services.keys == (
        "services_score",
        "services_grade",
        "services_reasons",
        "services_priority",
    )
    # built once per loaded model, never per contact
    assert m.named is m.named and m.named_score("services") is services
    # the derived model: the score's engagement, the shared fit, no accounts, the threshold
    derived = services.loaded.model
    assert [r.name for r in derived.engagement.rules] == [
        "talk_to_services",
        "docs_page",
        "webinar_attended",
        "guide_download",
        "pricing_repeat",
    ]
    assert derived.fit == m.model.fit and derived.accounts is None
    assert derived.lifecycle.mql.threshold == 60 and not derived.lifecycle.write_stage
    assert services.loaded.fingerprint == m.fingerprint
    # its own priority bands; the analytics score keeps the default ones
    assert services.own_priority and [(b.name, b.min) for b in derived.priority.bands] == [
        ("1", 60),
        ("2", 30),
        ("3", 0),
    ]
    assert m.model.priority == Priority() and derived.priority != m.model.priority
    # a one-score model: no named scores, the fingerprint from before named scores existed;
    # an accounts section without `fit.force` rules: the one from before them (the default
    # model without its account force rules is the default model of before them)
    default = load_model()
    assert default.named == () and default.score_names() == ["lifecycle"]
    accounts = default.model.accounts
    assert accounts is not None and accounts.fit.force
    fit = accounts.fit.model_copy(update={"force": []})
    before = default.model.model_copy(
        update={"version": "2026.11-default", "accounts": accounts.model_copy(update={"fit": fit})}
    )  # the version it had then
    assert fingerprint(before, default.titles.table, default.target_accounts) == "1f804c095b9b"


def _own_bands(tmp_path: Path, bands: str | None) -> Path:
    """The example with the services score's bands replaced by `bands` (None: none of its
    own, the lifecycle score's), beside a copy of its title rules."""
    (tmp_path / "titles.yaml").write_text((EXAMPLE.parent / "titles.yaml").read_text())
    text = EXAMPLE.read_text()
    old = (
        '    priority:\n      bands: [{name: "1", min: 60}, {name: "2", min: 30}, '
        '{name: "3", min: 0}]\n'
    )
    assert text.count(old) == 1
    text = text.replace(old, "" if bands is None else f"    priority:\n      bands: {bands}\n")
    path = tmp_path / "own_bands.yaml"
    path.write_text(text)
    return path


def test_a_named_scores_own_bands_label_it_and_shared_ones_keep_the_fingerprint(
    tmp_path: Path,
) -> None:
    """A score on another scale than the lifecycle score's (qualified at 60) labels by its
    own bands: 80 points read A1 where the shared 100/50/0 read A2. A model whose named
    scores have no bands of their own keeps the fingerprint it had before they could."""
    path = _own_bands(tmp_path, None)
    shared = load_model(path)
    (services,) = shared.named
    assert not services.own_priority and services.loaded.model.priority == Priority()
    # the example as it was before its own bands (and before they existed), version and all:
    # the fingerprint it had then, bccae2daa91c
    path.write_text(path.read_text().replace("2026.12-two-products", "2026.11-two-products"))
    assert load_model(path).fingerprint == "bccae2daa91c"
    assert load_model(EXAMPLE).fingerprint != shared.fingerprint  # its bands are the model's
    hot = load_model(_own_bands(tmp_path, "[{name: hot, min: 60}, {name: warm, min: 0}]"))
    (named,) = hot.named
    assert named.priority_labels == ("Ahot", "Awarm", "Bhot", "Bwarm", "Chot", "Cwarm",
                                     "Dhot", "Dwarm")  # fmt: skip
    from connector.scoring import score

    from .test_scoring import CORPORATE_ACME, Events, dana

    ev = Events()
    ev.add("webinar_attended", 1, name="W", watched_share=1.0)  # +40
    for age in (1, 2, 3, 4, 5, 6, 7, 8):
        ev.page("https://example.com/docs/setup", age)  # +5 each, docs capped at 30
    got = {
        label: score(dana(), ev.items, CORPORATE_ACME, n.loaded, NOW)
        for label, n in (("shared", services), ("own", named))
    }
    assert got["shared"].score == got["own"].score == 70.0
    assert (got["shared"].priority, got["own"].priority) == ("A2", "Ahot")
    bad = _own_bands(tmp_path, "[{name: a, min: 10}, {name: b, min: 20}]")
    problems = validate_model_file(bad)
    assert any("band minimums must descend" in str(p) for p in problems), problems


@contextmanager
def _initialised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: Path
) -> Iterator[tuple[str, dict[str, Any]]]:
    """`leadscore init-properties` with `model` against a fresh sandbox: (what it printed,
    the contact properties as the SDK lists them), the sandbox still running."""
    with HubSpotSandbox.start(portal="fixtures/hubspot_demo_portal.json") as sb:
        monkeypatch.setenv("LEADSCORE_HUBSPOT_BASE_URL", sb.url)
        monkeypatch.setenv("LEADSCORE_HUBSPOT_TOKEN", sb.token)
        monkeypatch.setenv("LEADSCORE_STATE_PATH", str(tmp_path / "s.db"))
        monkeypatch.setenv("LEADSCORE_MODEL_PATH", str(model))
        res = CliRunner().invoke(cli, ["init-properties"])
        assert res.exit_code == 0, res.output
        from hubspot import HubSpot

        api = HubSpot(access_token=sb.token, host=sb.url).crm.properties.core_api
        yield res.output, {p.name: p for p in api.get_all("contacts").results}


def test_init_properties_gives_a_named_score_its_own_priority_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _own_bands(tmp_path, "[{name: hot, min: 60}, {name: warm, min: 0}]")
    with _initialised(tmp_path, monkeypatch, path) as (_, listed):
        own = [o.value for o in listed["leadscore_services_priority"].options]
        assert own == [g + b for g in "ABCD" for b in ("hot", "warm")]
        lifecycle = [o.value for o in listed["leadscore_priority"].options]
        assert lifecycle == [g + b for g in "ABCD" for b in "123"]


def test_renamed_bands_stop_the_sync_until_init_properties_adds_their_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A portal set up with the example (services bands 1/2/3), then the services bands
    renamed hot/warm/cold. HubSpot refuses a dropdown value that is no option: before, the
    sync wrote and every write naming a new label was refused and dead-lettered, and
    init-properties left an existing property as it was. Now the sync stops before writing,
    naming the property and its missing options; init-properties adds them (one PATCH: the
    model's labels first, the old ones kept after, contacts still hold them); the sync then
    writes the new labels."""
    (tmp_path / "renamed").mkdir()
    renamed = _own_bands(
        tmp_path / "renamed", "[{name: hot, min: 60}, {name: warm, min: 30}, {name: cold, min: 0}]"
    )
    with HubSpotSandbox.start(portal="fixtures/hubspot_demo_portal.json") as sb:
        monkeypatch.setenv("LEADSCORE_HUBSPOT_BASE_URL", sb.url)
        monkeypatch.setenv("LEADSCORE_HUBSPOT_TOKEN", sb.token)
        monkeypatch.setenv("LEADSCORE_STATE_PATH", str(tmp_path / "s.db"))
        monkeypatch.setenv("LEADSCORE_MODEL_PATH", str(EXAMPLE))
        run = CliRunner().invoke
        assert run(cli, ["init-properties"]).exit_code == 0
        monkeypatch.setenv("LEADSCORE_MODEL_PATH", str(renamed))
        sb.clear_log()
        res = run(cli, ["sync"])
        assert res.exit_code == 2, res.output
        new = [g + b for g in "ABCD" for b in ("hot", "warm", "cold")]
        assert (
            "HubSpot property leadscore_services_priority lacks the options "
            + ", ".join(new)
            + " (the model's priority labels; HubSpot refuses a value that is no option of "
            "its dropdown): run `leadscore init-properties` to add them"
        ) in res.output
        assert [r.path for r in sb.requests if "batch/update" in r.path] == []
        with sqlite3.connect(tmp_path / "s.db") as db:
            assert db.execute("SELECT COUNT(*) FROM dead_letters").fetchone() == (0,)
        sb.clear_log()
        res = run(cli, ["init-properties"])
        assert res.output == f"created: options {', '.join(new)} of leadscore_services_priority\n"
        patches = [(r.method, r.path, r.status) for r in sb.requests if r.method == "PATCH"]
        assert patches == [
            ("PATCH", "/crm/v3/properties/contacts/leadscore_services_priority", 200)
        ]
        from hubspot import HubSpot

        api = HubSpot(access_token=sb.token, host=sb.url).crm.properties.core_api
        prop = api.get_by_name("contacts", "leadscore_services_priority")
        assert [o.value for o in prop.options] == new + [g + b for g in "ABCD" for b in "123"]
        lifecycle = api.get_by_name("contacts", "leadscore_priority")
        assert [o.value for o in lifecycle.options] == [g + b for g in "ABCD" for b in "123"]
        again = run(cli, ["init-properties"])
        assert again.output == "all properties already exist; nothing to do\n"
        res = run(cli, ["sync"])
        assert res.exit_code == 0, res.output
        got = {cid: sb.contact(cid).properties.get("leadscore_services_priority")
               for cid in ("101", "102", "105", "112")}  # fmt: skip
        assert got == {"101": "Ahot", "102": "Dhot", "105": "Dcold", "112": "Bcold"}


def _bad_model(tmp_path: Path, scores: str) -> Path:
    text = EXAMPLE.read_text().replace("title_rules: titles.yaml", "title_rules: null")
    head, _, _ = text.partition("scores:\n")
    path = tmp_path / "bad.yaml"
    path.write_text(head + "scores:\n" + scores)
    return path


def test_validate_model_names_duplicate_names_and_property_clashes_with_their_line(
    tmp_path: Path,
) -> None:
    path = _bad_model(
        tmp_path,
        "  - {name: services, engagement: {rules: []}}\n"  # line +1
        "  - {name: fit, engagement: {rules: []}}\n"
        "  - {name: account, engagement: {rules: []}}\n"
        "  - {name: analytics, engagement: {rules: []}}\n"
        "  - {name: priority, engagement: {rules: []}}\n"
        "  - {name: Services-2, engagement: {rules: []}}\n"
        "  - {name: services, engagement: {rules: []}}\n"
        "  - name: web\n"
        "    engagment: {rules: []}\n"
        "  - name: docs\n"
        "    engagement:\n"
        "      rules:\n"
        "        - {name: d, category: docs, event: page_veiw, points: 5}\n",
    )
    first = path.read_text().splitlines().index("scores:") + 2  # the first score's line
    loaded, problems = validate_model_file(path)
    assert loaded is None
    assert problems == [
        f"line {first + 7} (score web): scores[7].engagement: required",
        f"line {first + 8} (score web): scores[7].engagment: unknown key "
        "(did you mean 'engagement'?)",
        f"line {first + 1} (score fit): scores[1].name: score name 'fit' would write "
        "leadscore_fit_score, which leadscore already writes",
        f"line {first + 2} (score account): scores[2].name: score name 'account' would write "
        "leadscore_account_grade, which leadscore already writes",
        f"line {first + 3} (score analytics): scores[3].name: score name 'analytics' is the "
        "lifecycle score's name (lifecycle_score)",
        f"line {first + 4} (score priority): scores[4].name: score name 'priority' is reserved "
        "(its properties would read as leadscore's own)",
        f"line {first + 5} (score Services-2): scores[5].name: score name 'Services-2' must be "
        "lowercase letters, digits and _ (a letter first)",
        f"line {first + 6} (score services): scores[6].name: duplicate score name 'services' "
        "(also scores[0])",
        f"line {first + 12} (score docs, rule d): scores[8].engagement.rules[0].category: "
        "unknown category 'docs'",
        f"line {first + 12} (score docs, rule d): scores[8].engagement.rules[0].event: "
        "unknown event type 'page_veiw' (did you mean 'page_view'?)",
    ]
    res = CliRunner().invoke(cli, ["validate-model", str(path)])
    assert res.exit_code == 1
    assert "duplicate score name 'services' (also scores[0])" in res.output
    assert "10 problem(s) in the model file" in res.output


def test_validate_model_accepts_the_example() -> None:
    res = CliRunner().invoke(cli, ["validate-model", str(EXAMPLE)])
    assert res.exit_code == 0, res.output
    assert res.output.startswith(f"OK 2026.12-two-products {_two().fingerprint}")


# ------------------------------------------------------------------ HubSpot: a sync


def test_a_sync_writes_every_score_of_a_contact_in_one_batch_input(two: Harness) -> None:
    first = two.pipeline.sync()
    assert first.status == "ok", first.message
    assert (first.scored, first.written) == (54, 54)
    for cid, (score, grade, priority, reasons) in SERVICES.items():
        props = _props(two, cid)
        shown = tuple(props.get(k) for k in SERVICES_KEYS)
        assert shown == (score, grade, reasons, priority), cid
    for cid, (score, grade, priority) in LIFECYCLE.items():  # today's names, unchanged
        props = _props(two, cid)
        assert (props["leadscore_score"], props["leadscore_grade"]) == (score, grade)
        assert props["leadscore_priority"] == priority
    # one batch update; each contact ONE input carrying both scores (and the stage once)
    (inputs,) = batch_updates(two)
    assert len(inputs) == 54 and len({i["id"] for i in inputs}) == 54
    dana = next(i["properties"] for i in inputs if i["id"] == "101")
    assert set(dana) == {
        "leadscore_score",
        "leadscore_grade",
        "leadscore_fit_score",
        "leadscore_reasons",
        "leadscore_model_version",
        "leadscore_profile_mismatch",
        "leadscore_priority",
        "leadscore_mql_reason",
        "lifecyclestage",
        "leadscore_scored_at",
        *SERVICES_KEYS,
    }
    assert all(set(SERVICES_KEYS) <= set(i["properties"]) for i in inputs)
    # the state DB: one named_scores row per contact, and what was written
    rows = sqlite3.connect(two.store.path).execute(
        "SELECT contact_id, score, engagement_points, fit_points, grade, priority, qualified, "
        "model_version, model_fingerprint FROM named_scores WHERE crm = 'hubspot' AND "
        "score_name = 'services' AND contact_id IN ('101', '102', '103') ORDER BY contact_id"
    )
    fp = _two().fingerprint
    assert rows.fetchall() == [
        ("101", 80.0, 80.0, 90.0, "A", "A1", 1, "2026.12-two-products", fp),
        ("102", 60.0, 60.0, -10.0, "D", "D1", 1, "2026.12-two-products", fp),
        ("103", 0.0, 0.0, -10.0, "D", "D3", 0, "2026.12-two-products", fp),
    ]
    assert two.store.get_written("hubspot", "101")["services_score"] == "80"
    stored = two.store.named_scores_of("hubspot", "101")
    fired = [(s.score_name, [r.rule for r in s.reasons if r.kind == "engagement"]) for s in stored]
    assert fired == [("services", ["docs_page", "webinar_attended", "pricing_repeat"])]

    two.sb.clear_log()
    second = two.pipeline.sync()  # idle: nothing of either score is written again
    assert (second.written, second.unchanged) == (0, 54)
    assert batch_updates(two) == []


def test_a_hand_edited_named_score_is_repaired_alone(two: Harness) -> None:
    assert two.pipeline.sync().written == 54
    sdk(two).crm.contacts.basic_api.update(
        "101", SimplePublicObjectInput(properties={"leadscore_services_score": "999"})
    )
    two.sb.clear_log()
    second = two.pipeline.sync()
    assert (second.written, second.repaired) == (1, 1)
    ((update,),) = batch_updates(two)
    assert update["id"] == "101"
    assert set(update["properties"]) == {"leadscore_services_score", "leadscore_scored_at"}
    assert _props(two, "101")["leadscore_services_score"] == "80"
    two.sb.clear_log()
    assert two.pipeline.sync().written == 0


def test_a_change_of_one_score_writes_only_that_score(two: Harness) -> None:
    """A new docs page view moves no analytics rule (generic pages score through the 30+
    bonus): only the services values change, and only they are written."""
    assert two.pipeline.sync().written == 54
    # Riley (102) reads the docs: +5 services, nothing for analytics
    two.clock[0] = NOW + timedelta(minutes=15)
    two.sb.add_event(
        "102",
        "e_visited_page",
        {"hs_url": "https://www.leadscore.example/docs/install"},
        NOW + timedelta(minutes=5),
    )
    two.sb.clear_log()
    second = two.pipeline.sync()
    assert second.written == 1
    ((update,),) = batch_updates(two)
    assert update["id"] == "102"
    assert update["properties"] == {
        "leadscore_services_score": "65",
        "leadscore_services_reasons": "qualified (60+); +60 asked to talk ('Request a demo'); "
        "+5 implementation docs; grade D: no profile match",
        "leadscore_scored_at": update["properties"]["leadscore_scored_at"],
    }


def test_a_sync_refuses_a_portal_without_the_named_properties(tmp_path: Path) -> None:
    for h in make_harness(tmp_path, build_demo_portal(), model=_two()):
        # the harness created the one-score properties only
        with pytest.raises(MissingPropertiesError) as err:
            h.adapter.check_properties()
        assert err.value.missing == sorted(SERVICES_KEYS)
        assert "run `leadscore init-properties` first" in str(err.value)
        summary = h.pipeline.sync()
        assert (summary.status, summary.exit_code, summary.written) == ("error", 2, 0)


def test_init_properties_model_creates_a_new_models_properties_before_its_rescore(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The missing-properties error of `rescore --model` says to run init-properties; with the
    configured one-score model, init-properties alone finds nothing to do."""
    with HubSpotSandbox.start(portal="fixtures/hubspot_demo_portal.json") as sb:
        monkeypatch.setenv("LEADSCORE_HUBSPOT_BASE_URL", sb.url)
        monkeypatch.setenv("LEADSCORE_HUBSPOT_TOKEN", sb.token)
        monkeypatch.setenv("LEADSCORE_STATE_PATH", str(tmp_path / "s.db"))
        monkeypatch.delenv("LEADSCORE_MODEL_PATH", raising=False)
        run = CliRunner().invoke
        assert run(cli, ["init-properties"]).exit_code == 0
        again = run(cli, ["init-properties"])
        assert again.output == "all properties already exist; nothing to do\n"
        res = run(cli, ["init-properties", "--model", str(EXAMPLE)])
        assert res.exit_code == 0, res.output
        assert res.output == "created: " + ", ".join(SERVICES_KEYS) + "\n"
        res = run(cli, ["init-properties", "--model", str(tmp_path / "none.yaml")])
        assert res.exit_code == 2
        assert str(tmp_path / "none.yaml") in res.output


def test_init_properties_creates_each_named_scores_properties(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _initialised(tmp_path, monkeypatch, EXAMPLE) as (output, listed):
        assert output.rstrip().endswith(", ".join(SERVICES_KEYS))
        got = {
            k: (listed[k].type, listed[k].field_type, listed[k].group_name, listed[k].label)
            for k in SERVICES_KEYS
        }
        assert got == {
            "leadscore_services_score": ("number", "number", "lead_scoring", "Services score"),
            "leadscore_services_grade": (
                "enumeration",
                "select",
                "lead_scoring",
                "Services grade (profile A-D)",
            ),
            "leadscore_services_reasons": (
                "string",
                "textarea",
                "lead_scoring",
                "Services score reasons",
            ),
            "leadscore_services_priority": (
                "enumeration",
                "select",
                "lead_scoring",
                "Services priority (grade + engagement)",
            ),
        }
        options = [o.value for o in listed["leadscore_services_priority"].options]
        assert options == [g + b for g in "ABCD" for b in "123"]
        assert [o.value for o in listed["leadscore_services_grade"].options] == list("ABCD")
        again = CliRunner().invoke(cli, ["init-properties"])
        assert again.output == "all properties already exist; nothing to do\n"


def _json(res: Any) -> Any:
    return json.loads(res.output)


# ------------------------------------------------------------------ rescore --score


def _services_changed(tmp_path: Path) -> LoadedModel:
    """The example with the services score changed only: threshold 50, a full webinar 45
    (its category capped at 45)."""
    text = EXAMPLE.read_text().replace("title_rules: titles.yaml", "title_rules: null")
    for old, new in (
        ("    threshold: 60", "    threshold: 50"),
        ("        webinar: {cap: 40}", "        webinar: {cap: 45}"),
        ("{when: {watched_share: {min: 0.9}}, points: 40, label: full}",
         "{when: {watched_share: {min: 0.9}}, points: 45, label: full}"),
    ):  # fmt: skip
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp_path / "services_v2.yaml"
    path.write_text(text)
    return load_model(path)


def _settle(h: Harness) -> None:
    """A first sync, then one that pulls back what our writes touched: the next sync (of a
    rescore) pulls nothing and writes only what the rescore changes."""
    assert h.pipeline.sync().written == 54
    h.clock[0] = NOW + timedelta(minutes=15)
    assert h.pipeline.sync().written == 0
    h.clock[0] = NOW + timedelta(minutes=30)


def test_rescore_of_one_named_score_writes_only_its_properties(
    two: Harness, tmp_path: Path
) -> None:
    from connector.ops.rescore import apply_rescore, preview_named, preview_rescore

    _settle(two)
    model = _services_changed(tmp_path)
    enricher = read_only_enricher(two.store)
    preview = preview_named(two.store, "hubspot", model, "services", enricher, two.clock[0])
    full = preview_rescore(two.store, "hubspot", model, enricher, two.clock[0])
    assert full.named["services"] == preview  # the full preview counts the same
    lifecycle_rows = two.store.db.execute("SELECT * FROM scores ORDER BY contact_id").fetchall()
    two.sb.clear_log()

    applied = apply_rescore(two.pipeline, model, score="services")

    assert applied.rescore is not None
    assert (applied.sync.written, applied.rescore.status) == (0, "ok")
    assert applied.rescore.written == preview.to_write == 4
    assert (preview.score_changes, preview.qualified_before, preview.qualified_after) == (2, 4, 4)
    inputs = [i for batch in batch_updates(two) for i in batch]
    assert [i["id"] for i in inputs] == ["101", "102", "104", "135"]
    assert all(set(i["properties"]) <= set(SERVICES_KEYS) for i in inputs)
    dana = next(i["properties"] for i in inputs if i["id"] == "101")
    assert dana == {
        "leadscore_services_score": "85",
        "leadscore_services_reasons": "qualified (50+); +45 watched webinar 'Scoring that "
        "sales trusts' (full); +30 implementation docs ×10 (docs capped at 30); +10 pricing "
        "page twice in 7 days; grade A: decision-making title, company size 51-5,000",
    }
    riley = next(i["properties"] for i in inputs if i["id"] == "102")
    assert riley == {
        "leadscore_services_reasons": "qualified (50+); +60 asked to talk ('Request a demo'); "
        "grade D: no profile match"
    }
    # the lifecycle scores were not touched; the services rows were
    assert two.store.db.execute("SELECT * FROM scores ORDER BY contact_id").fetchall() == (
        lifecycle_rows
    )
    (dana_row,) = two.store.named_scores_of("hubspot", "101")
    assert (dana_row.score, dana_row.priority, dana_row.qualified) == (85.0, "A1", True)
    two.sb.clear_log()
    again = apply_rescore(two.pipeline, model, score="services")
    assert again.rescore is not None and again.written == 0 and batch_updates(two) == []


def test_rescore_of_every_score_writes_both_in_one_input_and_of_the_lifecycle_score_alone(
    two: Harness, tmp_path: Path
) -> None:
    from connector.ops.rescore import apply_rescore

    _settle(two)
    model = _services_changed(tmp_path)
    two.sb.clear_log()
    only_lifecycle = apply_rescore(two.pipeline, model, score="analytics")
    assert only_lifecycle.written == 0  # the lifecycle score did not change: nothing written
    assert batch_updates(two) == []
    assert two.pipeline.named.only is None  # restored after the run
    applied = apply_rescore(two.pipeline, model)  # every score: the services changes now
    assert applied.written == 4
    assert all(
        set(i["properties"]) <= {*SERVICES_KEYS, "leadscore_scored_at"}
        for batch in batch_updates(two)
        for i in batch
    )


def test_rescore_cli_takes_score(two: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    import connector.ops.analysis as analysis
    from connector.active_model import activate

    assert two.pipeline.sync().written == 54
    activate(two.store, "hubspot", _two(), now=NOW)
    path = str(two.store.path)
    monkeypatch.setattr(analysis, "_now", lambda: NOW)
    res = CliRunner().invoke(cli, ["--state", path, "rescore", "--dry-run", "--score", "servces"])
    assert res.exit_code == 2
    assert res.output == (
        "error: --score: the model has no score 'servces' (did you mean 'services'?); "
        "its scores: analytics, services\n"
    )
    res = CliRunner().invoke(cli, ["--state", path, "rescore", "--dry-run", "--score", "services"])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines() == [
        "score services: 54 contact(s), 0 score change(s), qualified 4 → 4, 0 contact(s) to write",
        "Would update 0 contact(s) (score services only; dry run, nothing written). Apply with "
        "the same command without --dry-run.",
    ]
    res = CliRunner().invoke(
        cli, ["--state", path, "rescore", "--dry-run", "--score", "services", "--json"]
    )
    assert _json(res) == {
        "name": "services",
        "threshold": 60.0,
        "contacts": 54,
        "unscored": 0,
        "score_changes": 0,
        "qualified_before": 4,
        "qualified_after": 4,
        "to_write": 0,
        "dry_run": True,
    }
    res = CliRunner().invoke(cli, ["--state", path, "rescore", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "score services: 54 contact(s), 0 score change(s), qualified 4 → 4, 0 contact(s)" in (
        res.output.replace("\n", " ")
    )


# ------------------------------------------------------------------ explain


def test_explain_shows_every_score_the_lifecycle_one_first(two: Harness) -> None:
    from connector.active_model import activate

    assert two.pipeline.sync().written == 54
    activate(two.store, "hubspot", _two(), now=NOW)
    path = str(two.store.path)
    at = ["--now", "2026-11-01T12:00:00Z"]
    res = CliRunner().invoke(cli, ["--state", path, "explain", "101", *at])
    assert res.exit_code == 0, res.output
    out = res.output
    assert "score analytics 110 (engagement 110) · grade A (fit 90) · priority A1" in out
    assert (
        "score services: 80 (engagement 80) · grade A (fit 90) · priority A1 · qualified (60+)"
        in (out)
    )
    assert out.index("score analytics") < out.index("Engagement (services)")
    services = out[out.index("Engagement (services)") :]
    assert "│     40 │ webinar_attended │ watched webinar 'Scoring that sales trusts' (full)" in (
        services
    )
    assert "implementation docs ×10 (docs capped at 30)" in services
    assert "2026-10-23 10:13 page_view /docs/getting-started" in services
    res = CliRunner().invoke(cli, ["--state", path, "explain", "103", "--json", *at])
    doc = _json(res)
    assert (doc["score_name"], doc["score"], doc["priority"]) == ("analytics", -75, "D3")
    assert doc["named_scores"] == [
        {
            "name": "services",
            "score": 0.0,
            "engagement_points": 0.0,
            "fit_points": -10,
            "grade": "D",
            "priority": "D3",
            "threshold": 60.0,
            "qualified": False,
            "top_reasons": "grade D: no profile match",
            "reasons": doc["named_scores"][0]["reasons"],
        }
    ]
    # a `fired` force rule of the shared fit tests the rules of the score being computed:
    # services has no careers rule, so only the free e-mail (and no profile match) grade D
    assert [r["rule"] for r in doc["named_scores"][0]["reasons"]] == ["free_email", "grade"]


# ------------------------------------------------------------------ report --score


def test_report_of_a_named_score_tables_its_values_and_its_verdict(
    two: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connector.active_model import activate
    from connector.ops.report import build_report

    assert two.pipeline.sync().written == 54
    activate(two.store, "hubspot", _two(), now=NOW)
    lifecycle = build_report(two.store, "hubspot", NOW)
    services = build_report(two.store, "hubspot", NOW, score="services")
    assert (lifecycle.score_name, lifecycle.by_qualified) == (None, [])
    assert services.score_name == "services"
    # the funnel is the lifecycle's; the score tables are the services score's
    assert services.total == lifecycle.total
    counts = dict(
        two.store.db.execute(
            "SELECT qualified, count(*) FROM named_scores WHERE score_name = 'services' "
            "GROUP BY qualified"
        ).fetchall()
    )
    assert counts == {0: 50, 1: 4}
    assert [(f.key, f.contacts, f.mqls) for f in services.by_qualified] == [
        ("qualified", 4, 3),  # Morgan (a competitor) is qualified but no MQL
        ("not qualified", 50, 13),
    ]
    assert [(f.key, f.contacts) for f in services.by_band] == [
        ("<25", 26),
        ("25–49", 24),
        ("50–99", 4),
        ("100+", 0),
    ]
    assert [(f.key, f.contacts) for f in lifecycle.by_band] != [
        (f.key, f.contacts) for f in services.by_band
    ]
    # Dana is A1 on the lifecycle score (110) and on services (80, its own bands: 60+), as
    # the sync wrote her (the shared bands put her in A2: nobody reaches 100 there)
    assert services.priority_cell("A", "1").contacts == 1
    written = dict(
        two.store.db.execute(
            "SELECT priority, count(*) FROM named_scores WHERE score_name = 'services' "
            "GROUP BY priority"
        ).fetchall()
    )
    assert {f.key: f.contacts for f in services.by_priority if f.contacts} == written
    assert lifecycle.priority_cell("A", "1").contacts >= 1
    assert services.models_in_scores == [("2026.12-two-products", 54)]

    path = str(two.store.path)
    res = CliRunner().invoke(cli, ["--state", path, "report", "--score", "services", "--json"])
    assert res.exit_code == 0, res.output
    doc = _json(res)
    assert doc["score_name"] == "services"
    assert [(f["key"], f["contacts"]) for f in doc["by_qualified"]] == [
        ("qualified", 4),
        ("not qualified", 50),
    ]
    res = CliRunner().invoke(cli, ["--state", path, "report", "--score", "analytics", "--json"])
    assert (_json(res)["score_name"], _json(res)["by_qualified"]) == (None, [])
    res = CliRunner().invoke(cli, ["--state", path, "report", "--score", "sales"])
    assert res.exit_code == 2
    assert res.output == (
        "error: --score: the model has no score 'sales'; its scores: analytics, services\n"
    )
    res = CliRunner().invoke(cli, ["--state", path, "report", "--score", "services"])
    assert "By services verdict (its threshold)" in res.output


# ------------------------------------------------------------------ simulate --score


def test_simulate_a_named_score_counts_its_qualified_contacts(
    two: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import connector.ops.analysis as analysis
    from connector.active_model import activate
    from connector.ops.named_simulate import simulate_named_model, simulate_named_threshold

    assert two.pipeline.sync().written == 54
    model = _two()
    activate(two.store, "hubspot", model, now=NOW)
    (services,) = model.named
    enricher = read_only_enricher(two.store)
    sim = simulate_named_threshold(two.store, "hubspot", services, enricher, NOW, 50)
    assert (sim.contacts, sim.current_mqls, sim.simulated_mqls) == (54, 4, 4)
    # the curve against the stored services scores (computed by the sync at the same time)
    stored = [s.score for s in two.store.iter_named_scores("hubspot", "services")]
    assert sim.curve == [(t, sum(x >= t for x in stored)) for t, _ in sim.curve]
    assert [t for t, _ in sim.curve] == [10, 20, 30, 40, 50, 60, 70, 80, 90]
    assert dict(sim.curve)[40] == 15 and dict(sim.curve)[10] == 39
    low = simulate_named_threshold(two.store, "hubspot", services, enricher, NOW, 40)
    assert (low.current_mqls, low.simulated_mqls, low.gained, low.lost) == (4, 15, 11, 0)
    assert low.by_grade == {"A": [1, 1], "B": [1, 6], "C": [0, 3], "D": [2, 5]}
    # the same score in another model file: threshold 50, a full webinar 45
    (other,) = _services_changed(tmp_path).named
    vs = simulate_named_model(two.store, "hubspot", services, other, enricher, NOW, "a", "b")
    assert (vs.current_mqls, vs.simulated_mqls, vs.flips) == (4, 4, [])  # none at 50-59

    monkeypatch.setattr(analysis, "_now", lambda: NOW)
    path = str(two.store.path)
    args = ["--state", path, "simulate", "--score", "services", "--threshold", "40"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "services-qualified: 4 with score services, threshold 60 → 15 with threshold 40 " in (
        res.output
    )
    doc = _json(CliRunner().invoke(cli, [*args, "--json"]))
    assert (doc["score"], doc["current_mqls"], doc["simulated_mqls"]) == ("services", 4, 15)
    res = CliRunner().invoke(cli, ["--state", path, "simulate", "--score", "x", "--threshold", "1"])
    assert res.exit_code == 2 and "the model has no score 'x'" in res.output


def test_simulate_a_score_new_in_the_model_file_previews_it_against_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`simulate --score services --model two_products.yaml` on a portal whose model in force
    (the default) has no services score yet: nobody is services-qualified now, and the file's
    score qualifies exactly the contacts its own scoring puts at 60 or more."""
    import connector.ops.analysis as analysis
    from connector.scoring import score_rows

    for h in make_harness(tmp_path, build_demo_portal()):
        assert h.pipeline.sync().written == 54
        assert h.pipeline.model.named == ()
        (services,) = _two().named
        enricher = read_only_enricher(h.store)
        expected = set()
        for contact, rows in h.store.iter_contacts_with_event_rows("hubspot"):
            e = enricher.enrich_many([contact.email], NOW) if contact.email else {}
            found = {k.lower(): v for k, v in e.items()}.get((contact.email or "").lower())
            if score_rows(contact, rows, found, services.loaded, NOW).score >= 60:
                expected.add(contact.email or contact.id)
        assert len(expected) == 4  # as the two-score sync stores them (qualified: 4 of 54)
        monkeypatch.setattr(analysis, "_now", lambda: NOW)
        path = str(h.store.path)
        args = ["--state", path, "simulate", "--score", "services", "--model", str(EXAMPLE)]
        doc = _json(CliRunner().invoke(cli, [*args, "--json"]))
        assert (doc["score"], doc["contacts"]) == ("services", 54)
        assert (doc["current_mqls"], doc["simulated_mqls"]) == (0, 4)
        assert {f["label"] for f in doc["flips"]} == expected
        assert all(f["current"]["score"] == 0 for f in doc["flips"])
        res = CliRunner().invoke(cli, args)
        assert res.exit_code == 0, res.output
        assert "no score 'services'" in res.output
        # a name neither model has is still refused, naming the file's scores
        res = CliRunner().invoke(cli, [*args[:4], "x", *args[5:]])
        assert res.exit_code == 2
        assert "has no score 'x'" in res.output and "services" in res.output


# ------------------------------------------------------------------ Marketo


def test_marketo_writes_the_mapped_fields_of_a_named_score(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydantic import SecretStr

    from connector.crm.marketo import MarketoAdapter
    from connector.crm.marketo.config import MarketoConfig, named_field_map
    from connector.enrich.enricher import build_enricher
    from connector.pipeline import Pipeline
    from connector.sandbox.marketo import MarketoSandbox
    from connector.state.store import StateStore

    from .test_marketo_e2e import ANCHOR, FIXTURE, offline_settings, sandbox_clock

    assert named_field_map(["services", "product_a"]) == {
        "services_score": "servicesScore__c",
        "services_grade": "servicesGrade__c",
        "services_reasons": "servicesReasons__c",
        "services_priority": "servicesPriority__c",
        "product_a_score": "productAScore__c",
        "product_a_grade": "productAGrade__c",
        "product_a_reasons": "productAReasons__c",
        "product_a_priority": "productAPriority__c",
    }
    # an admin maps the priority onto a field of their own and skips the reasons
    config = MarketoConfig.with_overrides(
        field_map={"services_priority": "svcPriority__c", "services_reasons": ""}
    )
    with (
        MarketoSandbox.start(FIXTURE, now=ANCHOR) as sb,
        StateStore.open(tmp_path / "m.db") as store,
    ):
        adapter = MarketoAdapter(
            sb.url, SecretStr(sb.client_id), SecretStr(sb.client_secret), config=config
        )
        enricher = build_enricher(offline_settings(), cache=store.company_cache)
        try:
            pipeline = Pipeline(store, adapter, _two(), enricher=enricher, clock=sandbox_clock(sb))
            assert adapter.named_scores == ("services",)
            with pytest.raises(MissingPropertiesError) as err:  # not created in the admin UI
                adapter.check_properties()
            assert err.value.missing == [
                "servicesGrade__c (for services_grade)",
                "svcPriority__c (for services_priority)",
                "servicesScore__c (for services_score)",
            ]
            sb.instance.add_field({"name": "servicesScore__c", "dataType": "integer"})
            sb.instance.add_field({"name": "servicesGrade__c", "dataType": "string"})
            sb.instance.add_field({"name": "svcPriority__c", "dataType": "string"})
            first = pipeline.sync()
            assert first.status == "ok", first.message
            got = {
                cid: tuple(
                    sb.lead(int(cid)).values.get(f)
                    for f in ("servicesScore__c", "servicesGrade__c", "svcPriority__c")
                )
                for cid in ("101", "102", "103", "104", "112")
            }
            assert got == {
                "101": (80, "A", "A1"),
                "102": (60, "D", "D1"),
                "103": (0, "D", "D3"),
                "104": (70, "D", "D1"),
                "112": (15, "B", "B3"),
            }
            assert "servicesReasons__c" not in sb.lead(101).values
            assert sb.lead(101).values.get("leadScore") == 110  # the lifecycle score's field
            again = pipeline.sync()
            assert (again.status, again.written) == ("ok", 0)
        finally:
            adapter.close()


def test_calibrate_takes_the_lifecycle_score_by_default_and_a_named_one_by_name(
    two: Harness,
) -> None:
    """(tests/test_calibrate_named.py calibrates the services score on outcomes.)"""
    from connector.active_model import activate

    assert two.pipeline.sync().written == 54
    activate(two.store, "hubspot", _two(), now=NOW)
    path = str(two.store.path)
    out = str(Path(two.store.path).parent / "suggested.yaml")
    base = ["--state", path, "calibrate", "--now", "2026-11-01T12:00:00Z", "--out", out]
    res = CliRunner().invoke(cli, [*base, "--score", "services"])
    assert res.exit_code == 3  # no contact has reached SQL yet: nothing to learn from
    assert "Score services: a named score" in " ".join(res.output.split())
    res = CliRunner().invoke(cli, [*base, "--score", "service"])
    assert res.exit_code == 2 and "no score 'service' (did you mean 'services'?)" in res.output
    plain = CliRunner().invoke(cli, base)
    named = CliRunner().invoke(cli, [*base, "--score", "analytics"])
    assert plain.stderr.startswith("note: calibrating the lifecycle score (analytics)")
    assert (named.exit_code, named.stdout) == (plain.exit_code, plain.stdout)


def test_a_pipeline_whose_model_gains_a_named_score_checks_the_properties_again(
    tmp_path: Path,
) -> None:
    for h in make_harness(tmp_path, build_demo_portal()):
        assert h.pipeline.sync().status == "ok"
        assert h.pipeline.properties_checked and h.adapter.named_scores == ()
        h.pipeline.model = load_model()  # the same scores: nothing to check again
        assert h.pipeline.properties_checked
        h.pipeline.model = _two()  # a rollout with a services score (a worker follows it)
        assert not h.pipeline.properties_checked
        assert h.adapter.named_scores == ("services",)
        summary = h.pipeline.sync()  # the portal lacks them: nothing written, exit 2
        assert (summary.status, summary.exit_code, summary.written) == ("error", 2, 0)
        assert "leadscore_services_grade" in summary.message
