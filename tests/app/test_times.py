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
    ("text", "end", "whole_unit", "read"),
    [
        ("0001-01-02", False, False, EARLIEST),
        ("0001-01-01T23:59-12:00", False, False, utc("0001-01-02T11:59")),
        ("9999-12-30", True, False, LATEST),
        ("9999-12-31T00:00+01:00", False, False, utc("9999-12-30T23:00")),
        ("9999-12-30 23:59", True, False, utc("9999-12-30T23:59")),  # --to 23:59: exact
        ("9999-12-30 23:59", True, True, LATEST),  # "To 23:59": the whole minute
        (" 2026-03-02 ", True, False, utc("2026-03-02T23:59:59.999999")),
    ],
)
def test_a_time_inside_the_calendar_is_read_in_utc(
    text: str, end: bool, whole_unit: bool, read: datetime
) -> None:
    assert typed_time(text, end=end, whole_unit=whole_unit) == read


@pytest.mark.parametrize("whole_unit", [False, True])
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
    text: str, end: bool, shown: str, whole_unit: bool
) -> None:
    with pytest.raises(QueryError) as refused:
        typed_time(text, end=end, whole_unit=whole_unit)
    assert str(refused.value) == f"{text!r}{shown}: {OUTSIDE}"


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01", "9999-12-32"])
def test_a_text_that_is_no_time_is_refused(text: str) -> None:
    with pytest.raises(QueryError, match="is not an ISO-8601 time like 2026-01-31"):
        typed_time(text)
