"""Limits every backend can store: awkward values are refused as events are validated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import MetaData

from pjai.errors import EventError, EventValidationError
from pjai.schema import (
    SCHEMA,
    Context,
    Event,
    MemoryAccessed,
    MemoryAdded,
    PersonaCreated,
    Personality,
    Schema,
)
from pjai.schema.limits import EARLIEST, INT32_MAX, LATEST
from pjai.schema.ops import Op
from pjai.store import Store
from tests.helpers import persona

LATE = "9999-12-31T23:59:59-14:00"
EARLY = "0001-01-01T00:00:00+14:00"

# Arguments as another client could push them: (event, JSON arguments, field at fault).
AWKWARD_ARGS: dict[str, tuple[str, bytes, str | None]] = {
    "huge integer": (
        "v1.MemoryAccessed",
        b'{"memory_id":"m1","persona_id":"ada","count":100000000000000000000}',
        "count",
    ),
    "integer beyond 32 bits": (
        "v1.MemoryAccessed",
        b'{"memory_id":"m1","persona_id":"ada","count":4294967296}',
        "count",
    ),
    "late time": (
        "v1.MemoryAdded",
        b'{"memory_id":"m1","persona_id":"ada","content":"x","occurred_at":"'
        + LATE.encode()
        + b'"}',
        "occurred_at",
    ),
    "early time": (
        "v1.MemoryAdded",
        b'{"memory_id":"m1","persona_id":"ada","content":"x","occurred_at":"'
        + EARLY.encode()
        + b'"}',
        "occurred_at",
    ),
    "NUL in text": (
        "v1.MemoryAdded",
        b'{"memory_id":"m1","persona_id":"ada","content":"a\\u0000b"}',
        "content",
    ),
    "NUL in a list item": (
        "v1.MemoryAdded",
        b'{"memory_id":"m1","persona_id":"ada","content":"x","tags":["ok","a\\u0000"]}',
        "tags[1]",
    ),
    "invalid UTF-8": (
        "v1.MemoryAdded",
        b'{"memory_id":"m1","persona_id":"ada","content":"\xff\xfe"}',
        None,
    ),
    "lone surrogate": (
        "v1.MemoryAdded",
        b'{"memory_id":"m1","persona_id":"ada","content":"a\\ud800b"}',
        None,
    ),
}


@pytest.mark.parametrize("case", list(AWKWARD_ARGS))
def test_awkward_arguments_are_refused_naming_the_field(case: str) -> None:
    name, args, field = AWKWARD_ARGS[case]
    with pytest.raises(EventValidationError) as caught:
        SCHEMA.decode(name, args)
    assert caught.value.field == field
    assert caught.value.event == name


def late() -> datetime:
    return datetime.fromisoformat(LATE)


AWKWARD_EVENTS: dict[str, tuple[Event, str]] = {
    "huge integer": (MemoryAccessed(memory_id="m1", persona_id="ada", count=10**20), "count"),
    "late time": (
        MemoryAdded(memory_id="m1", persona_id="ada", content="x", occurred_at=late()),
        "occurred_at",
    ),
    "NUL in text": (MemoryAdded(memory_id="m1", persona_id="ada", content="a\x00b"), "content"),
    "lone surrogate": (
        MemoryAdded(memory_id="m1", persona_id="ada", content="x", name="a\udc80"),
        "name",
    ),
    "NUL in a key": (
        PersonaCreated(
            persona_id="ada", name="Ada", personality=Personality(custom_traits={"a\x00": 1})
        ),
        "personality.custom_traits",
    ),
    "UTC offset with seconds": (
        MemoryAdded(
            memory_id="m1",
            persona_id="ada",
            content="x",
            occurred_at=datetime(1912, 1, 1, tzinfo=timezone(timedelta(minutes=-16, seconds=-8))),
        ),
        "occurred_at",
    ),
    "lone surrogate in an id": (
        MemoryAccessed(memory_id="m\ud800", persona_id="ada"),
        "memory_id",
    ),
    # 800,000 characters of three bytes: within the content's length, past what sync takes.
    "arguments longer than sync carries": (
        MemoryAdded(memory_id="m1", persona_id="ada", content="語" * 800_000),
        "content",
    ),
}


@pytest.mark.parametrize("case", list(AWKWARD_EVENTS))
def test_awkward_values_are_refused_at_commit_and_nothing_is_written(case: str) -> None:
    event, field = AWKWARD_EVENTS[case]
    with Store.memory() as store:
        store.commit(persona("ada"))
        before = store.state_hash()
        with pytest.raises(EventValidationError) as caught:
            store.commit(event)
        assert caught.value.field == field
        assert store.head.global_seq == 1
        assert store.state_hash() == before


def test_an_integer_field_without_bounds_is_refused_when_the_schema_is_made() -> None:
    class Tally(Event, frozen=True, kw_only=True):
        NAME = "v1.Tally"
        CONFLICT = "commutative"
        n: int

        def materialize(self, ctx: Context) -> list[Op]:
            return []

    with pytest.raises(ValueError, match=r"Tally\.n is an integer without bounds"):
        Schema(MetaData(), [Tally])


def test_the_time_limits_are_a_day_inside_what_python_can_hold() -> None:
    assert EARLIEST - timedelta(hours=24) == datetime(1, 1, 1, tzinfo=UTC)
    for hours in range(-24, 25):  # any time zone PJai might display a time in
        zone = timezone(timedelta(hours=hours * 0.99))
        assert EARLIEST.astimezone(zone) <= LATEST.astimezone(zone)


@given(
    text=st.text(),
    count=st.integers(),
    when=st.datetimes(timezones=st.timezones() | st.just(UTC)),
)
def test_whatever_validates_can_be_stored(text: str, count: int, when: datetime) -> None:
    """Any value either commits and reads back, or is refused with an EventError."""
    events: list[Any] = [
        MemoryAdded(memory_id="m1", persona_id="p1", content=text or "x", occurred_at=when),
        MemoryAdded(memory_id="m2", persona_id="p1", content="x", tags=[text] if text else []),
        MemoryAccessed(memory_id="m2", persona_id="p1", count=count),
    ]
    with Store.memory() as store:
        store.commit(persona("p1"))
        for event in events:
            try:
                store.commit(event)
            except EventError:
                continue
        for row in store.query("SELECT id, content, occurred_at, access_count FROM memories"):
            assert row.access_count <= INT32_MAX
            if row.id == "m1":
                assert row.content == (text or "x")
                # Compared in UTC: Python never calls a time in a DST gap equal across zones.
                assert row.occurred_at == when.astimezone(UTC)
