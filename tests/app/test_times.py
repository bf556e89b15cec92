"""Times as a person types them: one reading for the command line and the web app, the
same texts refused at the edges of the calendar."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pjai.app.times import typed_time
from pjai.errors import QueryError
from pjai.schema.limits import EARLIEST, LATEST

OUTSIDE = "a time must lie between 0001-01-02 and 9999-12-30 in UTC"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "end", "read"),
    [
        ("0001-01-02", False, EARLIEST),
        ("0001-01-01T23:59-12:00", False, utc("0001-01-02T11:59")),
        ("9999-12-30", True, LATEST),
        ("9999-12-31T00:00+01:00", False, utc("9999-12-30T23:00")),
        ("9999-12-30 23:59", False, utc("9999-12-30T23:59")),
        ("9999-12-30 23:59", True, LATEST),  # --to 23:59 and "To 23:59": the whole minute
        (" 2026-03-02 ", True, utc("2026-03-02T23:59:59.999999")),
    ],
)
def test_a_time_inside_the_calendar_is_read_in_utc(text: str, end: bool, read: datetime) -> None:
    assert typed_time(text, end=end) == read


@pytest.mark.parametrize(
    ("text", "last"),
    [
        ("2026-03-02", "2026-03-02T23:59:59.999999"),
        ("2026-03-02T14", "2026-03-02T14:59:59.999999"),
        ("2026-03-02 14:30", "2026-03-02T14:30:59.999999"),
        ("2026-03-02T14:30:15", "2026-03-02T14:30:15.999999"),
        ("2026-03-02 14:30:15.25", "2026-03-02T14:30:15.250000"),  # a fraction: exact
        ("2026-03-02T14:30+02:00", "2026-03-02T12:30:59.999999"),
    ],
)
def test_an_end_takes_in_the_whole_unit_it_is_typed_to(text: str, last: str) -> None:
    # One reading for the command line's --to and --until and the web app's "To".
    assert typed_time(text, end=True) == utc(last)


@pytest.mark.parametrize(
    ("text", "end", "shown"),
    [
        ("0001-01-01", False, " (read as 0001-01-01 00:00:00 UTC)"),
        ("0001-01-02T00:30+01:00", False, " (read as 0001-01-01 23:30:00 UTC)"),
        ("0001-01-01T00:00+01:00", False, ""),  # before the year 1 in UTC
        ("9999-12-31", False, " (read as 9999-12-31 00:00:00 UTC)"),
        ("9999-12-31", True, " (read as 9999-12-31 23:59:59.999999 UTC)"),
        ("9999-12-30T23:59-01:00", False, " (read as 9999-12-31 00:59:00 UTC)"),
        ("9999-12-31T23:59:59-01:00", True, ""),  # after the year 9999 in UTC
    ],
)
def test_a_time_outside_the_calendar_is_refused_saying_how_it_was_read(
    text: str, end: bool, shown: str
) -> None:
    with pytest.raises(QueryError) as refused:
        typed_time(text, end=end)
    assert str(refused.value) == f"{text!r}{shown}: {OUTSIDE}"


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01", "9999-12-32"])
def test_a_text_that_is_no_time_is_refused(text: str) -> None:
    with pytest.raises(QueryError, match="is not an ISO-8601 time like 2026-01-31"):
        typed_time(text)
