"""The worker's own passes with account scoring on (issue 21): a contact rescored by
`rescore_due` (its score decayed) or by `refresh_contacts` (a webhook hand-raiser) rolls its
account up, and the account's changed values are written as a sync writes them: the company
record, every member's account score, diff-only, each once; the next pass writes nothing."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

from connector.pipeline import SyncSummary
from connector.worker.passes import refresh_contacts
from connector.worker.scheduler import Worker

from .conftest import NOW, Harness
from .test_sync_accounts import (
    NORTHWIND,
    acc,
    company_writes,
    contact_writes,
    marketo_accounts,
)

__all__ = ["acc"]  # the fixture, used by name

DAY45 = NOW + timedelta(days=45)  # Rowan's (203) events of days -16..-8 leave the 60-day window


def _worker(h: Harness) -> Worker:
    return Worker(h.pipeline, sync_interval_s=3600, rescore_interval_s=3600)


def test_a_decay_rescore_rolls_the_account_up_and_writes_company_and_members_once(
    acc: Harness,
) -> None:
    assert acc.pipeline.sync().status == "ok"
    nw = acc.store.account_score("hubspot", f"company:{NORTHWIND}")
    assert nw is not None and nw.score == 210
    worker = _worker(acc)
    acc.sb.clear_log()
    acc.clock[0] = DAY45
    # only Rowan's score decays by now; four accounts' breadth windows have closed
    assert acc.store.due_contact_ids("hubspot", DAY45) == ["203"]
    summary = worker.run_rescore()
    assert summary is not None and summary.status == "ok", summary
    assert summary.kind == "rescore"
    assert summary.scored == 1
    assert summary.notes == ["accounts: 4 scored"]
    # Rowan 55 → 45; Northwind: roll-up 135 → 130, breadth (+30) and committee (+20) gone
    # (nobody engaged within 30 days), pricing together (+25) stays: 210 → 155, still an MQA
    assert acc.store.get_score("hubspot", "203").score == 45  # type: ignore[union-attr]
    nw = acc.store.account_score("hubspot", f"company:{NORTHWIND}")
    assert nw is not None and (nw.score, nw.grade, nw.mqa) == (155, "A", True)
    assert company_writes(acc) == {
        NORTHWIND: {
            "leadscore_account_score": "155",
            "leadscore_account_reasons": (
                "+130 engagement of 3 people (at most 50 each): Dana Whitfield +50 (of 70), "
                "Rowan Okafor +45, Robin Hale +35; +25 pricing or product pages by 2+ people "
                "within 7 days: Dana Whitfield, Rowan Okafor, Robin Hale; account grade A: "
                "target account, company size 51-5,000"
            ),
            "leadscore_mqa_reason": "score 155 ≥ 100, grade A, 3 people engaged",
        }
    }
    assert acc.sb.company(NORTHWIND).properties["leadscore_account_score"] == "155"
    stamp = "2026-12-16T12:00:00.000Z"
    written = contact_writes(acc)
    assert written == {
        "203": {
            "leadscore_score": "45",
            "leadscore_reasons": (
                "+25 watched webinar 'Pipeline forecasting basics' (half); +20 product page "
                "×2; grade B: company size 51-5,000, works in marketing, sales or revops"
            ),
            "leadscore_priority": "B3",
            "leadscore_account_score": "155",
            "leadscore_scored_at": stamp,
        },
        **{
            cid: {"leadscore_account_score": "155", "leadscore_scored_at": stamp}
            for cid in ("201", "202", "204")
        },
    }
    for cid in ("201", "202", "203", "204"):
        assert acc.sb.contact(cid).properties["leadscore_account_score"] == "155", cid
    ids = acc.written_ids()
    assert sorted(ids) == ["201", "202", "203", "204", NORTHWIND]  # each record once
    # 2 contact batches (the chunk, then the members no chunk held) and 1 company batch,
    # after one associations read for the chunk: nothing pulled
    assert [(r.method, r.path) for r in acc.sb.requests] == [
        ("POST", "/crm/v4/associations/contacts/companies/batch/read"),
        ("POST", "/crm/v3/objects/contacts/batch/update"),
        ("POST", "/crm/v3/objects/contacts/batch/update"),
        ("POST", "/crm/v3/objects/companies/batch/update"),
    ]
    assert acc.store.accounts_due("hubspot") == []  # written: nothing left for the next sync
    stage = acc.pipeline.accounts
    assert stage is not None
    assert sorted(stage.state.scored) == [
        "company:9001", "company:9002", "company:9004", "domain:initech.com"
    ]  # fmt: skip

    # the next pass: nothing due, nothing scored, no call; its state is its own
    acc.sb.clear_log()
    again = worker.run_rescore()
    assert again is not None and again.status == "ok"
    assert (again.scored, again.written, again.api_calls, again.notes) == (0, 0, 0, [])
    assert acc.sb.requests == []
    assert stage.state.accounts_scored == 0 and stage.state.scored == {}
    # and a sync after it writes nothing either
    acc.clock[0] = DAY45 + timedelta(minutes=15)
    after = acc.pipeline.sync()
    assert after.status == "ok" and after.written == 0
    assert company_writes(acc) == {} and acc.writes() == []


def test_a_webhook_refresh_writes_the_account_values_of_the_refreshed_contact(
    acc: Harness,
) -> None:
    assert acc.pipeline.sync().status == "ok"
    acc.sb.clear_log()
    acc.clock[0] = NOW + timedelta(minutes=15)
    url = "https://www.leadscore-demo.com/product/explain"
    acc.sb.add_event("202", "e_visited_page", {"hs_url": url}, NOW + timedelta(minutes=5))
    summary = refresh_contacts(acc.pipeline, ["202"])
    assert summary.status == "ok", summary.message
    assert summary.kind == "webhook"
    assert summary.notes == ["accounts: 1 scored"]
    assert acc.store.get_score("hubspot", "202").score == 45  # type: ignore[union-attr]
    assert company_writes(acc) == {
        NORTHWIND: {
            "leadscore_account_score": "220",
            "leadscore_account_reasons": (
                "+145 engagement of 3 people (at most 50 each): Dana Whitfield +50 (of 70), "
                "Rowan Okafor +50 (of 55), Robin Hale +45; +30 3 people engaged in 30 days: "
                "Dana Whitfield (VP Marketing), Rowan Okafor (Marketing Analyst), Robin Hale "
                "(Marketing Manager); +25 pricing or product pages by 2+ people within 7 days: "
                "Dana Whitfield, Robin Hale; account grade A: target account, company size "
                "51-5,000; … +1 more"
            ),
            "leadscore_mqa_reason": "score 220 ≥ 100, grade A, 3 people engaged",
        }
    }
    written = contact_writes(acc)
    assert sorted(written) == ["201", "202", "203", "204"]
    assert written["202"]["leadscore_score"] == "45"
    assert {c: w["leadscore_account_score"] for c, w in written.items()} == dict.fromkeys(
        ("201", "202", "203", "204"), "220"
    )
    assert sorted(acc.written_ids()) == ["201", "202", "203", "204", NORTHWIND]
    # the next refresh of the same contact writes nothing
    acc.sb.clear_log()
    again = refresh_contacts(acc.pipeline, ["202"])
    assert (again.status, again.written, again.notes) == ("ok", 0, [])
    assert company_writes(acc) == {} and acc.writes() == []


def test_a_refresh_inside_a_sync_gives_the_sync_its_account_state_back(acc: Harness) -> None:
    assert acc.pipeline.sync().status == "ok"
    stage = acc.pipeline.accounts
    assert stage is not None
    acc.sb.clear_log()
    acc.clock[0] = NOW + timedelta(minutes=15)
    url = "https://www.leadscore-demo.com/product/explain"
    acc.sb.add_event("202", "e_visited_page", {"hs_url": url}, NOW + timedelta(minutes=5))
    seen: list[tuple[bool, SyncSummary]] = []

    def checkpoint(where: str) -> None:  # the worker's hand-raisers, between two pages
        if where == "page" and not seen:
            outer = stage.state
            inner = refresh_contacts(acc.pipeline, ["202"])
            seen.append((stage.state is outer, inner))

    acc.pipeline.checkpoint = checkpoint
    summary = acc.pipeline.sync()
    assert summary.status == "ok", summary.message
    assert len(seen) == 1
    kept, inner = seen[0]
    assert kept  # the sync's pass state, not the refresh's
    assert inner.status == "ok" and inner.notes == ["accounts: 1 scored"]
    # the refresh wrote Northwind and its members; the sync around it found nothing to add
    assert summary.notes == [] and summary.written == 0
    assert company_writes(acc)[NORTHWIND]["leadscore_account_score"] == "220"
    assert sorted(acc.written_ids()) == ["201", "202", "203", "204", NORTHWIND]


def test_marketo_a_decay_rescore_writes_the_account_score_on_every_member_lead_once(
    tmp_path: Path,
) -> None:
    clock = [NOW]
    with marketo_accounts(tmp_path, clock) as (sb, pipeline):
        assert pipeline.sync().status == "ok"
        store = pipeline.store
        committee = ["153", "154", "155", "156"]  # Northwind Data (ACC-9012), an MQA at 174
        nw = store.account_score("marketo", "company:ACC-9012")
        assert nw is not None and (nw.score, nw.mqa) == (174, True)
        # Marcus Lee's (154) score decays first: his events leave the window by then
        first = store.get_score("marketo", "154")
        assert first is not None and first.next_change_at is not None
        clock[0] = first.next_change_at + timedelta(minutes=1)
        before = len(sb.calls("/rest/v1/leads.json", "POST"))
        worker = Worker(pipeline, sync_interval_s=3600, rescore_interval_s=3600)
        summary = worker.run_rescore()
        assert summary is not None and summary.status == "ok", summary
        assert summary.notes == ["accounts: 12 scored"]
        assert store.get_score("marketo", "154").score == 35  # type: ignore[union-attr]
        nw = store.account_score("marketo", "company:ACC-9012")
        assert nw is not None and (nw.score, nw.grade) == (119, "A")
        for lead_id in committee:  # every member's lead field, as a sync writes it
            assert sb.lead(int(lead_id)).values["accountScore__c"] == 119, lead_id
        posts = sb.calls("/rest/v1/leads.json", "POST")[before:]
        sent = [str(row["id"]) for p in posts for row in p.body["input"]]
        assert len(sent) == len(set(sent)) == summary.written  # each lead once
        assert {c: n for c, n in Counter(sent).items() if c in committee} == dict.fromkeys(
            committee, 1
        )
        assert sb.calls("/rest/v1/companies/sync.json") == []  # never a company write
        # the next pass: nothing due, nothing written
        again = worker.run_rescore()
        assert again is not None and (again.status, again.written) == ("ok", 0)
        assert len(sb.calls("/rest/v1/leads.json", "POST")) == before + len(posts)
