"""`--json`: what a command reports, as one JSON document alone on standard output.

Keys are the field names of the records the commands build (and their computed properties),
so they stay as stable as those records; times are ISO-8601 (UTC), durations seconds, rates
fractions (0.25), absent values null. Nothing else is printed on standard output with --json
(notes and errors go to standard error; progress bars are only ever on a terminal's stderr).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

import click


def jsonable(obj: Any, *, skip: Iterable[str] = ()) -> Any:
    """`obj` as JSON values: a dataclass as an object of its fields and properties (less
    `skip`), a mapping with tuple keys joined by "→", tuples and sets as lists."""
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if isinstance(obj, timedelta):
        return obj.total_seconds()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        skipped = set(skip)
        out = {
            f.name: jsonable(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if f.name not in skipped and not f.name.startswith("_")
        }
        for name in dir(type(obj)):
            if name.startswith("_") or name in skipped or name in out:
                continue
            if isinstance(getattr(type(obj), name, None), property):
                out[name] = jsonable(getattr(obj, name))
        return out
    if isinstance(obj, Mapping):
        return {_key(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        items = sorted(obj, key=str) if isinstance(obj, set | frozenset) else obj
        return [jsonable(v) for v in items]
    return str(obj)


def _key(k: Any) -> str:
    if isinstance(k, tuple):
        return "→".join(str(x) for x in k)
    return str(k)


def emit(document: Any) -> None:
    """Print one JSON document on standard output (sorted keys, UTF-8 text)."""
    click.echo(json.dumps(jsonable(document), sort_keys=True, ensure_ascii=False))


def json_option(help_text: str = "Print one JSON document on stdout instead of tables.") -> Any:
    return click.option("--json", "as_json", is_flag=True, help=help_text)
