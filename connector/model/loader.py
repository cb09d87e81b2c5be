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
    target_accounts: frozenset[str] = frozenset()  # the accounts section's target domains

    @property
    def version(self) -> str:
        return self.model.version


def format_errors(exc: ValidationError) -> list[str]:
    out: list[str] = []
    for err in exc.errors():
        loc = ""
        for part in err["loc"]:
            if isinstance(part, int):
                loc += f"[{part}]"
            elif part in ("str", "int", "float", "bool", "list[union[str,int,float]]", "Match"):
                continue  # union branch names add noise, not location
            else:
                loc += f".{part}" if loc else str(part)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] in ("int_parsing", "int_type", "int_from_float"):
            msg = "must be an integer"
        elif err["type"] == "extra_forbidden":
            msg = "unknown key (typo?)"
        elif err["type"] == "missing":
            msg = "required"
        out.append(f"{loc}: {msg}" if loc else msg)
    # a union error repeats one location per branch; keep the first message per location
    seen: dict[str, str] = {}
    for line in out:
        seen.setdefault(line.split(":", 1)[0], line)
    return list(seen.values())


def fingerprint(
    model: ScoringModel, titles: TitleTable, targets: frozenset[str] = frozenset()
) -> str:
    content: dict[str, Any] = {
        "model": model.model_dump(mode="json", by_alias=True),
        "titles": titles.model_dump(),
    }
    if targets:
        content["target_accounts"] = sorted(targets)
    payload = json.dumps(
        content,
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
    targets: frozenset[str] = frozenset()
    target_ref = (
        (raw.get("accounts") or {}).get("target_accounts")
        if isinstance(raw.get("accounts"), dict)
        else None
    )
    if isinstance(target_ref, str):
        target_path = p.parent / target_ref
        if not target_path.exists() and (DEFAULT_MODEL_PATH.parent / target_ref).exists():
            target_path = DEFAULT_MODEL_PATH.parent / target_ref  # a copied model: the shipped list
        targets, target_problems = read_target_accounts(target_path)
        problems.extend(f"accounts.target_accounts: {t}" for t in target_problems)
    if problems or model is None or table is None:
        return None, problems
    return (
        LoadedModel(
            model, TitleClassifier(table), str(p), fingerprint(model, table, targets), targets
        ),
        [],
    )


def read_target_accounts(path: Path) -> tuple[frozenset[str], list[str]]:
    """Target-account domains, one a line (`#` starts a comment); each a bare domain."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return frozenset(), [f"{path}: cannot read the target-account list ({exc.strerror})"]
    domains: set[str] = set()
    problems: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        entry = line.split("#", 1)[0].strip().lower()
        if not entry:
            continue
        if "@" in entry or "/" in entry or " " in entry or "." not in entry:
            problems.append(f"{path.name}:{n}: not a domain: {entry[:80]!r}")
            continue
        domains.add(entry.removeprefix("www."))
    return frozenset(domains), problems


def load_model(path: str | Path | None = None) -> LoadedModel:
    p = Path(path) if path is not None else DEFAULT_MODEL_PATH
    loaded, problems = validate_model_file(p)
    if loaded is None:
        raise ModelError(str(p), problems)
    return loaded
