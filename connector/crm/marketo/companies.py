"""Account scoring on Marketo: company records (`companies.json`), read where the instance
offers them."""

from __future__ import annotations

from collections.abc import Sequence

from connector.crm.base import CrmCompany
from connector.crm.marketo.calls import MAX_BATCH, MarketoApiError, MarketoCalls, log
from connector.crm.marketo.config import COMPANY_FIELDS_READ
from connector.parse import opt_text

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
                employees = rec.get("numberOfEmployees")
                revenue = rec.get("annualRevenue")
                website = str(rec.get("website") or "").lower()
                host = website.removeprefix("https://").removeprefix("http://")
                domain = host.removeprefix("www.").split("/", 1)[0] or None
                out.append(
                    CrmCompany(
                        id=str(rec["externalCompanyId"]),
                        domain=domain,
                        name=opt_text(rec.get("company"), "company"),
                        industry=opt_text(rec.get("industry"), "industry"),
                        employee_count=int(employees) if isinstance(employees, int) else None,
                        annual_revenue_usd=float(revenue)
                        if isinstance(revenue, int | float) and not isinstance(revenue, bool)
                        else None,
                        country=opt_text(rec.get("billingCountry"), "billingCountry"),
                    )
                )
        return out
