"""Account scoring on HubSpot: the companies pull, batch reads, contact-to-company links
(associations v4, primary first). Company write-back is in `writes.py`, with the contacts'."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from connector.crm.base import (
    BadRecord,
    CompanyLinks,
    CompanyPage,
    CrmCompany,
)
from connector.crm.hubspot.calls import (
    MAX_PAGES,
    HubSpotCalls,
    _HttpError,
    _keyset_advance,
    _ms,
    _next_after,
    _numeric_id,
    _results,
    _rid,
    log,
)
from connector.crm.hubspot.properties import COMPANY_READ_PROPERTIES
from connector.enrich.email import company_domain
from connector.errors import (
    ConnectorError,
    InputError,
)
from connector.parse import MAX_EMPLOYEES, MAX_REVENUE, opt_number, opt_text, parse_timestamp
from connector.text import industry_words
from connector.types import company_record_id

PRIMARY_COMPANY_TYPE_ID = 1  # contact → company "Primary" (HUBSPOT_DEFINED); 279 is unlabeled
MAX_ASSOCIATION_INPUTS = 1000  # associations v4 batch read, since 2025-02-10


def _id_sort(cid: str) -> tuple[int, str]:
    return (int(cid), cid) if cid.isdigit() else (1 << 62, cid)


def _company_from(cid: str, props: Mapping[str, Any]) -> tuple[CrmCompany, list[str]]:
    """A company search/read result → CrmCompany and the ids merged into it."""
    if not isinstance(props, Mapping):
        raise InputError(f"properties: expected an object, got {type(props).__name__}")
    domain = _domain(cid, opt_text(props.get("domain"), "domain"))
    employees = opt_number(props.get("numberofemployees"), "numberofemployees", MAX_EMPLOYEES)
    revenue = opt_number(props.get("annualrevenue"), "annualrevenue", MAX_REVENUE)
    updated = props.get("hs_lastmodifieddate")
    merged_raw = opt_text(props.get("hs_merged_object_ids"), "hs_merged_object_ids") or ""
    merged = [m.strip() for m in merged_raw.split(";") if m.strip() and m.strip() != cid]
    if any(_numeric_id(m) is None for m in merged):
        raise InputError(f"hs_merged_object_ids: not a list of ids ({merged_raw[:60]!r})")
    company = CrmCompany(
        id=cid,
        domain=domain,
        name=opt_text(props.get("name"), "name"),
        industry=industry_words(opt_text(props.get("industry"), "industry")),
        employee_count=int(employees) if employees is not None else None,
        annual_revenue_usd=revenue,
        country=opt_text(props.get("country"), "country"),
        updated_at=parse_timestamp(updated, "hs_lastmodifieddate") if updated else None,
    )
    return company, merged


def _domain(cid: str, raw: str | None) -> str | None:
    """The company's `domain` as an e-mail address's domain reads (`company_domain`); a value
    that is no domain is read as none (the company is still read), with a warning."""
    if raw is None:
        return None
    domain = company_domain(raw)
    if domain is None:
        log.warning("hubspot company %s: domain %r is not a domain: read as none", cid, raw[:80])
    return domain


class CompaniesMixin(HubSpotCalls):
    """Companies, associations and company writes."""

    # -- accounts (companies, associations v4) -------------------------------------------
    def pull_companies(self, since: datetime | None, position: str | None) -> Iterator[CompanyPage]:
        """Companies modified since `since` (`hs_lastmodifieddate`), sorted by id and paged by
        keyset (`hs_object_id GT last`), like contacts: never past the 10,000-result cap."""
        from hubspot.crm.companies import Filter, FilterGroup, PublicObjectSearchRequest

        last_id = int(position) if position else None
        for _ in range(MAX_PAGES):
            filters = []
            if since is not None:
                filters.append(
                    Filter(property_name="hs_lastmodifieddate", operator="GTE", value=_ms(since))
                )
            if last_id is not None:
                filters.append(
                    Filter(property_name="hs_object_id", operator="GT", value=str(last_id))
                )
            request = PublicObjectSearchRequest(
                filter_groups=[FilterGroup(filters=filters)] if filters else [],
                sorts=["hs_object_id"],
                properties=COMPANY_READ_PROPERTIES,
                limit=self.page_size,
            )
            data = self._search_call("companies.search", self._company_search, request)
            results = _results(data, "companies.search")
            if not results:
                return
            page = CompanyPage(companies=[], position=None)
            ids: list[int] = []
            for pos, obj in enumerate(results, 1):
                raw_id = obj.get("id") if isinstance(obj, Mapping) else None
                num_id = _numeric_id(raw_id)
                if num_id is not None:
                    ids.append(num_id)
                try:
                    if not isinstance(obj, Mapping) or num_id is None:
                        raise InputError(f"id {raw_id!r} is not numeric")
                    company, merged = _company_from(str(num_id), obj.get("properties") or {})
                except InputError as exc:
                    rid = _rid(raw_id, pos)
                    page.bad.append(BadRecord(company_record_id(rid), f"company {rid}: {exc}", obj))
                    continue
                page.companies.append(company)
                page.companies.extend(CrmCompany(m, merged_into=company.id) for m in merged)
            last_id = _keyset_advance(last_id, ids, "company ")
            page.position = str(last_id)
            yield page
            if len(results) < self.page_size:
                return
        raise ConnectorError(f"company paging exceeded {MAX_PAGES} pages")

    def get_companies(self, company_ids: Sequence[str]) -> list[CrmCompany]:
        """Batch-read companies (100 a call); ids HubSpot no longer has are left out."""
        from hubspot.crm.companies import (
            BatchReadInputSimplePublicObjectId,
            SimplePublicObjectId,
        )

        out: list[CrmCompany] = []
        ids = [i for i in dict.fromkeys(company_ids) if _numeric_id(i) is not None]
        for i in range(0, len(ids), 100):
            body = BatchReadInputSimplePublicObjectId(
                inputs=[SimplePublicObjectId(id=c) for c in ids[i : i + 100]],
                properties=COMPANY_READ_PROPERTIES,
                properties_with_history=[],
            )
            try:
                data, _, _ = self._json_call(
                    "companies.batch_read",
                    partial(
                        self._company_batch.read_with_http_info,
                        body,
                        _request_timeout=self.timeout_s,
                        _preload_content=False,
                    ),
                )
            except _HttpError as exc:
                if exc.status == 404:
                    continue
                raise
            for obj in _results(data, "companies.batch_read"):
                if not isinstance(obj, Mapping) or _numeric_id(obj.get("id")) is None:
                    continue
                try:
                    company, _ = _company_from(str(obj["id"]), obj.get("properties") or {})
                except InputError as exc:
                    log.warning("hubspot company %s unreadable: %s", _rid(obj.get("id")), exc)
                    continue
                out.append(company)
        return out

    def company_links(self, contact_ids: Sequence[str]) -> dict[str, CompanyLinks]:
        """Each contact's companies by associations v4 batch read (1,000 inputs a call; a
        contact with more companies than one answer holds is read on by its `after`). The
        primary company is the association of typeId 1; a contact with none maps to no
        entry."""
        from hubspot.crm.associations.v4 import (
            BatchInputPublicFetchAssociationsBatchRequest,
            PublicFetchAssociationsBatchRequest,
        )

        found: dict[str, list[str]] = {}
        primary: dict[str, str] = {}
        pending: list[tuple[str, str | None]] = [
            (c, None) for c in dict.fromkeys(contact_ids) if _numeric_id(c) is not None
        ]
        for _ in range(MAX_PAGES):
            if not pending:
                break
            chunk, pending = (
                pending[:MAX_ASSOCIATION_INPUTS],
                pending[MAX_ASSOCIATION_INPUTS:],
            )
            body = BatchInputPublicFetchAssociationsBatchRequest(
                inputs=[PublicFetchAssociationsBatchRequest(id=c, after=a) for c, a in chunk]
            )
            data, _, _ = self._json_call(
                "associations.batch_read",
                partial(
                    self._assoc.get_page_with_http_info,
                    "contacts",
                    "companies",
                    body,
                    _request_timeout=self.timeout_s,
                    _preload_content=False,
                ),
            )
            asked = {c: a for c, a in chunk}
            for res in _results(data, "associations.batch_read"):
                if not isinstance(res, Mapping):
                    continue
                frm = res.get("from")
                cid = str(frm.get("id")) if isinstance(frm, Mapping) else None
                if cid is None or cid not in asked:
                    continue
                for to in res.get("to") or []:
                    if not isinstance(to, Mapping) or _numeric_id(to.get("toObjectId")) is None:
                        continue
                    company = str(to["toObjectId"])
                    ids = found.setdefault(cid, [])
                    if company not in ids:
                        ids.append(company)
                    types = to.get("associationTypes") or []
                    if any(
                        isinstance(t, Mapping)
                        and t.get("typeId") == PRIMARY_COMPANY_TYPE_ID
                        and t.get("category") == "HUBSPOT_DEFINED"
                        for t in types
                    ):
                        primary[cid] = company
                after = _next_after(res) if isinstance(res.get("paging"), Mapping) else None
                if after is not None and after != asked[cid]:
                    pending.append((cid, after))
            # a contact with no association is absent from the answer (or a 207 error)
        return {
            cid: CompanyLinks(primary.get(cid), tuple(sorted(ids, key=_id_sort)))
            for cid, ids in found.items()
        }
