"""The suggested model's priority bands follow the suggested contact points
(connector/calibrate/priority_refit.py).

The portal: test_calibrate_accounts_refit's (test_calibrate's seeded history of 1,400 contacts
and the misset model, 44 company accounts); `rate_tolerance=0` makes calibrate tune the MQL
threshold 100 → 103 (scale 1.03). As of the calibration's `now`, the current model puts 36
contacts at 100+ (band 1), 33 at 50–99 (band 2) and 1,331 below; the suggested points (the
useless return_visits rule 90 → a few points) would leave 5, 46 and 1,349 there under the
bands left as they were: applying the suggestion would silently empty band 2 into band 3.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from connector.calibrate import CalibrationOptions, CalibrationResult, calibrate, write_suggestion
from connector.calibrate.core import Suggestion
from connector.calibrate.jsondoc import calibration_document
from connector.calibrate.priority_refit import (
    BY_SCALE,
    BY_SHARE,
    BY_THRESHOLD,
    LAST,
    SCALED,
    SHARES,
    PriorityRefit,
    keep_share,
    refit_priority,
)
from connector.calibrate.render import (
    print_calibration,
    priority_refit_lines,
    render_calibration_html,
)
from connector.calibrate.suggest import load_suggested
from connector.model.loader import LoadedModel, load_model, validate_model_file
from connector.model.schema import PriorityBand
from connector.ops import simulate
from connector.ops.common import rescore_stored
from connector.state.store import StateStore
from tests.test_calibrate import CRM, NOW, build_history, misset_model
from tests.test_calibrate_accounts_refit import build_accounts


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StateStore, LoadedModel]]:
    store = StateStore.memory()
    assert build_accounts(store) == 44
    yield store, misset_model(tmp_path_factory.mktemp("bands"))
    store.close()


def _run(store: StateStore, model: LoadedModel) -> CalibrationResult:
    options = CalibrationOptions(rate_tolerance=0.0)
    return calibrate(store, CRM, model, now=NOW, options=options)


@pytest.fixture(scope="module")
def result(portal: tuple[StateStore, LoadedModel]) -> CalibrationResult:
    return _run(*portal)


def _bands(p: PriorityRefit) -> list[tuple[str, float, float, str]]:
    return [(b.name, b.current, b.suggested, b.how) for b in p.bands]


def _counts(p: PriorityRefit) -> list[tuple[int | None, int | None, int | None]]:
    return [(b.contacts_now, b.contacts_suggested, b.contacts_unrefit) for b in p.bands]


def _labelled(store: StateStore, model: LoadedModel) -> Counter[str]:
    """Contacts per band as the sync labels them with `model` (the engine's own priority)."""
    return Counter(
        results[0].priority[1:] for _, _, results in rescore_stored(store, CRM, [model], None, NOW)
    )


def test_the_default_bands_follow_the_suggested_points(
    portal: tuple[StateStore, LoadedModel], result: CalibrationResult, tmp_path: Path
) -> None:
    store, current = portal
    s = result.suggestion
    assert s is not None and (s.current_threshold, s.threshold) == (100, 103)
    p = s.priority
    assert p is not None and (p.method, p.contacts, p.scale, p.changed) == (
        SHARES,
        1400,
        1.03,
        True,
    )
    # band 1 is the MQL bar (its minimum is the threshold): it follows the threshold; band 2
    # keeps the contacts at or above it, 69 now (36 + 33), 68 with the suggestion; the last
    # band's minimum decides nothing and is scaled (0)
    assert _bands(p) == [
        ("1", 100, 103, BY_THRESHOLD),
        ("2", 50, 20, BY_SHARE),
        ("3", 0, 0, LAST),
    ]
    assert _counts(p) == [(36, 5, 5), (33, 63, 46), (1331, 1332, 1349)]
    # the file gains the section (the shipped model leaves it to its defaults)
    assert s.additions[()] == [
        (
            "priority",
            {"bands": [{"name": n, "min": m} for n, m in (("1", 103), ("2", 20), ("3", 0))]},
        )
    ]
    written = write_suggestion(result, misset_model(tmp_path), tmp_path / "s.yaml")
    again, problems = validate_model_file(tmp_path / "s.yaml")
    assert problems == [] and again is not None and again.fingerprint == written.fingerprint
    assert written.model.priority.bands == [
        PriorityBand(name="1", min=103),
        PriorityBand(name="2", min=20),
        PriorityBand(name="3", min=0),
    ]
    text = (tmp_path / "s.yaml").read_text(encoding="utf-8")
    assert (
        "\npriority: {bands: [{name: '1', min: 103}, {name: '2', min: 20}, {name: '3', min: 0}]}"
        "  # NEW: suggested by calibrate\n" in text
    )
    assert (
        "# Priority bands refit on 1400 stored contacts (contacts now -> with this model):\n"
        "#   band 1: min 100 -> 103 (the MQL threshold's; 36 -> 5 contacts)\n"
        "#   band 2: min 50 -> 20 (as many contacts at or above it; 33 -> 63 contacts)\n"
        "#   band 3: min 0 -> 0 (last band; 1331 -> 1332 contacts)\n"
    ) in text
    assert "the priority\n# bands and version differ from it." in text
    # the sync's own labels on the stored data: what the report counts, now and applied
    assert _labelled(store, current) == {"1": 36, "2": 33, "3": 1331}
    assert _labelled(store, written) == {"1": 5, "2": 63, "3": 1332}


def test_the_report_lists_the_bands(result: CalibrationResult) -> None:
    s = result.suggestion
    assert s is not None
    lines = priority_refit_lines(s)
    assert lines == [
        "Priority bands refit to the suggested contact points, on 1,400 stored contacts scored "
        "with both models (each band keeps its share of them; a band at the MQL threshold "
        "follows it; the last band's minimum is scaled): 1 100 → 103 (the MQL threshold's); "
        "2 50 → 20 (as many contacts at or above it); 3 0 → 0 (last band).",
        "Contacts per band, now → with the suggestion: 1: 36 → 5; 2: 33 → 63; 3: 1,331 → 1,332 "
        "(with the bands left as they were: 5, 46, 1,349).",
    ]
    console = Console(width=400, record=True)
    print_calibration(console, result)
    printed = console.export_text()
    page = render_calibration_html(result)
    for line in lines:
        assert line in printed
        assert f"<p>{html.escape(line)}</p>" in page
    doc = calibration_document(result, None)["suggestion"]["priority"]
    assert {k: doc[k] for k in ("scale", "method", "contacts", "changed")} == {
        "scale": 1.03,
        "method": SHARES,
        "contacts": 1400,
        "changed": True,
    }
    assert doc["bands"][1] == {
        "name": "2",
        "current": 50,
        "suggested": 20,
        "how": BY_SHARE,
        "contacts_now": 33,
        "contacts_suggested": 63,
        "contacts_unrefit": 46,
    }


@pytest.mark.parametrize("accounts", [True, False])
def test_one_pass_over_the_stored_contacts_per_calibration(
    portal: tuple[StateStore, LoadedModel], accounts: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bands' refit reads the accounts refit's simulation (a contact's score does not
    read the accounts section): one `model_sides` pass per calibration, with account scoring
    on (was two) or off; the suggestion is byte for byte the one of a pass of its own."""
    store, current = portal
    calls: list[bool] = []
    real = simulate.model_sides

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(bool(kwargs.get("accounts")))
        return real(*args, **kwargs)

    monkeypatch.setattr(simulate, "model_sides", counting)
    options = CalibrationOptions(accounts=accounts, rate_tolerance=0.0)
    shared = calibrate(store, CRM, current, now=NOW, options=options).suggestion
    assert calls == [accounts]
    assert shared is not None and shared.priority is not None and shared.threshold == 103
    assert (shared.priority.method, shared.priority.contacts) == (SHARES, 1400)
    assert _bands(shared.priority) == [
        ("1", 100, 103, BY_THRESHOLD),
        ("2", 50, 20, BY_SHARE),
        ("3", 0, 0, LAST),
    ]
    assert _counts(shared.priority) == [(36, 5, 5), (33, 63, 46), (1331, 1332, 1349)]
    a = shared.accounts
    assert a is not None and (a.suggested_mqa_threshold, a.current_mqas, a.kept_mqas) == (
        (67, 23, 18) if accounts else (103, None, None)
    )

    # the bands on a pass of their own (as before): the same file, byte for byte
    def alone(*args: Any, **kwargs: Any) -> Any:
        return refit_priority(*args, **{**kwargs, "sim": None})

    monkeypatch.setattr("connector.calibrate.core.refit_priority", alone)
    calls.clear()
    before = calibrate(store, CRM, current, now=NOW, options=options).suggestion
    assert calls == ([True, False] if accounts else [False])
    assert before is not None and before.text == shared.text
    assert (before.priority, before.accounts) == (shared.priority, shared.accounts)


def test_bands_the_file_writes_are_edited_in_place_each_keeping_its_share(
    portal: tuple[StateStore, LoadedModel], tmp_path: Path
) -> None:
    """Bands of the team's own (none at the MQL threshold): each minimum keeps the contacts
    at or above it, edited where it stands."""
    store, current = portal
    raw = yaml.safe_load(Path(current.path).read_text(encoding="utf-8"))
    raw["priority"] = {
        "bands": [
            {"name": "hot", "min": 120},
            {"name": "warm", "min": 60},
            {"name": "cold", "min": 10},
        ]
    }
    path = tmp_path / "bands.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    s = _run(store, load_model(path)).suggestion
    assert s is not None and s.threshold == 103 and s.priority is not None
    assert _bands(s.priority) == [
        ("hot", 120, 79, BY_SHARE),
        ("warm", 60, 23, BY_SHARE),
        ("cold", 10, 10, LAST),  # 10.3
    ]
    # 24 contacts at 120+ now, 24 at 79+ with the suggestion (5 at 120+); 62 at 60+, 61 at 23+
    assert _counts(s.priority) == [(24, 24, 5), (38, 37, 37), (1338, 1339, 1358)]
    assert {k: v for k, v in s.edits.items() if k[0] == "priority"} == {
        ("priority", "bands", 0, "min"): 79,
        ("priority", "bands", 1, "min"): 23,
    }
    assert () not in s.additions
    assert "priority:\n  bands:\n  - name: hot\n    min: 79\n  - name: warm\n    min: 23\n" in (
        s.text
    )
    assert [(b.name, b.min) for b in s.model.model.priority.bands] == [
        ("hot", 79),
        ("warm", 23),
        ("cold", 10),
    ]


def test_nothing_changed_no_priority_section(portal: tuple[StateStore, LoadedModel]) -> None:
    """A suggestion that scores every contact as the current model does, at the same MQL
    threshold: every band already keeps its share, so the (default) bands stay, no edit, and
    the file gains no `priority:` section (its fingerprint is the current model's)."""
    store, current = portal
    edits, adds, p = refit_priority(current, 100, {}, {}, store=store, crm=CRM, now=NOW)
    assert (edits, adds, p.changed, p.method, p.scale) == ({}, {}, False, SHARES, 1.0)
    assert _bands(p) == [("1", 100, 100, BY_THRESHOLD), ("2", 50, 50, BY_SHARE), ("3", 0, 0, LAST)]
    assert _counts(p) == [(36, 36, 36), (33, 33, 33), (1331, 1331, 1331)]
    loaded, text = load_suggested(current, edits, (), adds)
    assert "priority" not in yaml.safe_load(text)
    assert loaded.fingerprint == current.fingerprint


def test_too_few_contacts_the_bands_are_scaled(tmp_path: Path) -> None:
    """40 stored contacts (under MIN_CONTACTS): no shares to keep; the minimums are scaled by
    the MQL threshold's change, as the accounts section's numbers are; scale 1: kept."""
    store = StateStore.memory()
    build_history(store, 40)
    current = misset_model(tmp_path)
    edits, adds, p = refit_priority(current, 10, {}, {}, store=store, crm=CRM, now=NOW)
    assert (p.method, p.contacts, p.scale) == (SCALED, 40, 0.1)
    assert _bands(p) == [("1", 100, 10, BY_SCALE), ("2", 50, 5, BY_SCALE), ("3", 0, 0, LAST)]
    assert _counts(p) == [(None, None, None)] * 3
    assert edits == {}
    loaded, _ = load_suggested(current, edits, (), adds)
    assert [(b.name, b.min) for b in loaded.model.priority.bands] == [
        ("1", 10),
        ("2", 5),
        ("3", 0),
    ]
    kept = refit_priority(current, 100, {}, {}, store=store, crm=CRM, now=NOW)
    assert kept[:2] == ({}, {}) and not kept[2].changed
    s = load_suggested(current, {("lifecycle", "mql", "threshold"): 10}, (), adds)[0]
    lines = priority_refit_lines(
        _suggestion_with(s, p, current_threshold=100, threshold=10)  # the report's wording
    )
    assert lines == [
        "Priority bands refit, scaled with the contact points (×0.1, the MQL threshold's 100 → "
        "10): 40 stored contact(s) scored, too few (under 50) to keep each band's share of: "
        "1 100 → 10 (scaled); 2 50 → 5 (scaled); 3 0 → 0 (last band)."
    ]


def _suggestion_with(
    model: LoadedModel, p: PriorityRefit, *, current_threshold: float, threshold: float
) -> Suggestion:
    return Suggestion(
        version=model.version,
        threshold=threshold,
        current_threshold=current_threshold,
        target_mql_rate=0.1,
        train_mql_rate=0.1,
        train_mql_rate_current=0.1,
        scale=1.0,
        changes=(),
        caps=(),
        grades=None,
        edits={},
        additions={},
        candidates=(),
        header=(),
        model=model,
        text="",
        priority=p,
    )


def test_keep_share_exact_cases() -> None:
    now = Counter({120: 2, 90: 3, 60: 5, 10: 10})
    new = Counter({200: 1, 150: 1, 80: 3, 40: 5, 5: 10})
    # 5 now at 90+: 5 with the suggestion at 41..80; the scaled 60 is one of them
    assert keep_share(now, new, 90, 60) == 60
    # ... else the middle of the gap: (41 + 80) // 2
    assert keep_share(now, new, 90, 90) == 60
    assert keep_share(now, new, 90, 30) == 60
    # 10 now at 60+: 10 with the suggestion at 6..40, the scaled 50 not among them: the middle
    assert keep_share(now, new, 60, 50) == 23
    # 2 now at 100+: 2 at 81..150
    assert keep_share(now, new, 100, 103) == 103
    assert keep_share(now, new, 100, 170) == 115
    # nobody now at 121+: nobody with the suggestion, above every score
    assert keep_share(now, new, 121, 103) == 201
    # everybody: next to the lowest (or the scaled one below it)
    assert keep_share(now, new, 0, 3) == 3
    assert keep_share(now, new, 0, 9) == 5


def test_a_named_scores_own_bands_are_refit_as_the_lifecycle_scores_are(
    portal: tuple[StateStore, LoadedModel], result: CalibrationResult, tmp_path: Path
) -> None:
    """`calibrate --score twin`: a named score with the lifecycle score's rules, threshold and
    bands written as its own. Its bands are refit on its contacts' shown scores exactly as the
    lifecycle score's are (the same minimums, the same counts), and the suggested file edits
    them in its entry, in place; the model's own bands are not touched. Before, a named
    score's run left its bands as they were, so band 1 no longer matched its threshold."""
    store, current = portal
    raw = yaml.safe_load(Path(current.path).read_text(encoding="utf-8"))
    twin = {
        "name": "twin",
        "threshold": 100,
        "priority": {
            "bands": [{"name": n, "min": m} for n, m in (("1", 100), ("2", 50), ("3", 0))]
        },
        "engagement": raw["engagement"],
    }
    raw["scores"] = [twin]
    path = tmp_path / "twin.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    model = load_model(path)
    named = calibrate(
        store, CRM, model, now=NOW, options=CalibrationOptions(rate_tolerance=0.0), score="twin"
    )
    s, lifecycle = named.suggestion, result.suggestion
    assert s is not None and lifecycle is not None, named.insufficient
    assert (s.current_threshold, s.threshold) == (100, 103)
    assert s.priority is not None and lifecycle.priority is not None
    assert (
        _bands(s.priority)
        == _bands(lifecycle.priority)
        == [
            ("1", 100, 103, BY_THRESHOLD),
            ("2", 50, 20, BY_SHARE),
            ("3", 0, 0, LAST),
        ]
    )
    assert _counts(s.priority) == _counts(lifecycle.priority)
    assert s.edits[("scores", 0, "priority", "bands", 0, "min")] == 103
    assert s.edits[("scores", 0, "priority", "bands", 1, "min")] == 20
    assert not [k for k in s.edits if k[0] == "priority"] and () not in s.additions
    written = write_suggestion(named, model, tmp_path / "twin.suggested.yaml")
    own = written.named_score("twin")
    assert own is not None and own.own_priority
    assert [(b.name, b.min) for b in own.loaded.model.priority.bands] == [
        ("1", 103), ("2", 20), ("3", 0)
    ]  # fmt: skip
    assert written.model.priority == model.model.priority  # the lifecycle's: as they were
    text = (tmp_path / "twin.suggested.yaml").read_text(encoding="utf-8")
    assert (
        "# Priority bands of twin refit on 1400 stored contacts (contacts now -> with this "
        "model):\n"
        "#   band 1: min 100 -> 103 (the MQL threshold's; 36 -> 5 contacts)\n"
        "#   band 2: min 50 -> 20 (as many contacts at or above it; 33 -> 63 contacts)\n"
    ) in text
    assert "its threshold, its priority bands and version differ;" in text
