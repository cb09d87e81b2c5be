"""Company (account) writes get the contacts' guarantee (issue 21): recorded in flight before
they are sent; one whose answer never came (timeout, dropped connection, a killed process) is
read back from HubSpot with a batch read of companies before anything is sent again; those
showing our values count as written, the rest are sent again; nothing is written twice.
Against the HubSpot sandbox and its fault injection; the exact requests it saw."""

from __future__ import annotations

from typing import Any

from connector.account_stage import COMPANY_WRITE
from connector.sandbox.faults import Faults
from connector.types import WriteBack

from .conftest import Harness
from .test_sync_accounts import ACME, GLOBEX, NORTHWIND, STEALTH
from .test_sync_accounts import acc as acc  # the fixture

CRM = "hubspot"
UPDATE = "/crm/v3/objects/companies/batch/update"
READ = "/crm/v3/objects/companies/batch/read"
LIVE = sorted((ACME, NORTHWIND, GLOBEX, STEALTH))


def company_calls(h: Harness) -> list[tuple[str, str | None, int | None, list[str]]]:
    """Every companies batch update and read the sandbox saw: (what, fault, status, ids)."""
    out: list[tuple[str, str | None, int | None, list[str]]] = []
    for r in h.sb.requests:
        path = r.path.rstrip("/")
        if path in (UPDATE, READ) and r.method == "POST":
            ids = sorted(str(i["id"]) for i in r.body["inputs"])
            out.append(("update" if path == UPDATE else "read", r.fault, r.status, ids))
    return out


def updates(h: Harness) -> dict[str, list[dict[str, Any]]]:
    """Each company's properties in every update request the sandbox saw (applied or not)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in h.sb.requests:
        if r.path.rstrip("/") == UPDATE:
            for item in r.body["inputs"]:
                out.setdefault(str(item["id"]), []).append(item["properties"])
    return out


def test_a_company_batch_applied_but_unanswered_is_read_back_not_sent_again(
    acc: Harness,
) -> None:
    """HubSpot applies the batch and the connection drops: the adapter reads the four
    companies back before any second attempt, finds our values and sends nothing again."""
    acc.sb.faults = Faults(drop_after_apply_rate=1.0, methods=("POST",), path_prefixes=(UPDATE,))
    first = acc.pipeline.sync()
    assert first.status == "ok", first.message
    calls = company_calls(acc)
    writes = [c for c in calls if c[0] == "update"]
    assert writes == [("update", "drop_after_apply", None, LIVE)]  # sent once
    assert calls[calls.index(writes[0]) + 1 :] == [("read", None, 200, LIVE)]  # read back
    assert first.dead_lettered == 0
    assert acc.store.writes_in_flight(CRM, of=COMPANY_WRITE) == {}
    assert acc.store.accounts_due(CRM) == []
    sent = {cid: props[0] for cid, props in updates(acc).items()}
    written = acc.store.get_account_written_many(CRM, LIVE)
    for cid in LIVE:  # recorded as written: what was sent, which HubSpot shows
        assert written[cid] == {k.removeprefix("leadscore_"): v for k, v in sent[cid].items()}
        shown = acc.sb.company(cid).properties
        assert all(shown[k] == v for k, v in sent[cid].items())
    assert acc.sb.company(NORTHWIND).properties["leadscore_account_score"] == "210"
    # the next sync has nothing to write
    acc.sb.faults = Faults()
    acc.sb.clear_log()
    second = acc.pipeline.sync()
    assert second.status == "ok", second.message
    assert [c for c in company_calls(acc) if c[0] == "update"] == []


def test_a_company_batch_lost_before_it_arrived_is_read_back_then_sent_again_once(
    acc: Harness,
) -> None:
    """The connection drops before HubSpot applies anything, every time: each attempt is
    read back first (nothing there), so it is sent again; after the last attempt the writes
    are dead-lettered and stay in flight. The next sync reads them back (still not there),
    sends them once, and that is all."""
    acc.sb.faults = Faults(drop_rate=1.0, methods=("POST",), path_prefixes=(UPDATE,))
    first = acc.pipeline.sync()
    assert first.status == "ok", first.message
    writes = [c for c in company_calls(acc) if c[0] == "update"]
    tries = acc.pipeline.options.write_retry_attempts * 4  # stage attempts × adapter attempts
    assert writes == [("update", "drop", None, LIVE)] * tries
    assert first.dead_lettered == 4
    letters = acc.store.open_dead_letters(CRM, "company_write")
    assert sorted((d.contact_id for d in letters), key=str) == LIVE
    assert all(d.reason is not None and "gave up after" in d.reason for d in letters)
    in_flight = acc.store.writes_in_flight(CRM, of=COMPANY_WRITE)
    assert sorted(in_flight) == LIVE
    assert acc.store.get_account_written_many(CRM, LIVE) == {c: {} for c in LIVE}
    acc.sb.faults = Faults()
    acc.sb.clear_log()
    second = acc.pipeline.sync()
    assert second.status == "ok", second.message
    calls = company_calls(acc)
    assert [c for c in calls if c[0] == "update"] == [("update", None, 200, LIVE)]
    first_update = calls.index(("update", None, 200, LIVE))
    assert ("read", None, 200, LIVE) in calls[:first_update]  # read back before sending
    assert acc.store.writes_in_flight(CRM, of=COMPANY_WRITE) == {}
    assert acc.store.open_dead_letters(CRM, "company_write") == []
    assert acc.sb.company(NORTHWIND).properties["leadscore_account_score"] == "210"


def test_an_interrupted_runs_company_writes_are_read_back_the_arrived_not_resent(
    acc: Harness,
) -> None:
    """A run died after sending two company writes and before recording them: Northwind's
    arrived, Acme's never did (HubSpot still shows older values). The next sync reads both back
    in one batch read, records Northwind's as written, and sends Acme's only: the one value
    that differs, once."""
    assert acc.pipeline.sync().status == "ok"
    written = acc.store.get_account_written_many(CRM, [ACME, NORTHWIND])
    nw, acme = written[NORTHWIND], written[ACME]
    # Acme: HubSpot shows an older score (the lost write carried the current one)
    old = {"account_score": str(int(acme["account_score"]) - 7)}
    assert acc.adapter.write_companies([WriteBack(ACME, old)])[0].ok
    with acc.store.transaction():
        acc.store.record_account_written(CRM, ACME, old, acc.clock[0])
        acc.store.record_account_written(CRM, NORTHWIND, {"account_score": "1"}, acc.clock[0])
        acc.store.set_in_flight(
            CRM, {ACME: {"account_score": acme["account_score"]}, NORTHWIND: nw},
            of=COMPANY_WRITE,
        )  # fmt: skip
        acc.store.add_accounts_due(CRM, [f"company:{ACME}", f"company:{NORTHWIND}"], "lost run")
    acc.sb.clear_log()
    run = acc.pipeline.sync()
    assert run.status == "ok", run.message
    calls = company_calls(acc)
    assert calls[0] == ("read", None, 200, sorted((ACME, NORTHWIND)))  # the read-back first
    assert [c for c in calls if c[0] == "update"] == [("update", None, 200, [ACME])]
    assert updates(acc) == {ACME: [{"leadscore_account_score": acme["account_score"]}]}
    assert acc.store.writes_in_flight(CRM, of=COMPANY_WRITE) == {}
    after = acc.store.get_account_written_many(CRM, [ACME, NORTHWIND])
    assert after[NORTHWIND] == nw  # recorded as arrived, not sent
    assert after[ACME]["account_score"] == acme["account_score"]
    assert acc.sb.company(ACME).properties["leadscore_account_score"] == acme["account_score"]
