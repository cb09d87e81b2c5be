"""Compile the model's conditions into plain predicates, once per model.

A predicate takes the raw field value (or None when absent). Text compares case-insensitively;
a set/list value matches when any of its members does (title flags, fired rules).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from typing import Any

from connector.model.schema import Conditions, Match, MatchValue

Predicate = Callable[[Any], bool]
FieldCheck = tuple[str, Predicate]

_GLOB_CHARS = frozenset("*?[")


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip().lower()


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):  # a tuple: `int | float` builds a union object each call
        return float(v)
    try:
        return float(str(v).strip())
    except ValueError:
        return None


def _any_member(pred: Predicate) -> Predicate:
    def check(v: Any) -> bool:
        # a tuple of types: an `X | Y` union is an object built at each call (~4,000
        # instructions here, compiled: most of an account's fit checks)
        if isinstance(v, (set, frozenset, list, tuple)):
            return any(pred(x) for x in v)
        return pred(v)

    return check


def _in_list(entries: list[str]) -> Predicate:
    """Plain entries match exactly or as a parent domain; entries with glob chars as globs."""
    plain = frozenset(e for e in entries if not (_GLOB_CHARS & set(e)))
    globs = [fnmatch.translate(e) for e in entries if _GLOB_CHARS & set(e)]
    rx = re.compile("|".join(f"(?:{g})" for g in globs), re.IGNORECASE) if globs else None

    def check(v: Any) -> bool:
        if v is None or v == "":
            return False
        t = _text(v)
        if t in plain:
            return True
        if plain and "." in t:
            parts = t.split(".")
            for i in range(1, len(parts) - 1):
                if ".".join(parts[i:]) in plain:
                    return True
        return bool(rx is not None and rx.match(t))

    return check


def words_regex(groups: list[list[str]]) -> re.Pattern[str]:
    """One lookahead per group: an entry of each, as whole words, anywhere and in any order."""

    def entry(phrase: str) -> str:
        return r"[\s\-]*".join(re.escape(w) for w in phrase.split()) + "s?"

    looks = "".join(
        r"(?=.*?\b(?:" + "|".join(entry(p) for p in group) + r")\b)" for group in groups
    )
    return re.compile(looks, re.IGNORECASE | re.DOTALL)


def compile_match(m: Match, lists: Mapping[str, list[str]]) -> Predicate:
    checks: list[Predicate] = []
    if m.any is not None:
        allowed = frozenset(_text(x) for x in m.any)
        checks.append(lambda v: v is not None and _text(v) in allowed)
    if m.glob is not None:
        grx = re.compile(fnmatch.translate(m.glob), re.IGNORECASE)
        checks.append(lambda v: v is not None and grx.match(str(v)) is not None)
    if m.regex is not None:
        rrx = re.compile(m.regex, re.IGNORECASE)
        checks.append(lambda v: v is not None and rrx.search(str(v)) is not None)
    if m.words is not None:
        wrx = words_regex(m.words)
        checks.append(lambda v: v is not None and wrx.match(str(v)) is not None)
    if m.in_list is not None:
        checks.append(_in_list(lists[m.in_list]))
    if m.not_in_list is not None:
        inner = _in_list(lists[m.not_in_list])
        checks.append(lambda v: not inner(v))
    if m.min is not None or m.max is not None:
        lo, hi = m.min, m.max

        def in_range(v: Any) -> bool:
            n = _number(v)
            if n is None or n != n:  # NaN never matches
                return False
            return (lo is None or n >= lo) and (hi is None or n <= hi)

        checks.append(in_range)
    if m.exists is not None:
        want = m.exists
        checks.append(lambda v: (v is not None and v != "" and v != []) == want)
    if m.not_ is not None:
        neg = compile_match(m.not_, lists)
        checks.append(lambda v: not neg(v))
    if len(checks) == 1:
        return checks[0]
    return lambda v: all(c(v) for c in checks)


def compile_value(value: MatchValue, lists: Mapping[str, list[str]]) -> Predicate:
    if isinstance(value, Match):
        # negative matches judge the whole value; positive ones match any member of a set
        if value.not_in_list is not None or value.not_ is not None or value.exists is not None:
            return compile_match(value, lists)
        return _any_member(compile_match(value, lists))
    if isinstance(value, list):
        allowed = frozenset(_text(x) for x in value)
        return _any_member(lambda v: v is not None and _text(v) in allowed)
    if isinstance(value, bool):
        return lambda v: bool(v) == value
    want = _text(value)
    num = _number(value) if not isinstance(value, str) else None
    if num is not None:
        return _any_member(lambda v: _number(v) == num)
    return _any_member(lambda v: v is not None and _text(v) == want)


def compile_conditions(conds: Conditions, lists: Mapping[str, list[str]]) -> list[FieldCheck]:
    return [(name, compile_value(value, lists)) for name, value in conds.items()]


def check_all(checks: list[FieldCheck], get: Callable[[str], Any]) -> bool:
    return all(pred(get(name)) for name, pred in checks)
