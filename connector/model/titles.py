"""Job title → seniority and department, by an ordered table of named rules (config/titles.yaml).

Pure: the table is data, the first matching rule wins, and its name goes into the fit reason so
a rep can see *why* "Account Executive" is not an executive.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from connector.model.problems import (
    compose,
    describe,
    did_you_mean,
    first_per_location,
    pydantic_problems,
)

SENIORITIES = (
    "executive",
    "vp",
    "director",
    "manager",
    "senior",
    "individual",
    "entry",
    "student",
    "none",
    "unknown",
)


class TitleRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    pattern: str
    seniority: str | None = None
    department: str | None = None
    flags: list[str] = Field(default_factory=list)
    final: bool = Field(
        default=True, description="Stop at this rule; false lets later rules add a department."
    )

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from exc
        return v

    @field_validator("seniority")
    @classmethod
    def _known(cls, v: str | None) -> str | None:
        if v is not None and v not in SENIORITIES:
            raise ValueError(
                f"unknown seniority {v!r}{did_you_mean(v, SENIORITIES)}; one of "
                + ", ".join(SENIORITIES)
            )
        return v


class TitleRewrite(BaseModel):
    """Rewrite a spelling to one form before the rules read the title ("vice president" → VP)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pattern: str
    replace: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from exc
        return v


class TitleTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    normalize: list[TitleRewrite] = Field(default_factory=list)
    seniority: list[TitleRule]
    department: list[TitleRule] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TitleInfo:
    seniority: str
    department: str | None
    rule: str | None  # the seniority rule that matched
    department_rule: str | None
    flags: frozenset[str]


_UNKNOWN = TitleInfo("unknown", None, None, None, frozenset())


def fold(text: str) -> str:
    """Accents off (é → e, ä → a) and ß → ss, so "Geschäftsführer" and "Geschaftsfuhrer" and
    the patterns that name them compare alike; case is left to the rules' IGNORECASE."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace("ß", "ss")


class TitleClassifier:
    def __init__(self, table: TitleTable) -> None:
        self.table = table
        self._rewrites = [
            (re.compile(fold(r.pattern), re.IGNORECASE), r.replace) for r in table.normalize
        ]
        self._sen = [(r, re.compile(fold(r.pattern), re.IGNORECASE)) for r in table.seniority]
        self._dep = [(r, re.compile(fold(r.pattern), re.IGNORECASE)) for r in table.department]
        self._cache: dict[str, TitleInfo] = {}

    def classify(self, title: str | None) -> TitleInfo:
        if not title or not title.strip():
            return _UNKNOWN
        key = " ".join(title.split())[:300]
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        text = fold(key)
        for rx_, replacement in self._rewrites:
            text = rx_.sub(replacement, text)
        seniority, rule, flags = "individual", None, set()
        department, dep_rule = None, None
        for r, rx in self._sen:
            if rx.search(text):
                if r.seniority and rule is None:
                    seniority, rule = r.seniority, r.name
                if r.department and department is None:
                    department, dep_rule = r.department, r.name
                flags.update(r.flags)
                if r.final:
                    break
        if department is None:
            for r, rx in self._dep:
                if rx.search(text):
                    department, dep_rule = r.department, r.name
                    break
        info = TitleInfo(seniority, department, rule, dep_rule, frozenset(flags))
        if len(self._cache) < 100_000:
            self._cache[key] = info
        return info


def load_title_table(path: Path) -> TitleTable:
    data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    return TitleTable.model_validate(data)


def validate_title_table(path: Path) -> tuple[TitleTable | None, list[str]]:
    """The table, or every problem of the file with its line and rule name."""
    try:
        text = path.read_text(encoding="utf-8")
        data: Any = yaml.safe_load(text)
    except OSError as exc:
        return None, [f"{path}: cannot read ({exc.strerror})"]
    except yaml.YAMLError as exc:
        return None, [f"{path}: not valid YAML ({str(exc).splitlines()[0]})"]
    try:
        return TitleTable.model_validate(data), []
    except ValidationError as exc:
        root = compose(text)
        found = first_per_location(pydantic_problems(exc, TitleTable))
        return None, [f"{path.name}: {describe(p, data, root)}" for p in found]
