"""A sync server on loopback for tests: uvicorn in the test's event loop."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from pjai.sync.server import Hub, SyncServer


@contextlib.asynccontextmanager
async def serving(
    hub: Hub, *, ping_interval: float = 20.0, ping_timeout: float = 20.0
) -> AsyncIterator[str]:
    """Serve ``hub`` on a free loopback port; yields the base URL (``http://...``).

    ``ping_interval``, ``ping_timeout``: uvicorn's WebSocket keepalive (its defaults).
    """
    async with SyncServer(hub, ping_interval=ping_interval, ping_timeout=ping_timeout) as server:
        yield await server.start()
