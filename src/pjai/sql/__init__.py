"""The SQL primary: engines and pools, journal, projection writer, repositories, shards."""

from __future__ import annotations

from pjai.sql.engine import PoolConfig, create_sql_engine, default_url
from pjai.sql.repositories import (
    MemoryFilter,
    MemoryRepository,
    MemoryStatistics,
    PersonaRepository,
    PersonaStatistics,
)
from pjai.sql.shards import HashRing, Shard, ShardSet
from pjai.sql.writer import Projected, Projection, SqlWriter

__all__ = [
    "HashRing",
    "MemoryFilter",
    "MemoryRepository",
    "MemoryStatistics",
    "PersonaRepository",
    "PersonaStatistics",
    "PoolConfig",
    "Projected",
    "Projection",
    "Shard",
    "ShardSet",
    "SqlWriter",
    "create_sql_engine",
    "default_url",
]
