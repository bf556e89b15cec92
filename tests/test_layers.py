"""The layering rules of docs/ARCHITECTURE: who may import and touch what."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pjai

SRC = Path(pjai.__file__).parent
CONVENTIONAL = {"_asdict", "_mapping", "_fields", "_replace", "_make", "_t"}
"""Underscore names that are public by convention (named tuples, SQLAlchemy rows)."""


def _package(path: Path) -> str:
    parts = path.relative_to(SRC).parts
    return parts[0] if len(parts) > 1 else ""


def _defined(tree: ast.AST) -> set[str]:
    """Underscore names a module defines: functions, methods, attributes it assigns."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if re.fullmatch(r"_[a-z]\w*", n)}


def test_no_module_touches_another_packages_underscore_members() -> None:
    """``x._name`` on anything but ``self``/``cls`` must name something its own package
    defines: another package's internals are reached through their public API."""
    trees = {path: ast.parse(path.read_text()) for path in SRC.rglob("*.py")}
    defined: dict[str, set[str]] = defaultdict(set)
    for path, tree in trees.items():
        defined[_package(path)] |= _defined(tree)
    offences = []
    for path, tree in trees.items():
        own = defined[_package(path)]
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and re.fullmatch(r"_[a-z]\w*", node.attr)):
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            if node.attr in CONVENTIONAL or node.attr in own:
                continue
            offences.append(f"{path.relative_to(SRC)}:{node.lineno} .{node.attr}")
    assert not offences, "reaches into another package's internals:\n" + "\n".join(offences)
