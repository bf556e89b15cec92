"""Dates written in a search text: "on 3 June, 2023", "2023-06-03", "in December 2023",
"in 2022".

:func:`time_window` finds them and gives the span of time they name, widened by a week
on each side for a day or a month (a memory is dated by when it was told, which is
often a few days after what it tells). Relative expressions ("last year") need a
"now" the text does not give, and are not read.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = ["SLACK", "time_window"]

SLACK = timedelta(days=7)
"""How far a day's or a month's window reaches beyond it on each side."""

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_MONTH = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<day>[0-3]?\d)(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>(?:19|20)\d\d)"
_PATTERNS = [
    re.compile(r"\b(?P<year>(?:19|20)\d\d)-(?P<month>[01]\d)-(?P<day>[0-3]\d)\b"),
    re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MONTH},?\s+{_YEAR}\b", re.IGNORECASE),
    re.compile(rf"\b{_MONTH}\s+{_DAY},?\s+{_YEAR}\b", re.IGNORECASE),
    re.compile(rf"\b{_MONTH},?\s+{_YEAR}\b", re.IGNORECASE),
    re.compile(rf"\b{_YEAR}\b"),
]


def _span(found: re.Match[str]) -> tuple[datetime, datetime] | None:
    parts = found.groupdict()
    year = int(parts["year"])
    written = parts.get("month")
    month = (
        None if written is None else int(written) if written.isdigit() else _MONTHS[written.lower()]
    )
    try:
        if month is None:
            return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
        if parts.get("day"):
            day = datetime(year, month, int(parts["day"]), tzinfo=UTC)
            return day - SLACK, day + timedelta(days=1) + SLACK
        first = datetime(year, month, 1, tzinfo=UTC)
        following = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        return first - SLACK, following + SLACK
    except ValueError:  # "31 February 2023"
        return None


def time_window(text: str) -> tuple[datetime, datetime] | None:
    """The span of time the dates in ``text`` name (from the earliest to the latest),
    or ``None`` if it names none. A date counts once, by its most precise reading."""
    spans = []
    # Which characters a date already read covers: one look per match, however many
    # dates the text holds (a long text of years is many thousands).
    taken = bytearray(len(text))
    for pattern in _PATTERNS:
        for found in pattern.finditer(text):
            start, end = found.span()
            if 1 in taken[start:end]:
                continue  # part of a more precise date already read
            taken[start:end] = b"\x01" * (end - start)
            span = _span(found)
            if span is not None:
                spans.append(span)
    if not spans:
        return None
    return min(s for s, _ in spans), max(e for _, e in spans)
