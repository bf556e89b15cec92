"""A served sync server gives the memory it freed back to the system, now and then."""

from __future__ import annotations

import asyncio
import platform

import pytest

from pjai.sync.server import memory
from pjai.sync.server.hub import Hub
from pjai.sync.server.log import MemoryLog
from tests.sync.servers import serving

pytestmark = pytest.mark.anyio

WAIT = 10  # seconds before a wait counts as a hang


async def test_a_served_hub_trims_the_freed_memory_until_it_stops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    trimmed = asyncio.Event()
    calls = 0

    def trim() -> int:  # in a worker thread, as malloc_trim takes a while
        nonlocal calls
        calls += 1
        if calls == 2:
            loop.call_soon_threadsafe(trimmed.set)
        return 1

    monkeypatch.setattr(memory, "malloc_trim", lambda: trim)
    monkeypatch.setattr(memory, "TRIM_INTERVAL", 0.01)
    async with serving(Hub(MemoryLog(), None)):
        async with asyncio.timeout(WAIT):
            await trimmed.wait()
    running = [t for t in asyncio.all_tasks() if "trim_freed_memory" in repr(t.get_coro())]
    assert running == []  # none once the server stopped


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_glibc_s_malloc_trim_is_found() -> None:
    trim = memory.malloc_trim()
    assert trim is not None
    assert trim() in (0, 1)  # whether it gave memory back
