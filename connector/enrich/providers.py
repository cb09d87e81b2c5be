"""Firmographics providers behind one small interface.

    class Provider(Protocol):
        name: str         # "local", "pdl", "apollo", "heuristic"
        remote: bool      # True: a paid/limited API; its answers go through the cache
        def lookup(self, domain: str) -> ProviderResult: ...

`lookup` takes a registrable domain and never raises: it answers hit (with a `Company`), miss
(the provider knows nothing about the domain) or error (`retryable` for 429/5xx/timeouts/dropped
connections once the retries are spent, not retryable for a rejected key, spent credits, a bad
request or an unreadable answer). `detail` is one line for a human.

Providers, in the default chain order:
1. `LocalFirmographicsProvider`: an admin's CSV/JSON export, loaded once; a bad row is skipped
   with a warning naming the file and line.
2. `PeopleDataLabsProvider`: `GET /v5/company/enrich?website=<domain>`, 404 = miss.
3. `ApolloProvider`: `GET /api/v1/organizations/enrich?domain=<domain>`, no organization = miss.
4. `HeuristicProvider`: only what the domain itself says (a ccTLD country hint). Invents nothing.

Both HTTP providers send the key in the `X-Api-Key` header (never in a URL), use an explicit
timeout, retry 429/5xx/timeouts through `connector.retry.call_with_retry` only, keep a minimum
interval between their calls (the wait also goes through `call_with_retry`, so that module stays
the only place that sleeps), pause after a 429 that outlived the retries, and disable themselves
for the rest of the run when the key is rejected (401/403) or the credits are spent (402).
Keys are `SecretStr`: they appear in no log record, exception message or repr.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal, Protocol

import requests
from pydantic import SecretStr

from connector.enrich.countries import country_code, tld_country
from connector.enrich.email import normalize_domain, public_suffix, registrable_domain
from connector.errors import ConfigError, RetryableError
from connector.retry import RetryPolicy, call_with_retry
from connector.text import clean_text
from connector.types import Company

log = logging.getLogger(__name__)

ProviderStatus = Literal["hit", "miss", "error"]

# People Data Labs' `size` buckets: the project's employee ranges.
EMPLOYEE_RANGES: tuple[str, ...] = (
    "1-10",
    "11-50",
    "51-200",
    "201-500",
    "501-1000",
    "1001-5000",
    "5001-10000",
    "10001+",
)
_EMPLOYEE_BOUNDS = (10, 50, 200, 500, 1000, 5000, 10000)
# People Data Labs' `inferred_revenue` buckets (USD).
REVENUE_RANGES: tuple[str, ...] = (
    "$0-$1M",
    "$1M-$10M",
    "$10M-$25M",
    "$25M-$50M",
    "$50M-$100M",
    "$100M-$250M",
    "$250M-$500M",
    "$500M-$1B",
    "$1B-$10B",
    "$10B+",
)
_REVENUE_BOUNDS = (1e6, 1e7, 2.5e7, 5e7, 1e8, 2.5e8, 5e8, 1e9, 1e10)

FIRMOGRAPHICS_COLUMNS: tuple[str, ...] = (
    "domain",
    "name",
    "industry",
    "industry_group",
    "employee_count",
    "employee_range",
    "annual_revenue_usd",
    "revenue_range",
    "country",
    "founded_year",
    "domain_aliases",
    "source",
    "as_of",
)
MAX_TEXT = 200


def employee_range_for(count: int | None) -> str | None:
    """850 → '501-1000' (the PDL buckets); None for None."""
    if count is None:
        return None
    for bound, label in zip(_EMPLOYEE_BOUNDS, EMPLOYEE_RANGES, strict=False):
        if count <= bound:
            return label
    return EMPLOYEE_RANGES[-1]


def revenue_range_for(amount: float | None) -> str | None:
    """120e6 → '$100M-$250M' (the PDL buckets); None for None."""
    if amount is None:
        return None
    for bound, label in zip(_REVENUE_BOUNDS, REVENUE_RANGES, strict=False):
        if amount < bound:
            return label
    return REVENUE_RANGES[-1]


@dataclass(frozen=True, slots=True)
class ProviderResult:
    """One provider's answer for one domain."""

    provider: str
    status: ProviderStatus
    company: Company | None = None
    detail: str = ""
    retryable: bool = False

    @classmethod
    def hit(cls, provider: str, company: Company, detail: str = "") -> ProviderResult:
        return cls(provider, "hit", company, detail)

    @classmethod
    def miss(cls, provider: str, detail: str = "no match") -> ProviderResult:
        return cls(provider, "miss", None, detail)

    @classmethod
    def error(cls, provider: str, detail: str, *, retryable: bool) -> ProviderResult:
        return cls(provider, "error", None, detail, retryable)


class Provider(Protocol):
    name: str
    remote: bool

    def lookup(self, domain: str) -> ProviderResult: ...


# --------------------------------------------------------------------------------------------
# 1. Local firmographics file
# --------------------------------------------------------------------------------------------


class LocalFirmographicsProvider:
    """Firmographics from a CSV or JSON file (the embedded default, or an admin's export).

    CSV: a header with `FIRMOGRAPHICS_COLUMNS` (extra columns ignored, missing ones empty),
    `domain_aliases` separated by `;`. JSON: a list of objects with the same keys (or
    `{"companies": [...]}`), `domain_aliases` a list or a `;` string. Loaded once, at
    construction. A bad row is skipped with one warning naming the file and line; a file that
    cannot be read at all (missing, no `domain` column) raises ConfigError.
    """

    name = "local"
    remote = False

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.warnings: list[str] = []
        self._by_domain: dict[str, Company] = {}
        self._load()

    def __len__(self) -> int:
        return len({id(c) for c in self._by_domain.values()})

    def __repr__(self) -> str:
        return f"LocalFirmographicsProvider({str(self.path)!r}, {len(self)} companies)"

    def lookup(self, domain: str) -> ProviderResult:
        company = self._by_domain.get(domain)
        if company is None:
            return ProviderResult.miss(self.name, f"not in {self.path.name}")
        how = "" if company.domain == domain else f" (alias of {company.domain})"
        return ProviderResult.hit(self.name, company, f"{self.path.name}{how}")

    # -- loading ---------------------------------------------------------------------------

    def _load(self) -> None:
        if not self.path.is_file():
            raise ConfigError(f"firmographics file not found: {self.path}")
        default_source = "local_json" if self.path.suffix.lower() == ".json" else "local_csv"
        first_line: dict[str, str] = {}
        for where, record in self._records():
            try:
                company, aliases = company_from_record(record, default_source)
            except ValueError as exc:
                self._warn(f"{where}: row skipped: {exc}")
                continue
            if company.domain in self._by_domain:
                self._warn(
                    f"{where}: row skipped: duplicate domain {company.domain} "
                    f"(first at {first_line[company.domain]})"
                )
                continue
            self._by_domain[company.domain] = company
            first_line[company.domain] = where
            for alias in aliases:
                if alias in self._by_domain:
                    used = first_line[alias]
                    self._warn(f"{where}: alias {alias} ignored: already used at {used}")
                    continue
                self._by_domain[alias] = company
                first_line[alias] = where
        log.debug("loaded %d companies from %s", len(self), self.path)

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        log.warning("%s", message)

    def _records(self) -> Iterator[tuple[str, Mapping[str, Any]]]:
        try:
            if self.path.suffix.lower() == ".json":
                yield from self._json_records()
            else:
                yield from self._csv_records()
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise ConfigError(f"{self.path}: cannot read firmographics: {exc}") from None

    def _csv_records(self) -> Iterator[tuple[str, Mapping[str, Any]]]:
        with self.path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            header = [(h or "").strip() for h in (reader.fieldnames or [])]
            reader.fieldnames = header
            if "domain" not in header:
                raise ConfigError(f"{self.path}: no 'domain' column in the header")
            missing = [c for c in FIRMOGRAPHICS_COLUMNS if c not in header]
            extra = [c for c in header if c not in FIRMOGRAPHICS_COLUMNS]
            if missing:
                self._warn(f"{self.path}:1: missing column(s) {', '.join(missing)}: left empty")
            if extra:
                self._warn(f"{self.path}:1: unknown column(s) {', '.join(extra)}: ignored")
            for row in reader:
                where = f"{self.path}:{reader.line_num}"
                if None in row:
                    self._warn(f"{where}: row skipped: more fields than the header has columns")
                    continue
                if not any((v or "").strip() for v in row.values()):
                    continue  # blank line
                yield where, row

    def _json_records(self) -> Iterator[tuple[str, Mapping[str, Any]]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{self.path}: not valid JSON: {exc}") from None
        if isinstance(data, Mapping):
            data = data.get("companies")
        if not isinstance(data, list):
            raise ConfigError(f"{self.path}: expected a list of companies")
        for i, item in enumerate(data):
            where = f"{self.path}: item {i + 1}"
            if not isinstance(item, Mapping):
                self._warn(f"{where}: row skipped: expected an object")
                continue
            yield where, item


def company_from_record(
    record: Mapping[str, Any], default_source: str = "local_csv"
) -> tuple[Company, list[str]]:
    """One CSV row / JSON object → (Company, alias domains). Raises ValueError with the reason."""
    raw_domain = _text(record.get("domain"), "domain")
    if raw_domain is None:
        raise ValueError("domain is empty")
    domain = _registrable(raw_domain, "domain")
    count = _whole(record.get("employee_count"), "employee_count")
    size = _text(record.get("employee_range"), "employee_range")
    if size is not None:
        size = size.replace(",", "").replace(" ", "")
        if size not in EMPLOYEE_RANGES:
            raise ValueError(f"employee_range {size!r} is not one of {', '.join(EMPLOYEE_RANGES)}")
    revenue = _amount(record.get("annual_revenue_usd"), "annual_revenue_usd")
    country_raw = _text(record.get("country"), "country")
    country = None
    if country_raw is not None:
        country = country_code(country_raw)
        if country is None:
            raise ValueError(f"country {country_raw!r} is not an ISO 3166-1 alpha-2 code")
    founded = _whole(record.get("founded_year"), "founded_year")
    if founded is not None and not 1000 <= founded <= 2100:
        raise ValueError(f"founded_year {founded} is not a plausible year")
    as_of = _text(record.get("as_of"), "as_of")
    if as_of is not None:
        try:
            as_of = date.fromisoformat(as_of).isoformat()
        except ValueError:
            raise ValueError(f"as_of {as_of!r} is not a date (YYYY-MM-DD)") from None
    aliases_raw = record.get("domain_aliases")
    alias_items: list[Any]
    if isinstance(aliases_raw, list):
        alias_items = aliases_raw
    else:
        alias_items = (_text(aliases_raw, "domain_aliases") or "").split(";")
    aliases: list[str] = []
    for item in alias_items:
        text = _text(item, "domain_aliases")
        if text:
            alias = _registrable(text, "domain_aliases")
            if alias != domain and alias not in aliases:
                aliases.append(alias)
    company = Company(
        domain=domain,
        name=_text(record.get("name"), "name"),
        industry=_text(record.get("industry"), "industry"),
        industry_group=_text(record.get("industry_group"), "industry_group"),
        employee_count=count,
        employee_range=size or employee_range_for(count),
        annual_revenue_usd=revenue,
        revenue_range=_text(record.get("revenue_range"), "revenue_range")
        or revenue_range_for(revenue),
        country=country,
        founded_year=founded,
        source=_text(record.get("source"), "source") or default_source,
        as_of=as_of,
    )
    return company, aliases


def _registrable(text: str, field: str) -> str:
    try:
        host = normalize_domain(text)
    except ValueError as exc:
        raise ValueError(f"{field} {text!r} is not a domain: {exc}") from None
    reg = registrable_domain(host)
    if reg is None:
        raise ValueError(f"{field} {text!r} is a public suffix or has an unknown TLD")
    return reg


def _text(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool | dict | list):
        raise ValueError(f"{field}: expected text, got {type(value).__name__}")
    text = " ".join(clean_text(str(value)).split())
    if len(text) > MAX_TEXT:
        raise ValueError(f"{field} is longer than {MAX_TEXT} characters")
    return text or None


def _number(value: Any, field: str) -> float | None:
    if isinstance(value, bool):
        raise ValueError(f"{field}: expected a number, got {value!r}")
    if value is None:
        return None
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip().replace(",", "").replace("_", "").replace(" ", "")
        if not text:
            return None
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{field} {str(value)[:40]!r} is not a number") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{field} {str(value)[:40]!r} must be a number of zero or more")
    return number


def _whole(value: Any, field: str) -> int | None:
    number = _number(value, field)
    if number is None:
        return None
    if not number.is_integer():
        raise ValueError(f"{field} {value!r} is not a whole number")
    return int(number)


def _amount(value: Any, field: str) -> float | None:
    return _number(value, field)


# --------------------------------------------------------------------------------------------
# 2./3. HTTP providers
# --------------------------------------------------------------------------------------------


class _RateLimited(RetryableError):
    """HTTP 429: retried like any transient error, then the provider pauses."""


class _HttpProvider:
    name = "http"
    remote = True
    default_base_url = ""
    path = ""
    key_setting = ""
    default_min_interval = 1.0

    def __init__(
        self,
        api_key: SecretStr | str,
        *,
        base_url: str | None = None,
        timeout: float = 10.0,
        min_interval_seconds: float | None = None,
        retry_policy: RetryPolicy | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        cooldown_seconds: float = 60.0,
    ) -> None:
        self._api_key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        if not self._api_key.get_secret_value():
            raise ConfigError(f"{self.key_setting} is empty")
        if timeout <= 0:
            raise ConfigError(f"{self.name}: timeout must be more than 0 seconds")
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.timeout = float(timeout)
        self.min_interval = (
            self.default_min_interval if min_interval_seconds is None else min_interval_seconds
        )
        self.retry_policy = retry_policy or RetryPolicy()
        self.cooldown_seconds = cooldown_seconds
        self._owns_session = session is None
        self._session = session or requests.Session()
        self._sleep = sleep
        self._clock = clock
        self._last_request: float | None = None
        self._paused_until = 0.0
        self._disabled: str | None = None
        self.calls = 0  # HTTP requests sent, retries included

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key=SecretStr('**********'))"

    def close(self) -> None:
        if self._owns_session:  # a session handed in belongs to the caller
            self._session.close()

    @property
    def url(self) -> str:
        return self.base_url + self.path

    # -- what each provider defines ---------------------------------------------------------

    def _params(self, domain: str) -> dict[str, str]:
        raise NotImplementedError

    def _company(self, domain: str, body: Any) -> Company | None:
        """Map a 200 body to a Company; None when the body says "no match"."""
        raise NotImplementedError

    def _headers(self) -> dict[str, str]:
        return {"X-Api-Key": self._api_key.get_secret_value(), "Accept": "application/json"}

    # -- the one lookup ---------------------------------------------------------------------

    def lookup(self, domain: str) -> ProviderResult:
        if self._disabled is not None:
            return ProviderResult.error(self.name, self._disabled, retryable=False)
        left = self._paused_until - self._clock()
        if left > 0:
            return ProviderResult.error(
                self.name, f"paused after HTTP 429 ({left:.0f}s left)", retryable=True
            )
        attempts = 0

        def attempt() -> requests.Response:
            nonlocal attempts
            attempts += 1
            return self._send(domain)

        def on_retry(exc: RetryableError, number: int) -> None:
            log.info("%s: %s for %s; retry %d", self.name, exc, domain, number)

        try:
            response = call_with_retry(
                attempt, self.retry_policy, sleep=self._sleep, on_retry=on_retry
            )
        except RetryableError as exc:
            if isinstance(exc, _RateLimited):
                pause = max(self.cooldown_seconds, exc.retry_after or 0.0)
                self._paused_until = self._clock() + pause
            detail = f"{exc} (gave up after {attempts} attempt{'s' if attempts != 1 else ''})"
            log.warning("%s: %s for %s", self.name, detail, domain)
            return ProviderResult.error(self.name, detail, retryable=True)
        except requests.RequestException as exc:
            detail = self._redact(f"request failed ({type(exc).__name__})")
            log.warning("%s: %s for %s", self.name, detail, domain)
            return ProviderResult.error(self.name, detail, retryable=False)
        return self._interpret(domain, response)

    def _send(self, domain: str) -> requests.Response:
        self._throttle()
        self._last_request = self._clock()
        self.calls += 1
        try:
            response = self._session.get(
                self.url, params=self._params(domain), headers=self._headers(), timeout=self.timeout
            )
        except requests.Timeout:
            raise RetryableError(f"timed out after {self.timeout:g}s") from None
        except requests.ConnectionError:
            raise RetryableError("connection failed") from None
        code = response.status_code
        if code == 429:
            raise _RateLimited("HTTP 429 (rate limited)", retry_after=_retry_after(response))
        if code >= 500:
            raise RetryableError(f"HTTP {code}", retry_after=_retry_after(response))
        return response

    def _throttle(self) -> None:
        """Keep `min_interval` between two requests. The wait is a RetryableError carrying the
        time left, so `call_with_retry` (the one place that sleeps) does it."""
        if self.min_interval <= 0 or self._last_request is None:
            return
        last = self._last_request

        def ready() -> None:
            left = last + self.min_interval - self._clock()
            if left > 0:
                raise RetryableError("rate limit interval", retry_after=left)

        gap = self.min_interval
        # a clock that does not move (tests) gives up after 3 checks: go ahead rather than hang
        with contextlib.suppress(RetryableError):
            call_with_retry(ready, RetryPolicy(3, gap, gap), sleep=self._sleep)

    def _interpret(self, domain: str, response: requests.Response) -> ProviderResult:
        code = response.status_code
        if code == 404:
            return ProviderResult.miss(self.name, "no match (HTTP 404)")
        if code in (401, 403):
            self._disabled = (
                f"HTTP {code}: API key rejected; check {self.key_setting} "
                "(provider off for the rest of this run)"
            )
            log.error("%s: %s", self.name, self._disabled)
            return ProviderResult.error(self.name, self._disabled, retryable=False)
        if code == 402:
            self._disabled = "HTTP 402: credits exhausted (provider off for the rest of this run)"
            log.error("%s: %s", self.name, self._disabled)
            return ProviderResult.error(self.name, self._disabled, retryable=False)
        if code != 200:
            detail = f"HTTP {code}" + (f": {msg}" if (msg := self._message(response)) else "")
            log.warning("%s: %s for %s", self.name, detail, domain)
            return ProviderResult.error(self.name, detail, retryable=False)
        try:
            body = response.json()
        except ValueError:
            log.warning("%s: HTTP 200 with a body that is not JSON for %s", self.name, domain)
            return ProviderResult.error(self.name, "HTTP 200 but not JSON", retryable=False)
        try:
            company = self._company(domain, body)
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            detail = f"unexpected answer ({type(exc).__name__})"
            log.warning("%s: %s for %s", self.name, detail, domain)
            return ProviderResult.error(self.name, detail, retryable=False)
        if company is None:
            return ProviderResult.miss(self.name, "no match")
        return ProviderResult.hit(self.name, company, "HTTP 200")

    def _message(self, response: requests.Response) -> str:
        """A short, redacted error message from an error body."""
        try:
            body = response.json()
        except ValueError:
            return ""
        msg: Any = None
        if isinstance(body, Mapping):
            err = body.get("error")
            msg = err.get("message") if isinstance(err, Mapping) else err
            msg = msg or body.get("message") or body.get("error_message")
        if not isinstance(msg, str):
            return ""
        return self._redact(" ".join(msg.split()))[:120]

    def _redact(self, text: str) -> str:
        secret = self._api_key.get_secret_value()
        return text.replace(secret, "**********") if secret else text


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: let the backoff decide
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _opt_int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and math.isfinite(value) and value >= 0:
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _opt_float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float) and math.isfinite(value) and value >= 0:
        return float(value)
    return None


def _opt_text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())
    return text[:MAX_TEXT] or None


class PeopleDataLabsProvider(_HttpProvider):
    """People Data Labs company enrichment (`X-Api-Key`; 404 = no match; 402 = no credits)."""

    name = "pdl"
    default_base_url = "https://api.peopledatalabs.com"
    path = "/v5/company/enrich"
    key_setting = "LEADSCORE_PDL_API_KEY"
    default_min_interval = 0.6  # 100 requests a minute, the usual plan's limit

    def _params(self, domain: str) -> dict[str, str]:
        return {"website": domain}

    def _company(self, domain: str, body: Any) -> Company | None:
        if not isinstance(body, Mapping):
            raise TypeError("body is not an object")
        inner = body.get("data")
        data: Mapping[str, Any] = inner if isinstance(inner, Mapping) else body
        name = _opt_text(data.get("display_name")) or _opt_text(data.get("name"))
        count = _opt_int(data.get("employee_count"))
        size = _opt_text(data.get("size"))
        location = data.get("location")
        country = country_code(location.get("country")) if isinstance(location, Mapping) else None
        industry = _opt_text(data.get("industry"))
        if name is None and count is None and industry is None and size is None:
            return None
        return Company(
            domain=domain,
            name=name,
            industry=industry.lower() if industry else None,
            employee_count=count,
            employee_range=size if size in EMPLOYEE_RANGES else employee_range_for(count),
            revenue_range=_opt_text(data.get("inferred_revenue")),
            country=country,
            founded_year=_opt_int(data.get("founded")),
            source="pdl",
        )


# Apollo writes LinkedIn's industries with "&" where PDL (and the default model) write "and".
_AND_INDUSTRIES = frozenset(
    {
        "information technology and services",
        "marketing and advertising",
        "logistics and supply chain",
        "import and export",
        "staffing and recruiting",
        "public relations and communications",
        "security and investigations",
        "wine and spirits",
        "writing and editing",
        "translation and localization",
        "arts and crafts",
        "business supplies and equipment",
        "motion pictures and film",
        "museums and institutions",
        "packaging and containers",
        "recreational facilities and services",
        "international trade and development",
        "health, wellness and fitness",
    }
)


def canonical_industry(value: str | None) -> str | None:
    """'Information Technology & Services' → 'information technology and services'."""
    if not value:
        return None
    text = " ".join(value.lower().split())
    spelled = text.replace(" & ", " and ")
    return spelled if spelled in _AND_INDUSTRIES else text


class ApolloProvider(_HttpProvider):
    """Apollo organization enrichment (`X-Api-Key`; no `organization` in the answer = no match)."""

    name = "apollo"
    default_base_url = "https://api.apollo.io"
    path = "/api/v1/organizations/enrich"
    key_setting = "LEADSCORE_APOLLO_API_KEY"
    default_min_interval = 1.2  # ~50 a minute

    def _params(self, domain: str) -> dict[str, str]:
        return {"domain": domain}

    def _headers(self) -> dict[str, str]:
        return {**super()._headers(), "Cache-Control": "no-cache"}

    def _company(self, domain: str, body: Any) -> Company | None:
        if not isinstance(body, Mapping):
            raise TypeError("body is not an object")
        org = body.get("organization")
        if not isinstance(org, Mapping) or not org:
            return None
        name = _opt_text(org.get("name"))
        count = _opt_int(org.get("estimated_num_employees"))
        revenue = _opt_float(org.get("annual_revenue"))
        industry = canonical_industry(_opt_text(org.get("industry")))
        if name is None and count is None and industry is None:
            return None
        return Company(
            domain=domain,
            name=name,
            industry=industry,
            employee_count=count,
            employee_range=employee_range_for(count),
            annual_revenue_usd=revenue,
            revenue_range=revenue_range_for(revenue),
            country=country_code(org.get("country")),
            founded_year=_opt_int(org.get("founded_year")),
            source="apollo",
        )


# --------------------------------------------------------------------------------------------
# 4. Heuristic fallback
# --------------------------------------------------------------------------------------------


class HeuristicProvider:
    """What the domain itself says, and nothing more: a country-code TLD's country
    (`.de` → DE, `.co.uk` → GB; `.com`, `.io`, `.eu` → nothing). No name, size or industry."""

    name = "heuristic"
    remote = False

    def __repr__(self) -> str:
        return "HeuristicProvider()"

    def lookup(self, domain: str) -> ProviderResult:
        suffix = public_suffix(domain) or domain.rsplit(".", 1)[-1]
        country = tld_country(domain)
        if country is None:
            return ProviderResult.miss(self.name, f"nothing to infer from '.{suffix}'")
        company = Company(domain=domain, country=country, source="heuristic")
        return ProviderResult.hit(self.name, company, f"country {country} from '.{suffix}'")
