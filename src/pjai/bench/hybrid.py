"""``pjai bench hybrid``: the store and the SQL primary together, on SQLite and PostgreSQL.

Per backend: end-to-end commit throughput (store + SQL, batched and single; single with
the store off, SQL alone), the lag
from a store commit to its SQL commit, repository query latency at the full memory
count (one persona's hot memories by importance; one persona's memories in a time
range), keyword search latency (on the store, and with the store off on PostgreSQL),
and how long ``verify`` takes over everything.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from pjai.bench.stats import ms, percentile
from pjai.bench.workload import (
    EPOCH,
    Steps,
    commits_per_s,
    load_memories,
    memory_events,
    persona_id,
)
from pjai.errors import ConfigError
from pjai.hybrid import HybridDatabaseManager
from pjai.memory.search import SearchFilter, search
from pjai.schema.types import Progress
from pjai.sql.engine import sqlite_url
from pjai.sql.repositories import MemoryFilter

__all__ = ["FULL", "QUICK", "HybridWorkload", "postgres_schema", "run_hybrid_bench"]


@dataclass(frozen=True, slots=True)
class HybridWorkload:
    """Sizes of one run."""

    personas: int
    memories: int
    batch: int
    singles: int
    queries: int


FULL = HybridWorkload(1_000, 1_000_000, 1_000, 2_000, 500)
QUICK = HybridWorkload(20, 5_000, 500, 100, 50)


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A URL on a fresh PostgreSQL schema, dropped afterwards."""
    base = make_url(url).set(drivername="postgresql+psycopg")
    schema = f"pjai_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _one_backend(
    data_dir: Path,
    sql_url: str,
    workload: HybridWorkload,
    rng: random.Random,
    step: Callable[[], None],
) -> dict[str, Any]:
    with HybridDatabaseManager.open(data_dir, sql_urls=[sql_url], environ={}) as manager:
        batched = load_memories(
            manager.commit, workload.personas, workload.memories, workload.batch
        )
        step()

        manager.bridge.report.lags_ms.clear()
        single = commits_per_s(
            manager.commit, list(memory_events(workload.singles, workload.personas))
        )
        lag_p95 = percentile(manager.bridge.report.lags_ms, 95)
        step()

        hot, ranged = [], []
        for _ in range(workload.queries):
            persona = persona_id(rng.randrange(workload.personas))
            began = time.perf_counter()
            found = manager.memories.list(
                MemoryFilter(persona_id=persona, tiers=["hot"]), order="importance", limit=50
            )
            hot.append(time.perf_counter() - began)
            if not found:
                raise RuntimeError(f"no hot memories for {persona}")
            start = EPOCH + timedelta(days=rng.randrange(330))
            window = MemoryFilter(
                persona_id=persona, occurred_from=start, occurred_to=start + timedelta(days=30)
            )
            began = time.perf_counter()
            manager.memories.list(window, order="occurred_at", descending=False, limit=100)
            ranged.append(time.perf_counter() - began)
        step()

        texts = [(persona_id(rng.randrange(workload.personas)), _words(rng)) for _ in hot]
        keyword = _keyword_latencies(manager, texts)
        report = manager.verify()
        if not report.equal:
            raise RuntimeError("verify found the store and SQL different after the benchmark load")
        step()
    # With the store off (the rollback switch), commits go to SQL alone, and keyword
    # search is PostgreSQL's (SQLite's SQL primary has none).
    keyword_off = None
    off = {"PJAI_USE_LIVESTORE": "false"}
    with HybridDatabaseManager.open(data_dir, sql_urls=[sql_url], environ=off) as manager:
        single_off = commits_per_s(
            manager.commit, list(memory_events(workload.singles, workload.personas))
        )
        if make_url(sql_url).get_backend_name() == "postgresql":
            keyword_off = ms(percentile(_keyword_latencies(manager, texts), 95))
    return {
        "memories": workload.memories,
        "commit_batched_per_s": round(batched),
        "commit_single_per_s": round(single),
        "commit_store_off_single_per_s": round(single_off),
        "bridge_lag_p95_ms": round(lag_p95, 3),
        "query_hot_p95_ms": ms(percentile(hot, 95)),
        "query_range_p95_ms": ms(percentile(ranged, 95)),
        "keyword_search_p95_ms": ms(percentile(keyword, 95)),
        "keyword_search_store_off_p95_ms": keyword_off,
        "verify_1m_s" if workload.memories == 1_000_000 else "verify_s": round(report.seconds, 3),
    }


def _words(rng: random.Random) -> str:
    """A search text over the generated memories: ``topic`` (every memory has the word,
    so every memory of the persona matches and is ranked: the worst case) and a topic's
    number (about one memory in 977 has it)."""
    return f"topic {rng.randrange(977)}"


def _keyword_latencies(manager: HybridDatabaseManager, texts: list[tuple[str, str]]) -> list[float]:
    """Seconds per keyword search (10 hits) of each persona's text."""
    took = []
    for persona, words in texts:
        began = time.perf_counter()
        hits = search(manager, words, SearchFilter(persona_id=persona))
        took.append(time.perf_counter() - began)
        if not hits:
            raise RuntimeError(f"a keyword search of {persona}'s memories found nothing")
    return took


def run_hybrid_bench(
    workdir: Path,
    *,
    postgres_url: str | None,
    quick: bool = False,
    memories: int | None = None,
    personas: int | None = None,
    progress: Progress | None = None,
    seed: int = 11,
) -> dict[str, Any]:
    """Run the benchmark on SQLite, and on PostgreSQL when ``postgres_url`` is given;
    ``memories`` and ``personas`` replace the workload's counts (memories a multiple of
    its batch)."""
    workload = QUICK if quick else FULL
    if memories is not None:
        if memories < workload.batch or memories % workload.batch:
            raise ConfigError(
                f"--memories must be a multiple of {workload.batch:,} (the batch), got {memories:,}"
            )
        workload = replace(workload, memories=memories)
    if personas is not None:
        if not 1 <= personas <= workload.memories // 10:  # each with hot memories to query
            raise ConfigError(
                f"--personas must be 1 to {workload.memories // 10:,} (a tenth of the "
                f"memories), got {personas:,}"
            )
        workload = replace(workload, personas=personas)
    rng = random.Random(seed)
    step = Steps(8 if postgres_url else 4, progress)

    result: dict[str, Any] = {"benchmark": "hybrid", "quick": quick, "personas": workload.personas}
    result["sqlite"] = _one_backend(
        workdir / "sqlite", sqlite_url(workdir / "primary.db"), workload, rng, step
    )
    if postgres_url:
        with postgres_schema(postgres_url) as url:
            result["postgresql"] = _one_backend(workdir / "postgresql", url, workload, rng, step)
    else:
        result["postgresql"] = None
    return result
