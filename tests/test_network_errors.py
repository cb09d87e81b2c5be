"""A CRM that does not answer: the URL and the cause in one line, and exit code 7 (issue 24.8)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import responses
import urllib3
from click.testing import CliRunner
from pydantic import SecretStr

from connector.cli import cli
from connector.crm.hubspot import HubSpotAdapter
from connector.crm.network import network_cause, safe_url
from connector.errors import EXIT_CODES, UnreachableError
from connector.retry import RetryPolicy
from connector.sandbox.demo_portal import build_demo_portal
from connector.sandbox.hubspot import HubSpotSandbox


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback server that accepts connections and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                held.append(conn)
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield int(srv.getsockname()[1])
    finally:
        stop.set()
        t.join()
        for c in held:
            c.close()
        srv.close()


def _adapter(url: str, timeout: float = 2.0) -> HubSpotAdapter:
    return HubSpotAdapter(
        SecretStr("pat-na1-secret-token"),
        url,
        timeout_s=timeout,
        retry=RetryPolicy(attempts=2, base_seconds=0.01, max_seconds=0.02, seed=1),
    )


def test_sync_against_a_closed_port_exits_7_naming_the_url_and_the_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _closed_port()
    monkeypatch.setenv("LEADSCORE_HUBSPOT_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("LEADSCORE_HUBSPOT_TOKEN", "pat-na1-secret-token")
    monkeypatch.setenv("LEADSCORE_RETRY_ATTEMPTS", "1")
    res = CliRunner().invoke(cli, ["--state", str(tmp_path / "s.db"), "sync"])
    assert res.exit_code == 7, res.output
    assert f"HubSpot unreachable at http://127.0.0.1:{port}: connection refused" in res.output
    assert "MaxRetryError" not in res.output
    assert "Traceback" not in res.output
    assert "pat-na1-secret-token" not in res.output
    assert EXIT_CODES[7].startswith("CRM unreachable")


def test_the_adapter_names_refused_tls_and_timeout(silent_port: int) -> None:
    refused = _adapter(f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(UnreachableError) as info:
        refused.check_properties()
    assert "connection refused (properties.list)" in str(info.value)
    refused.close()

    with HubSpotSandbox.start(build_demo_portal()) as sb:  # plain HTTP spoken to over TLS
        tls = _adapter(sb.url.replace("http://", "https://"))
        with pytest.raises(UnreachableError) as info:
            tls.check_properties()
        assert str(info.value) == (
            f"HubSpot unreachable at {sb.url.replace('http://', 'https://')}: "
            "TLS error (certificate or handshake) (properties.list)"
        )
        tls.close()

    slow = _adapter(f"http://127.0.0.1:{silent_port}", timeout=0.2)
    with pytest.raises(UnreachableError) as info:
        slow.check_properties()
    assert str(info.value) == (
        f"HubSpot unreachable at http://127.0.0.1:{silent_port}: read timed out (properties.list)"
    )
    assert info.value.exit_code == 7
    slow.close()


def test_dns_failures_are_named_without_asking_a_resolver() -> None:
    gai = socket.gaierror(-2, "Name or service not known")
    wrapped = urllib3.exceptions.NameResolutionError("example.invalid", None, gai)  # type: ignore[arg-type]
    outer = urllib3.exceptions.MaxRetryError(None, "/crm/v3", wrapped)  # type: ignore[arg-type]
    assert network_cause(requests.ConnectionError(outer)) == "DNS lookup failed (no such host)"
    assert network_cause(ConnectionResetError()) == "connection dropped"
    assert network_cause(ValueError("x")) == "ValueError"


def test_urls_in_messages_lose_credentials_paths_and_queries() -> None:
    assert safe_url("https://user:pw@api.example.com:8443/x?hapikey=k") == (
        "https://api.example.com:8443"
    )
    assert safe_url("http://127.0.0.1:9/") == "http://127.0.0.1:9"


@responses.activate
def test_marketo_names_its_url_and_cause() -> None:
    from connector.crm.marketo import MarketoAdapter

    responses.add(
        responses.POST,
        "https://123-abc-456.mktorest.com/identity/oauth/token",
        body=requests.ConnectTimeout("connect timed out"),
    )
    adapter = MarketoAdapter(
        "https://123-abc-456.mktorest.com",
        SecretStr("client-id"),
        SecretStr("client-secret-value"),
        retry=RetryPolicy(attempts=1),
    )
    with pytest.raises(UnreachableError) as info:
        adapter.check_properties()
    assert str(info.value) == (
        "Marketo unreachable at https://123-abc-456.mktorest.com: connect timed out (identity)"
    )
    assert "client-secret-value" not in str(info.value)
