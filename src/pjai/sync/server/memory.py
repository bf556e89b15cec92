"""Giving the memory a sync server process freed back to the system.

glibc's allocator keeps what a process frees for its next allocations, and returns to
the system only the free room at the top of each heap. A sync server allocates and
frees buffers of megabytes (frames and events, and their copies on the way through the
WebSocket layer and the decoder) in several threads, between what it keeps (cached
events and frames): after a burst of large pushes, hundreds of megabytes of free room
stay with the process (docs/sync-protocol.md, "Limits"). :func:`trim_freed_memory`
asks glibc to give the free pages back (``malloc_trim``) every :data:`TRIM_INTERVAL`
seconds, some 15-25 ms of a worker thread on such heaps; without glibc it does nothing.
Mapping each large buffer on its own (``M_MMAP_THRESHOLD``) bounds that room too, but
tripled the system time a large push costs.
"""

from __future__ import annotations

import asyncio
import ctypes
from collections.abc import Callable

__all__ = ["TRIM_INTERVAL", "malloc_trim", "trim_freed_memory"]

TRIM_INTERVAL = 10.0
"""Seconds between two trims of the process's free memory."""


def malloc_trim() -> Callable[[], int] | None:
    """glibc's ``malloc_trim(0)``: give every free page back to the system, returning 1
    if some was; ``None`` without glibc."""
    try:
        found = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError, TypeError):  # another C library, or none to load
        return None
    found.argtypes, found.restype = [ctypes.c_size_t], ctypes.c_int
    return lambda: int(found(0))


async def trim_freed_memory() -> None:
    """Until cancelled, give the memory the process freed back to the system every
    :data:`TRIM_INTERVAL` seconds, in a worker thread."""
    trim = malloc_trim()
    if trim is None:
        return
    while True:
        await asyncio.sleep(TRIM_INTERVAL)
        await asyncio.to_thread(trim)
