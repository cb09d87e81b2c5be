"""What every HubSpot API module builds on: the app's state as the modules see it and the
request helpers (JSON bodies, query parameters, batch inputs, paging links).

Each API module (``objects``, ``search``, ``properties``, ``events``, ``forms``, ``limits``,
``faults``) is a class over :class:`HubSpotApi`; :class:`~connector.sandbox.hubspot.app.HubSpotApp`
combines them and owns the route table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlencode

from connector.sandbox.base import (
    DailyQuota,
    JsonDict,
    Request,
    RollingWindowLimiter,
    SandboxApp,
    decode_key_cursor,
    parse_time_ms,
)
from connector.sandbox.hubspot.errors import _bad

if TYPE_CHECKING:
    from connector.sandbox.hubspot.portal import Portal

BATCH_MAX = 100
_NUMERIC_ID = re.compile(r"^\d{1,18}$")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _id_text(value: object, what: str = "id") -> str:
    if _is_int(value):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise _bad(f"Invalid input JSON: '{what}' must be a non-empty string, got {value!r}")


def _unquote(value: str) -> str:
    return unquote(value)


class HubSpotApi(SandboxApp):
    """The state the API modules share (set by ``HubSpotApp.__init__``) and request helpers."""

    portal: Portal
    token: str
    events_api_enabled: bool
    time_scale: float
    ten_secondly: RollingWindowLimiter
    search_limiter: RollingWindowLimiter
    daily: DailyQuota

    # -- request helpers -----------------------------------------------------------------------
    def _json_object(self, req: Request) -> JsonDict:
        if req.json_error is not None:
            raise _bad(f"Invalid input JSON on {req.json_error}")
        if not isinstance(req.json, dict):
            kind = "empty" if req.json is None else type(req.json).__name__
            raise _bad(f"Invalid input JSON: expected a JSON object, got {kind}")
        return req.json

    def _list_param(self, req: Request, name: str) -> list[str] | None:
        raw = req.query.get(name)
        if raw is None:
            return None
        return [p.strip() for v in raw for p in v.split(",") if p.strip()]

    def _int_param(self, req: Request, name: str, default: int, low: int, high: int) -> int:
        text = req.param(name)
        if text is None or text == "":
            return default
        try:
            value = int(text)
        except ValueError:
            raise _bad(f"Query parameter '{name}' must be an integer, got {text!r}") from None
        if value < low:
            raise _bad(f"Query parameter '{name}' must be >= {low}, got {value}")
        return min(value, high)

    def _bool_param(self, req: Request, name: str) -> bool:
        text = (req.param(name) or "false").lower()
        if text not in ("true", "false"):
            raise _bad(f"Query parameter '{name}' must be true or false, got {text!r}")
        return text == "true"

    def _time_param(self, req: Request, name: str) -> int | None:
        text = req.param(name)
        if text is None or text == "":
            return None
        try:
            return parse_time_ms(text)
        except ValueError:
            raise _bad(f"Query parameter '{name}' is not a valid timestamp: {text!r}") from None

    def _str_list(self, body: Mapping[str, Any], key: str) -> list[str] | None:
        value = body.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _bad(f"Invalid input JSON: '{key}' must be a list of strings")
        return list(value)

    def _inputs(self, body: Mapping[str, Any]) -> list[JsonDict]:
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            raise _bad("Invalid input JSON: 'inputs' must be a list")
        if len(inputs) > BATCH_MAX:
            raise _bad(
                f"Batch input has {len(inputs)} inputs; at most {BATCH_MAX} inputs are allowed"
            )
        for i, item in enumerate(inputs):
            if not isinstance(item, dict):
                raise _bad(f"Invalid input JSON: inputs[{i}] must be an object")
        return inputs

    def _next_link(self, req: Request, cursor_name: str, cursor: str) -> str:
        params = [(k, v) for k, vs in req.query.items() if k != cursor_name for v in vs]
        params.append((cursor_name, cursor))
        return f"{self.base_url}{req.path}?{urlencode(params)}"

    def _next_page(self, req: Request, after: str) -> JsonDict:
        """A ``paging`` value: the ``after`` cursor of the next page and the link to it."""
        return {"next": {"after": after, "link": self._next_link(req, "after", after)}}

    def _key_cursor(self, value: str | None, tag: str, what: str) -> tuple[int, str] | None:
        """The (ms, id) key of a keyset cursor this listing made; None when there is none."""
        if not value:
            return None
        try:
            return decode_key_cursor(value, tag)
        except ValueError:
            raise _bad(f"Invalid {what}: {value!r}") from None
