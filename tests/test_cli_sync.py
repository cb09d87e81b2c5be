"""`leadscore sync` through the CLI against both sandboxes, configured by environment only."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import cli
from connector.sandbox.demo_portal import build_demo_portal
from connector.sandbox.hubspot import HubSpotSandbox
from connector.sandbox.marketo import MarketoSandbox

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_marketo_sync_from_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with MarketoSandbox.start(FIXTURES / "marketo_demo_instance.json") as sb:
        monkeypatch.setenv("LEADSCORE_MARKETO_BASE_URL", sb.url)
        monkeypatch.setenv("LEADSCORE_MARKETO_CLIENT_ID", sb.client_id)
        monkeypatch.setenv("LEADSCORE_MARKETO_CLIENT_SECRET", sb.client_secret)
        monkeypatch.setenv("LEADSCORE_STATE_PATH", str(tmp_path / "m.db"))
        runner = CliRunner()
        first = runner.invoke(cli, ["--crm", "marketo", "sync"])
        assert first.exit_code == 0, first.output
        assert "sync marketo ok: pulled 54," in first.output
        assert ", written 54," in first.output
        second = runner.invoke(cli, ["--crm", "marketo", "sync"])
        assert second.exit_code == 0, second.output
        assert ", written 0," in second.output
        assert sb.lead(102).values["leadStatus"] == "MQL"  # the hand-raiser, at any hour
        assert sb.client_secret not in first.output + second.output


def test_hubspot_sync_without_properties_says_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with HubSpotSandbox.start(build_demo_portal()) as sb:
        monkeypatch.setenv("LEADSCORE_HUBSPOT_BASE_URL", sb.url)
        monkeypatch.setenv("LEADSCORE_HUBSPOT_TOKEN", sb.token)
        monkeypatch.setenv("LEADSCORE_STATE_PATH", str(tmp_path / "h.db"))
        runner = CliRunner()
        missing = runner.invoke(cli, ["sync"])
        assert missing.exit_code == 2
        assert "run `leadscore init-properties` first" in missing.output
        assert runner.invoke(cli, ["init-properties"]).exit_code == 0
        dry = runner.invoke(cli, ["sync", "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert "Would update 54 contact(s) (dry run, nothing written)." in dry.output
        assert "leadscore_score" not in sb.contact("101").properties
        real = runner.invoke(cli, ["sync"])
        assert real.exit_code == 0, real.output
        riley = sb.contact("102").properties  # real clock: assert what no hour can change
        assert riley["leadscore_mql_reason"] == "hand-raiser: Request a demo"
        assert sb.contact("101").properties["leadscore_grade"] == "A"
