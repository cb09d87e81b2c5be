"""The demo portal (generator, committed fixture, personas), fixture loading and the CLI."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from connector.sandbox import hubspot_cli
from connector.sandbox.base import iso_ms, parse_time_ms
from connector.sandbox.demo_portal import (
    ANCHOR,
    FORM_NAMES,
    build_demo_portal,
    build_portal,
    dumps_fixture,
    form_id,
    main,
)
from connector.sandbox.hubspot import HubSpotSandbox, load_portal
from connector.text import industry_words

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "hubspot_demo_portal.json"
ANCHOR_DT = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
DEMO: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
SITE = "https://www.leadscore-demo.com"


def events_of(cid: str, event_type: str | None = None) -> list[dict[str, Any]]:
    return [
        e
        for e in DEMO["events"]
        if e["objectId"] == cid and (event_type is None or e["eventType"] == event_type)
    ]


def day_of(ts: str) -> int:
    """Day relative to the anchor's calendar day (-1 = the day before)."""
    return (datetime.fromisoformat(ts.replace("Z", "+00:00")).date() - date(2026, 11, 1)).days


def views(cid: str) -> list[tuple[int, str]]:
    return [
        (day_of(e["occurredAt"]), e["properties"]["hs_url"].removeprefix(SITE))
        for e in events_of(cid, "e_visited_page")
    ]


def forms(cid: str) -> list[tuple[int, str, str]]:
    return [
        (day_of(e["occurredAt"]), e["properties"]["hs_form_title"], e["properties"]["hs_form_id"])
        for e in events_of(cid, "e_submitted_form")
    ]


def props(cid: str) -> dict[str, str]:
    return next(c["properties"] for c in DEMO["contacts"] if c["id"] == cid)


def test_committed_fixture_is_the_generator_output(capsys: pytest.CaptureFixture[str]) -> None:
    expected = dumps_fixture(build_demo_portal(seed=7, extra_contacts=40))
    assert FIXTURE.read_text(encoding="utf-8") == expected
    assert main([]) == 0
    assert capsys.readouterr().out == expected
    assert build_demo_portal(seed=8) != build_demo_portal(seed=7)
    assert DEMO["anchor"] == ANCHOR == "2026-11-01T12:00:00Z" and DEMO["portal_id"] == 4242


def test_portal_size_forms_and_filler_contacts() -> None:
    ids = [c["id"] for c in DEMO["contacts"]]
    assert ids == [str(i) for i in range(101, 157)]  # 153..156: the Northwind Data committee
    total = len(DEMO["events"]) + len(DEMO["email_events"])
    assert 2_000 <= total <= 4_000
    assert [f["name"] for f in DEMO["forms"]] == list(FORM_NAMES)
    assert all(len(f["id"]) == 36 and f["id"] == form_id(f["name"]) for f in DEMO["forms"])
    domains = Counter(props(str(i))["email"].split("@")[1] for i in range(113, 153))
    allowed = {
        "acme-analytics.com",
        "initech.com",
        "globex.co.uk",
        "northwind-logistics.com",
        "umbrella-health.com",
        "hooli.io",
        "stark-industries.com",
        "wayne-enterprises.com",
        "tinyshop.io",
        "gmail.com",
        "yahoo.com",
        "hotmail.com",
    }
    assert set(domains) <= allowed and len(domains) >= 6
    assert {props(str(i))["lifecyclestage"] for i in range(113, 153)} == {"subscriber", "lead"}
    assert len({props(str(i))["email"] for i in range(101, 153)}) == 51  # 109/110 share one
    unsubscribed = [e for e in DEMO["email_events"] if e["type"] == "UNSUBSCRIBED"]
    assert len(unsubscribed) == 1
    assert unsubscribed[0]["recipient"] == props("113")["email"]
    persona_mails = {props(str(i))["email"] for i in range(101, 113)}
    assert {e["recipient"] for e in DEMO["email_events"]} & persona_mails == {
        "alex.moreno.mktg@gmail.com"
    }
    assert all(day_of(e["occurredAt"]) < 0 for e in DEMO["events"])
    assert DEMO["merges"] == [["109", "110"]] and DEMO["archived"] == ["111"]


def test_personas_are_exactly_as_specified() -> None:
    who = {
        c["id"]: (
            c["properties"]["firstname"],
            c["properties"]["lastname"],
            c["properties"]["email"],
            c["properties"].get("jobtitle"),
            c["properties"]["lifecyclestage"],
        )
        for c in DEMO["contacts"][:12]
    }
    assert who == {
        "101": ("Dana", "Whitfield", "dana.whitfield@acme-analytics.com", "VP Marketing", "lead"),
        "102": ("Riley", "Chen", "riley.chen1987@gmail.com", "Freelance designer", "lead"),
        "103": ("Jordan", "Pike", "jordan.pike@outlook.com", "Software Engineer", "lead"),
        "104": ("Morgan", "Blake", "morgan@rivalscore.io", "Product Marketing Manager", "lead"),
        "105": ("Priya", "Natarajan", "priya.n@stanford.edu", "Student", "subscriber"),
        "106": ("Alex", "Moreno", "alex.moreno.mktg@gmail.com", "Marketing Director", "lead"),
        "107": ("Casey", "Lindqvist", "casey@initech.com", "Director of Sales Operations", "lead"),
        "108": (
            "Taylor",
            "Brooks",
            "taylor.brooks@globex.co.uk",
            "Head of Revenue Operations",
            "salesqualifiedlead",
        ),
        "109": ("Sam", "Ortiz", "sam.ortiz@northwind-logistics.com", "Marketing Manager", "lead"),
        "110": ("Sam", "Ortiz", "sam.ortiz@northwind-logistics.com", None, "subscriber"),
        "111": ("Jamie", "Fox", "jamie.fox@tinyshop.io", "Owner", "lead"),
        "112": ("Robin", "Hale", "robin.hale@acme-analytics.com", "Marketing Manager", "lead"),
    }
    assert props("101")["country"] == "US" and props("107")["country"] == "CA"
    assert props("108")["hs_lead_status"] == "CONNECTED"

    dana = views("101")
    content = [(d, u) for d, u in dana if u.startswith(("/blog/", "/docs/"))]
    assert len(content) == 32 and {d for d, _ in content} == set(range(-12, 0))
    assert sorted(d for d, u in dana if u == "/pricing") == [-2, -1]
    assert len(dana) == 34 and forms("101") == []
    webinar = events_of("101", "pe4242_webinar_attended")
    assert [(day_of(e["occurredAt"]), e["properties"]) for e in webinar] == [
        (
            -5,
            {
                "webinar_name": "Scoring that sales trusts",
                "minutes_watched": "58",
                "webinar_minutes": "60",
            },
        )
    ]

    assert [u.split("/")[1] for _, u in views("102")] == ["blog", "blog"]
    assert forms("102") == [(-1, "Request a demo", form_id("Request a demo"))]
    assert {d for d, _ in views("102")} == {-1}

    careers = [
        e for e in events_of("103", "e_visited_page") if "/careers" in e["properties"]["hs_url"]
    ]
    assert len(careers) == 3
    assert {e["properties"]["hs_referrer"] for e in careers} == {
        "https://www.indeed.com/viewjob?jk=abc"
    }
    assert sorted(day_of(e["occurredAt"]) for e in careers) == [-4, -3, -2]
    assert len([u for _, u in views("103") if u.startswith("/blog/")]) == 2

    assert forms("104") == [(-2, "Contact Us", form_id("Contact Us"))]
    assert sorted(u for _, u in views("104")) == ["/features", "/features", "/pricing", "/pricing"]

    assert len(views("105")) == 5 and all(u.startswith("/blog/") for _, u in views("105"))
    assert [
        e["properties"]["minutes_watched"] + "/" + e["properties"]["webinar_minutes"]
        for e in events_of("105", "pe4242_webinar_attended")
    ] == ["20/60"]

    assert sorted(d for d, u in views("106") if u.startswith("/product/")) == [-6, -5, -4, -3]
    alex = Counter(
        e["type"] for e in DEMO["email_events"] if e["recipient"] == props("106")["email"]
    )
    assert alex == {"OPEN": 3, "CLICK": 2}

    casey = events_of("107")
    assert sorted(e["eventType"] for e in casey) == [
        "e_visited_page",
        "e_visited_page",
        "pe4242_webinar_attended",
    ]
    assert all(-100 <= day_of(e["occurredAt"]) <= -90 for e in casey)
    assert [u for _, u in views("107")] == ["/pricing", "/pricing"]
    assert events_of("107", "pe4242_webinar_attended")[0]["properties"]["minutes_watched"] == "60"

    assert len(views("108")) == 3 and all(u.startswith("/blog/") for _, u in views("108"))
    assert views("109") and views("110") and views("111")
    assert sorted(u.split("/")[1] for _, u in views("112")) == ["product"] * 6
    assert all(-10 <= d <= -2 for d, _ in views("112"))
    assert forms("112") == [
        (-2, "Download the scoring guide", form_id("Download the scoring guide"))
    ]


def test_load_shifts_every_timestamp_by_now_minus_anchor() -> None:
    later = ANCHOR_DT + timedelta(days=10, hours=3)
    shift = int(timedelta(days=10, hours=3).total_seconds() * 1000)
    at_anchor, shifted = load_portal(DEMO, now=ANCHOR_DT), load_portal(DEMO, now=later)
    first = DEMO["events"][0]
    assert at_anchor.events_by_contact[first["objectId"]] or first["objectId"] == "111"
    by_id = {e.id: e for e in shifted.events}
    assert by_id[first["id"]].occurred_ms == parse_time_ms(first["occurredAt"]) + shift
    mail = DEMO["email_events"][0]
    assert {e.id: e for e in shifted.email_events}[mail["id"]].created_ms == (
        parse_time_ms(mail["created"]) + shift
    )
    assert shifted.contacts["105"].created_ms == at_anchor.contacts["105"].created_ms + shift
    assert shifted.contacts["101"].properties["createdate"] == iso_ms(
        parse_time_ms(props("101")["createdate"]) + shift
    )
    # the portal clock starts at ``now``
    assert abs(shifted.now_ms() - int(later.timestamp() * 1000)) < 5_000
    # default now = the real clock: the newest event is within a few days of it
    recent = load_portal(DEMO)
    assert 0 < time.time() * 1000 - max(e.occurred_ms for e in recent.events) < 3 * 86_400_000


def test_loaded_demo_portal_rollups_merges_and_archive() -> None:
    portal = load_portal(FIXTURE, now=ANCHOR_DT)
    dana = portal.contacts["101"].properties
    assert dana["hs_analytics_num_page_views"] == "34"
    assert dana["hs_analytics_num_visits"] == "12"  # distinct days
    assert dana["hs_analytics_source"] == "ORGANIC_SEARCH"
    assert dana["hs_analytics_first_referrer"] == "https://www.google.com/"
    assert dana["num_conversion_events"] == "0"
    assert dana["lastmodifieddate"] == dana["hs_analytics_last_visit_timestamp"]
    riley = portal.contacts["102"].properties
    assert (
        riley["num_conversion_events"],
        riley["recent_conversion_event_name"],
        riley["first_conversion_event_name"],
    ) == ("1", "Request a demo", "Request a demo")
    alex = portal.contacts["106"].properties
    assert (alex["hs_email_open"], alex["hs_email_click"], alex["hs_email_optout"]) == (
        "3",
        "2",
        "false",
    )
    assert portal.contacts["113"].properties["hs_email_optout"] == "true"
    sam = portal.resolve("110")
    assert sam is not None and sam.id == "109"
    assert sam.properties["hs_merged_object_ids"] == "110"
    assert sam.properties["hs_analytics_num_page_views"] == str(
        len(views("109")) + len(views("110"))
    )
    assert "110" not in portal.events_by_contact
    assert portal.resolve("111") is None and portal.contacts["111"].archived
    assert [c.id for c in portal.live_contacts()][:10] == [
        "101",
        "102",
        "103",
        "104",
        "105",
        "106",
        "107",
        "108",
        "109",
        "112",
    ]


def test_build_portal_is_fast_and_unique_at_scale() -> None:
    started = time.monotonic()
    data = build_portal(25_000, events_per_contact=2, seed=5, email_events_per_contact=1)
    assert time.monotonic() - started < 3
    assert len(data["contacts"]) == 25_000 and len(data["events"]) == 50_000
    assert len(data["email_events"]) == 25_000
    assert len({c["properties"]["email"] for c in data["contacts"]}) == 25_000
    assert build_portal(500, 2, seed=5) == build_portal(500, 2, seed=5) != build_portal(500, 2)
    assert build_portal(3, 0, seed=1, first_id=500)["contacts"][0]["id"] == "500"


def test_cli_command_serves_the_demo_portal_until_interrupted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[HubSpotSandbox] = []
    real_start = HubSpotSandbox.start
    seen: dict[str, Any] = {}

    def spy_start(*args: Any, **kwargs: Any) -> HubSpotSandbox:
        started.append(real_start(*args, **kwargs))
        return started[-1]

    def fake_wait(stop: Any) -> None:  # instead of blocking until Ctrl-C
        seen["url"] = started[-1].url
        resp = requests.get(
            f"{seen['url']}/crm/v3/objects/contacts/101",
            headers={"Authorization": "Bearer demo-token"},
            timeout=5,
        )
        seen["status"] = resp.status_code
        seen["email"] = resp.json()["properties"]["email"]
        seen["limit"] = resp.headers["X-HubSpot-RateLimit-Max"]

    monkeypatch.setattr(hubspot_cli, "wait_for_interrupt", fake_wait)
    monkeypatch.setattr(HubSpotSandbox, "start", spy_start)
    result = CliRunner().invoke(hubspot_cli.sandbox_hubspot_cmd, ["--rate-limit", "50"])
    assert result.exit_code == 0, result.output
    assert (seen["status"], seen["email"], seen["limit"]) == (
        200,
        "dana.whitfield@acme-analytics.com",
        "50",
    )
    lines = result.output.splitlines()
    assert lines[0] == f"HubSpot sandbox listening on {seen['url']}"
    assert lines[1] == "  token:    demo-token"
    assert lines[2] == "  portal:   4242 (54 contacts, 13 companies)"
    assert lines[-1] == "Sandbox stopped."
    with pytest.raises(requests.ConnectionError):
        requests.get(seen["url"], timeout=2)
    assert CliRunner().invoke(hubspot_cli.sandbox_hubspot_cmd, ["--port", "70000"]).exit_code == 2


def test_cli_command_refuses_a_fixture_with_free_text_industry_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fixture whose company holds a value HubSpot's `industry` dropdown refuses: one line
    naming the file, the company and the property, exit 1 (before: it was served)."""
    monkeypatch.setattr(hubspot_cli, "wait_for_interrupt", lambda stop: None)  # no blocking
    bad = tmp_path / "portal.json"
    bad.write_text(
        json.dumps({"companies": [{"id": "7", "properties": {"name": "X", "industry": "retail"}}]}),
        encoding="utf-8",
    )
    out = CliRunner().invoke(hubspot_cli.sandbox_hubspot_cmd, ["--fixtures", str(bad)])
    assert out.exit_code == 1
    lines = out.output.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        f"Error: {bad}: fixture company 7: industry: retail was not one of the allowed options: "
        "[ACCOUNTING, AIRLINES_AVIATION, "
    )


def test_demo_companies_and_associations() -> None:
    companies = {c["id"]: c["properties"] for c in DEMO["companies"]}
    assert list(companies) == [str(i) for i in range(9001, 9014)]
    assert companies["9012"] == {
        "name": "Northwind Data",
        "numberofemployees": "400",
        "industry": "COMPUTER_SOFTWARE",  # HubSpot's dropdown stores its internal value
        "country": "US",
        "domain": "northwind-data.com",
        "annualrevenue": "60000000",
        "createdate": companies["9012"]["createdate"],
        "hs_lastmodifieddate": companies["9012"]["hs_lastmodifieddate"],
    }
    assert companies["9003"]["hs_additional_domains"] == "globex.com;globex-group.com"
    assert "domain" not in companies["9013"]  # a company a rep created without a domain
    # firmographics as in fixtures/firmographics.csv
    csv = (FIXTURE.parent / "firmographics.csv").read_text(encoding="utf-8").splitlines()
    rows = {line.split(",")[0]: line.split(",") for line in csv[1:]}
    for props in companies.values():
        if props.get("domain"):
            row = rows[props["domain"]]
            assert (
                props["name"],
                industry_words(props["industry"]),
                props["numberofemployees"],
            ) == (
                row[1],
                row[2],
                row[4],
            )
            assert props["country"] == row[8]
    links = [(a["contact"], a["company"], a["primary"]) for a in DEMO["associations"]]
    primary = {c: co for c, co, p in links if p}
    assert primary["101"] == primary["112"] == "9001"
    assert "102" not in primary and "106" not in primary  # free mail: no company
    assert ("108", "9008", False) in links and primary["108"] == "9003"  # two companies
    assert [c for c, co in primary.items() if co == "9010"] == ["104"]  # one-contact company
    assert [c for c, co in primary.items() if co == "9012"] == ["153", "154", "155", "156"]
    assert all(co != "9013" for _, co, _ in links)
    for cid, props in ((c["id"], c["properties"]) for c in DEMO["contacts"]):
        domain = props["email"].rsplit("@", 1)[1]
        owner = next((k for k, v in companies.items() if v.get("domain") == domain), None)
        assert primary.get(cid) == owner, cid


def test_northwind_data_committee_is_recent_and_not_hand_raising() -> None:
    titles = [props(str(i))["jobtitle"] for i in range(153, 157)]
    assert titles == [
        "VP Marketing",
        "Marketing Manager",
        "Data Analyst",
        "Revenue Operations Analyst",
    ]
    for cid in ("153", "154", "155", "156"):
        assert forms(cid) == []
        assert all(-17 <= day_of(e["occurredAt"]) <= -2 for e in events_of(cid))
    pricing_or_product = {
        (cid, day)
        for cid in ("153", "154", "155", "156")
        for day, url in views(cid)
        if url.startswith(("/pricing", "/product")) and day >= -5
    }
    # three of them on pricing/product pages within 5 days (Tom's product page is day -6)
    assert {cid for cid, _ in pricing_or_product} == {"153", "154", "155"}


def test_loaded_demo_portal_has_companies_roll_ups() -> None:
    portal = load_portal(DEMO, now=ANCHOR_DT)
    assert portal.companies["9012"].properties["num_associated_contacts"] == "4"
    assert portal.companies["9009"].properties["num_associated_contacts"] == str(
        sum(1 for c in portal.live_contacts() if c.properties["email"].endswith("@tinyshop.io"))
    )  # the archived Jamie is not counted
    c109, c108, c102 = portal.resolve("109"), portal.resolve("108"), portal.resolve("102")
    assert c109 is not None and c108 is not None and c102 is not None
    assert c109.properties["associatedcompanyid"] == "9004"
    assert c108.properties["associatedcompanyid"] == "9003"
    assert "associatedcompanyid" not in c102.properties
