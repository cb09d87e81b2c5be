"""The layers of connector/ (the brief's rules): the state DB and the CRM adapters know each
other only through `connector.types`. Every import counts, also those inside a function or
under `TYPE_CHECKING` (AST of every module)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "connector"


def _imports(path: Path, root: Path) -> set[str]:
    """Every module `path` imports (absolute names; relative imports resolved)."""
    package = ".".join(path.relative_to(root.parent).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return found


def _offenders(layer: str, forbidden: str, root: Path = ROOT) -> list[str]:
    out = []
    for path in sorted((root / layer).rglob("*.py")):
        found = _imports(path, root)
        bad = sorted(m for m in found if m == forbidden or m.startswith(forbidden + "."))
        if bad:
            out.append(f"{path.relative_to(root.parent).as_posix()}: {', '.join(bad)}")
    return out


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("state", "connector.crm"),  # CrmCompany & co. come from connector.types
        ("crm", "connector.state"),
    ],
)
def test_layer_does_not_import(layer: str, forbidden: str) -> None:
    assert _offenders(layer, forbidden) == []


def test_the_check_sees_an_import_anywhere_in_a_module(tmp_path: Path) -> None:
    """The scan catches the import this layering once had (state/accounts.py took CrmCompany
    from connector.crm.base), inside a function or relative too."""
    path = tmp_path / "connector" / "state" / "x.py"
    path.parent.mkdir(parents=True)
    path.write_text(
        "def f():\n    from connector.crm.base import CrmCompany\n    from ..crm import base\n"
    )
    assert _offenders("state", "connector.crm", tmp_path / "connector") == [
        "connector/state/x.py: connector.crm, connector.crm.base, connector.crm.base.CrmCompany"
    ]


def test_crm_company_is_one_type_under_both_names() -> None:
    """Moved to connector.types; `from connector.crm.base import CrmCompany` still works."""
    from connector.crm import base
    from connector.types import CrmCompany

    assert base.CrmCompany is CrmCompany
    assert CrmCompany("9001", domain="acme.com").firmographics() == (
        "acme.com", None, None, None, None, None,
    )  # fmt: skip
