"""``pjai bench store``: commit throughput, live and point query latency, boot, rebuild, RSS.

The workload is file-backed: personas, then memories committed in batches, then single
commits, live-query commits, point queries, a cold boot in a new process, and a rebuild
of the state from the whole log. Loads run in their own processes so that their peak
RSS is their own.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import apsw
from sqlalchemy import bindparam, select

from pjai.bench.peer import check_peer
from pjai.bench.processes import resident_kb
from pjai.bench.stats import ms, percentile
from pjai.bench.walpages import pages_per_commit
from pjai.bench.workload import commits_per_s, load_memories, memory_events, persona_id
from pjai.schema import MemoryUpdated, memories
from pjai.schema.types import AnySelect, Progress
from pjai.store import Store
from pjai.store.sqlite import Durability

__all__ = ["FULL", "QUICK", "Workload", "run_store_bench"]


@dataclass(frozen=True, slots=True)
class Workload:
    """Sizes of one benchmark run."""

    personas: int
    memories: int
    batch: int
    singles: int
    live_commits: int
    point_queries: int
    boot_runs: int


FULL = Workload(100, 100_000, 1_000, 10_000, 200, 2_000, 5)
QUICK = Workload(10, 2_000, 200, 300, 50, 200, 1)


def load(path: Path, workload: Workload, durability: Durability, sync: bool) -> dict[str, Any]:
    """Create a store with the workload's personas and memories (run in a fresh process)."""
    with Store.open(path, durability=durability, sync=sync) as store:
        per_s = load_memories(store.commit, workload.personas, workload.memories, workload.batch)
    peak_kb = resident_kb(os.getpid(), "the load's peak RSS", peak=True)
    return {"per_s": round(per_s), "rss_mb": round(peak_kb / 1024, 1)}


def _in_process(task: str, **args: Any) -> dict[str, Any]:
    command = [sys.executable, "-m", "pjai.bench.worker", task, json.dumps(args, default=str)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark {task} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


_BOOT = (
    "import sys; from pjai.store import Store; "
    "store = Store.open(sys.argv[1]); store.query('SELECT count(*) FROM personas'); "
    "print('ready', flush=True)"
)


def _boot_seconds(path: Path) -> float:
    """Process start to the first query answered, as an application opens a store."""
    command = [sys.executable, "-c", _BOOT, str(path)]
    started = time.perf_counter()
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None
        line = child.stdout.readline()
        elapsed = time.perf_counter() - started
    if line.strip() != "ready" or child.returncode != 0:
        raise RuntimeError("boot benchmark child failed")
    return elapsed


def _singles(path: Path, workload: Workload, durability: Durability) -> int:
    with Store.open(path, durability=durability) as store:
        return round(
            commits_per_s(store.commit, list(memory_events(workload.singles, workload.personas)))
        )


_PAGED_COMMITS = 300
"""Single commits whose pages are counted: 300 of about 20 pages stay below the store's
auto-checkpoint (10,000 pages)."""


def _single_pages(path: Path, workload: Workload) -> dict[str, Any]:
    """Pages a single memory commit writes to the store's log, by table and index."""
    events = iter(memory_events(_PAGED_COMMITS, workload.personas))
    with Store.open(path) as store:
        by_btree = pages_per_commit(path, lambda: store.commit(next(events)), _PAGED_COMMITS)
    return {
        "single_commit_pages": round(sum(by_btree.values()), 1),
        "single_commit_pages_by_btree": by_btree,
    }


def _hot_memories(persona: str) -> AnySelect:
    return (
        select(memories.c.id, memories.c.name, memories.c.importance, memories.c.tier)
        .where(memories.c.persona_id == persona, memories.c.tier == "hot")
        .order_by(memories.c.importance.desc())
        .limit(50)
    )


def _live(path: Path, workload: Workload, rng: random.Random) -> dict[str, float]:
    persona = persona_id(rng.randrange(workload.personas))
    latencies: list[float] = []
    arrived: list[float] = []
    with Store.open(path) as store:
        live = store.live(_hot_memories(persona))
        with live.subscribe(lambda _rows: arrived.append(time.perf_counter()), immediate=False):
            for _ in range(workload.live_commits):
                target = rng.choice(live.result)
                importance = round(rng.random(), 4)
                while importance == target.importance:
                    importance = round(rng.random(), 4)
                arrived.clear()
                started = time.perf_counter()
                store.commit(
                    MemoryUpdated(memory_id=target.id, persona_id=persona, importance=importance)
                )
                if len(arrived) != 1:
                    raise RuntimeError(f"live query fired {len(arrived)} times for one commit")
                latencies.append(arrived[0] - started)
    return {
        "live_p50_ms": ms(percentile(latencies, 50)),
        "live_p95_ms": ms(percentile(latencies, 95)),
        "live_p99_ms": ms(percentile(latencies, 99)),
    }


def _point(path: Path, workload: Workload, rng: random.Random) -> dict[str, float]:
    query = (
        select(memories)
        .where(memories.c.persona_id == bindparam("persona"), memories.c.deleted_at.is_(None))
        .limit(50)
    )
    latencies: list[float] = []
    with Store.open(path) as store:
        for _ in range(workload.point_queries):
            params = {"persona": persona_id(rng.randrange(workload.personas))}
            started = time.perf_counter()
            rows = store.query(query, params)
            latencies.append(time.perf_counter() - started)
            if len(rows) != 50:
                raise RuntimeError(f"point query returned {len(rows)} rows, expected 50")
    return {
        "point_p50_ms": ms(percentile(latencies, 50)),
        "point_p95_ms": ms(percentile(latencies, 95)),
    }


def _rebuild(path: Path) -> dict[str, float]:
    with Store.open(path) as store:
        started = time.perf_counter()
        applied = store.rebuild()
        elapsed = time.perf_counter() - started
    return {"rebuild_per_s": round(applied / elapsed), "rebuild_events": applied}


_PHASES = 8


def run_store_bench(
    workdir: Path,
    *,
    quick: bool = False,
    progress: Progress | None = None,
    seed: int = 7,
    peer: str | None = None,
) -> dict[str, Any]:
    """Run the store benchmark in ``workdir`` (which should be empty) and return figures.

    ``progress(done, total)`` is told after each of its phases. With ``peer``
    (:data:`pjai.bench.peer.PEERS`), the same loads and single commits run through it
    right after PJai's, and the figures include the ratios of PJai's to the peer's.
    """
    if peer is not None:
        check_peer(peer)  # before the minutes PJai's part takes
    workload = QUICK if quick else FULL
    rng = random.Random(seed)
    phase = 0
    phases = _PHASES + (peer is not None)

    def say(_what: str) -> None:
        nonlocal phase
        if progress is not None:
            progress(phase, phases)
        phase += 1

    main = workdir / "store.db"
    shape = asdict(workload)

    say(f"loading {workload.memories:,} memories (default durability)")
    loaded = _in_process("load", path=main, workload=shape, durability="normal", sync=False)
    say(f"loading {workload.memories:,} memories (full durability)")
    full = _in_process(
        "load", path=workdir / "full.db", workload=shape, durability="full", sync=False
    )
    say(f"loading {workload.memories:,} memories as pending events (sync mode, changesets)")
    pending = _in_process(
        "load", path=workdir / "sync.db", workload=shape, durability="normal", sync=True
    )
    say(f"{workload.singles:,} single-event commits, default and full durability")
    single = _singles(main, workload, "normal")
    single_full = _singles(main, workload, "full")
    say(f"{workload.live_commits} live-query commits")
    live = _live(main, workload, rng)
    say(f"{workload.point_queries} point queries")
    point = _point(main, workload, rng)
    say(f"{workload.boot_runs} cold boots")
    boots = [_boot_seconds(main) for _ in range(workload.boot_runs)]
    pages = _single_pages(main, workload)  # after the reads, which it would add to
    say("rebuilding state from the event log")
    rebuilt = _rebuild(main)
    with Store.open(main) as store:
        events = store.summary()["events"]
    compared: dict[str, Any] = {}
    if peer is not None:
        say(f"the same loads and single commits through {peer}")
        compared = _in_process(
            "peer",
            peer=peer,
            path=workdir / "peer.db",
            personas=workload.personas,
            memories=workload.memories,
            batch=workload.batch,
            singles=workload.singles,
        )
        compared["batched_vs_peer"] = round(loaded["per_s"] / compared["peer_batched_per_s"], 3)
        compared["batched_full_vs_peer"] = round(full["per_s"] / compared["peer_batched_per_s"], 3)
        compared["single_vs_peer"] = round(single / compared["peer_single_per_s"], 3)
    say("done")
    return {
        "benchmark": "store",
        "quick": quick,
        "memories": workload.memories,
        "personas": workload.personas,
        "events": events,
        "commit_batched_per_s": loaded["per_s"],
        "commit_batched_full_per_s": full["per_s"],
        "commit_batched_pending_per_s": pending["per_s"],
        "commit_single_per_s": single,
        "commit_single_full_per_s": single_full,
        **pages,
        **live,
        **point,
        "boot_s": round(statistics.median(boots), 3),
        **rebuilt,
        "rss_mb": loaded["rss_mb"],
        **compared,
        "python": sys.version.split()[0],
        "sqlite": apsw.sqlite_lib_version(),
        "cpus": os.cpu_count(),
    }
