"""Problems found in a model or title-rule file, and where they are.

A problem is a location (the keys and list indexes from the top of the file) and a message.
`describe` turns it into the line an admin reads: the YAML line, the name of the rule it sits
in, and the path, e.g.
`line 97 (rule pricing_twice): engagement.rules[3].event: unknown event type 'page_veiw'
(did you mean 'page_view'?)`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from types import UnionType
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]

# pydantic's union branch names: noise in a location
_BRANCHES = ("str", "int", "float", "bool", "list[union[str,int,float]]", "Match")


def loc_text(loc: Loc) -> str:
    """`engagement.rules[3].when.url`"""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def did_you_mean(value: str, known: Iterable[str]) -> str:
    """` (did you mean 'page_view'?)` for a close known value, else ``."""
    close = difflib.get_close_matches(value, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def pydantic_problems(exc: ValidationError, schema: type[BaseModel] | None = None) -> list[Problem]:
    """The errors of a validation against `schema` (which names the keys an unknown key may
    have meant)."""
    out: list[Problem] = []
    branch_errors: set[int] = set()
    fitting: set[int] = set()  # the branch of the input's own shape (a mapping: the match)
    for err in exc.errors():
        loc: Loc = tuple(p for p in err["loc"] if isinstance(p, int) or not _branch(p))
        branches = [p for p in err["loc"] if isinstance(p, str) and _branch(p)]
        if branches:
            branch_errors.add(len(out))
            if _fits(branches[-1], err.get("input")):
                fitting.add(len(out))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] in ("int_parsing", "int_type", "int_from_float"):
            msg = "must be an integer"
        elif err["type"] == "extra_forbidden":
            known = keys_at(schema, loc[:-1]) if schema is not None and loc else ()
            hint = did_you_mean(str(loc[-1]), known) if loc else ""
            msg = f"unknown key{hint or ' (typo?)'}"
        elif err["type"] == "missing":
            msg = "required"
        out.append((loc, msg))
    # a union (a condition is a value, a list or a match) fails in every branch; when one branch
    # got deeper (a match with a typo'd key), the others' "should be a valid string" is noise
    deeper = [loc for loc, _ in out]
    kept = [
        i
        for i, (loc, _) in enumerate(out)
        if i not in branch_errors or not any(d[: len(loc)] == loc and d != loc for d in deeper)
    ]
    first: dict[Loc, int] = {}
    for i in kept:
        first.setdefault(out[i][0], i)
    kept.sort(key=lambda i: (first[out[i][0]], i not in fitting))  # at one location: fitting first
    return [out[i] for i in kept]


def _fits(branch: str, value: object) -> bool:
    if isinstance(value, dict):
        return branch.startswith("function-") or branch == "Match"
    if isinstance(value, list):
        return branch.startswith("list[")
    return False


def _branch(part: str) -> bool:
    """A union branch's name in a location (`str`, `function-after[_not_empty(), Match]`)."""
    return part in _BRANCHES or part.startswith("function-")


def keys_at(schema: type[BaseModel], loc: Loc) -> tuple[str, ...]:
    """The keys the schema allows at `loc` (a mapping validated by a model class), or ()."""
    tp: Any = schema
    for part in (*loc, None):
        tp = _unwrap(tp, part)
        if part is None:
            break
        if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str):
            fields = {f.alias or n: f for n, f in tp.model_fields.items()}
            if part not in fields:
                return ()
            tp = fields[part].annotation
        elif get_origin(tp) is list and isinstance(part, int):
            tp = get_args(tp)[0]
        elif get_origin(tp) is dict and isinstance(part, str):
            tp = get_args(tp)[1]
        else:
            return ()
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tuple(f.alias or n for n, f in tp.model_fields.items())
    return ()


def _unwrap(tp: Any, part: str | int | None) -> Any:
    """One member of a union: the model class (a mapping key or the end of the path), the list
    (an index), else the first that is not None."""
    if get_origin(tp) not in (Union, UnionType):
        return tp
    members = [a for a in get_args(tp) if a is not type(None)]
    for m in members:
        if isinstance(part, int) and get_origin(m) is list:
            return m
        if not isinstance(part, int) and isinstance(m, type) and issubclass(m, BaseModel):
            return m
    for m in members:
        if not isinstance(part, int) and get_origin(m) is dict:
            return m
    return members[0] if members else tp


def first_per_location(problems: Iterable[Problem]) -> list[Problem]:
    """A union error repeats one location per branch, and a check may be made twice (pydantic
    and the cross-reference checks): keep the first message per location."""
    seen: dict[Loc, Problem] = {}
    for p in problems:
        seen.setdefault(p[0], p)
    return list(seen.values())


def format_errors(exc: ValidationError) -> list[str]:
    """`path: message` for each problem of a validation error (no lines, no names)."""
    return [
        f"{loc_text(loc)}: {msg}" if loc else msg
        for loc, msg in first_per_location(pydantic_problems(exc))
    ]


def compose(text: str) -> yaml.Node | None:
    """The YAML node tree (with line marks), or None when it does not parse."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None


def line_of(root: yaml.Node | None, loc: Loc) -> int | None:
    """The 1-based line of the deepest node on `loc` (a mapping entry's key line)."""
    node = root
    line: int | None = None if node is None else node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    line, node = key.start_mark.line + 1, value
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def rule_name(raw: object, loc: Loc) -> str | None:
    """The `name` of the rule (engagement.rules[i], fit.rules[i], fit.force[i], a title rule)
    that `loc` points into."""
    node: Any = raw
    name: str | None = None
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            if isinstance(node, dict) and isinstance(node.get("name"), str) and name is None:
                name = node["name"]
        else:
            break
    return name


def _inner_rule(raw: object, loc: Loc) -> str | None:
    """The rule a named score's problem sits in (`scores[i].engagement.rules[j]`)."""
    if not isinstance(raw, dict):
        return None
    scores = raw.get("scores")
    i = loc[1]
    if not isinstance(scores, list) or not isinstance(i, int) or not 0 <= i < len(scores):
        return None
    return rule_name(scores[i], loc[2:])


def describe(problem: Problem, raw: object, root: yaml.Node | None) -> str:
    """`line 97 (rule pricing_twice): engagement.rules[3].event: message`"""
    loc, msg = problem
    where = []
    line = line_of(root, loc) if loc else None
    if line is not None:
        where.append(f"line {line}")
    name = rule_name(raw, loc)
    if name is not None and loc[:1] == ("scores",) and len(loc) > 1:
        # a named score's problem: the score, and the rule inside it
        inner = _inner_rule(raw, loc)
        where.append(f"(score {name}, rule {inner})" if inner else f"(score {name})")
    elif name is not None:
        where.append(f"(rule {name})")
    head = " ".join(where)
    body = f"{loc_text(loc)}: {msg}" if loc else msg
    return f"{head}: {body}" if head else body
