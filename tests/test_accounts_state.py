"""Account state (migration 008, `connector.state.accounts`) and the account stage's pieces
that need no CRM: key resolution, scoring a 5,000-contact account without quadratic work."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from connector.account_stage import AccountStage
from connector.crm.base import CompanyLinks, CrmCompany
from connector.crm.hubspot import HubSpotAdapter
from connector.model.loader import load_model
from connector.pipeline import Pipeline
from connector.state.accounts import ContactAccount
from connector.state.codec import encode_dt
from connector.state.leases import ACCOUNT_INDEXES, DUE_INDEX
from connector.state.store import StateStore
from connector.types import (
    AccountResult,
    Contact,
    Enrichment,
    Event,
    LifecycleDecision,
    Reason,
    ScoreResult,
)

CRM = "hubspot"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore.open(tmp_path / "state.db") as s:
        yield s


def account_result(
    account_id: str, score: float, grade: str = "B", mqa: bool = False
) -> AccountResult:
    return AccountResult(
        account_id=account_id,
        score=score,
        engagement_points=score,
        fit_points=40.0,
        grade=grade,
        mqa=mqa,
        mqa_reason="score ≥ 100" if mqa else None,
        members=2,
        engaged_contacts=("1", "2"),
        model_version="2026.11",
        model_fingerprint="fp",
        scored_at=NOW,
        next_change_at=NOW + timedelta(days=30),
        reasons=(
            Reason("breadth", "account", 15.0, "2 people engaged in 30 days: A, B", ("contact:1",)),
        ),
    )


def test_companies_report_what_changed(store: StateStore) -> None:
    acme = CrmCompany("9001", "acme.com", "Acme", "software", 850, 1.2e8, "US")
    assert store.upsert_crm_companies(CRM, [acme], NOW) == {"9001"}  # new
    assert store.upsert_crm_companies(CRM, [acme], NOW) == set()  # same facts
    bigger = CrmCompany("9001", "acme.com", "Acme", "software", 900, 1.2e8, "US")
    assert store.upsert_crm_companies(CRM, [bigger], NOW) == {"9001"}
    merged = CrmCompany("9002", merged_into="9001")
    assert store.upsert_crm_companies(CRM, [merged], NOW) == {"9002"}
    got = store.get_crm_companies(CRM, ["9001", "9002", "404"])
    assert set(got) == {"9001", "9002"}
    assert got["9001"].employee_count == 900 and not got["9001"].archived
    assert got["9002"].merged_into == "9001"
    store.mark_company_archived(CRM, "9001", NOW)
    assert store.get_crm_companies(CRM, ["9001"])["9001"].archived
    assert store.company_ids_by_domain(CRM, "ACME.com") == []  # archived: not offered


def test_contact_accounts_say_who_moved(store: StateStore) -> None:
    store.upsert_contacts(CRM, [Contact("1", "a@acme.com"), Contact("2", "b@acme.com")], at=NOW)
    moved = store.set_contact_accounts(
        CRM,
        [
            ContactAccount("1", "company:9001", "primary_company", ("9001", "9003")),
            ContactAccount("2", "domain:acme.com", "email_domain"),
        ],
        NOW,
    )
    assert moved == {"1": None, "2": None}
    again = store.set_contact_accounts(
        CRM, [ContactAccount("1", "company:9001", "primary_company", ("9001",))], NOW
    )
    assert again == {}  # same account (the company list may change)
    move = store.set_contact_accounts(
        CRM, [ContactAccount("2", "company:9001", "primary_company", ("9001",))], NOW
    )
    assert move == {"2": "domain:acme.com"}
    assert store.account_member_ids(CRM, "company:9001") == ["1", "2"]
    assert store.contacts_with_company(CRM, ["9001"]) == ["1", "2"]
    assert store.account_ids_with_company(CRM, ["9001"]) == {"company:9001"}
    store.set_contact_accounts(
        CRM, [ContactAccount("1", "company:9001", "primary_company", ("9001", "9003"))], NOW
    )
    # a company changed: its own account and the accounts of everyone associated with it
    assert store.account_ids_with_company(CRM, ["9003"]) == {"company:9003", "company:9001"}
    assert store.clear_contact_accounts(CRM, ["2"]) == {"2": "company:9001"}
    assert store.account_member_ids(CRM, "company:9001") == ["1"]
    rows = store.db.execute(
        "SELECT contact_id, account_id, source, company_ids FROM contact_accounts"
    ).fetchall()
    assert rows == [("1", "company:9001", "primary_company", '["9001", "9003"]')]


def test_account_scores_history_views_backlog_and_written(store: StateStore) -> None:
    store.upsert_contacts(
        CRM,
        [Contact("1", "a@acme.com", "Ann", "Lee"), Contact("2", "b@acme.com", "Bo", "Ng")],
        at=NOW,
    )
    store.set_contact_accounts(
        CRM,
        [
            ContactAccount("1", "company:9001", "primary_company", ("9001",)),
            ContactAccount("2", "company:9001", "primary_company", ("9001",)),
        ],
        NOW,
    )
    store.save_account_score(CRM, account_result("company:9001", 80), company_id="9001",
                             domain="acme.com", name="Acme")  # fmt: skip
    store.save_account_score(CRM, account_result("domain:initech.com", 120, "A", True),
                             company_id=None, domain="initech.com", name=None)  # fmt: skip
    store.save_account_score(
        CRM, account_result("company:9001", 80), company_id="9001", domain="acme.com", name="Acme"
    )  # fmt: skip  (unchanged: no history)
    store.save_account_score(CRM, account_result("company:9001", 95), company_id="9001",
                             domain="acme.com", name="Acme")  # fmt: skip
    got = store.account_score(CRM, "company:9001")
    assert got is not None
    assert (got.score, got.grade, got.mqa, got.company_id, got.domain) == (
        95, "B", False, "9001", "acme.com"
    )  # fmt: skip
    assert got.engaged_contacts == ("1", "2")
    stored = "SELECT engaged_contacts FROM account_scores WHERE account_id = 'company:9001'"
    assert store.db.execute(stored).fetchone() == ('["1","2"]',)
    assert got.reasons[0].text == "2 people engaged in 30 days: A, B"
    assert [h["score"] for h in store.account_score_history(CRM, "company:9001")] == [80, 95]
    assert [a.account_id for a in store.top_accounts(CRM, 5)] == [
        "domain:initech.com",
        "company:9001",
    ]
    assert [a.account_id for a in store.top_accounts(CRM, 1)] == ["domain:initech.com"]
    for key in ("company:9001", "9001", "acme.com", "ACME.COM"):
        found = store.get_account(CRM, key)
        assert found is not None and found.account_id == "company:9001", key
    assert store.get_account(CRM, "initech.com").account_id == "domain:initech.com"  # type: ignore[union-attr]
    assert store.get_account(CRM, "nope.com") is None
    members = store.account_members(CRM, "company:9001")
    assert [(m.contact_id, m.name, m.source, m.score) for m in members] == [
        ("1", "Ann Lee", "primary_company", None),
        ("2", "Bo Ng", "primary_company", None),
    ]
    assert store.due_account_ids(CRM, NOW + timedelta(days=31)) == [
        "company:9001",
        "domain:initech.com",
    ]
    assert store.stale_account_ids(CRM, "fp") == []  # scored by the model in force
    assert store.stale_account_ids(CRM, "new-model") == ["company:9001", "domain:initech.com"]
    assert store.stale_account_ids(CRM, "a") == store.stale_account_ids(CRM, "zz")  # both sides
    # every sync asks: answered from the model index, no account row read (a scan of every
    # account's reasons grew each sync with the portal)
    plan = " ".join(
        str(r[-1])
        for r in store.db.execute(
            "EXPLAIN QUERY PLAN SELECT account_id FROM account_scores WHERE crm = ? "
            "AND (model_fingerprint < ? OR model_fingerprint > ?)",
            [CRM, "fp", "fp"],
        ).fetchall()
    )
    assert "USING COVERING INDEX account_scores_model" in plan and "SCAN account_scores" not in plan
    store.add_accounts_due(CRM, ["company:9001", "company:9002"], "company changed")
    store.add_accounts_due(CRM, ["company:9001"], "again")  # once
    assert store.accounts_due(CRM) == ["company:9001", "company:9002"]
    store.clear_accounts_due(CRM, ["company:9001"])
    assert store.accounts_due(CRM) == ["company:9002"]
    store.record_account_written(CRM, "9001", {"account_score": "95", "account_grade": "B"}, NOW)
    assert store.get_account_written_many(CRM, ["9001", "9002"]) == {
        "9001": {"account_score": "95", "account_grade": "B"},
        "9002": {},
    }
    store.delete_account_score(CRM, "company:9001")
    assert store.account_score(CRM, "company:9001") is None


def _indexes(store: StateStore) -> set[str]:
    """Which of the indexes a `bulk_scoring` may drop are there."""
    names = (DUE_INDEX, *ACCOUNT_INDEXES)
    return {
        r[0]
        for r in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        if r[0] in names
    }


def _plan(store: StateStore, sql: str, params: list[object]) -> str:
    rows = store.db.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    return " ".join(str(r[-1]) for r in rows)


_TOP = "SELECT account_id FROM account_scores WHERE crm = ? ORDER BY score DESC LIMIT 5"


def test_a_bulk_scoring_with_accounts_drops_their_indexes_and_builds_them_again(
    store: StateStore,
) -> None:
    """A rescore with accounts on rewrites every account row: their three secondary indexes
    go with the due index while it runs (every row would move in each of them) and come
    back at the end; the account queries answer the same meanwhile, by a scan."""
    everything = {DUE_INDEX, *ACCOUNT_INDEXES}
    store.save_account_score(CRM, account_result("company:9001", 80), company_id="9001",
                             domain="acme.com", name="Acme")  # fmt: skip
    assert _indexes(store) == everything
    assert "account_scores_score" in _plan(store, _TOP + " -- 1", [CRM])
    with store.bulk_scoring():  # contacts only: the account indexes stay
        assert _indexes(store) == set(ACCOUNT_INDEXES)
    with store.bulk_scoring(accounts=True):
        assert _indexes(store) == set()
        assert "account_scores_score" not in _plan(store, _TOP + " -- 2", [CRM])
        store.save_account_score(CRM, account_result("domain:initech.com", 120, "A", True),
                                 company_id=None, domain="initech.com", name=None)  # fmt: skip
        assert [a.account_id for a in store.top_accounts(CRM)] == [
            "domain:initech.com",
            "company:9001",
        ]
        assert store.due_account_ids(CRM, NOW + timedelta(days=31)) == [
            "company:9001",
            "domain:initech.com",
        ]
        assert store.stale_account_ids(CRM, "new-model") == ["company:9001", "domain:initech.com"]
    assert _indexes(store) == everything
    assert "account_scores_score" in _plan(store, _TOP + " -- 3", [CRM])
    assert store.get_job("bulk-scoring") is None


def test_account_indexes_a_dead_rescore_left_dropped_come_back_at_the_next_open(
    tmp_path: Path,
) -> None:
    """Only the account indexes missing (the due index there): `open` still sees a
    `bulk_scoring` that died, and builds what it dropped."""
    path = tmp_path / "state.db"
    StateStore.open(path).close()
    raw = sqlite3.connect(path)
    with raw:
        for name in ACCOUNT_INDEXES:
            raw.execute(f"DROP INDEX {name}")
        raw.execute(  # its process: gone long ago (pid 1 on another host, 3 hours old)
            "INSERT INTO jobs (name, state, updated_at) VALUES ('bulk-scoring', ?, ?)",
            ('{"pid": 1, "host": "elsewhere"}', encode_dt(datetime.now(UTC) - timedelta(hours=3))),
        )
    raw.close()
    with StateStore.open(path) as s:
        assert _indexes(s) == {DUE_INDEX, *ACCOUNT_INDEXES}
        assert s.get_job("bulk-scoring") is None


def _stage(store: StateStore) -> AccountStage:
    adapter = HubSpotAdapter(SecretStr("t"), "http://127.0.0.1:9", accounts=True)
    pipeline = Pipeline(store, adapter, load_model(), clock=lambda: NOW)
    return AccountStage(pipeline)


def test_key_resolution_primary_several_archived_merged_and_free_mail(store: StateStore) -> None:
    store.upsert_crm_companies(
        CRM,
        [
            CrmCompany("10", "a.com", "A"),
            CrmCompany("20", "b.com", "B", archived=True),
            CrmCompany("30", merged_into="40"),
            CrmCompany("40", "d.com", "D"),
            CrmCompany("50"),  # no domain, no name: still a company
        ],
        NOW,
    )
    stage = _stage(store)
    try:
        contacts = [Contact(str(i), f"p{i}@x{i}.com") for i in range(1, 9)]
        contacts[6] = Contact("7", "someone@gmail.com")
        contacts[7] = Contact("8", "temp@mailinator.com")
        links = {
            "1": CompanyLinks("40", ("10", "40")),  # several: the primary wins
            "2": CompanyLinks(None, ("40", "10")),  # none primary: the lowest live id
            "3": CompanyLinks("20", ("10", "20")),  # primary archived: the other one
            "4": CompanyLinks("30", ("30",)),  # merged: its survivor
            "5": CompanyLinks("20", ("20",)),  # only an archived company: the domain
            "6": CompanyLinks("50", ("50",)),
        }
        enrich: dict[str, Enrichment] = {}
        for c in contacts[:6]:
            assert c.email is not None
            enrich[c.email] = Enrichment("corporate", f"x{c.id}.com")
        enrich["someone@gmail.com"] = Enrichment("free", "gmail.com")
        enrich["temp@mailinator.com"] = Enrichment("disposable", "mailinator.com")
        got = stage.resolve(contacts, enrich, links)
    finally:
        stage.p.adapter.close()
    assert got == {
        "1": ("company:40", "primary_company", ("10", "40")),
        "2": ("company:10", "primary_company", ("40", "10")),
        "3": ("company:10", "primary_company", ("10", "20")),
        "4": ("company:40", "primary_company", ("30",)),
        "5": ("domain:x5.com", "email_domain", ("20",)),
        "6": ("company:50", "primary_company", ("50",)),
        "7": None,  # free mail never forms an account
        "8": None,  # nor does disposable mail
    }


def _member_result(cid: str, points: float, key: str) -> ScoreResult:
    return ScoreResult(
        contact_id=cid,
        score=points,
        engagement_points=points,
        fit_points=40.0,
        grade="B",
        lifecycle=LifecycleDecision("lead", None, False, None),
        profile_mismatch=False,
        model_version="2026.12-default",
        model_fingerprint="fp",
        scored_at=NOW,
        next_change_at=None,
        reasons=(Reason("product_page", "product", points, "product page", (key,)),),
    )


def _big_account(store: StateStore, n: int, account: str) -> None:
    contacts = [Contact(f"{account}-{i}", f"p{i}@{account}.com", "P", str(i), "Marketing Manager")
                for i in range(n)]  # fmt: skip
    store.upsert_contacts(CRM, contacts, at=NOW)
    store.insert_events(
        CRM,
        [Event("web", f"{c.id}-e", c.id, "page_view", NOW - timedelta(days=1)) for c in contacts],
    )
    store.save_scores(CRM, [_member_result(c.id, 10 + i % 90, f"web:{c.id}-e")
                            for i, c in enumerate(contacts)])  # fmt: skip
    store.set_contact_accounts(
        CRM, [ContactAccount(c.id, f"domain:{account}.com", "email_domain") for c in contacts], NOW
    )


def test_a_5000_contact_account_costs_no_statement_per_member(store: StateStore) -> None:
    _big_account(store, 1000, "small")
    _big_account(store, 5000, "big")
    stage = _stage(store)
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    try:
        started = time.perf_counter()
        small = stage.score_accounts(["domain:small.com"], NOW)["domain:small.com"]
        n_small = len(statements)
        statements.clear()
        big = stage.score_accounts(["domain:big.com"], NOW)["domain:big.com"]
        elapsed = time.perf_counter() - started
    finally:
        store._conn.set_trace_callback(None)
        stage.p.adapter.close()
    # no statement per member: reads are set-wise (contacts in batches of 1,000: 4 more)
    assert len(statements) <= n_small + 4, statements
    assert stage.state.accounts_scored == 2
    assert big.members == 5000 and small.members == 1000
    # caps: the 10 most engaged count, each at most 50
    assert big.engagement_points == 500
    assert len(big.engaged_contacts) == 5000
    assert elapsed < 15  # linear: 6,000 members in about a second (a per-key scan took 30+)
    stored = store.account_score(CRM, "domain:big.com")
    assert stored is not None and stored.members == 5000
    # every member is a manager: one committee role; 5,000 people engaged in 30 days
    assert [r.rule for r in big.reasons][:2] == ["member_engagement", "breadth"]
    assert big.reasons[0].text.endswith("(top 10 of 5000 engaged)")


def test_account_ids_between_reads_a_range_of_contact_ids(store: StateStore) -> None:
    """What a rescore reads for each batch it scores: the accounts of the contacts with ids
    from the batch's first to its last (text order, both included), of this CRM only."""
    ids = ["10", "11", "12", "2", "3"]  # text order: "10" < "11" < "12" < "2" < "3"
    store.upsert_contacts(CRM, [Contact(i, f"{i}@acme.com") for i in ids], at=NOW)
    store.set_contact_accounts(
        CRM,
        [
            ContactAccount("10", "company:1", "primary_company", ("1",)),
            ContactAccount("12", "domain:acme.com", "email_domain"),
            ContactAccount("2", "company:2", "primary_company", ("2",)),
            ContactAccount("3", "company:1", "primary_company", ("1",)),
        ],
        NOW,
    )
    store.set_contact_accounts(
        "marketo", [ContactAccount("11", "company:9", "primary_company", ("9",))], NOW
    )
    assert store.account_ids_between(CRM, "10", "2") == {
        "10": "company:1",
        "12": "domain:acme.com",
        "2": "company:2",
    }
    assert store.account_ids_between(CRM, "11", "11") == {}  # another CRM's
    assert store.account_ids_between(CRM, "3", "3") == {"3": "company:1"}
    assert store.account_ids_between("marketo", "", "9") == {"11": "company:9"}


def test_contacts_without_account_are_the_live_ones_of_the_range_with_no_link(
    store: StateStore,
) -> None:
    """What a rescore with accounts on scores beside the accounts' members: the live contacts
    of `(after, upto]` with no account (archived ones and other CRMs' links left out)."""
    ids = ["10", "11", "12", "2", "3", "4"]  # text order: "10" < "11" < "12" < "2" < "3" < "4"
    store.upsert_contacts(CRM, [Contact(i, f"{i}@gmail.com") for i in ids], at=NOW)
    store.set_contact_accounts(
        CRM, [ContactAccount("11", "company:1", "primary_company", ("1",))], NOW
    )
    store.set_contact_accounts(
        "marketo", [ContactAccount("12", "company:9", "primary_company", ("9",))], NOW
    )
    store.mark_archived(CRM, "3", NOW)
    assert store.contact_ids_without_account(CRM, "", "\U0010ffff") == ["10", "12", "2", "4"]
    assert store.contact_ids_without_account(CRM, "10", "3") == ["12", "2"]  # (after, upto]
    assert store.contact_ids_without_account(CRM, "11", "11") == []
    assert store.contact_ids_without_account("marketo", "", "\U0010ffff") == []  # none stored


def test_an_account_row_with_a_lone_surrogate_is_stored_replaced(store: StateStore) -> None:
    # a company name from the CRM, a member's id: replaced as every text of the state DB is
    # (orjson refuses the ids: they take `encode_json`; the other account keeps orjson's text)
    odd = replace(account_result("company:9002", 70), engaged_contacts=("7\udc80", "8"))
    store.save_account_score(CRM, odd, company_id="9002", domain=None, name="Init\ud800ech")
    store.save_account_score(CRM, account_result("company:9001", 80), company_id="9001",
                             domain="acme.com", name="Acme")  # fmt: skip
    got = store.account_score(CRM, "company:9002")
    assert got is not None and got.engaged_contacts == ("7\ufffd", "8")
    assert got.name == "Init\ufffdech"
    rows = store.db.execute(
        "SELECT account_id, engaged_contacts FROM account_scores ORDER BY account_id"
    ).fetchall()
    assert rows == [("company:9001", '["1","2"]'), ("company:9002", '["7\ufffd","8"]')]


def test_a_company_record_with_a_lone_surrogate_is_stored_replaced_and_not_changed_again(
    store: StateStore,
) -> None:
    # what the adapters clean already, should a record reach the store uncleaned
    raw = CrmCompany(
        id="9002", domain="initech.com", name="Init\ud800ech", industry="Jos\udc80",
        updated_at=NOW, properties={"note": "x\ud83d"},
    )  # fmt: skip
    assert store.upsert_crm_companies(CRM, [raw], NOW) == {"9002"}
    got = store.get_crm_companies(CRM, ["9002"])["9002"]
    assert got.properties is not None
    assert (got.name, got.industry, dict(got.properties)) == (
        "Init\ufffdech", "Jos\ufffd", {"note": "x\ufffd"}
    )  # fmt: skip
    assert store.upsert_crm_companies(CRM, [raw], NOW) == set()  # as stored: no change


def test_counting_the_mqas_reads_the_partial_index_not_the_rows(tmp_path: Path) -> None:
    """`count_mqas` (status, the worker's MQA gauge after runs that scored accounts) searches
    the MQAs' partial index: it read every account row and its reasons (~0.13 s at 100,000
    accounts; 1.8 ms with the index, measured on the full-size bench DB's rows)."""
    with StateStore.open(tmp_path / "s.db") as store:
        seen: list[str] = []
        store.db.conn.set_trace_callback(seen.append)
        assert store.count_mqas("hubspot") == 0
        store.db.conn.set_trace_callback(None)
        [sql] = [s for s in seen if "account_scores" in s]
        plan = store.db.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
        assert [row[3] for row in plan] == [
            "SEARCH account_scores USING INDEX account_scores_mqa (crm=?)"
        ]
