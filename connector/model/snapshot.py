"""A loaded model as self-contained data, and back: what the state DB keeps of the model in
force so that the worker rebuilds exactly that model without its file (or its title rules'
file). Pure: no I/O.

The content is the model's normalized form with its title table, as JSON: the very data the
fingerprint hashes, so the rebuilt model has the fingerprint of the one applied (when the same
leadscore version reads it).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from connector.errors import ModelError
from connector.model.loader import LoadedModel, fingerprint, format_errors
from connector.model.problems import loc_text
from connector.model.schema import ScoringModel, semantic_problems
from connector.model.titles import TitleClassifier, TitleTable


def model_content(loaded: LoadedModel) -> str:
    """The model and its title rules, normalized, as one JSON text."""
    content: dict[str, Any] = {
        "model": loaded.model.model_dump(mode="json", by_alias=True),
        "titles": loaded.titles.table.model_dump(mode="json"),
    }
    if loaded.target_accounts:
        content["target_accounts"] = sorted(loaded.target_accounts)
    return json.dumps(
        content,
        sort_keys=True,
        separators=(",", ":"),
    )


def model_from_content(content: str, label: str) -> LoadedModel:
    """The model `model_content` gave `content` for; `label` names where it came from (it is
    the model's `path`). A content this version cannot read raises `ModelError`."""
    try:
        data: Any = json.loads(content)
    except ValueError as exc:
        raise ModelError(label, [f"not valid JSON ({exc})"]) from None
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise ModelError(label, ["no model in the stored content"])
    problems: list[str] = []
    try:
        model = ScoringModel.model_validate(data["model"])
        table = TitleTable.model_validate(data.get("titles"))
    except ValidationError as exc:
        problems.extend(format_errors(exc))
    problems.extend(f"{loc_text(loc)}: {msg}" for loc, msg in semantic_problems(data["model"]))
    if problems:
        raise ModelError(label, problems)
    targets = frozenset(str(d) for d in data.get("target_accounts") or ())
    return LoadedModel(
        model,
        TitleClassifier(table),
        label,
        fingerprint(model, table, targets),
        target_accounts=targets,
    )
