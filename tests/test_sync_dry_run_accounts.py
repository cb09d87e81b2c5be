"""`sync --dry-run` with accounts on (issue 21) plans exactly the writes the real sync then
sends: the MQL an MQA makes (Dana at Northwind Data, 70 points, its lower bar), every
member's account values, the company records; nothing is sent by the dry run."""

from __future__ import annotations

from connector.account_stage import AccountStage
from connector.crm.hubspot.properties import COMPANY_PROPERTY_NAMES, PROPERTY_NAMES
from connector.pipeline import Pipeline, SyncOptions

from .conftest import Harness
from .test_sync_accounts import acc as acc  # the fixture
from .test_sync_accounts import company_writes, contact_writes


def test_sync_dry_run_plans_what_the_sync_writes(acc: Harness) -> None:
    p = acc.pipeline
    dry = Pipeline(p.store, p.adapter, p.model, enricher=p.enricher,
                   options=SyncOptions(dry_run=True), clock=lambda: acc.clock[0])  # fmt: skip
    dry.accounts = AccountStage(dry)
    planned = dry.sync()
    assert planned.status == "ok", planned.message
    assert company_writes(acc) == {} and acc.writes() == []  # the dry run sent nothing
    acc.sb.clear_log()
    real = p.sync()
    assert real.status == "ok", real.message
    assert (real.written, real.companies_written) == (planned.to_write, planned.companies_to_write)
    assert (planned.to_write, planned.companies_to_write) == (9, 4)
    assert ", written 9 (+4 companies), repaired 0, " in real.line()
    names = {**PROPERTY_NAMES, **COMPANY_PROPERTY_NAMES}
    sent = {cid: {k: v for k, v in props.items() if k != "leadscore_scored_at"}
            for cid, props in contact_writes(acc).items()}  # fmt: skip
    sent |= {f"company:{cid}": props for cid, props in company_writes(acc).items()}
    plan = {
        cid: {names.get(k, k): v for k, v in props.items() if k != "scored_at"}
        for cid, props in planned.changes
    }
    assert plan == sent
    assert plan["201"]["lifecyclestage"] == "marketingqualifiedlead"
    assert plan["201"]["leadscore_mql_reason"] == (
        "account MQA: company:9002 (score 70 ≥ 60 at an MQA)"
    )
