"""Log setup for the worker: one line per record, JSON when `settings.log_json`, and a filter
that masks secrets (bearer tokens, HubSpot `pat-…` tokens, api keys, client secrets and the
literal values of every configured secret) before anything is formatted or written.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO, Any

from pydantic import SecretStr

from connector.state.codec import REDACTED, redact_text
from connector.text import clean_text, display_text

MASK = REDACTED  # the same mask as the state DB uses
# HubSpot private-app / personal access tokens: pat-na1-1a2b3c4d-…, pat-eu1-…
_PAT = re.compile(r"\bpat-[a-z]{2}\d-[0-9a-f-]{8,}", re.IGNORECASE)
_HAPIKEY = re.compile(r"(?i)\b(hapikey=)[^\s&\"']+")
# `client_secret`, `api_key` … followed by `=`/`:` are covered by codec.redact_text; so are
# `Bearer …` and `Authorization: …`-style headers below.
_AUTH_HEADER = re.compile(r"(?i)\b(authorization[\"']?\s*[:=]\s*[\"']?)(?!bearer\s)[^\s\"',}]+")

# attributes every LogRecord has; anything else was passed with `extra=` and goes into JSON
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with known secret values and secret-looking tokens masked (and lone surrogates
    and control characters cleaned: a log line must be writable whatever a CRM sent)."""
    for value in secrets:
        if value and len(value) >= 4 and value in text:
            text = text.replace(value, MASK)
    text = _PAT.sub(MASK, text)
    text = _HAPIKEY.sub(lambda m: m.group(1) + MASK, text)
    text = _AUTH_HEADER.sub(lambda m: m.group(1) + MASK, text)
    return display_text(redact_text(text))


class RedactingFilter(logging.Filter):
    """Masks secrets in the message, its arguments, the traceback and string extras.

    Attach it to a handler: it rewrites the record once (the message is rendered with its
    arguments, the traceback is rendered to `exc_text`), so every formatter sees masked text.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = f"{record.msg!r} {record.args!r}"
        record.msg = redact(message, self.secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS:
                setattr(record, key, _redact_value(value, self.secrets))
        return True


def _redact_value(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {k: _redact_value(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v, secrets) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, extras (e.g. a run's `summary`),
    and `exc` with the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                out[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        return clean_text(json.dumps(out, default=str, ensure_ascii=False))


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(
    *,
    json_lines: bool = False,
    level: str | int = "INFO",
    secrets: Iterable[str] = (),
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Install one handler on the root logger (replacing one installed before by this function)
    and return it. APScheduler's per-run chatter is kept at WARNING."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name("leadscore")
    handler.addFilter(RedactingFilter(secrets))
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == "leadscore":
            root.removeHandler(old)
            old.close()
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    return handler


def settings_secrets(settings: Any) -> list[str]:
    """The literal values of every `SecretStr` setting (masked wherever they appear)."""
    values: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name, None)
        if isinstance(value, SecretStr):
            secret = value.get_secret_value()
            if isinstance(secret, str) and secret:
                values.append(secret)
    return values
