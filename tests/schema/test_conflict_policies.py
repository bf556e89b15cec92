"""Each event type behaves as its CONFLICT policy says when two instances race.

Two concurrent events, committed at different times on different instances, can meet
in either order in the global order. ``commutative`` events must give the same state
both ways; ``last_writer_wins`` events must leave the later one's fields. Every event
type declared commutative has a case here, so a declaration cannot drift from what its
materializer does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from pjai.schema import (
    SCHEMA,
    ConversationMessageAdded,
    ConversationStarted,
    Event,
    EventRecord,
    MemoryAccessed,
    MemoryLinked,
    MemoryLinksDecayed,
    MemoryUpdated,
)
from pjai.store import Store
from tests.helpers import history, memory, persona

EARLY = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
LATE = EARLY + timedelta(hours=3)

BASE: list[Event] = [
    persona("p1"),
    memory("m1"),
    memory("m2"),
    MemoryLinked(persona_id="p1", source_id="m1", target_id="m2", decay_rate=0.1),
    ConversationStarted(conversation_id="c1", persona_id="p1"),
]

# Two concurrent events per commutative type: the first committed early, the second late.
COMMUTATIVE: dict[str, tuple[Event, Event]] = {
    MemoryAccessed.NAME: (
        MemoryAccessed(memory_id="m1", persona_id="p1", count=2),
        MemoryAccessed(memory_id="m1", persona_id="p1", count=3),
    ),
    MemoryLinksDecayed.NAME: (
        MemoryLinksDecayed(persona_id="p1", days=2.0),
        MemoryLinksDecayed(persona_id="p1", days=5.0),
    ),
    ConversationMessageAdded.NAME: (
        ConversationMessageAdded(
            message_id="x1", conversation_id="c1", persona_id="p1", role="user", content="hi"
        ),
        ConversationMessageAdded(
            message_id="x2", conversation_id="c1", persona_id="p1", role="assistant", content="yo"
        ),
    ),
}


def records(events: Sequence[tuple[Event, datetime]]) -> list[EventRecord]:
    """``events`` as one instance's history, each committed at its time."""
    return history(events)


def state(order: Sequence[tuple[Event, datetime]]) -> Store:
    store = Store.memory()
    store.ingest(records([(event, EARLY - timedelta(days=1)) for event in BASE] + list(order)))
    return store


def test_every_commutative_event_type_has_a_case() -> None:
    declared = {t.NAME for t in SCHEMA.event_types if t.CONFLICT == "commutative"}
    assert declared == set(COMMUTATIVE)


@pytest.mark.parametrize("name", sorted(COMMUTATIVE))
def test_commutative_events_give_one_state_in_either_order(name: str) -> None:
    first, second = COMMUTATIVE[name]
    with (
        state([(first, EARLY), (second, LATE)]) as one_way,
        state([(second, LATE), (first, EARLY)]) as other_way,
        state([]) as neither,
    ):
        assert one_way.state_hash() == other_way.state_hash()
        assert one_way.state_hash() != neither.state_hash()  # they did change something


def test_the_later_writer_wins_per_field() -> None:
    content = MemoryUpdated(memory_id="m1", persona_id="p1", content="from a", importance=0.2)
    name = MemoryUpdated(memory_id="m1", persona_id="p1", content="from b", name="B")
    for order, winner in (((content, name), "from b"), ((name, content), "from a")):
        with state([(order[0], EARLY), (order[1], LATE)]) as store:
            (row,) = store.query("SELECT content, name, importance FROM memories WHERE id = 'm1'")
            assert row.content == winner  # the field both set: the later event's
            assert row.importance == 0.2  # fields only one set keep its value
            assert row.name == "B"
