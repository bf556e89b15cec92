"""Each package's ``__all__`` names exactly its public members, and they all exist."""

from __future__ import annotations

import importlib
import inspect

import pytest

PACKAGES = [
    "pjai",
    "pjai.errors",
    "pjai.resource",
    "pjai.schema",
    "pjai.store",
    "pjai.sql",
    "pjai.hybrid",
    "pjai.hybrid.archive",
    "pjai.hybrid.legacy",
    "pjai.memory",
    "pjai.sync",
    "pjai.sync.server",
    "pjai.bench",
    "pjai.app",
    "pjai.app.reads",
    "pjai.web",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    missing = [member for member in module.__all__ if not hasattr(module, member)]
    assert missing == []


@pytest.mark.parametrize("name", PACKAGES)
def test_public_members_are_exported(name: str) -> None:
    module = importlib.import_module(name)
    public = {
        member
        for member, value in vars(module).items()
        if not member.startswith("_")
        and not inspect.ismodule(value)
        and getattr(value, "__module__", name).startswith("pjai")
        and member not in {"annotations"}
    }
    assert public - set(module.__all__) == set()
