"""One exception root, and its tree in ``pjai.errors``' docstring is the real one."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pjai
from pjai import errors


def _defined() -> list[type[BaseException]]:
    """Every exception class a module of PJai defines at its top level."""
    found = []
    for info in pkgutil.walk_packages(pjai.__path__, "pjai."):
        if info.name.endswith(".__main__"):  # importing it runs the command line
            continue
        module = importlib.import_module(info.name)
        found += [
            value
            for value in vars(module).values()
            if inspect.isclass(value)
            and issubclass(value, BaseException)
            and value.__module__ == module.__name__
        ]
    return found


def _public(cls: type[BaseException]) -> bool:
    """Named in its module's ``__all__``."""
    module = importlib.import_module(cls.__module__)
    return cls.__name__ in getattr(module, "__all__", ())


def _tree() -> dict[str, str | None]:
    """Each class the docstring's tree draws, and the class it is drawn under."""
    assert errors.__doc__ is not None
    drawn: dict[str, str | None] = {}
    path: list[tuple[int, str]] = []  # (column, name) from the root down
    for line in errors.__doc__.splitlines():
        match = re.match(r"^ {4}[ │├└─]*?(?P<name>[A-Z][A-Za-z]+)\b", line)
        if match is None:
            continue
        column = match.start("name")
        while path and path[-1][0] >= column:
            path.pop()
        drawn[match["name"]] = path[-1][1] if path else None
        path.append((column, match["name"]))
    return drawn


def test_every_class_of_pjai_errors_is_exported() -> None:
    defined = {cls.__name__ for cls in _defined() if cls.__module__ == "pjai.errors"}
    assert sorted(defined) == sorted(errors.__all__)


def test_the_tree_draws_every_public_error_under_its_parent() -> None:
    expected = {
        cls.__name__: cls.__base__.__name__ if cls is not errors.PjaiError else None
        for cls in _defined()
        if cls.__module__ == "pjai.errors" or (_public(cls) and issubclass(cls, errors.PjaiError))
    }
    expected["UnknownEventWarning"] = None  # a warning: a root of its own
    assert _tree() == expected


def test_the_docstring_names_the_module_of_each_error_defined_elsewhere() -> None:
    assert errors.__doc__ is not None
    elsewhere = [c for c in _defined() if c.__module__ != "pjai.errors" and _public(c)]
    assert [c for c in elsewhere if f"{c.__module__}.{c.__name__}" not in errors.__doc__] == []


def test_every_exception_class_derives_from_pjai_errors() -> None:
    roots = tuple(getattr(errors, name) for name in errors.__all__)
    assert [
        f"{cls.__module__}.{cls.__name__}"
        for cls in _defined()
        if cls.__module__ != "pjai.errors" and not issubclass(cls, roots)
    ] == []
