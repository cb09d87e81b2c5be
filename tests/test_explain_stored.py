# ruff: noqa: E501  (the expected lines are 100-column lines, kept whole to compare exactly)
"""`leadscore explain EMAIL` on the demo portal synced with accounts on at NOW: the stored
score (its own scored_at) with its account's part (an MQA's lower MQL bar), a recompute as of
now said to match it or not, `--now` explaining the recompute; CRM text shown cleaned."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

import connector.cli as cli_module
from connector.cli import cli
from connector.demo import run_demo
from connector.model.loader import load_model
from connector.sandbox.demo_portal import build_demo_portal
from connector.sandbox.hubspot import HubSpotSandbox

from .conftest import NOW

ROBIN = "robin.hale@acme-analytics.com"
ON = {"COLUMNS": "100", "LEADSCORE_ACCOUNTS": "true"}
FP = load_model().fingerprint  # the default model's


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's state DB: the HubSpot sandbox's demo portal synced with accounts on at NOW
    (Robin Hale: 60 points, grade B, an MQL by Acme Analytics' MQA)."""
    db = tmp_path_factory.mktemp("explain") / "demo.db"
    out = tmp_path_factory.mktemp("explain-out") / "out.txt"
    with out.open("w") as f:
        run_demo(Console(file=f, width=200), state_path=db, now=NOW)
    return db


def _at(monkeypatch: pytest.MonkeyPatch, now: datetime) -> None:
    """`explain` without --now recomputes as of `now` (not the test's own clock)."""
    parse = cli_module._parse_now
    monkeypatch.setattr(cli_module, "_parse_now", lambda v: parse(v) if v else now)


def _run(db: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    res = CliRunner().invoke(cli, ["--state", str(db), *args], env=env or ON)
    return res.exit_code, [line.rstrip() for line in res.output.splitlines()]


ROBIN_HEAD = [
    "robin.hale@acme-analytics.com Robin Hale · id 112 · title Marketing Manager",
    f"score 60 (engagement 60) · grade B (fit 75) · priority B2 · model 2026.12-default ({FP}) ·",
    "stored score, scored at 2026-11-01T12:00:00+00:00",
    "stage MQL · MQL: account MQA: company:9001 (score 60 ≥ 60 at an MQA)",
    "account company:9001 Acme Analytics (acme-analytics.com) (scored 2026-11-01 12:00 UTC): score 375,",
    "grade A, MQA (score 375 ≥ 100, grade A, 6 people engaged): a grade A or B contact is an MQL from 60",
    "points instead of 100; this contact's MQL is the account's",
    "next change with no new events: 2026-12-21T09:17:01.649000+00:00",
]


def test_explain_shows_the_stored_score_with_its_account_and_its_own_time(
    demo_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _at(monkeypatch, NOW + timedelta(days=1))
    code, lines = _run(demo_db, "explain", ROBIN)
    assert code == 0
    assert lines[:9] == [
        *ROBIN_HEAD,
        "recomputed as of now (2026-11-02T12:00:00+00:00): the same as the stored score",
    ]
    assert lines[-2:] == [
        "History",
        "  first scored 60 (grade B, MQL) on 2026-11-01 (model 2026.12-default)",
    ]
    # the same on every call: the stored score's time, not the command's
    assert _run(demo_db, "explain", ROBIN)[1] == lines


def test_explain_right_after_the_sync_that_wrote_a_stage_says_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Riley's score stored by a first sync had MQL to write (`stage lead → MQL`); the sync
    wrote it, so a recompute reads the MQL stage and has nothing to write: the same score,
    not `differs from the stored score: stage to write marketingqualifiedlead → —`."""
    db = tmp_path / "state.db"
    with HubSpotSandbox.start(build_demo_portal()) as sb:
        env = {
            "COLUMNS": "100",
            "LEADSCORE_ENV_FILE": str(tmp_path / "none.env"),
            "LEADSCORE_HUBSPOT_BASE_URL": sb.url,
            "LEADSCORE_HUBSPOT_TOKEN": sb.token,
        }
        runner = CliRunner()
        for command in (["init-properties"], ["sync"]):
            res = runner.invoke(cli, ["--state", str(db), *command], env=env)
            assert res.exit_code == 0, res.output
        assert sb.contact("102").properties["lifecyclestage"] == "marketingqualifiedlead"
    (scored_at,) = (
        sqlite3.connect(db)
        .execute("SELECT scored_at FROM scores WHERE contact_id = '102'")
        .fetchone()
    )
    now = datetime.fromisoformat(scored_at) + timedelta(minutes=1)
    _at(monkeypatch, now)
    code, lines = _run(db, "explain", "riley.chen1987@gmail.com", env=env)
    assert code == 0
    assert (
        "stage lead → MQL · MQL: hand-raiser: Request a demo · behaviour yes, profile no" in lines
    )
    assert f"recomputed as of now ({now.isoformat()}): the same as the stored score" in lines


def test_explain_json_has_the_stored_score_its_time_and_the_account(
    demo_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _at(monkeypatch, NOW + timedelta(days=1))
    res = CliRunner().invoke(cli, ["--state", str(demo_db), "explain", ROBIN, "--json"], env=ON)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert (doc["explained"], doc["scored_at"], doc["score"], doc["mql"], doc["mql_reason"]) == (
        "stored", "2026-11-01T12:00:00+00:00", 60.0, True,
        "account MQA: company:9001 (score 60 ≥ 60 at an MQA)",
    )  # fmt: skip
    assert doc["account"] == {
        "account_id": "company:9001",
        "name": "Acme Analytics",
        "domain": "acme-analytics.com",
        "score": 375.0,
        "grade": "A",
        "mqa": True,
        "mqa_reason": "score 375 ≥ 100, grade A, 6 people engaged",
        "scored_at": "2026-11-01T12:00:00+00:00",
        "contact_mql_threshold": 60.0,
        "mql_threshold": 100.0,
        "contact_grades": ["A", "B"],
        "mql_by_account": True,
    }
    assert doc["recomputed"] == {
        "scored_at": "2026-11-02T12:00:00+00:00",
        "score": 60.0,
        "grade": "B",
        "priority": "B2",
        "mql": True,
        "mql_reason": "account MQA: company:9001 (score 60 ≥ 60 at an MQA)",
        "model_version": "2026.12-default",
        "model_fingerprint": FP,
        "same": True,
        "differences": [],
    }


def test_explain_says_how_the_recompute_as_of_now_differs_from_the_stored_score(
    demo_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _at(monkeypatch, NOW + timedelta(days=55))  # Robin's product pages left the window
    code, lines = _run(demo_db, "explain", ROBIN)
    assert code == 0
    assert lines[:11] == [
        *ROBIN_HEAD,
        "recomputed as of now (2026-12-26T12:00:00+00:00): score 35, grade B, MQL — differs from the stored",
        "score: score 60 → 35; priority B2 → B3; MQL yes (account MQA: company:9001 (score 60 ≥ 60 at an",
        "MQA)) → yes; points by rule: product_page 60 → 20, cap:product -15 → —",
    ]


def test_explain_with_now_explains_the_recompute_and_compares_the_stored_score(
    demo_db: Path,
) -> None:
    code, lines = _run(demo_db, "explain", ROBIN, "--now", "2026-12-26T12:00:00Z")
    assert code == 0
    assert lines[:13] == [
        "robin.hale@acme-analytics.com Robin Hale · id 112 · title Marketing Manager",
        f"score 35 (engagement 35) · grade B (fit 75) · priority B3 · model 2026.12-default ({FP}) ·",
        "recomputed as of 2026-12-26T12:00:00+00:00",
        "stage MQL",
        "account company:9001 Acme Analytics (acme-analytics.com) (scored 2026-11-01 12:00 UTC): score 375,",
        "grade A, MQA (score 375 ≥ 100, grade A, 6 people engaged): a grade A or B contact is an MQL from 60",
        "points instead of 100; not what decides this contact's verdict",
        "next change with no new events: 2026-12-27T10:16:03.185000+00:00",
        "the stored score (scored at 2026-11-01T12:00:00+00:00): score 60, grade B, MQL (account MQA:",
        "company:9001 (score 60 ≥ 60 at an MQA)) — differs: score 60 → 35; priority B2 → B3; MQL yes (account",
        "MQA: company:9001 (score 60 ≥ 60 at an MQA)) → yes; points by rule: product_page 60 → 20,",
        "cap:product -15 → —",
        "Profile (fit)",
    ]
    # at the stored score's own time the recompute is the stored score, account part and all
    code, lines = _run(demo_db, "explain", ROBIN, "--now", NOW.isoformat())
    assert lines[2:4] == [
        "recomputed as of 2026-11-01T12:00:00+00:00",
        "stage MQL · MQL: account MQA: company:9001 (score 60 ≥ 60 at an MQA)",
    ]
    assert "the stored score (scored at 2026-11-01T12:00:00+00:00): the same" in lines


def test_explain_with_accounts_off_shows_the_stored_score_and_says_why_a_recompute_differs(
    demo_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _at(monkeypatch, NOW + timedelta(days=1))
    res = CliRunner().invoke(
        cli, ["--state", str(demo_db), "explain", ROBIN], env={"COLUMNS": "100"}
    )
    assert res.exit_code == 0, res.output
    lines = [line.rstrip() for line in res.output.splitlines()]
    assert lines[0].startswith("note: account scoring is off (LEADSCORE_ACCOUNTS) but the state DB")
    at = lines.index("stage MQL · MQL: account MQA: company:9001 (score 60 ≥ 60 at an MQA)")
    assert not any(line.startswith("account ") for line in lines)  # accounts off: no account part
    assert lines[at + 2 : at + 4] == [
        "recomputed as of now (2026-11-02T12:00:00+00:00): score 60, grade B, MQL — differs from the stored",
        "score: MQL yes (account MQA: company:9001 (score 60 ≥ 60 at an MQA)) → yes",
    ]


def test_explain_shows_a_contacts_crm_text_cleaned_and_shortened(
    demo_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "dirty.db"
    with sqlite3.connect(demo_db) as src, sqlite3.connect(db) as dst:
        src.backup(dst)
        dst.execute(
            "UPDATE contacts SET first_name = ?, last_name = ?, job_title = ? WHERE id = '112'",
            ("Robin\x1b[2J", "\x1b]0;pwned\x07Hale\x00\n[bold]x", "Mkt\r\nManager\x00" + "y" * 500),
        )
        dst.execute(
            "UPDATE account_scores SET name = ? WHERE account_id = 'company:9001'",
            ("Ctrl\x00\x07\x1b[31mRed\r\nCo",),
        )
    _at(monkeypatch, NOW + timedelta(days=1))
    res = CliRunner().invoke(cli, ["--state", str(db), "explain", ROBIN], env=ON)
    assert res.exit_code == 0, res.output
    for control in ("\x1b", "\x00", "\x07", "\r"):
        assert control not in res.output
    lines = [line.rstrip() for line in res.output.splitlines()]
    assert lines[:2] == [  # no control character, the title at most 40 characters
        "robin.hale@acme-analytics.com Robin[2J ]0;pwnedHale [bold]x · id 112 · title Mkt",
        "Manageryyyyyyyyyyyyyyyyyyyyyyyyyyy…",
    ]
    assert lines[5] == (
        "account company:9001 Ctrl[31mRed  Co (acme-analytics.com) (scored 2026-11-01 12:00 UTC): score 375,"
    )
    # --json keeps the stored values as they are
    res = CliRunner().invoke(cli, ["--state", str(db), "explain", ROBIN, "--json"], env=ON)
    assert json.loads(res.stdout)["account"]["name"] == "Ctrl\x00\x07\x1b[31mRed\r\nCo"


def test_explain_with_another_model_scores_the_account_under_it(
    demo_db: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`explain --model` with a model whose MQA bar is 400: Acme (375) is no MQA under it, so
    Robin's MQL is not the account's, as `simulate` and `rescore --dry-run` say. Before,
    explain kept the stored MQA verdict and applied the other model's contact bar (found by
    comparing the three commands by hand)."""
    from .conftest import shipped_model_variant

    m400 = shipped_model_variant(
        tmp_path, "2026.12-mqa400", lambda doc: doc["accounts"]["mqa"].update(threshold=400)
    )
    _at(monkeypatch, NOW)
    res = CliRunner().invoke(
        cli, ["--state", str(demo_db), "explain", ROBIN, "--model", str(m400), "--json"], env=ON
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert not (doc["mql_reason"] or "").startswith("account MQA")
    account = doc["account"]
    assert (account["score"], account["mqa"], account["mql_by_account"]) == (375.0, False, False)
    same = CliRunner().invoke(cli, ["--state", str(demo_db), "explain", ROBIN, "--json"], env=ON)
    assert json.loads(same.stdout)["account"]["mqa"] is True  # the stored verdict, unchanged
