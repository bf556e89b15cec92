"""Hypothesis strategies shared by the store and sync tests: random memory events."""

from __future__ import annotations

from hypothesis import strategies as st

from pjai.schema import (
    Event,
    MemoryAccessed,
    MemoryDeleted,
    MemoryRestored,
    MemoryTierChanged,
    MemoryUpdated,
    PersonaActivated,
    PersonaUpdated,
)
from tests.helpers import memory

PERSONAS = ["p1", "p2"]
MEMORIES = ["m1", "m2", "m3", "m4", "m5", "m6"]
SEEDED = MEMORIES[:3]
WORDS = ["alpha", "beta", "gamma"]
"""Words that memory contents change to (each its own stem in the full-text index)."""


def owner(memory_id: str) -> str:
    return PERSONAS[int(memory_id[1:]) % 2]


def events() -> st.SearchStrategy[Event]:
    mid = st.sampled_from(MEMORIES)
    pid = st.sampled_from(PERSONAS)
    importance = st.sampled_from([0.0, 0.25, 0.5, 1.0])
    tier = st.sampled_from(["hot", "warm", "cold"])
    return st.one_of(
        st.builds(lambda m, i: memory(m, owner(m), importance=i), mid, importance),
        st.builds(
            lambda m, i: MemoryUpdated(memory_id=m, persona_id=owner(m), importance=i),
            mid,
            importance,
        ),
        st.builds(
            lambda m, w: MemoryUpdated(memory_id=m, persona_id=owner(m), content=f"{w} text"),
            mid,
            st.sampled_from(WORDS),
        ),
        st.builds(lambda m: MemoryAccessed(memory_id=m, persona_id=owner(m)), mid),
        st.builds(lambda m: MemoryDeleted(memory_id=m, persona_id=owner(m)), mid),
        st.builds(lambda m: MemoryRestored(memory_id=m, persona_id=owner(m)), mid),
        st.builds(
            lambda m, t: MemoryTierChanged(
                memory_id=m, persona_id=owner(m), tier=t, reason="manual"
            ),
            mid,
            tier,
        ),
        st.builds(lambda p: PersonaActivated(persona_id=p), pid),
        st.builds(
            lambda p, d: PersonaUpdated(persona_id=p, description=d), pid, st.sampled_from("xyz")
        ),
    )
