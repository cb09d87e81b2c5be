"""Offline `score` / `explain` through the CLI: bad lines are named, the rest still scored."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from connector.cli import cli

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "offline"
NOW = "2026-11-01T12:00:00Z"


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, list(args))


def test_score_json_gives_exact_scores_for_each_contact() -> None:
    r = run(
        "score",
        "--contacts",
        str(FIX / "contacts.jsonl"),
        "--events",
        str(FIX / "events.jsonl"),
        "--now",
        NOW,
        "--json",
    )
    assert r.exit_code == 0, r.output
    rows = {d["id"]: d for d in map(json.loads, r.stdout.splitlines())}
    assert {k: (v["score"], v["mql_reason"]) for k, v in rows.items()} == {
        "1": (110, "threshold"),
        "2": (100, "hand-raiser: Request a demo"),
        "3": (-75, None),
        "4": (100, None),
    }
    assert rows["4"]["grade"] == "D"
    assert rows["2"]["profile_mismatch"] is True


def test_malformed_lines_are_named_and_the_rest_still_scored(tmp_path: Path) -> None:
    contacts = tmp_path / "contacts.jsonl"
    shutil.copy(FIX / "contacts.jsonl", contacts)
    with contacts.open("a") as fh:
        fh.write("{not json\n")
        fh.write(json.dumps({"email": "no-id@x.com"}) + "\n")
        fh.write(json.dumps({"id": "9", "job_title": {"nested": 1}}) + "\n")
    events = tmp_path / "events.jsonl"
    shutil.copy(FIX / "events.jsonl", events)
    with events.open("a") as fh:
        fh.write(
            json.dumps(
                {"id": "x1", "contact_id": "1", "type": "page_view", "occurred_at": "yesterday"}
            )
            + "\n"
        )
    r = run("score", "--contacts", str(contacts), "--events", str(events), "--now", NOW, "--json")
    assert r.exit_code == 1
    scored = [json.loads(line)["id"] for line in r.stdout.splitlines()]
    assert scored == ["1", "2", "3", "4"]
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: contacts.jsonl:5: invalid JSON (Expecting property name enclosed in double "
        "quotes at column 2)",
        "error: contacts.jsonl:6: id: required",
        "error: contacts.jsonl:7: job_title: expected text, got dict",
        "error: events.jsonl:41: occurred_at: not an ISO-8601 timestamp ('yesterday')",
    ]
    assert "4 bad record(s) skipped; the rest were scored." in r.stderr


def test_broken_model_scores_nothing_and_exits_2(tmp_path: Path) -> None:
    model = tmp_path / "model.yaml"
    model.write_text("version: ''\nfit: {grades: {A: 1, B: 2, C: 3}}\n")
    shutil.copy(FIX.parents[1] / "config" / "titles.yaml", tmp_path / "titles.yaml")
    r = run("score", "--contacts", str(FIX / "contacts.jsonl"), "--model", str(model), "--json")
    assert r.exit_code == 2  # a bad model file is a configuration error, for every command
    assert r.stdout == ""
    assert "version: String should have at least 1 character" in r.stderr
    assert "fit.grades: grade minimums must descend A > B > C, got A=1 B=2 C=3" in r.stderr
    assert "nothing scored" in r.stderr


def test_explain_lists_every_point_with_its_events() -> None:
    r = run(
        "explain",
        "dana.whitfield@acme-analytics.com",
        "--contacts",
        str(FIX / "contacts.jsonl"),
        "--events",
        str(FIX / "events.jsonl"),
        "--now",
        NOW,
    )
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "score 110" in out
    assert "watched webinar 'Scoring that sales trusts' (full)" in out
    assert "2026-10-31 00:00 page_view /pricing" in out  # a page by its path
    assert "pricing_repeat" in out and "return_visits" in out and "pages_30" in out
    missing = run("explain", "nobody@x.com", "--contacts", str(FIX / "contacts.jsonl"))
    assert missing.exit_code == 1
    assert "no contact 'nobody@x.com' in contacts.jsonl" in missing.stderr


def test_version_says_which_build_of_the_scoring_core_runs() -> None:
    """Pure Python here (the README's install); the Docker image's compiled build says
    'compiled by mypyc' (tests/test_compiled_build.py)."""
    r = run("--version")
    assert r.exit_code == 0
    assert r.output.rstrip().endswith(" 0.1.0 (scoring core: pure Python)"), r.output
