"""A memory found by a search, and the columns of ``memories`` it is read from.

Keyword search (:mod:`pjai.memory.search`) and semantic search
(:mod:`pjai.memory.embeddings`) both select :data:`HIT_COLUMNS` and make their hits
with :meth:`SearchHit.from_row`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pjai.schema.tables import memories
from pjai.schema.types import as_datetime

__all__ = ["HIT_COLUMNS", "SearchHit"]

HIT_COLUMNS = (
    memories.c.id,
    memories.c.persona_id,
    memories.c.name,
    memories.c.content,
    memories.c.tier,
    memories.c.occurred_at,
)
"""What a search reads of each memory it finds."""


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One memory found: its id, persona, name, content and score (higher is better)."""

    memory_id: str
    persona_id: str
    name: str
    content: str
    tier: str
    occurred_at: datetime
    score: float
    sources: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_row(cls, row: Any, score: float, source: str) -> SearchHit:
        """The hit for a row read with :data:`HIT_COLUMNS`, found by ``source``."""
        occurred_at = as_datetime(row.occurred_at)  # some reads return it as ISO text
        return cls(
            row.id, row.persona_id, row.name, row.content, row.tier, occurred_at, score, (source,)
        )
