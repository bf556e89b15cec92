"""Memory commands by memory id."""

from __future__ import annotations

import pytest

from pjai.app import Memories, Personas
from pjai.errors import QueryError
from pjai.hybrid import HybridDatabaseManager
from pjai.memory import EmbeddingsUnavailable, SearchFilter
from pjai.sql.repositories import MemoryFilter


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


def test_vectors_asked_for_but_not_installed_are_named(
    memories: Memories, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*_: object) -> None:
        raise EmbeddingsUnavailable("semantic search is not installed")

    monkeypatch.setattr("pjai.app.datadir.Embeddings.open", unavailable)
    memories.add("ada", "x y", memory_id="a")
    with pytest.raises(EmbeddingsUnavailable):
        memories.search("x", SearchFilter(), method="semantic")
    with pytest.raises(EmbeddingsUnavailable):
        memories.auto_link("ada", by="vectors")
    assert memories.auto_link("ada").by == "words"
