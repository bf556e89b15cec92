"""The peer ``pjai bench store --peer eventsourcing`` measures in the same run.

The `eventsourcing` library (the ``pjai[bench]`` extra) appends the same workload to an
SQLite file: the same personas and memories (each memory one aggregate created by one
event with the same fields), committed in the same batches, then the same number of
single commits. It keeps only its event table: no materialized state, no changesets, no
live queries. Its SQLite settings are its own defaults (WAL, ``synchronous`` FULL).
Figures on a shared machine move between runs, so PJai's are reported as ratios to the
peer's from the same run.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from pjai.bench.workload import memory_events, persona_events
from pjai.errors import ConfigError
from pjai.schema import MemoryAdded

__all__ = ["PEERS", "check_peer", "run_peer"]

PEERS = ("eventsourcing",)


def check_peer(peer: str) -> None:
    """Raise :class:`~pjai.errors.ConfigError` unless ``peer`` is known and installed."""
    if peer not in PEERS:
        raise ConfigError(f"unknown peer {peer!r}: {', '.join(PEERS)}")
    if importlib.util.find_spec("eventsourcing") is None:
        raise ConfigError("the eventsourcing peer is not installed: pip install 'pjai[bench]'")


def _classes() -> tuple[Any, Any]:
    """The peer's application and aggregate classes (imported only when asked for)."""
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event

    class Persona(Aggregate):
        @event("Created")
        def __init__(self, persona_id: str, name: str) -> None:
            self.persona_id = persona_id
            self.name = name

    class Memory(Aggregate):
        @event("Added")
        def __init__(
            self,
            memory_id: str,
            persona_id: str,
            name: str,
            content: str,
            tags: list[str],
            importance: float,
            tier: str,
            occurred_at: datetime | None,
        ) -> None:
            self.memory_id = memory_id
            self.persona_id = persona_id
            self.name = name
            self.content = content
            self.tags = tags
            self.importance = importance
            self.tier = tier
            self.occurred_at = occurred_at

    return Application, (Persona, Memory)


def _memory(kind: Any, e: MemoryAdded) -> Any:
    return kind(
        memory_id=e.memory_id,
        persona_id=e.persona_id,
        name=e.name,
        content=e.content,
        tags=list(e.tags),
        importance=e.importance,
        tier=e.tier,
        occurred_at=e.occurred_at,
    )


def run_peer(
    peer: str, path: Path, *, personas: int, memories: int, batch: int, singles: int
) -> dict[str, Any]:
    """Batched and single commits a second of ``peer`` on an SQLite file at ``path``,
    in PJai's store benchmark shape."""
    check_peer(peer)
    application, (persona_kind, memory_kind) = _classes()
    app = application(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}
    )
    app.save(*[persona_kind(p.persona_id, p.name) for p in persona_events(personas)])
    events: Iterator[MemoryAdded] = memory_events(memories, personas)
    started = time.perf_counter()
    for _ in range(0, memories, batch):
        app.save(*[_memory(memory_kind, next(events)) for _ in range(batch)])
    batched = memories / (time.perf_counter() - started)
    lone = list(memory_events(singles, personas))
    started = time.perf_counter()
    for e in lone:
        app.save(_memory(memory_kind, e))
    single = singles / (time.perf_counter() - started)
    app.close()
    return {
        "peer": f"eventsourcing {_version()}",
        "peer_batched_per_s": round(batched),
        "peer_single_per_s": round(single),
    }


def _version() -> str:
    from importlib.metadata import version

    return version("eventsourcing")
