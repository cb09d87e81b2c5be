"""The HubSpot sync against the sandbox over real HTTP: nothing lost, nothing written twice."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from connector.model.loader import LoadedModel, load_model
from connector.pipeline import SyncOptions
from connector.sandbox.demo_portal import build_demo_portal, build_portal

from .conftest import NOW, Harness

PERSONAS = {
    # id: (grade, score, stage after the sync, MQL reason)
    "101": ("A", "110", "marketingqualifiedlead", "threshold"),
    "102": ("D", "100", "marketingqualifiedlead", "hand-raiser: Request a demo"),
    "103": ("D", "-75", "lead", None),
    "104": ("D", "145", "lead", None),
    "105": ("D", "10", "subscriber", None),
    "106": ("C", "74", "lead", None),
    "107": ("A", "0", "lead", None),
    "108": ("A", "0", "salesqualifiedlead", None),
    "109": ("B", "55", "lead", None),
    "112": ("B", "60", "lead", None),
}


def crm(h: Harness, cid: str, prop: str) -> Any:
    return h.sb.contact(cid).properties.get(prop)


def test_demo_portal_personas_land_in_the_crm_and_an_idle_resync_writes_nothing(
    demo: Harness,
) -> None:
    first = demo.pipeline.sync()
    assert first.status == "ok", first.message
    assert first.exit_code == 0
    assert first.dead_lettered == 0
    for cid, (grade, score, stage, mql_reason) in PERSONAS.items():
        assert crm(demo, cid, "leadscore_grade") == grade, cid
        assert crm(demo, cid, "leadscore_score") == score, cid
        assert crm(demo, cid, "lifecyclestage") == stage, cid
        assert crm(demo, cid, "leadscore_mql_reason") == mql_reason, cid
        assert crm(demo, cid, "leadscore_model_version") == "2026.12-default"
    assert crm(demo, "101", "leadscore_reasons") == (
        "+50 watched webinar 'Scoring that sales trusts' (full); +25 pricing page twice in 7 "
        "days; +25 visits on 3 days within 3 days; +10 30+ pages viewed; grade A: "
        "decision-making title, company size 51-5,000"
    )
    assert crm(demo, "102", "leadscore_profile_mismatch") == "true"
    assert "grade D: competitor domain" in crm(demo, "104", "leadscore_reasons")
    archived = demo.sb.portal.resolve("111", include_archived=True)
    assert archived is not None and archived.archived
    assert "leadscore_score" not in archived.properties  # archived: never written
    # every live contact written exactly once, in batches of at most 100
    ids = demo.written_ids()
    assert len(ids) == len(set(ids)) == first.written
    stored = demo.store.get_score("hubspot", "101")
    assert stored is not None and stored.score == 110 and stored.grade == "A"

    demo.sb.clear_log()
    second = demo.pipeline.sync()
    assert second.status == "ok"
    assert second.written == 0
    assert second.unchanged == first.written
    assert [r.path for r in demo.sb.requests if r.method != "GET"] == [
        "/crm/v3/objects/contacts/search"
    ]


def test_a_new_page_view_makes_the_next_sync_write_exactly_that_contact(demo: Harness) -> None:
    demo.pipeline.sync()
    demo.sb.clear_log()
    demo.clock[0] = NOW + timedelta(minutes=15)
    demo.sb.add_event(
        "106",
        "e_visited_page",
        {"hs_url": "https://www.leadscore.example/product/reasons"},
        NOW + timedelta(minutes=5),
    )
    result = demo.pipeline.sync()
    assert result.new_events == 1
    writes = demo.writes()
    assert [w["id"] for w in writes] == ["106"]
    props = writes[0]["properties"]
    assert props["leadscore_score"] == "84"
    assert props["leadscore_reasons"].startswith("+50 product page ×5; ")
    assert set(props) == {"leadscore_score", "leadscore_reasons", "leadscore_scored_at"}


def test_25000_contacts_sync_completely_by_keyset_each_written_once(harness_factory: Any) -> None:
    portal = build_portal(25_000, events_per_contact=1, seed=3)
    for h in harness_factory(portal):
        result = h.pipeline.sync()
        assert result.status == "ok", result.message
        assert result.pulled == 25_000
        searches = [r for r in h.sb.requests if r.path.endswith("/search")]
        assert len(searches) == 126  # 125 full pages and one empty check
        for r in searches:
            assert isinstance(r.body, dict) and "after" not in r.body  # keyset, never `after`
        ids = h.written_ids()
        assert len(ids) == 25_000 and len(set(ids)) == 25_000
        batches = [r for r in h.sb.requests if r.path.endswith("/batch/update")]
        assert len(batches) == 250
        assert h.store.count_contacts("hubspot") == 25_000


def test_207_with_one_bad_record_dead_letters_it_and_writes_the_others(demo: Harness) -> None:
    # an admin removed option D from the grade property: HubSpot rejects D records alone
    grade = demo.sb.portal.properties["leadscore_grade"]
    grade.options = [o for o in grade.options if o[0] != "D"]
    result = demo.pipeline.sync()
    d_ids = {s.contact_id for s in demo.store.iter_scores("hubspot") if s.grade == "D"}
    assert d_ids and result.dead_lettered == len(d_ids)
    assert result.written == result.to_write - len(d_ids)
    assert result.exit_code == 0  # dead letters alone do not fail the run by default
    letters = demo.store.open_dead_letters("hubspot", "write")
    assert {dl.contact_id for dl in letters} == d_ids
    assert all(dl.reason is not None and "INVALID_OPTION" in dl.reason for dl in letters)
    assert all(crm(demo, cid, "leadscore_score") is None for cid in d_ids)
    assert crm(demo, "101", "leadscore_score") == "110"


def test_fail_on_dead_letters_makes_the_run_exit_non_zero(harness_factory: Any) -> None:
    for h in harness_factory(build_demo_portal(), options=SyncOptions(fail_on_dead_letters=True)):
        grade = h.sb.portal.properties["leadscore_grade"]
        grade.options = [o for o in grade.options if o[0] != "D"]
        result = h.pipeline.sync()
        assert result.status == "partial"
        assert result.exit_code == 1


def test_sales_sql_is_never_downgraded_and_a_lower_score_never_moves_a_stage_back(
    demo: Harness,
) -> None:
    demo.pipeline.sync()
    assert crm(demo, "101", "lifecyclestage") == "marketingqualifiedlead"
    demo.sb.clear_log()
    demo.clock[0] = NOW + timedelta(days=70)  # every event has left the 60-day window
    result = demo.pipeline.sync()
    assert result.status == "ok"
    by_id = {w["id"]: w["properties"] for w in demo.writes()}
    assert by_id["101"]["leadscore_score"] == "0"
    assert all("lifecyclestage" not in p for p in by_id.values())
    assert crm(demo, "101", "lifecyclestage") == "marketingqualifiedlead"
    assert crm(demo, "108", "lifecyclestage") == "salesqualifiedlead"


def test_merges_move_state_to_the_survivor_and_archived_contacts_stop_being_written(
    demo: Harness, tmp_path: Path
) -> None:
    demo.pipeline.sync()
    # the fixture's merge (109 absorbed 110) happened before the first sync
    assert demo.store.resolve_id("hubspot", "110") == "109"
    # a live merge between syncs: 112 absorbs 106
    events_106 = len(demo.store.events_for("hubspot", "106"))
    events_112 = len(demo.store.events_for("hubspot", "112"))
    demo.sb.merge("112", "106")
    demo.sb.clear_log()
    demo.clock[0] = NOW + timedelta(minutes=15)
    result = demo.pipeline.sync()
    assert result.merged == 1
    assert demo.store.resolve_id("hubspot", "106") == "112"
    assert len(demo.store.events_for("hubspot", "112")) == events_106 + events_112
    assert "106" not in demo.written_ids()
    assert not demo.store.is_writable("hubspot", "106")
    # an archived contact: the write gets OBJECT_NOT_FOUND, the contact is marked, never again
    demo.sb.archive("105")
    demo.pipeline.model = _model_version(tmp_path, "2026.12-test")  # every score changes
    demo.sb.clear_log()
    demo.clock[0] = NOW + timedelta(minutes=30)
    result = demo.pipeline.sync(rescore_all=True)
    assert result.archived == 1
    assert result.dead_lettered == 0
    assert not demo.store.is_writable("hubspot", "105")
    assert "105" in demo.written_ids()  # tried once, answered OBJECT_NOT_FOUND
    demo.pipeline.model = _model_version(tmp_path, "2026.12-test2")
    demo.sb.clear_log()
    again = demo.pipeline.sync(rescore_all=True)
    assert again.written > 0
    assert "105" not in demo.written_ids()


def _model_version(tmp_path: Path, version: str) -> LoadedModel:
    src = Path(load_model().path)
    (tmp_path / "titles.yaml").write_text((src.parent / "titles.yaml").read_text())
    text = src.read_text().replace('version: "2026.12-default"', f'version: "{version}"')
    (tmp_path / f"{version}.yaml").write_text(text)
    return load_model(tmp_path / f"{version}.yaml")


def test_daily_429_stops_the_run_keeps_the_cursor_and_the_next_run_finishes(
    harness_factory: Any,
) -> None:
    portal = build_portal(1_000, events_per_contact=1, seed=5)
    for h in harness_factory(portal):
        h.sb.reset_limits()
        h.sb.app.daily.limit = 4  # properties, events probe, two search pages: then quota gone
        first = h.pipeline.sync()
        assert first.status == "quota"
        assert first.exit_code == 4
        cursor = json.loads(h.store.get_cursor("hubspot", "contacts") or "{}")
        assert h.store.count_contacts("hubspot") == 400  # exactly the committed pages
        assert cursor["position"] == str(max(int(c.id) for c in h.store.iter_contacts("hubspot")))
        assert h.written_ids() == []
        # each later "day" allows 12 calls: runs stop mid-pull and mid-write, resume each time
        stopped_while_writing = False
        for _day in range(60):
            h.sb.reset_limits()
            h.sb.app.daily.limit = 12
            result = h.pipeline.sync()
            if result.status == "ok":
                break
            assert result.status == "quota"
            stopped_while_writing |= result.written > 0
        assert result.status == "ok"
        assert stopped_while_writing
        assert h.store.count_contacts("hubspot") == 1_000
        total = Counter(h.written_ids())
        assert set(total) == {c.id for c in h.store.iter_contacts("hubspot")}
        assert max(total.values()) == 1, [k for k, v in total.items() if v > 1][:5]
        assert h.store.pending_write_ids("hubspot") == []


def test_replayed_events_change_no_score_and_write_nothing(demo: Harness) -> None:
    demo.pipeline.sync()
    before = {
        c.id: demo.store.get_score("hubspot", c.id) for c in demo.store.iter_contacts("hubspot")
    }
    for stream in ("contacts", "events:events", "events:email"):
        demo.store.set_cursor("hubspot", stream, "{}")  # forget the cursors: re-read everything
    demo.sb.clear_log()
    result = demo.pipeline.sync()
    assert result.new_events == 0
    assert result.written == 0
    after = {
        c.id: demo.store.get_score("hubspot", c.id) for c in demo.store.iter_contacts("hubspot")
    }
    assert {k: (v.score, v.grade) for k, v in before.items() if v} == {
        k: (v.score, v.grade) for k, v in after.items() if v
    }


def test_company_fields_fill_blanks_only_when_enabled(harness_factory: Any) -> None:
    portal = build_demo_portal()
    for h in harness_factory(portal, options=SyncOptions(write_company_fields=True)):
        h.sb.set_property("112", "company", "")  # blank: enrichment may fill it
        h.sb.clear_log()
        h.pipeline.sync()
        by_id = {w["id"]: w["properties"] for w in h.writes()}
        robin = by_id["112"]
        assert (robin["company"], robin["industry"], robin["country"]) == (
            "Acme Analytics",
            "computer software",
            "US",
        )
        dana = by_id["101"]  # the portal has her company and country: never overwritten
        assert "company" not in dana and "country" not in dana
        assert dana["industry"] == "computer software"
        assert "company" not in by_id["102"] and "industry" not in by_id["102"]  # gmail
        assert h.sb.contact("112").properties["company"] == "Acme Analytics"
        h.sb.clear_log()
        assert h.pipeline.sync().written == 0  # filled once, not re-sent


def test_company_fields_are_not_written_by_default(demo: Harness) -> None:
    demo.pipeline.sync()
    assert all("company" not in w["properties"] for w in demo.writes())


def test_company_write_back_checks_its_properties_before_writing(harness_factory: Any) -> None:
    for h in harness_factory(build_demo_portal(), options=SyncOptions(write_company_fields=True)):
        del h.sb.portal.properties["industry"]
        h.adapter.extra_properties = ("company", "industry", "country")
        result = h.pipeline.sync()
        assert result.status == "error"
        assert result.exit_code == 2
        assert result.message == (
            "HubSpot portal lacks the properties company write-back needs: industry "
            "(create them, or set LEADSCORE_WRITE_COMPANY_FIELDS=false)"
        )
        assert h.writes() == []
