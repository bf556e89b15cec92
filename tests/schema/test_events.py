"""Event payloads: validation errors name the event and field; codecs round-trip."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import get_args

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pjai.errors import EventValidationError, UnknownEventError
from pjai.schema import (
    SCHEMA,
    Event,
    MemoryAccessed,
    MemoryAdded,
    MemoryDeleted,
    MemoryUpdated,
    PersonaCreated,
    PersonaUpdated,
    Schema,
    metadata,
)
from pjai.schema.event import ConflictPolicy, Context
from pjai.schema.limits import EARLIEST, LATEST


def test_out_of_range_importance_names_event_field_and_value() -> None:
    event = MemoryAdded(memory_id="m1", persona_id="p1", content="x", importance=7)
    with pytest.raises(EventValidationError) as caught:
        SCHEMA.encode(event)
    assert caught.value.event == "v1.MemoryAdded"
    assert caught.value.field == "importance"
    assert str(caught.value).endswith("expected a number <= 1.0, got 7")
    assert str(caught.value).startswith("event v1.MemoryAdded: field 'importance':")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_number_json_cannot_hold_is_named_as_such(value: float) -> None:
    # JSON writes NaN and infinities as null: the error says what was given.
    event = MemoryAdded(memory_id="m1", persona_id="p1", content="x", importance=value)
    with pytest.raises(EventValidationError) as caught:
        SCHEMA.encode(event)
    assert caught.value.field == "importance"
    assert str(caught.value).endswith(f"must be a finite number, got {value!r}")


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (PersonaCreated(persona_id="p1", name="   "), "name"),
        (PersonaCreated(persona_id="", name="Ada"), "persona_id"),
        (MemoryAdded(memory_id="m", persona_id="p", content="\n\t "), "content"),
        (MemoryAdded(memory_id="m", persona_id="p", content="x", tier="lukewarm"), "tier"),  # type: ignore[arg-type]
        (MemoryAdded(memory_id="m", persona_id="p", content="x", tags=[" padded "]), "tags[0]"),
        (
            MemoryAdded(
                memory_id="m", persona_id="p", content="x", occurred_at=datetime(2024, 1, 1)
            ),
            "occurred_at",
        ),
    ],
)
def test_invalid_payloads_name_the_field(event: Event, field: str) -> None:
    with pytest.raises(EventValidationError) as caught:
        SCHEMA.encode(event)
    assert caught.value.field == field


def test_nested_trait_out_of_range_names_the_nested_field() -> None:
    args = msgspec.json.encode(
        {"persona_id": "p1", "name": "Ada", "personality": {"big_five": {"openness": 101}}}
    )
    with pytest.raises(EventValidationError) as caught:
        SCHEMA.decode("v1.PersonaCreated", args)
    assert caught.value.field == "personality.big_five.openness"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ({"name": "   "}, "field 'name': expected text that is not blank"),
        ({"name": "x" * 201}, "field 'name': expected text of at most 200 characters"),
        (
            {"name": "Ada", "memory": {"max_memories": 1.5}},
            "'memory.max_memories': expected a whole number, got one with a point or exponent",
        ),
        (
            {"name": "Ada", "personality": {"dominant_traits": [" calm"]}},
            "expected text without spaces at either end",
        ),
    ],
)
def test_refusals_say_what_was_wanted_in_words(args: dict[str, object], said: str) -> None:
    payload = msgspec.json.encode({"persona_id": "p1", **args})
    with pytest.raises(EventValidationError) as caught:
        SCHEMA.decode("v1.PersonaCreated", payload)
    assert said in str(caught.value)


def test_unknown_fields_and_bad_json_are_refused() -> None:
    with pytest.raises(EventValidationError, match="unknown field `colour`"):
        SCHEMA.decode("v1.PersonaDeleted", b'{"persona_id": "p1", "colour": "red"}')
    with pytest.raises(EventValidationError, match="not valid JSON"):
        SCHEMA.decode("v1.PersonaDeleted", b"{nope")


def test_event_type_outside_the_schema_is_unknown() -> None:
    class NotRegistered(Event, frozen=True, kw_only=True):
        NAME = "v1.NotRegistered"

    with pytest.raises(UnknownEventError, match=r"v1\.NotRegistered"):
        SCHEMA.encode(NotRegistered())
    with pytest.raises(UnknownEventError):
        SCHEMA.decode("v9.FromTheFuture", b"{}")


def test_update_that_changes_nothing_is_refused() -> None:
    ctx = Context("e1", datetime.now(UTC))
    with pytest.raises(EventValidationError, match="names no field"):
        PersonaUpdated(persona_id="p1").materialize(ctx)
    with pytest.raises(EventValidationError, match="names no field"):
        MemoryUpdated(memory_id="m1", persona_id="p1").materialize(ctx)


def test_schema_refuses_badly_named_or_duplicate_events() -> None:
    class Bad(Event, frozen=True, kw_only=True):
        NAME = "MemoryAdded"

    with pytest.raises(ValueError, match="not like"):
        Schema(metadata, [Bad])
    with pytest.raises(ValueError, match="twice"):
        Schema(metadata, [MemoryAdded, MemoryAdded])


def test_every_event_declares_its_conflict_policy() -> None:
    for event_type in SCHEMA.event_types:
        assert "CONFLICT" in vars(event_type), f"{event_type.NAME} declares no CONFLICT"
        assert event_type.CONFLICT in get_args(ConflictPolicy)
    # The policies the sync design relies on.
    assert MemoryUpdated.CONFLICT == "last_writer_wins"
    assert MemoryAccessed.CONFLICT == "commutative"
    assert MemoryAdded.CONFLICT == MemoryDeleted.CONFLICT == "precondition"


def test_schema_refuses_an_event_without_a_conflict_policy() -> None:
    class Undeclared(Event, frozen=True, kw_only=True):
        NAME = "v1.Undeclared"

    class Unknown(Event, frozen=True, kw_only=True):
        NAME = "v1.Unknown"
        CONFLICT = "first_writer_wins"  # type: ignore[assignment]

    with pytest.raises(ValueError, match=r"Undeclared.CONFLICT is None; declare one of"):
        Schema(metadata, [Undeclared])
    with pytest.raises(ValueError, match="'first_writer_wins'"):
        Schema(metadata, [Unknown])


def test_fingerprint_changes_with_version_and_events() -> None:
    assert (
        Schema(metadata, [MemoryAdded]).fingerprint
        != Schema(metadata, [MemoryAdded], version=2).fingerprint
    )
    assert (
        Schema(metadata, [MemoryAdded]).fingerprint
        != Schema(metadata, [MemoryAdded, PersonaCreated]).fingerprint
    )


# Text without NUL and times within PJai's limits (pjai.schema.limits): what every
# backend can store. tests/schema/test_limits.py covers what lies outside.
chars = st.characters(exclude_characters="\x00", exclude_categories=["Cs"])
text = st.text(chars, min_size=1, max_size=40).filter(str.strip)
tags = st.lists(
    st.text(chars, min_size=1, max_size=20).filter(lambda t: t == t.strip() and t.strip()),
    max_size=5,
)
times = st.datetimes(
    min_value=EARLIEST.replace(tzinfo=None),
    max_value=LATEST.replace(tzinfo=None),
    timezones=st.just(UTC),
)


@given(
    memory_id=st.text(chars, min_size=1, max_size=40),
    content=text,
    importance=st.floats(min_value=0, max_value=1),
    tier=st.sampled_from(["hot", "warm", "cold"]),
    tags=tags,
    occurred=st.none() | times,
)
def test_memory_added_round_trips(
    memory_id: str,
    content: str,
    importance: float,
    tier: str,
    tags: list[str],
    occurred: datetime | None,
) -> None:
    event = MemoryAdded(
        memory_id=memory_id,
        persona_id="p1",
        content=content,
        importance=importance,
        tier=tier,  # type: ignore[arg-type]
        tags=tags,
        occurred_at=occurred,
    )
    name, validated, args = SCHEMA.encode(event)
    assert name == "v1.MemoryAdded"
    assert validated == event
    assert SCHEMA.decode(name, args) == event


def test_a_value_that_is_not_a_choice_is_named_with_the_choices() -> None:
    args = b'{"persona_id":"p1","memory":{"retention_action":"zap"}}'
    with pytest.raises(EventValidationError) as caught:
        SCHEMA.decode(PersonaUpdated.NAME, args)
    assert caught.value.field == "memory.retention_action"
    assert caught.value.reason == "invalid enum value 'zap'; one of 'archive', 'delete'"
