"""The HubSpot sandbox's companies and associations v4, driven through the official SDK
unmodified (plain HTTP only where the SDK has no call): CRUD, batch, upsert, merge, search with
keyset paging, company properties, associations (primary moves, what bumps which date)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from hubspot import HubSpot
from hubspot.crm.associations.v4 import (
    AssociationSpec,
    BatchInputPublicAssociationMultiArchive,
    BatchInputPublicAssociationMultiPost,
    BatchInputPublicDefaultAssociationMultiPost,
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicAssociationMultiArchive,
    PublicAssociationMultiPost,
    PublicDefaultAssociationMultiPost,
    PublicFetchAssociationsBatchRequest,
    PublicObjectId,
)
from hubspot.crm.associations.v4.exceptions import ApiException as AssocApiException
from hubspot.crm.companies import (
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchReadInputSimplePublicObjectId,
    Filter,
    FilterGroup,
    PublicMergeInput,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInput,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectId,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.companies.exceptions import ApiException, NotFoundException
from hubspot.crm.properties import PropertyCreate

from connector.industries import HUBSPOT_INDUSTRIES
from connector.sandbox.base import parse_time_ms
from connector.sandbox.hubspot import HubSpotSandbox, load_portal

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
TOKEN = "test-token"
PORTAL: dict[str, Any] = {
    "portal_id": 4242,
    "anchor": "2026-11-01T12:00:00Z",
    "contacts": [
        {
            "id": str(i),
            "properties": {
                "email": email,
                "createdate": "2026-10-01T00:00:00Z",
                "lastmodifieddate": "2026-10-02T00:00:00Z",
            },
        }
        for i, email in ((1, "ann@acme.com"), (2, "bob@acme.com"), (3, "cy@globex.com"))
    ],
    "companies": [
        {
            "id": "9001",
            "properties": {
                "name": "Acme",
                "domain": "acme.com",
                "numberofemployees": "850",
                "industry": "COMPUTER_SOFTWARE",
                "createdate": "2026-09-01T00:00:00Z",
                "hs_lastmodifieddate": "2026-09-02T00:00:00Z",
            },
        },
        {
            "id": "9002",
            "properties": {
                "name": "Globex",
                "domain": "globex.co.uk",
                "createdate": "2026-09-01T00:00:00Z",
                "hs_lastmodifieddate": "2026-09-03T00:00:00Z",
            },
        },
    ],
    "associations": [
        {"contact": "1", "company": "9001", "primary": True},
        {"contact": "2", "company": "9001"},
        {"contact": "3", "company": "9002", "primary": True},
    ],
}
PRIMARY = {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": "Primary"}
UNLABELED = {"category": "HUBSPOT_DEFINED", "typeId": 279, "label": None}


@pytest.fixture
def sb() -> Iterator[HubSpotSandbox]:
    with HubSpotSandbox.start(PORTAL, token=TOKEN, now=NOW, search_rate_limit=10_000) as sandbox:
        yield sandbox
        assert sandbox.internal_errors == []


def sdk(sb: HubSpotSandbox) -> HubSpot:
    return HubSpot(access_token=TOKEN, host=sb.url)


def http(sb: HubSpotSandbox, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    return requests.request(method, sb.url + path, headers=headers, timeout=10, **kwargs)


def seen(sb: HubSpotSandbox) -> list[tuple[str, str, Any, int | None]]:
    return [(r.method, r.path, r.body, r.status) for r in sb.requests]


# -- companies --------------------------------------------------------------------------------


def test_fixture_companies_carry_their_roll_ups(sb: HubSpotSandbox) -> None:
    acme = sb.company("9001").properties
    assert acme["num_associated_contacts"] == "2"
    assert acme["hs_lastmodifieddate"] == "2026-09-02T00:00:00.000Z"  # loading bumps nothing
    assert sb.company("9002").properties["num_associated_contacts"] == "1"
    assert sb.contact("1").properties["associatedcompanyid"] == "9001"
    assert "associatedcompanyid" not in sb.contact("2").properties
    assert sb.contact("1").properties["lastmodifieddate"] == "2026-10-02T00:00:00.000Z"


def test_company_create_get_update_archive(sb: HubSpotSandbox) -> None:
    api = sdk(sb).crm.companies.basic_api
    created = api.create(
        SimplePublicObjectInputForCreate(
            properties={"name": "Initech", "domain": "initech.com", "numberofemployees": "300"}
        )
    )
    assert created.id == "9003"
    stamp = created.properties["hs_lastmodifieddate"]
    assert parse_time_ms(stamp) >= parse_time_ms("2026-11-01T12:00:00Z")
    assert created.properties == {
        "createdate": stamp,
        "domain": "initech.com",
        "hs_lastmodifieddate": stamp,
        "hs_object_id": "9003",
        "name": "Initech",
        "numberofemployees": "300",
    }
    got = api.get_by_id("9003", properties=["numberofemployees", "industry"])
    assert got.properties == {
        "createdate": stamp,
        "hs_lastmodifieddate": stamp,
        "hs_object_id": "9003",
        "industry": None,
        "numberofemployees": "300",
    }
    default = api.get_by_id("9001")
    assert default.properties == {
        "createdate": "2026-09-01T00:00:00.000Z",
        "domain": "acme.com",
        "hs_lastmodifieddate": "2026-09-02T00:00:00.000Z",
        "hs_object_id": "9001",
        "name": "Acme",
    }
    updated = api.update("9003", SimplePublicObjectInput(properties={"industry": "INTERNET"}))
    assert updated.properties["industry"] == "INTERNET"
    assert parse_time_ms(updated.properties["hs_lastmodifieddate"]) > parse_time_ms(stamp)
    assert "lastmodifieddate" not in sb.company("9003").properties
    with pytest.raises(ApiException) as exc:
        api.update("9003", SimplePublicObjectInput(properties={"num_associated_contacts": "5"}))
    assert exc.value.status == 400
    assert json.loads(exc.value.body)["message"].startswith("Property values were not valid")
    api.archive("9003")
    with pytest.raises(NotFoundException):
        api.get_by_id("9003")
    assert seen(sb) == [
        (
            "POST",
            "/crm/v3/objects/companies",
            {
                "properties": {
                    "name": "Initech",
                    "domain": "initech.com",
                    "numberofemployees": "300",
                }
            },
            201,
        ),
        ("GET", "/crm/v3/objects/companies/9003", None, 200),
        ("GET", "/crm/v3/objects/companies/9001", None, 200),
        ("PATCH", "/crm/v3/objects/companies/9003", {"properties": {"industry": "INTERNET"}}, 200),
        (
            "PATCH",
            "/crm/v3/objects/companies/9003",
            {"properties": {"num_associated_contacts": "5"}},
            400,
        ),
        ("DELETE", "/crm/v3/objects/companies/9003", None, 204),
        ("GET", "/crm/v3/objects/companies/9003", None, 404),
    ]
    assert sb.requests[1].query == {"properties": ["numberofemployees", "industry"]}


def test_company_ids_by_type_id_path_and_no_email_conflict(sb: HubSpotSandbox) -> None:
    r = http(sb, "GET", "/crm/v3/objects/0-2/9002")
    assert r.status_code == 200 and r.json()["properties"]["name"] == "Globex"
    # two companies may share a domain (HubSpot does not enforce it)
    for _ in range(2):
        r = http(sb, "POST", "/crm/v3/objects/companies", json={"properties": {"domain": "x.io"}})
        assert r.status_code == 201
    r = http(sb, "GET", "/crm/v3/objects/companies/9001", params={"idProperty": "domain"})
    assert r.status_code == 400
    assert r.json()["message"] == "idProperty 'domain' is not a unique-value property"


def test_company_batch_read_update_and_upsert(sb: HubSpotSandbox) -> None:
    client = sdk(sb)
    batch = client.crm.companies.batch_api
    read = batch.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[SimplePublicObjectId(id="9002"), SimplePublicObjectId(id="404")],
            properties=["name", "num_associated_contacts"],
            properties_with_history=[],
        )
    )
    assert [(o.id, o.properties["name"]) for o in read.results] == [("9002", "Globex")]
    assert read.results[0].properties["num_associated_contacts"] == "1"
    assert read.num_errors == 1
    assert read.errors[0].category == "OBJECT_NOT_FOUND"
    assert read.errors[0].context == {"ids": ["404"]}
    assert read.errors[0].message.startswith("Could not get some COMPANY objects")
    upd = batch.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[
                SimplePublicObjectBatchInput(id="9001", properties={"annualrevenue": "120000000"}),
                SimplePublicObjectBatchInput(id="9002", properties={"country": "GB"}),
            ]
        )
    )
    assert sorted((o.id, o.properties) for o in upd.results)[0][1]["annualrevenue"] == "120000000"
    assert sb.company("9002").properties["country"] == "GB"
    client.crm.properties.core_api.create(
        "companies",
        PropertyCreate(
            name="erp_id",
            label="ERP id",
            type="string",
            field_type="text",
            group_name="companyinformation",
            has_unique_value=True,
        ),
    )
    ups = batch.upsert(
        BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[
                SimplePublicObjectBatchInputUpsert(
                    id="E-1", id_property="erp_id", properties={"name": "Hooli"}
                )
            ]
        )
    )
    assert [(o.id, o.new, o.properties["erp_id"]) for o in ups.results] == [("9003", True, "E-1")]
    again = batch.upsert(
        BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[
                SimplePublicObjectBatchInputUpsert(
                    id="E-1", id_property="erp_id", properties={"domain": "hooli.io"}
                )
            ]
        )
    )
    assert [(o.id, o.new) for o in again.results] == [("9003", False)]
    assert sb.company("9003").properties["domain"] == "hooli.io"
    assert [(r.method, r.path, r.status) for r in sb.requests] == [
        ("POST", "/crm/v3/objects/companies/batch/read", 207),
        ("POST", "/crm/v3/objects/companies/batch/update", 200),
        ("POST", "/crm/v3/properties/companies", 201),
        ("POST", "/crm/v3/objects/companies/batch/upsert", 200),
        ("POST", "/crm/v3/objects/companies/batch/upsert", 200),
    ]
    assert sb.requests[3].body == {
        "inputs": [{"idProperty": "erp_id", "id": "E-1", "properties": {"name": "Hooli"}}]
    }


def test_company_search_keyset_paging_and_cursor(sb: HubSpotSandbox) -> None:
    client = sdk(sb)
    for i in range(5):
        client.crm.companies.basic_api.create(
            SimplePublicObjectInputForCreate(properties={"name": f"Co {i}", "domain": f"c{i}.io"})
        )
    search = client.crm.companies.search_api
    pages: list[list[str]] = []
    last = "0"
    for _ in range(10):  # bounded
        page = search.do_search(
            PublicObjectSearchRequest(
                filter_groups=[
                    FilterGroup(
                        filters=[Filter(property_name="hs_object_id", operator="GT", value=last)]
                    )
                ],
                sorts=["hs_object_id"],
                properties=["name"],
                limit=3,
            )
        )
        if not page.results:
            break
        pages.append([o.id for o in page.results])
        last = page.results[-1].id
    assert pages == [["9001", "9002", "9003"], ["9004", "9005", "9006"], ["9007"]]
    # incremental cursor on hs_lastmodifieddate (epoch ms accepted)
    since = parse_time_ms("2026-09-02T12:00:00Z")
    found = search.do_search(
        PublicObjectSearchRequest(
            filter_groups=[
                FilterGroup(
                    filters=[
                        Filter(property_name="hs_lastmodifieddate", operator="GT", value=str(since))
                    ]
                )
            ],
            sorts=[{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
            limit=200,
        )
    )
    assert [o.id for o in found.results] == ["9002", "9003", "9004", "9005", "9006", "9007"]
    assert found.total == 6
    with pytest.raises(ApiException) as exc:
        search.do_search(PublicObjectSearchRequest(filter_groups=[], limit=201))
    assert exc.value.status == 400
    r = http(sb, "POST", "/crm/v3/objects/companies/search", json={"query": "globex"})
    assert [o["id"] for o in r.json()["results"]] == ["9002"]


def test_company_merge_returns_survivor_and_moves_associations(sb: HubSpotSandbox) -> None:
    client = sdk(sb)
    survivor = client.crm.companies.basic_api.merge(
        PublicMergeInput(primary_object_id="9001", object_id_to_merge="9002")
    )
    assert survivor.id == "9001"
    assert survivor.properties["hs_merged_object_ids"] == "9002"
    assert client.crm.companies.basic_api.get_by_id("9002").id == "9001"
    assoc = client.crm.associations.v4.basic_api.get_page("companies", "9001", "contacts")
    assert [(a.to_object_id, [t.type_id for t in a.association_types]) for a in assoc.results] == [
        ("1", [2, 280]),
        ("2", [280]),
        ("3", [2, 280]),
    ]
    assert sb.contact("3").properties["associatedcompanyid"] == "9001"
    assert sb.company("9001").properties["num_associated_contacts"] == "3"
    r = http(
        sb,
        "POST",
        "/crm/v3/objects/companies/merge",
        json={"primaryObjectId": "9001", "objectIdToMerge": "9002"},
    )
    assert r.status_code == 400
    assert r.json()["message"] == ("Cannot merge 9002 into 9001: they are already the same company")


def test_company_properties_and_groups(sb: HubSpotSandbox) -> None:
    props = sdk(sb).crm.properties
    names = [p.name for p in props.core_api.get_all("companies").results]
    assert names == [
        "name",
        "domain",
        "hs_additional_domains",
        "numberofemployees",
        "industry",
        "annualrevenue",
        "country",
        "city",
        "phone",
        "website",
        "lifecyclestage",
        "hubspot_owner_id",
        "createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
        "hs_merged_object_ids",
        "num_associated_contacts",
    ]
    last = props.core_api.get_by_name("companies", "hs_lastmodifieddate")
    assert (last.type, last.modification_metadata.read_only_value) == ("datetime", True)
    groups = [g.name for g in props.groups_api.get_all("companies").results]
    assert groups == ["companyinformation", "sales_properties"]
    contact_props = {p.name for p in props.core_api.get_all("contacts").results}
    assert "associatedcompanyid" in contact_props and "domain" not in contact_props
    r = http(sb, "GET", "/crm/v3/properties/companies/email")
    assert r.status_code == 404
    assert r.json()["message"] == "Unable to find property named 'email' for object type COMPANY"


def test_company_industry_is_hubspot_s_dropdown_of_industry_codes(sb: HubSpotSandbox) -> None:
    """`GET /crm/v3/properties/companies/industry` as HubSpot answers it: an enumeration
    shown as a select, whose options are the industry codes with their labels in order (a
    contact's `industry` stays a text property, as in HubSpot)."""
    props = sdk(sb).crm.properties.core_api
    industry = props.get_by_name("companies", "industry")
    assert (industry.type, industry.field_type, industry.label) == (
        "enumeration",
        "select",
        "Industry",
    )
    assert industry.hubspot_defined is True
    assert industry.modification_metadata.read_only_definition is True
    options = [o.to_dict() for o in industry.options]
    assert len(options) == 147
    assert options[0] == {
        "label": "Accounting",
        "value": "ACCOUNTING",
        "display_order": 0,
        "hidden": False,
        "description": None,
    }
    by_value = {o["value"]: o for o in options}
    assert by_value["COMPUTER_SOFTWARE"]["label"] == "Computer Software"
    assert by_value["INFORMATION_TECHNOLOGY_AND_SERVICES"]["label"] == (
        "Information Technology and Services"
    )
    assert by_value["HOSPITAL_HEALTH_CARE"]["label"] == "Hospital & Health Care"
    assert [(o["value"], o["label"], o["display_order"]) for o in options] == [
        (value, label, i) for i, (value, label) in enumerate(HUBSPOT_INDUSTRIES)
    ]
    contact = props.get_by_name("contacts", "industry")
    assert (contact.type, contact.field_type, contact.options) == ("string", "text", [])


def test_company_industry_takes_a_code_and_refuses_free_text(sb: HubSpotSandbox) -> None:
    """The official SDK: a company created with `COMPUTER_SOFTWARE` reads it back; one created
    with "financial services" is refused with HubSpot's INVALID_OPTION answer (nothing is
    created); a batch update with one bad value answers 207 and writes only the good one."""
    api = sdk(sb).crm.companies
    created = api.basic_api.create(
        SimplePublicObjectInputForCreate(
            properties={"name": "Initech", "domain": "initech.com", "industry": "COMPUTER_SOFTWARE"}
        )
    )
    assert created.properties["industry"] == "COMPUTER_SOFTWARE"
    got = api.basic_api.get_by_id(created.id, properties=["industry"])
    assert got.properties["industry"] == "COMPUTER_SOFTWARE"
    with pytest.raises(ApiException) as exc:
        api.basic_api.create(
            SimplePublicObjectInputForCreate(
                properties={"name": "Vandelay", "industry": "financial services"}
            )
        )
    assert exc.value.status == 400
    body = json.loads(exc.value.body)
    options = ", ".join(sorted(value for value, _ in HUBSPOT_INDUSTRIES))
    problem = f"financial services was not one of the allowed options: [{options}]"
    detail = [
        {
            "isValid": False,
            "message": problem,
            "error": "INVALID_OPTION",
            "name": "industry",
            "localizedErrorMessage": problem,
            "portalId": 4242,
        }
    ]
    assert body == {
        "status": "error",
        "message": "Property values were not valid: " + json.dumps(detail, separators=(",", ":")),
        "correlationId": body["correlationId"],
        "category": "VALIDATION_ERROR",
    }
    assert sorted(c.id for c in sb.portal.companies.values()) == ["9001", "9002", created.id]
    batch = http(
        sb,
        "POST",
        "/crm/v3/objects/companies/batch/update",
        json={
            "inputs": [
                {"id": "9001", "properties": {"industry": "INTERNET"}},
                {"id": "9002", "properties": {"industry": "Financial Services"}},
            ]
        },
    )
    assert batch.status_code == 207
    answer = batch.json()
    assert [r["id"] for r in answer["results"]] == ["9001"]
    assert answer["numErrors"] == 1
    error = answer["errors"][0]
    assert (error["category"], error["context"]) == (
        "INVALID_OPTION",
        {"ids": ["9002"], "propertyName": ["industry"]},
    )
    assert error["errors"] == [
        {
            "message": f"Financial Services was not one of the allowed options: [{options}]",
            "code": "INVALID_OPTION",
            "context": {"propertyName": ["industry"]},
        }
    ]
    assert sb.company("9001").properties["industry"] == "INTERNET"
    assert "industry" not in sb.company("9002").properties


def test_a_fixture_company_with_free_text_industry_is_refused() -> None:
    """A fixture can hold no value a client could not have written: free text in `industry`
    stops the load, naming the company and the property."""
    portal = json.loads(json.dumps(PORTAL))
    portal["companies"][1]["properties"]["industry"] = "financial services"
    with pytest.raises(ValueError) as exc:
        load_portal(portal, now=NOW)
    assert str(exc.value).startswith(
        "fixture company 9002: industry: financial services was not one of the allowed "
        "options: [ACCOUNTING, AIRLINES_AVIATION, "
    )


# -- associations v4 --------------------------------------------------------------------------


def test_get_page_lists_primary_and_unlabeled(sb: HubSpotSandbox) -> None:
    v4 = sdk(sb).crm.associations.v4
    page = v4.basic_api.get_page("contacts", "1", "companies")
    assert page.to_dict() == {
        "paging": None,
        "results": [
            {
                "association_types": [
                    {"category": "HUBSPOT_DEFINED", "label": "Primary", "type_id": 1},
                    {"category": "HUBSPOT_DEFINED", "label": None, "type_id": 279},
                ],
                "to_object_id": "9001",
            }
        ],
    }
    raw = http(sb, "GET", "/crm/v4/objects/0-1/2/associations/company").json()
    assert raw == {"results": [{"toObjectId": 9001, "associationTypes": [UNLABELED]}]}
    labels = http(sb, "GET", "/crm/v4/associations/contacts/companies/labels").json()
    assert labels == {"results": [PRIMARY, UNLABELED]}


def test_labeled_primary_moves_and_bumps_the_contact(sb: HubSpotSandbox) -> None:
    v4 = sdk(sb).crm.associations.v4
    before = parse_time_ms(sb.contact("1").properties["lastmodifieddate"])
    res = v4.basic_api.create(
        "contacts", "1", "companies", "9002", [AssociationSpec("HUBSPOT_DEFINED", 1)]
    )
    assert res.to_dict() == {
        "from_object_id": "1",
        "from_object_type_id": "0-1",
        "labels": ["Primary"],
        "to_object_id": "9002",
        "to_object_type_id": "0-2",
    }
    assert sb.requests[-1].method == "PUT"
    assert sb.requests[-1].path == "/crm/v4/objects/contacts/1/associations/companies/9002"
    assert sb.requests[-1].body == [
        {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}
    ]
    ann = sb.contact("1").properties
    assert ann["associatedcompanyid"] == "9002"
    assert parse_time_ms(ann["lastmodifieddate"]) > before
    page = v4.basic_api.get_page("contacts", "1", "companies")
    assert [(a.to_object_id, [t.type_id for t in a.association_types]) for a in page.results] == [
        ("9001", [279]),
        ("9002", [1, 279]),
    ]
    assert sb.company("9002").properties["num_associated_contacts"] == "2"
    assert parse_time_ms(sb.company("9002").properties["hs_lastmodifieddate"]) > parse_time_ms(
        "2026-09-03T00:00:00Z"
    )
    assert sb.company("9001").properties["num_associated_contacts"] == "2"  # still unlabeled
    # an incremental contact search sees the contact that moved company
    r = http(
        sb,
        "POST",
        "/crm/v3/objects/contacts/search",
        json={
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": "lastmodifieddate", "operator": "GT", "value": str(before)}
                    ]
                }
            ],
            "properties": ["associatedcompanyid"],
        },
    )
    assert [(c["id"], c["properties"]["associatedcompanyid"]) for c in r.json()["results"]] == [
        ("1", "9002")
    ]
    # removing the association removes the primary too
    v4.basic_api.archive("contacts", "1", "companies", "9002")
    assert sb.requests[-1].status == 204
    assert "associatedcompanyid" not in sb.contact("1").properties
    assert sb.company("9002").properties["num_associated_contacts"] == "1"


def test_unlabeled_association_does_not_bump_the_contact(sb: HubSpotSandbox) -> None:
    v4 = sdk(sb).crm.associations.v4
    stamp = sb.contact("2").properties["lastmodifieddate"]
    res = v4.basic_api.create_default("contacts", "2", "companies", "9002")
    assert res.to_dict()["results"] == [
        {
            "_from": {"id": "2"},
            "association_spec": {
                "association_category": "HUBSPOT_DEFINED",
                "association_type_id": 279,
            },
            "to": {"id": "9002"},
        }
    ]
    assert sb.requests[-1].path == "/crm/v4/objects/contacts/2/associations/default/companies/9002"
    assert sb.contact("2").properties["lastmodifieddate"] == stamp
    assert sb.company("9002").properties["num_associated_contacts"] == "2"


def test_batch_create_read_archive(sb: HubSpotSandbox) -> None:
    v4 = sdk(sb).crm.associations.v4
    created = v4.batch_api.create(
        "companies",
        "contacts",
        BatchInputPublicAssociationMultiPost(
            inputs=[
                PublicAssociationMultiPost(
                    _from=PublicObjectId(id="9002"),
                    to=PublicObjectId(id="2"),
                    types=[AssociationSpec("HUBSPOT_DEFINED", 2)],
                )
            ]
        ),
    )
    assert [(r.from_object_id, r.to_object_id, r.labels) for r in created.results] == [
        ("9002", "2", ["Primary"])
    ]
    assert sb.contact("2").properties["associatedcompanyid"] == "9002"
    assert sb.requests[-1].status == 201
    read = v4.batch_api.get_page(
        "companies",
        "contacts",
        BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[
                PublicFetchAssociationsBatchRequest(id="9001"),
                PublicFetchAssociationsBatchRequest(id="9002"),
                PublicFetchAssociationsBatchRequest(id="777"),
            ]
        ),
    )
    got = {
        r._from.id: [(t.to_object_id, [a.type_id for a in t.association_types]) for t in r.to]
        for r in read.results
    }
    assert got == {
        "9001": [("1", [2, 280]), ("2", [280])],
        "9002": [("2", [2, 280]), ("3", [2, 280])],
    }
    assert read.num_errors == 1 and read.errors[0].context == {"ids": ["777"]}
    assert sb.requests[-1].status == 207
    v4.batch_api.create_default(
        "contacts",
        "companies",
        BatchInputPublicDefaultAssociationMultiPost(
            inputs=[
                PublicDefaultAssociationMultiPost(
                    _from=PublicObjectId(id="3"), to=PublicObjectId(id="9001")
                )
            ]
        ),
    )
    assert sb.requests[-1].path == "/crm/v4/associations/contacts/companies/batch/associate/default"
    assert sb.company("9001").properties["num_associated_contacts"] == "3"
    v4.batch_api.archive(
        "contacts",
        "companies",
        BatchInputPublicAssociationMultiArchive(
            inputs=[
                PublicAssociationMultiArchive(
                    _from=PublicObjectId(id="1"), to=[PublicObjectId(id="9001")]
                )
            ]
        ),
    )
    assert sb.requests[-1].body == {"inputs": [{"from": {"id": "1"}, "to": [{"id": "9001"}]}]}
    assert sb.requests[-1].status == 204
    assert v4.basic_api.get_page("contacts", "1", "companies").results == []
    assert "associatedcompanyid" not in sb.contact("1").properties


def test_batch_read_pages_each_result_and_limits(sb: HubSpotSandbox) -> None:
    portal = sb.portal
    with portal.lock:
        for i in range(10, 512):
            portal.associate(
                portal.create_contact({"email": f"p{i}@acme.com"}), sb.company("9001"), set()
            )
    v4 = sdk(sb).crm.associations.v4
    first = v4.batch_api.get_page(
        "companies",
        "contacts",
        BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[
                PublicFetchAssociationsBatchRequest(id="9001"),
                PublicFetchAssociationsBatchRequest(id="9002"),
            ]
        ),
    )
    acme, globex = first.results
    assert len(acme.to) == 500 and acme.paging.next.after == acme.to[-1].to_object_id
    assert globex.paging is None
    rest = v4.batch_api.get_page(
        "companies",
        "contacts",
        BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[PublicFetchAssociationsBatchRequest(id="9001", after=acme.paging.next.after)]
        ),
    )
    assert len(rest.results[0].to) == 4 and rest.results[0].paging is None
    page = http(
        sb, "GET", "/crm/v4/objects/companies/9001/associations/contacts", params={"limit": 3}
    )
    assert [a["toObjectId"] for a in page.json()["results"]] == [1, 2, 4]  # 502 new: ids 4..505
    assert page.json()["paging"]["next"]["after"] == "4"
    too_many = {"inputs": [{"id": str(i)} for i in range(1001)]}
    r = http(sb, "POST", "/crm/v4/associations/companies/contacts/batch/read", json=too_many)
    assert r.status_code == 400
    assert r.json()["message"] == "Batch input has 1001 inputs; at most 1000 inputs are allowed"


def test_type_names_errors_and_archived_companies(sb: HubSpotSandbox) -> None:
    v4 = sdk(sb).crm.associations.v4
    with pytest.raises(AssocApiException) as exc:
        v4.basic_api.get_page("widgets", "1", "companies")
    assert exc.value.status == 400
    assert json.loads(exc.value.body)["message"] == "Unable to infer object type from: widgets"
    with pytest.raises(AssocApiException) as exc:
        v4.basic_api.create(
            "contacts", "1", "companies", "9002", [AssociationSpec("HUBSPOT_DEFINED", 2)]
        )
    assert exc.value.status == 400
    assert json.loads(exc.value.body)["message"] == (
        "HUBSPOT_DEFINED 2 is not a valid association type between contacts and companies"
    )
    with pytest.raises(AssocApiException) as exc:
        v4.basic_api.create_default("contacts", "1", "companies", "404")
    assert exc.value.status == 404
    sdk(sb).crm.companies.basic_api.archive("9001")
    page = v4.basic_api.get_page("0-1", "1", "0-2")
    assert page.results == []
    r = http(sb, "GET", "/crm/v4/objects/company/9001/associations/contact")
    assert r.status_code == 404
