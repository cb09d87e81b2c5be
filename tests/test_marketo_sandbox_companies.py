"""The Marketo sandbox's companies over real HTTP (plain `requests`, then the third-party
`marketorestpython` client unmodified): describe, query by externalCompanyId/id/company with
paging, sync (createOrUpdate/createOnly/updateOnly, dedupeBy), the read-only CRM-synced mode, and
the demo instance's companies and linked leads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from marketorestpython.client import MarketoClient

from connector.sandbox.marketo import MarketoSandbox
from connector.sandbox.marketo_demo import build_demo_instance

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "marketo_demo_instance.json"
DEMO: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
NORTHWIND_DATA = {
    "seq": 0,
    "id": 9012,
    "externalCompanyId": "ACC-9012",
    "company": "Northwind Data",
    "website": "https://www.northwind-data.com",
    "numberOfEmployees": 400,
    "industry": "computer software",
    "annualRevenue": 60000000.0,
    "billingCountry": "US",
}
FIELDS = "externalCompanyId,company,website,numberOfEmployees,industry,annualRevenue,billingCountry"


@pytest.fixture
def sb() -> Iterator[MarketoSandbox]:
    with MarketoSandbox.start(DEMO) as sandbox:
        yield sandbox
        assert sandbox.internal_errors == []


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def call(
    sb: MarketoSandbox, http: requests.Session, method: str, path: str, **kw: Any
) -> dict[str, Any]:
    r = http.get(
        f"{sb.url}/identity/oauth/token",
        params={
            "grant_type": "client_credentials",
            "client_id": sb.client_id,
            "client_secret": sb.client_secret,
        },
    )
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    r = http.request(method, f"{sb.url}{path}", headers=headers, **kw)
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body, dict)
    return body


def test_demo_instance_has_the_portal_companies_and_linked_leads() -> None:
    assert json.loads(json.dumps(build_demo_instance())) == DEMO
    ids = [c["id"] for c in DEMO["companies"]]
    assert ids == list(range(9001, 9014))
    no_domain = [c["company"] for c in DEMO["companies"] if "website" not in c]
    assert no_domain == ["Vandelay Industries"]
    by_company: dict[str, list[int]] = {}
    for lead in DEMO["leads"]:
        if "externalCompanyId" in lead:
            by_company.setdefault(lead["externalCompanyId"], []).append(lead["id"])
    assert by_company["ACC-9012"] == [153, 154, 155, 156]
    assert by_company["ACC-9010"] == [104]  # RivalScore: one contact
    assert "ACC-9013" not in by_company
    riley = next(lead for lead in DEMO["leads"] if lead["id"] == 102)
    assert "externalCompanyId" not in riley and "company" not in riley  # free mail


def test_describe_companies(sb: MarketoSandbox, http: requests.Session) -> None:
    body = call(sb, http, "GET", "/rest/v1/companies/describe.json")
    (desc,) = body["result"]
    assert (desc["name"], desc["idField"], desc["dedupeFields"]) == (
        "Company",
        "id",
        ["externalCompanyId"],
    )
    assert desc["searchableFields"] == [["externalCompanyId"], ["id"], ["company"]]
    names = [f["name"] for f in desc["fields"]]
    assert names[:3] == ["id", "externalCompanyId", "company"]
    assert {"numberOfEmployees", "annualRevenue", "industry", "billingCountry"} <= set(names)
    lead_fields = call(sb, http, "GET", "/rest/v1/leads/describe.json")["result"]
    assert "externalCompanyId" in [f["rest"]["name"] for f in lead_fields]


def test_query_companies_by_each_filter_and_page(
    sb: MarketoSandbox, http: requests.Session
) -> None:
    q = "/rest/v1/companies.json"
    got = call(
        sb,
        http,
        "GET",
        q,
        params={"filterType": "externalCompanyId", "filterValues": "ACC-9012", "fields": FIELDS},
    )
    assert got["result"] == [NORTHWIND_DATA]
    assert got["success"] is True and "nextPageToken" not in got
    by_name = call(
        sb,
        http,
        "GET",
        q,
        params={"filterType": "company", "filterValues": "northwind data,Globex"},
    )
    assert by_name["result"] == [
        {"seq": 0, "id": 9003, "externalCompanyId": "ACC-9003", "company": "Globex"},
        {"seq": 1, "id": 9012, "externalCompanyId": "ACC-9012", "company": "Northwind Data"},
    ]
    params = {"filterType": "id", "filterValues": "9001,9002,9003,4", "batchSize": "2"}
    first = call(sb, http, "GET", q, params=params)
    assert [c["id"] for c in first["result"]] == [9001, 9002]
    second = call(sb, http, "GET", q, params={**params, "nextPageToken": first["nextPageToken"]})
    assert [(c["seq"], c["id"]) for c in second["result"]] == [(2, 9003)]
    assert "nextPageToken" not in second
    bad = call(sb, http, "GET", q, params={"filterType": "industry", "filterValues": "x"})
    assert bad["success"] is False
    assert bad["errors"] == [{"code": "1003", "message": "Invalid filterType 'industry'"}]
    assert [r.path for r in sb.requests if r.path.startswith("/rest")] == [q] * 5


def test_sync_companies_actions_and_dedupe(sb: MarketoSandbox, http: requests.Session) -> None:
    sync = "/rest/v1/companies/sync.json"
    body = call(
        sb,
        http,
        "POST",
        sync,
        json={
            "input": [
                {"externalCompanyId": "ACC-NEW", "company": "Pied Piper", "numberOfEmployees": 45},
                {"externalCompanyId": "ACC-9012", "numberOfEmployees": 410},
                {"company": "no key"},
                {"externalCompanyId": "ACC-X", "color": "red"},
            ]
        },
    )
    assert body["result"] == [
        {"seq": 0, "id": 9014, "status": "created"},
        {"seq": 1, "id": 9012, "status": "updated"},
        {
            "seq": 2,
            "status": "skipped",
            "reasons": [
                {
                    "code": "1003",
                    "message": "Value for required field 'externalCompanyId' not specified",
                }
            ],
        },
        {
            "seq": 3,
            "status": "skipped",
            "reasons": [{"code": "1006", "message": "Field 'color' not found"}],
        },
    ]
    assert sb.instance.companies[9012].values["numberOfEmployees"] == 410
    assert sb.instance.companies[9014].values["company"] == "Pied Piper"
    only = call(
        sb,
        http,
        "POST",
        sync,
        json={"action": "createOnly", "input": [{"externalCompanyId": "ACC-NEW"}]},
    )
    assert only["result"][0]["reasons"] == [{"code": "1005", "message": "Company already exists"}]
    upd = call(
        sb,
        http,
        "POST",
        sync,
        json={
            "action": "updateOnly",
            "dedupeBy": "idField",
            "input": [{"id": 9013, "website": "vandelay.com"}, {"id": 1, "company": "x"}],
        },
    )
    assert upd["result"] == [
        {"seq": 0, "id": 9013, "status": "updated"},
        {
            "seq": 1,
            "status": "skipped",
            "reasons": [{"code": "1013", "message": "Company not found"}],
        },
    ]
    sb.instance.companies_read_only = True  # a subscription with native CRM sync
    ro = call(sb, http, "POST", sync, json={"input": [{"externalCompanyId": "ACC-9001"}]})
    assert ro["result"][0]["status"] == "skipped"
    assert ro["result"][0]["reasons"][0]["code"] == "1025"
    too_many = {"input": [{"externalCompanyId": f"A{i}"} for i in range(301)]}
    big = call(sb, http, "POST", sync, json=too_many)
    assert big["success"] is False and big["errors"][0]["code"] == "1003"


def test_marketorestpython_client_unmodified(sb: MarketoSandbox) -> None:
    mc = MarketoClient("123-ABC-456", sb.client_id, sb.client_secret)
    mc.host = sb.url  # the client builds https://{munchkin}.mktorest.com; point it here
    desc = mc.describe_company()
    assert desc[0]["dedupeFields"] == ["externalCompanyId"]
    rows = mc.get_companies("externalCompanyId", ["ACC-9012"], fields=FIELDS)
    assert rows == [NORTHWIND_DATA]
    result = mc.create_update_companies(
        [{"externalCompanyId": "ACC-9012", "industry": "software"}], action="updateOnly"
    )
    assert result == [{"seq": 0, "id": 9012, "status": "updated"}]
    assert sb.instance.companies[9012].values["industry"] == "software"
    seen = [(r.method, r.path, r.effective_method) for r in sb.requests]
    assert seen == [
        ("GET", "/identity/oauth/token", "GET"),
        ("GET", "/rest/v1/companies/describe.json", "GET"),
        ("POST", "/rest/v1/companies.json", "GET"),  # a form POST with _method=GET
        ("POST", "/rest/v1/companies.json", "POST"),
    ]


def test_marketorestpython_list_fields_are_read_whole(sb: MarketoSandbox) -> None:
    """The client's documented list form of `fields` reaches the sandbox as repeated
    parameters (`fields=email&fields=company`): read as one list, as Marketo reads it, not
    cut to its first field (found driving the sandbox with marketorestpython)."""
    mc = MarketoClient("123-ABC-456", sb.client_id, sb.client_secret)
    mc.host = sb.url
    lead = mc.get_lead_by_id(101, fields=["email", "company", "externalCompanyId"])
    assert lead == [
        {
            "id": 101,
            "email": "dana.whitfield@acme-analytics.com",
            "company": "Acme Analytics",
            "externalCompanyId": "ACC-9001",
        }
    ]
    many = mc.get_multiple_leads_by_filter_type("id", ["101", "102"], fields=["email", "company"])
    assert [sorted(r) for r in many] == [["company", "email", "id"]] * 2
    rows = mc.get_companies("externalCompanyId", ["ACC-9012"], fields=FIELDS.split(","))
    assert rows == [NORTHWIND_DATA]


def test_a_currency_that_is_no_number_is_refused(sb: MarketoSandbox) -> None:
    """`1e400` or `NaN` for a currency field is refused per record (1003), as Marketo refuses
    it; before, the sandbox kept it and then sent bare `Infinity`/`NaN`, which is no JSON."""
    mc = MarketoClient("123-ABC-456", sb.client_id, sb.client_secret)
    mc.host = sb.url
    result = mc.create_update_companies(
        [
            {"externalCompanyId": "ACC-9012", "annualRevenue": "1e400"},
            {"externalCompanyId": "ACC-9011", "annualRevenue": "NaN"},
            {"externalCompanyId": "ACC-9010", "annualRevenue": "2500000"},
        ],
        action="updateOnly",
    )
    assert [r["status"] for r in result] == ["skipped", "skipped", "updated"]
    assert {r["reasons"][0]["code"] for r in result[:2]} == {"1003"}
    assert sb.instance.companies[9010].values["annualRevenue"] == 2_500_000.0


def test_a_json_query_reads_an_external_company_id_with_a_comma_whole(
    sb: MarketoSandbox, http: requests.Session
) -> None:
    """`filterValues` is comma-separated, so `Acme, Inc.` cannot be asked for in it (the
    third-party client's query finds nothing); the lead database's JSON query form (a POST
    with `?_method=GET`, the values in `input`) reads it whole, and is a query, not a sync."""
    mc = MarketoClient("123-ABC-456", sb.client_id, sb.client_secret)
    mc.host = sb.url
    created = mc.create_update_companies(
        [{"externalCompanyId": "Acme, Inc.", "company": "Acme, Inc.", "website": "acme-inc.com"}]
    )
    assert created == [{"seq": 0, "id": 9014, "status": "created"}]
    assert mc.get_companies("externalCompanyId", ["Acme, Inc."]) == []  # read as Acme + Inc.
    q = "/rest/v1/companies.json"
    body = {
        "filterType": "dedupeFields",
        "fields": ["externalCompanyId", "company", "website"],
        "input": [{"externalCompanyId": "acme, inc."}, {"externalCompanyId": "ACC-9012"}],
    }
    got = call(sb, http, "POST", q, params={"_method": "GET"}, json=body)
    assert got["result"] == [
        {"seq": 0, "id": 9012, "externalCompanyId": "ACC-9012", "company": "Northwind Data",
         "website": "https://www.northwind-data.com"},
        {"seq": 1, "id": 9014, "externalCompanyId": "Acme, Inc.", "company": "Acme, Inc.",
         "website": "acme-inc.com"},
    ]  # fmt: skip
    assert len(sb.instance.companies) == 14  # nothing created or updated by the query
    assert sb.calls(q)[-1].effective_method == "GET"
    both = call(sb, http, "POST", q, params={"_method": "GET"},
                json={**body, "filterValues": "ACC-9012"})  # fmt: skip
    assert both["errors"] == [
        {"code": "1003", "message": "filterValues cannot be given with input"}
    ]
    other = call(sb, http, "POST", q, params={"_method": "GET"},
                 json={**body, "input": [{"company": "Globex"}]})  # fmt: skip
    assert other["errors"] == [
        {"code": "1003", "message": "Each input record needs 'externalCompanyId' and nothing else"}
    ]
    by_alias = call(sb, http, "GET", q, params={"filterType": "idField", "filterValues": "9012"})
    assert [c["externalCompanyId"] for c in by_alias["result"]] == ["ACC-9012"]
