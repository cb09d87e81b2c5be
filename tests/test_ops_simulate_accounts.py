"""`leadscore simulate` with accounts on (issue 21): account grade transitions, MQA flips and the
contacts whose MQL verdict is their account's, computed with the sync's own account scorer.
Against the HubSpot sandbox's demo portal (13 companies, the Northwind Data committee), synced
with accounts on at the portal's clock."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from connector.cli import cli
from connector.enrich.enricher import build_enricher
from connector.model.loader import load_model
from connector.ops import analysis
from connector.ops.common import ReadOnlyCompanyCache
from connector.ops.rescore import preview_rescore
from connector.ops.simulate import simulate_model, simulate_threshold
from connector.ops.simulate_accounts import AccountFlip
from connector.settings import load_settings

from .conftest import NOW, Harness
from .test_ops_rescore_accounts import acc, accounts_model

__all__ = ["acc"]
CRM = "hubspot"


def _enricher(h: Harness) -> Any:
    return build_enricher(load_settings(), cache=ReadOnlyCompanyCache(h.store.company_cache))


def _mqa_model(tmp_path: Path, threshold: int) -> Path:
    """The default model with another MQA threshold (a file, for `rescore --dry-run`)."""
    src = Path(load_model().path)
    folder = tmp_path / f"mqa{threshold}"
    folder.mkdir()
    for name in ("titles.yaml", "target_accounts.txt"):
        shutil.copy(src.parent / name, folder / name)
    text = src.read_text()
    old = "  mqa: {threshold: 100, grades"
    assert text.count(old) == 1
    (folder / "model.yaml").write_text(
        text.replace(old, f"  mqa: {{threshold: {threshold}, grades")
    )
    return folder / "model.yaml"


def _dump(h: Harness) -> list[str]:
    return list(h.store.db.conn.iterdump())


def test_the_current_side_is_what_the_sync_stored(acc: Harness) -> None:
    """Threshold 100 and the MQA threshold of the model: no flip, and the MQL-qualified
    contacts are exactly those the sync made MQL (three of them through their account)."""
    sim = simulate_threshold(acc.store, CRM, load_model(), _enricher(acc), NOW, 100, accounts=True)
    stored = dict(
        acc.store.db.execute("SELECT contact_id, mql_reason FROM scores WHERE mql = 1").fetchall()
    )
    assert (sim.current_mqls, sim.simulated_mqls, sim.flips) == (19, 19, [])
    assert sim.current_mqls == len(stored)
    a = sim.accounts
    assert a is not None
    assert (a.accounts, a.current_mqas, a.simulated_mqas, a.flips) == (12, 6, 6, [])
    assert a.account_mqls == [3, 3]
    assert sorted(c for c, r in stored.items() if r.startswith("account MQA")) == [
        "112",
        "124",
        "148",
    ]
    # the curve counts the account MQLs too: each point is a simulation at that threshold
    curve = dict(sim.curve)
    assert curve[100] == 19
    for t in (60, 80, 90, 120):
        at = simulate_threshold(acc.store, CRM, load_model(), _enricher(acc), NOW, t, accounts=True)
        assert curve[t] == at.simulated_mqls, t
    assert [curve[t] for t in (60, 70, 80, 90, 100, 110, 120, 130, 140)] == [
        26, 25, 20, 19, 19, 18, 17, 11, 11,
    ]  # fmt: skip
    # accounts off (the setting): the contacts alone, as before
    off = simulate_threshold(acc.store, CRM, load_model(), _enricher(acc), NOW, 100)
    assert (off.current_mqls, off.accounts) == (16, None)


def test_a_higher_mqa_threshold_flips_accounts_and_their_contacts(
    acc: Harness, tmp_path: Path
) -> None:
    before = _dump(acc)
    sim = simulate_threshold(
        acc.store, CRM, load_model(), _enricher(acc), NOW, 100, accounts=True, mqa_threshold=300
    )
    assert _dump(acc) == before and acc.sb.requests == []  # nothing written, no CRM call
    a = sim.accounts
    assert a is not None
    assert (a.current_mqa_threshold, a.simulated_mqa_threshold) == (100, 300)
    assert a.transitions == {("A", "A"): 2, ("B", "B"): 4, ("C", "C"): 4, ("D", "D"): 2}
    assert (a.current_mqas, a.simulated_mqas, a.became_mqa, a.stopped_mqa) == (6, 1, 0, 5)
    assert a.flips == [
        AccountFlip("company:9002", "Initech (initech.com)", 275, "B", 275, "B", False, None),
        AccountFlip(
            "company:9012", "Northwind Data (northwind-data.com)", 174, "A", 174, "A", False, None
        ),
        AccountFlip("company:9006", "Hooli (hooli.io)", 154, "B", 154, "B", False, None),
        AccountFlip("company:9003", "Globex (globex.co.uk)", 131, "B", 131, "B", False, None),
        AccountFlip(
            "company:9008",
            "Wayne Enterprises (wayne-enterprises.com)",
            124,
            "B",
            124,
            "B",
            False,
            None,
        ),
    ]
    # Robin stays MQL (Acme, 375, is still an MQA); Finley (Initech) and Skyler (Hooli) lose it
    assert [(f.label, f.current, f.simulated) for f in a.contact_flips] == [
        (
            "finley.bennett@initech.com",
            "account MQA: company:9002 (score 97 ≥ 60 at an MQA)",
            None,
        ),
        ("skyler.bennett@hooli.io", "account MQA: company:9006 (score 92 ≥ 60 at an MQA)", None),
    ]
    assert [f.contact_id for f in a.contact_flips] == [f.contact_id for f in sim.flips]
    assert [f.account for f in a.contact_flips] == ["Initech (initech.com)", "Hooli (hooli.io)"]
    assert (sim.current_mqls, sim.simulated_mqls) == (19, 17)
    assert a.account_mqls == [3, 1]
    # the same as `rescore --dry-run` of a model file with that MQA threshold
    preview = preview_rescore(
        acc.store, CRM, load_model(_mqa_model(tmp_path, 300)), _enricher(acc), NOW, workers=1
    )
    assert preview.accounts is not None
    assert (preview.accounts.mqa_after, preview.accounts.stopped_mqa) == (1, 5)


def test_grade_c_accounts_as_mqas_qualify_their_contacts(acc: Harness, tmp_path: Path) -> None:
    """A model whose MQAs may be grade C: Northwind Logistics and Stark become MQAs, and three
    of their grade-B people become MQL through them (60+ points, under the contact threshold)."""
    src = _mqa_model(tmp_path, 100)
    text = src.read_text()
    old = "  mqa: {threshold: 100, grades: [A, B],"
    assert text.count(old) == 1
    src.write_text(text.replace(old, "  mqa: {threshold: 100, grades: [A, B, C],"))
    sim = simulate_model(
        acc.store, CRM, load_model(), load_model(src), _enricher(acc), NOW, accounts=True
    )
    a = sim.accounts
    assert a is not None
    assert [(f.label, f.gained, f.simulated_reason) for f in a.flips] == [
        (
            "Northwind Logistics (northwind-logistics.com)",
            True,
            "score 315 ≥ 100, grade C, 5 people engaged",
        ),
        (
            "Stark Industries (stark-industries.com)",
            True,
            "score 308 ≥ 100, grade C, 5 people engaged",
        ),
    ]
    assert [(f.label, f.current, f.simulated) for f in a.contact_flips] == [
        (
            "kendall.anderson@northwind-logistics.com",
            None,
            "account MQA: company:9004 (score 88 ≥ 60 at an MQA)",
        ),
        (
            "sofia.rossi@stark-industries.com",
            None,
            "account MQA: company:9007 (score 75 ≥ 60 at an MQA)",
        ),
        (
            "mateo.okafor@northwind-logistics.com",
            None,
            "account MQA: company:9004 (score 60 ≥ 60 at an MQA)",
        ),
    ]
    assert (a.current_mqas, a.simulated_mqas) == (6, 8)
    assert a.account_mqls == [3, 6] and sim.gained == 3


def test_another_model_file_gives_the_rescore_previews_accounts(
    acc: Harness, tmp_path: Path
) -> None:
    """Account grade A from 85 and an MQA from 150: the transitions and MQA flips of
    `rescore --dry-run` (tests/test_ops_rescore_accounts.py), from the same scorer."""
    other = load_model(accounts_model(tmp_path))
    sim = simulate_model(acc.store, CRM, load_model(), other, _enricher(acc), NOW, accounts=True)
    a = sim.accounts
    assert a is not None
    assert a.transitions == {("A", "B"): 2, ("B", "B"): 4, ("C", "C"): 4, ("D", "D"): 2}
    assert [(f.label, f.gained) for f in a.flips] == [
        ("Globex (globex.co.uk)", False),
        ("Wayne Enterprises (wayne-enterprises.com)", False),
    ]
    # their contacts: none MQL through Globex or Wayne; the three account MQLs stay
    assert (a.account_mqls, a.contact_flips, sim.flips) == ([3, 3], [], [])
    # an MQA threshold on top of the other model
    both = simulate_model(
        acc.store, CRM, load_model(), other, _enricher(acc), NOW, accounts=True, mqa_threshold=300
    )
    assert both.accounts is not None
    assert (both.accounts.simulated_mqas, both.accounts.simulated_mqa_threshold) == (1, 300)
    assert both.simulated_label.endswith(", MQA threshold 300")


def test_cli_simulate_mqa_threshold_text_and_json(
    acc: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(analysis, "_now", lambda: NOW)
    state = str(tmp_path / "state.db")
    env = {"LEADSCORE_ACCOUNTS": "true", "COLUMNS": "120"}
    args = ["--state", state, "simulate", "--mqa-threshold", "300"]
    res = CliRunner().invoke(cli, args, env=env)
    assert res.exit_code == 0, res.output
    lines = [line.rstrip() for line in res.output.splitlines()]
    assert "MQL-qualified by threshold" not in lines  # the MQA threshold alone: no curve
    start = lines.index(
        "Accounts: 12; MQAs 6 → 1 (+0 became / −5 stopped being MQA) (MQA threshold 100 → 300); "
        "contacts MQL-qualified by their"
    )
    expected = [
        "account's MQA 3 → 1",
        "Account grade: current (rows) → simulated",
        "(columns)",
        "┏━━━━━━━━━━━━━━━━┳━━━┳━━━┳━━━┳━━━┳━━━━━━━┓",
        "┃ before \\ after ┃ A ┃ B ┃ C ┃ D ┃ total ┃",
        "┡━━━━━━━━━━━━━━━━╇━━━╇━━━╇━━━╇━━━╇━━━━━━━┩",
        "│ A              │ 2 │ · │ · │ · │     2 │",
        "│ B              │ · │ 4 │ · │ · │     4 │",
        "│ C              │ · │ · │ 4 │ · │     4 │",
        "│ D              │ · │ · │ · │ 2 │     2 │",
        "└────────────────┴───┴───┴───┴───┴───────┘",
        "MQA flips: 5 account(s)",
        "┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━┳━━━━━━━┳━━━━━━━━━━━━━━━━━┓",
        "┃ account                                   ┃ score ┃ grade ┃ MQA             ┃",
        "┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━╇━━━━━━━╇━━━━━━━━━━━━━━━━━┩",
        "│ Initech (initech.com)                     │   275 │   B   │ stops being MQA │",
        "│ Northwind Data (northwind-data.com)       │   174 │   A   │ stops being MQA │",
        "│ Hooli (hooli.io)                          │   154 │   B   │ stops being MQA │",
        "│ Globex (globex.co.uk)                     │   131 │   B   │ stops being MQA │",
        "│ Wayne Enterprises (wayne-enterprises.com) │   124 │   B   │ stops being MQA │",
        "└───────────────────────────────────────────┴───────┴───────┴─────────────────┘",
        "Contacts whose MQL verdict changes with their account: 2",
    ]  # fmt: skip
    end = lines.index("Contacts whose MQL verdict changes with their account: 2")
    assert lines[start + 1 : end + 1] == expected
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in lines[end + 4 : end + 6]]
    assert rows == [
        [
            "finley.bennett@initech.com",
            "Initech (initech.com)",
            "A",
            "97",
            "yes (account MQA)",
            "no",
        ],
        ["skyler.bennett@hooli.io", "Hooli (hooli.io)", "B", "92", "yes (account MQA)", "no"],
    ]
    assert lines[end + 6].startswith("└") and len(lines) == end + 7
    res = CliRunner().invoke(cli, [*args, "--threshold", "90", "--json"], env=env)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)["accounts"]
    assert doc["transitions"] == {"A→A": 2, "B→B": 4, "C→C": 4, "D→D": 2}
    assert (doc["current_mqas"], doc["simulated_mqas"], doc["stopped_mqa"]) == (6, 1, 5)
    assert [f["label"] for f in doc["flips"]][:2] == [
        "Initech (initech.com)",
        "Northwind Data (northwind-data.com)",
    ]
    # at threshold 90 Finley (97) and Skyler (92) qualify by points: no contact flips with
    # the account; Robin (Acme, 60) keeps the account's bar
    assert doc["contact_flips"] == []
    assert doc["account_mqls"] == [3, 1]
    # accounts off, or a model without an accounts: section: one line, exit 2
    res = CliRunner().invoke(cli, args, env={"COLUMNS": "100"})
    assert res.exit_code == 2
    assert res.output == (
        "error: --mqa-threshold needs account scoring on (LEADSCORE_ACCOUNTS=true)\n"
    )


@pytest.mark.parametrize("value", ["-5", "nan"])
def test_cli_simulate_bad_mqa_threshold_is_one_line_exit_2(tmp_path: Path, value: str) -> None:
    from connector.state.store import StateStore

    with StateStore.open(tmp_path / "s.db"):
        pass
    res = CliRunner().invoke(
        cli,
        ["--state", str(tmp_path / "s.db"), "simulate", "--mqa-threshold", value],
        env={"LEADSCORE_ACCOUNTS": "true"},
    )
    assert res.exit_code == 2
    assert res.output == (
        f"error: --mqa-threshold must be a number of points, 0 or more (got {float(value):g})\n"
    )


def test_cli_simulate_accounts_on_before_any_account_is_resolved(
    demo: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Accounts turned on, but the state DB was synced without them: said in one line."""
    monkeypatch.setattr(analysis, "_now", lambda: NOW)
    assert demo.pipeline.sync().status == "ok"
    res = CliRunner().invoke(
        cli,
        ["--state", str(tmp_path / "state.db"), "simulate", "--threshold", "90", "--json"],
        env={"LEADSCORE_ACCOUNTS": "true"},
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["accounts"]["accounts"] == 0 and doc["accounts"]["flips"] == []
    res = CliRunner().invoke(
        cli,
        ["--state", str(tmp_path / "state.db"), "simulate", "--threshold", "90"],
        env={"LEADSCORE_ACCOUNTS": "true"},
    )
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[-1] == (
        "Accounts: none with members in the state DB yet (a sync with LEADSCORE_ACCOUNTS=true "
        "resolves them)."
    )


def test_an_sql_contact_at_an_mqa_gets_no_mql_from_it_in_simulate(acc: Harness) -> None:
    """The MQA's lower bar never makes a contact at a stage sales set past MQL an MQL, in the
    sync nor in `simulate` (which tried every contact as a plain lead, and so counted Taylor,
    SQL with 75 points at Globex, an MQA, where the sync and `rescore --dry-run` did not;
    found comparing them by hand)."""
    [cid] = acc.store.find_contact_ids_by_email(CRM, ["taylor.brooks@globex.co.uk"]).values()
    for name, minutes in (("Scoring that sales trusts", "60"), ("Account playbooks", "35")):
        props = {"webinar_name": name, "minutes_watched": minutes, "webinar_minutes": "60"}
        acc.sb.add_event(cid, "pe4242_webinar_attended", props, NOW - timedelta(hours=1))
    acc.clock[0] = NOW + timedelta(minutes=15)
    assert acc.pipeline.sync().status == "ok"
    taylor = acc.store.get_score(CRM, cid)
    assert taylor is not None and 60 <= taylor.score < 100 and not taylor.mql
    contact = acc.store.get_contact(CRM, cid)
    assert contact is not None and contact.lifecycle_stage == "salesqualifiedlead"
    globex = acc.store.account_score(
        CRM, acc.store.contact_accounts_many(CRM, [cid])[cid].account_id
    )
    assert globex is not None and globex.mqa
    stored = dict(
        acc.store.db.execute("SELECT contact_id, mql_reason FROM scores WHERE mql = 1").fetchall()
    )
    sim = simulate_threshold(
        acc.store, CRM, load_model(), _enricher(acc), acc.clock[0], 100, accounts=True
    )
    assert sim.current_mqls == sim.simulated_mqls == len(stored)
    assert sim.accounts is not None
    assert sim.accounts.account_mqls == [3, 3]
