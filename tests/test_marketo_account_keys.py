"""Marketo account keys, driven over HTTP on the Marketo sandbox's demo instance (each lead
carries its company's `externalCompanyId` `ACC-<n>`; the company record's own number is `<n>`):
the account is found by what the admin copies from Marketo (its number, its external id, its
domain, its name), an `externalCompanyId` with a comma in it is read whole, and a lead without
one is keyed as Marketo links it (its company field), never by its e-mail domain."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner
from marketorestpython.client import MarketoClient

from connector.cli import cli
from connector.crm.base import CrmCompany
from connector.model.loader import load_model
from connector.ops.accounts import find_account
from connector.state.accounts import ContactAccount
from connector.state.store import StateStore

from .conftest import NOW
from .test_accounts_state import account_result
from .test_sync_accounts import marketo_accounts

ACME = "company:ACC-9001"


def _explain(db: Path, key: str) -> tuple[int, str]:
    res = CliRunner().invoke(
        cli, ["--crm", "marketo", "--state", str(db), "explain", "--account", key, "--json"]
    )
    if res.exit_code != 0:
        return res.exit_code, res.output
    return 0, json.loads(res.stdout)["account_id"]


def test_explain_account_finds_a_marketo_company_by_its_number_id_domain_and_name(
    tmp_path: Path,
) -> None:
    """An admin copies what the Marketo UI shows: the company record's number (9001), its
    external id (ACC-9001), its website's domain or its name. The number is kept with the
    record (`properties.id`, read with `fields=id,…`): each finds `company:ACC-9001`."""
    with marketo_accounts(tmp_path, [NOW]) as (_, pipeline):
        assert pipeline.sync().status == "ok"
        store = pipeline.store
        acme = store.get_crm_companies("marketo", ["ACC-9001"])["ACC-9001"]
        assert (acme.name, acme.domain, acme.properties) == (
            "Acme Analytics", "acme-analytics.com", {"id": "9001"}
        )  # fmt: skip
        assert store.company_ids_by_number("marketo", "9001") == ["ACC-9001"]
        got = store.get_account("marketo", "9001")
        assert got is not None and got.account_id == ACME
    db = tmp_path / "state.db"
    for key in ("9001", " 9001 ", "company:9001", "ACC-9001", "company:ACC-9001",
                "acme-analytics.com", "https://www.acme-analytics.com/", "Acme Analytics",
                "acme  ANALYTICS"):  # fmt: skip
        assert _explain(db, key) == (0, ACME), key
    assert _explain(db, "9099")[0] == 1  # no such record


def test_a_company_name_that_names_two_accounts_finds_neither_and_says_so(
    tmp_path: Path,
) -> None:
    with marketo_accounts(tmp_path, [NOW]) as (sb, pipeline):
        mc = MarketoClient("123-ABC-456", sb.client_id, sb.client_secret)
        mc.host = sb.url
        mc.create_update_companies(
            [{"externalCompanyId": "ACC-EU", "company": "Acme Analytics", "website": "acme.eu"}]
        )
        sb.instance.update_lead(sb.lead(112), {"externalCompanyId": "ACC-EU"})
        assert pipeline.sync().status == "ok"
    db = tmp_path / "state.db"
    res = CliRunner().invoke(
        cli, ["--crm", "marketo", "--state", str(db), "explain", "--account", "Acme Analytics"]
    )
    assert res.exit_code == 1
    assert res.output == (
        "note: 2 accounts are named 'Acme Analytics': company:ACC-9001, company:ACC-EU; give "
        "one's id\n"
        f"error: no scored account 'Acme Analytics' in {db} (a domain, a CRM company id, an "
        "account id or a company name; `leadscore accounts` lists them)\n"
    )
    assert _explain(db, "9014") == (0, "company:ACC-EU")  # its number tells them apart


def test_a_company_record_stored_without_its_number_is_read_once_more(tmp_path: Path) -> None:
    """A record stored by an earlier version (no number kept) is read again when a lead of it
    is next scored, so `explain --account 9001` finds it after the upgrade."""
    with marketo_accounts(tmp_path, [NOW]) as (sb, pipeline):
        old = CrmCompany("ACC-9001", "acme-analytics.com", "Acme Analytics", "computer software",
                         850, 1.2e8, "US")  # fmt: skip
        pipeline.store.upsert_crm_companies("marketo", [old], NOW)
        assert pipeline.sync().status == "ok"
        stored = pipeline.store.get_crm_companies("marketo", ["ACC-9001"])["ACC-9001"]
        assert stored.properties == {"id": "9001"}
        asked = [
            v
            for r in sb.calls("/rest/v1/companies.json")
            for v in (r.param("filterValues") or "").split(",")
        ]
        assert asked.count("ACC-9001") == 1


def test_an_external_company_id_with_a_comma_is_read_whole_and_the_others_still_are(
    tmp_path: Path,
) -> None:
    """`Acme, Inc.` cannot travel in a comma-separated `filterValues`: it is asked for apart,
    in a JSON query (POST `?_method=GET`, `input`), and its lead joins its record's account;
    every other company of the batch is read by the usual GET."""
    with marketo_accounts(tmp_path, [NOW]) as (sb, pipeline):
        mc = MarketoClient("123-ABC-456", sb.client_id, sb.client_secret)
        mc.host = sb.url
        assert mc.create_update_companies(
            [{"externalCompanyId": "Acme, Inc.", "company": "Acme Inc", "website": "acme-inc.com",
              "numberOfEmployees": 120}]
        ) == [{"seq": 0, "id": 9014, "status": "created"}]  # fmt: skip
        lead = mc.create_update_leads(
            [{"email": "zoe@acme-inc.com", "firstName": "Zoe", "company": "Acme Inc",
              "externalCompanyId": "Acme, Inc."}], action="createOnly", lookupField="email"
        )  # fmt: skip
        zoe = str(lead[0]["id"])
        sb.clear_log()
        assert pipeline.sync().status == "ok"
        store = pipeline.store
        assert store.contact_accounts_many("marketo", [zoe]) == {
            zoe: ContactAccount(zoe, "company:Acme, Inc.", "company_record", ("Acme, Inc.",))
        }
        inc = store.get_crm_companies("marketo", ["Acme, Inc."])["Acme, Inc."]
        assert (inc.name, inc.domain, inc.employee_count, inc.properties) == (
            "Acme Inc", "acme-inc.com", 120, {"id": "9014"}
        )  # fmt: skip
        calls = sb.calls("/rest/v1/companies.json")
        assert [(r.method, r.effective_method) for r in calls] == [("GET", "GET"), ("POST", "GET")]
        listed = (calls[0].param("filterValues") or "").split(",")
        assert sorted(listed) == [f"ACC-90{n:02}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)]
        assert calls[1].body == {
            "filterType": "dedupeFields",
            "fields": ["id", "externalCompanyId", "company", "industry", "numberOfEmployees",
                       "annualRevenue", "billingCountry", "website"],
            "input": [{"externalCompanyId": "Acme, Inc."}],
        }  # fmt: skip
        # nothing lost: the other companies' accounts are as before
        acme = store.account_score("marketo", ACME)
        assert acme is not None and (acme.score, acme.grade, acme.members) == (375, "A", 6)
        assert store.account_score("marketo", "company:Acme, Inc.") is not None
        assert store.account_score("marketo", "name:acme inc") is None
        assert len(sb.instance.companies) == 14  # the query created nothing


def test_an_instance_that_refuses_the_json_query_keeps_the_other_companies(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Should an instance refuse the JSON query (1003): a warning naming the id (its lead is
    keyed by its company field), the batch's other records read by the GET are kept."""
    import responses
    from pydantic import SecretStr

    from connector.crm.marketo import MarketoAdapter
    from connector.retry import RetryPolicy

    base = "https://123-abc-456.mktorest.com"
    with responses.RequestsMock() as rsps:
        rsps.post(
            f"{base}/identity/oauth/token",
            json={"access_token": "tok", "token_type": "bearer", "expires_in": 3600},
        )
        rsps.get(
            f"{base}/rest/v1/companies.json",
            json={"requestId": "1", "success": True,
                  "result": [{"seq": 0, "id": 7, "externalCompanyId": "NW-1", "company": "NW"}]},
        )  # fmt: skip
        rsps.post(
            f"{base}/rest/v1/companies.json",
            json={"requestId": "2", "success": False,
                  "errors": [{"code": "1003", "message": "Invalid request"}]},
        )  # fmt: skip
        adapter = MarketoAdapter(
            base, SecretStr("id"), SecretStr("secret"), accounts=True,
            retry=RetryPolicy(attempts=1, base_seconds=0.001, max_seconds=0.01, seed=1),
        )  # fmt: skip
        try:
            with caplog.at_level(logging.WARNING, logger="connector.crm.marketo"):
                got = adapter.get_companies(["NW-1", "Acme, Inc.", " padded"])
        finally:
            adapter.close()
        posted = rsps.calls[2].request
    assert got == [CrmCompany("NW-1", name="NW", properties={"id": "7"})]
    assert adapter.companies_available is True
    assert posted.url == f"{base}/rest/v1/companies.json?_method=GET"
    assert json.loads(posted.body or b"")["input"] == [
        {"externalCompanyId": "Acme, Inc."}, {"externalCompanyId": " padded"}
    ]  # fmt: skip
    assert [r.getMessage() for r in caplog.records] == [
        "marketo companies 'Acme, Inc.', ' padded': not read (Marketo error 1003: Invalid "
        "request (companies.get); an externalCompanyId with a comma is asked for in a JSON "
        "query): their leads are keyed by their company field"
    ]


def test_a_lead_without_an_external_company_id_is_never_joined_by_its_e_mail_domain(
    tmp_path: Path,
) -> None:
    """Pinned (README, "Which account a contact belongs to"): a lead Marketo links to no
    company record is keyed by its company field (else its e-mail domain), even when a stored
    record has its e-mail's domain; once Marketo links it (`externalCompanyId`), it moves to
    the record's account."""
    clock = [NOW]
    with marketo_accounts(tmp_path, clock) as (sb, pipeline):
        quinn = sb.instance.create_lead(
            {"email": "quinn@acme-analytics.com", "firstName": "Quinn", "company": "Acme Analytics"}
        )
        ari = sb.instance.create_lead({"email": "ari@acme-analytics.com", "firstName": "Ari"})
        assert pipeline.sync().status == "ok"
        store = pipeline.store
        assert store.company_ids_by_domain("marketo", "acme-analytics.com") == ["ACC-9001"]
        got = store.contact_accounts_many("marketo", [str(quinn.id), str(ari.id)])
        assert {k: (v.account_id, v.source) for k, v in got.items()} == {
            str(quinn.id): ("name:acme analytics", "company_field"),
            str(ari.id): ("domain:acme-analytics.com", "email_domain"),
        }
        acme = store.account_score("marketo", ACME)
        assert acme is not None and acme.members == 6
        sb.instance.update_lead(quinn, {"externalCompanyId": "ACC-9001"})
        clock[0] = NOW.replace(minute=NOW.minute + 15)
        assert pipeline.sync().status == "ok"
        link = store.contact_accounts_many("marketo", [str(quinn.id)])[str(quinn.id)]
        assert (link.account_id, link.source) == (ACME, "company_record")
        acme = store.account_score("marketo", ACME)
        assert acme is not None and acme.members == 7


def test_find_account_reads_a_marketo_number_only_after_the_external_id(tmp_path: Path) -> None:
    """An `externalCompanyId` that is itself a number (`17`) names its own record first;
    the record Marketo numbers 17 is found by its external id (`B-1`, `company:B-1`)."""
    model = load_model()
    with StateStore.open(tmp_path / "s.db") as store:
        store.upsert_crm_companies(
            "marketo",
            [
                CrmCompany("17", "a.com", "A", properties={"id": "40"}),
                CrmCompany("B-1", "b.com", "B", properties={"id": "17"}),
            ],
            NOW,
        )
        for cid, name, score in (("17", "A", 50.0), ("B-1", "B", 90.0)):
            store.save_account_score(
                "marketo", account_result(f"company:{cid}", score), company_id=cid,
                domain=None, name=name,
            )  # fmt: skip
        assert store.company_ids_by_number("marketo", "17") == ["B-1"]
        assert store.company_ids_by_number("marketo", "x") == []

        def found(key: str) -> str | None:
            a = find_account(store, "marketo", key, model).account
            return a.account_id if a is not None else None

        assert [found(k) for k in ("17", "40", "B-1", "company:40", "b")] == [
            "company:17", "company:17", "company:B-1", "company:17", "company:B-1"
        ]  # fmt: skip
