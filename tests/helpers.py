"""Event builders and other helpers shared by the tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import pjai.schema.busy
from pjai.errors import UnknownEventWarning
from pjai.schema import ROOT, SCHEMA, Event, EventRecord, MemoryAdded, PersonaCreated, Schema
from pjai.schema.codec import PLAIN, Codec
from pjai.schema.records import stamp
from pjai.schema.types import utc_now
from pjai.store import Store

if TYPE_CHECKING:
    from pjai.sql.writer import Projection


def persona(persona_id: str = "p1", name: str | None = None) -> PersonaCreated:
    """A PersonaCreated event with defaults."""
    return PersonaCreated(persona_id=persona_id, name=name or persona_id.upper())


def memory(memory_id: str, persona_id: str = "p1", **fields: Any) -> MemoryAdded:
    """A MemoryAdded event with defaults."""
    values: dict[str, Any] = {"content": f"content of {memory_id}", **fields}
    return MemoryAdded(memory_id=memory_id, persona_id=persona_id, **values)


def compressible_archive(where: Path, memories: int, content_bytes: int) -> tuple[Path, int]:
    """An archive (``where/archive.zip``) of a persona with ``memories`` memories of
    about ``content_bytes`` each, compressing well: a small zip of many bytes once
    unzipped, which are returned with it."""
    # Imported here: the hybrid manager loads the SQL and store layers.
    from pjai.hybrid import HybridDatabaseManager, export_archive

    with HybridDatabaseManager.open(where / "data", environ={}) as manager:
        manager.commit(persona("p1"))
        text = "lorem ipsum " * (content_bytes // 12)
        for n in range(memories):
            manager.commit(memory(f"m{n}", content=f"{n} {text}"))
        manifest = export_archive(manager, where / "archive.zip")
    return where / "archive.zip", sum(file.size for file in manifest.files.values())


def history(
    events: Sequence[tuple[Event, datetime] | Event],
    *,
    schema: Schema = SCHEMA,
    client_id: str = "c",
) -> list[EventRecord]:
    """``events`` as one instance's confirmed history from position 1, each committed
    at its time (now when none is given)."""
    records: list[EventRecord] = []
    for item in events:
        event, at = item if isinstance(item, tuple) else (item, utc_now())
        name, _, args = schema.encode(event)
        after = records[-1].position if records else ROOT
        records += stamp(
            [(name, args)],
            after=after,
            generation=0,
            client_id=client_id,
            session_id=client_id,
            at=at,
            codec=schema.codec,
        )
    return records


def projections(events: Sequence[Event], *, codec: Codec = PLAIN) -> list[Projection]:
    """``events`` as the SQL writer takes them: one instance's records from position 1,
    their arguments sealed by ``codec``, each with its persona and ops."""
    from pjai.sql.writer import Projection  # the SQL layer, for the tests that write to it

    encoded = [SCHEMA.encode(event) for event in events]
    records = stamp(
        ((name, args) for name, _, args in encoded),
        after=ROOT,
        generation=0,
        client_id="c",
        session_id="s",
        at=utc_now(),
        codec=codec,
    )
    done = [SCHEMA.materialize(r, p) for r, (_, p, _) in zip(records, encoded, strict=True)]
    return [Projection(d.record, d.persona_id, d.ops) for d in done]


def persona_row(persona_id: str = "p1", at: datetime | None = None) -> dict[str, Any]:
    """A ``personas`` row as the materializers would write it, for tests that fill SQL
    tables directly (every setting off or minimal)."""
    at = at or utc_now()
    flags = [
        "privacy_data_collection",
        "privacy_analytics",
        "privacy_share_with_researchers",
        "privacy_personality_analysis",
        "privacy_memory_retention",
        "privacy_export_allowed",
        "is_active",
    ]
    return {
        "id": persona_id,
        "name": "P",
        "description": "",
        "personality": {},
        "communication_style": "",
        "memory_max_memories": 10,
        "memory_importance_threshold": 0.5,
        "memory_auto_optimize": False,
        "memory_retention_action": "archive",
        "memory_capacity_hot": 1,
        "memory_capacity_warm": 1,
        "memory_capacity_cold": 1,
        "memory_scoring": {},
        **dict.fromkeys(flags, False),
        "created_at": at,
        "updated_at": at,
    }


def take_from_a_newer_pjai(store: Store) -> None:
    """Take into ``store`` one event of a vocabulary this PJai does not know
    (``v9.FromTheFuture``), as a newer PJai's sync would bring it: kept, not applied."""
    future = stamp(
        [("v9.FromTheFuture", b"{}")],
        after=store.head,
        generation=0,
        client_id="newer",
        session_id="newer",
        at=utc_now(),
    )
    with pytest.warns(UnknownEventWarning):
        store.ingest(future)


def at_once(count: int, work: Callable[[int], object]) -> list[BaseException]:
    """Run ``work(0)`` .. ``work(count - 1)`` in threads released together; what they
    raised."""
    start = threading.Barrier(count)
    raised: list[BaseException] = []

    def run(i: int) -> None:
        start.wait()
        try:
            work(i)
        except BaseException as exc:
            raised.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return raised


WAIT_S = 60
"""How long a test waits for another thread or process to get somewhere."""


@contextmanager
def held_in_a_thread(
    monkeypatch: pytest.MonkeyPatch,
    owner: Any,
    name: str,
    work: Callable[[], object],
    *,
    after: bool = True,
) -> Iterator[dict[str, object]]:
    """Run ``work`` on a thread of its own, held in a call of ``owner.name`` (once that
    has returned, or before it begins unless ``after``) until the block ends; the block
    runs while it is held. Yields the outcome, filled in once the thread is done:
    ``{"done": result}`` or ``{"error": exception}``."""
    inside, go = threading.Event(), threading.Event()
    original = getattr(owner, name)
    worker: list[threading.Thread] = []

    def hold() -> None:
        if threading.current_thread() in worker:
            inside.set()
            assert go.wait(WAIT_S)

    def holding(*args: Any, **kwargs: Any) -> Any:
        if not after:
            hold()
        result = original(*args, **kwargs)
        if after:
            hold()
        return result

    monkeypatch.setattr(owner, name, holding)
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["done"] = work()
        except Exception as exc:
            outcome["error"] = exc

    worker.append(threading.Thread(target=run))
    worker[0].start()
    try:
        assert inside.wait(WAIT_S), outcome
        yield outcome
    finally:
        go.set()
        worker[0].join(WAIT_S)
    assert not worker[0].is_alive()


@dataclass
class BusyLooks:
    """How long PJai's busy handler chose to wait before each look at a lock another
    connection holds (:func:`record_busy_looks`)."""

    waits: list[float] = field(default_factory=list)
    many: threading.Event = field(default_factory=threading.Event)
    """Set once there were 50 looks."""


def record_busy_looks(monkeypatch: pytest.MonkeyPatch) -> BusyLooks:
    """Record the waits of PJai's busy handler instead of sleeping them, so that a test
    sees a waiter look again and again without waiting for it."""
    looks = BusyLooks()

    class Clock:
        monotonic = staticmethod(time.monotonic)

        @staticmethod
        def sleep(seconds: float) -> None:
            looks.waits.append(seconds)
            if len(looks.waits) >= 50:
                looks.many.set()
            time.sleep(0)

    monkeypatch.setattr(pjai.schema.busy, "time", Clock)
    return looks
