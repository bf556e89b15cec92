"""The server's WebSocket end (Starlette); the client's is :mod:`pjai.sync.websocket`.

Frames are sent as text messages (each one JSON object); a received binary message
is read the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import MutableMapping
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from pjai.sync.transport import ConnectionClosed

__all__ = ["ServerWebSocket"]


class ServerWebSocket:
    """A :class:`~pjai.sync.transport.Transport` over an accepted Starlette WebSocket.

    :meth:`close` gives up after ``close_timeout`` seconds: a client that does not read
    takes no close frame either, and the connection's state must not wait for it.
    """

    def __init__(self, websocket: WebSocket, *, close_timeout: float = 10.0) -> None:
        self._ws = websocket
        self._closed = False
        self._close_timeout = close_timeout

    async def send(self, frame: bytes) -> None:
        if self._closed:
            raise ConnectionClosed("the connection is closed")
        try:
            await self._ws.send_text(frame.decode())
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            self._closed = True
            raise ConnectionClosed("the client went away") from exc

    async def receive(self) -> bytes:
        if self._closed:
            raise ConnectionClosed("the connection is closed")
        message: MutableMapping[str, Any] = await self._ws.receive()
        if message["type"] == "websocket.disconnect":
            self._closed = True
            code = message.get("code", 1005)  # 1005: none received (no close frame)
            raise ConnectionClosed(f"the client closed the connection (code {code})")
        text = message.get("text")
        if text is not None:
            return str(text).encode()
        return bytes(message.get("bytes") or b"")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed:
            return
        self._closed = True
        # The client may be gone already; Starlette says so with any of these. A close
        # that times out leaves the TCP connection to the server's websocket_protocol.
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError, TimeoutError):
            async with asyncio.timeout(self._close_timeout):
                await self._ws.close(code, reason[:120])
