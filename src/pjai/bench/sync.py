"""``pjai bench sync``: the sync server over real WebSockets, on SQLite and PostgreSQL.

The server runs in a process of its own (uvicorn on a loopback port, as deployed), so
that its RSS is its own; the clients run here. Per backend: the latency from a commit
on one client to the live-query callback on another, the fan-in throughput of many
clients pushing batches at once, the catch-up of an instance that returns with a
backlog while another writes, and the server's memory per idle connection. On
PostgreSQL also the fan-in through two server processes sharing the database.

A run's sizes are :mod:`pjai.bench.syncworkload`; the fan-in of many stores,
:mod:`pjai.bench.syncfanin`.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pjai.bench.hybrid import postgres_schema
from pjai.bench.sharedfanin import shared_fanin
from pjai.bench.stats import ms, percentile
from pjai.bench.syncclient import (
    CATCHUP_PENDING,
    CATCHUP_WRITES_PER_S,
    catchup_seconds,
    memory,
    started_client,
)
from pjai.bench.syncfanin import fanin_raw, fanin_sync_clients, idle_connection
from pjai.bench.syncserver import ServerProcess, servers
from pjai.bench.syncworkload import (
    FULL,
    QUICK,
    SHARED_PUSHES,
    STEP_TIMEOUT_S,
    WARMUP,
    SyncWorkload,
)
from pjai.bench.workload import Steps
from pjai.schema import SCHEMA, PersonaCreated, memories
from pjai.schema.event import Schema
from pjai.schema.types import Progress
from pjai.sql.engine import sqlite_url
from pjai.store import Store
from pjai.sync.server import ServerDatabase
from pjai.sync.transport import Transport

__all__ = ["FULL", "QUICK", "SyncWorkload", "commit_to_live", "run_sync_bench"]


async def commit_to_live(
    url: str,
    token: str,
    store_id: str,
    samples: int,
    schema: Schema = SCHEMA,
    *,
    until: threading.Event | None = None,
    timing: threading.Event | None = None,
) -> dict[str, float]:
    """Commit on A, time until B's live query has the new result; one commit at a time.
    Both stores use ``schema`` (with its codec: a field encryption codec measures the
    encrypted path, both instances holding the same keys). With ``until``, samples are
    taken until it is set (at most ``samples``), none after; ``timing`` is set when the
    first timed sample starts."""
    loop = asyncio.get_running_loop()
    arrived = asyncio.Event()
    seen: list[float] = []

    def on_change(_rows: object) -> None:  # on B's rebase thread
        seen.append(time.perf_counter())
        loop.call_soon_threadsafe(arrived.set)

    count = sa.select(sa.func.count()).select_from(memories).where(memories.c.persona_id == "p1")
    latencies: list[float] = []
    with Store.memory(sync=True, schema=schema) as a, Store.memory(sync=True, schema=schema) as b:
        clients = [started_client(s, url, token, store_id, 1_000) for s in (a, b)]
        try:
            a.commit(PersonaCreated(persona_id="p1", name="P1"))
            async with asyncio.timeout(STEP_TIMEOUT_S):
                await asyncio.gather(*(c.wait_until(lambda s: s.level) for c in clients))
            with b.live(count).subscribe(on_change, immediate=False):
                for index in range(WARMUP + samples):
                    if until is not None and until.is_set():
                        break
                    arrived.clear()
                    seen.clear()
                    if index == WARMUP and timing is not None:
                        timing.set()
                    started = time.perf_counter()
                    records = a.commit(memory(index))
                    async with asyncio.timeout(STEP_TIMEOUT_S):
                        await arrived.wait()
                        # Also the echo on A, so that every sample starts from quiet.
                        await clients[0].synced(records[-1].id)
                    if index >= WARMUP and not (until is not None and until.is_set()):
                        latencies.append(seen[0] - started)
        finally:
            for client in clients:
                await client.stop()
    if not latencies:
        raise RuntimeError("the load ended before a latency sample was taken")
    return {
        "p50_ms": ms(percentile(latencies, 50)),
        "p95_ms": ms(percentile(latencies, 95)),
        "p99_ms": ms(percentile(latencies, 99)),
        "samples": len(latencies),
    }


async def _idle_kb(server: ServerProcess, token: str, count: int) -> float:
    """The server's RSS growth per idle connection, each on a store of its own."""
    opened: list[Transport] = []

    async def open_many(n: int) -> None:
        for start in range(0, n, 50):
            ids = [f"idle-{uuid.uuid4().hex}" for _ in range(min(50, n - start))]
            opened.extend(
                await asyncio.gather(*(idle_connection(server.url, token, i) for i in ids))
            )

    try:
        async with asyncio.timeout(STEP_TIMEOUT_S):
            await open_many(WARMUP)  # lazy imports, thread pool, first allocations
            before = server.rss_kb()
            await open_many(count)
            after = server.rss_kb()
    finally:
        await asyncio.gather(*(t.close() for t in opened), return_exceptions=True)
    return round((after - before) / count, 1)


def _shared_under_load(
    urls: list[str], token: dict[str, str], run: str, workload: SyncWorkload, db_url: str
) -> dict[str, Any]:
    """The shared fan-in on store ``shared-RUN`` while a pair of SyncClients on store
    ``loaded-RUN`` times commit-to-live-query latency on the first server."""
    shared, loaded = f"shared-{run}", f"loaded-{run}"
    writers, _ = _tokens(db_url, [shared] * workload.clients)
    until, timing, timed = threading.Event(), threading.Event(), {}

    def sample() -> None:
        try:
            pair = commit_to_live(
                urls[0], token[loaded], loaded, 100_000, until=until, timing=timing
            )
            timed.update(asyncio.run(pair))
        finally:
            timing.set()  # a failed pair must not keep the fan-in waiting

    sampler = threading.Thread(target=sample, name="latency under load")
    sampler.start()
    try:
        timing.wait(STEP_TIMEOUT_S)  # the fan-in starts once the pair is timing
        fanin = asyncio.run(
            shared_fanin(
                urls,
                writers,
                shared,
                events=SHARED_PUSHES * workload.batch,
                batch=workload.batch,
            )
        )
    finally:
        until.set()
        sampler.join()
    if not timed:
        raise RuntimeError("the latency pair failed during the shared fan-in (see above)")
    return {
        "shared_fanin_per_s": fanin.per_s,
        "shared_fanin_refused": fanin.refused,
        "shared_fanin_pushes": fanin.pushes,
        "p50_ms_under_load": timed["p50_ms"],
        "p99_ms_under_load": timed["p99_ms"],
        "samples_under_load": timed["samples"],
    }


def _tokens(db_url: str, store_ids: list[str]) -> tuple[list[str], str]:
    """A write token for each store and one for every store, made before the servers start."""
    with ServerDatabase.open(db_url) as database:
        tokens = database.tokens
        each = [tokens.create(s, "write", "bench")[0] for s in store_ids]
        return each, tokens.create("*", "write", "bench idle connections")[0]


def _one_backend(
    db_url: str, workdir: Path, workload: SyncWorkload, step: Callable[[], None]
) -> dict[str, Any]:
    postgres = db_url.startswith("postgresql")
    run = uuid.uuid4().hex[:8]
    fanins = ["raw", "client", *(["raw2"] if postgres else [])]
    ids = {f: [f"{f}-{run}-{i}" for i in range(workload.clients)] for f in fanins}
    latency_store, catchup_store = f"latency-{run}", f"catchup-{run}"
    loaded = [f"loaded-{run}", f"loaded-{run}-2"]
    every = [latency_store, catchup_store, *loaded, *(i for f in fanins for i in ids[f])]
    secrets, star = _tokens(db_url, every)
    token = dict(zip(every, secrets, strict=True))
    pushers = {f: [(i, token[i]) for i in ids[f]] for f in fanins}
    result: dict[str, Any] = {}
    with servers(db_url, workdir, 1) as (server,):
        urls = [server.url]
        latency = asyncio.run(
            commit_to_live(server.url, token[latency_store], latency_store, workload.samples)
        )
        result |= {k: latency[k] for k in ("p50_ms", "p95_ms", "p99_ms")}
        step()
        result["fanin_per_s"] = asyncio.run(fanin_raw(urls, pushers["raw"], workload))
        step()
        result["fanin_syncclient_per_s"] = asyncio.run(
            fanin_sync_clients(urls, pushers["client"], workload)
        )
        step()
        result |= _shared_under_load(urls, token, run, workload, db_url)
        step()
        result["catchup_s"] = asyncio.run(
            catchup_seconds(server.url, token[catchup_store], catchup_store, workdir)
        )
        step()
    if postgres:
        with servers(db_url, workdir, 2) as pair:
            urls = [s.url for s in pair]
            result["fanin_2servers_per_s"] = asyncio.run(fanin_raw(urls, pushers["raw2"], workload))
            shared = _shared_under_load(urls, token, f"{run}-2", workload, db_url)
            result |= {f"{key}_2servers": value for key, value in shared.items()}
        step()
    with servers(db_url, workdir, 1) as (server,):
        result["idle_conn_kb"] = asyncio.run(_idle_kb(server, star, workload.idle))
        step()
    return result


def run_sync_bench(
    workdir: Path,
    *,
    postgres_url: str | None,
    quick: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the benchmark on SQLite, and on PostgreSQL when ``postgres_url`` is given."""
    workload = QUICK if quick else FULL
    step = Steps(6 + (7 if postgres_url else 0), progress)

    result: dict[str, Any] = {
        "benchmark": "sync",
        "quick": quick,
        "samples": workload.samples,
        "clients": workload.clients,
        "events": workload.clients * workload.batches * workload.batch,
        "events_syncclient": workload.clients * workload.client_batches * workload.batch,
        "batch": workload.batch,
        "idle_connections": workload.idle,
        "server": (
            "uvicorn in a process of its own (two for fanin_2servers_per_s), clients in this "
            "one, WebSockets on loopback, tokens required"
        ),
        "latency": (
            "commit on client A to the live-query callback on client B, both SyncClients on "
            f"in-memory synced stores; one commit at a time, after {WARMUP} untimed ones"
        ),
        "fanin_client": "raw protocol (hello, live pull, push, wait push_ack, push the next)",
        "fanin_counted": (
            "from the first push of all clients at once until every client has every push "
            "acknowledged and its last event echoed back through its live pull; one store "
            "and token per client"
        ),
        "fanin_syncclient": (
            "the same with SyncClients on in-memory synced stores: events committed "
            "before the clock starts, counted until every client's last event is confirmed"
        ),
        "catchup": (
            f"an instance with {CATCHUP_PENDING} events committed offline (a synced store "
            f"file) reconnects while another SyncClient commits {CATCHUP_WRITES_PER_S:g} "
            "events/s, one per commit; seconds from its client's start until its last "
            "pending event is confirmed"
        ),
        "shared_fanin": (
            "clients on one store, each with a live pull, each pushing its own events a "
            "batch at a time stamped after the head it knows; a push that lost the race for "
            "the head is refused (server_ahead) and stamped again after the head it lost to; "
            "events appended / seconds from the first push until every client heard the last "
            "event (_2servers: clients spread over two server processes)"
        ),
        "under_load": (
            "the latency pair on a store of its own, timed (after "
            f"{WARMUP} untimed commits) only while the shared fan-in runs"
        ),
        "idle_client": "raw protocol: hello, welcome, live pull, then quiet; one store each",
        "idle_measured": "server VmRSS growth over the idle connections / their number",
        "targets": {
            "p99_ms": {"sqlite": 10, "postgresql": 20},
            "fanin_per_s": 20_000,
            "shared_fanin_per_s": {"sqlite": 10_000, "postgresql_2servers": 20_000},
            "p99_ms_under_load": 50,
            "catchup_s": 5,
            "idle_conn_kb": 100,
        },
        "cpus": os.cpu_count(),
    }
    result["sqlite"] = _one_backend(sqlite_url(workdir / "sync.db"), workdir, workload, step)
    if postgres_url:
        with postgres_schema(postgres_url) as url:
            result["postgresql"] = _one_backend(url, workdir, workload, step)
    else:
        result["postgresql"] = None
        result["postgresql_reason"] = "no PostgreSQL URL (--postgres or PJAI_TEST_POSTGRES_URL)"
    return result
