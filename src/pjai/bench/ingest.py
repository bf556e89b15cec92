"""``pjai bench ingest``: a long conversation made into memories, and who waits meanwhile.

One persona gets one conversation of ``messages`` messages (user and assistant in
turn, a second apart), committed in batches. Then a process of its own opens the data
directory (store on, SQLite primary) and ingests the conversation through
:class:`pjai.app.Memories`, as ``pjai memory ingest-conversation`` does, while a thread
commits one memory of another persona again and again, as another window of the web app
would: the longest of those commits is how long the ingest keeps other writers waiting.
The persona does not auto-optimize, so that the figures are the ingest's own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pjai.app import DataDir, Memories
from pjai.bench.processes import resident_kb
from pjai.bench.stats import ms
from pjai.memory import conversations
from pjai.schema import (
    ConversationMessageAdded,
    ConversationStarted,
    MemoryAdded,
    PersonaCreated,
)
from pjai.schema.personas import MemoryConfig
from pjai.schema.types import Progress

__all__ = ["ingest", "run_ingest_bench"]

PERSONA = "ingest-bench"
WRITER = "ingest-bench-writer"
CONVERSATION = "ingest-bench-talk"
BUILD_BATCH = 5_000
WRITER_PAUSE_S = 0.01
"""The other writer's pause between its commits."""

_START = datetime(2026, 1, 1, tzinfo=UTC)


def run_ingest_bench(
    workdir: Path,
    *,
    messages: int = 10_000,
    batch: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Build the conversation in a data directory under ``workdir``, ingest it in a
    process of its own (``batch`` messages per commit instead of
    :data:`~pjai.memory.conversations.INGEST_BATCH`) and report its figures."""
    data = workdir / "data"
    with DataDir(data, environ={}).open() as manager:
        off = MemoryConfig(auto_optimize=False)
        manager.commit(
            PersonaCreated(persona_id=PERSONA, name="Ingest benchmark", memory=off),
            PersonaCreated(persona_id=WRITER, name="Another writer", memory=off),
            ConversationStarted(
                conversation_id=CONVERSATION, persona_id=PERSONA, title="A long talk"
            ),
        )
        for start in range(0, messages, BUILD_BATCH):
            end = min(messages, start + BUILD_BATCH)
            manager.commit(*(_message(i) for i in range(start, end)))
            if progress is not None:
                progress(end, messages)
    args = json.dumps({"path": str(data), "batch": batch})
    command = [sys.executable, "-m", "pjai.bench.worker", "ingest", args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark ingest failed:\n{done.stderr}")
    figures: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return {"benchmark": "ingest", "messages": messages, **figures}


def ingest(path: Path, batch: int | None = None) -> dict[str, Any]:
    """Ingest the conversation of the data directory at ``path`` while another thread
    commits (run in a fresh process, so that its peak RSS is the ingest's)."""
    if batch is not None:
        conversations.INGEST_BATCH = batch  # this process only ingests
    with DataDir(path, environ={}).open() as manager:
        waits: list[float] = []
        failed: list[BaseException] = []
        stop = threading.Event()

        def write() -> None:
            # At least one commit, however short the ingest.
            try:
                while True:
                    began = time.perf_counter()
                    manager.commit(
                        MemoryAdded(
                            memory_id=f"other-{len(waits)}", persona_id=WRITER, content="meanwhile"
                        )
                    )
                    waits.append(time.perf_counter() - began)
                    if stop.wait(WRITER_PAUSE_S):
                        return
            except BaseException as exc:  # said by the benchmark, not lost in the thread
                failed.append(exc)

        writer = threading.Thread(target=write, name="other-writer")
        writer.start()
        began = time.perf_counter()
        try:
            done = Memories(manager).ingest(CONVERSATION)
        finally:
            seconds = time.perf_counter() - began
            stop.set()
            writer.join()
        if failed:
            raise RuntimeError("the other writer's commit failed during the ingest") from failed[0]
    read = done.added + done.skipped + len(done.refused)
    peak_kb = resident_kb(os.getpid(), "the ingest's peak RSS", peak=True)
    return {
        "added": done.added,
        "seconds": round(seconds, 3),
        "messages_per_s": round(read / seconds) if seconds else None,
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "batch_messages": conversations.INGEST_BATCH,
        "writer_commits": len(waits),
        "writer_longest_wait_ms": ms(max(waits)),
    }


def _message(i: int) -> ConversationMessageAdded:
    role = "user" if i % 2 == 0 else "assistant"
    return ConversationMessageAdded(
        message_id=f"{CONVERSATION}-{i:07d}",
        conversation_id=CONVERSATION,
        persona_id=PERSONA,
        role=role,
        content=f"Message {i} of a long talk about the garden: tomatoes, peppers and beans.",
        sent_at=_START + timedelta(seconds=i),
    )
