"""`rescore` with accounts on (issue 21): the dry run's account grade transitions and MQA flips,
computed from the members' recomputed scores; the applied rescore rescores every account and
writes the changed company values, diff-only. Against the HubSpot sandbox's demo portal."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from connector.account_stage import AccountStage
from connector.cli import cli
from connector.crm.hubspot import HubSpotAdapter
from connector.demo import _portal_source
from connector.enrich.enricher import build_enricher
from connector.model.loader import LoadedModel, load_model
from connector.ops import analysis
from connector.ops.common import ReadOnlyCompanyCache
from connector.ops.rescore import AccountChange, apply_rescore, preview_rescore
from connector.pipeline import Pipeline
from connector.pipeline.summary import SyncSummary
from connector.retry import RetryPolicy
from connector.sandbox.hubspot import HubSpotSandbox
from connector.settings import load_settings
from connector.state.store import StateStore

from .conftest import NOW, Harness

CRM = "hubspot"


def accounts_model(tmp_path: Path) -> Path:
    """The default model, version bumped, account grade A from 85 (was 60) and an MQA from
    150 points (was 100)."""
    src = Path(load_model().path)
    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("titles.yaml", "target_accounts.txt"):
        shutil.copy(src.parent / name, folder / name)
    text = src.read_text()
    for old, new in (
        ('version: "2026.12-default"', 'version: "2026.12-accounts"'),
        ("    grades: {A: 60, B: 40, C: 20}", "    grades: {A: 85, B: 40, C: 20}"),
        ("  mqa: {threshold: 100, grades", "  mqa: {threshold: 150, grades"),
    ):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = folder / "model.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def acc(tmp_path: Path) -> Iterator[Harness]:
    """The demo portal (13 companies, the Northwind Data committee) synced with accounts on."""
    with HubSpotSandbox.start(
        _portal_source(), now=NOW, search_rate_limit=10_000, time_scale=0.01
    ) as sb:
        adapter = HubSpotAdapter(
            SecretStr(sb.token),
            sb.url,
            search_per_second=10_000,
            timeout_s=5,
            retry=RetryPolicy(attempts=4, base_seconds=0.01, max_seconds=0.05, seed=1),
            accounts=True,
        )
        adapter.ensure_properties()
        store = StateStore.open(tmp_path / "state.db")
        enricher = build_enricher(load_settings(), cache=store.company_cache)
        pipeline = Pipeline(store, adapter, load_model(), enricher=enricher, clock=lambda: NOW)
        pipeline.accounts = AccountStage(pipeline)
        first = pipeline.sync()
        assert first.status == "ok" and first.scored == 54
        sb.clear_log()
        try:
            yield Harness(sb, adapter, store, pipeline, [NOW])
        finally:
            adapter.close()
            store.close()


def _preview(h: Harness, model: LoadedModel, workers: int = 1):  # type: ignore[no-untyped-def]
    def enricher_for(st: StateStore):  # type: ignore[no-untyped-def]
        return build_enricher(load_settings(), cache=ReadOnlyCompanyCache(st.company_cache))

    return preview_rescore(
        h.store,
        CRM,
        model,
        enricher_for(h.store),
        NOW,
        sample=10,
        workers=workers,
        enricher_for=enricher_for,
    )


EXPECTED_SAMPLE = [
    AccountChange("company:9003", "Globex", 131.0, "B", True, 131.0, "B", False, None),
    AccountChange("company:9008", "Wayne Enterprises", 124.0, "B", True, 124.0, "B", False, None),
    AccountChange(
        "company:9001", "Acme Analytics", 375.0, "A", True, 375.0, "B", True,
        "score 375 ≥ 150, grade B, 6 people engaged",
    ),
    AccountChange(
        "company:9012", "Northwind Data", 174.0, "A", True, 174.0, "B", True,
        "score 174 ≥ 150, grade B, 4 people engaged",
    ),
]  # fmt: skip


def test_dry_run_shows_account_grade_transitions_and_mqa_flips(
    acc: Harness, tmp_path: Path
) -> None:
    model = load_model(accounts_model(tmp_path))
    before = list(acc.store.db.conn.iterdump())
    preview = _preview(acc, model)
    assert list(acc.store.db.conn.iterdump()) == before  # nothing written
    assert acc.sb.requests == []  # no CRM call
    a = preview.accounts
    assert a is not None
    assert (a.accounts, a.score_changes, a.grade_changes) == (12, 0, 2)
    assert a.transitions == {("A", "B"): 2, ("B", "B"): 4, ("C", "C"): 4, ("D", "D"): 2}
    assert (a.mqa_before, a.mqa_after, a.became_mqa, a.stopped_mqa) == (6, 4, 0, 2)
    assert a.sample == EXPECTED_SAMPLE  # MQA flips first, then grade changes
    # the same from two processes sharing the contacts (each records its members' parts)
    two = _preview(acc, model, workers=2).accounts
    assert two is not None
    assert (two.transitions, two.sample) == (a.transitions, a.sample)


def test_cli_dry_run_prints_the_account_matrix_and_flips(
    acc: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(analysis, "_now", lambda: NOW)
    path = accounts_model(tmp_path)
    state = str(tmp_path / "state.db")
    env = {
        "LEADSCORE_HUBSPOT_TOKEN": acc.sb.token,
        "LEADSCORE_HUBSPOT_BASE_URL": acc.sb.url,
        "LEADSCORE_ACCOUNTS": "true",
        "COLUMNS": "100",
    }
    args = ["--state", state, "rescore", "--dry-run", "--model", str(path), "--workers", "1"]
    res = CliRunner().invoke(cli, args, env=env)
    assert res.exit_code == 0, res.output
    lines = [line.rstrip() for line in res.output.splitlines()]
    start = lines.index(
        "12 account(s): 0 score change(s), 2 grade change(s), MQA 6 → 4 (+0 became / −2 "
        "stopped being MQA)"
    )
    assert lines[start + 1 :] == [
        "Account grade: stored (rows) → rescored",
        "(columns)",
        "┏━━━━━━━━━━━━━━━━┳━━━┳━━━┳━━━┳━━━┳━━━━━━━┓",
        "┃ before \\ after ┃ A ┃ B ┃ C ┃ D ┃ total ┃",
        "┡━━━━━━━━━━━━━━━━╇━━━╇━━━╇━━━╇━━━╇━━━━━━━┩",
        "│ A              │ · │ 2 │ · │ · │     2 │",
        "│ B              │ · │ 4 │ · │ · │     4 │",
        "│ C              │ · │ · │ 4 │ · │     4 │",
        "│ D              │ · │ · │ · │ 2 │     2 │",
        "└────────────────┴───┴───┴───┴───┴───────┘",
        "company record(s) to write: 12",
        "Sample: 4 changed account(s), MQA flips first",
        "┏━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━┳━━━━━━━┳━━━━━━━━━━━━━━━━━━━┓",
        "┃ account           ┃     score ┃ grade ┃ MQA               ┃",
        "┡━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━╇━━━━━━━╇━━━━━━━━━━━━━━━━━━━┩",
        "│ Globex            │ 131 → 131 │ B → B │ stopped being MQA │",
        "│ Wayne Enterprises │ 124 → 124 │ B → B │ stopped being MQA │",
        "│ Acme Analytics    │ 375 → 375 │ A → B │ MQA               │",
        "│ Northwind Data    │ 174 → 174 │ A → B │ MQA               │",
        "└───────────────────┴───────────┴───────┴───────────────────┘",
        "Would update 54 contact(s) and 12 company record(s) (dry run, nothing written). Apply "
        "with the same command without --dry-run.",
    ]
    res = CliRunner().invoke(cli, [*args, "--json"], env=env)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert "members" not in doc
    assert doc["accounts"]["transitions"] == {"A→B": 2, "B→B": 4, "C→C": 4, "D→D": 2}
    assert (doc["accounts"]["became_mqa"], doc["accounts"]["stopped_mqa"]) == (0, 2)
    assert [s["label"] for s in doc["accounts"]["sample"]] == [
        "Globex",
        "Wayne Enterprises",
        "Acme Analytics",
        "Northwind Data",
    ]


def test_applied_rescore_rescores_every_account_and_writes_what_changed(
    acc: Harness, tmp_path: Path
) -> None:
    model = load_model(accounts_model(tmp_path))
    preview = _preview(acc, model)
    applied = apply_rescore(acc.pipeline, model)
    assert applied.rescore is not None
    assert (applied.sync.status, applied.rescore.status) == ("ok", "ok")
    stored = {
        a.name: (a.score, a.grade, a.mqa, a.model_version) for a in acc.store.top_accounts(CRM, 20)
    }
    assert len(stored) == 12
    assert {v[3] for v in stored.values()} == {"2026.12-accounts"}
    assert preview.accounts is not None
    for c in preview.accounts.sample:
        assert stored[c.label][:3] == (c.after_score, c.after_grade, c.after_mqa)
    companies: dict[str, dict[str, str]] = {}
    for r in acc.sb.requests:
        if r.path.rstrip("/") == "/crm/v3/objects/companies/batch/update" and r.status == 200:
            for item in r.body["inputs"]:
                companies.setdefault(str(item["id"]), {}).update(item["properties"])
    # every company record shows the new model version; the grade and MQA changes are written
    assert sorted(companies) == sorted(
        k.split(":")[1] for k in acc.store.account_ids(CRM) if k.startswith("company:")
    )
    assert companies["9001"]["leadscore_account_grade"] == "B"
    assert companies["9012"]["leadscore_account_grade"] == "B"
    assert companies["9003"]["leadscore_mqa_reason"] == ""
    assert companies["9008"]["leadscore_mqa_reason"] == ""
    assert "leadscore_account_grade" not in companies["9003"]  # unchanged: not sent
    assert {p["leadscore_model_version"] for p in companies.values()} == {"2026.12-accounts"}
    # applied: a new preview finds no account left to change
    again = _preview(acc, model).accounts
    assert again is not None
    assert (again.score_changes, again.grade_changes, again.became_mqa, again.stopped_mqa) == (
        0, 0, 0, 0,
    )  # fmt: skip


def test_a_rescore_that_moves_no_account_value_reads_only_mqa_members_for_their_writes(
    acc: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a full rescore, `finish` looks at every member of every account scored for its
    account values. A member whose record shows them already, at an account that is no MQA,
    has nothing to write: its stored score is not read (nor decoded: ~80 µs a member, 80 s
    at 1M contacts). The members of an MQA are still read (an MQL through their account may
    be theirs to get). The same model again: no contact written, and the writes' reads are
    the MQAs' members only."""
    applied = apply_rescore(acc.pipeline, load_model())
    assert applied.rescore is not None and applied.rescore.status == "ok"
    contact_writes = [
        r for r in acc.sb.requests if r.path.rstrip("/") == "/crm/v3/objects/contacts/batch/update"
    ]
    assert contact_writes == []  # nothing moved: nothing written
    stage = acc.pipeline.accounts
    assert stage is not None and len(stage.state.scored) == 12
    mqas = [a for a, r in stage.state.scored.items() if r.mqa]
    assert len(mqas) == 6
    members_of_mqas = {m for a in mqas for m in acc.store.account_member_ids(CRM, a)}
    everyone = {m for a in stage.state.scored for m in acc.store.account_member_ids(CRM, a)}
    assert members_of_mqas < everyone
    read: list[str] = []
    scores_many = acc.store.get_scores_many

    def spy(crm: str, ids: Any) -> Any:
        ids = list(ids)
        read.extend(ids)
        return scores_many(crm, ids)

    monkeypatch.setattr(acc.store, "get_scores_many", spy)
    summary = SyncSummary(crm=CRM, kind="rescore")
    stage.state.in_chunk = {}  # as after a rescore that wrote no chunk
    stage._write_members(NOW, summary)
    assert set(read) == members_of_mqas and summary.to_write == 0
    # a member whose record lacks its account's values is read and written again
    outside = sorted(everyone - members_of_mqas)[0]
    acc.store.db.execute(
        "DELETE FROM written WHERE crm = ? AND contact_id = ? AND property = 'account_score'",
        (CRM, outside),
    )
    read.clear()
    summary = SyncSummary(crm=CRM, kind="rescore")
    stage._write_members(NOW, summary)
    assert set(read) == members_of_mqas | {outside}
    assert summary.to_write == 1
    # the same member with a write whose outcome is unknown (an interrupted run's, the CRM
    # not asked yet): left to the next run's check, not sent a second time
    acc.store.db.execute(
        "DELETE FROM written WHERE crm = ? AND contact_id = ? AND property = 'account_score'",
        (CRM, outside),
    )
    acc.store.set_in_flight(CRM, {outside: {"account_score": "1"}})
    acc.sb.clear_log()
    read.clear()
    summary = SyncSummary(crm=CRM, kind="rescore")
    stage._write_members(NOW, summary)
    assert set(read) == members_of_mqas and summary.to_write == 0
    assert acc.sb.requests == [] and acc.store.writes_in_flight(CRM) == {
        outside: {"account_score": "1"}
    }


def test_report_shows_conversion_by_account_grade_and_mqa(
    acc: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sales takes two Acme MQLs (an MQA) and a Stark Industries MQL (not an MQA) to SQL;
    Taylor at Globex (an MQA) was made an SQL by sales: sales-sourced, outside the rates."""
    from connector.ops.report import build_report, render_html

    for cid in ("139", "101", "145"):
        acc.sb.portal.set_property(cid, "lifecyclestage", "salesqualifiedlead")
    assert acc.pipeline.sync().status == "ok"
    r = build_report(acc.store, CRM, NOW)
    grades = {f.key: (f.contacts, f.mqls, f.sqls) for f in r.by_account_grade}
    assert grades == {
        "A": (10, 6, 2),
        "B": (13, 6, 0),
        "C": (12, 5, 1),
        "D": (4, 0, 0),  # Morgan at RivalScore, a competitor: grade D
        "no account": (15, 2, 0),
    }
    assert {f.key: (f.contacts, f.mqls, f.sqls, f.mql_to_sql) for f in r.by_mqa} == {
        "MQA accounts": (23, 12, 2, 2 / 12),
        "other accounts": (16, 5, 1, 1 / 5),
        "no account": (15, 2, 0, 0.0),
    }
    res = CliRunner().invoke(
        cli, ["--state", str(tmp_path / "state.db"), "report"], env={"COLUMNS": "110"}
    )
    assert res.exit_code == 0, res.output
    lines = [line.rstrip() for line in res.output.splitlines()]
    start = lines.index("By MQA (the account's current verdict)")
    assert lines[start + 4 : start + 7] == [
        "│ MQA accounts   │       23 │  12 │   2 │         0 │             1 │     17% │        "
        "0% │        0% │",
        "│ other accounts │       16 │   5 │   1 │         0 │             0 │     20% │        "
        "0% │        0% │",
        "│ no account     │       15 │   2 │   0 │         0 │             0 │      0% │         "
        "— │        0% │",
    ]
    html = render_html(r)
    assert '<section id="by-account-grade"><h2>Conversion by account grade</h2>' in html
    assert '<section id="by-mqa"><h2>Conversion at MQA accounts</h2>' in html
    assert "<tr><td>MQA accounts</td><td>23</td><td>12</td><td>2</td>" in html


def test_cli_says_when_account_scoring_is_off_on_a_db_with_account_scores(
    acc: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`rescore --dry-run` and `simulate` on a state DB synced with accounts on, run without
    LEADSCORE_ACCOUNTS: a note on stderr says the contacts are scored without their accounts
    (the demo's account-MQA MQLs come out as no MQL); with it on, no note."""
    monkeypatch.setattr(analysis, "_now", lambda: NOW)
    state = str(tmp_path / "state.db")
    env = {
        "LEADSCORE_HUBSPOT_TOKEN": acc.sb.token,
        "LEADSCORE_HUBSPOT_BASE_URL": acc.sb.url,
        "COLUMNS": "100",
    }
    note = (
        "note: account scoring is off (LEADSCORE_ACCOUNTS) but the state DB holds 12 account "
        "score(s): contacts are scored here without their accounts (an MQL at an MQA comes out "
        "as no MQL); set LEADSCORE_ACCOUNTS=true as the worker has it"
    )
    for args in (
        ["--state", state, "rescore", "--dry-run", "--workers", "1"],
        ["--state", state, "simulate", "--threshold", "60"],
    ):
        res = CliRunner().invoke(cli, args, env=env)
        assert res.exit_code == 0, res.output
        assert note in " ".join(res.output.split()), args
        on = CliRunner().invoke(cli, args, env={**env, "LEADSCORE_ACCOUNTS": "true"})
        assert on.exit_code == 0, on.output
        assert "note: account scoring is off" not in on.output
