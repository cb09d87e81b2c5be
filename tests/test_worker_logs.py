"""Worker logs: one JSON object per line when asked, secrets never written."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from connector.settings import load_settings
from connector.worker.logs import MASK, configure_logging, redact, settings_secrets

PAT = "pat-na1-0a1b2c3d-4e5f-6789-abcd-ef0123456789"
SECRET = "my-app-client-secret-42"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = configure_logging(json_lines=True, level="DEBUG", secrets=[SECRET], stream=stream)
    try:
        yield stream
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
        logging.getLogger().setLevel(logging.WARNING)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_secrets_are_masked_in_messages_arguments_tracebacks_and_extras(
    captured: io.StringIO,
) -> None:
    log = logging.getLogger("connector.test")
    log.info("calling with Authorization: Bearer %s", PAT)
    log.warning("token %s and api_key=%s", PAT, "pdl-live-123456789")
    log.info("the app secret is %s", SECRET, extra={"summary": {"note": f"client_secret={SECRET}"}})
    try:
        raise RuntimeError(f"HubSpot said no to hapikey=abc123def456 and {PAT}")
    except RuntimeError:
        log.exception("failed")
    text = captured.getvalue()
    for secret in (PAT, SECRET, "pdl-live-123456789", "abc123def456"):
        assert secret not in text
    out = lines(captured)
    assert len(out) == 4  # one line per record, tracebacks included
    assert out[0]["message"] == f"calling with Authorization: Bearer {MASK}"
    assert out[0]["level"] == "info" and out[0]["logger"] == "connector.test"
    assert out[2]["summary"] == {"note": f"client_secret={MASK}"}
    assert "RuntimeError" in str(out[3]["exc"])


def test_a_run_summary_is_one_json_line_with_its_counts(captured: io.StringIO) -> None:
    logging.getLogger("connector.pipeline").info(
        "sync hubspot ok: pulled 3", extra={"summary": {"kind": "sync", "pulled": 3}}
    )
    (line,) = lines(captured)
    assert line["message"] == "sync hubspot ok: pulled 3"
    assert line["summary"] == {"kind": "sync", "pulled": 3}
    assert str(line["ts"]).endswith("Z")


def test_redact_masks_the_usual_shapes() -> None:
    assert redact(f"Bearer {PAT}") == f"Bearer {MASK}"
    assert PAT not in redact(f"token={PAT}")
    assert redact("client_secret: 'hunter2hunter2'") == f"client_secret: '{MASK}'"
    assert redact(f"see {PAT} there") == f"see {MASK} there"
    assert redact("nothing to hide here") == "nothing to hide here"


def test_every_secret_setting_is_known_to_the_filter() -> None:
    settings = load_settings(
        hubspot_token=SecretStr(PAT),
        hubspot_client_secret=SecretStr(SECRET),
        pdl_api_key=SecretStr("pdl-key-1234"),
    )
    assert {PAT, SECRET, "pdl-key-1234"} <= set(settings_secrets(settings))


def test_configure_logging_replaces_its_own_handler_and_writes_text_by_default() -> None:
    first, second = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    h1 = configure_logging(stream=first)
    h2 = configure_logging(stream=second)
    try:
        assert h1 not in root.handlers and h2 in root.handlers
        logging.getLogger("connector.x").info("hello %s", "world")
        assert first.getvalue() == ""
        assert second.getvalue().rstrip().endswith("INFO connector.x: hello world")
    finally:
        root.removeHandler(h2)
        h2.close()
        root.setLevel(logging.WARNING)
