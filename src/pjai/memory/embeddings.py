"""Semantic search: memory vectors, k-nearest neighbours.

Vectors come from the model :func:`~pjai.memory.encoders.chosen_model` names (by
default all-MiniLM-L6-v2 as int8 ONNX, installed with PJai; see
:mod:`pjai.memory.encoders`). Vectors are derived data, like the full-text index:
kept in ``vectors.db`` beside the store, keyed by memory id, the model and a digest of the
text they were computed from, and recomputed when the text or the model changes.
Nothing is encoded on the commit path: :meth:`Embeddings.index` catches up (a
background :class:`~pjai.memory.indexer.VectorIndexer` in a long-running process, or
the search itself in a one-shot command). A search compares the query with every
vector of the persona (NumPy, exact): the persona's vectors are read once and kept in
memory until the file changes.

Loading the model takes a moment, so it is loaded only when a text has to be encoded
(a query, a new or changed memory), and once per process: :func:`load_encoder` keeps
the loaded model for every later :class:`Embeddings`. Keyword search never opens the
vectors at all.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import apsw
import msgspec
from sqlalchemy import select

from pjai.memory.backend import Backend
from pjai.memory.encoders import (
    EmbeddingModel,
    EmbeddingsUnavailable,
    Encoder,
    chosen_model,
    load_encoder,
)
from pjai.memory.forgetting import Forgotten, forget_persona, forget_personas_but
from pjai.memory.hits import HIT_COLUMNS, SearchHit
from pjai.memory.vector_status import (
    VectorStatus,
    indexed_text,
    live_memories,
    text_digest,
    vector_status,
)
from pjai.schema.expressions import in_parts
from pjai.schema.selection import MemoryFilter, memory_conditions
from pjai.schema.tables import memories
from pjai.schema.types import Progress

if TYPE_CHECKING:
    from pjai.memory.search import SearchFilter

__all__ = [
    "Embeddings",
    "EmbeddingsUnavailable",
    "Encoder",
    "Forgotten",
    "LazyEncoder",
    "VectorStatus",
    "forget_persona",
    "forget_personas_but",
    "load_encoder",
    "top",
    "vector_status",
]

VECTORS_FILE = "vectors.db"
_DIGESTS_PER_QUERY = 500
_MATRICES_KEPT = 8
"""Personas whose vectors a connection keeps in memory for searching."""


class LazyEncoder:
    """An encoder that loads the real one (``load()``) on its first :meth:`encode`."""

    def __init__(self, load: Callable[[], Encoder] = load_encoder) -> None:
        self._load = load
        self._encoder: Encoder | None = None

    @property
    def loaded(self) -> bool:
        """Whether the real encoder was loaded."""
        return self._encoder is not None

    def encode(self, texts: Sequence[str]) -> Any:
        """Vectors of ``texts``, loading the real encoder first if needed."""
        if self._encoder is None:
            self._encoder = self._load()
        return self._encoder.encode(texts)


def _still_live(backend: Backend, chunk: list[tuple[Any, str]]) -> list[tuple[Any, str]]:
    """The rows of ``chunk`` whose memory is still live: one deleted, or whose persona
    was erased, while the run encoded earlier chunks gets no vector."""
    ids = [row.id for row, _ in chunk]
    alive = select(memories.c.id).where(memories.c.id.in_(ids), *memory_conditions(MemoryFilter()))
    live = {r.id for r in backend.query(alive)}
    return [(row, digest) for row, digest in chunk if row.id in live]


class Embeddings:
    """Memory vectors in ``path`` (SQLite), computed by ``encoder`` and recorded as the
    ``model``'s."""

    def __init__(self, path: Path | str, encoder: Encoder, model: str) -> None:
        import numpy

        self._np = numpy
        self.encoder = encoder
        self.model = model
        self._db = apsw.Connection(str(path))
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute("PRAGMA journal_mode=WAL")
        # A vector dropped (a deleted memory, an erased persona) is overwritten, not
        # left readable in a free page.
        self._db.execute("PRAGMA secure_delete=ON")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS vectors (memory_id TEXT PRIMARY KEY, "
            "persona_id TEXT NOT NULL, model TEXT NOT NULL, digest TEXT NOT NULL, "
            "vector BLOB NOT NULL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS vectors_persona ON vectors (persona_id)")
        self._db.execute("CREATE INDEX IF NOT EXISTS vectors_digest ON vectors (model, digest)")
        self._only_model = False
        """Whether vectors of other models were dropped (once per connection)."""
        self._matrices: OrderedDict[str | None, tuple[tuple[int, int], list[str], Any]] = (
            OrderedDict()
        )
        self.engine = "numpy"

    @classmethod
    def open(
        cls, data_dir: Path, encoder: Encoder | None = None, model: EmbeddingModel | None = None
    ) -> Embeddings:
        """The data directory's vectors, with ``model`` (the chosen one by default) or,
        given, ``encoder`` (whose vectors are recorded as ``model``'s or ``custom``).

        The model is loaded when something must be encoded, not here; that it can be
        used is checked here, without importing it
        (:class:`~pjai.memory.encoders.EmbeddingsUnavailable` if not).
        """
        if encoder is not None:
            return cls(data_dir / VECTORS_FILE, encoder, model.id if model else "custom")
        model = model or chosen_model()
        reason = model.missing()
        if reason:
            raise EmbeddingsUnavailable(reason)
        chosen = model
        return cls(data_dir / VECTORS_FILE, LazyEncoder(lambda: load_encoder(chosen)), model.id)

    def close(self) -> None:
        """Close the vector database."""
        self._db.close()

    def _known(self, persona_id: str | None) -> dict[str, str]:
        return dict(
            self._db.execute(
                "SELECT memory_id, digest FROM vectors "
                "WHERE model = ? AND (? IS NULL OR persona_id = ?)",
                (self.model, persona_id, persona_id),
            )
        )

    def index(
        self,
        backend: Backend,
        persona_id: str | None = None,
        progress: Progress | None = None,
        *,
        stop: Callable[[], bool] | None = None,
    ) -> int:
        """Compute vectors for live memories that have none or whose text changed;
        returns how many were brought up to date.

        Vectors of memories that are no longer live (deleted), and of another model,
        are dropped. A text that already has a vector (a copy of another memory's)
        takes that vector instead of being encoded again. ``stop`` is asked between
        chunks of 256: when it says so, the run ends there (what it did stays).
        """
        known = self._known(persona_id)
        rows = live_memories(backend, persona_id)
        gone = known.keys() - {row.id for row in rows}
        dropped = self._db.total_changes()
        with self._db:
            if not self._only_model:
                self._db.execute("DELETE FROM vectors WHERE model != ?", (self.model,))
                self._only_model = True
            self._db.executemany("DELETE FROM vectors WHERE memory_id = ?", [(m,) for m in gone])
        if self._db.total_changes() > dropped:
            # Nothing of them in the log either (busy readers: the next run tries again).
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        todo = [(row, text_digest(indexed_text(row))) for row in rows]
        todo = [(row, digest) for row, digest in todo if known.get(row.id) != digest]
        for start in range(0, len(todo), 256):
            if stop is not None and stop():
                return start
            chunk = _still_live(backend, todo[start : start + 256])
            vectors = self._vectors_of(chunk)
            with self._db:
                self._db.executemany(
                    "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?, ?)",
                    [
                        (row.id, row.persona_id, self.model, digest, vectors[digest])
                        for row, digest in chunk
                    ],
                )
            if progress is not None:
                progress(start + len(chunk), len(todo))
        return len(todo)

    def _vectors_of(self, chunk: list[tuple[Any, str]]) -> dict[str, bytes]:
        """Each digest's vector: found in the file, or encoded (each text once)."""
        digests = sorted({digest for _, digest in chunk})
        found: dict[str, bytes] = {}
        for part in in_parts(digests, _DIGESTS_PER_QUERY):
            marks = ",".join("?" * len(part))
            found.update(
                (str(d), bytes(v))
                for d, v in self._db.execute(
                    f"SELECT digest, vector FROM vectors WHERE model = ? AND digest IN ({marks})",
                    (self.model, *part),
                )
            )
        texts = {digest: indexed_text(row) for row, digest in chunk if digest not in found}
        if texts:
            encoded = self._np.asarray(self.encoder.encode(list(texts.values())), dtype="float32")
            found.update(
                (digest, vector.tobytes()) for digest, vector in zip(texts, encoded, strict=True)
            )
        return found

    def nearest(self, text: str, persona_id: str | None, k: int) -> list[tuple[str, float]]:
        """The ``k`` memory ids closest to ``text`` (cosine similarity), best first."""
        return self._nearest(self.vector(text), persona_id, k)

    def vector(self, text: str) -> Any:
        """The vector of ``text`` (a query)."""
        return self._np.asarray(self.encoder.encode([text]), dtype="float32")[0]

    def _matrix(self, persona_id: str | None) -> tuple[list[str], Any]:
        """The ids (in order) and vectors (rows) of a persona's memories, or of all,
        read once and kept until the file changes (a write here or by any other
        connection)."""
        # data_version counts the other connections' commits, total_changes this one's rows.
        version = (int(self._db.execute("PRAGMA data_version").get), self._db.total_changes())
        cached = self._matrices.get(persona_id)
        if cached is not None and cached[0] == version:
            self._matrices.move_to_end(persona_id)
            return cached[1], cached[2]
        rows: list[Any] = self._db.execute(
            "SELECT memory_id, vector FROM vectors "
            "WHERE model = ? AND (? IS NULL OR persona_id = ?) ORDER BY memory_id",
            (self.model, persona_id, persona_id),
        ).fetchall()
        ids = [str(r[0]) for r in rows]
        blob = b"".join(bytes(r[1]) for r in rows)
        matrix = self._np.frombuffer(blob, dtype="float32").reshape(len(rows), -1 if rows else 0)
        self._matrices[persona_id] = (version, ids, matrix)
        while len(self._matrices) > _MATRICES_KEPT:
            self._matrices.popitem(last=False)
        return ids, matrix

    def _nearest(self, query: Any, persona_id: str | None, k: int) -> list[tuple[str, float]]:
        ids, matrix = self._matrix(persona_id)
        if not ids:
            return []
        np = self._np
        similarity = matrix @ query
        everything = k >= len(ids)
        best = np.arange(len(ids)) if everything else np.argpartition(-similarity, k - 1)[:k]
        # Best first; ties go by memory id (rows are in id order).
        top = sorted(best.tolist(), key=lambda i: (-similarity[i], i))
        return [(ids[i], float(similarity[i])) for i in top]

    def similar_pairs(
        self, backend: Backend, persona_id: str, *, threshold: float, per_memory: int
    ) -> list[tuple[str, str, float]]:
        """Pairs of a persona's live memories at least ``threshold`` alike (cosine).

        Each memory keeps its ``per_memory`` most similar partners; a pair appears once,
        smaller id first. Vectors are brought up to date first.
        """
        self.index(backend, persona_id)
        alive = select(memories.c.id).where(*memory_conditions(MemoryFilter(persona_id=persona_id)))
        live = {r.id for r in backend.query(alive)}
        rows: list[Any] = [
            r
            for r in self._db.execute(
                "SELECT memory_id, vector FROM vectors WHERE model = ? AND persona_id = ? "
                "ORDER BY memory_id",
                (self.model, persona_id),
            ).fetchall()
            if r[0] in live
        ]
        if len(rows) < 2:
            return []
        np = self._np
        ids = [str(r[0]) for r in rows]
        matrix = np.frombuffer(b"".join(bytes(r[1]) for r in rows), dtype="float32")
        matrix = matrix.reshape(len(rows), -1)
        keep = min(per_memory, len(ids) - 1)
        pairs: dict[tuple[str, str], float] = {}
        for start in range(0, len(ids), 1024):
            block = matrix[start : start + 1024] @ matrix.T
            for offset, scores in enumerate(block):
                row = start + offset
                scores[row] = -2.0  # not itself
                best = top(np, scores, keep)
                for other in best:
                    value = float(scores[other])
                    if value < threshold:
                        break
                    a, b = sorted((ids[row], ids[int(other)]))
                    pairs[(a, b)] = value
        return [(a, b, value) for (a, b), value in sorted(pairs.items())]

    def search(
        self, backend: Backend, text: str, where: SearchFilter, limit: int
    ) -> list[SearchHit]:
        """Semantic search with the filters of ``where``. Deleted memories are never
        found, even with ``include_deleted``: deleting a memory drops its vector (the
        next :meth:`index` run), and one not dropped yet is left out alike."""
        where = msgspec.structs.replace(where, include_deleted=False)
        # Filters apply after the nearest vectors are found: widen the search until
        # ``limit`` of them pass or every vector of the persona has been looked at.
        query = self.vector(text)
        k = max(limit * 2, 20)
        while True:
            candidates = self._nearest(query, where.persona_id, k)
            rows = []
            for chunk in in_parts(candidates):
                rows.extend(self._passing(backend, chunk, where))
            if len(rows) >= limit or len(candidates) < k:
                break
            k *= 4
        similarity = dict(candidates)
        hits = [SearchHit.from_row(r, similarity[r.id], "semantic") for r in rows]
        hits.sort(key=lambda h: (-h.score, h.memory_id))
        return hits[:limit]

    @staticmethod
    def _passing(
        backend: Backend, candidates: list[tuple[str, float]], where: SearchFilter
    ) -> list[Any]:
        """The rows of the candidates that ``where`` lets through."""
        if not candidates:
            return []
        query = select(*HIT_COLUMNS).where(
            memories.c.id.in_([memory_id for memory_id, _ in candidates]), *memory_conditions(where)
        )
        return backend.query(query)


def top(np: Any, scores: Any, keep: int) -> Any:
    """The indices of the ``keep`` highest ``scores``, highest first, ties to the lower
    index (as a stable sort of the whole row gives), without sorting the whole row."""
    if keep <= 0:
        return np.empty(0, dtype=np.intp)
    kth = np.partition(scores, len(scores) - keep)[len(scores) - keep]
    near = np.flatnonzero(scores >= kth)
    return near[np.argsort(-scores[near], kind="stable")][:keep]
