"""The background indexer: vectors catch up after commits, off the commit path."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pjai.memory.embeddings import Embeddings, vector_status
from pjai.memory.indexer import VectorIndexer
from pjai.store import Store
from tests.helpers import memory, persona
from tests.memory.test_embeddings import TopicEncoder


class Flaky(TopicEncoder):
    """Fails while ``broken`` is set."""

    broken = False

    def encode(self, texts: Sequence[str]) -> Any:
        if self.broken:
            raise RuntimeError("the model fell over")
        return super().encode(texts)


def head(store: Store) -> object:
    return store.head.global_seq


def test_vectors_catch_up_after_each_commit(tmp_path: Path, store: Store) -> None:
    encoder = TopicEncoder()
    path = tmp_path / "vectors.db"
    with VectorIndexer(
        lambda: Embeddings(path, encoder, "topics"), store, lambda: head(store), interval_s=0.01
    ) as indexer:
        store.commit(persona(), memory("cat", content="the kitten would purr"))
        assert indexer.wait_caught_up(10)
        assert vector_status(path, store, "topics").waiting == 0
        store.commit(memory("dog", content="the puppy would bark"))
        assert indexer.wait_caught_up(10)
        assert vector_status(path, store, "topics").current == 2
        assert indexer.state.indexed == 2
        assert indexer.state.running
    assert not indexer.state.running
    assert encoder.texts == ["the kitten would purr", "the puppy would bark"]  # each once


def test_a_failed_run_is_shown_and_the_next_commit_tries_again(
    tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    encoder = Flaky()
    encoder.broken = True
    path = tmp_path / "vectors.db"
    with VectorIndexer(
        lambda: Embeddings(path, encoder, "topics"), store, lambda: head(store), interval_s=0.01
    ) as indexer:
        store.commit(persona(), memory("cat", content="the kitten would purr"))
        started = time.monotonic()
        assert not indexer.wait_caught_up(30)  # the run failed: no use waiting for it
        assert time.monotonic() - started < 10
        assert indexer.state.error == "RuntimeError: the model fell over"
        assert "indexing memory vectors failed" in caplog.text
        assert vector_status(path, store, "topics").waiting == 1
        encoder.broken = False
        store.commit(memory("dog", content="the puppy would bark"))
        assert indexer.wait_caught_up(10)
        assert indexer.state.error is None
        assert vector_status(path, store, "topics").waiting == 0


def test_status_without_a_vector_file_creates_none(tmp_path: Path, store: Store) -> None:
    store.commit(persona(), memory("cat", content="the kitten would purr"))
    status = vector_status(tmp_path / "vectors.db", store, "topics")
    assert (status.memories, status.current, status.waiting, status.stale) == (1, 0, 1, 0)
    assert not (tmp_path / "vectors.db").exists()
