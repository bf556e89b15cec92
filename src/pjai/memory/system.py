"""The memory system's commands over a data layer, as the CLI and the web UI use them.

Each command builds events and commits them, or reads. Commands that add or change
memories then check the persona's limits and, for personas with ``auto_optimize`` on,
run the optimizer when a tier is over capacity, the persona is over ``max_memories`` or
a memory is past the retention period. One optimizer run per persona at a time.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from pjai.errors import QueryError
from pjai.memory import graph, optimizer
from pjai.memory.backend import Backend
from pjai.memory.optimizer import OptimizationReport
from pjai.schema import (
    Event,
    MemoryAccessed,
    MemoryAdded,
    MemoryDeleted,
    MemoryLinked,
    MemoryRestored,
    MemoryTierChanged,
    MemoryUnlinked,
    MemoryUpdated,
    new_id,
)
from pjai.schema.fields import Tier
from pjai.schema.links import LinkKind
from pjai.schema.models import Memory, memory_from_row
from pjai.schema.types import from_iso, utc_now
from pjai.store.live import LiveQuery
from pjai.store.query import Params, Query, Row

__all__ = ["MemorySystem"]

_LIMITS = """
SELECT p.memory_auto_optimize AS auto, p.memory_max_memories AS max_memories,
       p.memory_retention_days AS retention_days,
       p.memory_capacity_hot AS cap_hot, p.memory_capacity_warm AS cap_warm,
       p.memory_capacity_cold AS cap_cold,
       sum(CASE WHEN m.tier = 'hot' THEN 1 ELSE 0 END) AS hot,
       sum(CASE WHEN m.tier = 'warm' THEN 1 ELSE 0 END) AS warm,
       sum(CASE WHEN m.tier = 'cold' THEN 1 ELSE 0 END) AS cold,
       count(m.id) AS total,
       -- archived memories were dealt with: retention archives a memory only once
       min(CASE WHEN m.archived_at IS NULL THEN m.created_at END) AS oldest
FROM personas AS p LEFT JOIN memories AS m ON m.persona_id = p.id AND m.deleted_at IS NULL
WHERE p.id = :persona AND p.deleted_at IS NULL
GROUP BY p.id
"""


class MemorySystem:
    """Memory commands on ``backend`` (a store or the hybrid manager)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    # -- the data layer, so that library functions given a MemorySystem optimize too --

    def query(self, query: Query, params: Params = None) -> list[Row]:
        """A read on the backend."""
        return self.backend.query(query, params)

    def live(self, query: Query, params: Params = None) -> LiveQuery:
        """A live query on the backend."""
        return self.backend.live(query, params)

    # -- memories -----------------------------------------------------------------

    def add(self, persona_id: str, content: str, **fields: Any) -> Memory:
        """Record a memory (``fields`` as in ``v1.MemoryAdded``); returns it."""
        memory_id = fields.pop("memory_id", None) or new_id()
        self.commit(
            MemoryAdded(memory_id=memory_id, persona_id=persona_id, content=content, **fields)
        )
        found = self.get(memory_id)
        assert found is not None
        return found

    def update(self, persona_id: str, memory_id: str, **fields: Any) -> None:
        """Change some fields of a memory.

        A new importance re-ranks the persona's memories when it auto-optimizes; if the
        memory moves, its reason is ``importance_change``.
        """
        self.backend.commit(MemoryUpdated(memory_id=memory_id, persona_id=persona_id, **fields))
        if "importance" in fields and self._auto_optimizes(persona_id):
            self.optimize(persona_id, importance_changed={memory_id})
        elif self.over_limits(persona_id):
            self.optimize(persona_id)

    def delete(self, persona_id: str, memory_id: str) -> None:
        """Soft-delete a memory."""
        self.commit(MemoryDeleted(memory_id=memory_id, persona_id=persona_id))

    def restore(self, persona_id: str, memory_id: str) -> None:
        """Bring back a soft-deleted memory."""
        self.commit(MemoryRestored(memory_id=memory_id, persona_id=persona_id))

    def get(self, memory_id: str) -> Memory | None:
        """A memory, deleted or not, without counting it as opened."""
        rows = self.backend.query("SELECT * FROM memories WHERE id = :id", {"id": memory_id})
        return memory_from_row(rows[0]) if rows else None

    def open(self, memory_id: str) -> Memory:
        """A live memory, opened: records ``v1.MemoryAccessed``."""
        memory = self.get(memory_id)
        if memory is None or memory.deleted_at is not None:
            raise QueryError(f"no live memory {memory_id!r}")
        self.backend.commit(MemoryAccessed(memory_id=memory_id, persona_id=memory.persona_id))
        opened = self.get(memory_id)
        assert opened is not None
        return opened

    def move(self, memory_id: str, tier: Tier, **fields: Any) -> bool:
        """Move a memory to ``tier`` by hand (reason ``manual``), changing ``fields`` too.

        One commit; returns whether anything changed.
        """
        memory = self.get(memory_id)
        if memory is None or memory.deleted_at is not None:
            raise QueryError(f"no live memory {memory_id!r}")
        events: list[Event] = []
        if fields:
            events.append(
                MemoryUpdated(memory_id=memory_id, persona_id=memory.persona_id, **fields)
            )
        if tier != memory.tier:
            events.append(
                MemoryTierChanged(
                    memory_id=memory_id, persona_id=memory.persona_id, tier=tier, reason="manual"
                )
            )
        if events:
            self.commit(*events)
        return bool(events)

    def links_of(self, memory_id: str) -> list[Row]:
        """A memory's links, either direction, strongest first."""
        return self.backend.query(
            "SELECT source_id, target_id, kind, strength, confidence, decay_rate "
            "FROM memory_links WHERE source_id = :id OR target_id = :id "
            "ORDER BY strength DESC, source_id, target_id, kind",
            {"id": memory_id},
        )

    def link(self, persona_id: str, source_id: str, target_id: str, **fields: Any) -> None:
        """Link two memories (``fields`` as in ``v1.MemoryLinked``)."""
        self.commit(
            MemoryLinked(persona_id=persona_id, source_id=source_id, target_id=target_id, **fields)
        )

    def unlink(self, persona_id: str, source_id: str, target_id: str, kind: LinkKind) -> None:
        """Remove a link."""
        self.commit(
            MemoryUnlinked(
                persona_id=persona_id, source_id=source_id, target_id=target_id, kind=kind
            )
        )

    def auto_link(self, persona_id: str, **options: Any) -> int:
        """Link similar memories of a persona; returns how many links were made."""
        events = graph.auto_link(self.backend, persona_id, **options)
        if events:
            self.backend.commit(*events)
        return len(events)

    def decay_links(self, persona_id: str, days: float, *, min_strength: float = 0.05) -> int:
        """A decay run of ``days``; returns how many links were removed."""
        events = graph.decay_links(self.backend, persona_id, days, min_strength=min_strength)
        if events:
            self.backend.commit(*events)
        return sum(1 for e in events if isinstance(e, MemoryUnlinked))

    # -- optimization --------------------------------------------------------------

    def optimize(
        self,
        persona_id: str,
        *,
        now: datetime | None = None,
        importance_changed: Collection[str] = (),
    ) -> OptimizationReport:
        """Run the optimizer for one persona (waiting for a run already going)."""
        return optimizer.optimize(
            self.backend, persona_id, now=now, importance_changed=importance_changed
        )

    def _auto_optimizes(self, persona_id: str) -> bool:
        rows = self.backend.query(
            "SELECT memory_auto_optimize AS auto FROM personas "
            "WHERE id = :persona AND deleted_at IS NULL",
            {"persona": persona_id},
        )
        return bool(rows and rows[0].auto)

    def commit(self, *events: Event) -> list[Any]:
        """Commit events, then let auto-optimization look at the personas they touched."""
        records = self.backend.commit(*events)
        for persona_id in dict.fromkeys(getattr(e, "persona_id", None) for e in events):
            if persona_id is not None and self.over_limits(persona_id):
                self.optimize(persona_id)
        return records

    def over_limits(self, persona_id: str, *, now: datetime | None = None) -> bool:
        """Whether an auto-optimizing persona crossed a capacity, its size or retention."""
        rows = self.backend.query(_LIMITS, {"persona": persona_id})
        if not rows or not rows[0].auto:
            return False
        r = rows[0]
        if (r.hot or 0) > r.cap_hot or (r.warm or 0) > r.cap_warm or (r.cold or 0) > r.cap_cold:
            return True
        if r.total > r.max_memories:
            return True
        if r.retention_days and r.oldest is not None:
            oldest = from_iso(r.oldest) if isinstance(r.oldest, str) else r.oldest
            cutoff = (now or utc_now()) - timedelta(days=r.retention_days)
            return bool(oldest < cutoff)
        return False
