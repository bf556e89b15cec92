"""Event builders shared by the tests."""

from __future__ import annotations

from typing import Any

from pjai.schema import MemoryAdded, PersonaCreated


def persona(persona_id: str = "p1", name: str | None = None) -> PersonaCreated:
    """A PersonaCreated event with defaults."""
    return PersonaCreated(persona_id=persona_id, name=name or persona_id.upper())


def memory(memory_id: str, persona_id: str = "p1", **fields: Any) -> MemoryAdded:
    """A MemoryAdded event with defaults."""
    values: dict[str, Any] = {"content": f"content of {memory_id}", **fields}
    return MemoryAdded(memory_id=memory_id, persona_id=persona_id, **values)
