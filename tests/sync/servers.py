"""A sync server on loopback for tests: uvicorn in the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import uvicorn

from pjai.sync.hub import Hub
from pjai.sync.server import create_app, listening_socket
from pjai.sync.tokens import TokenStore


@contextlib.asynccontextmanager
async def serving(
    hub: Hub, tokens: TokenStore | None = None, *, listen_url: str | None = None
) -> AsyncIterator[str]:
    """Serve ``hub`` on a free loopback port; yields the base URL (``http://...``)."""
    app = create_app(hub, tokens, listen_url=listen_url)
    # A socket listening before uvicorn starts: early connections wait in its backlog.
    sock = listening_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
