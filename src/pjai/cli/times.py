"""Times given on the command line: ISO-8601, UTC unless they say otherwise, one alone
or two that bound a range."""

from __future__ import annotations

from datetime import datetime

import typer

from pjai.app.times import typed_time
from pjai.errors import QueryError

__all__ = ["INCLUDED_END", "parse_span", "parse_time"]


INCLUDED_END = (
    "ISO time, UTC; to the end of the day, minute or second given: 14:30 takes in 14:30:59"
)
"""How an option that is the included end of a range reads its time (:func:`parse_time`
with ``end``), for its help."""


def parse_time(text: str | None, option: str, *, end: bool = False) -> datetime | None:
    """An ISO-8601 time from the command line, in UTC (:func:`pjai.app.times.typed_time`:
    one without an offset is UTC). With ``end`` (the included end of a range), the last
    instant of the unit it is typed to, as the web app's filters read it: ``--until
    2026-05-04`` takes in that day, ``--until '2026-05-04 14:30'`` that minute."""
    if text is None:
        return None
    try:
        return typed_time(text, end=end)
    except QueryError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def parse_span(
    start: str | None,
    end: str | None,
    options: tuple[str, str],
    *,
    end_included: bool = True,
) -> tuple[datetime | None, datetime | None]:
    """Two ISO times from the command line (:func:`parse_time`) that bound a range; a
    range that holds no instant (its start after its end, or at an end left out) is
    refused: a read with it would find nothing and say nothing."""
    low, high = parse_time(start, options[0]), parse_time(end, options[1], end=end_included)
    if low is not None and high is not None and (low > high or (low == high and not end_included)):
        where = "after" if low > high else "at"
        kept = "" if end_included else ", which is left out"
        raise typer.BadParameter(
            f"{start!r} is {where} {options[1]} {end!r}{kept}: no memory would match",
            param_hint=options[0],
        )
    return low, high
