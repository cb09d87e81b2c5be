"""A state DB holding account scores, synced with account scoring off (LEADSCORE_ACCOUNTS unset,
or a model without an `accounts:` section): sync, backfill and run say so once, in one line,
as the previews (rescore --dry-run, simulate, explain) do. Against the HubSpot sandbox's demo
portal, synced with accounts on first."""

from __future__ import annotations

import io
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
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
from connector.model.loader import load_model
from connector.pipeline import Pipeline
from connector.sandbox.hubspot import HubSpotSandbox
from connector.settings import load_settings
from connector.state.store import StateStore
from connector.worker.cli import run_worker
from connector.worker.logs import configure_logging

from .conftest import NOW, shipped_model_variant

ROBIN = "112"  # grade B, 60 points: an MQL by Acme Analytics' MQA only
ROBIN_MQA = "account MQA: company:9001 (score 60 ≥ 60 at an MQA)"

STALE = (
    "account scoring is off (LEADSCORE_ACCOUNTS) but the state DB holds 12 account score(s): "
    "they are left to go stale, and contacts are scored without their accounts (no MQL by an "
    "account's MQA); set LEADSCORE_ACCOUNTS=true to score accounts again"
)


def _stale_without(gap: str, remedy: str) -> str:
    return (
        f"account scoring is off (LEADSCORE_ACCOUNTS, and {gap}) but the state DB holds 12 "
        "account score(s): they are left to go stale, and contacts are scored without their "
        "accounts (no MQL by an account's MQA); scoring accounts takes LEADSCORE_ACCOUNTS=true "
        f"and a model with {remedy}"
    )


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[HubSpotSandbox, Path, dict[str, str]]]:
    """The demo portal synced with accounts on at NOW (12 account scores in the state DB),
    and the environment a command needs to sync it again."""
    with HubSpotSandbox.start(_portal_source(), now=NOW, search_rate_limit=10_000) as sb:
        adapter = HubSpotAdapter(SecretStr(sb.token), sb.url, accounts=True)
        db = tmp_path / "state.db"
        try:
            adapter.ensure_properties()
            with StateStore.open(db) as store:
                enricher = build_enricher(load_settings(), cache=store.company_cache)
                pipeline = Pipeline(
                    store, adapter, load_model(), enricher=enricher, clock=lambda: NOW
                )
                pipeline.accounts = AccountStage(pipeline)
                assert pipeline.sync().status == "ok"
                assert store.count_account_scores("hubspot") == 12
        finally:
            adapter.close()
        env = {
            "LEADSCORE_ENV_FILE": str(tmp_path / "none.env"),
            "LEADSCORE_HUBSPOT_TOKEN": sb.token,
            "LEADSCORE_HUBSPOT_BASE_URL": sb.url,
            "LEADSCORE_HUBSPOT_SEARCH_PER_SECOND": "1000",
            "LEADSCORE_STATE_PATH": str(db),
        }
        yield sb, db, env


def _rows(db: Path) -> dict[str, Any]:
    with closing(sqlite3.connect(db)) as conn:
        return {
            "account_scores": conn.execute(
                "SELECT * FROM account_scores ORDER BY crm, account_id"
            ).fetchall(),
            "account_score_history": conn.execute(
                "SELECT count(*) FROM account_score_history"
            ).fetchone()[0],
            "robin": conn.execute(
                "SELECT mql, mql_reason FROM scores WHERE contact_id = ?", (ROBIN,)
            ).fetchone(),
            "syncs": conn.execute("SELECT count(*) FROM runs WHERE status = 'ok'").fetchone()[0],
        }


def _model_file(tmp_path: Path, accounts: str) -> Path:
    """The shipped model as version `no-accounts`, its `accounts:` section dropped
    (`accounts="none"`) or turned off (`accounts="off"`), beside the shipped title rules."""

    def edit(doc: dict[str, Any]) -> None:
        if accounts == "none":
            del doc["accounts"]
        else:
            doc["accounts"]["enabled"] = False

    return shipped_model_variant(tmp_path, "no-accounts", edit)


def test_sync_with_accounts_off_says_the_stored_account_scores_go_stale(
    held: tuple[HubSpotSandbox, Path, dict[str, str]], no_log_handler: None
) -> None:
    _, db, env = held
    before = _rows(db)
    assert before["robin"] == (1, ROBIN_MQA)
    res = CliRunner().invoke(cli, ["sync"], env=env)
    assert res.exit_code == 0, res.output
    assert res.stderr == f"note: {STALE}\n"
    after = _rows(db)
    # the account scores stay as they were; Robin, rescored without Acme's MQA, keeps his
    # stage (an MQL already) but not the MQL reason the account gave him
    assert after["account_scores"] == before["account_scores"]
    assert after["account_score_history"] == before["account_score_history"]
    assert after["robin"] == (1, None)
    assert after["syncs"] == before["syncs"] + 1
    # accounts on: no note, and the accounts are scored again
    on = CliRunner().invoke(cli, ["sync"], env={**env, "LEADSCORE_ACCOUNTS": "true"})
    assert on.exit_code == 0, on.output
    assert on.stderr == ""
    assert _rows(db)["robin"] == (1, ROBIN_MQA)


def test_sync_in_json_log_mode_says_it_as_one_warning_record(
    held: tuple[HubSpotSandbox, Path, dict[str, str]], no_log_handler: None
) -> None:
    _, _, env = held
    res = CliRunner().invoke(cli, ["sync", "--json"], env={**env, "LEADSCORE_LOG_JSON": "true"})
    assert res.exit_code == 0, res.output
    records = [json.loads(line) for line in res.stderr.splitlines()]  # JSON lines only
    warnings = [(r["level"], r["logger"], r["message"]) for r in records if r["level"] != "info"]
    assert warnings == [("warning", "connector.app", STALE)]
    assert json.loads(res.stdout)["status"] == "ok"


def test_a_fresh_state_db_gets_no_note(tmp_path: Path, no_log_handler: None) -> None:
    """No account score stored: nothing to go stale, nothing said."""
    with HubSpotSandbox.start(_portal_source(), now=NOW) as sb:
        env = {
            "LEADSCORE_ENV_FILE": str(tmp_path / "none.env"),
            "LEADSCORE_HUBSPOT_TOKEN": sb.token,
            "LEADSCORE_HUBSPOT_BASE_URL": sb.url,
            "LEADSCORE_STATE_PATH": str(tmp_path / "fresh.db"),
        }
        res = CliRunner().invoke(cli, ["sync", "--dry-run"], env=env)
    assert res.exit_code == 0, res.output
    assert res.stderr == ""


@pytest.mark.parametrize("accounts", ["none", "off"])
def test_a_model_that_scores_no_account_is_named_not_the_setting(
    held: tuple[HubSpotSandbox, Path, dict[str, str]],
    tmp_path: Path,
    no_log_handler: None,
    accounts: str,
) -> None:
    """With the setting off and a model without an (enabled) `accounts:` section, turning the
    setting on would not score accounts: the note says what the model lacks; with the setting
    on, `open_app`'s warning alone says it (for a section turned off too)."""
    _, db, env = held
    model = str(_model_file(tmp_path, accounts))
    gap, remedy = (
        ("model no-accounts has no `accounts:` section", "an `accounts:` section")
        if accounts == "none"
        else (
            "model no-accounts has its `accounts:` section off (enabled: false)",
            "its `accounts:` section enabled",
        )
    )
    before = _rows(db)
    res = CliRunner().invoke(cli, ["sync", "--model", model], env=env)
    assert res.exit_code == 0, res.output
    lines = res.stderr.splitlines()
    # the scores stored by the shipped model before any model was in force: rescored now
    assert lines[0].startswith("note: 54 stored score(s) come from another model (")
    assert lines[0].endswith("this run rescores them with the model in force no-accounts "
                             f"({load_model(model).fingerprint})")  # fmt: skip
    assert lines[1:] == [f"note: {_stale_without(gap, remedy)}"]
    assert _rows(db)["account_scores"] == before["account_scores"]
    on = CliRunner().invoke(
        cli, ["sync", "--model", model], env={**env, "LEADSCORE_ACCOUNTS": "true"}
    )
    assert on.exit_code == 0, on.output
    assert on.stderr == (
        f"warning: LEADSCORE_ACCOUNTS=true, but {gap}: no account is scored (stored account "
        "scores stay as they are)\n"
    )
    assert _rows(db)["account_scores"] == before["account_scores"]


def test_backfill_with_accounts_off_says_it_once(
    held: tuple[HubSpotSandbox, Path, dict[str, str]], no_log_handler: None
) -> None:
    _, db, env = held
    before = _rows(db)
    res = CliRunner().invoke(cli, ["backfill", "--since", "2026-09-01"], env=env)
    assert res.exit_code == 0, res.output
    assert res.stderr == f"note: {STALE}\n"
    assert _rows(db)["account_scores"] == before["account_scores"]


def test_the_run_worker_says_it_once_at_start_not_every_pass(
    held: tuple[HubSpotSandbox, Path, dict[str, str]],
    no_log_handler: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two sync passes (and the scheduled one): one warning record, before the worker starts
    (JSON log mode: the record as one JSON line)."""
    sb, db, _ = held
    before = _rows(db)
    monkeypatch.setenv("LEADSCORE_ENV_FILE", str(db.parent / "none.env"))
    stream = io.StringIO()
    configure_logging(json_lines=True, level="INFO", stream=stream)
    settings = load_settings(
        crm="hubspot",
        hubspot_search_per_second=1000,
        hubspot_base_url=sb.url,
        hubspot_token=sb.token,
        state_path=db,
        http_port=0,
        sync_interval_minutes=60,
    )
    stop = threading.Event()
    passes: list[str] = []

    def ready(service: Any) -> None:
        for _ in range(2):
            summary = service.worker.run_sync()
            passes.append(summary.status if summary is not None else "skipped")
        stop.set()

    assert run_worker(settings, load_model(), stop=stop, on_ready=ready) == 0
    assert passes == ["ok", "ok"]
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    said = [(r["level"], r["logger"]) for r in records if r["message"] == STALE]
    assert said == [("warning", "connector.app")]
    started = next(i for i, r in enumerate(records) if r["message"].startswith("leadscore worker:"))
    assert [r["message"] for r in records].index(STALE) < started
    after = _rows(db)
    assert after["syncs"] >= before["syncs"] + 2
    assert after["account_scores"] == before["account_scores"]


def test_previews_name_what_the_model_lacks(
    held: tuple[HubSpotSandbox, Path, dict[str, str]], tmp_path: Path
) -> None:
    """`rescore --dry-run` and `simulate` of a model without an `accounts:` section: with the
    setting off the note says the model lacks the section (the setting alone would not do);
    with it on, that the model scores no account."""
    _, _, env = held
    model = str(_model_file(tmp_path, "none"))
    off = (
        "note: account scoring is off (LEADSCORE_ACCOUNTS, and model no-accounts has no "
        "`accounts:` section) but the state DB holds 12 account score(s): contacts are scored "
        "here without their accounts (an MQL at an MQA comes out as no MQL); scoring accounts "
        "takes LEADSCORE_ACCOUNTS=true and a model with an `accounts:` section"
    )
    on = (
        "note: LEADSCORE_ACCOUNTS=true, but model no-accounts has no `accounts:` section: "
        "contacts are scored here without their accounts (an MQL at an MQA comes out as no MQL) "
        "although the state DB holds 12 account score(s)"
    )
    for args in (
        ["rescore", "--dry-run", "--workers", "1", "--model", model],
        ["simulate", "--model", model],
    ):
        for extra, note in (({}, off), ({"LEADSCORE_ACCOUNTS": "true"}, on)):
            res = CliRunner().invoke(cli, args, env={**env, **extra, "COLUMNS": "100"})
            assert res.exit_code == 0, res.output
            said = [line for line in res.stderr.splitlines() if "account" in line]
            assert said == [note], (args, extra)
