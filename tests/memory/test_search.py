"""Keyword search: filters, ranking, deleted memories, a current index; rank fusion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pjai.errors import QueryError
from pjai.memory.search import SearchFilter, SearchHit, Tuning, fts_query, fuse, search
from pjai.schema import (
    MemoryDeleted,
    MemoryImported,
    MemoryLinked,
    MemoryRestored,
    MemoryUpdated,
)
from pjai.store import Store
from tests.helpers import memory, persona

NOW = datetime(2026, 8, 1, tzinfo=UTC)


def found(store: Store, text: str, **where: Any) -> list[str]:
    return [h.memory_id for h in search(store, text, SearchFilter(**where), limit=50)]


def imported(memory_id: str, created_days_ago: int, **fields: Any) -> MemoryImported:
    at = NOW - timedelta(days=created_days_ago)
    fields.setdefault("content", f"garden {memory_id}")
    return MemoryImported(
        memory_id=memory_id, persona_id="p1", source="t", created_at=at, updated_at=at, **fields
    )


@pytest.fixture
def garden(store: Store) -> Store:
    """Garden memories that differ in one field each."""
    store.commit(
        persona(),
        persona("p2"),
        imported("plain", 30, occurred_at=NOW - timedelta(days=30), importance=0.5),
        imported("hot", 20, tier="hot", occurred_at=NOW - timedelta(days=20), importance=0.9),
        imported("cold", 10, tier="cold", type="fact", occurred_at=NOW - timedelta(days=10)),
        imported("tagged", 5, tags=["roses", "june"], importance=0.2),
        memory("elsewhere", "p2", content="garden of another persona"),
    )
    return store


def test_persona_filter(garden: Store) -> None:
    assert found(garden, "garden", persona_id="p2") == ["elsewhere"]
    assert len(found(garden, "garden")) == 5


def test_the_index_finds_a_persona_by_any_id_and_only_by_its_text(store: Store) -> None:
    # The index holds each memory's persona as one word (the id's bytes in hex): ids
    # with separators, accents or nothing a tokenizer keeps, and ids that are prefixes
    # of others, each find their own memories and no other persona's.
    ids = ["a", "a-b", "a b", "A", "café", "cafe", "---", "日本", "x" * 128]
    store.commit(*(persona(p) for p in ids))
    store.commit(*(memory(f"m{i}", p, content="shared words") for i, p in enumerate(ids)))
    for i, persona_id in enumerate(ids):
        assert found(store, "shared", persona_id=persona_id) == [f"m{i}"]
    assert len(found(store, "shared")) == len(ids)
    assert found(store, "\ue00061") == []  # "a"s word: U+E000, no search term holds it


def test_a_search_before_any_memory_is_recorded_finds_nothing(store: Store) -> None:
    store.commit(persona())
    assert search(store, "tea", SearchFilter(persona_id="p1")) == []
    assert search(store, "tea") == []


def test_tier_and_type_filters(garden: Store) -> None:
    assert sorted(found(garden, "garden", tiers=("hot", "cold"))) == ["cold", "hot"]
    assert found(garden, "garden", types=("fact",)) == ["cold"]


def test_tag_filter_needs_every_tag(garden: Store) -> None:
    assert found(garden, "garden", tags=("roses",)) == ["tagged"]
    assert found(garden, "garden", tags=("roses", "june")) == ["tagged"]
    assert found(garden, "garden", tags=("roses", "july")) == []


def test_importance_range_is_inclusive(garden: Store) -> None:
    assert sorted(found(garden, "garden", importance_min=0.5, persona_id="p1")) == [
        "cold",
        "hot",
        "plain",
    ]
    assert found(garden, "garden", importance_max=0.2) == ["tagged"]
    assert found(garden, "garden", importance_min=0.6, importance_max=0.9) == ["hot"]


def test_occurred_range(garden: Store) -> None:
    since = NOW - timedelta(days=20)
    assert sorted(found(garden, "garden", occurred_from=since, occurred_to=NOW)) == [
        "cold",
        "hot",
        "tagged",
    ]
    assert found(garden, "garden", occurred_to=NOW - timedelta(days=25)) == ["plain"]


def test_created_range(garden: Store) -> None:
    window = {"created_from": NOW - timedelta(days=20), "created_to": NOW - timedelta(days=10)}
    assert sorted(found(garden, "garden", **window)) == ["cold", "hot"]
    assert found(garden, "garden", created_from=NOW - timedelta(days=6), persona_id="p1") == [
        "tagged"
    ]


def test_matches_in_name_or_content_rank_above_unrelated(store: Store) -> None:
    store.commit(
        persona(),
        memory("unrelated", content="the weather was mild and the bus was late"),
        memory("in-name", name="Violin lessons", content="every Tuesday after work"),
        memory("in-content", content="practised the violin for an hour"),
        memory("twice", name="Violin", content="tuned the violin before the concert"),
    )
    hits = search(store, "violin concert")
    assert [h.memory_id for h in hits][:1] == ["twice"]
    assert {h.memory_id for h in hits} == {"twice", "in-name", "in-content"}
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(h.sources == ("keyword",) for h in hits)


def test_words_are_stemmed_and_stop_words_dropped(store: Store) -> None:
    store.commit(persona(), memory("m1", content="she planted tomatoes"))
    assert found(store, "planting a tomato") == ["m1"]
    assert fts_query("the tomatoes and the peppers") == '"tomatoes" OR "peppers"'
    assert fts_query("the") == '"the"'
    assert fts_query("?!") is None
    # Pairs of neighbouring characters, each a phrase of two of the index's words.
    assert fts_query("東京都") == '" 東  京 " OR " 京  都 "'
    assert fts_query("猫") == '" 猫 "'
    assert fts_query("the 猫") == '" 猫 "'
    assert fts_query("a") == '"a"'  # a single letter alone is searched as it is
    assert found(store, "?!") == []


def test_hits_carry_the_memory(store: Store) -> None:
    at = datetime(2026, 2, 3, 4, 5, tzinfo=UTC)
    store.commit(persona(), memory("m1", name="Kite", content="flew a kite", occurred_at=at))
    (hit,) = search(store, "kite")
    assert (hit.memory_id, hit.persona_id, hit.name, hit.content, hit.tier, hit.occurred_at) == (
        "m1",
        "p1",
        "Kite",
        "flew a kite",
        "warm",
        at,
    )
    assert hit.score > 0


def test_cold_memories_are_found(store: Store) -> None:
    store.commit(persona(), memory("m1", content="an old lighthouse", tier="cold"))
    assert found(store, "lighthouse") == ["m1"]


def test_limit(store: Store) -> None:
    store.commit(persona(), *[memory(f"m{i}", content="same words") for i in range(5)])
    assert len(search(store, "words", limit=2)) == 2
    with pytest.raises(QueryError, match="got 0"):
        search(store, "words", limit=0)
    # A search reads up to 3 x limit in SQL, whose integers end at 2**63 - 1.
    assert len(search(store, "words in June 2026", limit=(2**63 - 1) // 3)) == 5
    for limit in ((2**63 - 1) // 3 + 1, 2**64):
        with pytest.raises(
            QueryError, match=f"limit must be at most 3074457345618258602, got {limit}"
        ):
            search(store, "words in June 2026", limit=limit)


def test_index_follows_update_delete_and_restore(store: Store) -> None:
    store.commit(persona(), memory("m1", content="blue bicycle"))
    store.commit(MemoryUpdated(memory_id="m1", persona_id="p1", content="red scooter"))
    assert (found(store, "bicycle"), found(store, "scooter")) == ([], ["m1"])
    store.commit(MemoryUpdated(memory_id="m1", persona_id="p1", tags=["vehicle"]))
    assert found(store, "vehicle") == ["m1"]
    store.commit(MemoryDeleted(memory_id="m1", persona_id="p1"))
    assert found(store, "scooter") == []
    store.commit(MemoryRestored(memory_id="m1", persona_id="p1"))
    assert found(store, "scooter") == ["m1"]


def test_semantic_search_needs_embeddings(store: Store) -> None:
    with pytest.raises(QueryError, match="need embeddings"):
        search(store, "anything", method="semantic")
    with pytest.raises(QueryError, match="need embeddings"):
        search(store, "anything", method="hybrid")


def hit(memory_id: str, score: float = 0.0) -> SearchHit:
    return SearchHit(memory_id, "p1", "", "", "warm", NOW, score, ("x",))


def test_fuse_weighs_normalised_scores() -> None:
    keyword = [hit("a", 12.0), hit("b", 8.0), hit("d", 4.0)]
    semantic = [hit("b", 0.9), hit("c", 0.5), hit("a", 0.4)]
    fused = fuse(keyword, semantic, 10)
    scores = {h.memory_id: h.score for h in fused}
    assert scores == pytest.approx({"a": 0.6, "b": 0.3 + 0.4, "c": 0.4 * 0.2, "d": 0.0})
    assert [h.memory_id for h in fused] == ["b", "a", "c", "d"]
    assert {h.memory_id: h.sources for h in fused} == {
        "a": ("keyword", "semantic"),
        "b": ("keyword", "semantic"),
        "c": ("semantic",),
        "d": ("keyword",),
    }


def test_fuse_limit_weights_and_ties() -> None:
    assert [h.memory_id for h in fuse([hit("a")], [hit("b")], 1)] == ["a"]
    assert [h.memory_id for h in fuse([hit("a")], [hit("b")], 2, keyword_weight=0.4)] == ["b", "a"]
    assert [h.memory_id for h in fuse([hit("z")], [hit("y")], 2, keyword_weight=0.5)] == ["y", "z"]
    assert [h.memory_id for h in fuse([hit("a")], [], 5, keyword_weight=1.0)] == ["a"]
    assert fuse([], [], 5) == []
    with pytest.raises(QueryError, match="keyword_weight"):
        fuse([], [], 5, keyword_weight=2.0)


def test_context_expansion_brings_the_turns_around_a_hit(store: Store) -> None:
    """A turn ``temporal``-ly linked to a hit gains a share of its score: with
    expansion the answer after the question ranks; without it, it is not found."""
    store.commit(
        persona(),
        memory("q", content="Where did you buy the violin?"),
        memory("a", content="At a small shop in Lyon."),
        memory("other", content="The violin lesson was long."),
        memory("far", content="Nothing to do with it."),
        memory("gone", content="Deleted neighbour."),
        MemoryLinked(persona_id="p1", source_id="q", target_id="a", kind="temporal"),
        MemoryLinked(persona_id="p1", source_id="q", target_id="gone", kind="temporal"),
        MemoryLinked(persona_id="p1", source_id="other", target_id="far", kind="related"),
        MemoryDeleted(memory_id="gone", persona_id="p1"),
    )
    where = SearchFilter(persona_id="p1")
    plain = search(store, "violin buy", where, limit=5)
    assert [h.memory_id for h in plain] == ["q", "other"]
    expanded = search(store, "violin buy", where, limit=5, tuning=Tuning(neighbour_weight=0.5))
    assert [h.memory_id for h in expanded] == ["q", "a", "other"]  # not "far", not "gone"
    assert expanded[1].sources == ("context",)
    assert expanded[1].score == 0.5  # half of the best hit's normalised 1.0
    assert [h.memory_id for h in search(store, "violin buy", where, limit=1,
            tuning=Tuning(neighbour_weight=0.5))] == ["q"]  # fmt: skip
    with pytest.raises(QueryError, match="neighbour_weight must be between 0 and 1"):
        Tuning(neighbour_weight=2.0)


def test_context_expansion_of_more_hits_than_sql_takes_parameters(store: Store) -> None:
    # Each hit's id is a parameter of the links query (twice): SQLite takes 32,766.
    count = 16_400
    store.commit(persona(), *[memory(f"m{i:05}", content="violin") for i in range(count)])
    store.commit(
        MemoryLinked(persona_id="p1", source_id="m00000", target_id="m00001", kind="temporal")
    )
    tuning = Tuning(neighbour_weight=0.5)
    found = search(store, "violin", SearchFilter(persona_id="p1"), limit=count, tuning=tuning)
    assert len(found) == count
    assert found[0].memory_id in {"m00000", "m00001"}  # each lifted by the other


@pytest.mark.parametrize("method", ["keyword", "semantic", "hybrid"])
def test_text_that_is_not_unicode_is_refused_by_every_method(garden: Store, method: Any) -> None:
    with pytest.raises(QueryError, match="lone surrogate at position 3"):
        search(garden, "tea\ud800", SearchFilter(persona_id="p1"), method=method)
