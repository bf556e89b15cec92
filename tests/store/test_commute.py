"""Whether upstream events commute with pending ones, told from their operations alone."""

from __future__ import annotations

import msgspec

from pjai.schema import (
    SCHEMA,
    Event,
    EventRecord,
    MemoryAccessed,
    MemoryDeleted,
    MemoryLinked,
    MemoryUpdated,
    PersonaActivated,
    PersonaDeleted,
    PersonaUpdated,
    new_id,
)
from pjai.schema.records import ROOT
from pjai.schema.types import utc_now
from pjai.store.commute import Footprints
from tests.helpers import memory, persona


def record(event: Event) -> EventRecord:
    name, _, args = SCHEMA.encode(event)
    return EventRecord(
        id=new_id(),
        name=name,
        args=msgspec.Raw(args),
        position=ROOT.next(0),
        parent=ROOT,
        client_id="c1",
        session_id="c1",
        at=utc_now(),
    )


def commute(upstream: Event, pending: Event) -> bool:
    return Footprints(SCHEMA).commute([record(upstream)], [record(pending)])


def test_new_rows_of_different_keys_commute() -> None:
    assert commute(memory("m1"), memory("m2"))
    assert commute(persona("p2"), memory("m2", "p1"))


def test_the_same_key_written_twice_does_not() -> None:
    assert not commute(memory("m1"), memory("m1"))
    assert not commute(persona("p1"), persona("p1"))


def test_the_same_key_with_other_values_does_not_either() -> None:
    # Two devices link the same memories offline, with different strengths: the later
    # insert is refused, so it must not be pushed ahead of the rebase as if it commuted.
    strong = MemoryLinked(source_id="m1", target_id="m2", persona_id="p1", strength=0.9)
    weak = MemoryLinked(source_id="m1", target_id="m2", persona_id="p1", strength=0.4)
    assert not commute(strong, weak)
    assert not commute(memory("m1", content="one"), memory("m1", content="other"))
    other_kind = MemoryLinked(source_id="m1", target_id="m2", persona_id="p1", kind="similar")
    assert commute(other_kind, weak)


def test_changes_to_one_row_do_not_commute_to_different_rows_do() -> None:
    one = MemoryUpdated(memory_id="m1", persona_id="p1", content="one")
    other = MemoryUpdated(memory_id="m1", persona_id="p1", content="other")
    assert not commute(one, other)
    assert not commute(MemoryAccessed(memory_id="m1", persona_id="p1"), one)
    assert commute(MemoryUpdated(memory_id="m2", persona_id="p1", content="two"), one)


def test_a_row_checked_for_does_not_commute_with_a_change_to_it() -> None:
    # Adding a memory checks that its persona is live; deleting the persona ends that.
    assert not commute(PersonaDeleted(persona_id="p1"), memory("m1", "p1"))
    assert not commute(memory("m1", "p1"), PersonaUpdated(persona_id="p1", description="x"))
    assert commute(PersonaDeleted(persona_id="p2"), memory("m1", "p1"))


def test_a_change_to_many_rows_meets_every_row_it_could_match() -> None:
    # Deleting a persona marks its memories deleted: a memory of it, new or old, meets that.
    assert not commute(
        PersonaDeleted(persona_id="p1"), MemoryDeleted(memory_id="m1", persona_id="p1")
    )
    # Activating one persona deactivates every other one: it meets any persona row.
    assert not commute(PersonaActivated(persona_id="p1"), persona("p2"))


def test_an_event_that_cannot_be_read_commutes_with_nothing() -> None:
    unknown = msgspec.structs.replace(record(memory("m1")), name="v9.FromTheFuture")
    footprints = Footprints(SCHEMA)
    assert not footprints.commute([unknown], [record(memory("m2"))])
    assert not footprints.commute([record(memory("m2"))], [unknown])


def test_the_pending_events_may_change_between_checks() -> None:
    footprints = Footprints(SCHEMA)
    update = record(MemoryUpdated(memory_id="m1", persona_id="p1", content="x"))
    first, second = record(memory("m1")), record(memory("m2"))
    assert not footprints.commute([update], [first, second])
    assert footprints.commute([update], [second])  # the first was confirmed meanwhile
    assert not footprints.commute([update], [second, first])
    assert footprints.commute([update], [])
