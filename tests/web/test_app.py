"""What the pages of one app share."""

from __future__ import annotations

import threading

from pjai.app.upkeep import checkup
from pjai.web import WebApp
from pjai.web.app import SharedReading


def test_a_shared_reading_is_read_again_only_when_old() -> None:
    reads: list[int] = []

    def read() -> int:
        reads.append(len(reads))
        return len(reads)

    fresh = SharedReading(read, max_age_s=3600)
    assert [fresh.get() for _ in range(5)] == [1] * 5
    stale = SharedReading(read, max_age_s=0)
    assert stale.get() != stale.get()


def test_tabs_reading_together_share_one_read() -> None:
    started, release = threading.Event(), threading.Event()
    calls = []

    def slow() -> str:
        calls.append(1)
        started.set()
        release.wait(5)
        return "read"

    shared = SharedReading(slow, max_age_s=3600)
    found: list[str] = []
    first = threading.Thread(target=lambda: found.append(shared.get()))
    first.start()
    started.wait(5)
    second = threading.Thread(target=lambda: found.append(shared.get()))
    second.start()
    release.set()
    first.join()
    second.join()
    assert found == ["read", "read"]
    assert calls == [1]


def test_the_app_reads_health_through_one_shared_reading(web: WebApp) -> None:
    assert web.health.get() is web.health.get()
    assert web.health.get().status == "ok"


def test_the_app_gives_new_memories_vectors_in_the_background(web: WebApp) -> None:
    indexer = web.indexer
    assert indexer is not None
    persona = web.services.personas.create("Ada").id
    web.services.memories.add(persona, "Fixed the leaking kitchen tap")
    assert indexer.wait_caught_up(60)  # the first run loads the model
    found = checkup(web.data_dir)
    assert not isinstance(found.vectors, str)
    assert (found.vectors.memories, found.vectors.waiting) == (1, 0)
