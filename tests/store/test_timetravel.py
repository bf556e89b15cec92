"""Time travel: the state as of a position of the log, and diffs between positions."""

from __future__ import annotations

import pytest

from pjai.errors import MaterializationError, QueryError
from pjai.schema import MemoryLinked, MemoryUnlinked, MemoryUpdated
from pjai.store import Store
from pjai.store.timetravel import diff, state_at
from tests.helpers import history, memory, persona


def test_state_at_an_early_position_equals_a_store_that_committed_only_those_events(
    store: Store,
) -> None:
    early = store.commit(persona("p1"), memory("m1", importance=0.2))
    store.commit(memory("m2"), MemoryUpdated(memory_id="m1", persona_id="p1", importance=0.8))
    fresh = Store.memory()
    fresh.ingest(early)  # the same events, with their times
    with state_at(store, 2) as past:
        assert past.state_hash() == fresh.state_hash()
    with state_at(store, store.head.global_seq) as now:
        assert now.state_hash() == store.state_hash()
    fresh.close()


def test_position_zero_is_the_empty_state(store: Store) -> None:
    store.commit(persona("p1"))
    with state_at(store, 0) as past, Store.memory() as empty:
        assert past.state_hash() == empty.state_hash()


def test_events_the_store_refused_stay_refused_in_the_past(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    # Confirmed elsewhere, refused here: a memory of a persona that is not there.
    store.ingest(history([persona("p1"), memory("m1"), memory("m2", persona_id="p2")]))
    store.commit(memory("m3"))
    assert [e.error is None for e in store.events()] == [True, True, False, True]
    with state_at(store, store.head.global_seq) as now:
        assert now.state_hash() == store.state_hash()
    assert "replaying one by one" not in caplog.text  # the recorded outcomes held


def test_when_the_recorded_outcomes_do_not_replay_it_replays_event_by_event(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store.commit(persona("p1"), memory("m1"), memory("m2"))

    def outcomes_do_not_hold(self: Store, *args: object, **kwargs: object) -> int:
        raise MaterializationError("v1.MemoryAdded", "persona 'p1' does not exist")

    monkeypatch.setattr(Store, "load", outcomes_do_not_hold)
    with state_at(store, 2) as past, Store.memory() as fresh:
        fresh.ingest([e.record for e in list(store.events())[:2]])
        assert past.state_hash() == fresh.state_hash()
    assert "replaying one by one" in caplog.text


def test_a_past_without_indexes_has_the_same_rows(store: Store) -> None:
    store.commit(persona("p1"), memory("m1"), memory("m2"))
    with state_at(store, 3, indexes=False) as bare, state_at(store, 3) as full:
        assert bare.state_hash() == full.state_hash() == store.state_hash()
        assert diff(store, 3).empty


def test_positions_outside_the_log_are_refused_with_the_range(store: Store) -> None:
    store.commit(persona("p1"), memory("m1"))
    for bad in (-1, 3):
        with pytest.raises(QueryError, match=r"0\.\.2"):
            state_at(store, bad)
    with pytest.raises(QueryError, match=r"0\.\.2"):
        diff(store, 0, 5)


def test_diff_lists_added_removed_and_changed_rows(store: Store) -> None:
    link = {"persona_id": "p1", "source_id": "m1", "target_id": "m2"}
    store.commit(persona("p1"), memory("m1", importance=0.2), memory("m2"), MemoryLinked(**link))
    before = store.head.global_seq
    store.commit(
        MemoryUpdated(memory_id="m1", persona_id="p1", importance=0.8),
        memory("m3"),
        MemoryUnlinked(**link),
    )
    found = diff(store, before)
    assert (found.before, found.after) == (before, store.head.global_seq)
    table = found.tables["memories"]
    assert [row["id"] for row in table.added] == ["m3"]
    assert table.removed == []
    [unlinked] = found.tables["memory_links"].removed
    assert (unlinked["source_id"], unlinked["target_id"]) == ("m1", "m2")
    [changed] = table.changed
    assert changed.key == ("m1",)
    assert changed.changes["importance"] == (0.2, 0.8)
    assert "content" not in changed.changes
    assert "personas" not in found.tables


def test_diff_backwards_and_to_itself(store: Store) -> None:
    store.commit(persona("p1"), memory("m1"))
    back = diff(store, 2, 1)
    assert [row["id"] for row in back.tables["memories"].removed] == ["m1"]
    assert diff(store, 1, 1).empty
