"""CRM search: ``POST /crm/v3/objects/{objectType}/search`` (filter groups, operators,
one sort, a free-text ``query``, offset paging capped at 10,000 results)."""

from __future__ import annotations

import bisect
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from connector.sandbox.base import JsonDict, Request, Response, parse_time_ms
from connector.sandbox.hubspot.api import _is_int
from connector.sandbox.hubspot.errors import _bad
from connector.sandbox.hubspot.object_types import object_type
from connector.sandbox.hubspot.objects import ObjectsAPI
from connector.sandbox.hubspot.portal import ContactRecord
from connector.sandbox.hubspot.properties import PropertyDef, _value_ms

SEARCH_MAX_LIMIT = 200


SEARCH_MAX_RESULTS = 10_000


SEARCH_MAX_GROUPS = 5


SEARCH_MAX_FILTERS_PER_GROUP = 6


SEARCH_MAX_FILTERS = 18
OPERATORS = frozenset(
    {
        "EQ",
        "NEQ",
        "LT",
        "LTE",
        "GT",
        "GTE",
        "BETWEEN",
        "IN",
        "NOT_IN",
        "HAS_PROPERTY",
        "NOT_HAS_PROPERTY",
        "CONTAINS_TOKEN",
        "NOT_CONTAINS_TOKEN",
    }
)

Getter = Callable[[ContactRecord], Any]


Predicate = Callable[[ContactRecord], bool]


@dataclass
class _CompiledGroup:
    start: int
    end: int
    preds: list[Predicate]

    def matches(self, c: ContactRecord) -> bool:
        return all(p(c) for p in self.preds)


class SearchAPI(ObjectsAPI):
    """The search endpoint of every declared object type (results render as in ObjectsAPI)."""

    # the catalogue of the type being searched (set per request; requests run under the lock)
    _search_properties: dict[str, PropertyDef] = {}  # noqa: RUF012

    def _kind(self, name: str) -> str:
        if name == "hs_object_id":
            return "id"
        pdef = self._search_properties.get(name)
        if pdef is None:
            raise _bad(f"Property '{name}' does not exist", "VALIDATION_ERROR")
        if pdef.type == "number":
            return "number"
        if pdef.type in ("datetime", "date"):
            return "time"
        return "text"

    def _getter(self, name: str) -> Getter:
        kind = self._kind(name)
        if name == "hs_object_id":
            return lambda c: c.num_id
        if name == "createdate":
            return lambda c: c.created_ms
        if name == "lastmodifieddate" or name == "hs_lastmodifieddate":
            return lambda c: c.updated_ms
        if kind == "number":

            def number(c: ContactRecord) -> float | None:
                v = c.properties.get(name)
                if not v:
                    return None
                try:
                    return float(v)
                except ValueError:
                    return None

            return number
        if kind == "time":

            def moment(c: ContactRecord) -> int | None:
                v = c.properties.get(name)
                return _value_ms(v) if v else None

            return moment

        def text(c: ContactRecord) -> str | None:
            v = c.properties.get(name)
            return v.lower() if v else None

        return text

    def _filter_value(self, kind: str, raw: object, name: str) -> Any:
        if raw is None or isinstance(raw, dict | list):
            raise _bad(f"Invalid filter value for '{name}': {raw!r}")
        if kind in ("id", "number"):
            try:
                value = float(str(raw).strip())
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise _bad(f"Invalid filter value for numeric property '{name}': {raw!r}")
            return value
        if kind == "time":
            try:
                return parse_time_ms(raw)
            except ValueError:
                raise _bad(f"Invalid filter value for date property '{name}': {raw!r}") from None
        if isinstance(raw, bool):
            return "true" if raw else "false"
        return str(raw).lower()

    def _compile_filter(self, f: object, group: _CompiledGroup, ids: list[int]) -> None:
        if not isinstance(f, dict):
            raise _bad("Invalid input JSON: each filter must be an object")
        name = f.get("propertyName")
        op = f.get("operator")
        if not isinstance(name, str) or not name:
            raise _bad("Invalid input JSON: filter.propertyName is required")
        if op not in OPERATORS:
            raise _bad(f"Invalid filter operator {op!r}; expected one of {sorted(OPERATORS)}")
        kind = self._kind(name)
        get = self._getter(name)
        if op in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
            want = op == "HAS_PROPERTY"
            group.preds.append(lambda c: (get(c) is not None) is want)
            return
        if op in ("IN", "NOT_IN"):
            values = f.get("values")
            if not isinstance(values, list) or not values:
                raise _bad(f"Filter {op} on '{name}' needs a non-empty 'values' list")
            allowed = {self._filter_value(kind, v, name) for v in values}
            if op == "IN":
                group.preds.append(lambda c: get(c) in allowed)
            else:
                group.preds.append(lambda c: get(c) not in allowed)
            return
        x = self._filter_value(kind, f.get("value"), name)
        if op == "BETWEEN":
            high = self._filter_value(kind, f.get("highValue"), name)
            if kind == "id":
                group.start = max(group.start, bisect.bisect_left(ids, x))
                group.end = min(group.end, bisect.bisect_right(ids, high))
                return
            group.preds.append(lambda c: (v := get(c)) is not None and x <= v <= high)
            return
        if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            pattern = re.compile("^" + ".*".join(re.escape(p) for p in str(x).split("*")) + "$")
            want = op == "CONTAINS_TOKEN"

            def tokens(c: ContactRecord) -> bool:
                v = get(c)
                if v is None:
                    return not want
                words = [str(v), *re.split(r"[^0-9a-z]+", str(v))]
                return any(pattern.match(w) for w in words if w) is want

            group.preds.append(tokens)
            return
        if kind == "id":
            if op == "GT":
                group.start = max(group.start, bisect.bisect_right(ids, x))
                return
            if op == "GTE":
                group.start = max(group.start, bisect.bisect_left(ids, x))
                return
            if op == "LT":
                group.end = min(group.end, bisect.bisect_left(ids, x))
                return
            if op == "LTE":
                group.end = min(group.end, bisect.bisect_right(ids, x))
                return
            if op == "EQ":
                group.start = max(group.start, bisect.bisect_left(ids, x))
                group.end = min(group.end, bisect.bisect_right(ids, x))
                return
        compare: dict[str, Callable[[Any], bool]] = {
            "EQ": lambda v: v == x,
            "NEQ": lambda v: v != x,
            "GT": lambda v: v > x,
            "GTE": lambda v: v >= x,
            "LT": lambda v: v < x,
            "LTE": lambda v: v <= x,
        }
        test = compare[op]
        if op == "NEQ":
            group.preds.append(lambda c: (v := get(c)) is None or test(v))
        else:
            group.preds.append(lambda c: (v := get(c)) is not None and test(v))

    def _search(self, req: Request, m: dict[str, str]) -> Response:
        ot = object_type(m)
        self._search_properties = self.portal.properties_of(ot)
        body = self._json_object(req)
        groups_raw = body.get("filterGroups", [])
        if groups_raw is None:
            groups_raw = []
        if not isinstance(groups_raw, list):
            raise _bad("Invalid input JSON: 'filterGroups' must be a list")
        if len(groups_raw) > SEARCH_MAX_GROUPS:
            raise _bad(
                f"Too many filter groups: {len(groups_raw)}; at most {SEARCH_MAX_GROUPS} allowed"
            )
        total_filters = 0
        for g in groups_raw:
            if not isinstance(g, dict) or not isinstance(g.get("filters"), list):
                raise _bad("Invalid input JSON: each filter group needs a 'filters' list")
            n = len(g["filters"])
            if n > SEARCH_MAX_FILTERS_PER_GROUP:
                raise _bad(
                    f"Too many filters in a group: {n}; at most "
                    f"{SEARCH_MAX_FILTERS_PER_GROUP} allowed"
                )
            total_filters += n
        if total_filters > SEARCH_MAX_FILTERS:
            raise _bad(
                f"Too many filters: {total_filters}; at most {SEARCH_MAX_FILTERS} allowed in all"
            )
        limit = body.get("limit", 10)
        if limit is None:
            limit = 10
        if not _is_int(limit) or limit < 0:
            raise _bad(f"Invalid input JSON: 'limit' must be a non-negative integer, got {limit!r}")
        if limit > SEARCH_MAX_LIMIT:
            raise _bad(f"limit must be at most {SEARCH_MAX_LIMIT}, got {limit}")
        after = body.get("after")
        offset = 0
        if after not in (None, ""):
            text = str(after) if _is_int(after) else after
            if not isinstance(text, str) or not text.isdigit():
                raise _bad(f"Invalid input JSON: 'after' must be a numeric string, got {after!r}")
            offset = int(text)
        if offset + limit > SEARCH_MAX_RESULTS:
            raise _bad(
                f"Search cannot page past {SEARCH_MAX_RESULTS} results (after={offset}, "
                f"limit={limit}); narrow the filters instead",
            )
        props = self._str_list(body, "properties")
        sorts = body.get("sorts") or []
        if not isinstance(sorts, list):
            raise _bad("Invalid input JSON: 'sorts' must be a list")
        if len(sorts) > 1:
            raise _bad("Only one sort is supported")
        sort_name, descending = "hs_object_id", False
        if sorts:
            sort_name, descending = self._parse_sort(sorts[0])
        query = body.get("query")
        if query is not None and not isinstance(query, str):
            raise _bad("Invalid input JSON: 'query' must be a string")

        live = self.portal.live_records(ot)
        ids = self.portal.live_ids(ot)
        compiled: list[_CompiledGroup] = []
        for g in groups_raw:
            cg = _CompiledGroup(0, len(live), [])
            for f in g["filters"]:
                self._compile_filter(f, cg, ids)
            compiled.append(cg)
        if not compiled:
            compiled = [_CompiledGroup(0, len(live), [])]
        if query:
            words = query.lower().split()

            def text_match(c: ContactRecord) -> bool:
                hay = " ".join(c.properties.get(p, "") for p in ot.searchable_by_query).lower()
                return all(w in hay for w in words)

            for cg in compiled:
                cg.preds.append(text_match)
        if len(compiled) == 1:
            cg = compiled[0]
            window = live[cg.start : cg.end] if cg.start < cg.end else []
            matches = [c for c in window if cg.matches(c)] if cg.preds else list(window)
        else:
            lo = min(cg.start for cg in compiled)
            hi = max(cg.end for cg in compiled)
            matches = []
            for i in range(lo, hi):
                c = live[i]
                for cg in compiled:
                    if cg.start <= i < cg.end and cg.matches(c):
                        matches.append(c)
                        break
        if sort_name != "hs_object_id":
            get = self._getter(sort_name)
            keyed = [(get(c), c) for c in matches]
            present = [kc for kc in keyed if kc[0] is not None]
            absent = [kc[1] for kc in keyed if kc[0] is None]
            present.sort(key=lambda kc: kc[0], reverse=descending)
            matches = [c for _, c in present] + absent
        elif descending:
            matches = matches[::-1]
        total = len(matches)
        page = matches[offset : offset + limit]
        results = [self.contact_json(c, props, ot=ot) for c in page]
        out: JsonDict = {"total": total, "results": results}
        if offset + limit < total and limit > 0:
            out["paging"] = {"next": {"after": str(offset + limit)}}
        return Response(200, out)

    def _parse_sort(self, spec: object) -> tuple[str, bool]:
        if isinstance(spec, str):
            text = spec.strip()
            if text.startswith("{"):
                try:
                    spec = json.loads(text)
                except json.JSONDecodeError:
                    raise _bad(f"Invalid sort: {spec!r}") from None
            else:
                desc = text.startswith("-")
                name = text.lstrip("-")
                self._kind(name)
                return name, desc
        if not isinstance(spec, dict):
            raise _bad(f"Invalid sort: {spec!r}")
        prop_name = spec.get("propertyName")
        direction = spec.get("direction", "ASCENDING")
        if not isinstance(prop_name, str) or direction not in ("ASCENDING", "DESCENDING"):
            raise _bad(f"Invalid sort: {spec!r}")
        self._kind(prop_name)
        return prop_name, direction == "DESCENDING"
