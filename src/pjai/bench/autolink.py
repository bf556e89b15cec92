"""``pjai bench autolink``: linking memories by their words, bounded against exhaustive.

:func:`~pjai.memory.graph.auto_link` by words compares each memory with a bounded
number of candidates (:data:`~pjai.memory.graph.MAX_POSTINGS`,
:data:`~pjai.memory.graph.CANDIDATES_PER_LINK`). This measures what the bound costs and
saves against comparing every candidate (``max_postings=0, candidates_per_link=0``),
on the same memories:

- real text, when ``data`` is given: each LoCoMo conversation's turns, one persona each
  (a few hundred memories: the bound on candidates is what differs there);
- a synthetic persona of ``memories`` memories (seeded): each draws six words from one
  of ``memories / 50`` topics of 30 words and six from a long vocabulary whose words
  are drawn by a Zipf law, as words of text are. Past a thousand memories the bound
  on a word's memories counts too.

For each: seconds, links found, and the share of the exhaustive links the bounded run
found too (``recall``).
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from pjai.bench.locomo import load_conversations
from pjai.memory.graph import auto_link
from pjai.schema import Event, MemoryAdded, MemoryLinked, PersonaCreated
from pjai.schema.types import Progress
from pjai.store import Store

__all__ = ["run_autolink_bench"]

PERSONA = "autolink-bench"
TOPIC_WORDS = 30
VOCABULARY = 20_000


def run_autolink_bench(
    workdir: Path,
    *,
    memories: int = 8_000,
    data: Path | None = None,
    exhaustive: bool = True,
    seed: int = 7,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Link the real and synthetic personas both ways under ``workdir``."""
    personas: list[tuple[str, list[Event]]] = []
    if data is not None:
        for conversation in load_conversations(data):
            kept: list[Event] = [
                e for e in conversation.events if isinstance(e, PersonaCreated | MemoryAdded)
            ]
            personas.append((conversation.persona_id, kept))
    personas.append((PERSONA, _synthetic(memories, seed)))
    result: dict[str, Any] = {"benchmark": "autolink", "personas": []}
    for done, (persona_id, events) in enumerate(personas):
        with Store.open(workdir / f"{done}.db") as store:
            for start in range(0, len(events), 2_000):
                store.commit(*events[start : start + 2_000])
            result["personas"].append(_measure(store, persona_id, len(events) - 1, exhaustive))
        if progress is not None:
            progress(done + 1, len(personas))
    return result


def _measure(store: Store, persona_id: str, count: int, exhaustive: bool) -> dict[str, Any]:
    began = time.perf_counter()
    bounded = _pairs(auto_link(store, persona_id))
    figures: dict[str, Any] = {
        "persona": persona_id,
        "memories": count,
        "bounded_s": round(time.perf_counter() - began, 3),
        "bounded_links": len(bounded),
    }
    if exhaustive:
        began = time.perf_counter()
        every = _pairs(auto_link(store, persona_id, max_postings=0, candidates_per_link=0))
        seconds = time.perf_counter() - began
        figures |= {
            "exhaustive_s": round(seconds, 3),
            "exhaustive_links": len(every),
            "recall": round(len(bounded & every) / len(every), 4) if every else None,
            "speedup": round(seconds / figures["bounded_s"], 1) if figures["bounded_s"] else None,
        }
    return figures


def _pairs(events: list[Event]) -> set[frozenset[str]]:
    return {frozenset((e.source_id, e.target_id)) for e in events if isinstance(e, MemoryLinked)}


def _synthetic(count: int, seed: int) -> list[Event]:
    rng = random.Random(seed)
    topics = [
        [f"t{topic}w{word}" for word in range(TOPIC_WORDS)] for topic in range(max(1, count // 50))
    ]
    weights = [1 / rank for rank in range(1, VOCABULARY + 1)]  # Zipf, s = 1
    vocabulary = [f"v{rank}" for rank in range(VOCABULARY)]
    events: list[Event] = [PersonaCreated(persona_id=PERSONA, name="Auto-link benchmark")]
    for i in range(count):
        words = rng.sample(rng.choice(topics), 6) + rng.choices(vocabulary, weights, k=6)
        events.append(
            MemoryAdded(memory_id=f"m{i:07d}", persona_id=PERSONA, content=" ".join(words))
        )
    return events
