"""How values cross the SQLite boundary: datetimes, JSON, and scrubbing of secret-looking text.

Datetimes are stored as fixed-width ISO-8601 UTC strings with microseconds and an explicit
``+00:00`` offset (``2026-11-01T12:00:00.000000+00:00``), so string order is time order and
``<=`` comparisons in SQL are correct. They come back as aware UTC datetimes. A naive datetime
is a bug in the caller (is it local time? UTC?) and is rejected rather than guessed.
"""

from __future__ import annotations

import json
import json.scanner
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import orjson

from connector.fastjson import loads_with
from connector.types import Contact, Reason, ScoreResult

_decoder = json.JSONDecoder()
_scan_once = json.scanner.make_scanner(cast(Any, _decoder))  # typeshed types it oddly


def _stdlib_decode(text: str) -> Any:
    """`json.loads` minus the whitespace regexes: what we wrote has no padding. Anything
    else (padding, trailing data, errors) goes through the stdlib decoder for its message."""
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:
        return _decoder.decode(text)
    return value if end == len(text) else _decoder.decode(text)


# orjson where it reads exactly what the stdlib reads (connector.fastjson)
_decode_json = loads_with(_stdlib_decode)


_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _no_default(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _make_fast_encoder() -> Callable[[Any], str]:
    """`_encoder.encode` without rebuilding the C encoder on every call (events are encoded
    by the million; this halves the cost). Falls back to the stdlib path without `_json`."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython always has _json
        return _encoder.encode
    try:
        c_encode = make(
            None, _no_default, json.encoder.encode_basestring, None, ":", ",", False, False, True
        )
    except TypeError:  # pragma: no cover - a future signature change
        return _encoder.encode

    def encode(value: Any) -> str:
        return "".join(c_encode(value, 0))

    return encode


_encode_json = _make_fast_encoder()

REDACTED = "**********"

_SECRET_KEY = re.compile(
    r"(?i)^(access_?token|refresh_?token|token|bearer|secret|client_?secret|password|passwd"
    r"|api_?key|hapikey|private_?app_?token|authorization|cookie|set-cookie|credentials?)$"
)
_SECRET_TEXT = (
    re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(
        r"(?i)\b((?:access_?token|refresh_?token|api_?key|hapikey|client_?secret|password|secret)"
        r"[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,;}]+"
    ),
)


def encode_dt(value: datetime) -> str:
    """An aware datetime as a fixed-width UTC ISO-8601 string."""
    if value.tzinfo is not UTC:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} cannot be stored: add a tzinfo")
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")


def encode_opt_dt(value: datetime | None) -> str | None:
    return None if value is None else encode_dt(value)


def decode_dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


def decode_opt_dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def encode_json(value: Any) -> str:
    """Strict JSON for data that must round-trip exactly (contact properties, attributes)."""
    return _encode_json(value)


def encode_mapping(value: Mapping[str, Any]) -> str | None:
    """An empty mapping is stored as NULL (saves space on millions of events)."""
    return _encode_json(value if isinstance(value, dict) else dict(value)) if value else None


def decode_mapping(value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    decoded = _decode_json(value)
    if not isinstance(decoded, dict):
        raise ValueError(f"expected a JSON object, got {type(decoded).__name__}")
    return decoded


def decode_json(value: str | None) -> Any:
    return None if value is None else _decode_json(value)


def redact_text(text: str) -> str:
    """Mask bearer tokens and `key=value` secrets in free text (error messages, reasons)."""
    for pattern in _SECRET_TEXT:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


def redact(value: Any) -> Any:
    """A JSON-able copy of `value` with secret-looking keys and texts masked.

    Used for dead-letter payloads and run counts/messages: the state DB never stores
    secrets. Objects with `get_secret_value` (pydantic `SecretStr`) are masked, datetimes
    become ISO strings, anything else unknown becomes its `repr` (a payload must never make
    recording a failure fail).
    """
    if isinstance(value, Mapping):
        return {
            str(k): REDACTED if _SECRET_KEY.search(str(k)) and v is not None else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if hasattr(value, "get_secret_value"):
        return REDACTED
    if isinstance(value, datetime):
        return encode_dt(value) if value.tzinfo is not None else value.isoformat()
    return redact_text(repr(value))


# ------------------------------------------------------------- rows of the state DB
# (run per contact by a full rescore: compiled with the codec in the Docker image)


def contact_from_row(row: Sequence[Any]) -> Contact:
    """A `contacts` row, as the store's `_SELECT_CONTACT` reads it, as a Contact."""
    return Contact(
        id=row[0],
        email=row[1],
        first_name=row[2],
        last_name=row[3],
        job_title=row[4],
        company_name=row[5],
        country=row[6],
        lifecycle_stage=row[7],
        lead_status=row[8],
        lead_status_changed_at=decode_opt_dt(row[9]),
        recycled_at=decode_opt_dt(row[10]),
        mql_at=decode_opt_dt(row[11]),
        created_at=decode_opt_dt(row[12]),
        updated_at=decode_opt_dt(row[13]),
        properties=decode_mapping(row[14]),
    )


def reasons_json(reasons: Iterable[Reason]) -> bytes | str:
    """The reasons as a JSON list of objects: what `encode_json` of their dicts gives. Written
    by orjson (~2x faster; a full rescore encodes millions) as UTF-8 bytes, which the store
    binds as TEXT (`CAST(? AS TEXT)`: no decoding to str for SQLite to encode back). orjson
    writes a non-finite number as null and refuses ints past 64 bits: those (no model makes
    them) take the stdlib path, as text."""
    return json_text([reason_dict(r) for r in reasons])


def json_text(value: Any) -> bytes | str:
    """What `encode_json(value)` gives, written by orjson as UTF-8 bytes where orjson writes
    the same (the store binds them as TEXT: `CAST(? AS TEXT)`), else `encode_json`'s text:
    orjson writes a non-finite number as null, and refuses ints past 64 bits and lone
    surrogates."""
    try:
        out = orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError
        return encode_json(value)
    if b"null" in out:  # a non-finite number (or the word in a text: exact either way)
        return encode_json(value)
    return out


def reason_dict(r: Reason) -> dict[str, Any]:
    """A reason as the JSON object the state DB keeps."""
    return {
        "rule": r.rule,
        "category": r.category,
        # the object it is (`Reason.points` is `float | int`: an int stays one in the
        # compiled build, whose `float` would be a C double)
        "points": r.points,
        "text": r.text,
        "event_ids": r.event_ids,
        "kind": r.kind,
    }


def decode_reasons(text: str | None) -> tuple[Reason, ...]:
    """`reasons_json` read back (as the stored text)."""
    items = (_reason_items(text) if text is not None else None) or []
    return tuple(
        Reason(
            rule=d["rule"],
            category=d["category"],
            points=d["points"],
            text=d["text"],
            event_ids=tuple(d.get("event_ids") or ()),
            kind=d.get("kind", "engagement"),
        )
        for d in items
    )


def _reason_items(text: str) -> Any:
    """`decode_json` of a reasons text, without `fastjson`'s scan for long digit runs (~24 µs
    over an account's 2 kB of reasons, 8x orjson's parse): in what `reasons_json` writes only
    `points` is a bare number, so the one value orjson could read differently (an int past 64
    bits, as a float) is checked there. Same values as the stdlib, as `decode_json`."""
    try:
        items = orjson.loads(text)
    except orjson.JSONDecodeError:  # NaN, infinities, lone surrogate escapes
        return _stdlib_decode(text)
    if isinstance(items, list):
        for d in items:
            if not isinstance(d, dict):
                return _stdlib_decode(text)
            p = d.get("points")
            if isinstance(p, float) and not -_INT64 < p < _INT64:
                return _stdlib_decode(text)  # maybe an int past 64 bits
    return items


_INT64 = 9.2e18  # under 2**63: orjson reads every int up to 2**64 exactly


# a one-entry cache: (key, answer), replaced whole; read once (another thread may replace it)
_LAST_SCORED_AT: list[tuple[object, str]] = [(object(), "")]


def scored_at_text(t: datetime) -> str:
    """`encode_dt`, remembering the last answer: a rescore saves one `now` a million times."""
    last = _LAST_SCORED_AT[0]
    if last[0] is t:
        return last[1]
    text = encode_dt(t)
    _LAST_SCORED_AT[0] = (t, text)
    return text


def score_row(crm: str, r: ScoreResult) -> tuple[Any, ...]:
    """A `scores` row, in the column order of the store's `_UPSERT_SCORE`."""
    lc = r.lifecycle
    return (
        crm,
        r.contact_id,
        float(r.score),
        float(r.engagement_points),
        float(r.fit_points),
        r.grade,
        int(bool(lc.mql)),
        lc.mql_reason,
        lc.current_stage,
        lc.target_stage,
        int(bool(lc.recycled)),
        lc.note,
        int(bool(r.profile_mismatch)),
        int(bool(r.hand_raiser)),
        r.model_version,
        r.model_fingerprint,
        scored_at_text(r.scored_at),
        encode_opt_dt(r.next_change_at),
        reasons_json(r.reasons),
        r.priority,
    )
