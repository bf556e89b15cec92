"""``pjai bench crypto``: what field encryption costs.

- ``encrypt_decrypt_us_per_event``: sealing and opening one memory event's sensitive
  fields (AES-256-GCM, padded), microseconds, median of three passes.
- ``commit_batched_ratio``: batched commits a second into a file store with encryption
  on, over the same without, measured back to back (both figures are reported).
- ``sync_p99_ms_encrypted``: a commit on instance A until B's live query has it, through
  a sync server on SQLite, both instances sealing and opening (they share the keys);
  ``sync_p99_ms_plain`` is the same run without encryption.

- ``erase_10k_memories_s``: erasing a persona with 10,000 memories from an encrypted
  data directory (store and embedded SQL primary): the erasure event, key destruction
  and the files rewritten (:func:`pjai.app.privacy.erase_persona`).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

from pjai.app import DataDir, erase_persona, init_security
from pjai.bench.sync import commit_to_live
from pjai.bench.syncserver import servers
from pjai.bench.workload import Steps, load_memories, memory_events, persona_events, persona_id
from pjai.schema import SCHEMA
from pjai.schema.event import Schema
from pjai.schema.types import Progress
from pjai.security import Argon2Params, FieldCodec, KeyRing
from pjai.sql.engine import sqlite_url
from pjai.store import Store
from pjai.sync.server import ServerDatabase

__all__ = ["run_crypto_bench"]

_PASSPHRASE = "the benchmark's own passphrase"


def run_crypto_bench(
    workdir: Path, *, quick: bool = False, progress: Progress | None = None
) -> dict[str, Any]:
    """Run the crypto benchmark in ``workdir``; its figures."""
    events, memories, samples = (2_000, 5_000, 100) if quick else (10_000, 50_000, 1_000)
    steps = Steps(4, progress)
    # The passphrase's stretching is not what is measured here: the lightest settings.
    params = Argon2Params(iterations=1, lanes=1, memory_kib=8 * 1024)
    with KeyRing.create(workdir / "keys.db", passphrase=_PASSPHRASE, params=params) as ring:
        sealed = SCHEMA.with_codec(FieldCodec(ring))
        result: dict[str, Any] = {"workload": {"events": events, "memories": memories}}
        result["encrypt_decrypt_us_per_event"] = _seal_open_us(sealed, events)
        steps()
        plain_rate, sealed_rate = _batched(workdir, memories, sealed)
        result["commit_batched_per_s_plain"] = round(plain_rate)
        result["commit_batched_per_s_encrypted"] = round(sealed_rate)
        result["commit_batched_ratio"] = round(sealed_rate / plain_rate, 3)
        steps()
        result |= _sync(workdir, samples, sealed)
        steps()
    result["erase_10k_memories_s"] = _erase(workdir / "erase", 2_000 if quick else 10_000, params)
    result["workload"]["erased_memories"] = 2_000 if quick else 10_000
    steps()
    return result


def _seal_open_us(schema: Schema, count: int) -> float:
    codec = schema.codec
    encoded = [SCHEMA.encode(e)[::2] for e in memory_events(count, 10)]
    ids = [f"event-{i}" for i in range(count)]
    passes = []
    for _ in range(3):
        started = time.perf_counter()
        for event_id, (name, args) in zip(ids, encoded, strict=True):
            codec.unseal(event_id, name, codec.seal(event_id, name, args))
        passes.append((time.perf_counter() - started) / count * 1e6)
    return round(statistics.median(passes), 2)


def _batched(workdir: Path, memories: int, sealed: Schema) -> tuple[float, float]:
    """Batched commit rates without and with encryption: two rounds, plain first in
    one and sealed first in the other; the better of each."""
    rates: dict[str, list[float]] = {"plain": [], "sealed": []}
    for round_ in range(2):
        order = ("plain", "sealed") if round_ == 0 else ("sealed", "plain")
        for kind in order:
            schema = SCHEMA if kind == "plain" else sealed
            path = workdir / f"{kind}-{round_}.db"
            with Store.open(path, schema=schema) as store:
                rates[kind].append(load_memories(store.commit, 10, memories, 1_000))
    return max(rates["plain"]), max(rates["sealed"])


def _sync(workdir: Path, samples: int, sealed: Schema) -> dict[str, float]:
    db_url = sqlite_url(workdir / "sync-server.db")
    with ServerDatabase.open(db_url) as database:
        tokens = {s: database.tokens.create(s, "write", "bench")[0] for s in ("plain", "sealed")}
    with servers(db_url, workdir, 1) as (server,):
        plain = asyncio.run(commit_to_live(server.url, tokens["plain"], "plain", samples))
        encrypted = asyncio.run(
            commit_to_live(server.url, tokens["sealed"], "sealed", samples, schema=sealed)
        )
    return {
        "sync_p99_ms_encrypted": encrypted["p99_ms"],
        "sync_p95_ms_encrypted": encrypted["p95_ms"],
        "sync_p99_ms_plain": plain["p99_ms"],
        "sync_p95_ms_plain": plain["p95_ms"],
    }


def _erase(path: Path, count: int, params: Argon2Params) -> float:
    data = DataDir(path, environ={"PJAI_PASSPHRASE": _PASSPHRASE})
    init_security(data, passphrase=_PASSPHRASE, params=params)
    with data.open() as manager:
        manager.commit(*persona_events(2))
        events = list(memory_events(count * 2, 2))  # half of them for the erased persona
        for start in range(0, len(events), 1_000):
            manager.commit(*events[start : start + 1_000])
        started = time.perf_counter()
        erase_persona(data, manager, persona_id(0))
        return round(time.perf_counter() - started, 3)
