"""Options that stand for one value: a command declares one parameter (``fmt: Format``),
its help lists the options (``--json``, ``--nl``, ``--csv``, ``--tsv``), and it is called
with the value they make together (:func:`pjai.cli.output.listing`)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["option_group"]

Command = Callable[..., None]


def option_group(
    name: str, options: Mapping[str, Any], default: Any, combine: Callable[..., Any]
) -> Callable[[Command], Command]:
    """A decorator: the command's parameter ``name`` becomes ``options`` (parameter name →
    annotation, each defaulting to ``default``) in its place in the help, and the command
    is called with ``name=combine(**their values)``."""

    def decorate(command: Command) -> Command:
        signature = inspect.signature(command, eval_str=True)
        parameters: list[inspect.Parameter] = []
        for parameter in signature.parameters.values():
            if parameter.name != name:
                parameters.append(parameter)
                continue
            for option, annotation in options.items():
                parameters.append(
                    parameter.replace(name=option, annotation=annotation, default=default)
                )

        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> None:
            given = {option: kwargs.pop(option, default) for option in options}
            command(*args, **{name: combine(**given)}, **kwargs)

        # Typer reads a command's options from its signature.
        run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in parameters}
        return run

    return decorate
