"""Lead merges in Marketo (`POST /rest/v1/leads/{id}/merge.json`, or Person Actions > Merge
People in the UI): the path's lead wins, the losers are deleted and the winner keeps their
activity history, with a Merge Leads (32) activity logged on it.

The sandbox answers the call as Marketo does (before: 610), and the sync reads Merge Leads
with the other activity types (in the same call: no extra one) and records the merge as
HubSpot's: the loser `merged_into` the winner, its stored events moved to the winner, which
is scored with them at once (before: the loser was only seen deleted and the winner's score
missed its engagement until a backfill), the loser leaves its account, nothing is written to
it and a second sync writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from marketorestpython.client import MarketoClient

from connector.crm.marketo.activities import merged_ids
from connector.errors import InputError
from connector.sandbox.marketo import DELETE_LEAD, MERGE_LEADS, MarketoSandbox
from connector.state.store import StateStore

from .conftest import NOW
from .test_marketo_e2e import ANCHOR, CRM, DEMO, pipeline_for, writes_logged
from .test_sync_accounts import marketo_accounts

WINNER, LOSER = 103, 102  # Jordan (a job seeker, D) absorbs Riley (who requested a demo)
# the demo types the sync reads, in id order, then Merge Leads: one call reads all ten
TYPES_READ = "1,2,7,8,9,10,11,100001,100002,32"


@pytest.fixture
def sb() -> Iterator[MarketoSandbox]:
    with MarketoSandbox.start(DEMO, now=ANCHOR) as sandbox:
        yield sandbox
        assert sandbox.internal_errors == []


def _client(sb: MarketoSandbox) -> MarketoClient:
    mc = MarketoClient("123-ABC-456", sb.client_id, sb.client_secret)
    mc.host = sb.url  # the client builds https://{munchkin}.mktorest.com; point it here
    return mc


def _merge_activity(sb: MarketoSandbox) -> dict[str, Any]:
    [act] = [a for a in sb.instance.activities if a.type_id == MERGE_LEADS]
    return act.to_json()


# -- the sandbox -----------------------------------------------------------------------------
def test_the_merge_endpoint_moves_history_to_the_winner_and_deletes_the_losers(
    sb: MarketoSandbox,
) -> None:
    inst = sb.instance
    riley = [a.guid for a in inst.activities if a.lead_id == LOSER]
    jordan = [a.guid for a in inst.activities if a.lead_id == WINNER]
    assert len(riley) == 4 and len(jordan) == 6
    assert inst.leads[WINNER].values.get("phone") is None
    inst.leads[LOSER].values["phone"] = "+1 555 0102"  # empty on the winner: taken over
    updated = inst.leads[WINNER].updated_ms
    sb.instance.advance(60)

    assert _client(sb).merge_lead(WINNER, [LOSER]) is True  # marketorestpython, unmodified

    [call] = sb.calls(f"/rest/v1/leads/{WINNER}/merge.json")
    assert (call.method, call.query, call.success) == (
        "POST",
        {"leadIds": [str(LOSER)], "mergeInCRM": ["False"]},
        True,
    )
    assert inst.lead(LOSER) is None and inst.leads[LOSER].deleted_ms is not None
    moved = {a.guid for a in inst.activities if a.lead_id == WINNER}
    assert moved >= set(riley) | set(jordan)
    [deleted] = [a for a in inst.activities if a.lead_id == LOSER]  # all that stays the loser's
    assert deleted.type_id == DELETE_LEAD
    act = _merge_activity(sb)
    assert act["leadId"] == WINNER and act["primaryAttributeValueId"] == WINNER
    assert act["attributes"] == [
        {"name": "Merge IDs", "value": f"[{LOSER}]"},
        {"name": "Merge Source", "value": "Web service API"},
        {"name": "Merged in Sales", "value": False},
        {"name": "Master Updated", "value": True},
    ]
    winner = inst.leads[WINNER]
    assert winner.values["phone"] == "+1 555 0102"
    assert winner.updated_ms > updated and winner.updated_ms // 1000 == act_ms(act) // 1000
    # the type is listed with its attributes, and deletedleads reports the loser
    http = requests.Session()
    token = http.get(
        f"{sb.url}/identity/oauth/token",
        params={"grant_type": "client_credentials", "client_id": sb.client_id,
                "client_secret": sb.client_secret},
    ).json()["access_token"]  # fmt: skip
    http.headers["Authorization"] = f"Bearer {token}"
    types = http.get(f"{sb.url}/rest/v1/activities/types.json").json()["result"]
    [merge_type] = [t for t in types if t["id"] == MERGE_LEADS]
    assert merge_type["name"] == "Merge Leads"
    assert [a["name"] for a in merge_type["attributes"]] == [
        "Merge IDs", "Merge Source", "Merged in Sales", "Master Updated"
    ]  # fmt: skip


def act_ms(act: dict[str, Any]) -> int:
    from connector.sandbox.base import parse_time_ms

    return parse_time_ms(act["activityDate"])


def test_a_refused_merge_merges_nothing(sb: MarketoSandbox) -> None:
    inst = sb.instance
    http = requests.Session()
    token = http.get(
        f"{sb.url}/identity/oauth/token",
        params={"grant_type": "client_credentials", "client_id": sb.client_id,
                "client_secret": sb.client_secret},
    ).json()["access_token"]  # fmt: skip
    http.headers["Authorization"] = f"Bearer {token}"
    live, acts = len(inst.live_leads()), len(inst.activities)

    def merge(winner: int, **params: str) -> tuple[bool, str, str]:
        body = http.post(f"{sb.url}/rest/v1/leads/{winner}/merge.json", params=params).json()
        assert "result" not in body
        err = (body.get("errors") or [{"code": "", "message": ""}])[0]
        return body["success"], err["code"], err["message"]

    assert merge(101, leadIds="999") == (False, "1004", "Lead not found: 999")
    assert merge(999, leadIds="102") == (False, "1004", "Lead not found: 999")
    assert merge(101, leadIds="111") == (False, "1004", "Lead not found: 111")  # deleted
    assert merge(101, leadIds="101") == (False, "1003", "Cannot merge lead 101 into itself")
    assert merge(101) == (False, "1003", "leadId or leadIds is required")
    assert merge(101, leadIds="102,x") == (False, "1003", "leadIds must be integers")
    assert merge(101, leadIds="102,103,104,105") == (False, "1003", "leadIds exceeds 3 values")
    assert merge(101, leadIds="102,103", mergeInCRM="true") == (
        False,
        "1003",
        "mergeInCRM merges two leads at a time",
    )
    assert (len(inst.live_leads()), len(inst.activities)) == (live, acts)
    # `leadId` (one loser) and `leadIds` (several) are both Marketo's
    assert merge(101, leadId="102") == (True, "", "")
    assert merge(101, leadIds="103,104", mergeInCRM="false") == (True, "", "")
    assert len(inst.live_leads()) == live - 3
    assert {a.lead_id for a in inst.activities if a.type_id == MERGE_LEADS} == {101}


# -- the sync --------------------------------------------------------------------------------
def test_a_merge_moves_the_losers_events_to_the_winner_scored_without_a_backfill(
    sb: MarketoSandbox,
) -> None:
    with StateStore.memory() as store, pipeline_for(sb, store) as pipeline:
        assert pipeline.sync().status == "ok"
        assert pipeline.sync().written == 0
        jordan, riley = store.get_score(CRM, str(WINNER)), store.get_score(CRM, str(LOSER))
        assert jordan is not None and (jordan.score, jordan.grade, jordan.mql) == (-75, "D", False)
        assert riley is not None and (riley.score, riley.mql) == (100, True)
        riley_events = {e.source_id for e in store.events_for(CRM, str(LOSER))}
        jordan_events = {e.source_id for e in store.events_for(CRM, str(WINNER))}
        assert (len(riley_events), len(jordan_events)) == (3, 5)
        sb.instance.advance(60)
        sb.merge_leads(WINNER, LOSER)  # as a user merges them in the UI
        mark = len(sb.requests)

        summary = pipeline.sync()

        assert summary.status == "ok", summary.message
        assert (summary.merged, summary.archived, summary.written) == (1, 1, 1)
        assert store.merged_into(CRM, str(LOSER)) == str(WINNER)
        assert store.merged_into(CRM, str(WINNER)) is None
        assert store.events_for(CRM, str(LOSER)) == []
        moved = {e.source_id for e in store.events_for(CRM, str(WINNER))}
        assert moved == riley_events | jordan_events
        after = store.get_score(CRM, str(WINNER))
        assert after is not None
        assert (after.score, after.grade, after.mql, after.mql_reason) == (
            25,
            "D",
            True,
            "hand-raiser: Request a demo",
        )
        assert store.get_score(CRM, str(LOSER)) is None and not store.is_writable(CRM, "102")
        [batch] = writes_logged(sb)[-1:]
        assert [r["id"] for r in batch["input"]] == [WINNER]  # nothing written to the loser
        assert sb.lead(WINNER).values["leadScore"] == 25
        assert sb.lead(WINNER).values["leadStatus"] == "MQL"
        # Merge Leads came in the one activities call the sync makes anyway
        [listed] = [r for r in sb.requests[mark:] if r.path.endswith("/activities.json")]
        assert listed.query["activityTypeIds"] == [TYPES_READ]
        assert summary.api_calls_by_kind["activities.list"] == 1

        sb.instance.advance(60)
        mark = len(sb.requests)
        again = pipeline.sync()  # reads the merge again (its lookback): no news
        assert (again.status, again.merged, again.written) == ("ok", 0, 0)
        assert [r for r in sb.requests[mark:] if r.effective_method == "POST"] == []
        assert store.merged_into(CRM, str(LOSER)) == str(WINNER)
        assert {e.source_id for e in store.events_for(CRM, str(WINNER))} == moved
        kept = store.get_score(CRM, str(WINNER))  # scored again (our own status write came
        assert kept is not None and (kept.score, kept.mql) == (25, True)  # back): the same


def test_a_lead_merged_into_another_accounts_lead_leaves_its_account(tmp_path: Path) -> None:
    clock = [NOW]
    with marketo_accounts(tmp_path, clock) as (sb, pipeline):
        store = pipeline.store
        assert pipeline.sync().status == "ok"
        acme = store.account_score("marketo", "company:ACC-9001")
        hooli = store.account_score("marketo", "company:ACC-9006")
        assert acme is not None and hooli is not None
        assert (acme.members, hooli.members) == (6, 3)
        leaving = acme.engaged_contacts[0]
        # Hooli's least engaged member (a member counts 50 points at most): Skyler Garcia
        survivor = "144"
        assert [m.contact_id for m in store.account_members("marketo", "company:ACC-9006")] == [
            "121", "124", survivor
        ]  # fmt: skip
        scores = {c: store.get_score("marketo", c) for c in (leaving, survivor)}
        assert {c: s.score for c, s in scores.items() if s is not None} == {
            leaving: 129, survivor: 4
        }  # fmt: skip
        sb.instance.advance(14 * 60)
        sb.merge_leads(int(survivor), int(leaving))
        clock[0] = NOW + timedelta(minutes=15)
        summary = pipeline.sync()
        assert (summary.status, summary.merged) == ("ok", 1)
        assert store.merged_into("marketo", leaving) == survivor
        after = store.account_score("marketo", "company:ACC-9001")
        assert after is not None
        assert after.members == 5 and leaving not in after.engaged_contacts
        assert after.score < acme.score
        hooli_after = store.account_score("marketo", "company:ACC-9006")
        assert hooli_after is not None and hooli_after.members == 3
        assert hooli_after.score > hooli.score  # its member has the loser's engagement now
        merged = store.get_score("marketo", survivor)
        assert merged is not None and (merged.score, merged.mql) == (133, True)
        assert store.accounts_due("marketo") == []
        written = {
            m.contact_id: sb.lead(int(m.contact_id)).values.get("accountScore__c")
            for m in store.account_members("marketo", "company:ACC-9001")
        }
        assert set(written.values()) == {round(after.score)}, written
        clock[0] = NOW + timedelta(minutes=20)
        again = pipeline.sync()
        assert (again.status, again.merged, again.accounts_scored, again.written) == (
            "ok",
            0,
            0,
            0,
        )


def test_a_merge_activity_without_lead_ids_is_dead_lettered_and_merges_nothing(
    sb: MarketoSandbox,
) -> None:
    """Marketo's Merge IDs format is not documented by Adobe: one we cannot read is a dead
    letter naming the field and the activity, the loser stays as it was (seen deleted, if
    Marketo reports it so), nothing is moved or lost."""
    with StateStore.memory() as store, pipeline_for(sb, store) as pipeline:
        assert pipeline.sync().status == "ok"
        before = {e.source_id for e in store.events_for(CRM, str(LOSER))}
        sb.instance.advance(60)
        act = sb.add_activity(WINNER, MERGE_LEADS, "Jordan Pike", {"Merge IDs": "n/a"})
        summary = pipeline.sync()
        assert (summary.status, summary.merged, summary.bad_records) == ("ok", 0, 1)
        [letter] = store.open_dead_letters(CRM)
        assert letter.contact_id == f"event:{act.guid}"
        assert letter.reason == f"activity: {act.guid}: Merge IDs: not a list of lead ids ('n/a')"
        assert store.merged_into(CRM, str(LOSER)) is None
        assert {e.source_id for e in store.events_for(CRM, str(LOSER))} == before


@pytest.mark.parametrize(
    ("value", "ids"),
    [("[102]", ["102"]), ("[102,104]", ["102", "104"]), ("102, 104", ["102", "104"]),
     (102, ["102"]), ([102, 104], ["102", "104"]), ("[103,102]", ["102"])],
)  # fmt: skip
def test_merge_ids_are_read_in_each_shape_seen(value: Any, ids: list[str]) -> None:
    assert merged_ids(value, "103") == ids


@pytest.mark.parametrize("value", ["", "[]", "abc", "[102,x]", None, True, "1.5"])
def test_merge_ids_that_are_not_lead_ids_are_refused(value: Any) -> None:
    with pytest.raises(InputError, match="Merge IDs: not a list of lead ids"):
        merged_ids(value, "103")


def test_an_instance_without_merge_leads_is_read_as_before(
    sb: MarketoSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    """The type is found by name in types.json: where it is missing the sync reads what it
    read before (merged-away leads seen as deleted only), with a warning saying so."""
    del sb.instance.activity_types[MERGE_LEADS]
    with StateStore.memory() as store, pipeline_for(sb, store) as pipeline:
        assert pipeline.sync().status == "ok"
    read = {tuple(r.query["activityTypeIds"]) for r in sb.calls("/rest/v1/activities.json")}
    assert read == {("1,2,7,8,9,10,11,100001,100002",)}
    assert "Marketo instance has no 'Merge Leads' activity type" in caplog.text
