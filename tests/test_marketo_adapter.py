"""The Marketo adapter against the Marketo sandbox over real HTTP (`responses` only where a
canned reply is the point): envelopes, tokens, paging, writes, limits, bulk export, secrets."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import responses
from pydantic import SecretStr

from connector.crm.marketo import (
    MarketoAdapter,
    MarketoApiError,
    MarketoConfig,
    build_marketo_adapter,
)
from connector.errors import (
    AuthError,
    ConfigError,
    ConnectorError,
    QuotaExhaustedError,
    RetryableError,
)
from connector.retry import RetryPolicy
from connector.sandbox.marketo import (
    WEBINAR_ATTENDED,
    WEBINAR_REGISTERED,
    EnvelopeFaults,
    Faults,
    Instance,
    MarketoSandbox,
)
from connector.sandbox.marketo_demo import build_instance
from connector.settings import load_settings
from connector.state.store import StateStore
from connector.types import MQL, SQL, WriteBack, WriteOutcome

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "marketo_demo_instance.json"
DEMO: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
FAST = RetryPolicy(attempts=4, base_seconds=0.001, max_seconds=0.02, seed=1)
MAPPED = {1, 2, 7, 8, 9, 10, 11, WEBINAR_ATTENDED, WEBINAR_REGISTERED}
CANNED = "https://123-abc-456.mktorest.com"


@contextmanager
def adapter_for(sb: MarketoSandbox, **kw: Any) -> Iterator[MarketoAdapter]:
    kw.setdefault("retry", FAST)
    kw.setdefault("rate_window_s", 0.05)
    ad = MarketoAdapter(sb.url, SecretStr(sb.client_id), SecretStr(sb.client_secret), **kw)
    try:
        yield ad
    finally:
        ad.close()


@pytest.fixture
def sb() -> Iterator[MarketoSandbox]:
    with MarketoSandbox.start(DEMO) as sandbox:
        yield sandbox
        assert sandbox.internal_errors == []


def expected_events(inst: Instance) -> set[str]:
    """What a full activity pull must yield: every mapped activity of a lead that exists."""
    return {
        a.guid for a in inst.activities if a.type_id in MAPPED and inst.lead(a.lead_id) is not None
    }


def identity_calls(sb: MarketoSandbox) -> int:
    return len(sb.calls("/identity/oauth/token"))


# -- envelopes -----------------------------------------------------------------------------


def test_a_200_with_success_false_raises(sb: MarketoSandbox) -> None:
    with adapter_for(sb) as ad:
        sb.inject("610", path="/rest/v1/leads/describe.json")
        with pytest.raises(MarketoApiError) as err:
            ad.describe()
        assert err.value.code == "610" and ad.stats.calls["leads.describe"] == 1  # not retried
        assert sb.requests[-1].status == 200 and sb.requests[-1].success is False
        assert "leadGrade__c" in ad.describe()


@responses.activate
def test_canned_envelopes_are_checked_on_every_call() -> None:
    responses.post(
        f"{CANNED}/identity/oauth/token",
        json={"access_token": "tok", "token_type": "bearer", "expires_in": 3600},
    )
    responses.get(
        f"{CANNED}/rest/v1/leads/describe.json",
        json={"requestId": "1", "success": False, "errors": [{"code": 1003, "message": "bad"}]},
    )
    responses.get(
        f"{CANNED}/rest/v1/activities/pagingtoken.json",
        json={"requestId": "2", "success": True, "nextPageToken": "T1"},
    )
    responses.get(
        f"{CANNED}/rest/v1/activities/deletedleads.json",
        json={"requestId": "3", "success": True, "result": [], "nextPageToken": "T2"},
    )  # no moreResult
    responses.get(f"{CANNED}/rest/v1/activities/types.json", body="<html>maintenance</html>")
    ad = MarketoAdapter(CANNED, SecretStr("id"), SecretStr("secret"), retry=FAST)
    try:
        with pytest.raises(MarketoApiError, match="1003"):
            ad.describe()
        with pytest.raises(ConnectorError, match="without moreResult"):
            list(ad.pull_contacts(None, None, "del:T1"))
        with pytest.raises(RetryableError, match="unreadable"):
            ad.activity_types()
        assert ad.stats.calls["activities.types"] == FAST.attempts
    finally:
        ad.close()


# -- tokens --------------------------------------------------------------------------------


def test_token_expiry_mid_run_recovers_without_losing_a_page() -> None:
    with MarketoSandbox.start(DEMO, scan_limit=200) as sb, adapter_for(sb) as ad:
        got: list[str] = []
        for i, page in enumerate(ad.pull_events("activities", None, None, None)):
            got += [e.source_id for e in page.events]
            if i == 2:
                sb.instance.advance(3601)  # the token expires between two pages
        assert len(got) == len(set(got)) and set(got) == expected_events(sb.instance)
        assert ad.stats.calls["identity"] == 2 == identity_calls(sb)  # exactly one re-auth
        assert [r.error_codes for r in sb.requests if r.error_codes] == [("602",)]


def test_the_token_is_reused_to_its_end_and_renewed_before_it_expires(sb: MarketoSandbox) -> None:
    clock = [1000.0]
    with adapter_for(sb, clock=lambda: clock[0]) as ad:
        ad.describe(refresh=True)
        assert identity_calls(sb) == 1
        clock[0] += 3550
        sb.instance.advance(3550)  # within the refresh margin: ask again ...
        ad.describe(refresh=True)
        assert identity_calls(sb) == 2  # ... and get the same token with 50 s left
        ad.describe(refresh=True)
        ad.describe(refresh=True)
        assert identity_calls(sb) == 2  # used to its end, not re-asked on every call
        clock[0] += 60
        sb.instance.advance(60)
        ad.describe(refresh=True)
        assert identity_calls(sb) == 3  # renewed by us: the server never said 602
        assert not [r for r in sb.requests if r.error_codes]


def test_a_601_loop_is_bounded(sb: MarketoSandbox) -> None:
    sb.app.reject_tokens = True
    with adapter_for(sb) as ad:
        with pytest.raises(AuthError, match="freshly issued"):
            ad.describe()
        assert ad.stats.calls == {"identity": 2, "leads.describe": 2}
        assert len(sb.requests) == 4


def test_bad_client_credentials_stop_at_once(sb: MarketoSandbox) -> None:
    ad = MarketoAdapter(sb.url, SecretStr(sb.client_id), SecretStr("wrong-secret"), retry=FAST)
    try:
        with pytest.raises(AuthError) as err:
            ad.describe()
        assert "invalid_client" in str(err.value) and "wrong-secret" not in str(err.value)
        assert identity_calls(sb) == 1
    finally:
        ad.close()


# -- paging --------------------------------------------------------------------------------


def test_short_and_empty_pages_with_more_result_are_read_to_the_end() -> None:
    with MarketoSandbox.start(DEMO, scan_limit=60) as sb, adapter_for(sb) as ad:
        sb.app.empty_page_every = 2
        pages = list(ad.pull_events("activities", None, None, None))
        got = [e.source_id for p in pages for e in p.events]
        assert len(got) == len(set(got)) and set(got) == expected_events(sb.instance)
        assert sum(1 for p in pages[:-1] if not p.events) >= 20  # empty, yet not the end
        assert len({p.position for p in pages}) == len(pages)  # every page moves the cursor
        by_id = {e.source_id: e for p in pages for e in p.events}
        dana_webinar = next(
            e for e in by_id.values() if e.type == "webinar_attended" and e.contact_id == "101"
        )
        assert dana_webinar.attributes["watched_share"] == pytest.approx(58 / 60)
        jordan = [e for e in by_id.values() if e.contact_id == "103" and e.type == "page_view"]
        assert any(e.attributes["url"] == "/careers" for e in jordan)
        assert any("indeed.com" in e.attributes.get("referrer", "") for e in jordan)
        [riley] = [e for e in by_id.values() if e.contact_id == "102" and e.type == "form_submit"]
        assert riley.attributes["form"] == "Request a demo" and riley.source == "marketo"
        clicks = [e for e in by_id.values() if e.contact_id == "106" and e.type == "email_click"]
        assert len(clicks) == 2 and clicks[0].attributes["url"].endswith("/product/explain")
        assert {c.id for p in pages for c in p.contacts} == {
            str(r.id) for r in sb.instance.live_leads()
        }


def test_a_token_that_stops_advancing_fails_loudly(sb: MarketoSandbox) -> None:
    with adapter_for(sb) as ad:
        sb.app.stuck_paging = True
        with pytest.raises(ConnectorError, match="did not advance"):
            list(ad.pull_events("activities", None, None, None))
        assert len(sb.calls("/rest/v1/activities.json")) == ad.max_stalled_pages == 3
    sb.app.stuck_paging = False
    sb.app.empty_page_every = 1  # every page empty, tokens new, moreResult always true
    with (
        adapter_for(sb, max_empty_pages=5) as ad,
        pytest.raises(ConnectorError, match="empty pages in a row"),
    ):
        list(ad.pull_events("activities", None, None, None))


def test_pull_contacts_reads_changes_then_deleted_leads_and_resumes(sb: MarketoSandbox) -> None:
    with adapter_for(sb) as ad:
        pages = list(ad.pull_contacts(None, None, None))
        phases = [p.position.split(":")[0] for p in pages if p.position]
        assert list(dict.fromkeys(phases)) == ["lc", "del"]
        contacts = {c.id: c for p in pages for c in p.contacts}
        assert {"101", "102", "108"} <= set(contacts)
        assert [a for p in pages for a in p.archived] == ["111"]
        taylor = contacts["108"]
        assert (taylor.lifecycle_stage, taylor.lead_status) == (SQL, "SQL")
        assert contacts["105"].lifecycle_stage == "subscriber"
        assert contacts["101"].job_title == "VP Marketing" and contacts["101"].updated_at
        sb.set_field(107, "title", "Student")  # an old lead changes: seen by lead changes
        since = datetime.now(UTC) - timedelta(minutes=1)
        again = list(ad.pull_contacts(since, None, None))
        assert [c.id for p in again for c in p.contacts] == ["107"]
        resumed = list(ad.pull_contacts(None, None, pages[-1].position))
        assert [c for p in resumed for c in p.contacts] == []  # the deleted phase only


def test_status_values_map_onto_stages(sb: MarketoSandbox) -> None:
    sb.set_field(106, "leadStatus", "Bad Timing")
    with adapter_for(sb) as ad:
        alex = ad.get_contact("106")
        assert alex is not None and (alex.lifecycle_stage, alex.lead_status) == (
            "other",
            "BAD_TIMING",
        )
        assert ad.get_contact("111") is None and ad.get_contact("nope") is None
    cfg = MarketoConfig.with_overrides(status_stages={"Bad Timing": "lead"})
    with adapter_for(sb, config=cfg) as ad:
        alex = ad.get_contact("106")
        assert alex is not None and alex.lifecycle_stage == "lead"


def test_long_queries_go_as_a_form_post_with_method_get(sb: MarketoSandbox) -> None:
    with adapter_for(sb) as ad:
        ad.long_query = 10
        dana = ad.get_contact("101")
        assert dana is not None and dana.email == "dana.whitfield@acme-analytics.com"
        last = sb.calls("/rest/v1/leads.json")[-1]
        assert (last.method, last.effective_method) == ("POST", "GET")


# -- writes --------------------------------------------------------------------------------


def test_a_skipped_record_is_a_failed_outcome_while_the_rest_are_written(
    sb: MarketoSandbox,
) -> None:
    cfg = MarketoConfig.with_overrides(field_map={"fit_score": "leadFitScore__c"})
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    writes = [
        WriteBack(
            "101",
            {
                "score": "110",
                "grade": "A",
                "lifecycle_stage": MQL,
                "mql_reason": "threshold",
                "profile_mismatch": "false",
                "scored_at": now,
            },
        ),
        WriteBack("102", {"score": "100", "fit_score": "-10"}),
        WriteBack("999999", {"score": "1"}),
        WriteBack("103", {"lifecycle_stage": "evangelist"}),  # no status value: nothing to send
    ]
    with adapter_for(sb, config=cfg) as ad:
        out = ad.write(writes)
    assert out[0] == WriteOutcome("101", True)
    assert (out[1].ok, out[1].retryable, out[1].archived) == (False, False, False)
    assert out[1].error is not None and out[1].error.startswith("1006: ")
    assert "leadFitScore__c" in out[1].error
    assert out[2].archived and out[2].error is not None and out[2].error.startswith("1004")
    assert out[3] == WriteOutcome("103", True)
    dana = sb.lead(101).values
    assert (dana["leadScore"], dana["leadGrade__c"], dana["leadStatus"]) == (110, "A", "MQL")
    assert dana["profileMismatch__c"] is False and dana["mqlReason__c"] == "threshold"
    assert sb.lead(102).values.get("leadScore") is None  # skipped whole
    [sync] = sb.calls("/rest/v1/leads.json", "POST")
    assert sync.body["action"] == "updateOnly" and sync.body["lookupField"] == "id"
    assert len(sync.body["input"]) == 3


def test_writes_go_in_batches_of_300(sb: MarketoSandbox) -> None:
    writes = [WriteBack(str(100_000 + i), {"score": "1"}) for i in range(301)]
    with adapter_for(sb) as ad:
        out = ad.write(writes)
    assert len(out) == 301 and all(o.archived for o in out)
    assert [len(r.body["input"]) for r in sb.calls("/rest/v1/leads.json", "POST")] == [300, 1]


# -- limits and faults ---------------------------------------------------------------------


def test_607_stops_with_quota_exhausted_and_is_not_retried(sb: MarketoSandbox) -> None:
    with adapter_for(sb) as ad:
        ad.describe()
        sb.exhaust_daily_quota()
        with pytest.raises(QuotaExhaustedError) as err:
            ad.get_contact("101")
        assert err.value.resets_at and "midnight US Central" in str(err.value)
        assert ad.stats.calls["leads.get"] == 1
        with pytest.raises(QuotaExhaustedError):
            ad.write([WriteBack("101", {"score": "1"})])  # stops the run, not a dead letter


def test_606_is_retried_then_succeeds(sb: MarketoSandbox) -> None:
    with adapter_for(sb) as ad:
        sb.inject("606", times=2, path="/rest/v1/leads/describe.json")
        assert "leadGrade__c" in ad.describe()
        assert (ad.stats.rate_limited, ad.stats.retries) == (2, 2)
        assert [r.error_codes for r in sb.calls("describe.json")] == [("606",), ("606",), ()]


def test_the_real_rate_window_is_survived_and_paced() -> None:
    policy = RetryPolicy(attempts=10, base_seconds=0.01, max_seconds=0.1, seed=2)
    with MarketoSandbox.start(DEMO, rate_limit=4, rate_window=0.2) as sb:
        with adapter_for(sb, retry=policy, rate_window_s=0.2) as ad:  # limit unknown: 606s
            for _ in range(10):
                ad.describe(refresh=True)
            assert ad.stats.rate_limited > 0
        sb.reset_limits()
        with adapter_for(sb, rate_limit=4, rate_window_s=0.25) as paced:  # knows it: no 606
            for _ in range(10):
                paced.describe(refresh=True)
            assert paced.stats.rate_limited == 0


def test_transient_failures_are_retried(sb: MarketoSandbox) -> None:
    policy = RetryPolicy(attempts=3, base_seconds=0.001, max_seconds=0.01)
    with adapter_for(sb, retry=policy) as ad:
        for answer in ("502", "drop", "604", "608", "611", "615", "713"):
            sb.inject(answer, path="/rest/v1/leads/describe.json")
            assert "leadScore" in ad.describe(refresh=True)
        assert ad.stats.retries == 7
        sb.inject("713", times=3, path="/rest/v1/leads/describe.json")
        with pytest.raises(RetryableError):
            ad.describe(refresh=True)  # bounded: gives up after the policy's attempts


def test_a_full_pull_under_seeded_faults_loses_nothing() -> None:
    faults = Faults(seed=5, error_rate=0.1, drop_rate=0.15, error_statuses=(500, 502))
    with MarketoSandbox.start(
        DEMO, scan_limit=300, faults=faults, envelope_faults=EnvelopeFaults(seed=5, rate=0.1)
    ) as sb:
        policy = RetryPolicy(attempts=8, base_seconds=0.001, max_seconds=0.01, seed=3)
        with adapter_for(sb, retry=policy) as ad:
            got = [
                e.source_id
                for p in ad.pull_events("activities", None, None, None)
                for e in p.events
            ]
            assert set(got) == expected_events(sb.instance)
            assert ad.stats.retries > 0
        assert {r.fault for r in sb.requests} >= {"error", "drop"}


# -- fields --------------------------------------------------------------------------------


def test_check_properties_names_missing_fields_and_says_why(sb: MarketoSandbox) -> None:
    with adapter_for(sb) as ad:
        assert ad.ensure_properties() == []
        sb.instance.remove_field("leadGrade__c")
        with pytest.raises(ConfigError) as err:
            ad.check_properties()
        message = str(err.value)
        assert "leadGrade__c (for grade)" in message
        assert "no REST call to create lead fields" in message
        with pytest.raises(ConfigError):
            ad.ensure_properties()


def test_build_from_settings_merges_overrides() -> None:
    with pytest.raises(ConfigError, match="MARKETO_BASE_URL"):
        build_marketo_adapter(load_settings(crm="marketo", marketo_base_url=""), FAST)
    settings = load_settings(
        crm="marketo",
        marketo_base_url=f"{CANNED}/rest",
        marketo_client_id="id",
        marketo_client_secret="shh",
        marketo_field_map={"grade": "myGrade__c"},
        marketo_stage_values={"marketingqualifiedlead": "Marketing Qualified"},
    )
    from connector.app import build_adapter

    ad = build_adapter(settings)
    try:
        assert isinstance(ad, MarketoAdapter) and ad.name == "marketo"
        assert ad.base_url == CANNED
        assert ad.config.field_map["grade"] == "myGrade__c"
        assert ad.config.field_map["score"] == "leadScore"
        assert ad.config.stage_values[MQL] == "Marketing Qualified"
        assert "shh" not in repr(ad)
    finally:
        ad.close()


# -- secrets -------------------------------------------------------------------------------


def test_secrets_never_reach_logs_errors_or_reprs(
    sb: MarketoSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[str] = []
    with adapter_for(sb) as ad:
        sb.inject("606", path="/rest/v1/leads/describe.json")
        sb.inject("drop", path="/rest/v1/leads/describe.json")
        ad.describe()
        token = sb.app.current_token
        sb.app.reject_tokens = True
        try:
            ad.describe(refresh=True)
        except AuthError as exc:
            errors.append(str(exc))
        text = caplog.text + repr(ad) + " ".join(errors)
    assert token and token not in text
    assert sb.client_secret not in text and sb.client_id not in text
    assert [r for r in sb.requests if "client_secret" in r.query] == []  # not in URLs either


# -- bulk export ---------------------------------------------------------------------------


class Killed(Exception):
    """The process dies."""


class KillWhenQueued:
    """A job store that 'kills the process' right after the export was enqueued and saved."""

    def __init__(self, inner: StateStore) -> None:
        self.inner = inner

    def get_job(self, name: str) -> Mapping[str, Any] | None:
        return self.inner.get_job(name)

    def set_job(self, name: str, state: Mapping[str, Any]) -> None:
        self.inner.set_job(name, state)
        if state.get("status") == "Queued":
            raise Killed

    def delete_job(self, name: str) -> bool:
        return self.inner.delete_job(name)


def test_bulk_export_resumes_by_export_id_after_a_kill() -> None:
    data = build_instance(90, 0, created_within_days=80)
    now = datetime.now(UTC)
    since, until = now - timedelta(days=85), now + timedelta(minutes=1)
    with MarketoSandbox.start(data, export_seconds=0.05) as sb, StateStore.memory() as store:
        with adapter_for(sb, export_poll_s=0.01) as first, pytest.raises(Killed):
            list(
                first.backfill_export(since, until, KillWhenQueued(store), window_field="createdAt")
            )
        assert len(sb.calls("/export/create.json")) == 1
        [export_id] = list(sb.instance.exports)
        mark = len(sb.requests)
        with adapter_for(sb, export_poll_s=0.01, export_chunk_bytes=1024) as second:
            pages = list(
                second.backfill_export(
                    since, until, store, window_field="createdAt", rows_per_page=20
                )
            )
        ids = [c.id for p in pages for c in p.contacts]
        assert sorted(ids, key=int) == [str(i) for i in range(1, 91)]
        after = sb.requests[mark:]
        assert any(export_id in r.path and r.path.endswith("status.json") for r in after)
        assert not any(export_id in r.path and r.path.endswith("enqueue.json") for r in after)
        assert len(sb.calls("/export/create.json")) == 3 == len(sb.instance.exports)  # 3 windows
        assert any(r.status == 206 for r in sb.calls("file.json"))  # downloaded in ranges
        assert all(p.position and p.position.startswith("export:") for p in pages)
        assert [name for name in ("marketo:export",) if store.get_job(name)] == []


def test_bulk_export_rows_resume_and_failed_exports_are_recreated() -> None:
    data = build_instance(30, 2, created_within_days=10)
    now = datetime.now(UTC)
    since, until = now - timedelta(days=12), now + timedelta(minutes=1)
    with MarketoSandbox.start(data, export_seconds=0.01) as sb, StateStore.memory() as store:
        sb.app.fail_next_export = True
        with adapter_for(sb, export_poll_s=0.01) as ad:
            gen = ad.backfill_export(
                since, until, store, window_field="createdAt", rows_per_page=10
            )
            first, second = next(gen), next(gen)  # the caller committed the first page
            gen.close()  # ... and dies while holding the second
        assert len(sb.calls("/export/create.json")) == 2  # the failed one was created again
        with adapter_for(sb, export_poll_s=0.01) as ad:
            rest = list(
                ad.backfill_export(since, until, store, window_field="createdAt", rows_per_page=10)
            )
            events = [
                e for p in ad.backfill_activities_export(since, until, store) for e in p.events
            ]
        taken = [c.id for p in (first, second, *rest) for c in p.contacts]
        assert len(first.contacts) == 10 and sorted(set(taken), key=int) == [
            str(i) for i in range(1, 31)
        ]
        assert len(taken) == 40  # the uncommitted page comes again, nothing else does
        assert len(sb.calls("/export/create.json")) == 2 + 1  # rows resumed; + 1 activities
        start_ms = int(since.timestamp() * 1000)
        recent = [a for a in sb.instance.activities if a.type_id == 1 and a.date_ms >= start_ms]
        assert len(events) == len(recent) > 10 and {e.type for e in events} == {"page_view"}


def test_a_page_committed_before_a_crash_is_not_handed_out_again() -> None:
    """The caller commits a page (its position in the backfill job) and dies before asking
    for the next, so the export's own progress never heard of it: resumed with that
    position, no row comes twice."""
    data = build_instance(30, 0, created_within_days=10)
    now = datetime.now(UTC)
    since, until = now - timedelta(days=12), now + timedelta(minutes=1)
    with MarketoSandbox.start(data, export_seconds=0.01) as sb, StateStore.memory() as store:
        with adapter_for(sb, export_poll_s=0.01) as ad:
            gen = ad.backfill_export(
                since, until, store, window_field="createdAt", rows_per_page=10
            )
            first, second = next(gen), next(gen)
            gen.close()  # the second page was committed: the process died right after
        assert second.position is not None and second.position.endswith(":20")
        with adapter_for(sb, export_poll_s=0.01) as ad:
            rest = list(
                ad.backfill_export(
                    since,
                    until,
                    store,
                    window_field="createdAt",
                    rows_per_page=10,
                    position=second.position,
                )
            )
        taken = [c.id for p in (first, second, *rest) for c in p.contacts]
        assert sorted(taken, key=int) == [str(i) for i in range(1, 31)]  # each once


def test_export_windows_are_whole_seconds_that_neither_overlap_nor_leave_a_gap() -> None:
    """Marketo's startAt/endAt are inclusive whole seconds: [since, until) is cut into
    windows of at most 30 days whose ends are the last second before the next's start."""
    data = build_instance(5, 0, created_within_days=10)
    since = datetime(2026, 8, 1, 0, 0, 0, 250_000, tzinfo=UTC)
    until = datetime(2026, 9, 15, 12, 0, 0, tzinfo=UTC)
    with MarketoSandbox.start(data, export_seconds=0.01) as sb, StateStore.memory() as store:
        with adapter_for(sb, export_poll_s=0.01) as ad:
            list(ad.backfill_export(since, until, store, window_field="createdAt"))
        windows = [
            (j.filter["createdAt"]["startAt"], j.filter["createdAt"]["endAt"])
            for j in sorted(sb.instance.exports.values(), key=lambda j: j.created_ms)
        ]
    assert windows == [
        ("2026-08-01T00:00:01Z", "2026-08-31T00:00:00Z"),
        ("2026-08-31T00:00:01Z", "2026-09-15T11:59:59Z"),
    ]


# -- writes whose answer never came ----------------------------------------------------------

SCORES = [
    WriteBack("101", {"score": "77", "grade": "B", "profile_mismatch": "true"}),
    WriteBack("102", {"score": "12", "grade": "D", "mql_reason": ""}),
]


def sync_posts(sb: MarketoSandbox) -> list[Any]:
    return sb.calls("/rest/v1/leads.json", "POST")


def test_a_write_applied_but_unanswered_is_read_back_and_never_sent_twice(
    sb: MarketoSandbox,
) -> None:
    sb.faults = Faults(
        drop_after_apply_rate=1.0, methods=("POST",), path_prefixes=("/rest/v1/leads.json",)
    )
    with adapter_for(sb) as ad:
        out = ad.write(SCORES)
    assert out == [WriteOutcome("101", True), WriteOutcome("102", True)]
    assert len(sync_posts(sb)) == 1  # applied once; the lost answer was not a reason to resend
    [read] = [r for r in sb.calls("/rest/v1/leads.json", "GET") if "filterType" in r.query]
    assert read.query["filterValues"] == ["101,102"]
    assert set(read.query["fields"][0].split(",")) >= {"id", "leadScore", "leadGrade__c"}
    dana, riley = sb.lead(101).values, sb.lead(102).values
    assert (dana["leadScore"], dana["leadGrade__c"], dana["profileMismatch__c"]) == (77, "B", True)
    assert (riley["leadScore"], riley.get("mqlReason__c")) == (12, None)


def test_a_write_lost_before_it_arrived_is_read_back_then_sent_again_once(
    sb: MarketoSandbox,
) -> None:
    sb.inject("drop", path="/rest/v1/leads.json", method="POST")  # never applied
    with adapter_for(sb) as ad:
        out = ad.write(SCORES)
        assert ad.stats.retries == 1
    assert out == [WriteOutcome("101", True), WriteOutcome("102", True)]
    assert len(sync_posts(sb)) == 2  # the lost one and the one that arrived
    assert sb.lead(101).values["leadScore"] == 77 and sb.lead(102).values["leadScore"] == 12


def test_a_refused_write_is_sent_again_without_reading_back(sb: MarketoSandbox) -> None:
    sb.inject("606", path="/rest/v1/leads.json", method="POST")  # refused before any work
    with adapter_for(sb) as ad:
        assert ad.write(SCORES) == [WriteOutcome("101", True), WriteOutcome("102", True)]
    assert len(sync_posts(sb)) == 2
    assert [r for r in sb.calls("/rest/v1/leads.json", "GET") if "filterType" in r.query] == []


def test_confirm_written_compares_values_as_marketo_shows_them(sb: MarketoSandbox) -> None:
    with adapter_for(sb) as ad:
        assert ad.write(SCORES) == [WriteOutcome("101", True), WriteOutcome("102", True)]
        assert ad.confirm_written(SCORES) == {"101", "102"}
        changed = [WriteBack("101", {"score": "78"}), WriteBack("102", {"grade": "D"})]
        assert ad.confirm_written(changed) == {"102"}
        nothing_mapped = [WriteBack("103", {"lifecycle_stage": "evangelist"})]
        assert ad.confirm_written(nothing_mapped) == {"103"}
        assert ad.confirm_written([WriteBack("999999", {"score": "1"})]) == set()  # deleted
        assert ad.confirm_written([WriteBack("abc", {"score": "1"})]) == set()
