"""Memory commands by memory id, as the interfaces offer them, over the memory system.

:class:`~pjai.memory.MemorySystem` is the memory service; :class:`Memories` adds what
an interface needs around it: finding a memory's persona from its id, the vectors of
the data directory for semantic search, one call for every persona, a
:class:`~pjai.errors.NotFoundError` for a persona or memory that does not exist, and
the moves of the optimizer runs a command caused.

Reading a memory (:meth:`Memories.get`, :meth:`Memories.show`) records nothing;
:meth:`Memories.open` records an access (``v1.MemoryAccessed``), which the score counts.
What the commands answer is defined in :mod:`pjai.app.memoryresults`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

import apsw

from pjai.app.datadir import DataDir
from pjai.app.memoryresults import AutoLinked, MemoryChange, MemoryStats, MemoryView
from pjai.errors import ConfigError, NotFoundError
from pjai.hybrid import HybridDatabaseManager
from pjai.memory import (
    Bucket,
    Embeddings,
    EmbeddingsUnavailable,
    Ingested,
    MemorySystem,
    Neighbour,
    OptimizationReport,
    SearchFilter,
    SearchHit,
    health,
    neighbours,
    search,
    timeline,
)
from pjai.memory.encoders import chosen_model
from pjai.memory.indexer import VectorIndexer
from pjai.memory.lookup import require_persona
from pjai.memory.optimizer import MemoryMove
from pjai.memory.search import Method
from pjai.schema.fields import Tier
from pjai.schema.links import LinkKind
from pjai.schema.models import Memory
from pjai.sql.repositories import MemoryFilter, MemoryOrder
from pjai.store import Progress, Row

__all__ = ["AutoLinked", "Memories", "MemoryChange", "MemoryStats", "MemoryView"]

LinkBy = Literal["auto", "vectors", "words"]

log = logging.getLogger(__name__)

CATCH_UP_WAIT_S = 5.0
"""How long a semantic search waits for the background indexer to reach the newest
memories; past it, the search runs on the vectors made so far."""


class Memories:
    """Memory commands on a data directory's manager."""

    def __init__(self, manager: HybridDatabaseManager) -> None:
        self.manager = manager
        self.system = MemorySystem(manager)
        self._embeddings: Embeddings | None = None
        self._vectors_lock = threading.RLock()
        self._close_when_done = False
        self._indexer: VectorIndexer | None = None

    def get(self, memory_id: str) -> Memory:
        """A memory, deleted or not, or :class:`~pjai.errors.NotFoundError`; records
        nothing."""
        memory = self.system.get(memory_id)
        if memory is None:
            raise NotFoundError(f"no memory {memory_id!r}")
        return memory

    def show(self, memory_id: str) -> MemoryView:
        """A live memory with its links; reading it records nothing (see :meth:`open`)."""
        memory = self.system.get(memory_id)
        if memory is None or memory.deleted_at is not None:
            raise NotFoundError(f"no live memory {memory_id!r}")
        return MemoryView(memory, self.system.links_of(memory_id))

    def open(self, memory_id: str) -> MemoryView:
        """Open a memory: records an access (``v1.MemoryAccessed``); with its links."""
        memory = self.system.open(memory_id)
        return MemoryView(memory, self.system.links_of(memory_id))

    def add(
        self,
        persona_id: str,
        content: str,
        *,
        tier: Tier | None = None,
        free_space: bool = True,
        **fields: Any,
    ) -> MemoryChange:
        """Record a memory (``fields`` as in ``v1.MemoryAdded``, ``memory_id`` too); a
        ``tier`` given pins it there; ``free_space=False``: the optimizer deletes nothing
        for space after it. The change lists the memories that moved."""
        with self.system.optimizations() as runs:
            memory = self.system.add(
                persona_id, content, tier=tier, free_space=free_space, **fields
            )
        return MemoryChange(self.get(memory.id), True, _moves(runs))

    def update(
        self,
        memory_id: str,
        *,
        tier: Tier | None = None,
        pinned: bool | None = None,
        **fields: Any,
    ) -> MemoryChange:
        """Change a memory's fields and, with ``tier``, move it there by hand and pin it
        (one commit); ``pinned=False`` lets the optimizer move it again, ``True`` keeps
        it in its tier. The change lists the memories that moved."""
        memory = self.get(memory_id)
        if pinned is not None and pinned != memory.pinned and tier is None:
            fields["pinned"] = pinned
        with self.system.optimizations() as runs:
            if tier is not None:
                changed = self.system.move(memory_id, tier, pinned=pinned is not False, **fields)
            elif fields:
                self.system.update(memory.persona_id, memory_id, **fields)  # may re-rank
                changed = True
            else:
                changed = False
        return MemoryChange(self.get(memory_id), changed, _moves(runs))

    def delete(self, memory_id: str) -> Memory:
        """Delete a memory (soft); returns it."""
        memory = self.get(memory_id)
        if memory.deleted_at is not None:
            raise NotFoundError(
                f"memory {memory_id} is deleted already (`pjai memory restore` brings it back)"
            )
        self.system.delete(memory.persona_id, memory_id)
        return self.get(memory_id)

    def restore(self, memory_id: str) -> Memory:
        """Bring back a deleted memory; returns it."""
        memory = self.get(memory_id)
        if memory.deleted_at is None:
            raise NotFoundError(f"memory {memory_id} is not deleted: there is nothing to restore")
        self.system.restore(memory.persona_id, memory_id)
        return self.get(memory_id)

    def link(self, source_id: str, target_id: str, kind: LinkKind, **fields: Any) -> Row:
        """Link two memories of one persona; returns the link."""
        persona_id = self.get(source_id).persona_id
        if any(
            (r.source_id, r.target_id, r.kind) == (source_id, target_id, kind)
            for r in self.system.links_of(source_id, to_deleted=True)
        ):
            raise ConfigError(
                f"memory {source_id} is linked to {target_id} ({kind}) already; "
                "`pjai memory unlink` removes the link"
            )
        self.system.link(persona_id, source_id, target_id, kind=kind, **fields)
        made = self.system.links_of(source_id, to_deleted=True)
        return next(
            r for r in made if (r.source_id, r.target_id, r.kind) == (source_id, target_id, kind)
        )

    def unlink(self, source_id: str, target_id: str, kind: LinkKind) -> None:
        """Remove a link."""
        self.system.unlink(self.get(source_id).persona_id, source_id, target_id, kind)

    def neighbours(
        self, memory_id: str, *, depth: int = 1, min_strength: float = 0.0
    ) -> list[Neighbour]:
        """Memories within ``depth`` links of a live memory (a deleted one connects
        nothing: :class:`~pjai.errors.NotFoundError`, as :meth:`show` says)."""
        if self.get(memory_id).deleted_at is not None:
            raise NotFoundError(f"no live memory {memory_id!r}")
        return neighbours(self.manager, memory_id, depth=depth, min_strength=min_strength)

    def auto_link(
        self,
        persona_id: str,
        *,
        by: LinkBy = "auto",
        threshold: float | None = None,
        per_memory: int = 3,
    ) -> AutoLinked:
        """Link a persona's memories that are alike: by vectors (``auto``: when installed)
        or by shared words."""
        require_persona(self.manager, persona_id)
        with self._vectors(required=by == "vectors", wanted=by != "words") as embeddings:
            made = self.system.auto_link(
                persona_id, threshold=threshold, per_memory=per_memory, embeddings=embeddings
            )
        return AutoLinked(made, "vectors" if embeddings is not None else "words")

    def decay_links(self, persona_id: str, days: float) -> int:
        """Weaken a persona's links by ``days`` of decay; how many fell too weak and went."""
        require_persona(self.manager, persona_id)
        return self.system.decay_links(persona_id, days)

    def search(
        self,
        text: str,
        where: SearchFilter,
        *,
        limit: int = 10,
        method: Method = "keyword",
        progress: Progress | None = None,
    ) -> list[SearchHit]:
        """Search memories, best first; semantic methods first index new memories
        (when this service runs a background indexer, the search waits up to
        :data:`CATCH_UP_WAIT_S` for it to catch up instead).

        Keyword search opens no vectors, so it never loads the model."""
        if where.persona_id is not None:
            require_persona(self.manager, where.persona_id)
        semantic = method != "keyword"
        indexer = self._indexer if semantic else None
        if indexer is not None and indexer.state.running:
            indexer.wait_caught_up(CATCH_UP_WAIT_S)  # before the vectors: others need not wait
        else:
            indexer = None
        with self._vectors(required=semantic, wanted=semantic) as vectors:
            if vectors is not None and indexer is None:
                vectors.index(self.manager, where.persona_id, progress)
            return search(self.manager, text, where, limit=limit, method=method, embeddings=vectors)

    def optimize(self, persona_id: str | None = None) -> list[OptimizationReport]:
        """Re-tier the memories of one persona, or of every persona."""
        if persona_id is not None:
            require_persona(self.manager, persona_id)
        ids = [persona_id] if persona_id else [p.id for p in self.manager.personas.list()]
        return [self.system.optimize(i) for i in ids]

    def stats(self, persona_id: str | None = None) -> MemoryStats:
        """Statistics and health of one persona's memories, or of all."""
        persona = None
        if persona_id is not None:
            require_persona(self.manager, persona_id)
            persona = self.manager.personas.get(persona_id)
            if persona is None:  # a synced persona the server has not confirmed yet
                raise NotFoundError(f"persona {persona_id!r} is not in the SQL primary yet")
        figures = self.manager.memories.statistics(MemoryFilter(persona_id=persona_id))
        return MemoryStats(figures, health(self.manager, persona))

    def timeline(
        self,
        persona_id: str,
        unit: Literal["hour", "day", "week", "month"] = "day",
        *,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[Bucket]:
        """Memories per hour, day, week or month, with importance statistics."""
        require_persona(self.manager, persona_id)
        return timeline(self.manager, persona_id, unit, start=start, end=end)

    def ingest(self, conversation_id: str, *, importance: float = 0.5) -> Ingested:
        """Turn a conversation's messages into memories (each once); ``moves`` lists the
        memories the optimizer moved after."""
        # Through the memory system, so that the new memories can trigger one
        # auto-optimization run, after the last batch.
        with self.system.optimizations() as runs:
            done = self.system.ingest(conversation_id, importance=importance)
        return replace(done, moves=tuple(_moves(runs)))

    # Last: below it, ``list`` would name this method in annotations.
    def list(
        self,
        where: MemoryFilter,
        *,
        order: MemoryOrder = "importance",
        limit: int = 50,
        offset: int = 0,
    ) -> list[Memory]:
        """A persona's memories, best first by ``order`` (past the first ``offset``), as
        the user sees them everywhere else: from the store when it is on (with this
        instance's changes the sync server has not confirmed yet, see :meth:`pending`),
        else from the SQL primary. :class:`~pjai.errors.NotFoundError` for a persona
        that does not exist."""
        if where.persona_id is not None:
            require_persona(self.manager, where.persona_id)
        if self.manager.store is None:
            return self.manager.memories.list(where, order=order, limit=limit, offset=offset)
        return self.system.list_memories(where, order=order, limit=limit, offset=offset)

    def pending(self) -> frozenset[str]:
        """The memories that this instance's unconfirmed events add or change (a synced
        store keeps them pending until the sync server confirms them)."""
        store = self.manager.store
        if store is None or not store.sync:
            return frozenset()
        schema = self.manager.schema
        ids = (
            getattr(
                schema.decode(record.name, bytes(record.args), event_id=record.id),
                "memory_id",
                None,
            )
            for record in store.pending()
            if schema.knows(record.name)
        )
        return frozenset(i for i in ids if isinstance(i, str))

    def background_indexer(self) -> VectorIndexer | None:
        """A thread that gives new and changed memories their vectors as they come
        (close it when done); ``None`` when semantic search cannot be used here (the
        reason is logged: keyword search works without it)."""
        data_dir = DataDir(self.manager.data_dir)
        try:
            data_dir.embeddings().close()  # the model can be used: checked, not loaded
        except (ConfigError, apsw.Error) as exc:
            log.warning("memory vectors are not indexed in the background: %s", exc)
            return None
        self._indexer = VectorIndexer(data_dir.embeddings, self.manager, self._position)
        return self._indexer

    def _position(self) -> object:
        """A value that changes with the data: the store's head (pending events
        included), or the SQL primary's."""
        store = self.manager.store
        if store is None:
            return self.manager.head()
        head = store.head
        return (head.global_seq, head.client_seq, head.generation)

    @contextmanager
    def _vectors(self, *, required: bool, wanted: bool) -> Iterator[Embeddings | None]:
        """The data directory's vectors, one search or indexing at a time (``None``
        when not wanted, or not required and the model cannot be used)."""
        if not wanted:
            yield None
            return
        with self._vectors_lock:
            try:
                embeddings = self._open_vectors()
            except EmbeddingsUnavailable:
                if required:
                    raise
                embeddings = None
            try:
                yield embeddings
            finally:
                if self._close_when_done:
                    self._close_vectors()

    def _open_vectors(self) -> Embeddings:
        """The vectors, opened once and kept (a search reuses the vectors it read) until
        the chosen model changes or the manager closes. Holds ``_vectors_lock``."""
        model = chosen_model()
        if self._embeddings is not None and self._embeddings.model == model.id:
            return self._embeddings
        fresh = DataDir(self.manager.data_dir).embeddings(model)
        if self._embeddings is None:
            self.manager.on_close(self._release_vectors)
        else:
            self._embeddings.close()
        self._embeddings = fresh
        self._close_when_done = False
        return fresh

    def _release_vectors(self) -> None:
        """On the manager's close: close the vectors, or, while a search holds them
        (and may be waiting for the manager this close holds), as that search ends."""
        self._close_when_done = True
        if self._vectors_lock.acquire(timeout=1.0):
            try:
                self._close_vectors()
            finally:
                self._vectors_lock.release()

    def _close_vectors(self) -> None:
        if self._embeddings is not None:
            self._embeddings.close()
            self._embeddings = None
        self._close_when_done = False


def _moves(runs: list[OptimizationReport]) -> list[MemoryMove]:
    return [move for run in runs for move in run.moves]
