"""Command-line values are text: a command refuses one that is not valid UTF-8.

Python hands over an argument (or environment variable) it cannot decode as UTF-8 with
each bad byte as a surrogate escape (0xFF becomes ``"\\udcff"``). Such a value cannot be
stored, synced or printed as text, so every command checks its parameters' values before
it runs and refuses a bad one as a usage error naming the argument or option.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from pathlib import PurePath
from typing import Any, TypeVar

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

__all__ = ["Utf8Group", "not_text", "running"]

V = TypeVar("V")

running: ContextVar[Any] = ContextVar("running", default=None)
"""The context of the command whose callback runs now (its error messages name its
options, as its command family maps them)."""


def not_text(value: object) -> str | None:
    """Why ``value`` (text, a path or a list of them) is not UTF-8 text, or ``None``."""
    if isinstance(value, list | tuple):
        return next((problem for item in value if (problem := not_text(item))), None)
    if not isinstance(value, str | PurePath):
        return None
    text = str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        at, code = exc.start + 1, ord(text[exc.start])
        if 0xDC80 <= code <= 0xDCFF:  # a byte that did not decode
            return (
                f"not valid UTF-8 (byte 0x{code - 0xDC00:02X} at character {at}); give UTF-8 text"
            )
        return f"not text (a lone surrogate U+{code:04X} at character {at}); give UTF-8 text"
    return None


class _Utf8Context(typer.Context):
    """A command's context that checks the command's values before running it."""

    def invoke(self, callback: Callable[..., V], /, *args: Any, **kwargs: Any) -> V:
        for param in self.command.params:
            if not isinstance(param, TyperArgument | TyperOption) or param.name is None:
                continue
            if (problem := not_text(self.params.get(param.name))) is not None:
                raise typer.BadParameter(problem, ctx=self, param=param)
        token = running.set(self)
        try:
            return super().invoke(callback, *args, **kwargs)
        finally:
            running.reset(token)


class Utf8Group(TyperGroup):
    """The root command: every command below it refuses values that are not UTF-8 text."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        _check_values(self)


def _check_values(command: object) -> None:
    if isinstance(command, TyperCommand | TyperGroup):
        command.context_class = _Utf8Context
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            _check_values(sub)
