"""Account scoring on Marketo: company records (`companies.json`), read where the instance
offers them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connector.crm.base import CrmCompany
from connector.crm.marketo.calls import MAX_BATCH, MarketoApiError, MarketoCalls, log
from connector.crm.marketo.config import COMPANY_FIELDS_READ
from connector.enrich.email import company_domain
from connector.errors import InputError
from connector.parse import MAX_EMPLOYEES, MAX_REVENUE, opt_number, opt_text

# answers meaning "this instance offers no company records" (CRM-synced or disabled)
COMPANIES_UNAVAILABLE = frozenset({"404", "405", "605", "610"})


class CompaniesMixin(MarketoCalls):
    """Company records."""

    # -- accounts ------------------------------------------------------------------------
    def get_companies(self, company_ids: Sequence[str]) -> list[CrmCompany]:
        """Company records by `externalCompanyId` (companies.json, 300 a call). An instance
        that offers none (CRM-synced or disabled: 404/405/605/610) switches the account key
        to the lead's company field for good: `companies_available` goes False.

        `filterValues` is a comma-separated list, so an id a list cannot carry whole (a comma
        in it, or blanks around it: `Acme, Inc.`) is asked for apart, in the body of a POST
        with `_method=GET` (`{filterType: dedupeFields, input: [{externalCompanyId}]}`, the
        lead database's query form for keys a list cannot hold): one call for all such ids of
        the batch, the others read as before."""
        out: list[CrmCompany] = []
        if not self.companies_available:
            return out
        ids = list(dict.fromkeys(company_ids))
        listed = [i for i in ids if _listable(i)]
        apart = [i for i in ids if not _listable(i)]
        for i in range(0, len(listed), MAX_BATCH):
            params = {
                "filterType": "externalCompanyId",
                "filterValues": ",".join(listed[i : i + MAX_BATCH]),
                "fields": COMPANY_FIELDS_READ,
            }
            try:
                data = self._call("companies.get", "GET", "/rest/v1/companies.json", params=params)
            except MarketoApiError as exc:
                if exc.code in COMPANIES_UNAVAILABLE:
                    log.warning(
                        "Marketo offers no company records here (%s): accounts are keyed by "
                        "the lead's company field",
                        exc.code,
                    )
                    self.companies_available = False
                    return []
                raise
            out.extend(_companies(data))
        for i in range(0, len(apart), MAX_BATCH):
            out.extend(self._companies_apart(apart[i : i + MAX_BATCH]))
        return out

    def _companies_apart(self, ids: Sequence[str]) -> list[CrmCompany]:
        """Company records whose `externalCompanyId` a comma-separated list cannot carry,
        by a JSON query. An instance that refuses that query (an error that is not retried):
        a warning naming the ids; their leads are keyed by their company field, the other
        records are kept."""
        body = {
            "filterType": "dedupeFields",
            "fields": COMPANY_FIELDS_READ.split(","),
            "input": [{"externalCompanyId": i} for i in ids],
        }
        try:
            data = self._call(
                "companies.get",
                "POST",
                "/rest/v1/companies.json",
                params={"_method": "GET"},
                json_body=body,
            )
        except MarketoApiError as exc:
            shown = ", ".join(repr(i[:80]) for i in ids[:5])
            more = f" and {len(ids) - 5} more" if len(ids) > 5 else ""
            log.warning(
                "marketo companies %s%s: not read (%s; an externalCompanyId with a comma is "
                "asked for in a JSON query): their leads are keyed by their company field",
                shown,
                more,
                exc,
            )
            return []
        wanted = {i.lower() for i in ids}
        # only the records asked for: an answer of another kind (a sync's results) holds none
        return [c for c in _companies(data) if c.id.lower() in wanted]


def _listable(company_id: str) -> bool:
    """A value a comma-separated `filterValues` carries whole."""
    return "," not in company_id and company_id == company_id.strip()


def _companies(data: dict[str, Any]) -> list[CrmCompany]:
    return [
        _company(rec)
        for rec in data.get("result") or []
        if isinstance(rec, dict) and rec.get("externalCompanyId")
    ]


def _company(rec: dict[str, Any]) -> CrmCompany:
    """One company record. Its `website` reads as an e-mail address's domain
    (`company_domain`: `https://www.Acme.com/about` → `acme.com`); a website, employee count
    or revenue that cannot be read (`lots`, `NaN`, `1e400`, 10^20 employees) is read as blank,
    with a warning naming the company and the field (the lead's account stays the company).
    Marketo's own number for the record (`id`, what its UI shows beside the external id) is
    kept as the property `id`: `explain --account 17` finds the account by it."""
    cid = str(rec["externalCompanyId"])
    raw_id = rec.get("id")
    number = str(raw_id) if isinstance(raw_id, int | str) and not isinstance(raw_id, bool) else ""
    website = opt_text(rec.get("website"), "website")
    domain = company_domain(website) if website else None
    if website and domain is None:
        log.warning(
            "marketo company %s: website %r is not a domain: read as none", cid, website[:80]
        )
    numbers: dict[str, float | None] = {}
    for field, upper in (("numberOfEmployees", MAX_EMPLOYEES), ("annualRevenue", MAX_REVENUE)):
        try:
            numbers[field] = opt_number(rec.get(field), field, upper)
        except InputError as exc:
            log.warning("marketo company %s: %s: read as blank", cid, exc)
            numbers[field] = None
    employees, revenue = numbers["numberOfEmployees"], numbers["annualRevenue"]
    return CrmCompany(
        id=cid,
        domain=domain,
        name=opt_text(rec.get("company"), "company"),
        industry=opt_text(rec.get("industry"), "industry"),
        employee_count=int(employees) if employees is not None else None,
        annual_revenue_usd=revenue,
        country=opt_text(rec.get("billingCountry"), "billingCountry"),
        properties={"id": number} if number.isdigit() else None,
    )
