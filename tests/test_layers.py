"""The layering rules of docs/ARCHITECTURE: who may import and touch what."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pjai

SRC = Path(pjai.__file__).parent
CONVENTIONAL = {"_asdict", "_mapping", "_fields", "_replace", "_make", "_t", "_exit"}
"""Underscore names that are public by convention (named tuples, SQLAlchemy rows, the
``os._exit`` a forked process ends with)."""


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


DRIVERS = ("sqlalchemy", "apsw", "sqlite3", "psycopg")
"""Modules through which code speaks SQL."""
FILE_NAME = r"[\w.-]+\.(db|json|jsonl|sqlite3?)"


def test_the_cli_holds_no_sql_no_events_and_no_file_names() -> None:
    """``pjai.cli`` parses, makes one ``pjai.app`` call and prints: it imports no database
    driver, builds no event, commits and executes nothing itself, and names no data file
    (each file's name is defined by the module that owns it, listed by ``DataDir``)."""
    from pjai import schema
    from pjai.schema.event import Event

    events = {
        name
        for name in dir(schema)
        if isinstance(kind := getattr(schema, name), type) and issubclass(kind, Event)
    }
    offences = []
    for path in sorted((SRC / "cli").rglob("*.py")):
        where = path.relative_to(SRC)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
                if modules[0].startswith("pjai.schema"):
                    built = [a.name for a in node.names if a.name in events]
                    offences += [f"{where}:{node.lineno} imports event {n}" for n in built]
            else:
                modules = []
            offences += [
                f"{where}:{node.lineno} imports {m}" for m in modules if m.split(".")[0] in DRIVERS
            ]
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("commit", "execute", "executemany")
            ):
                offences.append(f"{where}:{node.lineno} calls .{node.func.attr}()")
            if isinstance(node, ast.Constant) and re.fullmatch(FILE_NAME, str(node.value)):
                offences.append(f"{where}:{node.lineno} names the file {node.value!r}")
    assert not offences, "the CLI does the application's work:\n" + "\n".join(offences)
