"""What the benchmarks share: generated personas and memories, loading them, step counting."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

from pjai.schema import MemoryAdded, PersonaCreated, new_id
from pjai.schema.event import Event
from pjai.schema.fields import Tier
from pjai.schema.types import Progress

__all__ = [
    "EPOCH",
    "Steps",
    "commits_per_s",
    "load_memories",
    "memory_event",
    "memory_events",
    "persona_events",
    "persona_id",
    "tier_of",
]

Commit = Callable[..., object]
"""``commit(*events)`` of a store or a manager."""

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
"""Generated memories occurred within the year from here."""

TIER_MIX: tuple[Tier, ...] = ("hot", "warm", "warm", *("cold",) * 7)
"""One memory in ten hot, two warm, seven cold: a store after some optimizing."""


def tier_of(index: int, personas: int) -> Tier:
    """The tier of generated memory ``index`` when memories go round ``personas``."""
    return TIER_MIX[(index // personas) % len(TIER_MIX)]


def persona_id(index: int) -> str:
    """The id of generated persona ``index``."""
    return f"persona-{index:05d}"


def persona_events(count: int) -> list[PersonaCreated]:
    """The events creating ``count`` generated personas."""
    return [PersonaCreated(persona_id=persona_id(p), name=f"P{p}") for p in range(count)]


def memory_event(
    index: int, persona: str, *, tier: Tier = "warm", occurred_at: datetime | None = None
) -> MemoryAdded:
    """The ``index``-th generated memory, of persona ``persona``."""
    return MemoryAdded(
        memory_id=new_id(),
        persona_id=persona,
        name=f"memory {index}",
        content=f"Benchmark memory {index}: the user mentioned topic {index % 977}.",
        tags=[f"topic-{index % 97}"],
        importance=(index * 37 % 101) / 100,
        tier=tier,
        occurred_at=occurred_at,
    )


def memory_events(count: int, persona_count: int) -> Iterator[MemoryAdded]:
    """``count`` generated memories going round the first ``persona_count`` personas, in
    the tier mix, occurred within the year from :data:`EPOCH`."""
    for i in range(count):
        yield memory_event(
            i,
            persona_id(i % persona_count),
            tier=tier_of(i, persona_count),
            occurred_at=EPOCH + timedelta(minutes=(i * 7919) % 525_600),
        )


def load_memories(commit: Commit, persona_count: int, memory_count: int, batch: int) -> float:
    """Commit the personas, then the memories in commits of ``batch``; memories a second."""
    commit(*persona_events(persona_count))
    events = memory_events(memory_count, persona_count)
    started = time.perf_counter()
    for _ in range(0, memory_count, batch):
        commit(*[next(events) for _ in range(batch)])
    return memory_count / (time.perf_counter() - started)


def commits_per_s(commit: Commit, events: list[Event]) -> float:
    """Commit ``events`` one at a time; commits a second."""
    started = time.perf_counter()
    for event in events:
        commit(event)
    return len(events) / (time.perf_counter() - started)


class Steps:
    """Counts a benchmark's steps and reports them as ``progress(done, total)``."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total = total
        self.done = 0
        self._progress = progress

    def __call__(self) -> None:
        """One more step done."""
        self.done += 1
        if self._progress is not None:
            self._progress(self.done, self.total)
