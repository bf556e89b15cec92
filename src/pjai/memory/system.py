"""The memory system's commands over a data layer, as the CLI and the web UI use them.

Each command builds events and commits them, or reads. Commands that add or change
memories then check the persona's limits and, for personas with ``auto_optimize`` on,
run the optimizer when a tier is over capacity, the persona is over ``max_memories`` or
a memory is past the retention period. One optimizer run per persona at a time;
:meth:`MemorySystem.optimizations` collects the reports of the runs a command caused,
so that an interface can say which memories moved and why.

A tier the caller chooses (``add(..., tier=...)``, :meth:`MemorySystem.move`) pins the
memory there: the optimizer leaves it until it is moved or unpinned by hand
(``update(..., pinned=False)``) or archived by retention.

When a run is due is read from the persona's limits (:mod:`pjai.memory.limits`); a
restore or move that the run would undo at once is refused (:mod:`pjai.memory.refusals`).

    memory = MemorySystem(manager)
    memory.add("ada", "Likes green tea", importance=0.8)
    memory.search("tea", persona_id="ada")       # [SearchHit(...)], best first
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import case, or_, select

from pjai.errors import NotFoundError, PjaiError
from pjai.memory import graph, limits, optimizer
from pjai.memory.backend import Backend
from pjai.memory.classify import restricted_tags
from pjai.memory.conversations import Ingested, conversation, ingest_conversation
from pjai.memory.embeddings import Embeddings
from pjai.memory.hits import SearchHit
from pjai.memory.lookup import require_persona
from pjai.memory.optimizer import OptimizationReport
from pjai.memory.refusals import check_move_stays, check_restore_stays
from pjai.memory.search import Method, search
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
from pjai.schema.fields import LinkKind, Tier
from pjai.schema.models import Memory, memory_from_row
from pjai.schema.selection import MemoryFilter
from pjai.schema.tables import memories, memory_links, personas
from pjai.schema.types import utc_now
from pjai.sql.repositories import MemoryOrder, memories_query
from pjai.store.live import LiveQuery
from pjai.store.query import Params, Query, Row

__all__ = ["MemorySystem"]


log = logging.getLogger(__name__)


class MemorySystem:
    """Memory commands on ``backend`` (a store or the hybrid manager)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._local = threading.local()

    # -- the data layer, so that library functions given a MemorySystem optimize too --

    def query(self, query: Query, params: Params = None) -> list[Row]:
        """A read on the backend."""
        return self.backend.query(query, params)

    def live(self, query: Query, params: Params = None) -> LiveQuery:
        """A live query on the backend."""
        return self.backend.live(query, params)

    # -- memories -----------------------------------------------------------------

    def add(
        self, persona_id: str, content: str, *, free_space: bool = True, **fields: Any
    ) -> Memory:
        """Record a memory (``fields`` as in ``v1.MemoryAdded``); returns it.

        A ``tier`` given pins the memory there unless ``pinned=False`` is given too. Text
        holding restricted data (:mod:`pjai.memory.classify`) tags it ``restricted``.
        ``free_space=False``: the optimizer run the add starts deletes nothing to bring
        the persona back within ``max_memories`` (a plugin's add makes no room).
        """
        memory_id = fields.pop("memory_id", None) or new_id()
        if fields.get("tier") is None:
            fields.pop("tier", None)
        fields.setdefault("pinned", "tier" in fields)
        texts = (content, fields.get("name", ""), fields.get("summary", ""))
        fields["tags"] = restricted_tags(list(fields.get("tags") or []), *texts)
        self.commit(
            MemoryAdded(memory_id=memory_id, persona_id=persona_id, content=content, **fields),
            free_space=free_space,
        )
        found = self.get(memory_id)
        assert found is not None
        return found

    def update(self, persona_id: str, memory_id: str, **fields: Any) -> None:
        """Change some fields of a memory (``pinned`` too: ``False`` unpins it).

        A new importance re-ranks the persona's memories when it auto-optimizes; if the
        memory moves, its reason is ``importance_change``. Pinned memories stay put. New
        text holding restricted data (:mod:`pjai.memory.classify`) tags it ``restricted``.
        """
        texts = ("content", "name", "summary")
        retagged = "tags" in fields or any(isinstance(fields.get(f), str) for f in texts)
        if retagged:
            # New tags or new text: the memory as it will be is classified again, so
            # that tags given by hand do not drop ``restricted`` from text that holds it.
            found = self.get(memory_id)
            current = fields.get("tags")
            if not isinstance(current, list):
                current = list(found.tags) if found is not None else []
            text = [
                fields[f] if isinstance(fields.get(f), str) else getattr(found, f, "") or ""
                for f in texts
            ]
            tagged = restricted_tags(list(current), *text)
            if tagged != current or "tags" in fields:
                fields["tags"] = tagged
        self.backend.commit(MemoryUpdated(memory_id=memory_id, persona_id=persona_id, **fields))
        if "importance" in fields and self._auto_optimizes(persona_id):
            self.optimize(persona_id, importance_changed={memory_id})
            return
        # As after any commit: a limit crossed, a rule due since the last change, or a
        # memory that the new text made restricted, and due.
        self._look_after(persona_id)

    def delete(self, persona_id: str, memory_id: str) -> None:
        """Soft-delete a memory."""
        self.commit(MemoryDeleted(memory_id=memory_id, persona_id=persona_id))

    def restore(self, persona_id: str, memory_id: str) -> None:
        """Bring back a soft-deleted memory. Refused, saying why, when a privacy rule or
        the persona's retention would delete it again at once (the optimizer run of its
        own commit), or when the persona holds ``max_memories`` and that run would delete
        a memory for space: :class:`~pjai.errors.PrivacyError` or
        :class:`~pjai.errors.ConfigError`."""
        memory = self.get(memory_id)
        if memory is not None and memory.persona_id == persona_id:
            check_restore_stays(self.backend, memory)
        self.commit(MemoryRestored(memory_id=memory_id, persona_id=persona_id))

    def get(self, memory_id: str) -> Memory | None:
        """A memory, deleted or not, without counting it as opened."""
        rows = self.backend.query(select(memories).where(memories.c.id == memory_id))
        return memory_from_row(rows[0]) if rows else None

    def list_memories(
        self,
        where: MemoryFilter,
        *,
        order: MemoryOrder = "importance",
        descending: bool = True,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[Memory]:
        """Memories matching ``where`` as the backend holds them (on the store: with this
        instance's changes that the sync server has not confirmed yet), past the first
        ``offset``."""
        query = memories_query(
            where, order=order, descending=descending, limit=limit, offset=offset
        )
        return [memory_from_row(row) for row in self.backend.query(query)]

    def open(self, memory_id: str) -> Memory:
        """A live memory, opened: records ``v1.MemoryAccessed``."""
        memory = self.get(memory_id)
        if memory is None or memory.deleted_at is not None:
            raise NotFoundError(f"no live memory {memory_id!r}")
        self.backend.commit(MemoryAccessed(memory_id=memory_id, persona_id=memory.persona_id))
        opened = self.get(memory_id)
        assert opened is not None
        return opened

    def move(self, memory_id: str, tier: Tier, *, pinned: bool = True, **fields: Any) -> bool:
        """Move a memory to ``tier`` by hand (reason ``manual``) and pin it there (unless
        ``pinned=False``), changing ``fields`` too.

        One commit; returns whether anything changed (a memory already pinned in
        ``tier``, with no fields to change, changes nothing).
        """
        memory = self.get(memory_id)
        if memory is None or memory.deleted_at is not None:
            raise NotFoundError(f"no live memory {memory_id!r}")
        check_move_stays(self.backend, memory, tier)
        events: list[Event] = []
        if fields:
            events.append(
                MemoryUpdated(memory_id=memory_id, persona_id=memory.persona_id, **fields)
            )
        if tier != memory.tier or pinned != memory.pinned:
            events.append(
                MemoryTierChanged(
                    memory_id=memory_id,
                    persona_id=memory.persona_id,
                    tier=tier,
                    reason="manual",
                    pinned=pinned,
                )
            )
        if events:
            self.commit(*events)
        return bool(events)

    def search(
        self,
        text: str,
        persona_id: str | None = None,
        *,
        where: MemoryFilter | None = None,
        limit: int = 10,
        method: Method = "keyword",
        embeddings: Embeddings | None = None,
    ) -> list[SearchHit]:
        """The memories best matching ``text``, best first (of one persona, with
        ``persona_id``; ``where`` filters further). Searching opens nothing.

        Semantic and hybrid search need ``embeddings`` (:class:`Embeddings`).
        """
        where = where or MemoryFilter()
        if persona_id is not None:
            where = msgspec.structs.replace(where, persona_id=persona_id)
        if where.persona_id is not None:
            require_persona(self.backend, where.persona_id)
        return search(self.backend, text, where, limit=limit, method=method, embeddings=embeddings)

    def links_of(self, memory_id: str, *, to_deleted: bool = False) -> list[Row]:
        """A memory's links, either direction, strongest first; those to a deleted
        memory only with ``to_deleted`` (as :meth:`neighbours` leaves them out)."""
        link, m = memory_links.c, memories.c
        query = select(
            link.source_id,
            link.target_id,
            link.kind,
            link.strength,
            link.confidence,
            link.decay_rate,
        ).where(or_(link.source_id == memory_id, link.target_id == memory_id))
        if not to_deleted:
            other = case((link.source_id == memory_id, link.target_id), else_=link.source_id)
            live = select(m.id).where(m.id == other, m.deleted_at.is_(None)).exists()
            query = query.where(live)
        return self.backend.query(
            query.order_by(link.strength.desc(), link.source_id, link.target_id, link.kind)
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

    # -- conversations -------------------------------------------------------------

    def ingest(
        self, conversation_id: str, *, importance: float = 0.5, tier: Tier = "warm"
    ) -> Ingested:
        """Turn a conversation's messages into memories (:func:`ingest_conversation`),
        then let the optimizer look at its persona once, not after each batch: an
        auto-optimizing persona is ranked on the whole conversation, and no run moves or
        deletes a memory that the next batch links from. It looks after a failed ingest
        too, at the batches it kept."""
        persona_id = conversation(self.backend, conversation_id).persona_id
        try:
            done = ingest_conversation(
                self.backend, conversation_id, importance=importance, tier=tier
            )
        except Exception:
            try:
                self._look_after(persona_id)
            except PjaiError:
                log.exception("the optimizer run after a failed ingest of %r", conversation_id)
            raise
        self._look_after(persona_id)
        return done

    # -- optimization --------------------------------------------------------------

    def optimize(
        self,
        persona_id: str,
        *,
        now: datetime | None = None,
        importance_changed: Collection[str] = (),
        privacy_only: bool = False,
        free_space: bool = True,
    ) -> OptimizationReport:
        """Run the optimizer for one persona (waiting for a run already going);
        ``privacy_only`` applies the privacy rules alone; ``free_space=False`` deletes
        nothing for space."""
        report = optimizer.optimize(
            self.backend,
            persona_id,
            now=now,
            importance_changed=importance_changed,
            privacy_only=privacy_only,
            free_space=free_space,
        )
        for reports in self._collectors():
            reports.append(report)
        return report

    @contextmanager
    def optimizations(self) -> Iterator[list[OptimizationReport]]:
        """A list that collects the reports of the optimizer runs this thread makes
        through this memory system while the block runs, the automatic ones included.

        ``with system.optimizations() as runs: system.update(...)``, then
        ``runs[i].moves`` says which memories moved and why.
        """
        reports: list[OptimizationReport] = []
        collectors = self._collectors()
        collectors.append(reports)
        try:
            yield reports
        finally:
            collectors.remove(reports)

    def _collectors(self) -> list[list[OptimizationReport]]:
        collectors: list[list[OptimizationReport]] | None = getattr(self._local, "collectors", None)
        if collectors is None:
            collectors = self._local.collectors = []
        return collectors

    def _auto_optimizes(self, persona_id: str) -> bool:
        p = personas.c
        rows = self.backend.query(
            select(p.memory_auto_optimize.label("auto")).where(
                p.id == persona_id, p.deleted_at.is_(None)
            )
        )
        return bool(rows and rows[0].auto)

    def commit(self, *events: Event, free_space: bool = True) -> list[Any]:
        """Commit events, then let the optimizer look at the personas they touched: a
        full run for an auto-optimizing persona over its limits, the privacy rules for
        any persona one of them applies to (:mod:`pjai.memory.optimizer`).
        ``free_space=False``: the run deletes nothing for space, and being over
        ``max_memories`` alone starts none."""
        records = self.backend.commit(*events)
        for persona_id in dict.fromkeys(getattr(e, "persona_id", None) for e in events):
            if persona_id is not None:
                self._look_after(persona_id, free_space=free_space)
        return records

    def _look_after(self, persona_id: str, *, free_space: bool = True) -> None:
        """Run the optimizer for a persona a commit touched, if it needs a run."""
        rows, now = self.backend.query(limits.query(persona_id)), utc_now()
        if rows and limits.crossed(rows[0], now, free_space=free_space):
            self.optimize(persona_id, free_space=free_space)
        elif rows and limits.privacy_due(self.backend, persona_id, rows[0], now):
            self.optimize(persona_id, privacy_only=True)

    def over_limits(self, persona_id: str, *, now: datetime | None = None) -> bool:
        """Whether an auto-optimizing persona crossed a capacity, its size or retention."""
        rows = self.backend.query(limits.query(persona_id))
        return bool(rows) and limits.crossed(rows[0], now or utc_now())

    def room(self, persona_id: str) -> int:
        """How many memories the live persona may gain before it holds ``max_memories``
        live ones (``0`` when it holds that many or more, or is not there)."""
        rows = self.backend.query(limits.query(persona_id))
        return max(0, rows[0].max_memories - rows[0].total) if rows else 0

    def excess(self, persona_id: str) -> int:
        """How many live memories the live persona holds past its ``max_memories``
        (``0`` when within it, or not there)."""
        rows = self.backend.query(limits.query(persona_id))
        return max(0, rows[0].total - rows[0].max_memories) if rows else 0

    def privacy_due(self, persona_id: str, *, now: datetime | None = None) -> bool:
        """Whether a privacy rule would delete one of the persona's memories now."""
        rows = self.backend.query(limits.query(persona_id))
        return bool(rows) and limits.privacy_due(
            self.backend, persona_id, rows[0], now or utc_now()
        )
