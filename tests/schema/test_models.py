"""Read models stay in step with the tables they read."""

from __future__ import annotations

from pjai.schema import memories, personas
from pjai.schema.models import Memory, Persona


def test_memory_fields_are_the_memories_columns_in_order() -> None:
    assert Memory.__struct_fields__ == tuple(memories.columns.keys())


def test_persona_covers_every_personas_column() -> None:
    grouped = {"memory", "privacy"}
    flat = {c.name for c in personas.columns if not c.name.startswith(("memory_", "privacy_"))}
    assert set(Persona.__struct_fields__) == flat | grouped
