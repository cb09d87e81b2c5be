"""An admin's first hour (issue 24, items 6-10): a dry run before init-properties, misspelt
settings, the default state DB, a fresh DB against a scored portal, no traceback anywhere."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import cli, main
from connector.crm.hubspot import OPTIONAL_SCOPES, REQUIRED_SCOPES
from connector.errors import ConfigError
from connector.sandbox.demo_portal import build_demo_portal
from connector.sandbox.hubspot import HubSpotSandbox
from connector.settings import CONFIG_DIR, default_state_path, load_settings

pytestmark = pytest.mark.usefixtures("no_log_handler")  # conftest


@pytest.fixture
def portal(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubSpotSandbox]:
    with HubSpotSandbox.start(build_demo_portal()) as sb:
        monkeypatch.setenv("LEADSCORE_HUBSPOT_BASE_URL", sb.url)
        monkeypatch.setenv("LEADSCORE_HUBSPOT_TOKEN", sb.token)
        yield sb


def _writes(sb: HubSpotSandbox) -> int:
    return sum(1 for r in sb.requests if r.path.endswith("/batch/update"))


# ------------------------------------------------------------------ 6: sync --dry-run


def test_dry_run_needs_no_properties_and_shows_a_table(
    portal: HubSpotSandbox, tmp_path: Path
) -> None:
    res = CliRunner().invoke(cli, ["sync", "--dry-run", "--state", str(tmp_path / "s.db")])
    assert res.exit_code == 0, res.output
    lines = [line.rstrip() for line in res.output.splitlines()]
    assert lines[0] == (
        "note: the CRM lacks 9 of our properties (leadscore_fit_score, leadscore_grade, "
        "leadscore_model_version, …): run `leadscore init-properties` before a real sync "
        "(this dry run writes nothing)"
    )
    assert lines[1] == "Would update 54 contact(s): the first 20"
    assert lines[3].split("┃")[1:-1] == [
        " contact                           ",
        "   score ",
        " grade ",
        " stage      ",
        " reasons that differ                                              ",
    ]
    assert (
        "│ dana.whitfield@acme-analytics.com │ — → 110 │ — → A │ lead → MQL │ now +50 watched "
        "webinar 'Scoring that sales trusts' (full)       │"
    ) in lines
    assert (
        "│ riley.chen1987@gmail.com          │ — → 100 │ — → D │ lead → MQL │ now +100 "
        "requested a demo ('Request a demo')                     │"
    ) in lines
    # a long reason ends in an ellipsis at a word boundary, never mid-word
    assert (
        "│                                   │         │       │            │ now grade C: "
        "decision-making title, works in marketing, sales…   │"
    ) in lines
    assert sum(1 for line in lines if line.startswith("│ ") and "@" in line) == 20
    assert lines[-3:-1] == [
        "…and 34 more",
        "Would update 54 contact(s) (dry run, nothing written).",
    ]
    assert lines[-1].startswith(
        "sync hubspot ok: pulled 54, new events 2,342, scored 54, written 0"
    )
    assert "'leadscore" not in res.output  # no Python repr of property dicts
    assert _writes(portal) == 0
    assert not any(r.method == "POST" and "/properties/" in r.path for r in portal.requests)


def test_a_real_sync_still_needs_init_properties(portal: HubSpotSandbox, tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["sync", "--state", str(tmp_path / "s.db")])
    assert res.exit_code == 2
    assert "run `leadscore init-properties` first" in res.output
    assert _writes(portal) == 0


def test_a_refused_token_is_one_line_exit_5_with_the_scopes(
    portal: HubSpotSandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LEADSCORE_HUBSPOT_TOKEN", "pat-na1-revoked")
    res = CliRunner().invoke(cli, ["--state", str(tmp_path / "s.db"), "sync"])
    assert res.exit_code == 5
    text = " ".join(res.output.split())
    assert "pat-na1-revoked" not in text
    assert text.startswith("sync hubspot auth: pulled 0, ")
    assert (
        "HubSpot refused the token (HTTP 401): Authentication credentials are invalid: the "
        "access token is unknown, expired or revoked. Check LEADSCORE_HUBSPOT_TOKEN and the "
        "private app's scopes: "
    ) in text  # one period after the CRM's own sentence, not two


# ------------------------------------------------------------------ 7: one list of scopes


def test_the_scopes_are_named_alike_in_errors_the_env_example_and_the_readme(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    example = (CONFIG_DIR / "leadscore.env.example").read_text()
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    res = CliRunner().invoke(cli, ["--state", str(tmp_path / "s.db"), "sync"])
    assert res.exit_code == 2
    for scope in (*REQUIRED_SCOPES, *OPTIONAL_SCOPES):
        assert f" {scope}" in example, scope
        assert f"`{scope}`" in readme, scope
        assert scope in res.output, scope


# ------------------------------------------------------------------ 8: misspelt settings


def test_a_misspelt_setting_is_an_error_with_the_right_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LEADSCORE_HUBSPOT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("LEADSCORE_SYNC_INTERVAL", "5")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value) == (
        "invalid settings: unknown setting LEADSCORE_HUBSPOT_URL (environment; did you mean "
        "LEADSCORE_HUBSPOT_BASE_URL?); unknown setting LEADSCORE_SYNC_INTERVAL (environment; "
        "did you mean LEADSCORE_SYNC_INTERVAL_MINUTES?)"
    )
    res = CliRunner().invoke(cli, ["sync", "--state", str(tmp_path / "s.db")])
    assert res.exit_code == 2
    assert "did you mean LEADSCORE_HUBSPOT_BASE_URL?" in res.output
    assert not (tmp_path / "s.db").exists()


def test_a_misspelt_name_in_the_env_file_is_named_with_the_file(tmp_path: Path) -> None:
    from connector.settings import unknown_env_names

    env = tmp_path / "leadscore.env"
    env.write_text("LEADSCORE_CRM=hubspot\nLEADSCORE_HUBSPOT_TOKN=pat-x\nOTHER=1\n")
    assert unknown_env_names({"LEADSCORE_COMPILE": "1", "PATH": "/bin"}, env) == [
        f"LEADSCORE_HUBSPOT_TOKN ({env}; did you mean LEADSCORE_HUBSPOT_TOKEN?)"
    ]
    assert unknown_env_names({}, CONFIG_DIR / "leadscore.env.example") == []


def test_a_json_setting_that_is_not_json_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LEADSCORE_MARKETO_FIELD_MAP", "{bad json")
    res = CliRunner().invoke(cli, ["sync", "--state", str(tmp_path / "s.db")])
    assert res.exit_code == 2
    assert res.output == (
        "error: invalid settings: LEADSCORE_MARKETO_FIELD_MAP: not valid JSON (Expecting "
        "property name enclosed in double quotes: line 1 column 2 (char 1))\n"
    )
    monkeypatch.delenv("LEADSCORE_MARKETO_FIELD_MAP")
    env = tmp_path / "leadscore.env"  # the same from the env file
    env.write_text('LEADSCORE_MARKETO_STAGE_VALUES=["MQL"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=env)
    assert str(info.value).startswith(
        "invalid settings: LEADSCORE_MARKETO_STAGE_VALUES: not valid JSON ("
    )
    assert not (tmp_path / "s.db").exists()


# ------------------------------------------------------------------ 9: the state DB


def test_the_default_state_db_is_one_file_whatever_the_directory(
    portal: HubSpotSandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    _state_home: Path,
) -> None:
    assert default_state_path() == _state_home / "leadscore" / "state.db"
    assert load_settings().state_path == default_state_path()
    runner = CliRunner()
    assert runner.invoke(cli, ["init-properties"]).exit_code == 0
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    first = runner.invoke(cli, ["sync"])
    assert first.exit_code == 0, first.output
    assert ", written 54," in first.output
    monkeypatch.chdir(tmp_path / "b")
    second = runner.invoke(cli, ["sync"])
    assert second.exit_code == 0, second.output
    assert ", written 0," in second.output
    assert list(tmp_path.rglob("*.db")) == []
    status = runner.invoke(cli, ["status"])
    assert status.exit_code == 0, status.output
    assert status.output.splitlines()[0] == (
        f"leadscore status — hubspot, state DB {default_state_path()} (the default; "
        "LEADSCORE_STATE_PATH or --state to change)"
    )


def test_without_xdg_the_default_is_under_the_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_STATE_HOME")
    assert default_state_path() == Path.home() / ".local" / "state" / "leadscore" / "state.db"


def test_a_fresh_state_db_is_refused_against_a_scored_portal(
    portal: HubSpotSandbox, tmp_path: Path
) -> None:
    runner = CliRunner()
    first, second = str(tmp_path / "first.db"), str(tmp_path / "second.db")
    assert runner.invoke(cli, ["init-properties"]).exit_code == 0
    assert runner.invoke(cli, ["sync", "--state", first]).exit_code == 0
    writes = _writes(portal)
    for args in (["sync", "--state", second], ["--state", second, "sync", "--dry-run"]):
        refused = runner.invoke(cli, args)
        assert refused.exit_code == 2, refused.output
        assert "already carries a leadscore score (model " in refused.output
        assert f"but the state DB {second} has none" in refused.output
        assert "--allow-fresh-state" in refused.output
    assert _writes(portal) == writes  # nothing written for the refused runs
    from connector.state.store import StateStore

    store = StateStore.open(Path(second))
    try:
        assert store.count_contacts("hubspot", include_inactive=True) == 0
    finally:
        store.close()
    allowed = runner.invoke(cli, ["sync", "--state", second, "--allow-fresh-state"])
    assert allowed.exit_code == 0, allowed.output
    assert ", written 54," in allowed.output
    again = runner.invoke(cli, ["sync", "--state", second])  # no longer fresh
    assert again.exit_code == 0, again.output
    assert ", written 0," in again.output


def test_a_backfill_into_a_fresh_state_db_is_refused_too(
    portal: HubSpotSandbox, tmp_path: Path
) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["init-properties"]).exit_code == 0
    assert runner.invoke(cli, ["sync", "--state", str(tmp_path / "first.db")]).exit_code == 0
    writes = _writes(portal)
    args = ["backfill", "--since", "2020-01-01", "--state", str(tmp_path / "second.db")]
    refused = runner.invoke(cli, args)
    assert refused.exit_code == 2, refused.output
    assert "already carries a leadscore score" in refused.output
    # the same command again would meet the same refusal: fix it first
    assert refused.output.rstrip().endswith(
        "committed page(s); fix the error above, then run the same command again to resume "
        "from there."
    )
    assert _writes(portal) == writes
    allowed = runner.invoke(cli, [*args, "--allow-fresh-state"])
    assert allowed.exit_code == 0, allowed.output
    assert _writes(portal) > writes


def test_global_options_work_after_the_command_name_too(tmp_path: Path) -> None:
    db = tmp_path / "after.db"
    for args in (["status", "--state", str(db)], ["--state", str(db), "status"]):
        res = CliRunner().invoke(cli, args)
        assert res.exit_code == 1
        assert f"no state DB at {db};" in res.output
    res = CliRunner().invoke(cli, ["demo", "--crm", "marketo", "--state", str(db)])
    assert res.exit_code == 0, res.output
    assert "Marketo sandbox" in res.output


# ------------------------------------------------------------------ 10: no traceback


def _bad_invocations(tmp: Path) -> list[list[str]]:
    missing = str(tmp / "missing.jsonl")
    under_a_file = str(tmp / "a-file" / "x.db")
    return [
        ["score", "--contacts", missing],
        ["score", "--contacts", str(tmp)],
        ["explain", "--contacts", missing, "dana@x.com"],
        ["explain", "dana@x.com"],
        ["validate-model", str(tmp / "nope.yaml")],
        ["sync", "--model", str(tmp / "nope.yaml")],
        ["sync"],
        ["sync", "--state", under_a_file],
        ["init-properties"],
        ["run", "--model", str(tmp / "nope.yaml")],
        ["backfill", "--since", "yesterday"],
        ["rescore", "--dry-run"],
        ["simulate", "--threshold", "80"],
        ["status"],
        ["status", "--state", str(tmp / "garbage.db")],
        ["status", "--state", str(tmp)],
        ["dead-letters"],
        ["report", "--html", str(tmp / "a-file" / "r.html")],
        ["calibrate"],
        ["enrich", "not-an-email"],
        ["demo", "--keep-state", under_a_file],
        ["sandbox", "hubspot", "--fixtures", missing],
        ["no-such-command"],
    ]


def test_no_user_error_ends_in_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "garbage.db").write_text("not a database")
    monkeypatch.setenv("LEADSCORE_STATE_PATH", str(tmp_path / "none.db"))
    for args in _bad_invocations(tmp_path):
        monkeypatch.setattr(sys, "argv", ["leadscore", *args])
        with pytest.raises(SystemExit) as info:
            main()
        out = capsys.readouterr()
        text = out.out + out.err
        assert info.value.code not in (0, None), (args, text)
        assert "Traceback" not in text, (args, text)
        problem = [line for line in out.err.splitlines() if line.strip()]
        assert problem, (args, text)  # says what is wrong, on stderr


def test_the_installed_command_answers_a_missing_file_in_one_line(tmp_path: Path) -> None:
    import subprocess

    exe = Path(sys.executable).with_name("leadscore")
    res = subprocess.run(
        [str(exe), "score", "--contacts", str(tmp_path / "missing.jsonl")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 1
    assert res.stderr == f"error: {tmp_path / 'missing.jsonl'}: No such file or directory\n"
    assert res.stdout == ""


def test_accounts_on_with_a_model_without_an_accounts_section_is_warned(
    portal: HubSpotSandbox, tmp_path: Path
) -> None:
    import yaml

    doc = yaml.safe_load((CONFIG_DIR / "model.yaml").read_text())
    del doc["accounts"]
    doc["version"] = "no-accounts"
    model = tmp_path / "model.yaml"
    model.write_text(yaml.safe_dump(doc))
    res = CliRunner().invoke(
        cli,
        ["sync", "--dry-run", "--state", str(tmp_path / "s.db"), "--model", str(model)],
        env={"LEADSCORE_ACCOUNTS": "true"},
    )
    assert res.exit_code == 0, res.output
    warned = [line for line in res.output.splitlines() if "LEADSCORE_ACCOUNTS" in line]
    assert warned == [
        "warning: LEADSCORE_ACCOUNTS=true, but model no-accounts has no `accounts:` section: "
        "no account is scored (stored account scores stay as they are)"
    ]
    # the shipped model has the section: no warning
    res = CliRunner().invoke(
        cli,
        ["sync", "--dry-run", "--state", str(tmp_path / "s.db")],
        env={"LEADSCORE_ACCOUNTS": "true"},
    )
    assert res.exit_code == 0, res.output
    assert "LEADSCORE_ACCOUNTS" not in res.output
