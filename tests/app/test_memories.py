"""Memory commands by memory id."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from pjai.app import Memories, Personas
from pjai.errors import NotFoundError, QueryError
from pjai.hybrid import HybridDatabaseManager
from pjai.memory import Embeddings, EmbeddingsUnavailable, SearchFilter
from pjai.sql.repositories import MemoryFilter
from tests.memory.test_embeddings import TopicEncoder


@pytest.fixture
def memories(manager: HybridDatabaseManager) -> Memories:
    Personas(manager).create("Ada", persona_id="ada")
    return Memories(manager)


def test_by_id(memories: Memories) -> None:
    memories.add("ada", "the blue kettle is broken", memory_id="a", importance=0.9)
    memories.add("ada", "the blue kettle was bought", memory_id="b")
    assert [m.id for m in memories.list(MemoryFilter(persona_id="ada"))] == ["a", "b"]
    opened = memories.open("a")
    assert (opened.memory.access_count, opened.links) == (1, [])
    moved = memories.update("a", tier="hot", name="Kettle")
    assert (moved.changed, moved.memory.tier, moved.memory.name) == (True, "hot", "Kettle")
    assert memories.update("a", tier="hot").changed is False
    assert memories.update("b", summary="bought").memory.summary == "bought"
    assert memories.delete("b").deleted_at is not None
    assert memories.restore("b").deleted_at is None
    made = memories.link("a", "b", "related", strength=0.7)
    assert (made.source_id, made.target_id, made.kind, made.strength) == ("a", "b", "related", 0.7)
    assert [n.memory_id for n in memories.neighbours("a")] == ["b"]
    memories.unlink("a", "b", "related")
    assert memories.neighbours("a") == []
    with pytest.raises(QueryError, match="no memory 'zzz'"):
        memories.delete("zzz")


def test_links_search_and_upkeep(memories: Memories) -> None:
    memories.add("ada", "the blue kettle is broken", memory_id="a")
    memories.add("ada", "the blue kettle is broken again", memory_id="b")
    linked = memories.auto_link("ada", by="words", threshold=0.5)
    assert (linked.links, linked.by) == (1, "words")
    assert memories.decay_links("ada", 1.0) == 0
    hits = memories.search("kettle", SearchFilter(persona_id="ada"))
    assert {h.memory_id for h in hits} == {"a", "b"}
    (report,) = memories.optimize("ada")
    assert report.persona_id == "ada"
    assert [r.persona_id for r in memories.optimize()] == ["ada"]
    stats = memories.stats("ada")
    assert (stats.statistics.total, stats.health.memories) == (2, 2)
    assert memories.stats().statistics.total == 2
    with pytest.raises(QueryError, match="no persona 'nobody'"):
        memories.stats("nobody")
    assert sum(b.memories for b in memories.timeline("ada", "day")) == 2


def test_vectors_asked_for_but_unavailable_are_named(
    memories: Memories, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*_: object, **__: object) -> None:
        raise EmbeddingsUnavailable("semantic search is not installed")

    monkeypatch.setattr("pjai.app.datadir.Embeddings.open", unavailable)
    memories.add("ada", "x y", memory_id="a")
    with pytest.raises(EmbeddingsUnavailable):
        memories.search("x", SearchFilter(), method="semantic")
    with pytest.raises(EmbeddingsUnavailable):
        memories.auto_link("ada", by="vectors")
    assert memories.auto_link("ada").by == "words"


def accesses(manager: HybridDatabaseManager) -> int:
    store = manager.store
    assert store is not None
    return sum(1 for e in store.events() if e.record.name == "v1.MemoryAccessed")


def test_show_reads_and_open_records_an_access(
    memories: Memories, manager: HybridDatabaseManager
) -> None:
    memories.add("ada", "the blue kettle", memory_id="a")
    shown = memories.show("a")
    assert (shown.memory.id, shown.memory.access_count, shown.links) == ("a", 0, [])
    assert memories.get("a").access_count == 0
    assert accesses(manager) == 0
    assert memories.open("a").memory.access_count == 1
    assert accesses(manager) == 1
    memories.delete("a")
    with pytest.raises(NotFoundError, match="no live memory 'a'"):
        memories.show("a")


def test_a_tier_given_pins_and_changes_say_what_else_moved(memories: Memories) -> None:
    cold = memories.add("ada", "keep me cold", memory_id="cold", tier="cold", importance=1.0)
    assert (cold.memory.tier, cold.memory.pinned, cold.moves) == ("cold", True, [])
    for i in range(9):
        memories.add("ada", f"note {i}", memory_id=f"n{i}", importance=0.5)
    change = memories.update("n4", importance=0.9)
    assert memories.get("cold").tier == "cold"
    moved = {m.memory_id: (m.tier, m.to, m.reason) for m in change.moves}
    assert moved["n4"] == ("warm", "hot", "importance_change")
    assert "cold" not in moved
    assert len(moved) == 6
    unpinned = memories.update("cold", pinned=False)
    assert (unpinned.changed, unpinned.memory.pinned) == (True, False)
    assert memories.update("cold", pinned=False).changed is False
    moved_by_hand = memories.update("n0", tier="hot", pinned=False)
    assert (moved_by_hand.memory.tier, moved_by_hand.memory.pinned) == ("hot", False)


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.list(MemoryFilter(persona_id="nobody")),
        lambda m: m.search("kettle", SearchFilter(persona_id="nobody")),
        lambda m: m.timeline("nobody"),
        lambda m: m.optimize("nobody"),
        lambda m: m.stats("nobody"),
        lambda m: m.auto_link("nobody"),
        lambda m: m.decay_links("nobody", 1.0),
    ],
    ids=["list", "search", "timeline", "optimize", "stats", "auto-link", "decay-links"],
)
def test_a_persona_that_does_not_exist_is_named(memories: Memories, call: Any) -> None:
    with pytest.raises(NotFoundError, match="no persona 'nobody'"):
        call(memories)


def test_a_memory_that_does_not_exist_is_named(memories: Memories) -> None:
    with pytest.raises(NotFoundError, match="no memory 'nothing'"):
        memories.neighbours("nothing")
    with pytest.raises(NotFoundError, match="no live memory 'nothing'"):
        memories.open("nothing")


def test_a_deleted_memory_has_no_neighbours(memories: Memories) -> None:
    ada = Personas(memories.manager).create("Ada").id
    alpha = memories.add(ada, "alpha").memory.id
    beta = memories.add(ada, "beta").memory.id
    memories.link(alpha, beta, "related")
    memories.delete(alpha)
    with pytest.raises(NotFoundError, match="no live memory"):
        memories.neighbours(alpha, depth=2)
    assert memories.neighbours(beta) == []  # nor is it anyone's


def test_a_deleted_persona_is_missing(memories: Memories, manager: HybridDatabaseManager) -> None:
    memories.add("ada", "x", memory_id="a")
    Personas(manager).delete("ada")
    with pytest.raises(NotFoundError, match="no persona 'ada'"):
        memories.list(MemoryFilter(persona_id="ada"))


def test_searches_share_one_vector_file_until_the_model_changes(
    memories: Memories, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    real = Embeddings.open

    def counting(*args: Any, **kwargs: Any) -> Embeddings:
        vectors = real(*args, encoder=TopicEncoder(), **kwargs)
        opened.append(vectors.model)
        return vectors

    monkeypatch.setattr("pjai.app.datadir.Embeddings.open", counting)
    memories.add("ada", "the kitten would purr", memory_id="cat")
    for _ in range(3):
        hits = memories.search("kitten", SearchFilter(persona_id="ada"), method="hybrid")
        assert [h.memory_id for h in hits] == ["cat"]
    assert opened == ["all-MiniLM-L6-v2-int8"]  # once, kept for the next searches
    monkeypatch.setenv("PJAI_EMBEDDING_MODEL", "minilm")  # the stand-in encodes for it too
    memories.search("kitten", SearchFilter(persona_id="ada"), method="semantic")
    monkeypatch.delenv("PJAI_EMBEDDING_MODEL")
    memories.search("kitten", SearchFilter(persona_id="ada"), method="semantic")
    assert opened == ["all-MiniLM-L6-v2-int8", "all-MiniLM-L6-v2", "all-MiniLM-L6-v2-int8"]


def test_closing_the_manager_during_a_search_does_not_wait_on_it(
    memories: Memories, manager: HybridDatabaseManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "pjai.app.datadir.Embeddings.open",
        lambda *a, **k: Embeddings(a[0] / "vectors.db", TopicEncoder(), "topics"),
    )
    inside, leave = threading.Event(), threading.Event()
    held: list[Embeddings | None] = []

    def search() -> None:
        with memories._vectors(required=True, wanted=True) as vectors:
            held.append(vectors)
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=search)
    thread.start()
    assert inside.wait(10)
    started = time.monotonic()
    manager.close()  # the search may be waiting for the manager: close does not wait long
    assert time.monotonic() - started < 5
    leave.set()
    thread.join(10)
    assert memories._embeddings is None  # closed as the search ended
