"""Marketo adapter on `requests` (retries through `connector.retry`, i.e. tenacity).

The only package that knows Marketo's shapes. It
- authenticates with client credentials, caches the token until it expires (Marketo hands out
  the *same* token with its remaining lifetime until then), and on 601/602 drops it,
  authenticates once and retries once: a second rejection is an `AuthError`, never a loop;
- checks the envelope of every answer: an HTTP 200 with `success: false` is an error, mapped by
  its (string) code: 502/604/606/608/611/615/713/1029 retryable, 607 `QuotaExhaustedError`,
  601/602 re-auth, 603 `AuthError`, anything else `MarketoApiError`;
- discovers the instance's field names (describe) and activity type ids (types.json) instead of
  hard-coding them; our property names map onto configured fields, and the lifecycle stage
  goes to a status field (Marketo has no REST call for revenue stages);
- reads incrementally by paging token, never by createdAt: lead changes (then deleted leads)
  for contacts, activities for events; keeps paging until `moreResult` is false, through
  short and empty pages, with a bounded page count and a guard that fails loudly when the
  token stops advancing; a lead seen in an activity but not yet known is fetched (<= 300 ids a
  call) and travels with the events (`EventPage.contacts`);
- backfills large instances through the bulk export API, resumable by export id;
- writes through `POST leads.json` (updateOnly by id, <= 300 a call) with a per-record outcome.

Secrets (client id and secret, the access token) are `SecretStr`s and appear in no log
line, error message or repr; the identity call sends them in a form body, not in the URL.

The package splits it by concern: `config` (every field declaration, stage and activity type
maps, `MarketoConfig`), `fields` (describe, the startup check), `calls` (identity: the token;
the call wrapper, envelope check and error codes), `leads`, `activities`, `bulk` (export
backfills), `writes` (lead writes, read-back), `companies` and `adapter` (`MarketoAdapter`,
composed from their mixins, and `build_marketo_adapter`). Import from `connector.crm.marketo`.
"""

from connector.crm.marketo.adapter import MarketoAdapter, build_marketo_adapter
from connector.crm.marketo.bulk import JobStore
from connector.crm.marketo.calls import MarketoApiError
from connector.crm.marketo.config import (
    ACCOUNT_FIELDS,
    COMPANY_FIELDS_READ,
    DEFAULT_ACTIVITY_TYPES,
    DEFAULT_FIELD_MAP,
    DEFAULT_STAGE_VALUES,
    DEFAULT_STATUS_STAGES,
    PROFILE_FIELDS,
    FieldInfo,
    MarketoConfig,
)

__all__ = [
    "ACCOUNT_FIELDS",
    "COMPANY_FIELDS_READ",
    "DEFAULT_ACTIVITY_TYPES",
    "DEFAULT_FIELD_MAP",
    "DEFAULT_STAGE_VALUES",
    "DEFAULT_STATUS_STAGES",
    "PROFILE_FIELDS",
    "FieldInfo",
    "JobStore",
    "MarketoAdapter",
    "MarketoApiError",
    "MarketoConfig",
    "build_marketo_adapter",
]
