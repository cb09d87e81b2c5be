"""The suggested model's `accounts:` section follows the suggested contact points' scale
(connector/calibrate/accounts_refit.py).

The portal: test_calibrate's seeded history (1,400 contacts, the misset model) whose 132
contacts first engaged within the last 60 days are grouped, 3 by 3 in id order, into 44
company accounts (every third one retail: grade C; the others grade B), so that accounts have
live points at the calibration's `now`. `rate_tolerance=0` makes calibrate tune the MQL
threshold 100 → 103 (scale 1.03), so the contact-scale numbers move too.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from connector.calibrate import CalibrationOptions, CalibrationResult, calibrate, write_suggestion
from connector.calibrate.accounts import ThresholdRow
from connector.calibrate.accounts_refit import (
    KEPT,
    SCALED,
    AccountNumber,
    OfflineEnricher,
    contact_scale_numbers,
    keep_mqas,
    scaled,
)
from connector.calibrate.cli import state_enrich_fn
from connector.calibrate.jsondoc import calibration_document
from connector.calibrate.render import account_refit_lines, print_calibration
from connector.calibrate.suggest import edits_or_additions, load_suggested
from connector.model.loader import LoadedModel, load_model, validate_model_file
from connector.ops.simulate import simulate_model
from connector.ops.simulate_accounts import with_mqa_threshold
from connector.settings import load_settings
from connector.state.accounts import ContactAccount
from connector.state.store import StateStore
from connector.types import CrmCompany
from tests.test_calibrate import CRM, NOW, build_history, misset_model

SIZE = 3  # contacts per account


def build_accounts(store: StateStore) -> int:
    """The module docstring's accounts; returns how many."""
    ids = sorted(build_history(store, 1400).converted)
    recent = [
        c.id
        for c, events in store.iter_contacts_with_events(CRM, ids)
        if min(e.occurred_at for e in events) > NOW - timedelta(days=60)
    ]
    n = len(recent) // SIZE
    since = NOW - timedelta(days=500)
    store.upsert_crm_companies(
        CRM,
        [
            CrmCompany(
                str(9000 + k),
                f"co{k}.com",
                f"Co {k}",
                "retail" if k % 3 == 2 else "computer software",
                500,
                2e7 if k % 3 == 0 else 1e6,
                "US",
            )
            for k in range(n)
        ],
        since,
    )
    store.set_contact_accounts(
        CRM,
        [
            ContactAccount(cid, f"company:{9000 + i // SIZE}", "primary_company")
            for i, cid in enumerate(recent[: n * SIZE])
        ],
        since,
    )
    return n


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StateStore, LoadedModel]]:
    store = StateStore.memory()
    assert build_accounts(store) == 44
    yield store, misset_model(tmp_path_factory.mktemp("refit"))
    store.close()


def _run(store: StateStore, model: LoadedModel, accounts: bool) -> CalibrationResult:
    options = CalibrationOptions(accounts=accounts, rate_tolerance=0.0)
    return calibrate(store, CRM, model, now=NOW, options=options)


@pytest.fixture(scope="module")
def result(portal: tuple[StateStore, LoadedModel]) -> CalibrationResult:
    return _run(*portal, accounts=True)


SCALED_NUMBERS = [
    ("accounts.engagement.per_contact_cap", "per_contact_cap", 50, 52),
    ("accounts.engagement.breadth.tiers[1].points", "breadth tier 3+ people", 30, 31),
    ("accounts.engagement.committee.tiers[1].points", "committee tier 3+ roles", 20, 21),
    ("accounts.engagement.rules[0].points", "account rule pricing_together", 25, 26),
    ("accounts.mqa.contact_mql_threshold", "mqa.contact_mql_threshold", 60, 62),
]
GAINED = ("Co 13 (co13.com)", "Co 25 (co25.com)")
LOST = (
    "Co 0 (co0.com)",
    "Co 18 (co18.com)",
    "Co 24 (co24.com)",
    "Co 40 (co40.com)",
    "Co 9 (co9.com)",
)


def _rows(numbers: tuple[AccountNumber, ...]) -> list[tuple[str, str, float, float]]:
    return [(n.key, n.label, n.current, n.suggested) for n in numbers]


def test_the_accounts_section_moves_to_the_suggested_contact_scale(
    result: CalibrationResult, tmp_path: Path
) -> None:
    s = result.suggestion
    assert s is not None and (s.current_threshold, s.threshold) == (100, 103)
    a = s.accounts
    assert a is not None and a.scale == 1.03
    assert _rows(a.numbers) == [
        *SCALED_NUMBERS,
        ("accounts.mqa.threshold", "mqa.threshold", 100, 67),
    ]
    # breadth.min_points 10 x 1.03 and the small tiers round back to what they were
    assert (a.method, a.accounts, a.current_mqas, a.suggested_mqas, a.kept_mqas) == (
        KEPT,
        44,
        23,
        20,
        18,
    )
    assert (a.gained, a.lost) == (GAINED, LOST)
    # the file as written loads and validates, with exactly these numbers
    loaded = write_suggestion(result, misset_model(tmp_path), tmp_path / "s.yaml")
    again, problems = validate_model_file(tmp_path / "s.yaml")
    assert problems == [] and again is not None and again.fingerprint == loaded.fingerprint
    section = loaded.model.accounts
    assert section is not None
    eng, mqa = section.engagement, section.mqa
    assert (eng.per_contact_cap, eng.breadth.min_points, eng.top_contacts) == (52, 10, 10)
    assert [t.points for t in eng.breadth.tiers] == [15, 31]
    assert [t.points for t in eng.committee.tiers] == [10, 21]
    assert [r.points for r in eng.rules] == [26]
    assert (mqa.threshold, mqa.contact_mql_threshold, mqa.min_people) == (67, 62, 2)
    assert section.fit == load_model().model.accounts.fit  # type: ignore[union-attr]
    text = (tmp_path / "s.yaml").read_text(encoding="utf-8")
    assert (
        "    per_contact_cap: 52\n    top_contacts: 10\n    breadth:\n      within_days: 30\n"
        "      min_points: 10\n" in text
    )
    assert (
        "# Accounts refit to the new contact scale (x1.03, the MQL threshold's): per_contact_cap "
        "50 -> 52; breadth tier 3+ people 30 -> 31; committee tier 3+ roles 20 -> 21; account "
        "rule pricing_together 25 -> 26; mqa.contact_mql_threshold 60 -> 62; mqa.threshold "
        "100 -> 67.\n# MQA threshold chosen to keep the current MQAs: 23 MQA(s) now, 20 with "
        "this model on the same data (18 kept).\n"
    ) in text


def test_applying_the_suggestion_keeps_the_current_mqas(
    portal: tuple[StateStore, LoadedModel], result: CalibrationResult
) -> None:
    """`simulate --model` on the suggested file: the MQAs the report counts, 18 of the 23
    kept; the same suggestion with the MQA threshold left at 100 (what calibrate wrote
    before) would have kept 10: 13 would stop being MQAs, 2 become one."""
    store, current = portal
    s = result.suggestion
    assert s is not None
    sim = simulate_model(store, CRM, current, s.model, None, NOW, accounts=True)
    acc = sim.accounts
    assert acc is not None
    assert (acc.accounts, acc.current_mqas, acc.simulated_mqas) == (44, 23, 20)
    assert tuple(sorted(f.label for f in acc.flips if f.gained)) == GAINED
    assert tuple(sorted(f.label for f in acc.flips if not f.gained)) == LOST
    old = simulate_model(
        store, CRM, current, with_mqa_threshold(s.model, 100), None, NOW, accounts=True
    ).accounts
    assert old is not None and (old.simulated_mqas, old.stopped_mqa, old.became_mqa) == (12, 13, 2)


def test_the_report_says_what_it_did_to_the_accounts(result: CalibrationResult) -> None:
    assert account_refit_lines(result) == [
        "Accounts section refit to the suggested contact points (scale ×1.03, the MQL "
        "threshold's 100 → 103): per_contact_cap 50 → 52; breadth tier 3+ people 30 → 31; "
        "committee tier 3+ roles 20 → 21; account rule pricing_together 25 → 26; "
        "mqa.contact_mql_threshold 60 → 62; mqa.threshold 100 → 67.",
        "MQA threshold 100 → 67, chosen on the stored data to keep the current MQAs: of 44 "
        "account(s), 23 MQA(s) with the current model, 20 with the suggested one (18 kept; "
        "would become MQAs: Co 13 (co13.com), Co 25 (co25.com); would stop being MQAs: Co 0 "
        "(co0.com), Co 18 (co18.com), Co 24 (co24.com), Co 40 (co40.com), Co 9 (co9.com)).",
    ]
    # every account's members are inside their horizon: no MQA threshold from outcomes; one
    # would be on the current model's points, and the report says so
    a = result.accounts
    assert a is not None and a.labelled == 0 and a.suggested is None
    row = ThresholdRow(174, 3, 2, 1, 0, 1.0, 0.25, 0.75)
    with_one = dataclasses.replace(result, accounts=dataclasses.replace(a, suggested=row))
    assert account_refit_lines(with_one)[2] == (
        "The MQA threshold the account outcomes suggest below (174) is on the current model's "
        "points."
    )
    console = Console(width=400, record=True)
    print_calibration(console, result)
    printed = console.export_text()
    for line in account_refit_lines(result):
        assert line in printed
    doc = calibration_document(result, None)["suggestion"]["accounts"]
    assert doc["numbers"][0] == {
        "key": "accounts.engagement.per_contact_cap",
        "label": "per_contact_cap",
        "current": 50,
        "suggested": 52,
    }
    assert {k: doc[k] for k in ("scale", "method", "mqa_threshold", "suggested_mqa_threshold")} == {
        "scale": 1.03,
        "method": KEPT,
        "mqa_threshold": 100,
        "suggested_mqa_threshold": 67,
    }
    assert (doc["current_mqas"], doc["suggested_mqas"], doc["kept_mqas"]) == (23, 20, 18)
    assert (doc["gained"], doc["lost"]) == (list(GAINED), list(LOST))


def test_with_the_clis_enrichment_the_accounts_are_scored_as_simulate_does(
    portal: tuple[StateStore, LoadedModel],
) -> None:
    """The CLI's enrichment (`state_enrich_fn`, which never calls out) also answers the
    account roll-up's `local_company`; the contacts' enrichment changes their profile, so the
    refit differs (the MQL threshold 100 → 98), and the MQAs counted are `simulate`'s."""
    store, current = portal
    enrich = state_enrich_fn(load_settings(), store)
    options = CalibrationOptions(accounts=True, rate_tolerance=0.0)
    r = calibrate(store, CRM, current, now=NOW, options=options, enrich=enrich)
    s = r.suggestion
    assert s is not None and s.accounts is not None and s.threshold == 98
    a = s.accounts
    assert _rows(a.numbers) == [
        ("accounts.engagement.per_contact_cap", "per_contact_cap", 50, 49),
        ("accounts.engagement.breadth.tiers[1].points", "breadth tier 3+ people", 30, 29),
        ("accounts.engagement.rules[0].points", "account rule pricing_together", 25, 24),
        ("accounts.mqa.contact_mql_threshold", "mqa.contact_mql_threshold", 60, 59),
        ("accounts.mqa.threshold", "mqa.threshold", 100, 64),
    ]
    assert (a.current_mqas, a.suggested_mqas, a.kept_mqas) == (23, 20, 18)
    assert enrich is not None
    sim = simulate_model(store, CRM, current, s.model, OfflineEnricher(enrich), NOW, accounts=True)
    assert sim.accounts is not None
    assert (sim.accounts.current_mqas, sim.accounts.simulated_mqas) == (23, 20)


def test_without_account_scoring_the_mqa_threshold_scales_with_the_rest(
    portal: tuple[StateStore, LoadedModel], result: CalibrationResult
) -> None:
    r = _run(*portal, accounts=False)
    s = r.suggestion
    assert s is not None and s.accounts is not None and s.threshold == 103
    a = s.accounts
    assert _rows(a.numbers) == [
        *SCALED_NUMBERS,
        ("accounts.mqa.threshold", "mqa.threshold", 100, 103),
    ]
    assert (a.method, a.accounts, a.current_mqas, a.gained) == (SCALED, 0, None, ())
    assert account_refit_lines(r)[1] == (
        "MQA threshold scaled with the contact points: no account data to keep the current MQAs "
        "with (account scoring off, or no account with a live member)."
    )
    # the contact side of the suggestion is the same either way
    assert result.suggestion is not None and s.changes == result.suggestion.changes


def test_a_model_without_accounts_calibrates_as_before(
    portal: tuple[StateStore, LoadedModel], tmp_path: Path
) -> None:
    store, current = portal
    raw = yaml.safe_load(Path(current.path).read_text(encoding="utf-8"))
    del raw["accounts"]
    path = tmp_path / "no-accounts.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    r = _run(store, load_model(path), accounts=True)
    s = r.suggestion
    assert r.accounts is None and s is not None and s.accounts is None
    assert s.threshold == 103
    assert not [p for p in [*s.edits, *s.additions] if p[:1] == ("accounts",)]
    assert "accounts" not in yaml.safe_load(s.text) and "Accounts refit" not in s.text
    assert account_refit_lines(r) == []


def test_contact_scale_numbers_scaled_to_a_tenth() -> None:
    """The brief's case: points and MQL threshold at a tenth (a webinar 50 → 5)."""
    section = load_model().model.accounts
    assert section is not None
    got = [(label, value, scaled(value, 0.1)) for _, label, value in contact_scale_numbers(section)]
    assert got == [
        ("per_contact_cap", 50, 5),
        ("breadth.min_points", 10, 1),
        ("breadth tier 2+ people", 15, 2),
        ("breadth tier 3+ people", 30, 3),
        ("committee tier 2+ roles", 10, 1),
        ("committee tier 3+ roles", 20, 2),
        ("account rule pricing_together", 25, 2),  # 2.5: rounded to even, as caps are
        ("mqa.contact_mql_threshold", 60, 6),
    ]
    assert (scaled(3, 0.1), scaled(-4, 0.1), scaled(0, 0.1), scaled(2.5, 1)) == (1, -1, 0, 2.5)


def test_keep_mqas_picks_the_threshold_that_changes_the_fewest_accounts() -> None:
    eligible = {"a": 180.4, "b": 150.0, "c": 120.9, "d": 60.0, "e": 40.0}
    # the current MQAs exactly reproducible: the scaled threshold when it does so
    assert keep_mqas({"a", "b", "c"}, eligible, 100) == 100
    # ... else the middle of the gap between the accounts on either side (61..120)
    assert keep_mqas({"a", "b", "c"}, eligible, 130) == 90
    # not reproducible (d is no longer eligible: lost whatever the threshold): a alone is
    # the fewest changes, in the middle of 151..180 (b would be gained at 150)
    assert keep_mqas({"a", "d"}, {"a": 180.4, "b": 150.0, "c": 20.0}, 100) == 165
    # no eligible account: the scaled threshold; all of them MQAs: next to the lowest
    assert keep_mqas({"x"}, {}, 97.6) == 98
    assert keep_mqas({"a", "b"}, {"a": 180.4, "b": 150.0}, 170) == 150
    # no current MQA: above every account
    assert keep_mqas(set(), {"a": 180.4}, 100) == 181
    assert keep_mqas(set(), {"a": 80.4}, 100) == 100


def test_the_teams_file_is_edited_in_place() -> None:
    """The shipped model file: each number replaced where it stands, comments kept."""
    model = load_model()
    edits, adds = edits_or_additions(
        model,
        {
            ("accounts", "engagement", "per_contact_cap"): 5,
            ("accounts", "mqa", "threshold"): 12,
            ("accounts", "mqa", "contact_mql_threshold"): 6,
        },
    )
    assert adds == {}
    loaded, text = load_suggested(model, edits)
    assert "    per_contact_cap: 5        # one noisy contact adds at most 50\n" in text
    assert "  mqa: {threshold: 12, grades: [A, B], min_people: 2, contact_mql_threshold: 6,\n" in (
        text
    )
    section = loaded.model.accounts
    assert section is not None and section.mqa.threshold == 12


def test_keys_the_model_file_leaves_to_their_defaults_are_added(tmp_path: Path) -> None:
    raw = yaml.safe_load(Path(load_model().path).read_text(encoding="utf-8"))
    raw["title_rules"] = str(Path(load_model().path).parent / "titles.yaml")
    del raw["accounts"]["engagement"]["per_contact_cap"]
    del raw["accounts"]["engagement"]["breadth"]
    path = tmp_path / "defaults.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    model = load_model(path)
    eng: tuple[str, ...] = ("accounts", "engagement")
    edits, adds = edits_or_additions(
        model,
        {
            (*eng, "per_contact_cap"): 5,
            (*eng, "breadth", "min_points"): 1,
            (*eng, "rules", 0, "points"): 2,
        },
    )
    assert edits == {(*eng, "rules", 0, "points"): 2}
    assert adds == {eng: [("per_contact_cap", 5), ("breadth", {"min_points": 1})]}
    loaded, _ = load_suggested(model, edits, (), adds)
    section = loaded.model.accounts
    assert section is not None
    assert (section.engagement.per_contact_cap, section.engagement.breadth.min_points) == (5, 1)
    assert section.engagement.breadth.within_days == 30 and math.isclose(
        section.engagement.rules[0].points, 2
    )
