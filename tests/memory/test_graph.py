"""The memory graph: neighbours, components, auto-linking and decay runs."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest

from pjai.errors import QueryError
from pjai.memory import graph
from pjai.memory.graph import Neighbour, auto_link, components, decay_links, neighbours, similarity
from pjai.schema import (
    MemoryDeleted,
    MemoryLinked,
    MemoryLinksDecayed,
    MemoryRestored,
    MemoryUnlinked,
)
from pjai.store import Store
from tests.helpers import memory, persona


def link(source: str, target: str, **fields: object) -> MemoryLinked:
    return MemoryLinked(persona_id="p1", source_id=source, target_id=target, **fields)  # type: ignore[arg-type]


def chain(store: Store, *ids: str) -> None:
    """Memories linked one after the other, a -> b -> c ..."""
    store.commit(persona(), *[memory(i) for i in ids])
    store.commit(*[link(a, b) for a, b in pairwise(ids)])


def test_neighbours_up_to_a_depth_either_direction(store: Store) -> None:
    chain(store, "a", "b", "c", "d")
    assert neighbours(store, "b") == [Neighbour("a", 1), Neighbour("c", 1)]
    assert neighbours(store, "a", depth=2) == [Neighbour("b", 1), Neighbour("c", 2)]
    assert neighbours(store, "d", depth=5) == [
        Neighbour("c", 1),
        Neighbour("b", 2),
        Neighbour("a", 3),
    ]


def test_neighbours_take_the_shortest_path_through_cycles(store: Store) -> None:
    chain(store, "a", "b", "c", "d")
    store.commit(link("d", "a"))
    assert neighbours(store, "a", depth=4) == [
        Neighbour("b", 1),
        Neighbour("d", 1),
        Neighbour("c", 2),
    ]


def test_weak_links_are_not_followed(store: Store) -> None:
    store.commit(persona(), memory("a"), memory("b"), memory("c"))
    store.commit(link("a", "b", strength=0.9), link("b", "c", strength=0.1))
    assert neighbours(store, "a", depth=2, min_strength=0.5) == [Neighbour("b", 1)]


def test_deleted_memories_are_not_reached_nor_passed_through(store: Store) -> None:
    chain(store, "a", "b", "c")
    store.commit(memory("d"), link("a", "d"))
    store.commit(MemoryDeleted(memory_id="b", persona_id="p1"))
    assert neighbours(store, "a", depth=3) == [Neighbour("d", 1)]
    assert components(store, "p1") == [{"a", "d"}]
    store.commit(MemoryRestored(memory_id="b", persona_id="p1"))
    assert neighbours(store, "a", depth=3) == [
        Neighbour("b", 1),
        Neighbour("d", 1),
        Neighbour("c", 2),
    ]


def test_depth_must_be_positive(store: Store) -> None:
    with pytest.raises(QueryError, match="got 0"):
        neighbours(store, "a", depth=0)


def test_min_strength_must_be_a_number(store: Store) -> None:
    # Every comparison with NaN is false: the walk would silently find nothing.
    with pytest.raises(QueryError, match="min_strength must be a number, got nan"):
        neighbours(store, "a", min_strength=math.nan)


def test_components_largest_first_per_persona(store: Store) -> None:
    store.commit(persona(), persona("p2"))
    store.commit(*[memory(i) for i in "abcdefg"], memory("x", "p2"), memory("y", "p2"))
    store.commit(
        link("e", "f"),
        link("a", "b"),
        link("c", "b"),
        link("d", "c"),
        MemoryLinked(persona_id="p2", source_id="x", target_id="y"),
    )
    assert components(store, "p1") == [{"a", "b", "c", "d"}, {"e", "f"}]
    assert components(store, "p2") == [{"x", "y"}]


def test_similarity_is_jaccard() -> None:
    assert similarity({"a", "b"}, {"b", "c"}) == pytest.approx(1 / 3)
    assert similarity({"a"}, {"a"}) == 1.0
    assert similarity(set(), {"a"}) == 0.0


def filler(n: int) -> list[object]:
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"]
    return [memory(f"z{i}", content=f"{words[i]} unrelated filler") for i in range(n)]


def test_auto_link_joins_overlapping_memories_once(store: Store) -> None:
    store.commit(
        persona(),
        memory("m1", content="sailing boat harbour regatta"),
        memory("m2", content="sailing boat harbour storm"),
        memory("m3", content="chocolate cake recipe oven"),
        *filler(7),  # type: ignore[arg-type]
    )
    events = auto_link(store, "p1")
    assert len(events) == 1
    made = events[0]
    assert isinstance(made, MemoryLinked)
    assert (made.source_id, made.target_id, made.kind) == ("m1", "m2", "similar")
    assert made.strength == made.confidence == pytest.approx(3 / 5)
    store.commit(*events)
    assert auto_link(store, "p1") == []


def test_auto_link_compares_japanese_by_pairs_of_characters(store: Store) -> None:
    store.commit(
        persona(),
        memory("m1", content="東京タワーで夜景を見た"),
        memory("m2", content="東京タワーの夜景"),
        memory("m3", content="京都で抹茶を飲んだ"),
        *filler(7),  # type: ignore[arg-type]
    )
    events = auto_link(store, "p1")
    # Shared: 東京 京タ タワ ワー 夜景, of 12 pairs in all.
    assert [(e.source_id, e.target_id, e.strength) for e in events] == [  # type: ignore[attr-defined]
        ("m1", "m2", round(5 / 12, 4))
    ]


def test_auto_link_respects_threshold_and_existing_links(store: Store) -> None:
    store.commit(
        persona(),
        memory("m1", content="sailing boat harbour regatta"),
        memory("m2", content="sailing boat harbour storm"),
        *filler(8),  # type: ignore[arg-type]
    )
    assert auto_link(store, "p1", threshold=0.7) == []
    store.commit(link("m2", "m1", kind="related"))
    assert auto_link(store, "p1") == []


def test_auto_link_reads_cold_memories_and_skips_deleted(store: Store) -> None:
    store.commit(
        persona(),
        memory("m1", content="sailing boat harbour regatta", tier="cold"),
        memory("m2", content="sailing boat harbour storm"),
        memory("m3", content="sailing boat harbour regatta"),
        *filler(7),  # type: ignore[arg-type]
    )
    store.commit(MemoryDeleted(memory_id="m3", persona_id="p1"))
    pairs = [(e.source_id, e.target_id) for e in auto_link(store, "p1")]  # type: ignore[attr-defined]
    assert pairs == [("m1", "m2")]


def test_auto_link_by_words_compares_a_bounded_number_of_pairs(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Words shared by many memories would make every pair a candidate: the work must
    # grow with the memories, not with their pairs.
    compared = []
    monkeypatch.setattr(graph, "similarity", lambda a, b: compared.append(1) or similarity(a, b))
    vocabulary = [f"word{i}" for i in range(100)]  # each in about 75 memories
    store.commit(persona("p1"))
    store.commit(
        *[
            memory(
                f"m{i:04}", content=" ".join(vocabulary[(i * 7 + j * 13) % 100] for j in range(5))
            )
            for i in range(1_500)
        ]
    )
    auto_link(store, "p1")
    assert len(compared) <= 1_500 * graph.CANDIDATES_PER_LINK * 3


def test_decay_unlinks_weak_links_and_decays_the_rest(store: Store) -> None:
    store.commit(persona(), memory("a"), memory("b"), memory("c"))
    store.commit(
        link("a", "b", strength=0.8, decay_rate=0.1),
        link("b", "c", strength=0.1, decay_rate=0.1),
    )
    events = decay_links(store, "p1", 10)
    assert events == [
        MemoryUnlinked(persona_id="p1", source_id="b", target_id="c", kind="related"),
        MemoryLinksDecayed(persona_id="p1", days=10),
    ]
    store.commit(*events)
    rows = store.query("SELECT source_id, target_id, strength FROM memory_links")
    assert [(r.source_id, r.target_id) for r in rows] == [("a", "b")]
    assert rows[0].strength == pytest.approx(0.8 * math.exp(-1))


def test_decay_of_only_weak_links_just_unlinks(store: Store) -> None:
    store.commit(persona(), memory("a"), memory("b"))
    store.commit(link("a", "b", strength=0.06, decay_rate=0.5))
    events = decay_links(store, "p1", 1)
    assert [type(e) for e in events] == [MemoryUnlinked]
    assert decay_links(store, "p2", 1) == []
