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
        to the lead's company field for good: `companies_available` goes False."""
        out: list[CrmCompany] = []
        if not self.companies_available:
            return out
        ids = list(dict.fromkeys(company_ids))
        for i in range(0, len(ids), MAX_BATCH):
            try:
                data = self._call(
                    "companies.get",
                    "GET",
                    "/rest/v1/companies.json",
                    params={
                        "filterType": "externalCompanyId",
                        "filterValues": ",".join(ids[i : i + MAX_BATCH]),
                        "fields": COMPANY_FIELDS_READ,
                    },
                )
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
            for rec in data.get("result") or []:
                if not isinstance(rec, dict) or not rec.get("externalCompanyId"):
                    continue
                out.append(_company(rec))
        return out


def _company(rec: dict[str, Any]) -> CrmCompany:
    """One company record. Its `website` reads as an e-mail address's domain
    (`company_domain`: `https://www.Acme.com/about` → `acme.com`); a website, employee count
    or revenue that cannot be read (`lots`, `NaN`, `1e400`, 10^20 employees) is read as blank,
    with a warning naming the company and the field (the lead's account stays the company)."""
    cid = str(rec["externalCompanyId"])
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
    )
