"""What a model's rules may name: event types, condition keys and enumerated values.

A typo in any of them would switch a rule off silently (`event: page_veiw` never matches,
`when: {ulr: ...}` tests an attribute no event has, `seniority: manger` is no title's
seniority), so each unknown one is a problem with its location and a "did you mean".

- event types and their attributes: `connector.types.EVENT_ATTRIBUTES` (what the adapters
  produce; a `custom` event carries whatever the CRM sent, so any key goes there);
- fit condition keys: `FIT_FIELDS`, the facts the engine computes for a contact;
- enumerated values: seniority (`titles.SENIORITIES`), e-mail kind (`types.EmailKind`), and the
  departments, flags and rule names the title table defines.
"""

from __future__ import annotations

from typing import Any, get_args

from connector.model.problems import Loc, Problem, did_you_mean
from connector.model.titles import SENIORITIES, TitleTable
from connector.types import EVENT_ATTRIBUTES, EmailKind

# the facts a fit rule or a forced grade tests (scoring/engine.py `_fit_facts`), and `fired`
FIT_FIELDS: tuple[str, ...] = (
    "title",
    "seniority",
    "department",
    "title_rule",
    "title_flags",
    "employee_count",
    "annual_revenue_usd",
    "industry",
    "industry_group",
    "country",
    "email_kind",
    "domain",
    "company_source",
    "fired",
)


def enumerations(table: TitleTable | None) -> dict[str, tuple[str, ...]]:
    """Fit field -> its known values (the title fields only when the title table loaded)."""
    known: dict[str, tuple[str, ...]] = {
        "seniority": SENIORITIES,
        "email_kind": tuple(get_args(EmailKind)),
    }
    if table is not None:
        rules = [*table.seniority, *table.department]
        known["department"] = tuple(sorted({r.department for r in rules if r.department}))
        known["title_flags"] = tuple(sorted({f for r in rules for f in r.flags}))
        known["title_rule"] = tuple(r.name for r in table.seniority)
    return known


def vocabulary_problems(raw: object, table: TitleTable | None) -> list[Problem]:
    """Unknown event types, condition keys and enumerated values in the raw model file.

    Defensive about shapes: a shape problem is pydantic's to report."""
    problems: list[Problem] = []
    if not isinstance(raw, dict):
        return problems
    enums = enumerations(table)
    fit = _as_dict(raw.get("fit"))
    for section in ("rules", "force"):
        for i, rule in enumerate(_as_list(fit.get(section))):
            when = _as_dict(rule.get("when") if isinstance(rule, dict) else None)
            base: Loc = ("fit", section, i, "when")
            for key, value in when.items():
                if key not in FIT_FIELDS:
                    problems.append(
                        (
                            (*base, key),
                            f"unknown condition key {key!r} for a fit rule"
                            f"{did_you_mean(str(key), FIT_FIELDS)}",
                        )
                    )
                elif key in enums:
                    problems.extend(_enum_values((*base, key), value, key, enums[key]))
    rules = _as_list(_as_dict(raw.get("engagement")).get("rules"))
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            continue
        event = rule.get("event")
        types = [event] if isinstance(event, str) else _as_list(event)
        attributes: set[str] = set()
        open_ended = False
        for j, et in enumerate(types):
            if not isinstance(et, str):
                continue
            loc: Loc = ("engagement", "rules", i, "event")
            if not isinstance(event, str):
                loc = (*loc, j)
            if et not in EVENT_ATTRIBUTES:
                problems.append(
                    (loc, f"unknown event type {et!r}{did_you_mean(et, EVENT_ATTRIBUTES)}")
                )
                open_ended = True  # its attributes are unknown: only the type is reported
                continue
            known = EVENT_ATTRIBUTES[et]
            if known is None:
                open_ended = True
            else:
                attributes.update(known)
        if open_ended or not types:
            continue
        label = "/".join(t for t in types if isinstance(t, str))
        whens: list[tuple[Loc, object]] = [(("engagement", "rules", i, "when"), rule.get("when"))]
        for j, tier in enumerate(_as_list(rule.get("tiers"))):
            if isinstance(tier, dict):
                whens.append((("engagement", "rules", i, "tiers", j, "when"), tier.get("when")))
        for base, cond in whens:
            for key in _as_dict(cond):
                if key not in attributes:
                    problems.append(
                        (
                            (*base, key),
                            f"unknown condition key {key!r} for {label} events"
                            f"{did_you_mean(str(key), sorted(attributes))}; known: "
                            + ", ".join(sorted(attributes)),
                        )
                    )
    return problems


def _enum_values(loc: Loc, value: object, field: str, known: tuple[str, ...]) -> list[Problem]:
    """Each plain value of a condition (a scalar, a list, a match's `any`, through `not`)
    must be a known one; globs and regexes are patterns, not values."""
    out: list[Problem] = []
    lowered = {k.lower() for k in known}

    def check(where: Loc, v: object) -> None:
        if isinstance(v, str) and v.lower() not in lowered:
            out.append(
                (where, f"unknown {field} {v!r}{did_you_mean(v.lower(), known)}; known: "
                 + ", ".join(known))
            )  # fmt: skip

    while True:
        if isinstance(value, list):
            for k, v in enumerate(value):
                check((*loc, k), v)
        elif isinstance(value, dict):
            if isinstance(value.get("any"), list):
                for k, v in enumerate(value["any"]):
                    check((*loc, "any", k), v)
            if "not" in value:
                loc, value = (*loc, "not"), value["not"]
                continue
        else:
            check(loc, value)
        return out


def _as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
