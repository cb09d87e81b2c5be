"""Marketo adapter on `requests` (retries through `connector.retry`, i.e. tenacity).

The only module that knows Marketo's shapes. It
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
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
from pydantic import SecretStr

from connector.crm.base import (
    CHECKED_PROPERTIES,
    CRM_MQL_DATE,
    STAGE,
    ApiStats,
    BadRecord,
    ContactPage,
    CrmCompany,
    EventPage,
)
from connector.crm.network import unreachable
from connector.crm.pacing import RollingPacer
from connector.errors import (
    AuthError,
    ConfigError,
    ConnectorError,
    InputError,
    MissingPropertiesError,
    QuotaExhaustedError,
    RetryableError,
)
from connector.parse import opt_text, parse_timestamp
from connector.retry import RetryPolicy, call_with_retry
from connector.text import clean_value
from connector.types import MQL, SQL, Contact, Event, WriteBack, WriteOutcome

if TYPE_CHECKING:
    from connector.settings import Settings

log = logging.getLogger(__name__)

# our property name -> Marketo REST field name ("" = not written)
DEFAULT_FIELD_MAP: dict[str, str] = {
    "score": "leadScore",
    "grade": "leadGrade__c",
    "fit_score": "",  # the demo instance has no fit-points field; map one to write it
    "reasons": "leadScoreReasons__c",
    "model_version": "leadScoreModel__c",
    "scored_at": "leadScoredAt__c",
    "mql_reason": "mqlReason__c",
    "profile_mismatch": "profileMismatch__c",
    "priority": "leadPriority__c",
    STAGE: "leadStatus",
    # account scoring (issue 21): the account's values on each lead (most instances cannot
    # write company records); checked only when account scoring is on
    "account_score": "accountScore__c",
    "account_grade": "accountGrade__c",
}
ACCOUNT_FIELDS = frozenset({"account_score", "account_grade"})
COMPANY_FIELDS_READ = "externalCompanyId,company,industry,numberOfEmployees,annualRevenue," + (
    "billingCountry,website"
)
# answers meaning "this instance offers no company records" (CRM-synced or disabled)
COMPANIES_UNAVAILABLE = frozenset({"404", "405", "605", "610"})
# our lifecycle stage -> the status value written to the stage field
DEFAULT_STAGE_VALUES: dict[str, str] = {
    "subscriber": "Subscriber",
    "lead": "Open",
    MQL: "MQL",
    SQL: "SQL",
    "opportunity": "Opportunity",
    "customer": "Customer",
}
# status value read from the stage field -> our lifecycle stage (case-insensitive). Values
# that are not here (e.g. "Disqualified") read as "other": a stage scoring never touches.
DEFAULT_STATUS_STAGES: dict[str, str] = {
    **{value: stage for stage, value in DEFAULT_STAGE_VALUES.items()},
    "New": "lead",
    "Nurture": "lead",
    "Recycled": "lead",
    "Sales Accepted": SQL,
    "Connected": SQL,
    "Qualified": SQL,
}
# Marketo activity type name -> our canonical event type
DEFAULT_ACTIVITY_TYPES: dict[str, str] = {
    "Visit Webpage": "page_view",
    "Fill Out Form": "form_submit",
    "Email Delivered": "email_delivered",
    "Email Bounced": "email_bounce",
    "Unsubscribe Email": "email_unsubscribe",
    "Open Email": "email_open",
    "Click Email": "email_click",
    "Webinar Attended": "webinar_attended",
    "Webinar Registered": "webinar_registered",
}
PROFILE_FIELDS: tuple[str, ...] = (
    "email",
    "firstName",
    "lastName",
    "title",
    "company",
    "country",
)
RETRYABLE_CODES = frozenset({"502", "604", "606", "608", "611", "615", "713", "1029"})
TOKEN_CODES = frozenset({"600", "601", "602"})
MAX_BATCH = 300
MAX_TYPE_IDS = 10
MAX_PAGES = 100_000  # a hard bound on any paging loop (30M records at 300 a page)
EXPORT_WINDOW = timedelta(days=30)  # Marketo allows 31; a day of margin for boundaries
LONG_QUERY = 4_000  # longer GET queries go as a form POST with _method=GET
SOURCE = "marketo"
KNOWN_IDS_MAX = 1_000_000


class MarketoApiError(ConnectorError):
    """Marketo said `success: false` with a code that is neither retryable nor auth/quota
    (1003 bad request, 1006 field not found, 609 invalid JSON, 610 not found, ...)."""

    def __init__(self, code: str, message: str, kind: str = "") -> None:
        where = f" ({kind})" if kind else ""
        super().__init__(f"Marketo error {code}: {message[:300]}{where}")
        self.code = code
        self.message = message


class _Rejected(RetryableError):
    """Marketo refused the call before doing anything (HTTP 429, 606 rate, 615 concurrency):
    a write it answered this way was not applied and may simply be sent again."""


class _TokenRejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message


class JobStore(Protocol):
    """Where a resumable job keeps its progress (`StateStore` implements it)."""

    def get_job(self, name: str) -> Mapping[str, Any] | None: ...

    def set_job(self, name: str, state: Mapping[str, Any]) -> None: ...

    def delete_job(self, name: str) -> bool: ...


@dataclass(frozen=True)
class MarketoConfig:
    """How our properties and stages map onto one Marketo instance."""

    field_map: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_FIELD_MAP))
    stage_values: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_STAGE_VALUES))
    status_stages: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_STATUS_STAGES))
    activity_types: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ACTIVITY_TYPES))
    status_field: str = "leadStatus"  # read into Contact.lead_status
    backfill_days: float = 365.0  # first run: read changes and activities this far back

    @classmethod
    def with_overrides(
        cls,
        *,
        field_map: Mapping[str, str] | None = None,
        stage_values: Mapping[str, str] | None = None,
        status_stages: Mapping[str, str] | None = None,
        activity_types: Mapping[str, str] | None = None,
        status_field: str | None = None,
        backfill_days: float | None = None,
    ) -> MarketoConfig:
        """Defaults merged with overrides (an override value "" removes a default entry)."""

        def merged(base: Mapping[str, str], over: Mapping[str, str] | None) -> dict[str, str]:
            out = dict(base)
            for k, v in (over or {}).items():
                out[k] = v
            return out

        return cls(
            field_map=merged(DEFAULT_FIELD_MAP, field_map),
            stage_values={k: v for k, v in merged(DEFAULT_STAGE_VALUES, stage_values).items() if v},
            status_stages={
                k: v for k, v in merged(DEFAULT_STATUS_STAGES, status_stages).items() if v
            },
            activity_types={
                k: v for k, v in merged(DEFAULT_ACTIVITY_TYPES, activity_types).items() if v
            },
            status_field=status_field or "leadStatus",
            backfill_days=365.0 if backfill_days is None else backfill_days,
        )

    @property
    def stage_field(self) -> str:
        return self.field_map.get(STAGE, "") or ""


@dataclass(frozen=True)
class FieldInfo:
    name: str
    data_type: str
    read_only: bool


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _next_reset(now: datetime) -> str:
    """Marketo's daily quota resets at midnight US Central."""
    try:
        tz: Any = ZoneInfo("America/Chicago")
    except ZoneInfoNotFoundError:  # pragma: no cover - no tz database
        tz = timezone(timedelta(hours=-6))
    local = now.astimezone(tz)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return _iso(midnight)


# Activity types read (when configured in LEADSCORE_MARKETO_ACTIVITY_TYPES) as status changes
STATUS_CHANGE_TYPES = frozenset({"change data value", "change status in progression"})


def _squash(name: str) -> str:
    """ "Lead Status" and "leadStatus" -> "leadstatus": a field's display and REST names."""
    return re.sub(r"[\s_]+", "", name).lower()


def _normalize_status(value: str | None) -> str | None:
    """ "Bad Timing" -> "BAD_TIMING": the model's lead-status lists use that spelling."""
    if not value:
        return None
    return re.sub(r"[\s\-]+", "_", value.strip()).upper() or None


def _share(watched: Any, total: Any) -> float | None:
    try:
        w, t = float(watched), float(total)
    except (TypeError, ValueError):
        return None
    if t <= 0 or w != w or t != t:
        return None
    return max(0.0, min(1.0, w / t))


class MarketoAdapter:
    name = "marketo"

    def __init__(
        self,
        base_url: str,
        client_id: SecretStr,
        client_secret: SecretStr,
        *,
        config: MarketoConfig | None = None,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        page_size: int = MAX_BATCH,
        write_batch: int = MAX_BATCH,
        rate_limit: int = 100,
        rate_window_s: float = 20.0,
        pacer: RollingPacer | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_pages: int = MAX_PAGES,
        max_stalled_pages: int = 3,
        max_empty_pages: int = 10_000,
        export_poll_s: float = 10.0,
        export_max_polls: int = 2_000,
        export_chunk_bytes: int = 8 * 1024 * 1024,
        session: requests.Session | None = None,
        accounts: bool = False,
    ) -> None:
        if not base_url:
            raise ConfigError("LEADSCORE_MARKETO_BASE_URL is not set")
        # account scoring: the account fields are checked and written, `externalCompanyId`
        # read with leads (where the instance has it), company records read where offered
        self.accounts = accounts
        self.companies_available = accounts
        for label, secret in (("CLIENT_ID", client_id), ("CLIENT_SECRET", client_secret)):
            if secret is None or not secret.get_secret_value():
                raise ConfigError(f"LEADSCORE_MARKETO_{label} is not set")
        self.base_url = re.sub(r"/(rest|identity)/?$", "", base_url.rstrip("/"))
        self._client_id = client_id
        self._client_secret = client_secret
        self.config = config or MarketoConfig()
        self.timeout_s = timeout_s
        self.retry_policy = retry or RetryPolicy()
        self.page_size = max(1, min(page_size, MAX_BATCH))
        self.write_batch = max(1, min(write_batch, MAX_BATCH))
        self.rate_window_s = rate_window_s
        self.stats = ApiStats()
        self._sleep = sleep
        self._clock = clock
        self._now = now
        self.pacer = pacer or RollingPacer(
            max_calls=rate_limit, interval_s=rate_window_s, sleep=sleep, clock=clock
        )
        self.max_pages = max_pages
        self.max_stalled_pages = max(1, max_stalled_pages)
        self.max_empty_pages = max_empty_pages
        self.export_poll_s = export_poll_s
        self.export_max_polls = export_max_polls
        self.export_chunk_bytes = max(1024, export_chunk_bytes)
        self._http = session or requests.Session()
        self.long_query = LONG_QUERY
        self._auth_lock = threading.Lock()
        self._token: SecretStr | None = None
        self._token_expires_at = 0.0
        self._refresh_at = 0.0
        self._fields: dict[str, FieldInfo] | None = None
        self._types: dict[int, tuple[str, str]] | None = None
        self._known: set[str] = set()  # lead ids already handed out as Contacts (bounded)
        self._status_stages = {k.lower(): v for k, v in self.config.status_stages.items()}
        self._warned_statuses: set[str] = set()

    def __repr__(self) -> str:
        return (
            f"MarketoAdapter(base_url={self.base_url!r}, client_id=SecretStr('**********'), "
            "client_secret=SecretStr('**********'))"
        )

    def close(self) -> None:
        self._http.close()

    # -- auth ------------------------------------------------------------------------------
    def _access_token(self) -> str:
        with self._auth_lock:
            now = self._clock()
            if self._token is None or now >= self._refresh_at:
                self._authenticate(now)
            assert self._token is not None
            return self._token.get_secret_value()

    def _authenticate(self, now: float) -> None:
        self.stats.count("identity")
        try:
            r = self._http.post(
                f"{self.base_url}/identity/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": self._client_id.get_secret_value(),
                    "client_secret": self._client_secret.get_secret_value(),
                },
                timeout=self.timeout_s,
            )
        except requests.RequestException as exc:
            raise unreachable("Marketo", self.base_url, exc, "identity") from None
        if r.status_code >= 500:
            raise RetryableError(f"Marketo identity endpoint error HTTP {r.status_code}")
        try:
            body = r.json()
        except ValueError:
            body = None
        if r.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
            reason = body.get("error") if isinstance(body, dict) else None
            raise AuthError(
                f"Marketo refused the client credentials (HTTP {r.status_code}"
                + (f", {reason}" if isinstance(reason, str) else "")
                + "): check LEADSCORE_MARKETO_CLIENT_ID / LEADSCORE_MARKETO_CLIENT_SECRET"
            )
        token = str(body["access_token"])
        try:
            expires_in = max(0.0, float(body.get("expires_in", 3600)))
        except (TypeError, ValueError):
            expires_in = 0.0
        same = self._token is not None and self._token.get_secret_value() == token
        self._token = SecretStr(token)
        self._token_expires_at = now + expires_in
        # Asked early, Marketo returns the same token with what is left of its life: then use
        # it to the end instead of asking again on every call.
        margin = 0.0 if same else min(60.0, expires_in * 0.1)
        self._refresh_at = self._token_expires_at - margin

    def _drop_token(self, token: str) -> None:
        with self._auth_lock:
            if self._token is not None and self._token.get_secret_value() == token:
                self._token = None

    # -- the one place a call is made ------------------------------------------------------
    def _call(
        self,
        kind: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        raw: bool = False,
    ) -> Any:
        """One logical call: auth, envelope check, 601/602 handled once, retries by policy.
        Returns the envelope dict (or the `requests.Response` when `raw`)."""
        return call_with_retry(
            lambda: self._authed(kind, method, path, params, json_body, headers, raw),
            self.retry_policy,
            sleep=self._sleep,
            on_retry=self._on_retry(kind),
        )

    def _on_retry(self, kind: str) -> Callable[[RetryableError, int], None]:
        def on_retry(exc: RetryableError, attempt_no: int) -> None:
            self.stats.retries += 1
            log.info("marketo %s retry %d: %s", kind, attempt_no, exc)

        return on_retry

    def _authed(
        self,
        kind: str,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        raw: bool = False,
    ) -> Any:
        """One attempt with a token; a token Marketo rejects (601/602) is renewed once."""
        token = self._access_token()
        try:
            return self._once(kind, method, path, token, params, json_body, headers, raw)
        except _TokenRejected:
            self._drop_token(token)
        token = self._access_token()  # one re-auth ...
        try:
            return self._once(kind, method, path, token, params, json_body, headers, raw)
        except _TokenRejected as second:  # ... and one retry, never a loop
            self._drop_token(token)
            raise AuthError(
                f"Marketo rejected a freshly issued access token ({second.code}: "
                f"{second.message}); stopping instead of re-authenticating in a loop"
            ) from None

    def _once(
        self,
        kind: str,
        method: str,
        path: str,
        token: str,
        params: Mapping[str, str] | None,
        json_body: Any,
        headers: Mapping[str, str] | None,
        raw: bool,
    ) -> Any:
        self.pacer.acquire()
        self.stats.count(kind)
        hdrs = {"Authorization": f"Bearer {token}", **(headers or {})}
        url = f"{self.base_url}{path}"
        data: dict[str, str] | None = None
        query = dict(params or {})
        if method == "GET" and sum(len(k) + len(v) + 2 for k, v in query.items()) > self.long_query:
            method, data, query = "POST", {"_method": "GET", **query}, {}
        try:
            r = self._http.request(
                method,
                url,
                params=query or None,
                json=json_body,
                data=data,
                headers=hdrs,
                timeout=self.timeout_s,
            )
        except requests.RequestException as exc:  # refused, DNS, TLS, timeout, dropped
            raise unreachable("Marketo", self.base_url, exc, kind) from None
        status = r.status_code
        if status == 429:
            self.stats.rate_limited += 1
            wait = self.rate_window_s / 5
            self.pacer.backoff(wait)
            raise _Rejected(f"Marketo HTTP 429 ({kind})", wait)
        if status >= 500:
            raise RetryableError(f"Marketo server error HTTP {status} ({kind})")
        if status in (401, 403):
            raise AuthError(f"Marketo refused the request (HTTP {status}, {kind})")
        ctype = r.headers.get("Content-Type", "")
        if raw and status in (200, 206) and "json" not in ctype.lower():
            return r
        try:
            body = r.json()
        except ValueError:
            if status != 200:
                raise MarketoApiError(str(status), f"HTTP {status}", kind) from None
            raise RetryableError(f"Marketo sent an unreadable answer ({kind})") from None
        return self._check(kind, body)

    def _check(self, kind: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or "success" not in body:
            raise RetryableError(f"Marketo answered without an envelope ({kind})")
        if body.get("success") is True:
            for warning in body.get("warnings") or []:
                log.warning("marketo %s warning: %s", kind, str(warning)[:300])
            return body
        errors = [
            (str(e.get("code", "")), str(e.get("message", "")))
            for e in body.get("errors") or []
            if isinstance(e, dict)
        ] or [("", "success: false without errors")]
        for code, message in errors:
            if code in TOKEN_CODES:
                raise _TokenRejected(code, message)
        for code, message in errors:
            if code == "607":
                self.stats.rate_limited += 1
                reset = _next_reset(self._now())
                raise QuotaExhaustedError(
                    f"Marketo daily API quota reached (607: {message}); the run stops and "
                    f"resumes after the reset at midnight US Central ({reset})",
                    resets_at=reset,
                )
        code, message = errors[0]
        if code in ("606", "615"):
            self.stats.rate_limited += 1
            wait = self.rate_window_s / (5 if code == "606" else 20)  # 4 s / 1 s by default
            self.pacer.backoff(wait)
            raise _Rejected(f"Marketo {code}: {message} ({kind})", wait)
        if code in RETRYABLE_CODES:
            raise RetryableError(f"Marketo {code}: {message} ({kind})")
        if code == "603":
            raise AuthError(
                f"Marketo denied access (603: {message}, {kind}): check the API user's role"
            )
        raise MarketoApiError(code, message, kind)

    # -- fields ----------------------------------------------------------------------------
    def describe(self, refresh: bool = False) -> dict[str, FieldInfo]:
        """The instance's lead fields by REST name (cached)."""
        if self._fields is None or refresh:
            data = self._call("leads.describe", "GET", "/rest/v1/leads/describe.json")
            fields: dict[str, FieldInfo] = {}
            for item in data.get("result") or []:
                rest = item.get("rest") if isinstance(item, dict) else None
                if not isinstance(rest, dict) or not rest.get("name"):
                    continue
                name = str(rest["name"])
                fields[name] = FieldInfo(
                    name, str(item.get("dataType", "string")), bool(rest.get("readOnly"))
                )
            self._fields = fields
        return self._fields

    def _write_fields(self) -> dict[str, str]:
        return {
            ours: f
            for ours, f in self.config.field_map.items()
            if f and (self.accounts or ours not in ACCOUNT_FIELDS)
        }

    def check_properties(self) -> None:
        fields = self.describe(refresh=True)
        missing: list[str] = []
        read_only: list[str] = []
        for ours, fname in sorted(self._write_fields().items()):
            info = fields.get(fname)
            if info is None:
                missing.append(f"{fname} (for {ours})")
            elif info.read_only:
                read_only.append(f"{fname} (for {ours})")
        status = self.config.status_field
        if status and status not in fields and f"{status} (for lead status)" not in missing:
            missing.append(f"{status} (for lead status)")
        problems: list[str] = []
        if missing:
            problems.append("the Marketo instance lacks lead fields " + ", ".join(missing))
        if read_only:
            problems.append("these lead fields are read-only: " + ", ".join(read_only))
        if problems:
            raise MissingPropertiesError(
                "; ".join(problems)
                + ". Marketo has no REST call to create lead fields: create them in Admin > "
                "Field Management, or map ours onto existing fields with "
                'LEADSCORE_MARKETO_FIELD_MAP (JSON, e.g. {"grade": "myGrade__c"}; "" skips one)',
                missing + read_only,
                "create them in Admin > Field Management (or map them with "
                "LEADSCORE_MARKETO_FIELD_MAP)",
            )

    def ensure_properties(self) -> list[str]:
        """Marketo lead fields cannot be created through the REST API, so nothing is created:
        this checks that the mapped fields exist (ConfigError naming the missing ones, with
        what to do) and returns []."""
        log.info(
            "Marketo lead fields cannot be created over REST; checking the mapped fields exist"
        )
        self.check_properties()
        return []

    # -- leads -----------------------------------------------------------------------------
    def _read_fields(self) -> list[str]:
        names = [*PROFILE_FIELDS, "createdAt", "updatedAt"]
        for extra in (self.config.stage_field, self.config.status_field):
            if extra and extra not in names:
                names.append(extra)
        if self.accounts and "externalCompanyId" in self.describe():
            names.append("externalCompanyId")  # the lead's company record
        return names

    def _checked_fields(self) -> dict[str, str]:
        """Our score properties mapped onto this instance: Marketo field → our name. Read with
        the leads and watched for changes, so a hand edit is seen and written again."""
        fmap = self.config.field_map
        return {fmap[p]: p for p in CHECKED_PROPERTIES if fmap.get(p)}

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

    def _stage_of(self, value: str | None) -> str | None:
        if not value:
            return None
        stage = self._status_stages.get(value.strip().lower())
        if stage is None:
            if value not in self._warned_statuses:
                self._warned_statuses.add(value)
                log.warning(
                    "Marketo status %r maps to no lifecycle stage: read as 'other' (never "
                    "changed by scoring); map it with LEADSCORE_MARKETO_STATUS_STAGES",
                    value,
                )
            return "other"
        return stage

    def _contact_from(self, lead: Mapping[str, Any], *, ours: bool = False) -> Contact:
        """The contact of a lead record; `ours`: the record was read with our score fields,
        whose values (null: empty) go into `crm_values`; a field the record lacks is not
        compared."""
        lid = opt_text(lead.get("id"), "id")
        if lid is None:
            raise InputError("id: missing")
        stage_raw = (
            opt_text(lead.get(self.config.stage_field), self.config.stage_field)
            if self.config.stage_field
            else None
        )
        status_raw = opt_text(lead.get(self.config.status_field), self.config.status_field)
        created = lead.get("createdAt")
        updated = lead.get("updatedAt")
        checked = self._checked_fields() if ours else {}
        return Contact(
            id=lid,
            email=opt_text(lead.get("email"), "email"),
            first_name=opt_text(lead.get("firstName"), "firstName"),
            last_name=opt_text(lead.get("lastName"), "lastName"),
            job_title=opt_text(lead.get("title"), "title"),
            company_name=opt_text(lead.get("company"), "company"),
            country=opt_text(lead.get("country"), "country"),
            lifecycle_stage=self._stage_of(stage_raw),
            lead_status=_normalize_status(status_raw),
            created_at=parse_timestamp(created, "createdAt") if created else None,
            updated_at=parse_timestamp(updated, "updatedAt") if updated else None,
            properties=clean_value(
                {k: v for k, v in lead.items() if v is not None and k not in checked}
            ),
            crm_values={key: _shown(lead[f]) for f, key in checked.items() if f in lead}
            if ours
            else None,
        )

    def _get_leads(self, ids: Sequence[str]) -> tuple[list[Contact], list[BadRecord]]:
        """Leads by id, <= 300 a call; ids Marketo does not return (deleted) are left out."""
        contacts: list[Contact] = []
        bad: list[BadRecord] = []
        fields = ",".join(dict.fromkeys([*self._read_fields(), *self._checked_fields()]))
        for i in range(0, len(ids), MAX_BATCH):
            chunk = ids[i : i + MAX_BATCH]
            data = self._call(
                "leads.get",
                "GET",
                "/rest/v1/leads.json",
                params={
                    "filterType": "id",
                    "filterValues": ",".join(chunk),
                    "fields": fields,
                    "batchSize": str(MAX_BATCH),
                },
            )
            for lead in data.get("result") or []:
                if not isinstance(lead, dict):
                    bad.append(BadRecord("?", "lead: not an object", lead))
                    continue
                try:
                    contact = self._contact_from(lead, ours=True)
                except InputError as exc:
                    bad.append(BadRecord(str(lead.get("id", "?")), f"lead: {exc}", lead))
                    continue
                contacts.append(contact)
                self._remember(contact.id)
        return contacts, bad

    def _remember(self, contact_id: str) -> None:
        if len(self._known) >= KNOWN_IDS_MAX:  # forgetting only costs a re-fetch
            self._known.clear()
        self._known.add(contact_id)

    def get_contact(self, contact_id: str) -> Contact | None:
        if not contact_id.isdigit():
            return None
        found, _ = self._get_leads([contact_id])
        return found[0] if found else None

    # -- paging ----------------------------------------------------------------------------
    def _paging_token(self, since: datetime | None) -> str:
        start = since or (self._now() - timedelta(days=self.config.backfill_days))
        data = self._call(
            "activities.pagingtoken",
            "GET",
            "/rest/v1/activities/pagingtoken.json",
            params={"sinceDatetime": _iso(start)},
        )
        token = data.get("nextPageToken")
        if not isinstance(token, str) or not token:
            raise ConnectorError("Marketo paging-token answer without nextPageToken")
        return token

    def _paged(
        self, kind: str, path: str, params: Mapping[str, str], token: str
    ) -> Iterator[tuple[list[dict[str, Any]], str, bool]]:
        """(results, next token, moreResult) per page until moreResult is false. Short and
        empty pages are normal; a token that stops advancing while moreResult stays true is
        not (fails after `max_stalled_pages`), nor are endless empty pages or pages."""
        stalled = 0
        empty_run = 0
        for _ in range(self.max_pages):
            data = self._call(kind, "GET", path, params={**params, "nextPageToken": token})
            results = data.get("result", [])  # absent on an empty page
            if results is None:
                results = []
            if not isinstance(results, list):
                raise ConnectorError(f"Marketo {kind}: result is not a list")
            more = data.get("moreResult")
            if not isinstance(more, bool):
                raise ConnectorError(f"Marketo {kind}: page without moreResult; stopping")
            nxt = data.get("nextPageToken") or None
            if more and not nxt:
                raise ConnectorError(f"Marketo {kind}: moreResult without a nextPageToken")
            if more and nxt == token:
                stalled += 1
                if stalled >= self.max_stalled_pages:
                    raise ConnectorError(
                        f"Marketo {kind}: nextPageToken did not advance for {stalled} pages "
                        "while moreResult stayed true; stopping instead of looping"
                    )
            else:
                stalled = 0
            empty_run = empty_run + 1 if more and not results else 0
            if empty_run > self.max_empty_pages:
                raise ConnectorError(
                    f"Marketo {kind}: {empty_run} empty pages in a row with moreResult true"
                )
            yield [r for r in results if isinstance(r, dict)], str(nxt or token), more
            if not more:
                return
            token = str(nxt)
        raise ConnectorError(f"Marketo {kind} paging exceeded {self.max_pages} pages")

    # -- contacts --------------------------------------------------------------------------
    def pull_contacts(
        self, since: datetime | None, until: datetime | None, position: str | None
    ) -> Iterator[ContactPage]:
        """Lead changes since `since` (new leads and changes to the fields we read), then
        deleted leads, both by paging token. Positions: ``lc:<token>`` / ``del:<token>``."""
        phase, token = "lc", None
        if position:
            phase, _, token = position.partition(":")
            if phase not in ("lc", "del") or not token:
                raise ConnectorError(f"not a Marketo contacts position: {position[:40]!r}")
        if phase == "lc":
            yield from self._pull_changes(since, until, token)
            token = None
        yield from self._pull_deleted(since, until, token)

    def _pull_changes(
        self, since: datetime | None, until: datetime | None, token: str | None
    ) -> Iterator[ContactPage]:
        watched = [f for f in (*PROFILE_FIELDS, self.config.stage_field, self.config.status_field,
                               *self._checked_fields()) if f]  # fmt: skip
        params = {"fields": ",".join(dict.fromkeys(watched)), "batchSize": str(self.page_size)}
        start = token or self._paging_token(since)
        for results, nxt, _more in self._paged(
            "activities.leadchanges", "/rest/v1/activities/leadchanges.json", params, start
        ):
            page = ContactPage(contacts=[], position=f"lc:{nxt}")
            ids: list[str] = []
            mql_dates: dict[str, str] = {}
            past_until = False
            for act in results:
                lid = act.get("leadId")
                if lid is None:
                    page.bad.append(BadRecord(str(act.get("id", "?")), "lead change: no leadId"))
                    continue
                if until is not None and self._at(act) >= until:
                    past_until = True
                    continue
                ids.append(str(lid))
                if self._made_mql(act):
                    at = _iso(self._at(act))
                    mql_dates[str(lid)] = min(at, mql_dates.get(str(lid), at))
            if ids:
                contacts, bad = self._get_leads(list(dict.fromkeys(ids)))
                page.contacts = [self._with_mql_date(c, mql_dates.get(c.id)) for c in contacts]
                page.bad = page.bad + bad
            yield page
            if past_until:
                return

    def _made_mql(self, act: Mapping[str, Any]) -> bool:
        """A lead change (Change Data Value) that set the stage field to a status read as MQL:
        Marketo's own record of when the lead became an MQL (sales, a smart campaign, us)."""
        field_name = self.config.stage_field
        if not field_name or act.get("activityDate") is None:
            return False
        for change in act.get("fields") or []:
            if not isinstance(change, dict) or change.get("name") != field_name:
                continue
            value = change.get("newValue")
            if isinstance(value, str) and self._status_stages.get(value.strip().lower()) == MQL:
                return True
        return False

    @staticmethod
    def _with_mql_date(contact: Contact, at: str | None) -> Contact:
        if at is None:
            return contact
        shown = contact.properties.get(CRM_MQL_DATE)
        if isinstance(shown, str) and shown <= at:
            return contact
        return replace(contact, properties={**contact.properties, CRM_MQL_DATE: at})

    def _pull_deleted(
        self, since: datetime | None, until: datetime | None, token: str | None
    ) -> Iterator[ContactPage]:
        start = token or self._paging_token(since)
        for results, nxt, _more in self._paged(
            "activities.deletedleads",
            "/rest/v1/activities/deletedleads.json",
            {"batchSize": str(self.page_size)},
            start,
        ):
            page = ContactPage(contacts=[], position=f"del:{nxt}")
            past_until = False
            for act in results:
                if until is not None and self._at(act) >= until:
                    past_until = True
                    continue
                lid = act.get("leadId")
                if lid is not None:
                    page.archived.append(str(lid))
                    self._known.discard(str(lid))
            yield page
            if past_until:
                return

    @staticmethod
    def _at(act: Mapping[str, Any]) -> datetime:
        try:
            return parse_timestamp(act.get("activityDate"), "activityDate")
        except InputError:
            return datetime.max.replace(tzinfo=UTC)

    # -- engagement ------------------------------------------------------------------------
    def activity_types(self) -> dict[int, tuple[str, str]]:
        """Activity type id -> (Marketo name, our event type), for the configured names."""
        if self._types is None:
            data = self._call("activities.types", "GET", "/rest/v1/activities/types.json")
            wanted = {k.lower(): v for k, v in self.config.activity_types.items()}
            found: dict[int, tuple[str, str]] = {}
            for t in data.get("result") or []:
                if not isinstance(t, dict) or not isinstance(t.get("id"), int):
                    continue
                for label in (t.get("name"), t.get("apiName")):
                    if isinstance(label, str) and label.lower() in wanted:
                        found[int(t["id"])] = (str(t.get("name")), wanted[label.lower()])
                        break
            names = {n.lower() for n, _ in found.values()}
            missing = sorted(k for k in self.config.activity_types if k.lower() not in names)
            if missing:
                log.warning("Marketo instance has no activity types %s: not read", missing)
            if not found:
                raise ConfigError(
                    "none of the configured Marketo activity types exist in this instance "
                    "(LEADSCORE_MARKETO_ACTIVITY_TYPES)"
                )
            self._types = found
        return self._types

    def _type_groups(self) -> list[list[int]]:
        ids = sorted(self.activity_types())
        return [ids[i : i + MAX_TYPE_IDS] for i in range(0, len(ids), MAX_TYPE_IDS)]

    def event_streams(self) -> Sequence[str]:
        n = len(self._type_groups())
        return tuple("activities" if i == 0 else f"activities.{i + 1}" for i in range(n))

    def pull_events(
        self, stream: str, since: datetime | None, until: datetime | None, position: str | None
    ) -> Iterator[EventPage]:
        streams = list(self.event_streams())
        if stream not in streams:
            raise ConfigError(f"unknown Marketo event stream {stream!r}")
        type_ids = self._type_groups()[streams.index(stream)]
        return self._pull_activities(type_ids, since, until, position)

    def _pull_activities(
        self,
        type_ids: Sequence[int],
        since: datetime | None,
        until: datetime | None,
        position: str | None,
    ) -> Iterator[EventPage]:
        params = {
            "activityTypeIds": ",".join(str(t) for t in type_ids),
            "batchSize": str(self.page_size),
        }
        start = position or self._paging_token(since)
        for results, nxt, _more in self._paged(
            "activities.list", "/rest/v1/activities.json", params, start
        ):
            page = EventPage(events=[], position=nxt, high_water=None)
            past_until = False
            for act in results:
                try:
                    ev = self._event_from(act)
                except InputError as exc:
                    rid = str(act.get("marketoGUID") or act.get("id") or "?")
                    page.bad.append(BadRecord(rid, f"activity: {exc}", act))
                    continue
                if ev is None:
                    continue
                if until is not None and ev.occurred_at >= until:
                    past_until = True
                    continue
                page.events.append(ev)
                if page.high_water is None or ev.occurred_at > page.high_water:
                    page.high_water = ev.occurred_at
            unknown = list(dict.fromkeys(e.contact_id for e in page.events))
            unknown = [cid for cid in unknown if cid not in self._known and cid.isdigit()]
            if unknown:
                contacts, bad = self._get_leads(unknown)
                page.contacts, page.bad = contacts, page.bad + bad
                gone = set(unknown) - {c.id for c in contacts}
                if gone:  # deleted since: nothing to score or write
                    page.events = [e for e in page.events if e.contact_id not in gone]
            yield page
            if past_until:
                return

    def _event_from(self, act: Mapping[str, Any]) -> Event | None:
        guid = opt_text(act.get("marketoGUID"), "marketoGUID")
        if guid is None:
            raise InputError("marketoGUID: missing")
        lead = opt_text(act.get("leadId"), "leadId")
        if lead is None:
            raise InputError(f"{guid}: leadId missing")
        type_id = act.get("activityTypeId")
        known = self.activity_types().get(type_id) if isinstance(type_id, int) else None
        if known is None:
            return None
        type_name, etype = known
        at = parse_timestamp(act.get("activityDate"), "activityDate")
        raw_attrs = act.get("attributes") or []
        if isinstance(raw_attrs, Mapping):
            attrs = dict(raw_attrs)
        elif isinstance(raw_attrs, list):
            attrs = {
                str(a.get("name")): a.get("value")
                for a in raw_attrs
                if isinstance(a, dict) and a.get("name") is not None
            }
        else:
            raise InputError(f"{guid}: attributes is neither a list nor an object")
        primary = act.get("primaryAttributeValue")
        out: dict[str, Any]
        if etype == "page_view":
            out = {
                "url": attrs.get("Webpage URL") or primary,
                "referrer": attrs.get("Referrer URL"),
                "title": primary,
            }
        elif etype == "form_submit":
            out = {
                "form": primary,
                "form_id": act.get("primaryAttributeValueId"),
                "url": attrs.get("Referrer URL"),
            }
        elif etype in ("webinar_attended", "webinar_registered"):
            out = {"name": primary}
            if etype == "webinar_attended":
                watched = attrs.get("Minutes Watched")
                out["minutes_watched"] = watched
                share = _share(watched, attrs.get("Webinar Minutes"))
                if share is not None:
                    out["watched_share"] = share
        elif type_name.lower() in STATUS_CHANGE_TYPES:
            change = self._status_change(type_name, primary, attrs)
            if change is None:  # another field's change (our own score writes among them)
                return None
            out, etype = change, "custom"
        elif etype.startswith("email_"):
            out = {"campaign": primary, "url": attrs.get("Link")}
        else:
            out = {"name": type_name, **attrs}
        clean = clean_value({k: v for k, v in out.items() if v is not None and v != ""})
        return Event(SOURCE, guid, lead, etype, at, clean)

    def _status_change(
        self, type_name: str, primary: Any, attrs: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """A lead status (Change Data Value on the status or stage field) or program status
        (Change Status in Progression) change, as a `custom` event calibrate dates
        conversions by: {name, field|program, new_value, stage, lead_status}."""
        if type_name.lower() == "change data value":
            wanted = {_squash(self.config.status_field), _squash(self.config.stage_field or "")}
            if _squash(str(primary or "")) not in wanted - {""}:
                return None
            new = opt_text(attrs.get("New Value"), "New Value")
            return {
                "name": "status_changed",
                "field": primary,
                "new_value": new,
                "stage": self._status_stages.get(new.strip().lower()) if new else None,
                "lead_status": _normalize_status(new),
            }
        new = opt_text(attrs.get("New Status"), "New Status")
        return {
            "name": "program_status_changed",
            "program": primary,
            "new_value": new,
            "stage": self._status_stages.get(new.strip().lower()) if new else None,
            "lead_status": _normalize_status(new),
        }

    # -- write-back ------------------------------------------------------------------------
    def _value(self, ours: str, fname: str, value: str) -> Any:
        if ours == STAGE:
            mapped = self.config.stage_values.get(value)
            if mapped is None:
                raise LookupError(value)
            return mapped
        info = (self._fields or {}).get(fname)
        dtype = info.data_type if info is not None else "string"
        if value == "":
            return None
        if dtype == "integer":
            try:
                return round(float(value))
            except ValueError:
                return value
        if dtype in ("float", "currency"):
            try:
                return float(value)
            except ValueError:
                return value
        if dtype == "boolean":
            return value.strip().lower() in ("true", "1", "yes")
        return value

    def write(self, writes: Sequence[WriteBack]) -> list[WriteOutcome]:
        if writes and self._fields is None:
            self.describe()
        outcomes: list[WriteOutcome] = []
        for i in range(0, len(writes), self.write_batch):
            outcomes.extend(self._write_batch(writes[i : i + self.write_batch]))
        return outcomes

    def _record_for(self, w: WriteBack) -> dict[str, Any]:
        """The lead record a write sends: `id` and the mapped fields, typed for the instance."""
        record: dict[str, Any] = {"id": int(w.contact_id)}
        fmap = self.config.field_map
        for ours, value in w.properties.items():
            fname = fmap.get(ours, ours)
            if not fname:
                continue  # not mapped onto this instance
            try:
                record[fname] = self._value(ours, fname, value)
            except LookupError:
                log.warning("no Marketo status value for stage %r: not written", value)
        return record

    def _write_batch(self, batch: Sequence[WriteBack]) -> list[WriteOutcome]:
        done: dict[str, WriteOutcome] = {}
        inputs: list[dict[str, Any]] = []
        sent: list[str] = []
        for w in batch:
            if not w.contact_id.isdigit():
                done[w.contact_id] = WriteOutcome(
                    w.contact_id, False, False, "not a Marketo lead id"
                )
                continue
            record = self._record_for(w)
            if len(record) == 1:
                done[w.contact_id] = WriteOutcome(w.contact_id, True)
                continue
            inputs.append(record)
            sent.append(w.contact_id)
        if inputs:
            done.update(self._send_batch(inputs, sent))
        return [done[w.contact_id] for w in batch]

    def _send_batch(self, inputs: list[dict[str, Any]], ids: list[str]) -> dict[str, WriteOutcome]:
        """One leads.sync, retried by the one retry policy. An attempt that ends without a
        readable answer (timeout, dropped connection, 5xx, a transient error code) may have
        been applied: before the next attempt the leads are read back, and those already
        showing our values count as written, so none is applied twice. Only a refusal before
        any work (429, 606, 615) is simply sent again."""
        remaining = list(zip(ids, inputs, strict=True))
        arrived: set[str] = set()
        unsure = False

        def attempt() -> dict[str, Any] | None:
            nonlocal remaining, unsure
            if unsure:
                got = self._records_shown([rec for _, rec in remaining])
                arrived.update(got)
                remaining = [(cid, rec) for cid, rec in remaining if cid not in got]
                unsure = False
                if not remaining:
                    return None
            body = {
                "action": "updateOnly",
                "lookupField": "id",
                "input": [rec for _, rec in remaining],
            }
            unsure = True
            try:
                data = self._authed("leads.sync", "POST", "/rest/v1/leads.json", json_body=body)
            except _Rejected:
                unsure = False
                raise
            except MarketoApiError:
                unsure = False  # a definite refusal of the whole batch
                raise
            unsure = False
            return dict(data)

        failed: tuple[bool, str] | None = None  # (retryable, why) when the batch failed whole
        try:
            data = call_with_retry(
                attempt, self.retry_policy, sleep=self._sleep, on_retry=self._on_retry("leads.sync")
            )
        except RetryableError as exc:
            data, failed = None, (True, str(exc))
        except MarketoApiError as exc:
            data, failed = None, (False, f"{exc.code}: {exc.message}")
        out = {cid: WriteOutcome(cid, True) for cid in arrived}  # read back: already there
        if failed is not None:
            out.update({cid: WriteOutcome(cid, False, *failed) for cid, _ in remaining})
            return out
        if data is None:
            return out
        results = [r for r in data.get("result") or [] if isinstance(r, dict)]
        by_seq: dict[int, dict[str, Any]] = {}
        for pos, item in enumerate(results):
            seq = item.get("seq")
            by_seq[seq if isinstance(seq, int) else pos] = item
        for pos, (cid, _) in enumerate(remaining):
            r = by_seq.get(pos)
            status = str(r.get("status", "")) if r is not None else ""
            if r is None:
                out[cid] = WriteOutcome(cid, False, True, "not in Marketo's batch response")
            elif status in ("updated", "created"):
                out[cid] = WriteOutcome(cid, True)
            else:
                reasons = [x for x in r.get("reasons") or [] if isinstance(x, dict)]
                code = str(reasons[0].get("code", "")) if reasons else ""
                text = (
                    "; ".join(f"{x.get('code', '')}: {x.get('message', '')}" for x in reasons)
                    or f"{status or 'skipped'} without a reason"
                )
                out[cid] = WriteOutcome(
                    cid,
                    ok=False,
                    retryable=code in RETRYABLE_CODES,
                    error=text[:500],
                    archived=code == "1004",
                )
        return out

    def confirm_written(self, writes: Sequence[WriteBack]) -> set[str]:
        """The ids whose Marketo values already equal the write, read back by id.

        After a write whose outcome is unknown (the process died, the answer never came), this
        tells a write Marketo applied from one it never got, so nothing is sent twice."""
        if writes and self._fields is None:
            self.describe()
        confirmed: set[str] = set()
        records: list[dict[str, Any]] = []
        for w in writes:
            if not w.contact_id.isdigit():
                continue
            record = self._record_for(w)
            if len(record) == 1:
                confirmed.add(w.contact_id)  # nothing of it is sent to this instance
            else:
                records.append(record)
        return confirmed | self._records_shown(records)

    def _records_shown(self, records: Sequence[Mapping[str, Any]]) -> set[str]:
        """Ids of the records whose every field Marketo already shows (<= 300 a read)."""
        shown_ids: set[str] = set()
        for i in range(0, len(records), MAX_BATCH):
            chunk = records[i : i + MAX_BATCH]
            names = sorted({k for rec in chunk for k in rec if k != "id"})
            try:
                data = self._call(
                    "leads.get",
                    "GET",
                    "/rest/v1/leads.json",
                    params={
                        "filterType": "id",
                        "filterValues": ",".join(str(rec["id"]) for rec in chunk),
                        "fields": ",".join(["id", *names]),
                        "batchSize": str(MAX_BATCH),
                    },
                )
            except MarketoApiError as exc:  # cannot be read back for good: not applied
                log.warning("marketo cannot read back %d lead(s): %s", len(chunk), exc)
                continue
            found = {
                str(lead.get("id")): lead
                for lead in data.get("result") or []
                if isinstance(lead, dict)
            }
            for rec in chunk:
                lead = found.get(str(rec["id"]))
                if lead is not None and all(
                    _shows(want, lead.get(k)) for k, want in rec.items() if k != "id"
                ):
                    shown_ids.add(str(rec["id"]))
        return shown_ids

    # -- bulk export backfill --------------------------------------------------------------
    def backfill_export(
        self,
        since: datetime,
        until: datetime,
        job_store: JobStore,
        *,
        window_field: str = "updatedAt",
        rows_per_page: int = 1000,
    ) -> Generator[ContactPage, None, None]:
        """Every lead whose `window_field` falls in [since, until), through bulk lead
        exports of <= 30 days each. Resumable: the export id and the rows already handed out
        are kept in `job_store` after each step, so a new adapter with the same store polls
        the same export (no second export) and skips the rows the caller already took.
        Progress for a page is saved when the caller asks for the next one."""
        if window_field not in ("createdAt", "updatedAt"):
            raise ConfigError("window_field must be createdAt or updatedAt")
        fields = ["id", *self._read_fields()]
        for rows, pos in self._export(
            "leads", since, until, job_store, fields, window_field, rows_per_page
        ):
            page = ContactPage(contacts=[], position=pos)
            for row in rows:
                try:
                    contact = self._contact_from(row)
                except InputError as exc:
                    page.bad.append(BadRecord(str(row.get("id", "?")), f"lead: {exc}", row))
                    continue
                page.contacts.append(contact)
                self._remember(contact.id)
            yield page

    def backfill_activities_export(
        self, since: datetime, until: datetime, job_store: JobStore, *, rows_per_page: int = 1000
    ) -> Generator[EventPage, None, None]:
        """Activities of the configured types in [since, until) through bulk activity
        exports (resumable like `backfill_export`)."""
        fields = [
            "marketoGUID",
            "leadId",
            "activityDate",
            "activityTypeId",
            "primaryAttributeValueId",
            "primaryAttributeValue",
            "attributes",
        ]
        for rows, pos in self._export(
            "activities", since, until, job_store, fields, "createdAt", rows_per_page
        ):
            page = EventPage(events=[], position=pos, high_water=None)
            for row in rows:
                try:
                    act: dict[str, Any] = dict(row)
                    type_id = row.get("activityTypeId")
                    act["activityTypeId"] = int(type_id) if type_id else None
                    attrs = row.get("attributes")
                    act["attributes"] = json.loads(attrs) if attrs else {}
                    ev = self._event_from(act)
                except (InputError, ValueError) as exc:
                    rid = str(row.get("marketoGUID") or "?")
                    page.bad.append(BadRecord(rid, f"activity: {exc}", row))
                    continue
                if ev is None:
                    continue
                page.events.append(ev)
                if page.high_water is None or ev.occurred_at > page.high_water:
                    page.high_water = ev.occurred_at
            yield page

    def _export(
        self,
        kind: str,
        since: datetime,
        until: datetime,
        store: JobStore,
        fields: list[str],
        window_field: str,
        rows_per_page: int,
    ) -> Iterator[tuple[list[dict[str, Any]], str]]:
        if until <= since:
            raise ConfigError("backfill: until must be after since")
        name = f"marketo:export:{kind}:{window_field}:{_iso(since)}:{_iso(until)}"
        state: dict[str, Any] = dict(store.get_job(name) or {})
        state.setdefault("window", 0)
        state.setdefault("export_id", None)
        state.setdefault("rows_done", 0)
        state.setdefault("failures", 0)
        windows: list[tuple[datetime, datetime]] = []
        cursor = since
        while cursor < until:
            end = min(cursor + EXPORT_WINDOW, until)
            windows.append((cursor, end))
            cursor = end
        base = f"/bulk/v1/{kind}/export"
        while state["window"] < len(windows):
            start, end = windows[state["window"]]
            if state["export_id"] is None:
                body: dict[str, Any] = {
                    "format": "CSV",
                    "fields": fields,
                    "filter": {window_field: {"startAt": _iso(start), "endAt": _iso(end)}},
                }
                if kind == "activities":
                    body["filter"]["activityTypeIds"] = sorted(self.activity_types())
                data = self._call("bulk.create", "POST", f"{base}/create.json", json_body=body)
                job = (data.get("result") or [{}])[0]
                state.update(export_id=str(job["exportId"]), rows_done=0, status="Created")
                store.set_job(name, state)
            export_id = str(state["export_id"])
            status = self._await_export(kind, export_id, store, name, state)
            if status != "Completed":
                state["failures"] += 1
                if state["failures"] > 2:
                    raise ConnectorError(
                        f"Marketo {kind} export {export_id} ended {status} three times"
                    )
                log.warning("marketo %s export %s %s; creating it again", kind, export_id, status)
                state.update(export_id=None, rows_done=0)
                store.set_job(name, state)
                continue
            rows = self._download(kind, export_id)
            done = int(state["rows_done"])
            for i in range(done, len(rows), max(1, rows_per_page)):
                chunk = rows[i : i + rows_per_page]
                yield chunk, f"export:{export_id}:{i + len(chunk)}"
                state["rows_done"] = i + len(chunk)  # the caller took (and committed) it
                store.set_job(name, state)
            state.update(window=state["window"] + 1, export_id=None, rows_done=0, failures=0)
            store.set_job(name, state)
        store.delete_job(name)

    def _await_export(
        self, kind: str, export_id: str, store: JobStore, name: str, state: dict[str, Any]
    ) -> str:
        base = f"/bulk/v1/{kind}/export/{export_id}"
        for _ in range(max(1, self.export_max_polls)):
            try:
                data = self._call("bulk.status", "GET", f"{base}/status.json")
            except MarketoApiError as exc:
                if exc.code in ("1003", "610"):
                    return "Missing"  # expired or unknown: create it again
                raise
            status = str((data.get("result") or [{}])[0].get("status", ""))
            if status != state.get("status"):
                state["status"] = status
                store.set_job(name, state)
            if status == "Created":
                self._call("bulk.enqueue", "POST", f"{base}/enqueue.json")
                state["status"] = "Queued"
                store.set_job(name, state)
                continue
            if status in ("Completed", "Failed", "Cancelled"):
                return status
            self._sleep(self.export_poll_s)  # Queued / Processing: wait for Marketo
        raise ConnectorError(
            f"Marketo {kind} export {export_id} not finished after {self.export_max_polls} "
            "polls; run the backfill again to keep waiting for the same export"
        )

    def _download(self, kind: str, export_id: str) -> list[dict[str, Any]]:
        path = f"/bulk/v1/{kind}/export/{export_id}/file.json"
        status_data = self._call(
            "bulk.status", "GET", f"/bulk/v1/{kind}/export/{export_id}/status.json"
        )
        info = (status_data.get("result") or [{}])[0]
        parts: list[bytes] = []
        total: int | None = None
        got = 0
        for _ in range(100_000):
            rng = f"bytes={got}-{got + self.export_chunk_bytes - 1}"
            r = self._call("bulk.file", "GET", path, headers={"Range": rng}, raw=True)
            parts.append(r.content)
            got += len(r.content)
            if r.status_code == 200:
                total = got
                break
            match = re.search(r"/(\d+)\s*$", r.headers.get("Content-Range", ""))
            total = int(match.group(1)) if match else got
            if got >= total or not r.content:
                break
        data = b"".join(parts)
        size = info.get("fileSize")
        if isinstance(size, int) and size != len(data):
            raise RetryableError(f"Marketo export {export_id}: got {len(data)} of {size} bytes")
        checksum = info.get("fileChecksum")
        if (
            isinstance(checksum, str)
            and checksum.startswith("sha256:")
            and hashlib.sha256(data).hexdigest() != checksum.removeprefix("sha256:")
        ):
            raise RetryableError(f"Marketo export {export_id}: checksum mismatch")
        # bytes that are not UTF-8 (a cut-off character) become U+FFFD, not a failed export
        reader = csv.DictReader(io.StringIO(data.decode("utf-8", "replace")))
        return [
            {k: (None if v == "null" else v) for k, v in row.items() if k is not None}
            for row in reader
        ]


def _shows(want: Any, shown: Any) -> bool:
    """Does Marketo show the value we wrote (`want`, typed as sent)? A cleared field reads back
    as null or ""; numbers may come back as text or as floats; times in another format and
    without their milliseconds."""
    if want is None:
        return shown is None or shown == ""
    if isinstance(want, bool):
        return shown is want or (isinstance(shown, str) and shown.lower() == str(want).lower())
    if isinstance(want, int | float):
        if isinstance(shown, bool) or shown is None:
            return False
        try:
            return float(shown) == float(want)
        except (TypeError, ValueError):
            return False
    if not isinstance(shown, str):
        return False
    if shown == want:
        return True
    try:  # Marketo keeps datetime fields to the second
        return parse_timestamp(want).replace(microsecond=0) == parse_timestamp(shown).replace(
            microsecond=0
        )
    except InputError:
        return False


def _shown(value: Any) -> str:
    """A field value as text, as we write it ("" for empty, "true"/"false" for a boolean)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def build_marketo_adapter(settings: Settings, policy: RetryPolicy) -> MarketoAdapter:
    """The adapter from settings (LEADSCORE_MARKETO_*)."""
    if not settings.marketo_base_url:
        raise ConfigError(
            "LEADSCORE_MARKETO_BASE_URL is not set (the REST endpoint, "
            "https://<munchkin-id>.mktorest.com)"
        )
    if settings.marketo_client_id is None or settings.marketo_client_secret is None:
        raise ConfigError(
            "LEADSCORE_MARKETO_CLIENT_ID and LEADSCORE_MARKETO_CLIENT_SECRET must be set "
            "(a Marketo LaunchPoint API service for an API-only user)"
        )
    config = MarketoConfig.with_overrides(
        field_map=settings.marketo_field_map,
        stage_values=settings.marketo_stage_values,
        status_stages=settings.marketo_status_stages,
        activity_types=settings.marketo_activity_types,
        status_field=settings.marketo_status_field,
        backfill_days=settings.marketo_backfill_days,
    )
    return MarketoAdapter(
        settings.marketo_base_url,
        settings.marketo_client_id,
        settings.marketo_client_secret,
        config=config,
        timeout_s=settings.request_timeout_seconds,
        retry=policy,
        write_batch=settings.marketo_write_batch,
        accounts=settings.accounts,
        rate_limit=settings.marketo_rate_limit,
        rate_window_s=settings.marketo_rate_window_seconds,
        export_poll_s=settings.marketo_export_poll_seconds,
    )


__all__ = [
    "DEFAULT_ACTIVITY_TYPES",
    "DEFAULT_FIELD_MAP",
    "DEFAULT_STAGE_VALUES",
    "DEFAULT_STATUS_STAGES",
    "JobStore",
    "MarketoAdapter",
    "MarketoApiError",
    "MarketoConfig",
    "build_marketo_adapter",
]
