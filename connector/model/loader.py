"""Load and validate a model file; compute its fingerprint. Lists every problem at once."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from connector.errors import ModelError
from connector.model.problems import (
    Problem,
    compose,
    describe,
    first_per_location,
    pydantic_problems,
)
from connector.model.problems import format_errors as format_errors
from connector.model.schema import (
    NAMED_SUFFIXES,
    Lifecycle,
    MqlPolicy,
    NamedScore,
    Priority,
    ScoringModel,
    semantic_problems,
)
from connector.model.titles import TitleClassifier, TitleTable, validate_title_table
from connector.model.vocabulary import vocabulary_problems
from connector.resources import DEFAULT_MODEL_PATH as _SHIPPED_MODEL
from connector.resources import DEFAULT_TITLES_PATH as _SHIPPED_TITLES
from connector.text import clean_value

DEFAULT_MODEL_PATH = _SHIPPED_MODEL  # the default model, shipped in the package
DEFAULT_TITLES_PATH = _SHIPPED_TITLES  # its title rules
DEFAULT_TITLES_NAME = "titles.yaml"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """A validated model with its title table, its path and its content fingerprint.

    `notes`: warnings an admin should read (the shipped title rules stood in for a missing
    `titles.yaml` next to the model)."""

    model: ScoringModel
    titles: TitleClassifier
    path: str
    fingerprint: str
    notes: tuple[str, ...] = ()
    target_accounts: frozenset[str] = frozenset()  # the accounts section's target domains

    @property
    def version(self) -> str:
        return self.model.version

    @property
    def lifecycle_name(self) -> str:
        """The lifecycle score's name (`lifecycle_score`, else "lifecycle")."""
        return self.model.lifecycle_score or "lifecycle"

    @cached_property
    def named(self) -> tuple[NamedModel, ...]:
        """The model's named scores (`scores:`), each as a model the engine scores with:
        built once per loaded model, never per contact."""
        return tuple(derive_named(self, s) for s in self.model.scores)

    def named_score(self, name: str) -> NamedModel | None:
        return next((n for n in self.named if n.name == name), None)

    def score_names(self) -> list[str]:
        """Every score's name, the lifecycle score first."""
        return [self.lifecycle_name, *(n.name for n in self.named)]


@dataclass(frozen=True)
class NamedModel:
    """One named score: `loaded` is the base model with this score's engagement (and fit
    override), which `connector.scoring.score_rows` scores with as it scores any model."""

    name: str
    loaded: LoadedModel
    threshold: float | None
    description: str = ""
    own_priority: bool = False  # its own priority bands (else the lifecycle score's)

    @property
    def priority_labels(self) -> tuple[str, ...]:
        """Its priority labels, best first (A1 … D3 with the default bands)."""
        return tuple(self.loaded.model.priority.labels())

    def key(self, suffix: str) -> str:
        """Our property key: `services_score`, `services_grade`, ..."""
        return f"{self.name}_{suffix}"

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.key(s) for s in NAMED_SUFFIXES)


def priority_labels_of(loaded: LoadedModel) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """The labels `loaded` writes to the priority dropdowns: the lifecycle score's (and every
    named score's without bands of its own), and {named score: its own}."""
    own = {n.name: n.priority_labels for n in loaded.named if n.own_priority}
    return tuple(loaded.model.priority.labels()), own


def derive_named(base: LoadedModel, score: NamedScore) -> NamedModel:
    """The model a named score is computed with: the base with its engagement, its fit (or
    the shared one), no accounts, no named scores, and its threshold as the MQL threshold
    (the derived lifecycle decision is never written: only the lifecycle score moves stages).
    The fingerprint is the base's: a named score belongs to the model file that holds it."""
    m = base.model
    threshold = score.threshold if score.threshold is not None else m.lifecycle.mql.threshold
    lifecycle = Lifecycle(
        mql=MqlPolicy(threshold=threshold, grades=m.lifecycle.mql.grades), write_stage=False
    )
    derived = m.model_copy(
        update={
            "engagement": score.engagement,
            "fit": score.fit if score.fit is not None else m.fit,
            "lifecycle": lifecycle,
            "priority": score.priority if score.priority is not None else m.priority,
            "accounts": None,
            "scores": [],
            "lifecycle_score": None,
        }
    )
    loaded = LoadedModel(derived, base.titles, base.path, base.fingerprint, ())
    return NamedModel(
        score.name, loaded, score.threshold, score.description, score.priority is not None
    )


def fingerprint(
    model: ScoringModel, titles: TitleTable, targets: frozenset[str] = frozenset()
) -> str:
    dumped = model.model_dump(mode="json", by_alias=True)
    if model.priority == Priority():  # the default bands: the fingerprint from before them
        dumped.pop("priority")
    if not model.scores and model.lifecycle_score is None:  # one score: as before them
        dumped.pop("scores")
        dumped.pop("lifecycle_score")
    for named in dumped.get("scores", ()):
        if named.get("priority") is None:  # the shared bands: as before their own
            named.pop("priority", None)
    accounts = dumped.get("accounts")
    if accounts is not None and not accounts["fit"]["force"]:  # the fingerprint from before them
        accounts["fit"].pop("force")
    content: dict[str, Any] = {"model": dumped, "titles": titles.model_dump()}
    if targets:
        content["target_accounts"] = sorted(targets)
    payload = json.dumps(
        content,
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def title_rules_path(model_path: Path, ref: str | None) -> tuple[Path, str | None, str | None]:
    """Where the title table of the model at `model_path` is: (path, note, problem).

    `title_rules` is relative to the model file's folder. A copy of the default model that
    left its `titles.yaml` behind (the default name, absent there) falls back to the shipped
    title rules, with a note naming where it looked; any other missing file is a problem
    naming the path and what to do. `title_rules: null` means the shipped rules."""
    if ref is None:
        return DEFAULT_TITLES_PATH, None, None
    path = model_path.parent / ref
    if path.exists() or ref != DEFAULT_TITLES_NAME:
        problem = None
        if not path.is_file():
            problem = (
                f"no title rule file at {path} (title_rules {ref!r} is relative to the model's "
                "folder): put the file there or fix title_rules; `leadscore init-model DIR` "
                "writes a model with its titles.yaml"
            )
        return path, None, problem
    note = (
        f"title_rules: no {ref} next to the model (looked at {path}); using the shipped title "
        f"rules ({DEFAULT_TITLES_PATH}). To edit them, copy that file there or run "
        "`leadscore init-model DIR`"
    )
    return DEFAULT_TITLES_PATH, note, None


def validate_model_file(path: str | Path) -> tuple[LoadedModel | None, list[str]]:
    """Return (model, []) or (None, every problem with its line, rule name and location)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
        # a "\ud83d" escape is a lone surrogate no UTF-8 sink can write: replaced by U+FFFD
        raw: Any = clean_value(yaml.safe_load(text))
    except OSError as exc:
        return None, [f"cannot read model file ({exc.strerror})"]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return None, [f"{where}not valid YAML ({problem})"]
    if not isinstance(raw, dict):
        return None, ["the model file must be a mapping of keys (version, fit, engagement, ...)"]
    found: list[Problem] = []
    model: ScoringModel | None = None
    try:
        model = ScoringModel.model_validate(raw)
    except ValidationError as exc:
        found.extend(pydantic_problems(exc, ScoringModel))
    found.extend(semantic_problems(raw))
    table: TitleTable | None = None
    title_problems: list[str] = []
    notes: tuple[str, ...] = ()
    title_ref = raw.get("title_rules", DEFAULT_TITLES_NAME)
    if title_ref is None or isinstance(title_ref, str):
        titles_path, note, missing = title_rules_path(p, title_ref)
        if missing is not None:
            found.append((("title_rules",), missing))
        else:
            table, title_problems = validate_title_table(titles_path)
            notes = (note,) if note else ()
    found.extend(vocabulary_problems(raw, table))
    for i, item in enumerate(raw.get("scores") or []):
        if isinstance(item, dict):  # a named score's own engagement (and fit) sections
            sub = {k: item[k] for k in ("engagement", "fit") if k in item}
            found.extend((("scores", i, *loc), msg) for loc, msg in vocabulary_problems(sub, table))
    problems: list[str] = []
    if found:
        root = compose(text)
        problems = [describe(f, raw, root) for f in first_per_location(found)]
    problems.extend(f"title_rules: {t}" for t in title_problems)
    targets: frozenset[str] = frozenset()
    accounts_raw = raw.get("accounts")
    target_ref = accounts_raw.get("target_accounts") if isinstance(accounts_raw, dict) else None
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
            model,
            TitleClassifier(table),
            str(p),
            fingerprint(model, table, targets),
            notes,
            targets,
        ),
        [],
    )


def load_model(path: str | Path | None = None) -> LoadedModel:
    p = Path(path) if path is not None else DEFAULT_MODEL_PATH
    loaded, problems = validate_model_file(p)
    if loaded is None:
        raise ModelError(str(p), problems)
    for note in loaded.notes:
        log.warning("%s: %s", p, note)
    return loaded


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
