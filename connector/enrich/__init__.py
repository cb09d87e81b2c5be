"""Firmographic enrichment from an e-mail address.

e-mail → registrable domain → kind (corporate / free / disposable / invalid / missing) → for a
corporate domain, a `Company` from the provider chain (local file → People Data Labs → Apollo →
TLD heuristic), cached per registrable domain. Free and disposable mail never get a company.

Modules: `email` (parsing and the free/disposable lists), `providers` (the chain's members),
`cache` (the `CompanyCache` protocol and TTL policy), `enricher` (`Enricher`, `build_enricher`),
`cli` (`leadscore enrich EMAIL`), `countries` (ISO 3166 codes).
"""

from connector.enrich.cache import CacheEntry, CachePolicy, CompanyCache, InMemoryCompanyCache
from connector.enrich.email import ParsedEmail, load_domain_lists, parse_email
from connector.enrich.enricher import Enricher, Explanation, build_enricher, offline_enrich_fn
from connector.enrich.providers import Provider, ProviderResult

__all__ = [
    "CacheEntry",
    "CachePolicy",
    "CompanyCache",
    "Enricher",
    "Explanation",
    "InMemoryCompanyCache",
    "ParsedEmail",
    "Provider",
    "ProviderResult",
    "build_enricher",
    "load_domain_lists",
    "offline_enrich_fn",
    "parse_email",
]
