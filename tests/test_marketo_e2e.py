"""End to end: the pipeline, the default model and the enricher against the Marketo demo
instance over real HTTP. Same persona outcomes as HubSpot; an idle resync writes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from connector.app import open_app
from connector.crm.base import CRM_MQL_DATE, ContactPage, EventPage
from connector.crm.marketo import MarketoAdapter
from connector.enrich.enricher import build_enricher
from connector.model.loader import load_model
from connector.ops.report import build_report
from connector.pipeline import Pipeline, SyncSummary
from connector.retry import RetryPolicy
from connector.sandbox.marketo import (
    WEBINAR_ATTENDED,
    WEBINAR_REGISTERED,
    Faults,
    MarketoSandbox,
)
from connector.settings import Settings, load_settings
from connector.state.store import StateStore
from connector.types import MQL, SQL, Contact

ANCHOR = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)  # the demo fixture's anchor
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "marketo_demo_instance.json"
DEMO: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
CRM = "marketo"
MAPPED = {1, 2, 7, 8, 9, 10, 11, WEBINAR_ATTENDED, WEBINAR_REGISTERED}


def offline_settings(**kw: Any) -> Settings:
    return load_settings(pdl_api_key=None, apollo_api_key=None, **kw)


def sandbox_clock(sb: MarketoSandbox) -> Callable[[], datetime]:
    """The Marketo sandbox's own clock (pinned at the fixture's anchor by `start(now=...)`):
    distinct-calendar-day rules must not depend on the hour the suite runs at."""
    return lambda: datetime.fromtimestamp(sb.instance.now_ms() / 1000, tz=UTC)


@contextmanager
def pipeline_for(
    sb: MarketoSandbox,
    store: StateStore,
    clock: Callable[[], datetime] | None = None,
    **adapter_kw: Any,
) -> Iterator[Pipeline]:
    """A pipeline on the sandbox (its own clock unless `clock`); `adapter_kw` to the adapter."""
    adapter_kw.setdefault("export_poll_s", 0.01)  # the sandbox's exports take export_seconds
    adapter = MarketoAdapter(
        sb.url,
        SecretStr(sb.client_id),
        SecretStr(sb.client_secret),
        retry=RetryPolicy(attempts=4, base_seconds=0.001, max_seconds=0.02, seed=1),
        **adapter_kw,
    )
    enricher = build_enricher(offline_settings(), cache=store.company_cache)
    try:
        yield Pipeline(
            store, adapter, load_model(), enricher=enricher, clock=clock or sandbox_clock(sb)
        )
    finally:
        adapter.close()


def writes_logged(sb: MarketoSandbox) -> list[dict[str, Any]]:
    return [r.body for r in sb.calls("/rest/v1/leads.json", "POST") if r.effective_method == "POST"]


def assert_persona_outcomes(sb: MarketoSandbox, store: StateStore) -> None:
    def score(cid: str) -> Any:
        found = store.get_score(CRM, cid)
        assert found is not None, cid
        return found

    dana = score("101")
    assert (dana.grade, dana.mql, dana.mql_reason, dana.score) == ("A", True, "threshold", 110)
    lead = sb.lead(101).values
    assert (lead["leadStatus"], lead["leadScore"], lead["leadGrade__c"]) == ("MQL", 110, "A")
    assert lead["mqlReason__c"] == "threshold" and "webinar" in lead["leadScoreReasons__c"]
    riley = score("102")
    assert (riley.grade, riley.mql, riley.profile_mismatch) == ("D", True, True)
    assert riley.mql_reason == "hand-raiser: Request a demo"
    assert sb.lead(102).values["leadStatus"] == "MQL"
    assert sb.lead(102).values["profileMismatch__c"] is True
    jordan = score("103")
    assert jordan.score < 0 and jordan.grade == "D" and not jordan.mql
    morgan = score("104")
    assert morgan.grade == "D" and not morgan.mql
    assert sb.lead(104).values["leadStatus"] == "Open"  # competitor: never an MQL
    assert score("105").grade == "D"  # student
    assert score("107").score == 0  # stale: 90-100 days old engagement no longer counts
    assert sb.lead(108).values["leadStatus"] == "SQL"  # sales' stage is never touched
    taylor = store.get_contact(CRM, "108")
    assert taylor is not None and taylor.lifecycle_stage == SQL
    assert not store.is_writable(CRM, "111") and store.get_score(CRM, "111") is None


def test_first_sync_scores_the_personas_and_an_idle_resync_writes_nothing(tmp_path: Path) -> None:
    with MarketoSandbox.start(DEMO, now=ANCHOR) as sb:
        settings = offline_settings(
            crm="marketo",
            state_path=tmp_path / "state.db",
            marketo_base_url=sb.url,
            marketo_client_id=sb.client_id,
            marketo_client_secret=sb.client_secret,
        )
        with open_app(settings) as app:
            app.pipeline.clock = sandbox_clock(sb)
            first = app.pipeline.sync()
            assert first.status == "ok", first.message
            live = len(sb.instance.live_leads())
            assert (first.pulled, first.written, first.dead_lettered) == (live, live, 0)
            assert first.archived == 1  # Jamie, from deletedleads
            assert_persona_outcomes(sb, app.store)
            [batch] = writes_logged(sb)
            assert (batch["action"], batch["lookupField"], len(batch["input"])) == (
                "updateOnly",
                "id",
                live,
            )
            assert 111 not in {r["id"] for r in batch["input"]}
            assert app.store.get_contact(CRM, "101").lifecycle_stage == MQL  # type: ignore[union-attr]
            mark = len(sb.requests)
            second = app.pipeline.sync()
            assert second.status == "ok", second.message
            assert (second.written, second.to_write, second.dead_lettered) == (0, 0, 0)
            assert second.pulled > 0  # our own leadStatus writes came back as lead changes
            assert [
                r for r in sb.requests[mark:] if r.method == "POST" and r.effective_method == "POST"
            ] == []  # zero write calls
            assert "leads.sync" not in second.api_calls_by_kind
            cursor = json.loads(app.store.get_cursor(CRM, "events:activities") or "{}")
            assert cursor["position"] is None and cursor["high_water"]
        assert sb.internal_errors == []


def test_pulled_counts_each_lead_once_though_lead_changes_hand_it_out_on_several_pages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Marketo hands a lead out again on every lead-change page it changed in: the resync
    after the first write-back read lead 148 on two pages and said "pulled 55" for 54 leads
    (and a sync after a backfill, which re-reads a year of lead changes, "pulled 104")."""
    with (
        MarketoSandbox.start(DEMO, now=ANCHOR) as sb,
        StateStore.memory() as store,
        pipeline_for(sb, store) as pipeline,
    ):
        assert pipeline.sync().status == "ok"
        handed_out: list[str] = []
        pull = pipeline.adapter.pull_contacts

        def recording(*args: Any) -> Iterator[ContactPage]:
            for page in pull(*args):
                handed_out.extend(c.id for c in page.contacts)
                yield page

        monkeypatch.setattr(pipeline.adapter, "pull_contacts", recording)
        second = pipeline.sync()
        live = len(sb.instance.live_leads())
        assert live == 54 and len(set(handed_out)) == live
        assert len(handed_out) > live  # some lead came on more than one page
        assert second.pulled == live
        assert second.line().startswith(
            "sync marketo ok: pulled 54, new events 0, scored 54, written 0, repaired 0, "
            "unchanged 54, dead-lettered 0, API calls "
        )


def test_a_lead_an_activity_page_brings_again_is_not_pulled_twice() -> None:
    """Leads come on lead-change pages and, seen first by an activity, with the activity
    page: `pulled` counts the distinct leads of the pass over both."""
    with (
        MarketoSandbox.start(DEMO, now=ANCHOR) as sb,
        StateStore.memory() as store,
        pipeline_for(sb, store) as pipeline,
    ):
        summary = SyncSummary(CRM)
        pipeline.save_contact_page(ContactPage([Contact("101"), Contact("102")], "lc:1"), summary)
        pipeline.save_contact_page(ContactPage([Contact("101")], "lc:2"), summary)
        assert summary.pulled == 2
        page = EventPage([], "a:1", None, contacts=[Contact("102"), Contact("103")])
        pipeline.save_event_page(page, summary)
        assert summary.pulled == 3
        assert summary.line().startswith(f"sync {CRM} ok: pulled 3, new events 0, scored 0,")


def test_incremental_sync_sees_new_activities_and_edits_to_old_leads() -> None:
    with (
        MarketoSandbox.start(DEMO, now=ANCHOR) as sb,
        StateStore.memory() as store,
        pipeline_for(sb, store) as pipeline,
    ):
        assert pipeline.sync().status == "ok"
        assert pipeline.sync().written == 0
        sb.set_field(107, "title", "Student")  # Casey was created 400 days ago
        sb.add_activity(105, 2, "Contact Us", {"Referrer URL": "https://x/contact"})
        mark = len(writes_logged(sb))
        third = pipeline.sync()
        assert third.status == "ok", third.message
        written = {r["id"] for body in writes_logged(sb)[mark:] for r in body["input"]}
        assert written == {105, 107}
        assert sb.lead(107).values["leadGrade__c"] == "D"
        assert sb.lead(105).values["leadStatus"] == "MQL"
        assert sb.lead(105).values["mqlReason__c"] == "hand-raiser: Contact Us"
        assert pipeline.sync().written == 0


def test_a_daily_quota_stop_keeps_the_cursor_and_the_next_run_finishes() -> None:
    with (
        MarketoSandbox.start(DEMO, now=ANCHOR, daily_limit=17) as sb,
        StateStore.memory() as store,
        pipeline_for(sb, store) as pipeline,
    ):
        stopped = pipeline.sync()
        assert (stopped.status, stopped.exit_code) == ("quota", 4)
        assert "midnight US Central" in stopped.message
        kept = json.loads(store.get_cursor(CRM, "events:activities") or "{}")
        assert kept.get("position")  # committed pages are kept: the next run resumes there
        sb.reset_limits()  # the quota resets
        mark = len(sb.requests)
        finished = pipeline.sync()
        assert finished.status == "ok", finished.message
        resumed = [r for r in sb.requests[mark:] if r.path.endswith("/activities.json")]
        assert resumed[0].param("nextPageToken") == kept["position"]
        assert_persona_outcomes(sb, store)
        expected = {
            a.guid
            for a in sb.instance.activities
            if a.type_id in MAPPED and sb.instance.lead(a.lead_id) is not None
        }
        assert store.count_events(CRM) == len(expected)


def test_same_outcomes_as_hubspot_for_every_contact() -> None:
    hubspot = pytest.importorskip("connector.sandbox.hubspot")
    from connector.crm.hubspot import HubSpotAdapter
    from connector.sandbox.demo_portal import build_demo_portal

    outcomes: dict[str, dict[str, tuple[Any, ...]]] = {}
    with MarketoSandbox.start(DEMO, now=ANCHOR) as sb, StateStore.memory() as store:
        with pipeline_for(sb, store) as pipeline:
            assert pipeline.sync().status == "ok"
        outcomes[CRM] = {
            s.contact_id: (s.score, s.grade, s.mql, s.mql_reason, s.profile_mismatch)
            for s in store.iter_scores(CRM)
        }
    with (
        hubspot.HubSpotSandbox.start(build_demo_portal(), token="t", now=ANCHOR) as hs,
        StateStore.memory() as store,
    ):
        adapter = HubSpotAdapter(SecretStr("t"), hs.url)
        try:
            adapter.ensure_properties()
            enricher = build_enricher(offline_settings(), cache=store.company_cache)
            summary = Pipeline(
                store, adapter, load_model(), enricher=enricher, clock=hs.portal.now
            ).sync()
            assert summary.status == "ok", summary.message
        finally:
            adapter.close()
        outcomes["hubspot"] = {
            s.contact_id: (s.score, s.grade, s.mql, s.mql_reason, s.profile_mismatch)
            for s in store.iter_scores("hubspot")
        }
    assert outcomes[CRM] == outcomes["hubspot"]
    assert len(outcomes[CRM]) >= 50


def test_backfill_goes_through_bulk_export_and_never_moves_the_live_cursors(
    tmp_path: Path,
) -> None:
    from datetime import timedelta

    from connector.worker.backfill import run_backfill

    with (
        MarketoSandbox.start(DEMO, now=ANCHOR, export_seconds=0.01) as sb,
        StateStore.open(tmp_path / "s.db") as store,
        pipeline_for(sb, store) as pipeline,
    ):
        now = pipeline.clock()
        result = run_backfill(pipeline, now - timedelta(days=400), now)
        assert result.summary.status == "ok", result.summary.message
        assert result.job.stage == "done"
        created = [r for r in sb.requests if r.path.endswith("/export/create.json")]
        assert {r.path.split("/")[3] for r in created} == {"leads", "activities"}
        assert all(store.get_cursor(CRM, s) is None for s in ("contacts", "events:activities"))
        assert store.count_contacts(CRM) > 0
        dana = store.get_score(CRM, "101")
        assert dana is not None and dana.score == 110 and dana.grade == "A"
        live = len(sb.instance.live_leads())
        assert (result.summary.pulled, result.summary.written) == (live, live) == (54, 54)
        # the live cursors start a year back: the first sync reads every lead change since,
        # most leads on several pages (it said "pulled 104")
        after = pipeline.sync()
        assert after.line().startswith(
            "sync marketo ok: pulled 54, new events 0, scored 54, written 0, repaired 0, "
            "unchanged 54, dead-lettered 0, API calls "
        )


def test_writes_applied_but_unanswered_are_each_applied_once(tmp_path: Path) -> None:
    """Every leads.sync is applied and then its connection dropped: the adapter reads the
    leads back instead of resending, so each lead is written once and the run is clean."""
    faults = Faults(
        drop_after_apply_rate=1.0, methods=("POST",), path_prefixes=("/rest/v1/leads.json",)
    )
    with MarketoSandbox.start(DEMO, now=ANCHOR, faults=faults) as sb:
        store = StateStore.open(tmp_path / "state.db")
        with pipeline_for(sb, store) as pipeline:
            first = pipeline.sync()
            assert first.status == "ok", first.message
            live = len(sb.instance.live_leads())
            assert (first.written, first.dead_lettered) == (live, 0)
            sent = [rec["id"] for body in writes_logged(sb) for rec in body["input"]]
            assert len(sent) == len(set(sent)) == live  # each lead in exactly one write
            assert_persona_outcomes(sb, store)
            assert store.writes_in_flight(CRM) == {}
            second = pipeline.sync()
            assert (second.status, second.written, second.to_write) == ("ok", 0, 0)
        store.close()
        assert sb.internal_errors == []


def test_an_interrupted_runs_applied_write_is_confirmed_not_resent(tmp_path: Path) -> None:
    """A run died after sending a write and before recording it: the next run reads the lead
    back, finds the values there, records them as written and sends nothing."""
    with MarketoSandbox.start(DEMO, now=ANCHOR) as sb:
        store = StateStore.open(tmp_path / "state.db")
        with pipeline_for(sb, store) as pipeline:
            assert pipeline.sync().status == "ok"
            dana = store.get_written(CRM, "101")
            assert dana["score"] == "110"  # in Marketo since this first sync
            # the lost run: it sent Dana's values (they arrived) and died before recording
            # them; what it had recorded last was older
            with store.transaction():
                store.record_written(CRM, "101", {**dana, "score": "1"}, ANCHOR)
                store.set_write_pending(CRM, ["101"], True)
                store.set_in_flight(CRM, {"101": dana})
            mark = len(sb.requests)
            run = pipeline.sync()
            assert run.status == "ok", run.message
            assert store.writes_in_flight(CRM) == {}
            assert store.get_written(CRM, "101") == dana  # recorded as arrived
            later = [r for r in sb.requests[mark:] if r.path.endswith("/rest/v1/leads.json")]
            reads = [r for r in later if r.effective_method == "GET" and "101" in str(r.query)]
            assert reads  # it asked Marketo
            resent = [
                rec["id"]
                for r in later
                if r.effective_method == "POST" and isinstance(r.body, dict)
                for rec in r.body["input"]
            ]
            assert 101 not in resent
        store.close()


def test_hand_edited_or_cleared_score_fields_are_written_back_and_counted_repaired() -> None:
    with (
        MarketoSandbox.start(DEMO, now=ANCHOR) as sb,
        StateStore.memory() as store,
        pipeline_for(sb, store) as pipeline,
    ):
        assert pipeline.sync().status == "ok"
        assert pipeline.sync().written == 0
        sb.set_field(101, "leadScore", 999)  # a rep, a smart campaign, an import
        sb.set_field(102, "leadGrade__c", None)  # emptied
        mark = len(writes_logged(sb))
        third = pipeline.sync()
        assert third.status == "ok", third.message
        assert (third.written, third.repaired) == (2, 2)
        assert ", written 2, repaired 2, unchanged " in third.line()
        [body] = writes_logged(sb)[mark:]
        sent = {r["id"]: {k for k in r if k != "id"} for r in body["input"]}
        assert sent == {
            101: {"leadScore", "leadScoredAt__c"},
            102: {"leadGrade__c", "leadScoredAt__c"},
        }
        assert sb.lead(101).values["leadScore"] == 110
        assert sb.lead(102).values["leadGrade__c"] == "D"
        # our own writes come back as lead changes: read, compared, nothing drifted
        mark = len(writes_logged(sb))
        fourth = pipeline.sync()
        assert fourth.pulled >= 2
        assert (fourth.written, fourth.repaired) == (0, 0)
        assert writes_logged(sb)[mark:] == []


def test_a_lead_marketo_made_an_mql_counts_in_the_reports_funnel_not_as_sales_sourced() -> None:
    """Our model never made Casey (107) an MQL; Marketo did (sales, a smart campaign), and sales
    took her to SQL before our next sync. The lead-status change is her MQL date, so the report
    counts her as MQL and SQL; Jordan (103), taken straight to SQL, stays sales-sourced."""
    with (
        MarketoSandbox.start(DEMO, now=ANCHOR) as sb,
        StateStore.memory() as store,
        pipeline_for(sb, store) as pipeline,
    ):
        assert pipeline.sync().status == "ok"
        before = build_report(store, CRM, pipeline.clock()).total
        assert (before.mqls, before.sqls, before.sales_sourced) == (16, 0, 1)  # Taylor: SQL
        sb.instance.advance(60)
        sb.set_field(107, "leadStatus", "MQL", source="Smart campaign: MQL at 100")
        mql_ms = sb.lead(107).updated_ms
        sb.instance.advance(60)
        sb.set_field(107, "leadStatus", "SQL")
        sb.set_field(103, "leadStatus", "SQL")
        assert pipeline.sync().status == "ok"
        casey = store.get_contact(CRM, "107")
        assert casey is not None and casey.lifecycle_stage == SQL and casey.mql_at is None
        expected = datetime.fromtimestamp(mql_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert casey.properties[CRM_MQL_DATE] == expected
        jordan = store.get_contact(CRM, "103")
        assert jordan is not None and CRM_MQL_DATE not in jordan.properties
        after = build_report(store, CRM, pipeline.clock()).total
        assert (after.mqls, after.sqls, after.sales_sourced) == (17, 1, 2)
        # syncs an hour later start past the 10-minute lookback: a pull of Casey for a new
        # title no longer reads the status change, and her MQL date stays
        sb.instance.advance(3600)
        assert pipeline.sync().status == "ok"
        sb.instance.advance(60)
        sb.set_field(107, "title", "VP Sales Operations")
        assert pipeline.sync().status == "ok"
        casey = store.get_contact(CRM, "107")
        assert casey is not None and casey.job_title == "VP Sales Operations"
        assert casey.properties[CRM_MQL_DATE] == expected
        again = build_report(store, CRM, pipeline.clock()).total
        assert (again.mqls, again.sqls, again.sales_sourced) == (17, 1, 2)


def test_a_backfill_waiting_in_marketos_export_queue_records_its_heartbeat(
    tmp_path: Path,
) -> None:
    """A bulk export Marketo keeps queued or processing can take hours: the backfill's run
    records its heartbeat while it polls (at most once a minute), so that `leadscore status`
    on another host does not call it `probably interrupted` 10 minutes into the wait. Each
    poll here stands for 25 s of the pipeline's clock; at every poll the run's heartbeat is
    at most a minute and a poll old."""
    import time
    from datetime import timedelta

    from connector.state.runs import HEARTBEAT_EVERY
    from connector.worker.backfill import run_backfill

    poll = 0.013  # the exports' poll interval: told apart from the adapter's other sleeps
    clock = [ANCHOR]
    ages: list[timedelta] = []
    with (
        MarketoSandbox.start(DEMO, now=ANCHOR, export_seconds=0.15) as sb,
        StateStore.open(tmp_path / "s.db") as store,
    ):

        def sleep(seconds: float) -> None:
            time.sleep(seconds)
            if seconds != poll:
                return
            clock[0] += timedelta(seconds=25)
            (beat,) = store.db.execute(
                "SELECT heartbeat_at FROM runs WHERE status = 'running'"
            ).fetchone()
            ages.append(clock[0] - datetime.fromisoformat(beat))

        with pipeline_for(
            sb, store, clock=lambda: clock[0], export_poll_s=poll, sleep=sleep
        ) as pipeline:
            result = run_backfill(pipeline, ANCHOR - timedelta(days=400), ANCHOR)
        assert result.summary.status == "ok", result.summary.message
        # several exports (leads and activities, 30-day windows), each polled a while
        assert len(ages) >= 20, len(ages)
        assert max(ages) <= HEARTBEAT_EVERY + timedelta(seconds=25), max(ages)
        run = store.get_run(result.summary.run_id or 0)
        assert run is not None and run.heartbeat_at is not None
        assert run.heartbeat_at >= clock[0] - HEARTBEAT_EVERY - timedelta(seconds=25)
