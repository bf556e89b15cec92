"""``pjai bench graph``: memory-graph traversal on the reactive store.

One persona gets ``memories`` memories and, for each, ``links_per_memory`` links to
other memories drawn at random (seeded, so runs are comparable): kinds and strengths
vary, duplicates are skipped. Then ``neighbours(depth=N)`` runs from ``queries``
random memories and its latency is reported, with how many memories each walk
reached, and one ``components()`` run over the whole persona.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from pjai.bench.stats import ms, percentile
from pjai.errors import ConfigError
from pjai.memory.graph import components, neighbours
from pjai.schema import Event, MemoryAdded, MemoryLinked, PersonaCreated
from pjai.schema.links import LinkKind
from pjai.schema.types import Progress
from pjai.store import Store

__all__ = ["run_graph_bench"]


PERSONA = "graph-bench"
KINDS: tuple[LinkKind, ...] = ("references", "similar", "related", "causal", "temporal")
BATCH = 2_000


def _memory_id(i: int) -> str:
    return f"m{i:07d}"


def run_graph_bench(
    workdir: Path,
    *,
    memories: int = 100_000,
    links_per_memory: int = 3,
    depth: int = 3,
    queries: int = 500,
    seed: int = 7,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Build the graph in a store under ``workdir``, then time traversals."""
    if memories < 2:
        raise ConfigError(f"the graph needs at least 2 memories, got {memories}")
    rng = random.Random(seed)
    with Store.open(workdir / "store.db") as store:
        store.commit(PersonaCreated(persona_id=PERSONA, name="Graph benchmark"))
        batch: list[Event] = []

        def flush(done: int, total: int) -> None:
            store.commit(*batch)
            batch.clear()
            if progress is not None:
                progress(done, total)

        total = memories * (1 + links_per_memory)
        for i in range(memories):
            batch.append(
                MemoryAdded(
                    memory_id=_memory_id(i),
                    persona_id=PERSONA,
                    content=f"memory {i} of the graph benchmark",
                )
            )
            if len(batch) == BATCH:
                flush(i + 1, total)
        seen: set[tuple[int, int, str]] = set()
        links = 0
        for i in range(memories):
            for _ in range(links_per_memory):
                target = rng.randrange(memories - 1)
                target += target >= i  # never itself
                kind = rng.choice(KINDS)
                if (i, target, kind) in seen:
                    continue
                seen.add((i, target, kind))
                links += 1
                batch.append(
                    MemoryLinked(
                        persona_id=PERSONA,
                        source_id=_memory_id(i),
                        target_id=_memory_id(target),
                        kind=kind,
                        strength=round(rng.uniform(0.1, 1.0), 3),
                    )
                )
                if len(batch) == BATCH:
                    flush(memories + links, total)
        if batch:
            flush(total, total)

        latencies, reached = [], []
        for _ in range(queries):
            start = _memory_id(rng.randrange(memories))
            began = time.perf_counter()
            found = neighbours(store, start, depth=depth)
            latencies.append(time.perf_counter() - began)
            reached.append(len(found))
        began = time.perf_counter()
        parts = components(store, PERSONA)
        components_s = time.perf_counter() - began
    return {
        "benchmark": "graph",
        "memories": memories,
        "links": links,
        "depth": depth,
        "queries": queries,
        "neighbours_p50_ms": ms(percentile(latencies, 50)),
        "neighbours_p95_ms": ms(percentile(latencies, 95)),
        "neighbours_p99_ms": ms(percentile(latencies, 99)),
        "reached_mean": round(sum(reached) / len(reached), 1) if reached else 0.0,
        "components": len(parts),
        "components_s": round(components_s, 3),
    }
