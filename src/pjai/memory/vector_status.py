"""Whether the memory vectors are up to date, and how far behind the memories they are.

A vector is of a memory's text (its name, content and summary) and is recorded with a
digest of that text: one whose digest is not that of the memory's text now is out of
date, and :meth:`~pjai.memory.embeddings.Embeddings.index` computes it again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw
from sqlalchemy import select

from pjai.memory.backend import Backend
from pjai.schema.selection import MemoryFilter, memory_conditions
from pjai.schema.tables import memories

__all__ = ["VectorStatus", "vector_status"]


def live_memories(backend: Backend, persona_id: str | None) -> list[Any]:
    """The id, persona and text of live memories (of ``persona_id``, or all)."""
    c = memories.c
    query = select(c.id, c.persona_id, c.name, c.content, c.summary).where(
        *memory_conditions(MemoryFilter(persona_id=persona_id))
    )
    return backend.query(query)


def indexed_text(row: Any) -> str:
    """The text of a memory's vector: its name, content and summary (``row``'s)."""
    return " ".join(part for part in (row.name, row.content, row.summary) if part)


def text_digest(text: str) -> str:
    """The digest a vector is recorded with, of the :func:`indexed_text` it is of."""
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


@dataclass(frozen=True, slots=True)
class VectorStatus:
    """How far the vectors are behind the memories (``pjai doctor`` shows it)."""

    model: str
    memories: int
    """Live memories."""
    current: int
    """Of them, those whose vector is up to date."""
    stale: int
    """Vectors of other models, or of memories no longer live, left to drop (an
    outdated vector of a live memory counts as waiting, not here)."""

    @property
    def waiting(self) -> int:
        """Live memories without an up-to-date vector."""
        return self.memories - self.current

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "memories": self.memories,
            "current": self.current,
            "waiting": self.waiting,
            "stale": self.stale,
        }


def vector_status(path: Path, backend: Backend, model: str) -> VectorStatus:
    """How far the vectors in the file at ``path`` (if there is one) are behind
    ``backend``'s live memories for ``model``; loads no model and writes nothing."""
    rows = live_memories(backend, None)
    known: dict[str, str] = {}
    total = 0
    if path.exists():
        db = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
        try:
            if db.execute("SELECT 1 FROM sqlite_schema WHERE name = 'vectors'").fetchone():
                known = dict(
                    db.execute("SELECT memory_id, digest FROM vectors WHERE model = ?", (model,))
                )
                total = int(db.execute("SELECT count(*) FROM vectors").get)
        finally:
            db.close()
    current = sum(known.get(row.id) == text_digest(indexed_text(row)) for row in rows)
    kept = sum(row.id in known for row in rows)  # this model's, of a live memory
    return VectorStatus(model, len(rows), current, total - kept)
