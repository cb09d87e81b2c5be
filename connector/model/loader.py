"""Load and validate a model file; compute its fingerprint. Lists every problem at once."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from connector.errors import ModelError
from connector.model.schema import ScoringModel, semantic_problems
from connector.model.titles import TitleClassifier, TitleTable, validate_title_table

DEFAULT_MODEL_PATH = Path(__file__).resolve().parents[2] / "config" / "model.yaml"


@dataclass(frozen=True)
class LoadedModel:
    """A validated model with its title table, its path and its content fingerprint."""

    model: ScoringModel
    titles: TitleClassifier
    path: str
    fingerprint: str

    @property
    def version(self) -> str:
        return self.model.version


def format_errors(exc: ValidationError) -> list[str]:
    found: list[tuple[str, str, str]] = []
    for err in exc.errors():
        loc = ""
        for part in err["loc"]:
            if isinstance(part, int):
                loc += f"[{part}]"
            elif part in ("str", "int", "float", "bool", "list[union[str,int,float]]", "Match"):
                continue  # union branch names add noise, not location
            elif part.startswith("function-"):
                continue  # a validated branch (`function-after[_not_empty(), Match]`)
            else:
                loc += f".{part}" if loc else str(part)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] in ("int_parsing", "int_type", "int_from_float"):
            msg = "must be an integer"
        elif err["type"] == "extra_forbidden":
            msg = "unknown key (typo?)"
        elif err["type"] == "missing":
            msg = "required"
        found.append((loc, msg, err["type"]))
    # a union's other branches ("Input should be a valid string") say nothing when one branch
    # reported a problem deeper down: keep the deeper one
    out = [
        f"{loc}: {msg}" if loc else msg
        for loc, msg, kind in found
        if not (
            kind.endswith("_type")
            and loc
            and any(o != loc and o.startswith((loc + ".", loc + "[")) for o, _, _ in found)
        )
    ]
    # a union error repeats one location per branch; keep the first message per location
    seen: dict[str, str] = {}
    for line in out:
        seen.setdefault(line.split(":", 1)[0], line)
    return list(seen.values())


def fingerprint(model: ScoringModel, titles: TitleTable) -> str:
    payload = json.dumps(
        {"model": model.model_dump(mode="json", by_alias=True), "titles": titles.model_dump()},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def validate_model_file(path: str | Path) -> tuple[LoadedModel | None, list[str]]:
    """Return (model, []) or (None, every problem with its location)."""
    p = Path(path)
    try:
        raw: Any = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        return None, [f"cannot read model file ({exc.strerror})"]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return None, [f"{where}not valid YAML ({problem})"]
    if not isinstance(raw, dict):
        return None, ["the model file must be a mapping of keys (version, fit, engagement, ...)"]
    problems: list[str] = []
    model: ScoringModel | None = None
    try:
        model = ScoringModel.model_validate(raw)
    except ValidationError as exc:
        problems.extend(format_errors(exc))
    problems.extend(p for p in semantic_problems(raw) if p not in problems)
    table: TitleTable | None = None
    title_ref = raw.get("title_rules", "titles.yaml")
    if isinstance(title_ref, str):
        table, title_problems = validate_title_table(p.parent / title_ref)
        problems.extend(f"title_rules: {t}" for t in title_problems)
    if problems or model is None or table is None:
        return None, problems
    return LoadedModel(model, TitleClassifier(table), str(p), fingerprint(model, table)), []


def load_model(path: str | Path | None = None) -> LoadedModel:
    p = Path(path) if path is not None else DEFAULT_MODEL_PATH
    loaded, problems = validate_model_file(p)
    if loaded is None:
        raise ModelError(str(p), problems)
    return loaded
