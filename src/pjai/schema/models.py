"""Typed read models of PJai's rows, as repositories and views return them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from msgspec import Struct

from pjai.schema.personas import (
    MemoryConfig,
    Personality,
    PrivacySettings,
    ScoringConfig,
    TierCapacities,
)

__all__ = ["Memory", "Persona", "memory_from_row", "persona_from_row"]


class Persona(Struct, frozen=True, kw_only=True):
    """A persona with its settings grouped as they are in events."""

    id: str
    name: str
    description: str
    personality: Personality
    communication_style: str
    memory: MemoryConfig
    privacy: PrivacySettings
    is_active: bool
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


class Memory(Struct, frozen=True):
    """One memory row; its fields are the ``memories`` table's columns, in their order."""

    id: str
    persona_id: str
    type: str
    name: str
    content: str
    summary: str
    tags: list[str]
    importance: float
    tier: str
    access_count: int
    last_accessed_at: datetime | None
    occurred_at: datetime
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    archived_at: datetime | None
    pinned: bool


def persona_from_row(row: Any) -> Persona:
    """A :class:`Persona` from a typed ``personas`` row (attribute access)."""
    return Persona(
        id=row.id,
        name=row.name,
        description=row.description,
        personality=msgspec.convert(row.personality, Personality),
        communication_style=row.communication_style,
        memory=MemoryConfig(
            max_memories=row.memory_max_memories,
            importance_threshold=row.memory_importance_threshold,
            auto_optimize=bool(row.memory_auto_optimize),
            retention_days=row.memory_retention_days,
            retention_action=row.memory_retention_action,
            restricted_retention_days=row.memory_restricted_retention_days,
            capacities=TierCapacities(
                hot=row.memory_capacity_hot,
                warm=row.memory_capacity_warm,
                cold=row.memory_capacity_cold,
            ),
            scoring=msgspec.convert(row.memory_scoring, ScoringConfig),
        ),
        privacy=PrivacySettings(
            **{
                name: bool(getattr(row, f"privacy_{name}"))
                for name in PrivacySettings.__struct_fields__
            }
        ),
        is_active=bool(row.is_active),
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted_at=row.deleted_at,
    )


def memory_from_row(row: Any) -> Memory:
    """A :class:`Memory` from a typed row of the ``memories`` columns, in table order."""
    return Memory(*row)
