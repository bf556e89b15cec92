"""A sync server on loopback for tests: uvicorn in the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import uvicorn

from pjai.sync.hub import Hub
from pjai.sync.server import create_app, listening_socket, websocket_protocol
from pjai.sync.tokens import TokenStore


@contextlib.asynccontextmanager
async def serving(
    hub: Hub,
    tokens: TokenStore | None = None,
    *,
    listen_url: str | None = None,
    ping_interval: float = 20.0,
    ping_timeout: float = 20.0,
) -> AsyncIterator[str]:
    """Serve ``hub`` on a free loopback port; yields the base URL (``http://...``).

    ``ping_interval``, ``ping_timeout``: uvicorn's WebSocket keepalive (its defaults).
    """
    app = create_app(hub, tokens, listen_url=listen_url)
    # A socket listening before uvicorn starts: early connections wait in its backlog.
    sock = listening_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    ws = websocket_protocol(hub.close_timeout)
    config = uvicorn.Config(
        app,
        ws=ws,
        ws_ping_interval=ping_interval,
        ws_ping_timeout=ping_timeout,
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
