"""The root ``pjai`` command: what every command below it shares.

Every command refuses values that are not UTF-8 text (:mod:`pjai.cli.utf8`), and an
argument shows in the usage line as it is declared: an explicit metavar as written
(``[PERSONA] CONTENT``), a hidden argument not at all, any other by its name in capitals
(``MEMORY_ID``, ``[PERSONA]`` when it may be left out). Typer would write ``{memory_id}``,
which reads as a template, not a command line. A flag (``--json``) shows no type in the
help: Typer would write ``<bool>`` beside it, but a flag takes no value. A command's
line in its group's list is the first paragraph of its help, joined into one line: Typer
would keep the docstring's line breaks there.
"""

from __future__ import annotations

import inspect
from typing import Any

from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from pjai.cli.utf8 import Utf8Group

__all__ = ["RootGroup"]


class _DeclaredArgument(TyperArgument):
    """An argument whose usage is its metavar as written, its name, or nothing when hidden."""

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        if self.hidden:
            return []
        if self.metavar:
            return [self.metavar]
        name = (self.name or "").upper()
        return [name if self.required else f"[{name}]"]


def _flags_untyped(params: list[Any]) -> list[Any]:
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""  # the help shows no "<bool>" beside a flag: it takes no value
    return params


class _Command(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_untyped(super().get_params(ctx))


class _Group(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_untyped(super().get_params(ctx))


class RootGroup(Utf8Group):
    """The root command (see the module's doc)."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        _declared_usage(self)

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_untyped(super().get_params(ctx))


def _declared_usage(command: object) -> None:
    if type(command) is TyperCommand:
        command.__class__ = _Command
    elif type(command) is TyperGroup:
        command.__class__ = _Group
    if isinstance(command, TyperCommand | TyperGroup):
        for param in command.params:
            if type(param) is TyperArgument:
                param.__class__ = _DeclaredArgument
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            if sub.short_help is None and sub.help:
                sub.short_help = _summary(sub.help)
            _declared_usage(sub)


def _summary(help_text: str) -> str:
    """The first paragraph of ``help_text`` as one line."""
    first = inspect.cleandoc(help_text).partition("\f")[0].split("\n\n")[0]
    return " ".join(first.split())
