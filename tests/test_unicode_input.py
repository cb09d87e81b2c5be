"""Issue 19: text a CRM or a file really holds (a lone UTF-16 surrogate from a cut-off emoji,
control characters, 10 kB strings, numbers where text is due) flows through sync and offline
scoring; `init-properties` reports only what HubSpot shows it created."""

from __future__ import annotations

import io
import json
import logging
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
import requests
from click.testing import CliRunner
from pydantic import SecretStr

from connector.cli import cli
from connector.crm.marketo import MarketoAdapter
from connector.files import write_private
from connector.model.loader import validate_model_file
from connector.parse import contact_from_json, event_from_json
from connector.retry import RetryPolicy
from connector.sandbox.base import Faults, Request, Response, json_bytes
from connector.sandbox.demo_portal import build_demo_portal
from connector.sandbox.faults import PROXY_PAGE
from connector.sandbox.hubspot import HubSpotSandbox
from connector.sandbox.marketo import MarketoSandbox
from connector.sandbox.marketo_demo import build_instance
from connector.state.store import StateStore
from connector.text import clean_text, display_text
from connector.types import Contact, Event, LifecycleDecision, Reason, ScoreResult
from connector.worker.logs import JsonFormatter, RedactingFilter

from .conftest import shipped_model_variant

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CUT = "Jos\ud83d"  # "José" + half of an emoji, as a CRM import left it
LONG = "x" * 10_240
CONTROLS = "Ruiz\x00\x1b[31m"


def _rows(db: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


# -- the text rules -------------------------------------------------------------------------


def test_clean_text_replaces_lone_surrogates_only() -> None:
    assert clean_text(CUT) == "Jos\ufffd"
    assert clean_text("\ud83d\ude00 ok") == "\U0001f600 ok"  # a pair is its character
    assert clean_text(CONTROLS) == CONTROLS  # stored as the CRM holds it
    assert display_text(CUT + CONTROLS + "\tend\n") == "Jos\ufffdRuiz[31m\tend\n"


def test_file_records_are_parsed_with_surrogates_replaced() -> None:
    c = contact_from_json(
        {
            "id": 7,
            "first_name": CUT,
            "job_title": LONG,
            "company_name": 12345,
            "properties": {"note\ud800": [CUT]},
        }
    )
    assert (c.id, c.first_name, c.job_title, c.company_name) == (
        "7",
        "Jos\ufffd",
        "x" * 10_000,
        "12345",
    )
    assert c.properties == {"note\ufffd": ["Jos\ufffd"]}
    e = event_from_json(
        {
            "id": "e1",
            "contact_id": "7",
            "type": "page_view",
            "occurred_at": "2026-11-01T00:00:00Z",
            "attributes": {"title": CUT},
        }
    )
    assert e.attributes == {"title": "Jos\ufffd"}


# -- the sinks, handed such text directly ----------------------------------------------------


def test_state_store_writes_text_with_a_lone_surrogate_replaced(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = StateStore.open(str(db))
    at = datetime(2026, 11, 1, tzinfo=UTC)
    try:
        bad = Contact(id="1", first_name=CUT, last_name=CONTROLS, properties={"firstname": CUT})
        assert (
            store.upsert_contacts("hubspot", [bad, Contact(id="2", first_name="Ana")], at=at) == 2
        )
        ev = Event("file", "e1", "1", "page_view", at, {"title": CUT})
        assert store.insert_events("hubspot", [ev]) == {"1"}
        store.add_dead_letter("hubspot", "contact", "1", {"firstname": CUT}, f"bad {CUT}", at)
    finally:
        store.close()
    assert _rows(db, "SELECT id, first_name, last_name, properties FROM contacts ORDER BY id") == [
        ("1", "Jos\ufffd", CONTROLS, '{"firstname":"Jos\ufffd"}'),
        ("2", "Ana", None, None),
    ]
    assert _rows(db, "SELECT source_id, attributes FROM events") == [
        ("e1", '{"title":"Jos\ufffd"}')
    ]
    assert _rows(db, "SELECT contact_id, payload, reason FROM dead_letters") == [
        ("1", '{"firstname":"Jos\ufffd"}', "bad Jos\ufffd")
    ]


def test_logs_and_exported_files_take_such_text(tmp_path: Path) -> None:
    stream = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")  # strict, as a log file is
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test_unicode_input")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("contact %s: %s", CUT, CONTROLS)
    finally:
        logger.removeHandler(handler)
    stream.flush()
    line = stream.buffer.getvalue().decode("utf-8")
    assert json.loads(line)["message"] == "contact Jos\ufffd: Ruiz[31m"
    out = tmp_path / "report.html"
    write_private(out, f"<td>{CUT}{CONTROLS}</td>")
    assert out.read_text(encoding="utf-8") == "<td>Jos\ufffdRuiz[31m</td>"


def test_sandbox_serves_a_lone_surrogate_as_the_json_escape() -> None:
    assert json_bytes({"firstname": CUT, "city": "Zürich"}) == (
        b'{"firstname":"Jos\\ud83d","city":"Z\\u00fcrich"}'
    )
    assert json_bytes({"city": "Zürich"}) == '{"city":"Zürich"}'.encode()  # UTF-8 as before


# -- a real sync against each sandbox ----------------------------------------------------------


def _hubspot_cli(
    sb: HubSpotSandbox, db: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[CliRunner, dict[str, str]]:
    """The CLI pointed at the sandbox and `db`, its properties created; the HTTP headers."""
    monkeypatch.setenv("LEADSCORE_HUBSPOT_BASE_URL", sb.url)
    monkeypatch.setenv("LEADSCORE_HUBSPOT_TOKEN", sb.token)
    monkeypatch.setenv("LEADSCORE_STATE_PATH", str(db))
    runner = CliRunner()
    assert runner.invoke(cli, ["init-properties"]).exit_code == 0
    return runner, {"Authorization": f"Bearer {sb.token}", "Content-Type": "application/json"}


def test_hubspot_sync_stores_the_cut_emoji_replaced_and_every_contact_flows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "h.db"
    with HubSpotSandbox.start(build_demo_portal()) as sb:
        runner, auth = _hubspot_cli(sb, db, monkeypatch)
        # created over HTTP as an import would: the JSON escape of half an emoji
        body = (
            b'{"properties":{"email":"jose.ruiz@acme-analytics.com","firstname":"Jos\\ud83d",'
            b'"lastname":"Ruiz\\u0000\\u001b[31m","jobtitle":"VP Marketing"}}'
        )
        created = requests.post(f"{sb.url}/crm/v3/objects/contacts", data=body, headers=auth)
        assert created.status_code == 201, created.text
        jose = created.json()["id"]
        assert sb.contact(jose).properties["firstname"] == CUT
        served = requests.get(
            f"{sb.url}/crm/v3/objects/contacts/{jose}?properties=firstname", headers=auth
        )
        assert served.status_code == 200
        assert b'"firstname":"Jos\\ud83d"' in served.content  # what the real API sends
        # what HubSpot's own validation keeps out of HTTP writes: into the fixture directly
        # (the ignore: an int in the str-only properties dict is the bad data under test)
        sb.portal.contacts["103"].properties.update(jobtitle=LONG, company=12345)  # type: ignore[call-overload]
        visit = sb.add_event(
            jose, "e_visited_page", {"hs_url": "https://acme.example/pricing", "hs_page_title": CUT}
        )

        first = runner.invoke(cli, ["sync"])
        assert first.exit_code == 0, first.output
        assert "sync hubspot ok: pulled 55," in first.output
        assert ", scored 55, written 55," in first.output
        assert ", dead-lettered 0," in first.output
        assert sb.app.internal_errors == []

        assert _rows(
            db,
            "SELECT id, first_name, last_name, job_title, company_name FROM contacts "
            "WHERE crm = 'hubspot' AND id IN (?, '103') ORDER BY id",
            jose,
        ) == [
            ("103", "Jordan", "Pike", "x" * 10_000, "12345"),
            (jose, "Jos\ufffd", CONTROLS, "VP Marketing", None),
        ]
        (props,) = _rows(db, "SELECT properties FROM contacts WHERE id = ?", jose)[0]
        assert json.loads(str(props))["firstname"] == "Jos\ufffd"
        assert _rows(db, "SELECT type, attributes FROM events WHERE source_id = ?", visit.id) == [
            ("page_view", '{"url":"https://acme.example/pricing","title":"Jos\ufffd"}')
        ]
        assert _rows(db, "SELECT count(*) FROM dead_letters") == [(0,)]
        rows = _rows(db, "SELECT contact_id, score FROM scores WHERE crm = 'hubspot'")
        scores = dict(cast(list[tuple[str, float]], rows))  # contact_id TEXT, score REAL
        assert len(scores) == 55
        for cid in (jose, "101", "103"):  # written back, the bad ones like the rest
            assert sb.contact(cid).properties["leadscore_score"] == str(round(scores[cid]))
        assert sb.contact(jose).properties["firstname"] == CUT  # names are never written

        again = runner.invoke(cli, ["sync"])
        assert again.exit_code == 0, again.output
        assert ", written 0," in again.output and ", dead-lettered 0," in again.output
        assert _rows(db, "SELECT count(*) FROM dead_letters") == [(0,)]


def test_hubspot_company_name_with_a_cut_emoji_is_stored_replaced_and_its_account_scored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "h.db"
    monkeypatch.setenv("LEADSCORE_ACCOUNTS", "true")
    with HubSpotSandbox.start(build_demo_portal()) as sb:
        runner, auth = _hubspot_cli(sb, db, monkeypatch)
        # renamed over HTTP as an import would: the JSON escape of half an emoji (industry is
        # a dropdown, as in HubSpot: the second text is the country, a text property)
        body = b'{"properties":{"name":"Initech \\ud83d","country":"Jos\\ud83d"}}'
        patched = requests.patch(f"{sb.url}/crm/v3/objects/companies/9002", data=body, headers=auth)
        assert patched.status_code == 200, patched.text
        assert sb.company("9002").properties["name"] == "Initech \ud83d"

        first = runner.invoke(cli, ["sync"])
        assert first.exit_code == 0, first.output
        assert ", dead-lettered 0," in first.output
        assert sb.app.internal_errors == []
        assert _rows(db, "SELECT name, country FROM crm_companies WHERE id = '9002'") == [
            ("Initech \ufffd", "Jos\ufffd")
        ]
        assert _rows(db, "SELECT name FROM account_scores WHERE account_id = 'company:9002'") == [
            ("Initech \ufffd",)
        ]
        assert "leadscore_account_score" in sb.company("9002").properties

        again = runner.invoke(cli, ["sync"])  # the stored name is not taken for a change
        assert again.exit_code == 0, again.output
        assert ", written 0," in again.output and ", dead-lettered 0," in again.output


def test_marketo_sync_stores_the_cut_emoji_replaced_and_every_lead_flows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "m.db"
    with MarketoSandbox.start(FIXTURES / "marketo_demo_instance.json") as sb:
        monkeypatch.setenv("LEADSCORE_MARKETO_BASE_URL", sb.url)
        monkeypatch.setenv("LEADSCORE_MARKETO_CLIENT_ID", sb.client_id)
        monkeypatch.setenv("LEADSCORE_MARKETO_CLIENT_SECRET", sb.client_secret)
        monkeypatch.setenv("LEADSCORE_STATE_PATH", str(db))
        sb.set_field(101, "firstName", CUT)
        sb.set_field(101, "lastName", CONTROLS)
        sb.lead(103).values["title"] = LONG  # past the field length: into the fixture
        sb.lead(103).values["company"] = 12345  # a number where text is due
        runner = CliRunner()
        first = runner.invoke(cli, ["--crm", "marketo", "sync"])
        assert first.exit_code == 0, first.output
        assert ", scored 54, written 54," in first.output
        assert ", dead-lettered 0," in first.output
        assert sb.app.internal_errors == []
        assert _rows(
            db,
            "SELECT id, first_name, last_name, job_title, company_name FROM contacts "
            "WHERE crm = 'marketo' AND id IN ('101', '103') ORDER BY id",
        ) == [
            ("101", "Jos\ufffd", CONTROLS, "VP Marketing", "Acme Analytics"),
            ("103", "Jordan", "Pike", "x" * 10_000, "12345"),
        ]
        assert _rows(db, "SELECT count(*) FROM dead_letters") == [(0,)]
        score = _rows(db, "SELECT score FROM scores WHERE crm = 'marketo' AND contact_id = '101'")
        assert len(score) == 1
        again = runner.invoke(cli, ["--crm", "marketo", "sync"])
        assert again.exit_code == 0, again.output
        assert ", written 0," in again.output and ", dead-lettered 0," in again.output


def test_offline_score_and_explain_take_a_file_with_a_cut_emoji(tmp_path: Path) -> None:
    contacts = tmp_path / "contacts.jsonl"
    lines = (FIXTURES / "offline" / "contacts.jsonl").read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    first.update(first_name=CUT, last_name=CONTROLS, company_name=12345)
    first["job_title"] = "VP Marketing " + "\ud83d"  # the title shows in the reasons
    lines[0] = json.dumps(first)  # ASCII: the surrogate as the escape "\ud83d"
    assert "\\ud83d" in lines[0]
    lines.append(json.dumps({"id": "5", "first_name": LONG, "job_title": 42}))
    contacts.write_text("\n".join(lines) + "\n", encoding="utf-8")
    now = "2026-11-01T12:00:00Z"
    r = CliRunner().invoke(cli, ["score", "--contacts", str(contacts), "--now", now, "--json"])
    assert r.exit_code == 0, r.output
    rows = {d["id"]: d for d in map(json.loads, r.stdout.splitlines())}
    assert sorted(rows) == ["1", "2", "3", "4", "5"]
    assert rows["1"]["grade"] == "A" and rows["5"]["grade"] == "D"
    assert rows["1"]["reasons"][0]["text"] == (
        "+30 decision-making title (title 'VP Marketing \ufffd' → vp by rule vice_president)"
    )
    # a real process writing to a real (strict UTF-8) pipe, as an admin runs it
    exe = str(Path(sys.executable).parent / "leadscore")
    for args in (["score"], ["explain", "1"]):
        done = subprocess.run(
            [exe, *args, "--contacts", str(contacts), "--now", now],
            capture_output=True,
            env={**os.environ, "PYTHONIOENCODING": "utf-8", "COLUMNS": "200"},
            timeout=120,
            check=False,
        )
        assert (done.returncode, done.stderr) == (0, b""), done.stderr[-500:]
    assert "title 'VP Marketing \ufffd'" in done.stdout.decode("utf-8")


# -- init-properties believes HubSpot's answer, not its status code --------------------------


def test_init_properties_behind_a_proxy_page_names_the_property_and_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with HubSpotSandbox.start(build_demo_portal()) as sb:
        monkeypatch.setenv("LEADSCORE_HUBSPOT_BASE_URL", sb.url)
        monkeypatch.setenv("LEADSCORE_HUBSPOT_TOKEN", sb.token)
        monkeypatch.setenv("LEADSCORE_STATE_PATH", str(tmp_path / "h.db"))
        runner = CliRunner()
        assert runner.invoke(cli, ["init-properties"]).exit_code == 0
        del sb.portal.properties["leadscore_fit_score"]  # a portal that lacks just this one
        sb.clear_log()
        sb.faults = Faults(proxy_page_rate=1.0, methods=("POST",))
        held = runner.invoke(cli, ["init-properties"])
        assert held.exit_code == 2
        assert held.output == (
            "error: cannot create property leadscore_fit_score: HubSpot answered HTTP 200 with "
            f"text/html ({len(PROXY_PAGE)} bytes), not the property, and it is not in the list "
            "read back (a proxy or firewall page?)\n"
        )
        assert [(r.method, r.path, r.status, r.fault) for r in sb.requests] == [
            ("GET", "/crm/v3/properties/contacts/groups", 200, None),
            ("GET", "/crm/v3/properties/contacts", 200, None),
            ("POST", "/crm/v3/properties/contacts", 200, "proxy_page"),
            ("GET", "/crm/v3/properties/contacts", 200, None),
        ]
        assert "leadscore_fit_score" not in sb.portal.properties
        sb.faults = Faults()
        fixed = runner.invoke(cli, ["init-properties"])
        assert fixed.exit_code == 0, fixed.output
        assert fixed.output == "created: leadscore_fit_score\n"
        assert sb.portal.properties["leadscore_fit_score"].group_name == "lead_scoring"


def test_init_properties_on_a_fresh_portal_behind_a_proxy_names_the_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with HubSpotSandbox.start(build_demo_portal()) as sb:
        monkeypatch.setenv("LEADSCORE_HUBSPOT_BASE_URL", sb.url)
        monkeypatch.setenv("LEADSCORE_HUBSPOT_TOKEN", sb.token)
        monkeypatch.setenv("LEADSCORE_STATE_PATH", str(tmp_path / "h.db"))
        sb.faults = Faults(proxy_page_rate=1.0, methods=("POST",))
        held = CliRunner().invoke(cli, ["init-properties"])
        assert held.exit_code == 2
        assert held.output.startswith(
            "error: cannot create property group lead_scoring: HubSpot answered HTTP 200 with "
            "text/html"
        )
        assert "lead_scoring" not in sb.portal.groups


def test_a_batch_update_answered_by_an_empty_200_is_read_back_not_counted_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same class of bug in the write path: a 2xx JSON object without HubSpot's results
    list (a proxy's `{}`) must not count every record of the batch as written."""
    with HubSpotSandbox.start(build_demo_portal()) as sb:
        monkeypatch.setenv("LEADSCORE_HUBSPOT_BASE_URL", sb.url)
        monkeypatch.setenv("LEADSCORE_HUBSPOT_TOKEN", sb.token)
        monkeypatch.setenv("LEADSCORE_STATE_PATH", str(tmp_path / "h.db"))
        runner = CliRunner()
        assert runner.invoke(cli, ["init-properties"]).exit_code == 0
        real = sb.app.route
        swallowed: list[str] = []

        def route(req: Request) -> Response:
            if req.path.endswith("/batch/update") and not swallowed:
                swallowed.append(req.path)  # the batch never reaches HubSpot
                return Response(200, {})
            return real(req)

        sb.app.route = route  # type: ignore[method-assign]
        sb.clear_log()
        done = runner.invoke(cli, ["sync"])
        assert done.exit_code == 0, done.output
        assert ", written 54," in done.output
        assert swallowed == ["/crm/v3/objects/contacts/batch/update"]
        writes = [r.path.rsplit("/", 2)[-2:] for r in sb.requests if "/batch/" in r.path]
        assert writes == [["batch", "update"], ["batch", "read"], ["batch", "update"]]
        missing = [c.id for c in sb.portal.live_contacts() if "leadscore_score" not in c.properties]
        assert missing == []


def test_scores_and_writes_in_flight_with_a_lone_surrogate_are_stored_replaced(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.db"
    store = StateStore.open(str(db))
    at = datetime(2026, 11, 1, tzinfo=UTC)
    decision = LifecycleDecision("lead", None, False, None)
    result = ScoreResult(
        "1", 30.0, 0.0, 30.0, "B", decision, False, "v1", "fp", at, None,
        (Reason("title", "fit", 30.0, f"title '{CUT}'", (), "fit"),),
    )  # fmt: skip
    try:
        assert store.save_scores("hubspot", [result]) == 1
        store.set_in_flight("hubspot", {"1": {"leadscore_reasons": f"title '{CUT}'"}})
        assert store.writes_in_flight("hubspot") == {
            "1": {"leadscore_reasons": "title 'Jos\ufffd'"}
        }
    finally:
        store.close()
    (reasons,) = _rows(db, "SELECT reasons FROM scores WHERE contact_id = '1'")[0]
    assert [r["text"] for r in json.loads(str(reasons))] == ["title 'Jos\ufffd'"]


def test_a_model_file_with_a_lone_surrogate_escape_loads_replaced(tmp_path: Path) -> None:
    config = Path(__file__).resolve().parents[1] / "config"
    text = (config / "model.yaml").read_text("utf-8")
    (tmp_path / "titles.yaml").write_bytes((config / "titles.yaml").read_bytes())
    assert 'description: "manager title"' in text
    path = tmp_path / "model.yaml"
    path.write_text(text.replace('"manager title"', '"manager title \\ud83d"'), "utf-8")
    model, problems = validate_model_file(path)
    assert problems == [] and model is not None
    manager = [r for r in model.model.fit.rules if r.name == "title_manager"]
    assert [r.description for r in manager] == ["manager title \ufffd"]


def test_marketo_bulk_export_with_a_cut_emoji_reads_every_lead() -> None:
    """The bulk export is a CSV file: the sandbox sends the surrogate as "?" (as a Java UTF-8
    encoder does) instead of failing the download, and the adapter reads every row."""
    data = build_instance(12, 2, created_within_days=5)
    now = datetime.now(UTC)
    since, until = now - timedelta(days=6), now + timedelta(minutes=1)
    with MarketoSandbox.start(data, export_seconds=0.01) as sb, StateStore.memory() as store:
        sb.set_field(3, "firstName", CUT)
        ad = MarketoAdapter(
            sb.url, SecretStr(sb.client_id), SecretStr(sb.client_secret),
            retry=RetryPolicy(attempts=2, base_seconds=0.001, max_seconds=0.01, seed=1),
            rate_window_s=0.05, export_poll_s=0.01,
        )  # fmt: skip
        try:
            pages = list(ad.backfill_export(since, until, store, window_field="createdAt"))
        finally:
            ad.close()
        assert sb.app.internal_errors == []
    leads = {c.id: c for p in pages for c in p.contacts}
    assert sorted(leads, key=int) == [str(i) for i in range(1, 13)]
    assert [p.bad for p in pages] == [[] for _ in pages]
    assert leads["3"].first_name == "Jos?"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\u202eevil\u202c Bob", "evil Bob"),  # right-to-left override ... pop
        ("Acme\u200f Inc\u200e", "Acme Inc"),  # RLM, LRM
        ("A\u2066B\u2067C\u2068D\u2069", "ABCD"),  # isolates
        ("del\x7f and C1\x85\x9b", "del and C1"),
        ("family \U0001f468\u200d\U0001f469", "family \U0001f468\u200d\U0001f469"),  # ZWJ stays
        ("tab\tand\nnewline", "tab\tand\nnewline"),
    ],
)
def test_display_text_drops_bidi_and_c1_controls(raw: str, shown: str) -> None:
    from connector.scoring.accounts import shown_text
    from connector.text import display_text

    assert display_text(raw) == shown
    assert shown_text(raw, 60) == shown.replace("\t", " ").replace("\n", " ")


def test_a_company_name_with_a_right_to_left_override_shows_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`accounts` and `explain --account` show a renamed company's name without the override
    that would reverse the rest of the line; the name is stored as the CRM holds it."""
    db = tmp_path / "h.db"
    monkeypatch.setenv("LEADSCORE_ACCOUNTS", "true")
    monkeypatch.setenv("COLUMNS", "160")
    with HubSpotSandbox.start(build_demo_portal()) as sb:
        runner, auth = _hubspot_cli(sb, db, monkeypatch)
        body = json.dumps({"properties": {"name": "Initech \u202eevil\u202c"}})
        patched = requests.patch(f"{sb.url}/crm/v3/objects/companies/9002", data=body, headers=auth)
        assert patched.status_code == 200, patched.text
        assert runner.invoke(cli, ["sync"]).exit_code == 0
        assert _rows(db, "SELECT name FROM crm_companies WHERE id = '9002'") == [
            ("Initech \u202eevil\u202c",)
        ]
        no_mqa = shipped_model_variant(
            tmp_path, "2026.12-no-mqa", lambda doc: doc["accounts"]["mqa"].update(threshold=1000)
        )
        rescore = ["rescore", "--dry-run", "--model", str(no_mqa), "--sample", "20"]
        for args in (["accounts", "--top", "20"], ["explain", "--account", "9002"], rescore):
            out = runner.invoke(cli, args)
            assert out.exit_code == 0, out.output
            assert "Initech evil" in out.output, args  # Initech shown (an MQA no more)
            assert "\u202e" not in out.output and "\u202c" not in out.output, args


def test_crm_text_that_looks_like_markup_is_shown_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A company named `Initech [/] [bold]x[/bold]` and a title `[red]Director[/red]` (rich's
    markup syntax) are shown literally by every command that names them: `[/]` once ended
    `explain --account`, `rescore --dry-run` and `simulate` in a markup error (found in
    review)."""
    db = tmp_path / "h.db"
    monkeypatch.setenv("LEADSCORE_ACCOUNTS", "true")
    monkeypatch.setenv("COLUMNS", "200")
    name = "Initech [/] [bold]x[/bold]"
    with HubSpotSandbox.start(build_demo_portal()) as sb:
        runner, auth = _hubspot_cli(sb, db, monkeypatch)
        for path, props in (
            ("companies/9002", {"name": name}),
            ("contacts/107", {"jobtitle": "[red]Director[/red] of Sales Operations"}),
        ):
            patched = requests.patch(
                f"{sb.url}/crm/v3/objects/{path}", data=json.dumps({"properties": props}),
                headers=auth,
            )  # fmt: skip
            assert patched.status_code == 200, patched.text
        assert runner.invoke(cli, ["sync"]).exit_code == 0
        no_mqa = shipped_model_variant(
            tmp_path, "2026.12-no-mqa", lambda doc: doc["accounts"]["mqa"].update(threshold=1000)
        )
        for args in (
            ["accounts"],
            ["explain", "--account", "9002"],
            ["rescore", "--dry-run", "--model", str(no_mqa), "--sample", "20"],
            ["simulate", "--model", str(no_mqa)],
        ):
            out = runner.invoke(cli, args)
            assert out.exit_code == 0, (args, out.output)
            assert "Initech [/] [bold]x" in out.output, args  # literal (a narrow column cuts it)
        explained = runner.invoke(cli, ["explain", "--account", "9002"])
        assert "[red]Direct" in explained.output  # the title, literal (its column cuts it)
