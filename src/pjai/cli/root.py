"""The root ``pjai`` command: what every command below it shares.

Every command refuses values that are not UTF-8 text (:mod:`pjai.cli.utf8`), and an
argument shows in the usage line as it is declared: an explicit metavar as written
(``[PERSONA] CONTENT``), a hidden argument not at all. Typer would wrap each in
``{}`` or ``[]``, which cannot say "an optional persona, then the content".
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperArgument, TyperGroup

from pjai.cli.utf8 import Utf8Group

__all__ = ["RootGroup"]


class _DeclaredArgument(TyperArgument):
    """An argument whose usage is its metavar as written, or nothing when hidden."""

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        if self.hidden:
            return []
        if self.metavar:
            return [self.metavar]
        return super().get_usage_pieces(ctx)


class RootGroup(Utf8Group):
    """The root command (see the module's doc)."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        _declared_usage(self)


def _declared_usage(command: object) -> None:
    if isinstance(command, typer.core.TyperCommand | TyperGroup):
        for param in command.params:
            if type(param) is TyperArgument and (param.hidden or param.metavar):
                param.__class__ = _DeclaredArgument
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            _declared_usage(sub)
