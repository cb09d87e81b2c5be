"""`leadscore backfill` with accounts on (issue 21): like a sync, it pulls the window's
companies, reads the contacts' associations, scores the accounts and writes the company
records and the members' account values, diff-only; the live `companies` cursor never moves,
and an interrupted backfill resumes at its companies stage."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connector.errors import StopRunError
from connector.worker.backfill import job_name, run_backfill

from .conftest import NOW, Harness
from .test_sync_accounts import (
    ACME,
    ACME_DUP,
    GLOBEX,
    NORTHWIND,
    STEALTH,
    company_writes,
    contact_writes,
)
from .test_sync_accounts import acc as acc  # the fixture

CRM = "hubspot"
SINCE = NOW - timedelta(days=400)
SEARCH = "/crm/v3/objects/companies/search"


def _accounts(h: Harness) -> dict[str, tuple[float, str, bool, int]]:
    found = h.store.account_scores_many(CRM, h.store.account_ids(CRM))
    return {a: (s.score, s.grade, s.mqa, s.members) for a, s in found.items()}


# what a sync of the same portal scores (test_sync_accounts)
EXPECTED = {
    f"company:{ACME}": (10.0, "A", False, 1),
    f"company:{NORTHWIND}": (210.0, "A", True, 4),
    f"company:{GLOBEX}": (0.0, "B", False, 1),
    f"company:{STEALTH}": (10.0, "D", False, 1),
    "domain:initech.com": (10.0, "B", False, 1),
}


def test_backfill_pulls_companies_scores_accounts_and_writes_them(acc: Harness) -> None:
    result = run_backfill(acc.pipeline, SINCE)
    summary = result.summary
    assert summary.status == "ok", summary.message
    assert (summary.dead_lettered, summary.bad_records) == (0, 0)
    # the window's companies were pulled (the merged-away one too: it names its survivor)
    searches = [r for r in acc.sb.requests if r.path.rstrip("/") == SEARCH]
    assert searches and all(
        f["propertyName"] != "hs_lastmodifieddate" or int(f["value"]) == SINCE.timestamp() * 1000
        for r in searches
        for g in r.body["filterGroups"]
        for f in g["filters"]
    )
    stored = acc.store.get_crm_companies(CRM, [ACME, NORTHWIND, GLOBEX, STEALTH, ACME_DUP])
    assert sorted(stored) == sorted([ACME, NORTHWIND, GLOBEX, STEALTH, ACME_DUP])
    assert stored[ACME_DUP].merged_into == ACME
    # the accounts a sync scores, each once
    assert _accounts(acc) == EXPECTED
    assert acc.store.accounts_due(CRM) == []
    links = acc.store.contact_accounts_many(CRM, ["201", "301", "302"])
    assert {c: link.account_id for c, link in links.items()} == {
        "201": f"company:{NORTHWIND}",
        "301": f"company:{ACME}",  # 9005 merged into Acme
        "302": f"company:{GLOBEX}",  # the primary of two
    }
    # the company records and the members' account values written
    companies = company_writes(acc)
    assert set(companies) == {ACME, NORTHWIND, GLOBEX, STEALTH}
    assert companies[NORTHWIND]["leadscore_account_score"] == "210"
    assert companies[NORTHWIND]["leadscore_mqa_reason"] == (
        "score 210 ≥ 100, grade A, 3 people engaged"
    )
    contacts = contact_writes(acc)
    for cid in ("201", "202", "203", "204"):
        assert contacts[cid]["leadscore_account_score"] == "210", cid
    assert contacts["201"]["leadscore_mql_reason"] == (
        "account MQA: company:9002 (score 70 ≥ 60 at an MQA)"
    )
    ids = acc.written_ids()
    assert len(ids) == len(set(ids))  # every contact written once
    # the live cursor never moved; the next sync has nothing to write
    assert acc.store.get_cursor(CRM, "companies") is None
    acc.sb.clear_log()
    acc.clock[0] = NOW + timedelta(minutes=15)
    after = acc.pipeline.sync()
    assert after.status == "ok", after.message
    assert (after.written, company_writes(acc), acc.writes()) == (0, {}, [])
    assert _accounts(acc) == EXPECTED


def test_an_interrupted_backfill_resumes_at_its_companies_stage(acc: Harness) -> None:
    """Stopped after the companies page was committed: the rerun does not pull it again and
    ends with the accounts of an uninterrupted backfill."""
    acc.adapter.page_size = 2  # three pages of companies

    def stop_after_a_company_page(where: str) -> None:
        job = acc.store.get_job(job_name(CRM)) or {}
        if where == "page" and job.get("stage") == "companies":
            raise StopRunError("stop requested")

    acc.pipeline.checkpoint = stop_after_a_company_page
    first = run_backfill(acc.pipeline, SINCE)
    assert first.summary.status == "stopped"
    job = acc.store.get_job(job_name(CRM))
    assert job is not None and (job["stage"], job["position"]) == ("companies", "9002")
    assert company_writes(acc) == {}
    acc.pipeline.checkpoint = None
    acc.sb.clear_log()
    second = run_backfill(acc.pipeline, SINCE)
    assert second.resumed and second.summary.status == "ok", second.summary.message
    searches = [r for r in acc.sb.requests if r.path.rstrip("/") == SEARCH]
    # resumed after 9002 (keyset): 9001 and 9002 are not pulled again
    assert all(
        int(f["value"]) >= 9002
        for r in searches
        for g in r.body["filterGroups"]
        for f in g["filters"]
        if f["propertyName"] == "hs_object_id"
    )
    assert _accounts(acc) == EXPECTED
    assert set(company_writes(acc)) == {ACME, NORTHWIND, GLOBEX, STEALTH}


@pytest.mark.parametrize("accounts", [False])
def test_backfill_without_accounts_has_no_companies_stage(acc: Harness, accounts: bool) -> None:
    acc.pipeline.accounts = None
    result = run_backfill(acc.pipeline, SINCE)
    assert result.summary.status == "ok"
    assert "companies" not in result.job.stage_pages
    assert [r for r in acc.sb.requests if r.path.rstrip("/") == SEARCH] == []
    assert acc.store.account_ids(CRM) == []
