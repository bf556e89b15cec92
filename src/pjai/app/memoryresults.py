"""What the memory commands of :class:`pjai.app.Memories` answer: a memory with its
links, a memory after a change with the moves it caused, the links an auto-link made,
and statistics with health."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pjai.memory import Health
from pjai.memory.optimizer import MemoryMove
from pjai.schema.models import Memory
from pjai.sql.repositories import MemoryStatistics
from pjai.store import Row

__all__ = ["AutoLinked", "MemoryChange", "MemoryStats", "MemoryView"]


@dataclass(frozen=True, slots=True)
class MemoryView:
    """A memory and its links, strongest first."""

    memory: Memory
    links: list[Row]


@dataclass(frozen=True, slots=True)
class MemoryChange:
    """A memory after a change, whether anything changed, and what the optimizer runs
    the change caused did to the persona's memories (``moves``: which, from where to
    where, and why)."""

    memory: Memory
    changed: bool
    moves: list[MemoryMove] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AutoLinked:
    """How many ``similar`` links were made, and by what: ``vectors`` or ``words``."""

    links: int
    by: Literal["vectors", "words"]


@dataclass(frozen=True, slots=True)
class MemoryStats:
    """Memory statistics (from the SQL primary) and health."""

    statistics: MemoryStatistics
    health: Health
