"""The suggested model as a YAML file: the current file with only the refit numbers changed.

The current file's text is edited in place, scalar by scalar, at the positions PyYAML's composer
reports: `points` of engagement rules, `points` of tiers, the rule and category `cap`s that scale
with them (caps.py), `lifecycle.mql.threshold`, the accounts section's numbers on the contact
scale (accounts_refit.py; a key the file leaves to its default is added), the priority bands'
minimums (priority_refit.py; the default bands added whole) and `version` (plus
`title_rules` when the new file lives in another folder, so it still finds the title table).
Comments, key order and flow style stay as the team wrote them, so a plain diff shows exactly
what changed. The edited text is parsed back and compared with the intended content; if they
differ (an unusual layout: anchors, a missing key), the content is dumped whole instead.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from connector.calibrate.caps import CapChange, cap_edits
from connector.calibrate.fit import PointChange
from connector.calibrate.grades import GradeFit
from connector.errors import ModelError
from connector.files import write_private
from connector.model.loader import LoadedModel, title_rules_path, validate_model_file

PathKey = tuple[str | int, ...]


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        raise TypeError("only numbers, booleans and strings are edited")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a YAML double-quoted one


def _node_at(root: yaml.Node, path: PathKey) -> yaml.Node | None:
    node: yaml.Node = root
    for key in path:
        if isinstance(key, int):
            if not isinstance(node, yaml.SequenceNode) or key >= len(node.value):
                return None
            node = node.value[key]
        else:
            if not isinstance(node, yaml.MappingNode):
                return None
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == key:
                    node = v
                    break
            else:
                return None
    return node


def _set(raw: Any, path: PathKey, value: Any) -> None:
    target = raw
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


NEW_MARK = "  # NEW: suggested by calibrate"


def _flow(value: Any) -> str:
    if not isinstance(value, dict | list):  # a scalar: no document-end marker after it
        return _scalar(value)
    return yaml.safe_dump(
        value, default_flow_style=True, sort_keys=False, allow_unicode=True, width=10_000
    ).strip()


def _line_end(text: str, mark: Any) -> int:
    """Where to insert a line after the node ending at `mark` (before a comment on its line)."""
    index = int(mark.index)
    line_start = text.rfind("\n", 0, index) + 1
    if line_start > 0 and not text[line_start:index].strip():  # a block node ends where the
        return line_start - 1  # next token starts: insert at the end of the line before
    end = text.find("\n", int(mark.index))
    return len(text) if end < 0 else end


def _insertions(text: str, root: yaml.Node, adds: Additions) -> list[tuple[int, int, str]] | None:
    """Text insertions that append items to block sequences and keys to block mappings."""
    spans: list[tuple[int, int, str]] = []
    for path, items in adds.items():
        node = _node_at(root, path)
        if isinstance(node, yaml.SequenceNode) and node.value and not node.flow_style:
            last = node.value[-1]
            line_start = text.rfind("\n", 0, last.start_mark.index) + 1
            dash = text.find("-", line_start, last.start_mark.index)
            if dash < 0:
                return None
            at = _line_end(text, last.end_mark)
            pad = " " * (dash - line_start)
            new = "".join(f"\n{pad}- {_flow(v)}{NEW_MARK}" for _k, v in items)
        elif isinstance(node, yaml.MappingNode) and node.value and not node.flow_style:
            k_last, v_last = node.value[-1]
            at = _line_end(text, v_last.end_mark)
            pad = " " * k_last.start_mark.column
            new = "".join(f"\n{pad}{k}: {_flow(v)}{NEW_MARK}" for k, v in items)
        else:
            return None
        spans.append((at, at, new))
    return spans


Additions = dict[PathKey, list[tuple[str | None, Any]]]


def edit_yaml(
    text: str,
    edits: dict[PathKey, Any],
    header: Sequence[str] = (),
    additions: Additions | None = None,
) -> str:
    """Return `text` with the scalar at each path replaced (see the module docstring), and
    `additions` appended: `(None, item)` to a sequence, `(key, value)` to a mapping."""
    raw = yaml.safe_load(text)
    expected = copy.deepcopy(raw)
    for path, value in edits.items():
        _set(expected, path, value)
    for path, items in (additions or {}).items():
        target = expected
        for key in path:
            target = target[key]
        for k, v in items:
            if k is None:
                target.append(v)
            else:
                target[k] = v
    head = "".join(f"# {line}\n" if line else "#\n" for line in header)
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    spans: list[tuple[int, int, str]] = []
    ok = root is not None
    for path, value in edits.items():
        node = _node_at(root, path) if root is not None else None
        if not isinstance(node, yaml.ScalarNode) or node.start_mark is None:
            ok = False
            break
        spans.append((node.start_mark.index, node.end_mark.index, _scalar(value)))
    if ok and root is not None and additions:
        extra = _insertions(text, root, additions)
        ok = extra is not None
        spans += extra or []
    if ok:
        out = text
        for start, end, new in sorted(spans, reverse=True):
            out = out[:start] + new + out[end:]
        out = head + out
        try:
            same = yaml.safe_load(out) == expected
        except yaml.YAMLError:
            same = False
        if same:
            return out
    return head + yaml.safe_dump(expected, sort_keys=False, allow_unicode=True, width=100)


def model_edits(
    model: LoadedModel,
    changes: Sequence[PointChange],
    threshold: float,
    version: str,
    caps: Sequence[CapChange] = (),
    grades: GradeFit | None = None,
) -> dict[PathKey, Any]:
    """The (path → value) edits that make the suggested model from the current one."""
    rules = model.model.engagement.rules
    index = {r.name: i for i, r in enumerate(rules)}
    fit_index = {r.name: i for i, r in enumerate(model.model.fit.rules)}
    edits: dict[PathKey, Any] = {("version",): version}
    edits.update(cap_edits(model, caps))
    if grades is not None:
        for g, v in grades.grades.items():
            edits[("fit", "grades", g)] = v
        for g, v in grades.score_points.items():
            edits[("fit", "score_points", g)] = v
        edits[("fit", "add_to_score")] = True
    for ch in changes:
        if not ch.changed:
            continue
        if ch.section == "fit":
            edits[("fit", "rules", fit_index[ch.rule], "points")] = ch.suggested
            continue
        if ch.section != "engagement":  # a new rule: an addition, not an edit
            continue
        i = index[ch.rule]
        tiers = rules[i].tiers
        if ch.tier is None:
            edits[("engagement", "rules", i, "points")] = ch.suggested
        else:
            assert tiers is not None
            j = next(k for k, t in enumerate(tiers) if t.label == ch.tier)
            edits[("engagement", "rules", i, "tiers", j, "points")] = ch.suggested
    if threshold != model.model.lifecycle.mql.threshold:
        edits[("lifecycle", "mql", "threshold")] = (
            int(threshold) if float(threshold).is_integer() else threshold
        )
    return edits


def edits_or_additions(
    model: LoadedModel, values: dict[PathKey, Any]
) -> tuple[dict[PathKey, Any], Additions]:
    """`values` (path → value) as edits of the model file where it has the key, else as
    additions under the deepest mapping it has (a key left to its default: `per_contact_cap`
    not written, a whole `breadth:` left out), several under one missing mapping merged."""
    raw = yaml.safe_load(Path(model.path).read_text(encoding="utf-8"))
    edits: dict[PathKey, Any] = {}
    missing: dict[PathKey, dict[str, Any]] = {}
    for path, value in values.items():
        node, depth = raw, 0
        while depth < len(path) and _has(node, path[depth]):
            node = node[path[depth]]
            depth += 1
        if depth == len(path):
            edits[path] = value
            continue
        tree = missing.setdefault(path[:depth], {})
        for key in path[depth:-1]:
            tree = tree.setdefault(str(key), {})
        tree[str(path[-1])] = value
    return edits, {path: list(tree.items()) for path, tree in missing.items()}


def _has(node: Any, key: str | int) -> bool:
    if isinstance(key, int):
        return isinstance(node, list) and key < len(node)
    return isinstance(node, dict) and key in node


def render_suggested(
    model: LoadedModel,
    edits: dict[PathKey, Any],
    out_path: Path,
    header: Sequence[str] = (),
    *,
    absolute_titles: bool = False,
    additions: Additions | None = None,
) -> str:
    """The suggested model's text for a file at `out_path`."""
    source = Path(model.path)
    text = source.read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    all_edits = dict(edits)
    ref = raw.get("title_rules", "titles.yaml") if isinstance(raw, dict) else None
    # a model whose missing titles.yaml the shipped rules stand in for keeps its reference:
    # the suggested file falls back the same way (never pinned to the installed package)
    if isinstance(ref, str) and title_rules_path(source, ref)[1] is None:
        titles = (source.parent / ref).resolve()
        out_dir = out_path.resolve().parent
        if absolute_titles or Path(ref).is_absolute():
            new_ref = str(titles)
        else:
            try:
                new_ref = os.path.relpath(titles, out_dir)
            except ValueError:  # another drive
                new_ref = str(titles)
        if new_ref != ref:
            all_edits[("title_rules",)] = new_ref  # a missing key: the whole file is dumped
    return edit_yaml(text, all_edits, header, additions)


def load_suggested(
    model: LoadedModel,
    edits: dict[PathKey, Any],
    header: Sequence[str] = (),
    additions: Additions | None = None,
) -> tuple[LoadedModel, str]:
    """Validate the suggested model through the real loader, from a temporary file; returns it
    with its text (title table referenced by absolute path)."""
    with tempfile.TemporaryDirectory(prefix="leadscore-calibrate-") as tmp:
        path = Path(tmp) / "model.suggested.yaml"
        text = render_suggested(
            model, edits, path, header, absolute_titles=True, additions=additions
        )
        write_private(path, text)
        loaded, problems = validate_model_file(path)
    if loaded is None:
        raise ModelError(str(path), problems)
    return loaded, text


def write_suggested(
    model: LoadedModel,
    edits: dict[PathKey, Any],
    out_path: str | Path,
    header: Sequence[str] = (),
    additions: Additions | None = None,
) -> LoadedModel:
    """Write the suggested model to `out_path` and validate the file as written."""
    out = Path(out_path)
    text = render_suggested(model, edits, out, header, additions=additions)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_private(out, text)
    loaded, problems = validate_model_file(out)
    if loaded is None:
        raise ModelError(str(out), problems)
    return loaded


def rule_additions(model: LoadedModel, rules: Sequence[dict[str, Any]]) -> Additions:
    """New rules (and their category, when the model lacks it) as additions."""
    if not rules:
        return {}
    adds: Additions = {("engagement", "rules"): [(None, r) for r in rules]}
    cats = {r["category"] for r in rules} - set(model.model.engagement.categories)
    if cats:
        adds[("engagement", "categories")] = [
            (c, {"description": "rules added by leadscore calibrate (review each)"})
            for c in sorted(cats)
        ]
    return adds
