"""HubSpot adapter on the official SDK (`hubspot-api-client`).

The only package that knows HubSpot's shapes. It
- sets an explicit timeout on every call, turns urllib3's own retry off, and maps every failure
  onto the project's error tree; `connector.retry` owns the retrying;
- paces itself from the `X-HubSpot-RateLimit-*` headers (typed APIs are called through their
  `*_with_http_info` variants to see them) and keeps search under its per-second limit;
- reads contacts by `lastmodifieddate >= since` sorted by `hs_object_id`, paging by keyset
  (`hs_object_id GT last`), so it never pages past the 10,000-result cap and fails loudly when
  a page does not advance;
- reads engagement as whole-portal streams (events API, marketing e-mail events), one call per
  page rather than one per contact;
- writes through batch update (<= 100) and reports a per-record outcome for 200 and 207.

The package splits it by concern: `properties` (scopes and every property declaration),
`schema` (init-properties, the startup check, stamps), `calls` (the SDK call wrapper, pacing,
retries, error classification), `contacts`, `events` (streams, e-mail events, roll-ups),
`companies` (companies, associations v4, company writes), `writes` (batch update, read-back),
and `adapter` (`HubSpotAdapter`, composed from their mixins). Import from
`connector.crm.hubspot`.
"""

from connector.crm.base import SCORE_PROPERTIES
from connector.crm.hubspot.adapter import HubSpotAdapter
from connector.crm.hubspot.properties import (
    ACCOUNT_SCOPES,
    CHECKED_NAMES,
    COMPANY_PROPERTY_DEFS,
    COMPANY_PROPERTY_NAMES,
    COMPANY_READ_PROPERTIES,
    CONTACT_ACCOUNT_DEFS,
    CONTACT_PROPERTIES,
    DEFAULT_PRIORITY_LABELS,
    GROUP,
    OPTIONAL_SCOPES,
    PRIORITY_PROPERTY,
    PROPERTY_DEFS,
    PROPERTY_NAMES,
    READ_PROPERTIES,
    REQUIRED_SCOPES,
    ROLLUP_PROPERTIES,
    priority_property,
    scopes_text,
)

__all__ = [
    "ACCOUNT_SCOPES",
    "CHECKED_NAMES",
    "COMPANY_PROPERTY_DEFS",
    "COMPANY_PROPERTY_NAMES",
    "COMPANY_READ_PROPERTIES",
    "CONTACT_ACCOUNT_DEFS",
    "CONTACT_PROPERTIES",
    "DEFAULT_PRIORITY_LABELS",
    "GROUP",
    "OPTIONAL_SCOPES",
    "PRIORITY_PROPERTY",
    "PROPERTY_DEFS",
    "PROPERTY_NAMES",
    "READ_PROPERTIES",
    "REQUIRED_SCOPES",
    "ROLLUP_PROPERTIES",
    "SCORE_PROPERTIES",
    "HubSpotAdapter",
    "priority_property",
    "scopes_text",
]
