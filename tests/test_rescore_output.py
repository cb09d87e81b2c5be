"""An applied `leadscore rescore` prints the summary lines of its two runs, the sync it runs
first and the rescore, and what it wrote in all: each line says which run it is and the total
says how much of it the sync wrote, so no line reads as "nothing written" (it printed the
sync's `written 0` or the rescore's `written 0, unchanged 0` beside "wrote 54 contact(s)")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from connector.cli import cli

from .test_model_rollout import V2
from .test_model_rollout import sandbox as sandbox  # the fixture
from .test_ops_rescore import DEFAULT_VERSION, THRESHOLD_80, model_file

TAIL = re.compile(r", API calls \d+ \(\d+ rate-limited\), \d+\.\ds$")


def run_lines(res: Result) -> list[str]:
    """The summary lines and the total, API calls and duration cut off (they vary)."""
    return [
        TAIL.sub("", line)
        for line in res.output.splitlines()
        if re.match(r"(before the rescore, sync|rescore) hubspot |rescored ", line)
    ]


def test_a_rescore_after_a_sync_names_the_sync_that_wrote_every_contact(
    sandbox: object, tmp_path: Path
) -> None:
    """The sync right after the first one pulls every contact again (our writes changed
    them) and scores them with the new model: it writes all 54, the rescore none."""
    runner = CliRunner()
    assert runner.invoke(cli, ["sync"]).exit_code == 0
    path = model_file(tmp_path, "model.v2", (DEFAULT_VERSION, V2), THRESHOLD_80)
    res = runner.invoke(cli, ["rescore", "--model", str(path)])
    assert res.exit_code == 0, res.output
    assert run_lines(res) == [
        "before the rescore, sync hubspot ok: pulled 54, new events 0, scored 54, written 54, "
        "repaired 0, unchanged 0, dead-lettered 0",
        "rescore hubspot ok: pulled 0, new events 0, scored 54, written 0, repaired 0, "
        "unchanged 54, dead-lettered 0",
        "rescored with model 2026.12-v2: wrote 54 contact(s) (the preview said 54); the sync "
        "before the rescore wrote 54 of them, scored with the new model",
    ]


def test_a_rescore_whose_sync_pulled_nothing_says_so_on_the_sync_line(
    sandbox: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No lookback and two syncs first: the rescore's sync pulls and writes nothing, the
    rescore writes every contact."""
    monkeypatch.setenv("LEADSCORE_LOOKBACK_MINUTES", "0")
    runner = CliRunner()
    assert runner.invoke(cli, ["sync"]).exit_code == 0
    assert runner.invoke(cli, ["sync"]).exit_code == 0
    path = model_file(tmp_path, "model.v2", (DEFAULT_VERSION, V2), THRESHOLD_80)
    res = runner.invoke(cli, ["rescore", "--model", str(path)])
    assert res.exit_code == 0, res.output
    assert run_lines(res) == [
        "before the rescore, sync hubspot ok: pulled 0, new events 0, scored 0, written 0, "
        "repaired 0, unchanged 0, dead-lettered 0",
        "rescore hubspot ok: pulled 0, new events 0, scored 54, written 54, repaired 0, "
        "unchanged 0, dead-lettered 0",
        "rescored with model 2026.12-v2: wrote 54 contact(s) (the preview said 54)",
    ]
