"""Event builders shared by the tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from pjai.schema import SCHEMA, Event, EventRecord, MemoryAdded, PersonaCreated, Position, Schema
from pjai.schema.types import new_id, utc_now


def persona(persona_id: str = "p1", name: str | None = None) -> PersonaCreated:
    """A PersonaCreated event with defaults."""
    return PersonaCreated(persona_id=persona_id, name=name or persona_id.upper())


def memory(memory_id: str, persona_id: str = "p1", **fields: Any) -> MemoryAdded:
    """A MemoryAdded event with defaults."""
    values: dict[str, Any] = {"content": f"content of {memory_id}", **fields}
    return MemoryAdded(memory_id=memory_id, persona_id=persona_id, **values)


def history(
    events: Sequence[tuple[Event, datetime] | Event],
    *,
    schema: Schema = SCHEMA,
    client_id: str = "c",
) -> list[EventRecord]:
    """``events`` as one instance's confirmed history from position 1, each committed
    at its time (now when none is given)."""
    records, parent = [], Position(0)
    for item in events:
        event, at = item if isinstance(item, tuple) else (item, utc_now())
        name, _, args = schema.encode(event)
        position = parent.next(0)
        records.append(
            EventRecord(
                id=new_id(),
                name=name,
                args=msgspec.Raw(args),
                position=position,
                parent=parent,
                client_id=client_id,
                session_id=client_id,
                at=at,
            )
        )
        parent = position
    return records
