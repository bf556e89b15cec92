"""Dates in a search text, and searches that weigh them."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import pytest

from pjai.errors import QueryError
from pjai.memory import when
from pjai.memory.search import SearchFilter, Tuning, search
from pjai.memory.when import time_window
from pjai.store import Store
from tests.helpers import memory, persona


def day(year: int, month: int, d: int) -> datetime:
    return datetime(year, month, d, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("Who came to dinner on May 3, 2023?", (day(2023, 4, 26), day(2023, 5, 11))),
        ("What happened on 3rd June, 2023?", (day(2023, 5, 27), day(2023, 6, 11))),
        ("What did he donate in December 2023?", (day(2023, 11, 24), day(2024, 1, 8))),
        ("Where did she travel in 2022?", (day(2022, 1, 1), day(2023, 1, 1))),
        ("between Sept 2023 and Oct. 2023", (day(2023, 8, 25), day(2023, 11, 8))),
        ("Where did he go last May?", None),  # no year: no "now" to read it from
        ("The 31 February 2023 party", None),  # no such day
        ("nothing dated here", None),
    ],
)
def test_time_window(text: str, span: tuple[datetime, datetime] | None) -> None:
    assert time_window(text) == span


def _lines_run(text: str) -> int:
    """How many lines of :mod:`pjai.memory.when` reading ``text`` runs (its work, counted
    without a clock)."""
    count = 0

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if frame.f_code.co_filename != when.__file__:
            return None
        count += event == "line"
        return trace

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        time_window(text)
    finally:
        sys.settrace(previous)
    return count


def test_a_text_of_many_dates_is_read_in_one_pass() -> None:
    # A long search text (pasted notes, a log) can hold tens of thousands of dates:
    # checking each against every date read before took minutes for a few hundred KB.
    few, many = _lines_run("in 2023, " * 100), _lines_run("in 2023, " * 1_000)
    assert many < few * 20  # ten times the dates: about ten times the work
    assert time_window("May 3, 2023 " * 1_000) == (day(2023, 4, 26), day(2023, 5, 11))


def test_a_date_in_the_question_lifts_what_happened_then(store: Store) -> None:
    store.commit(
        persona(),
        memory("may", content="Dinner with Grace", occurred_at=day(2023, 5, 4)),
        memory("july", content="Dinner with Alan", occurred_at=day(2023, 7, 20)),
    )
    where = SearchFilter(persona_id="p1")
    question = "Who was at dinner on May 3, 2023?"
    plain = search(store, question, where, tuning=Tuning(date_weight=0))
    assert {h.memory_id for h in plain} == {"may", "july"}  # the same words: a tie
    assert plain[0].score == plain[1].score
    dated = search(store, question, where)  # dates weigh 0.5 by default
    assert [h.memory_id for h in dated] == ["may", "july"]
    assert dated[0].score == pytest.approx(dated[1].score + 0.5)
    with pytest.raises(QueryError, match="date_weight must be between 0 and 1"):
        Tuning(date_weight=2.0)
