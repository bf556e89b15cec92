"""How a command says a PJai error to the person: on standard error, without markup,
an event's refused field named as the person gave it (its option, its argument, the
``--set`` that gave it), and exit code 1."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import click
import typer
from rich.text import Text
from typer.core import TyperArgument, TyperGroup, TyperOption

from pjai.cli.output import TerminalConsole
from pjai.cli.utf8 import running
from pjai.errors import EventError, PjaiError

__all__ = ["errors", "fail", "named_fields", "reported"]

errors = TerminalConsole(stderr=True, markup=False, emoji=False)


def fail(error: PjaiError) -> typer.Exit:
    """Print a PJai error for a human and return the exit to raise. An event's refusal
    is said without the event's name, which is PJai's, not the person's."""
    said = str(error)
    if isinstance(error, EventError):
        said = f"{_given_as(error.field)}: {error.reason}" if error.field else error.reason
    errors.print(Text.assemble(("error:", "bold red"), " ", said), soft_wrap=True)
    for note in getattr(error, "__notes__", ()):
        errors.print(f"  {note}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


def named_fields(fields: Mapping[str, str]) -> type[TyperGroup]:
    """The group class (``typer.Typer(cls=...)``) of a family of commands whose errors
    name an event's field as the person gave it. ``fields`` maps a field, or a group of
    fields (``memory`` for ``memory.capacities.hot``), to the parameter that gives it
    where a command has one of that name (``{"content": "first"}``: ``memory add``'s
    CONTENT; ``memory update`` has none and says ``--content``)."""
    return type("NamedFieldsGroup", (TyperGroup,), {"fields": dict(fields)})


def _given_as(field: str) -> str:
    """How the person gave an event's ``field``: the parameter its command family maps
    it to (:func:`named_fields`), else the running command's option or argument of
    that name (``--importance``, ``TARGET_ID``), else the field
    (``field 'filters.hours[0]'``)."""
    context: click.Context | None = running.get()
    # tags[0]: the first value given to --label; custom_traits[...]: a value of the mapping
    name = re.sub(r"\[(\d+|\.\.\.)\]$", "", field)
    # A bookmark's filters.hours is --hours, filters.importance_min --min-importance.
    base = name.removeprefix("filters.")
    names = [name, base, re.sub(r"^(\w+)_(min|max)$", r"\2_\1", base)]
    family = context.parent.command if context is not None and context.parent else None
    mapped: dict[str, str] = getattr(family, "fields", {})
    names[:0] = [to for group, to in mapped.items() if f"{name}.".startswith(f"{group}.")]
    params = {param.name: param for param in context.command.params} if context else {}
    for param in (params[n] for n in names if n in params):
        if isinstance(param, TyperOption):
            option = max(param.opts, key=len)
            if param.metavar == "PATH=VALUE" and context is not None:
                return _setting_given(option, name, context.params.get(param.name or ""))
            return option
        if isinstance(param, TyperArgument) and not param.hidden:
            # A [PERSONA] VALUE argument gave the value.
            return (param.metavar or (param.name or field).upper()).split()[-1]
    return f"field '{field}'"


def _setting_given(option: str, field: str, given: Any) -> str:
    """The ``--set PATH=VALUE`` that gave the setting ``field`` (the last one, which
    counts); else the field, which came from a --config file or a template."""
    for item in reversed(given or ()):
        path = item.partition("=")[0].strip()
        if f"{field}.".startswith(f"{path}.") or path.startswith(f"{field}."):
            return f"{option} {item!r}"
    return f"field '{field}'"


@contextmanager
def reported() -> Iterator[None]:
    """Print a PJai error (or a file that cannot be read or written) raised inside for a
    human and exit with code 1."""
    try:
        yield
    except PjaiError as exc:
        raise fail(exc) from exc
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise fail(PjaiError(f"{exc.strerror or exc}{where}")) from exc
