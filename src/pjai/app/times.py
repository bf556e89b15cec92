"""Times as a person types them, read alike by the command line and the web app.

A time is an ISO 8601 date (``2026-01-31``), or a date and a time of day (``T`` or a
space between them: ``2026-01-31 14:30``, to the hour, minute, second or a fraction of
one), UTC unless it gives an offset. As the included end of a range it takes in the
whole unit it is typed to, in the web app's fields and the command line's options alike:
a date its day, a time of day its hour, minute or second ("To 14:30" and ``--to 14:30``:
to 14:30:59.999999; ``14:30:15``: to 14:30:15.999999); a time with a fraction of a
second is the instant it names. A person who types an end to the minute means that
minute included.

The instant a text names, in UTC and after taking in the whole unit of an end, must
lie between :data:`~pjai.schema.limits.EARLIEST` and :data:`~pjai.schema.limits.LATEST`,
as every time an event carries (a bookmark keeps a range): both interfaces refuse the
same texts at the edges of the calendar, with the same message.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

from pjai.errors import QueryError
from pjai.schema.limits import EARLIEST, LATEST, time_problem

__all__ = ["typed_time"]

_INSTANT = timedelta(microseconds=1)


def typed_time(text: str, *, end: bool = False) -> datetime:
    """The UTC instant ``text`` names (see the module doc). With ``end`` (the included
    end of a range), the last instant of the day, hour, minute or second it is typed to.
    :class:`~pjai.errors.QueryError` when it is no time, or names one outside the times
    PJai keeps."""
    typed = text.strip()
    try:
        value, unit = datetime.combine(date.fromisoformat(typed), time()), timedelta(days=1)
    except ValueError:
        try:
            value = datetime.fromisoformat(typed)
        except ValueError:
            raise QueryError(
                f"{text!r} is not an ISO-8601 time like 2026-01-31 or 2026-01-31 14:30"
            ) from None
        unit = _unit_typed(typed)
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    try:
        instant = value.astimezone(UTC) + (unit - _INSTANT if end else timedelta())
    except OverflowError:  # before the year 1 or after 9999 in UTC
        raise _outside(text, None) from None
    if time_problem(instant) is not None:
        raise _outside(text, instant)
    return instant


def _outside(text: str, instant: datetime | None) -> QueryError:
    read = "" if instant is None else f" (read as {instant.replace(tzinfo=None)} UTC)"
    return QueryError(
        f"{text!r}{read}: a time must lie between {EARLIEST.date()} and {LATEST.date()} in UTC"
    )


def _unit_typed(text: str) -> timedelta:
    """The finest unit of a time of day as typed: its hour, minute or second (with a
    fraction, the time is exact)."""
    # The date is digits, dashes and a week's W; one character of any kind follows it.
    typed = re.match(r"[0-9W-]+.(.*)", text)
    clock = re.split(r"[Zz+-]", typed.group(1) if typed else "", maxsplit=1)[0]
    if "." in clock or "," in clock:
        return _INSTANT
    units = {2: timedelta(hours=1), 4: timedelta(minutes=1), 6: timedelta(seconds=1)}
    return units.get(len(clock.replace(":", "")), _INSTANT)
