"""A guided tour: seed personas, watch a live query react to every commit.

Commits go through the hybrid manager, so each one lands in the reactive store and the
SQL primary together. Running it again on the same data adds nothing twice: personas
are found by name, the demo's memories have fixed ids (``<persona id>:demo-...``) and
a step whose memory is there already brings it back to where the step starts instead.
A directory holding personas of its own is left alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from pjai.errors import ConfigError
from pjai.hybrid import HybridDatabaseManager
from pjai.schema import (
    BigFive,
    Event,
    MemoryAccessed,
    MemoryAdded,
    MemoryDeleted,
    MemoryRestored,
    MemoryTierChanged,
    MemoryUpdated,
    PersonaActivated,
    PersonaCreated,
    Personality,
    new_id,
)
from pjai.schema.tables import memories as memories_table
from pjai.store import Row

__all__ = ["TOP_MEMORIES", "DemoStep", "run_demo", "seed"]

TOP_MEMORIES = """
SELECT p.name AS persona, m.name AS memory, m.tier, m.importance, m.access_count
FROM memories AS m JOIN personas AS p ON p.id = m.persona_id
WHERE p.is_active AND m.deleted_at IS NULL
ORDER BY m.importance DESC, m.name
LIMIT 6
"""
"""The live query the demo watches: the active persona's most important memories."""

_PERSONAS = {
    "Ada": (
        "Analytical research assistant",
        BigFive(openness=80, conscientiousness=90, extraversion=35, agreeableness=60),
        [
            ("Prefers concise answers", "The user asked for short, direct replies.", 0.8),
            ("Works on graph databases", "Current project: a property graph engine.", 0.7),
            ("Morning person", "Most sessions start before 8 am.", 0.4),
        ],
    ),
    "Basil": (
        "Creative writing partner",
        BigFive(openness=95, extraversion=70, neuroticism=40),
        [
            ("Writes science fiction", "Drafting a novel set on a tidally locked planet.", 0.9),
            ("Dislikes adverbs", "Asked to flag adverbs in every draft.", 0.6),
        ],
    ),
}


@dataclass(frozen=True, slots=True)
class DemoStep:
    """One scripted change: what it does, and the events it commits."""

    title: str
    events: list[Event]


def seed(store: HybridDatabaseManager) -> dict[str, str]:
    """Create the demo personas and memories unless present; return persona ids by name.

    Refused (:class:`~pjai.errors.ConfigError`) where personas the demo did not make
    live: it would add its memories to a person's own Ada and make her active.
    """
    rows = store.query("SELECT id, name, description FROM personas WHERE deleted_at IS NULL")
    theirs = sorted(
        row.name
        for row in rows
        if row.name not in _PERSONAS or _PERSONAS[row.name][0] != row.description
    )
    if theirs:
        raise ConfigError(
            f"the demo runs on a new data directory, or one it made; this one holds "
            f"{', '.join(theirs)}: give the demo another --data-dir"
        )
    existing = {row.name: row.id for row in rows}
    events: list[Event] = []
    for name, (description, big_five, memories) in _PERSONAS.items():
        if name in existing:
            continue
        persona_id = existing[name] = new_id()
        personality = Personality(big_five=big_five)
        events.append(
            PersonaCreated(
                persona_id=persona_id,
                name=name,
                description=description,
                personality=personality,
            )
        )
        for number, (title, content, importance) in enumerate(memories):
            events.append(
                MemoryAdded(
                    memory_id=f"{persona_id}:demo-{number}",
                    persona_id=persona_id,
                    name=title,
                    content=content,
                    importance=importance,
                    tier="hot" if importance >= 0.7 else "warm",
                )
            )
    events.append(PersonaActivated(persona_id=existing["Ada"]))
    store.commit(*events)
    return existing


def _existing(store: HybridDatabaseManager, *memory_ids: str) -> dict[str, Row]:
    """The rows of those of ``memory_ids`` that exist, deleted or not, by id."""
    m = memories_table.c
    rows = store.query(select(m.id, m.tier, m.deleted_at).where(m.id.in_(memory_ids)))
    return {row.id: row for row in rows}


def _script(store: HybridDatabaseManager, personas: dict[str, str]) -> list[DemoStep]:
    ada, basil = personas["Ada"], personas["Basil"]
    note, chapter = f"{ada}:demo-deadline", f"{basil}:demo-chapter-3"
    there = _existing(store, note, chapter)
    learn: list[Event]
    if note in there:  # an earlier run's: back to where this step leaves it
        learn = [MemoryRestored(memory_id=note, persona_id=ada)] if there[note].deleted_at else []
        learn += [
            MemoryUpdated(memory_id=note, persona_id=ada, importance=0.95),
            MemoryTierChanged(
                memory_id=note, persona_id=ada, tier="hot", reason="importance_change"
            ),
        ]
    else:
        learn = [
            MemoryAdded(
                memory_id=note,
                persona_id=ada,
                name="Deadline on Friday",
                content="The graph engine demo is due on Friday.",
                importance=0.95,
                tier="hot",
            )
        ]
    basil_note: list[Event] = []
    if chapter not in there:
        basil_note.append(
            MemoryAdded(
                memory_id=chapter,
                persona_id=basil,
                name="Chapter 3 done",
                content="Finished the third chapter.",
                importance=0.5,
            )
        )
    return [
        DemoStep("Ada learns something important", learn),
        DemoStep(
            "Ada opens that memory twice",
            [MemoryAccessed(memory_id=note, persona_id=ada, count=2)],
        ),
        DemoStep("Basil (not active) gets a memory: the live query does not change", basil_note),
        DemoStep(
            "The deadline moves: importance drops, tier becomes warm",
            [
                MemoryUpdated(memory_id=note, persona_id=ada, importance=0.5),
                MemoryTierChanged(
                    memory_id=note, persona_id=ada, tier="warm", reason="importance_change"
                ),
            ],
        ),
        DemoStep("The deadline is deleted", [MemoryDeleted(memory_id=note, persona_id=ada)]),
        DemoStep("...and restored", [MemoryRestored(memory_id=note, persona_id=ada)]),
        DemoStep("Basil becomes the active persona", [PersonaActivated(persona_id=basil)]),
        DemoStep("Ada becomes active again", [PersonaActivated(persona_id=ada)]),
    ]


MAX_DELAY = 60.0
"""The longest pause between the demo's scripted commits, in seconds."""


def run_demo(
    store: HybridDatabaseManager,
    show: Callable[[str, list[Row]], object],
    note: Callable[[str], object],
    *,
    delay: float = 0.8,
) -> int:
    """Seed ``store``, watch :data:`TOP_MEMORIES` live, and commit the scripted steps.

    ``show(title, rows)`` is called by the live query each time its result changes;
    ``note(text)`` reports each commit. Returns how many times the live query fired.
    ``delay`` is 0 to :data:`MAX_DELAY` seconds, checked before anything is written.
    """
    if not 0 <= delay <= MAX_DELAY:  # NaN too
        raise ConfigError(f"the delay must be 0 to {MAX_DELAY:g} seconds, got {delay}")
    personas = seed(store)
    fired = 0
    title = "Initial state"

    def on_change(rows: list[Row]) -> None:
        nonlocal fired
        fired += 1
        show(title, rows)

    live = store.live(TOP_MEMORIES)
    with live.subscribe(on_change):
        for step in _script(store, personas):
            time.sleep(delay)
            before = fired
            title = step.title
            if not step.events:
                note(f"{step.title}: there from an earlier run, nothing to commit")
                continue
            records = store.commit(*step.events)
            if fired == before:
                note(f"{step.title}: committed {len(records)} event(s), result unchanged")
            else:
                note(f"committed {len(records)} event(s) at {records[-1].position}")
    return fired
