"""Rebase: pending events move on top of upstream history; state equals a fresh replay."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence

import msgspec
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from pjai.errors import PjaiError, RebaseError, StoreError
from pjai.schema import (
    Event,
    MemoryAccessed,
    MemoryDeleted,
    MemoryUpdated,
    PersonaDeleted,
    PersonaUpdated,
)
from pjai.store import ROOT, EventRecord, Position, Store
from tests.helpers import memory, persona
from tests.strategies import MEMORIES, PERSONAS, SEEDED, WORDS, events, owner


class Upstream:
    """A minimal stand-in for a sync server: a total order, accepting only at its head."""

    def __init__(self) -> None:
        self.log: list[EventRecord] = []

    @property
    def head(self) -> Position:
        return self.log[-1].position if self.log else ROOT

    def push(self, records: Sequence[EventRecord]) -> bool:
        if not records or records[0].parent.key != self.head.key:
            return False
        self.log.extend(records)
        return True

    def pull(self, after: Position) -> list[EventRecord]:
        return [r for r in self.log if r.position.global_seq > after.global_seq]


def sync(store: Store, upstream: Upstream) -> None:
    """Pull, push, pull again: what a sync client does."""
    store.rebase(upstream.pull(store.confirmed_head))
    if upstream.push(store.pending()):
        store.rebase(upstream.pull(store.confirmed_head))


def replay(records: Sequence[EventRecord]) -> str:
    """The state hash of a fresh store that applies ``records`` in order."""
    with Store.memory(sync=True) as fresh:
        fresh.rebase(records)
        return fresh.state_hash()


def live_history(store: Store) -> list[EventRecord]:
    return [entry.record for entry in store.events()]


def index_agrees_with_rows(store: Store) -> None:
    """Every word finds, through the full-text index, exactly the memories holding it."""
    rows = store.query("SELECT id, content FROM memories")
    for word in [*WORDS, *MEMORIES]:
        found = store.query(
            "SELECT m.id FROM memories_fts JOIN memories m ON m.rowid = memories_fts.rowid "
            "WHERE memories_fts MATCH ? ORDER BY m.id",
            [word],
        )
        holding = sorted(r.id for r in rows if word in r.content.split())
        assert [r.id for r in found] == holding, word


def logged_pending(store: Store) -> list[EventRecord]:
    return [entry.record for entry in store.events() if entry.status == "pending"]


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


@pytest.fixture
def clients(upstream: Upstream) -> list[Store]:
    stores = [Store.memory(sync=True) for _ in range(2)]
    stores[0].commit(persona("p1"), memory("m1"), memory("m2"))
    sync(stores[0], upstream)
    sync(stores[1], upstream)
    yield stores
    for s in stores:
        s.close()


def test_echo_confirms_pending_events_without_touching_state(upstream: Upstream) -> None:
    with Store.memory(sync=True) as store:
        records = store.commit(persona("p1"), memory("m1"))
        assert [e.status for e in store.events()] == ["pending", "pending"]
        before = store.state_hash()
        assert upstream.push(store.pending())
        result = store.rebase(upstream.pull(store.confirmed_head))
        assert result.confirmed == [r.id for r in records]
        assert (result.applied, result.rebased, result.rejected) == (0, [], [])
        assert store.state_hash() == before
        assert [e.status for e in store.events()] == ["confirmed", "confirmed"]
        assert store.pending() == []


def test_pending_events_move_on_top_of_upstream(clients: list[Store], upstream: Upstream) -> None:
    a, b = clients
    a.commit(MemoryUpdated(memory_id="m1", persona_id="p1", content="from a"))
    b.commit(MemoryUpdated(memory_id="m1", persona_id="p1", content="from b"), memory("m3"))
    sync(b, upstream)
    result = a.rebase(upstream.pull(a.confirmed_head))
    assert result.applied == 2
    assert len(result.rebased) == 1
    moved = result.rebased[0]
    assert moved.position == Position(6, 0, 1)
    assert moved.parent.key == (5, 0)
    assert a.generation == 1
    # a's update is now the last writer of m1.content
    assert a.query("SELECT content FROM memories WHERE id = 'm1'")[0].content == "from a"
    assert a.state_hash() == replay(live_history(a))
    sync(a, upstream)
    sync(b, upstream)
    assert a.state_hash() == b.state_hash() == replay(upstream.log)


def test_pending_events_that_commute_with_upstream_stay_applied(
    clients: list[Store], upstream: Upstream
) -> None:
    a, b = clients
    mine = a.commit(memory("a1"), MemoryUpdated(memory_id="m1", persona_id="p1", content="a"))
    changesets = [c for _, c in a._log.pending()]
    b.commit(memory("b1"), MemoryUpdated(memory_id="m2", persona_id="p1", content="b"))
    sync(b, upstream)
    behind = upstream.pull(a.confirmed_head)
    planned = a.pending_after(behind)
    result = a.rebase(behind)
    assert planned is not None
    assert [(r.id, r.position, r.parent) for r in planned] == [
        (r.id, Position(6 + i, 0, 1), Position(5 + i)) for i, r in enumerate(mine)
    ]
    assert result.rebased == a.pending() == planned == logged_pending(a)
    assert [r.position.generation for r in a.pending()] == [1, 1]
    assert [c for _, c in a._log.pending()] == changesets  # not re-applied: renumbered
    assert a.state_hash() == replay(live_history(a))


def test_pending_after_leaves_it_to_the_rebase_when_upstream_meets_a_pending_event(
    clients: list[Store], upstream: Upstream
) -> None:
    a, b = clients
    a.commit(MemoryUpdated(memory_id="m1", persona_id="p1", content="a"))
    b.commit(MemoryUpdated(memory_id="m1", persona_id="p1", content="b"))
    sync(b, upstream)
    behind = upstream.pull(a.confirmed_head)
    assert a.pending_after(behind) is None
    a.rebase(behind)
    assert a.query("SELECT content FROM memories WHERE id = 'm1'")[0].content == "a"
    assert a.state_hash() == replay(live_history(a))


def test_events_pushed_before_the_rebase_are_confirmed_after_those_of_others(
    clients: list[Store], upstream: Upstream
) -> None:
    """A client pushes its events numbered as the rebase onto what it pulled will number
    them, before rebasing; another client's event lands after its push. One rebase then
    brings events of others and its own, interleaved."""
    a, b = clients
    mine = a.commit(
        memory("a1"), memory("a2"), MemoryUpdated(memory_id="m1", persona_id="p1", content="a")
    )
    b.commit(memory("b1"))
    sync(b, upstream)
    planned = a.pending_after(upstream.pull(a.confirmed_head))
    assert planned is not None
    assert upstream.push(planned[:2])
    b.commit(memory("b2"))
    sync(b, upstream)
    result = a.rebase(upstream.pull(a.confirmed_head))
    assert result.confirmed == [mine[0].id, mine[1].id]
    assert result.applied == 2  # b1 and b2; a1 and a2 were already applied here
    (left,) = a.pending()
    assert (left.id, left.position.key, left.parent.key) == (mine[2].id, (8, 0), (7, 0))
    assert a.state_hash() == replay(live_history(a))
    # The one left still rolls back exactly when upstream meets it.
    b.commit(MemoryUpdated(memory_id="m1", persona_id="p1", content="b"))
    sync(b, upstream)
    sync(a, upstream)
    assert a.query("SELECT content FROM memories WHERE id = 'm1'")[0].content == "a"
    assert a.state_hash() == replay(upstream.log)


def test_pending_event_that_no_longer_applies_is_rejected_and_kept(
    clients: list[Store], upstream: Upstream
) -> None:
    a, b = clients
    a.commit(
        MemoryDeleted(memory_id="m1", persona_id="p1"),
        MemoryAccessed(memory_id="m2", persona_id="p1"),
    )
    b.commit(MemoryDeleted(memory_id="m1", persona_id="p1"))
    sync(b, upstream)
    result = a.rebase(upstream.pull(a.confirmed_head))
    assert [r.name for r, _ in result.rejected] == ["v1.MemoryDeleted"]
    assert "no live memory 'm1'" in result.rejected[0][1]
    assert [r.name for r in result.rebased] == ["v1.MemoryAccessed"]
    rejected = a.rejected()
    assert [(e.status, e.record.id) for e in rejected] == [("rejected", result.rejected[0][0].id)]
    assert a.state_hash() == replay(live_history(a))
    sync(a, upstream)
    assert a.state_hash() == replay(upstream.log)


def test_heads_and_pending_count_follow_commits_and_rebases(
    clients: list[Store], upstream: Upstream
) -> None:
    a, b = clients
    a.commit(MemoryAccessed(memory_id="m1", persona_id="p1"))
    a.commit(MemoryAccessed(memory_id="m2", persona_id="p1"))
    assert (a.confirmed_head.global_seq, a.head.global_seq, a.pending_count) == (3, 5, 2)
    b.commit(MemoryDeleted(memory_id="m2", persona_id="p1"))
    sync(b, upstream)
    a.rebase(upstream.pull(a.confirmed_head))  # the access of m2 no longer applies
    assert a.confirmed_head.global_seq == 4
    assert a.pending_count == len(a.pending()) == 1
    sync(a, upstream)
    assert (a.confirmed_head, a.pending_count) == (a.head, 0)


def test_a_rejection_names_the_upstream_event_that_won(
    clients: list[Store], upstream: Upstream
) -> None:
    a, b = clients
    a.commit(memory("m9", "p1"), MemoryAccessed(memory_id="m2", persona_id="p1"))
    (taken,) = b.commit(memory("m9", "p1"))
    b.commit(PersonaUpdated(persona_id="p1", name="later, unrelated"))
    sync(b, upstream)
    result = a.rebase(upstream.pull(a.confirmed_head))
    ((lost, reason),) = result.rejected
    assert lost.name == "v1.MemoryAdded"
    # The id was taken by b's MemoryAdded, not by the later persona update.
    assert f"conflict: v1.MemoryAdded {taken.id} at {taken.position}" in reason
    assert a.rejected()[0].error == reason


def test_a_rejection_names_the_deleted_persona_it_needed(
    clients: list[Store], upstream: Upstream
) -> None:
    a, b = clients
    (update,) = a.commit(MemoryUpdated(memory_id="m1", persona_id="p1", content="x"))
    b.commit(MemoryAccessed(memory_id="m1", persona_id="p1"))
    (deleted,) = b.commit(PersonaDeleted(persona_id="p1"))
    sync(b, upstream)
    ((lost, reason),) = a.rebase(upstream.pull(a.confirmed_head)).rejected
    assert lost.id == update.id
    assert f"v1.PersonaDeleted {deleted.id}" in reason


def test_a_refused_pending_event_is_rejected_and_the_rest_move_up(
    clients: list[Store], upstream: Upstream
) -> None:
    a, _ = clients
    first, refused, last = a.commit(
        MemoryUpdated(memory_id="m1", persona_id="p1", content="kept"),
        MemoryUpdated(memory_id="m2", persona_id="p1", content="refused upstream"),
        MemoryUpdated(memory_id="m2", persona_id="p1", importance=0.9),
    )
    result = a.discard(refused.id, "invalid_event: too large")
    assert result.rejected == [(refused, "invalid_event: too large")]
    assert [r.id for r in result.rebased] == [last.id]
    assert result.rebased[0].position.key == refused.position.key
    assert [r.id for r in a.pending()] == [first.id, last.id]
    assert [e.error for e in a.rejected()] == ["invalid_event: too large"]
    row = a.query("SELECT content, importance FROM memories WHERE id = 'm2'")[0]
    assert (row.content, row.importance) == ("content of m2", 0.9)
    assert a.state_hash() == replay(live_history(a))
    sync(a, upstream)
    assert a.state_hash() == replay(upstream.log)
    with pytest.raises(StoreError, match="no pending event"):
        a.discard(refused.id, "again")


def test_upstream_must_continue_the_confirmed_history(
    clients: list[Store], upstream: Upstream
) -> None:
    a, b = clients
    b.commit(memory("m7"))
    b.commit(memory("m8"))
    sync(b, upstream)
    before = a.state_hash()
    with pytest.raises(RebaseError, match="confirmed history ends at e3"):
        a.rebase(upstream.log[4:])  # skips e4
    assert a.state_hash() == before
    a.rebase(upstream.pull(a.confirmed_head))
    assert a.state_hash() == b.state_hash()


def test_upstream_may_not_reuse_an_events_id(clients: list[Store], upstream: Upstream) -> None:
    # A server that sends an event again under a new position, the same event twice, or
    # a pending event of ours with other content is refused: nothing is applied, and
    # the store goes on from the history it had.
    a, b = clients
    confirmed = upstream.log[-1]
    again = msgspec.structs.replace(confirmed, position=Position(4), parent=confirmed.position)
    b.commit(memory("m9"))
    sync(b, upstream)
    newer = upstream.log[-1]
    twice = msgspec.structs.replace(newer, position=Position(5), parent=newer.position)
    ours = a.commit(memory("m10"))[0]
    altered = msgspec.structs.replace(
        ours, args=msgspec.Raw(bytes(ours.args).replace(b"m10", b"m11")), position=Position(4)
    )
    before = (a.state_hash(), a.head, a.pending())
    for upstream_events, problem in [
        ([again], "is in this store's log already"),
        ([newer, twice], "comes twice"),
        ([altered], "with other content: the server altered it"),
    ]:
        with pytest.raises(RebaseError, match=problem):
            a.rebase(upstream_events)
        assert (a.state_hash(), a.head, a.pending()) == before
    sync(a, upstream)
    assert a.pending() == []
    assert upstream.log[-1].id == ours.id


def test_a_history_adopted_on_two_devices_syncs_on_both(upstream: Upstream) -> None:
    # After a server reset both devices import the same archive as pending events; the
    # second finds the first's copies upstream, sent by another client and session.
    with Store.memory() as old:
        old.commit(persona("p1"))
        old.commit(memory("m1"))
        records = [entry.record for entry in old.events()]
    with Store.memory(sync=True) as a, Store.memory(sync=True) as b:
        a.adopt(records)
        b.adopt(records)
        sync(a, upstream)
        sync(b, upstream)
        assert b.pending() == []
        assert b.state_hash() == a.state_hash()


def test_standalone_store_does_not_rebase(store: Store) -> None:
    with pytest.raises(StoreError, match="standalone"):
        store.rebase([])


def test_pending_events_survive_reopen(tmp_path: object, upstream: Upstream) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "client.db"
    with Store.open(path, sync=True) as store:
        store.commit(persona("p1"), memory("m1"))
    with pytest.raises(StoreError, match="sync=True"):
        Store.open(path)
    with Store.open(path, sync=True) as store:
        assert len(store.pending()) == 2
        sync(store, upstream)
        assert store.pending() == []
        assert store.state_hash() == replay(upstream.log)


# -- property: any sequence of rebases equals a fresh replay --------------------------


class RebaseMachine(RuleBasedStateMachine):
    """Three clients commit, push and pull in random order against one upstream."""

    @initialize()
    def setup(self) -> None:
        self.upstream = Upstream()
        self.clients = [Store.memory(sync=True) for _ in range(3)]
        self.clients[0].commit(
            *[persona(p) for p in PERSONAS], *[memory(m, owner(m)) for m in SEEDED]
        )
        for store in self.clients:
            sync(store, self.upstream)

    @rule(client=st.integers(0, 2), batch=st.lists(events(), min_size=1, max_size=2))
    def commit(self, client: int, batch: list[Event]) -> None:
        with contextlib.suppress(PjaiError):  # refused locally: nothing was written
            self.clients[client].commit(*batch)

    @rule(client=st.integers(0, 2))
    def push(self, client: int) -> None:
        store = self.clients[client]
        if self.upstream.push(store.pending()):
            store.rebase(self.upstream.pull(store.confirmed_head))

    @rule(client=st.integers(0, 2))
    def push_ahead(self, client: int) -> None:
        """Push pending events as a rebase onto what upstream has will number them,
        without rebasing first (a sync client does while others write)."""
        store = self.clients[client]
        planned = store.pending_after(self.upstream.pull(store.confirmed_head))
        if planned:
            self.upstream.push(planned)

    @rule(client=st.integers(0, 2))
    def pull(self, client: int) -> None:
        store = self.clients[client]
        store.rebase(self.upstream.pull(store.confirmed_head))

    @invariant()
    def state_equals_fresh_replay(self) -> None:
        for store in getattr(self, "clients", []):
            assert store.state_hash() == replay(live_history(store))
            index_agrees_with_rows(store)
            assert store.pending() == logged_pending(store)

    def teardown(self) -> None:
        clients = getattr(self, "clients", [])
        for _ in range(2):
            for store in clients:
                sync(store, self.upstream)
        final = replay(self.upstream.log)
        for store in clients:
            assert store.pending() == []
            assert store.state_hash() == final
            store.rebuild()
            assert store.state_hash() == final
            store.close()


RebaseMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("PJAI_REBASE_EXAMPLES", "60")),
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_rebase_equals_replay = RebaseMachine.TestCase
