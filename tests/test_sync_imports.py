"""Import rules of the sync layer (ARCHITECTURE.md §2), checked in fresh interpreters.

The sync server's stack (Starlette, uvicorn, prometheus_client) and the SQL layer stay
out of what a client loads: only ``pjai.sync.server`` imports them.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import pjai.sync

SERVER_STACK = ("starlette", "uvicorn", "prometheus_client")
SYNC = Path(pjai.sync.__file__).parent
CLIENT_MODULES = sorted(
    "pjai.sync" + ("" if p.stem == "__init__" else f".{p.stem}")
    for p in SYNC.glob("*.py")  # the package's own modules; pjai.sync.server is a folder
)


def loaded_after(statement: str) -> list[str]:
    """The modules a fresh interpreter has loaded after running ``statement``."""
    probe = f"import sys; {statement}; import json; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    modules: list[str] = json.loads(done.stdout)
    return modules


def test_the_client_modules_are_found() -> None:
    assert {"pjai.sync", "pjai.sync.client", "pjai.sync.transport"} <= set(CLIENT_MODULES)
    assert "pjai.sync.server" not in CLIENT_MODULES


@pytest.mark.parametrize("package", ["pjai.hybrid", "pjai.sync"])
def test_importing_loads_no_server_stack(package: str) -> None:
    loaded = loaded_after(f"import {package}")
    assert package in loaded  # the probe did import it
    assert [m for m in loaded if m.split(".")[0] in SERVER_STACK] == []
    assert [m for m in loaded if m.startswith("pjai.sync.server")] == []


def test_the_sync_client_modules_load_neither_sql_nor_the_server() -> None:
    loaded = loaded_after("import " + ", ".join(CLIENT_MODULES))
    assert set(CLIENT_MODULES) <= set(loaded)
    assert [m for m in loaded if m == "pjai.sql" or m.startswith("pjai.sql.")] == []
    assert [m for m in loaded if m.split(".")[0] in SERVER_STACK] == []


@pytest.mark.parametrize("module", CLIENT_MODULES)
def test_a_sync_client_module_names_neither_sql_nor_the_server(module: str) -> None:
    """Imports inside functions count too, though they run only when called."""
    name = "__init__" if module == "pjai.sync" else module.rpartition(".")[2]
    tree = ast.parse((SYNC / f"{name}.py").read_text())
    imported = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            imported.append(node.module or "")
    forbidden = ("pjai.sql", "pjai.sync.server", *SERVER_STACK)
    assert [m for m in imported if m.split(".")[0] in SERVER_STACK or m.startswith(forbidden)] == []


def test_the_server_is_where_they_are_loaded() -> None:
    """The checks above can fail: the server does load what they look for."""
    loaded = loaded_after("import pjai.sync.server")
    assert {"pjai.sql", "starlette", "uvicorn", "prometheus_client"} <= set(loaded)
