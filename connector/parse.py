"""Parsing of outside values (files, API payloads) into the project's types.

Every failure is an `InputError` with a one-line message naming the field; callers add the
record or line and dead-letter it, and the rest flows on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from connector.errors import InputError
from connector.text import clean_text, clean_value
from connector.types import Contact, Event

T = TypeVar("T")
MIN_TS = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TEXT = 10_000  # longer free text is cut: a 1 MB "job title" is not a job title
# a company's firmographic numbers past these are no company's: read as unreadable (the largest
# employer has about 2.3 million people; 10^15 is more than any revenue in any currency)
MAX_EMPLOYEES = 10_000_000
MAX_REVENUE = 1e15


def parse_timestamp(value: Any, field: str = "timestamp") -> datetime:
    """ISO 8601 (with or without Z/offset; naive means UTC) or epoch milliseconds → aware UTC."""
    if isinstance(value, datetime):
        dt = value
    elif value is None or value == "":
        raise InputError(f"{field}: missing timestamp")
    elif isinstance(value, bool):
        raise InputError(f"{field}: expected a timestamp, got bool")
    elif isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit()):
        try:
            ms = float(value)
            dt = datetime.fromtimestamp(ms / 1000.0, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise InputError(f"{field}: epoch milliseconds out of range ({_short(value)})") from exc
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise InputError(f"{field}: not an ISO-8601 timestamp ({value[:40]!r})") from None
    else:
        raise InputError(f"{field}: expected a timestamp, got {type(value).__name__}")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        dt = dt.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59-05:00 is past datetime.max in UTC
        raise InputError(f"{field}: timestamp out of range ({_short(value)})") from None
    if dt < MIN_TS:
        raise InputError(f"{field}: timestamp before 1970 ({dt.isoformat()})")
    return dt


def opt_text(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool | dict | list):
        raise InputError(f"{field}: expected text, got {type(value).__name__}")
    try:
        text = clean_text(str(value)).strip()
    except ValueError:  # an integer too long to print (Python's 4,300-digit limit)
        raise InputError(f"{field}: expected text, got {_short(value)}") from None
    return text[:MAX_TEXT] or None


def _short(value: Any) -> str:
    """A bounded, never-failing rendering of a bad value for an error message."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"a {value.bit_length()}-bit integer"
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def opt_number(value: Any, field: str, upper: float) -> float | None:
    """A CRM number (text such as `"850"`, `"1.2e8"`, or a JSON number) between 0 and `upper`;
    None when blank. Anything else raises InputError naming the field: not a number (`lots`,
    `NaN`, `inf`, `1e400`) or not a plausible one (negative, or `1e20` employees, which would
    not even fit the state DB's integers)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool | dict | list):
        raise InputError(f"{field}: expected a number, got {type(value).__name__}")
    try:
        number = float(value) if isinstance(value, int | float) else float(str(value).strip())
    except (ValueError, OverflowError):  # float(10**400) overflows
        raise InputError(f"{field}: not a number ({_short(value)})") from None
    if not math.isfinite(number):
        raise InputError(f"{field}: not a number ({_short(value)})")
    if not 0 <= number <= upper:
        raise InputError(
            f"{field}: not a plausible number ({_short(value)}: expected 0 to {upper:,.0f})"
        )
    return number


def watched_share(watched: Any, total: Any) -> float | None:
    """The share of a webinar watched, 0..1, from the minutes watched and its length as a CRM
    sends them (numbers or text); None where they make no duration: text, a length of 0 or
    less, infinite or NaN (`"inf"`, `"1e400"`, a 400-digit integer), whatever the other."""
    try:
        w, t = float(watched), float(total)
    except (TypeError, ValueError, OverflowError):
        return None
    if not (math.isfinite(w) and math.isfinite(t)) or t <= 0:
        return None
    return max(0.0, min(1.0, w / t))


def opt_timestamp(value: Any, field: str) -> datetime | None:
    return None if value in (None, "") else parse_timestamp(value, field)


def contact_from_json(obj: Any) -> Contact:
    if not isinstance(obj, Mapping):
        raise InputError(f"expected a JSON object, got {type(obj).__name__}")
    cid = opt_text(obj.get("id"), "id")
    if cid is None:
        raise InputError("id: required")
    props = obj.get("properties") or {}
    if not isinstance(props, Mapping):
        raise InputError("properties: expected an object")
    return Contact(
        id=cid,
        email=opt_text(obj.get("email"), "email"),
        first_name=opt_text(obj.get("first_name"), "first_name"),
        last_name=opt_text(obj.get("last_name"), "last_name"),
        job_title=opt_text(obj.get("job_title"), "job_title"),
        company_name=opt_text(obj.get("company_name"), "company_name"),
        country=opt_text(obj.get("country"), "country"),
        lifecycle_stage=opt_text(obj.get("lifecycle_stage"), "lifecycle_stage"),
        lead_status=opt_text(obj.get("lead_status"), "lead_status"),
        lead_status_changed_at=opt_timestamp(
            obj.get("lead_status_changed_at"), "lead_status_changed_at"
        ),
        recycled_at=opt_timestamp(obj.get("recycled_at"), "recycled_at"),
        created_at=opt_timestamp(obj.get("created_at"), "created_at"),
        updated_at=opt_timestamp(obj.get("updated_at"), "updated_at"),
        properties=clean_value(dict(props)),
    )


def event_from_json(obj: Any, default_source: str = "file") -> Event:
    if not isinstance(obj, Mapping):
        raise InputError(f"expected a JSON object, got {type(obj).__name__}")
    sid = opt_text(obj.get("id"), "id")
    if sid is None:
        raise InputError("id: required")
    contact_id = opt_text(obj.get("contact_id"), "contact_id")
    if contact_id is None:
        raise InputError("contact_id: required")
    type_ = opt_text(obj.get("type"), "type")
    if type_ is None:
        raise InputError("type: required")
    attrs = obj.get("attributes") or {}
    if not isinstance(attrs, Mapping):
        raise InputError("attributes: expected an object")
    return Event(
        source=opt_text(obj.get("source"), "source") or default_source,
        source_id=sid,
        contact_id=contact_id,
        type=type_,
        occurred_at=parse_timestamp(obj.get("occurred_at"), "occurred_at"),
        attributes=clean_value(dict(attrs)),
    )


@dataclass(frozen=True)
class LineError:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def read_jsonl(path: str | Path) -> Iterator[tuple[int, Any] | LineError]:
    """Yield (line number, parsed JSON) or a LineError per non-empty line."""
    p = Path(path)
    with p.open("r", encoding="utf-8", errors="replace") as fh:
        for no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield no, json.loads(line)
            except json.JSONDecodeError as exc:
                yield LineError(p.name, no, f"invalid JSON ({exc.msg} at column {exc.colno})")


def _load_file(path: str | Path, parse: Callable[[Any], T]) -> tuple[list[T], list[LineError]]:
    """Every good record of a JSONL file, and a LineError (file:line: reason) per bad one."""
    records: list[T] = []
    errors: list[LineError] = []
    name = Path(path).name
    for item in read_jsonl(path):
        if isinstance(item, LineError):
            errors.append(item)
            continue
        no, obj = item
        try:
            records.append(parse(obj))
        except InputError as exc:
            errors.append(LineError(name, no, str(exc)))
    return records, errors


def load_contacts_file(path: str | Path) -> tuple[list[Contact], list[LineError]]:
    return _load_file(path, contact_from_json)


def load_events_file(path: str | Path) -> tuple[list[Event], list[LineError]]:
    return _load_file(path, event_from_json)
