"""Commits: all or nothing, materializer rules, positions, reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import bindparam, func, select

from pjai.errors import (
    EventValidationError,
    MaterializationError,
    PjaiError,
    QueryError,
    StoreClosedError,
)
from pjai.schema import (
    SCHEMA,
    Event,
    MemoryAccessed,
    MemoryDeleted,
    MemoryRestored,
    MemoryTierChanged,
    MemoryUpdated,
    PersonaActivated,
    PersonaDeactivated,
    PersonaDeleted,
    PersonaUpdated,
    memories,
    personas,
)
from pjai.schema.personas import MemoryConfig, TierCapacities
from pjai.schema.records import EventRecord, stamp
from pjai.store import ROOT, Position, Store
from pjai.store.apply import EventApplier
from pjai.store.state import StateWriter
from tests.helpers import memory, persona
from tests.strategies import PERSONAS, SEEDED, events, owner


def snapshot(store: Store) -> tuple[str, int]:
    return store.state_hash(), len(list(store.events()))


def test_commit_logs_and_materializes(store: Store) -> None:
    records = store.commit(persona("p1"), memory("m1", importance=0.9, tags=["a"]))
    assert [r.name for r in records] == ["v1.PersonaCreated", "v1.MemoryAdded"]
    assert records[0].parent == ROOT
    assert records[1].parent.key == records[0].position.key
    assert store.head.key == (2, 0)
    row = store.query(select(memories).where(memories.c.id == "m1"))[0]
    assert row.importance == 0.9
    assert row.tags == ["a"]
    assert row.tier == "warm"
    assert row.access_count == 0
    assert row.created_at == records[1].at
    assert row.occurred_at == records[1].at
    assert row.deleted_at is None
    entries = list(store.events())
    assert [e.status for e in entries] == ["confirmed", "confirmed"]
    assert [e.record.id for e in entries] == [r.id for r in records]


def test_failed_event_leaves_log_and_state_unchanged(store: Store) -> None:
    store.commit(persona("p1"), memory("m1"))
    before = snapshot(store)
    head = store.head
    with pytest.raises(MaterializationError) as caught:
        store.commit(memory("m2"), memory("m3"), memory("m1"))  # m1 exists already
    assert caught.value.event == "v1.MemoryAdded"
    assert "m1" in str(caught.value)
    assert snapshot(store) == before
    assert store.head == head
    store.commit(memory("m2"))  # the store keeps working
    assert store.head.key == (head.global_seq + 1, 0)


def test_invalid_payload_is_refused_before_touching_the_store(store: Store) -> None:
    store.commit(persona("p1"))
    before = snapshot(store)
    with pytest.raises(EventValidationError) as caught:
        store.commit(memory("m1"), memory("m2", importance=1.5))
    assert caught.value.field == "importance"
    assert snapshot(store) == before


def test_memory_needs_a_live_persona(store: Store) -> None:
    with pytest.raises(MaterializationError) as caught:
        store.commit(memory("m1", persona_id="ghost"))
    assert caught.value.field == "persona_id"
    assert "'ghost' does not exist" in str(caught.value)
    store.commit(persona("p1"), PersonaDeleted(persona_id="p1"))
    with pytest.raises(MaterializationError, match="deleted"):
        store.commit(memory("m1"))


def test_exactly_one_persona_is_active(store: Store) -> None:
    store.commit(persona("a"), persona("b"), persona("c"))
    active = "SELECT id FROM personas WHERE is_active ORDER BY id"
    assert store.query(active) == []
    store.commit(PersonaActivated(persona_id="a"))
    store.commit(PersonaActivated(persona_id="b"))
    assert [r.id for r in store.query(active)] == ["b"]
    store.commit(PersonaActivated(persona_id="b"))
    assert [r.id for r in store.query(active)] == ["b"]
    store.commit(PersonaDeactivated(persona_id="b"))
    assert store.query(active) == []
    with pytest.raises(MaterializationError):
        store.commit(PersonaActivated(persona_id="nobody"))


def test_persona_update_changes_only_named_fields(store: Store) -> None:
    store.commit(persona("p1", "Ada"))
    config = MemoryConfig(max_memories=50, capacities=TierCapacities(hot=5))
    store.commit(PersonaUpdated(persona_id="p1", description="analyst", memory=config))
    row = store.query(select(personas).where(personas.c.id == "p1"))[0]
    assert (row.name, row.description) == ("Ada", "analyst")
    assert (row.memory_max_memories, row.memory_capacity_hot, row.memory_capacity_warm) == (
        50,
        5,
        1000,
    )
    assert row.personality["big_five"]["openness"] == 50
    assert row.is_active is False
    assert row.privacy_export_allowed is True


def test_deleting_a_persona_soft_deletes_its_memories(store: Store) -> None:
    store.commit(persona("p1"), persona("p2"), memory("m1"), memory("m2"), memory("x", "p2"))
    store.commit(MemoryDeleted(memory_id="m2", persona_id="p1"))
    deleted_m2 = store.query("SELECT deleted_at FROM memories WHERE id = 'm2'")[0].deleted_at
    store.commit(PersonaActivated(persona_id="p1"), PersonaDeleted(persona_id="p1"))
    rows = {r.id: r for r in store.query("SELECT id, deleted_at FROM memories")}
    assert rows["m1"].deleted_at is not None
    assert rows["m2"].deleted_at == deleted_m2  # keeps its own deletion time
    assert rows["x"].deleted_at is None
    p1 = store.query("SELECT is_active, deleted_at FROM personas WHERE id = 'p1'")[0]
    assert p1.is_active is False
    assert p1.deleted_at is not None
    with pytest.raises(MaterializationError):
        store.commit(MemoryRestored(memory_id="m1", persona_id="p1"))


def test_memory_lifecycle(store: Store) -> None:
    store.commit(persona("p1"), memory("m1"))
    store.commit(
        MemoryAccessed(memory_id="m1", persona_id="p1"),
        MemoryAccessed(memory_id="m1", persona_id="p1", count=3),
    )
    row = store.query("SELECT access_count, last_accessed_at FROM memories")[0]
    assert row.access_count == 4
    assert isinstance(row.last_accessed_at, datetime)
    store.commit(
        MemoryTierChanged(memory_id="m1", persona_id="p1", tier="hot", reason="manual", score=0.7)
    )
    store.commit(MemoryUpdated(memory_id="m1", persona_id="p1", content="new", tags=["x", "y"]))
    row = store.query("SELECT tier, content, tags FROM memories")[0]
    assert (row.tier, row.content, row.tags) == ("hot", "new", ["x", "y"])
    store.commit(MemoryDeleted(memory_id="m1", persona_id="p1"))
    with pytest.raises(MaterializationError, match="no live memory 'm1'"):
        store.commit(MemoryUpdated(memory_id="m1", persona_id="p1", content="again"))
    with pytest.raises(MaterializationError):
        store.commit(MemoryDeleted(memory_id="m1", persona_id="p1"))
    store.commit(MemoryRestored(memory_id="m1", persona_id="p1"))
    with pytest.raises(MaterializationError, match="no deleted memory"):
        store.commit(MemoryRestored(memory_id="m1", persona_id="p1"))
    with pytest.raises(MaterializationError, match="persona 'p2' has no live memory"):
        store.commit(MemoryAccessed(memory_id="m1", persona_id="p2"))


def test_last_accessed_keeps_the_latest_time(store: Store) -> None:
    store.commit(persona("p1"), memory("m1"))
    first = store.commit(MemoryAccessed(memory_id="m1", persona_id="p1"))[0].at
    second = store.commit(MemoryAccessed(memory_id="m1", persona_id="p1"))[0].at
    assert second >= first
    assert store.query("SELECT last_accessed_at FROM memories")[0].last_accessed_at == second


def test_occurred_at_is_kept_apart_from_created_at(store: Store) -> None:
    when = datetime(2023, 5, 17, 12, 30, tzinfo=UTC)
    store.commit(persona("p1"), memory("old", occurred_at=when), memory("new"))
    query = select(memories.c.id).where(memories.c.occurred_at < bindparam("cutoff"))
    assert [r.id for r in store.query(query, {"cutoff": when + timedelta(seconds=1)})] == ["old"]
    row = store.query("SELECT occurred_at, created_at FROM memories WHERE id = 'old'")[0]
    assert row.occurred_at == when
    assert row.created_at > when


def test_queries_take_text_or_select_and_only_read(store: Store) -> None:
    store.commit(persona("p1"), *[memory(f"m{i}", importance=i / 10) for i in range(5)])
    by_text = store.query("SELECT id FROM memories WHERE importance >= ? ORDER BY id", [0.3])
    by_name = store.query(
        "SELECT id FROM memories WHERE importance >= :low ORDER BY id", {"low": 0.3}
    )
    stmt = select(memories.c.id).where(memories.c.importance >= 0.3).order_by(memories.c.id)
    assert (
        [r.id for r in by_text]
        == [r.id for r in by_name]
        == [r.id for r in store.query(stmt)]
        == ["m3", "m4"]
    )
    assert store.query(select(func.count()).select_from(memories))[0][0] == 5
    assert store.query(
        select(memories.c.id).where(memories.c.id.in_(bindparam("ids", expanding=True))),
        {"ids": ["m1", "m2"]},
    )
    with pytest.raises(QueryError, match="only read"):
        store.query("DELETE FROM memories")
    with pytest.raises(QueryError, match="no such table"):
        store.query("SELECT * FROM nowhere")
    assert len(store.query("SELECT id FROM memories")) == 5
    store.commit(memory("m9"))  # writes still work after a refused query


def test_positions_continue_across_reopen(store_file: object) -> None:
    from pathlib import Path

    path = Path(str(store_file))
    with Store.open(path) as first:
        first.commit(persona("p1"), memory("m1"))
        store_id, client_id = first.store_id, first.client_id
    with Store.open(path) as second:
        assert (second.store_id, second.client_id) == (store_id, client_id)
        assert second.head.key == (2, 0)
        record = second.commit(memory("m2"))[0]
        assert record.position == Position(3, 0, 0)
        assert record.session_id != first.session_id


def test_closed_store_refuses_work(store: Store) -> None:
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreClosedError):
        store.commit(persona())
    with pytest.raises(StoreClosedError):
        store.query("SELECT 1")


def test_imported_rows_keep_their_recorded_times(store: Store) -> None:
    from pjai.schema import MemoryImported, PersonaImported

    created = datetime(2022, 3, 1, 9, 0, tzinfo=UTC)
    deleted = datetime(2022, 4, 1, tzinfo=UTC)
    store.commit(
        PersonaImported(
            persona_id="p1",
            name="Ada",
            source="pjai-desktop",
            created_at=created,
            updated_at=created,
        ),
        MemoryImported(
            memory_id="m1",
            persona_id="p1",
            content="old",
            source="pjai-desktop",
            created_at=created,
            updated_at=deleted,
            deleted_at=deleted,
            access_count=4,
            last_accessed_at=created,
        ),
    )
    persona_row = store.query("SELECT created_at, is_active FROM personas")[0]
    assert (persona_row.created_at, persona_row.is_active) == (created, False)
    row = store.query("SELECT * FROM memories")[0]
    assert (row.created_at, row.occurred_at, row.deleted_at, row.access_count) == (
        created,
        created,
        deleted,
        4,
    )


def test_conversations_count_their_messages(store: Store) -> None:
    from pjai.schema import ConversationMessageAdded, ConversationStarted

    store.commit(
        persona("p1"), ConversationStarted(conversation_id="c1", persona_id="p1", title="Hello")
    )
    store.commit(
        ConversationMessageAdded(
            message_id="x1", conversation_id="c1", persona_id="p1", role="user", content="hi"
        ),
        ConversationMessageAdded(
            message_id="x2", conversation_id="c1", persona_id="p1", role="assistant", content="hey"
        ),
    )
    assert store.query("SELECT message_count FROM conversations")[0].message_count == 2
    with pytest.raises(MaterializationError, match="no conversation 'c9'"):
        store.commit(
            ConversationMessageAdded(
                message_id="x3", conversation_id="c9", persona_id="p1", role="user", content="?"
            )
        )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch=st.lists(
        st.one_of(events(), st.builds(PersonaDeleted, persona_id=st.just("p1"))),
        min_size=1,
        max_size=12,
    )
)
@example(batch=[memory("m4", "p1"), PersonaDeleted(persona_id="p1"), memory("m6", "p1")])
@example(batch=[memory("m4", "p1"), memory("m6", "p1"), memory("m4", "p1"), memory("m5", "p2")])
def test_a_commit_of_many_events_means_what_they_mean_one_by_one(batch: list[Event]) -> None:
    """A standalone commit writes its events as one planned batch; it must refuse and
    write exactly what writing them one after another would."""
    at = datetime(2026, 1, 2, tzinfo=UTC)
    outcomes = []
    for one_by_one in (False, True):
        with Store.memory() as store, pytest.MonkeyPatch.context() as patch:
            patch.setattr("pjai.store.store.utc_now", lambda: at)
            store.commit(*[persona(p) for p in PERSONAS], *[memory(m, owner(m)) for m in SEEDED])
            if one_by_one:
                patch.setattr(StateWriter, "apply_many", _one_by_one)
            try:
                store.commit(*batch)
            except PjaiError as exc:
                outcomes.append((type(exc), str(exc), store.state_hash()))
            else:
                outcomes.append((None, "", store.state_hash()))
    assert outcomes[0] == outcomes[1]


def _one_by_one(writer: StateWriter, events: list[tuple[str, list[object]]]) -> None:
    for name, ops in events:
        writer.apply(name, ops)  # type: ignore[arg-type]


def _records(events: list[Event]) -> list[EventRecord]:
    encoded = [SCHEMA.encode(event) for event in events]
    return stamp(
        ((name, args) for name, _, args in encoded),
        after=Position(0, 0),
        generation=0,
        client_id="elsewhere",
        session_id="s",
        at=datetime(2026, 1, 2, tzinfo=UTC),
    )


@pytest.mark.parametrize("ghost", [False, True])
def test_ingest_applies_a_batch_as_event_by_event(ghost: bool) -> None:
    """Ingest tries a batch at once; with an event that does not apply it goes event by
    event, and either way the state and the log are what one by one gives."""
    events: list[Event] = [persona("p1"), memory("m1"), memory("m3")]
    if ghost:
        events.insert(2, memory("m2", persona_id="ghost"))
    records = _records(events)
    found = []
    for one_by_one in (False, True):
        with Store.memory() as store, pytest.MonkeyPatch.context() as patch:
            if one_by_one:
                patch.setattr(EventApplier, "apply_all_logged", lambda _self, _records: None)
            applied = store.ingest(records)
            errors = [(e.record.id, e.error) for e in store.events()]
            found.append((applied, errors, store.state_hash()))
    assert found[0] == found[1]
    assert found[0][0] == len(events) - ghost
    assert [error is not None for _id, error in found[0][1]] == [
        e.persona_id == "ghost" for e in events
    ]
