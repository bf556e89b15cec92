"""Live queries: re-run only when their inputs change, deliver only new results."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import weakref
from typing import Any

import pytest
from sqlalchemy import bindparam, func, select

from pjai.schema import MemoryAccessed, MemoryUpdated, PersonaActivated, memories
from pjai.store import Row, Store, Subscription
from tests.helpers import memory, persona


def hot_of(persona_id: str) -> Any:
    return (
        select(memories.c.id, memories.c.importance)
        .where(memories.c.persona_id == persona_id, memories.c.tier == "hot")
        .order_by(memories.c.importance.desc())
        .limit(50)
    )


@pytest.fixture
def two_personas(store: Store) -> Store:
    store.commit(
        persona("a"),
        persona("b"),
        *[memory(f"a{i}", "a", tier="hot", importance=i / 10) for i in range(3)],
        *[memory(f"b{i}", "b", tier="hot", importance=i / 10) for i in range(3)],
    )
    return store


def test_subscriber_gets_current_then_each_new_result(two_personas: Store) -> None:
    seen: list[list[str]] = []
    live = two_personas.live(hot_of("a"))
    live.subscribe(lambda rows: seen.append([r.id for r in rows]))
    two_personas.commit(MemoryUpdated(memory_id="a0", persona_id="a", importance=0.9))
    assert seen == [["a2", "a1", "a0"], ["a0", "a2", "a1"]]
    assert live.tables == frozenset({"memories"})
    assert live.filters == {
        "memories": {"persona_id": frozenset({"a"}), "tier": frozenset({"hot"})}
    }


def test_commit_to_another_persona_does_not_rerun(two_personas: Store) -> None:
    live = two_personas.live(hot_of("a"))
    calls: list[list[Row]] = []
    live.subscribe(calls.append)
    runs = live.runs
    two_personas.commit(MemoryUpdated(memory_id="b0", persona_id="b", importance=0.9))
    two_personas.commit(memory("b9", "b", tier="hot"))
    assert live.runs == runs
    assert len(calls) == 1
    # A cold memory of persona a cannot match tier = 'hot' either: no re-run.
    two_personas.commit(memory("a9", "a", tier="cold"))
    assert live.runs == runs
    # A memory of a that becomes hot must be seen.
    two_personas.commit(memory("a8", "a", tier="hot", importance=1.0))
    assert live.runs == runs + 1
    assert calls[-1][0].id == "a8"


def test_rerun_that_gives_the_same_result_is_not_delivered(two_personas: Store) -> None:
    count = select(func.count()).select_from(memories).where(memories.c.persona_id == "a")
    live = two_personas.live(count)
    calls: list[list[Row]] = []
    live.subscribe(calls.append)
    two_personas.commit(MemoryAccessed(memory_id="a1", persona_id="a"))
    assert live.runs == 2  # a row of persona a changed: re-run
    assert len(calls) == 1  # ...but the count did not change


def test_one_delivery_per_commit_whatever_its_size(two_personas: Store) -> None:
    calls: list[list[Row]] = []
    two_personas.live(hot_of("a")).subscribe(calls.append, immediate=False)
    two_personas.commit(*[memory(f"n{i}", "a", tier="hot", importance=0.5) for i in range(20)])
    assert len(calls) == 1
    assert len(calls[0]) == 23


def test_text_queries_track_tables(two_personas: Store) -> None:
    live = two_personas.live(
        "SELECT p.name, count(m.id) AS n FROM personas p LEFT JOIN memories m "
        "ON m.persona_id = p.id AND m.deleted_at IS NULL WHERE p.is_active GROUP BY p.id"
    )
    calls: list[list[Row]] = []
    live.subscribe(calls.append)
    assert live.tables == frozenset({"personas", "memories"})
    assert calls == [[]]
    two_personas.commit(PersonaActivated(persona_id="b"))
    assert [(r.name, r.n) for r in calls[-1]] == [("B", 3)]
    two_personas.commit(memory("b7", "b"))
    assert [(r.name, r.n) for r in calls[-1]] == [("B", 4)]


def test_row_filters_are_skipped_when_the_table_is_read_twice(two_personas: Store) -> None:
    other = memories.alias("other")
    stmt = select(memories.c.id).where(
        memories.c.persona_id == "a",
        memories.c.importance >= select(func.max(other.c.importance)).scalar_subquery(),
    )
    live = two_personas.live(stmt)
    calls: list[list[Row]] = []
    live.subscribe(calls.append)
    assert live.filters == {}
    assert [r.id for r in calls[-1]] == ["a2"]  # a2 ties b2 for the highest importance
    two_personas.commit(MemoryUpdated(memory_id="b2", persona_id="b", importance=0.9))
    assert live.runs == 2  # a change to persona b matters through the subquery
    assert calls[-1] == []


def test_bound_parameters_feed_the_row_filters(two_personas: Store) -> None:
    stmt = select(memories.c.id).where(memories.c.persona_id.in_(bindparam("ids", expanding=True)))
    live = two_personas.live(stmt, {"ids": ["a"]})
    live.subscribe(lambda rows: None)
    assert live.filters == {"memories": {"persona_id": frozenset({"a"})}}
    runs = live.runs
    two_personas.commit(memory("b5", "b"))
    assert live.runs == runs


def test_raising_subscriber_breaks_neither_commit_nor_others(
    two_personas: Store, caplog: pytest.LogCaptureFixture
) -> None:
    live = two_personas.live(hot_of("a"))
    good: list[list[Row]] = []

    def bad(rows: list[Row]) -> None:
        raise RuntimeError("subscriber bug")

    live.subscribe(bad, immediate=False)
    live.subscribe(good.append, immediate=False)
    with caplog.at_level(logging.ERROR, logger="pjai.store.live"):
        records = two_personas.commit(memory("a5", "a", tier="hot"))
    assert records
    assert len(good) == 1
    assert "subscriber bug" in caplog.text


def test_unsubscribe_and_close_leak_nothing(two_personas: Store) -> None:
    live = two_personas.live(hot_of("a"))
    calls: list[list[Row]] = []
    subscription = live.subscribe(calls.append)
    with live.subscribe(calls.append):
        assert two_personas.live_queries == 1
    subscription.unsubscribe()
    subscription.unsubscribe()
    assert two_personas.live_queries == 0
    assert two_personas._live.watch == {}
    runs = live.runs
    two_personas.commit(memory("a6", "a", tier="hot"))
    assert live.runs == runs  # no subscriber, no work
    assert live.result[0].id == "a6"  # ...but the result is fresh on demand
    ref = weakref.ref(live)
    del live, subscription
    gc.collect()
    assert ref() is None

    again = two_personas.live(hot_of("a"))
    again.subscribe(calls.append)
    two_personas.close()
    assert two_personas.live_queries == 0


def test_async_iteration_yields_current_then_updates(two_personas: Store) -> None:
    async def main() -> list[list[str]]:
        seen: list[list[str]] = []
        live = two_personas.live(hot_of("a"))
        iterator = aiter(live)
        seen.append([r.id for r in await anext(iterator)])

        def writer() -> None:
            two_personas.commit(MemoryUpdated(memory_id="a0", persona_id="a", importance=1.0))

        thread = threading.Thread(target=writer)
        thread.start()
        seen.append([r.id for r in await asyncio.wait_for(anext(iterator), timeout=5)])
        thread.join()
        await iterator.aclose()  # type: ignore[attr-defined]
        assert two_personas.live_queries == 0
        return seen

    assert asyncio.run(main()) == [["a2", "a1", "a0"], ["a0", "a2", "a1"]]


def test_live_query_on_the_event_log(store: Store) -> None:
    live = store.live("SELECT count(*) AS n FROM pjai_eventlog")
    counts: list[int] = []
    live.subscribe(lambda rows: counts.append(rows[0].n))
    store.commit(persona("p1"))
    store.commit(memory("m1"), memory("m2"))
    assert counts == [0, 1, 3]


def test_queries_run_once_are_not_kept(two_personas: Store, monkeypatch: Any) -> None:
    # Each search builds new selects: a long-running process must not keep them all.
    from pjai.store import query

    again = select(memories.c.id).where(memories.c.persona_id == "p1")
    compiled: list[bool] = []
    real = query.Select.compile

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        compiled.append(self is again)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(query.Select, "compile", counted)
    for i in range(query.COMPILED_KEPT * 3):
        two_personas.query(select(memories.c.id).where(memories.c.id == f"m{i}"))
        two_personas.query(again)  # run often: compiled once
    assert len(query._compiled) <= query.COMPILED_KEPT
    assert compiled.count(True) == 1
    late = select(memories.c.id).where(memories.c.id == "late")
    gone = weakref.ref(late)
    two_personas.query(late)
    del late
    for i in range(query.COMPILED_KEPT):
        two_personas.query(select(memories.c.id).where(memories.c.name == f"n{i}"))
    gc.collect()
    assert gone() is None


def test_a_commit_from_a_callback_reaches_every_subscriber_after_the_result_before_it(
    store: Store,
) -> None:
    store.commit(persona("p1"))
    live = store.live("SELECT count(*) AS n FROM memories")
    first: list[int] = []
    second: list[int] = []

    def add_another(rows: list[Row]) -> None:
        first.append(rows[0].n)
        if rows[0].n == 1:
            store.commit(memory("m2"))

    live.subscribe(add_another)
    live.subscribe(lambda rows: second.append(rows[0].n))
    store.commit(memory("m1"))
    assert first == second == [0, 1, 2]


def test_a_commit_of_another_thread_during_a_delivery_is_heard_after_it(store: Store) -> None:
    store.commit(persona("p1"))
    live = store.live("SELECT count(*) AS n FROM memories")
    delivering = threading.Event()
    go_on = threading.Event()
    first: list[int] = []
    second: list[int] = []

    def slow(rows: list[Row]) -> None:
        first.append(rows[0].n)
        if rows[0].n == 1:
            delivering.set()
            assert go_on.wait(timeout=10)

    live.subscribe(slow)
    live.subscribe(lambda rows: second.append(rows[0].n))
    committing = threading.Thread(target=lambda: store.commit(memory("m1")))
    committing.start()
    assert delivering.wait(timeout=10)
    store.commit(memory("m2"))  # while the first commit's subscribers are being called
    go_on.set()
    committing.join(timeout=10)
    assert first == second == [0, 1, 2]


def test_a_subscriber_unsubscribed_by_an_earlier_one_is_not_called_again(store: Store) -> None:
    store.commit(persona("p1"))
    live = store.live("SELECT count(*) AS n FROM memories")
    later: list[int] = []
    subscriptions: list[Subscription] = []
    live.subscribe(lambda rows: subscriptions[0].unsubscribe() if rows[0].n else None)
    subscriptions.append(live.subscribe(lambda rows: later.append(rows[0].n)))
    store.commit(memory("m1"))
    assert later == [0]
    assert live.subscribers == 1


def test_async_iteration_yields_a_commit_made_as_it_starts_once(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.commit(persona("p1"))
    live = store.live("SELECT count(*) AS n FROM memories")
    subscribe = live.subscribe

    def subscribe_then_commit(*args: Any, **kwargs: Any) -> Subscription:
        subscription = subscribe(*args, **kwargs)
        store.commit(memory("m1"))  # lands just after the iterator subscribed
        return subscription

    monkeypatch.setattr(live, "subscribe", subscribe_then_commit)

    async def main() -> list[int]:
        iterator = aiter(live)
        seen = [(await anext(iterator))[0].n]
        await asyncio.sleep(0)  # what the loop was told meanwhile is done
        # The next commit once the iterator waits: it is the next result to yield.
        following = asyncio.ensure_future(anext(iterator))
        asyncio.get_running_loop().call_soon(store.commit, memory("m2"))
        seen.append((await asyncio.wait_for(following, timeout=5))[0].n)
        await iterator.aclose()  # type: ignore[attr-defined]
        return seen

    assert asyncio.run(main()) == [1, 2]


def test_a_live_query_on_the_full_text_index_alone_hears_of_commits(
    store: Store, tmp_path: Any
) -> None:
    # SQLite reports the index's changes in its shadow tables, never the virtual table.
    found = "SELECT rowid FROM memories_fts WHERE memories_fts MATCH 'beta' ORDER BY rowid"
    store.commit(persona("p1"), memory("m1", content="alpha"))
    seen: list[int] = []
    store.live(found).subscribe(lambda rows: seen.append(len(rows)))
    store.commit(memory("m2", content="beta"))
    store.commit(MemoryUpdated(memory_id="m1", persona_id="p1", content="beta too"))
    assert seen == [0, 1, 2]
    path = tmp_path / "store.db"
    with Store.open(path) as running, Store.open(path) as command:
        running.commit(persona("p1"))
        seen.clear()
        running.live(found).subscribe(lambda rows: seen.append(len(rows)))
        command.commit(memory("m1", content="beta"))
        assert running.refresh() is True
        assert seen == [0, 1]
