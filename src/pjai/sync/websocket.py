"""The WebSocket adapters: a client end (``websockets``) and a server end (Starlette).

Frames are sent as text messages (each one JSON object); a received binary message
is read the same way. Compression is off: frames are small and latency matters more.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import MutableMapping
from typing import Any

import websockets
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection, connect

from pjai.sync.hub import Connector
from pjai.sync.protocol import MAX_FRAME_BYTES
from pjai.sync.transport import ConnectionClosed, Transport

__all__ = ["ClientWebSocket", "ServerWebSocket", "websocket_connector"]


class ClientWebSocket:
    """A :class:`~pjai.sync.transport.Transport` over a ``websockets`` client connection."""

    def __init__(self, connection: ClientConnection) -> None:
        self._ws = connection

    async def send(self, frame: bytes) -> None:
        try:
            await self._ws.send(frame.decode())
        except websockets.ConnectionClosed as exc:
            raise ConnectionClosed(f"the server closed the connection: {exc}") from exc

    async def receive(self) -> bytes:
        try:
            message = await self._ws.recv()
        except websockets.ConnectionClosed as exc:
            raise ConnectionClosed(f"the server closed the connection: {exc}") from exc
        return message.encode() if isinstance(message, str) else message

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._ws.close(code, reason[:120])


def websocket_connector(url: str, token: str = "", *, open_timeout: float = 10.0) -> Connector:
    """Connects to a sync server's WebSocket endpoint (``ws://host:port/sync``)."""
    headers = {"Authorization": f"Bearer {token}"} if token else None

    async def open_connection() -> Transport:
        try:
            connection = await connect(
                url,
                additional_headers=headers,
                compression=None,
                max_size=MAX_FRAME_BYTES,
                ping_interval=None,  # the protocol pings itself
                open_timeout=open_timeout,
                proxy=None,
            )
        except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
            raise ConnectionClosed(f"cannot connect to {url}: {exc}") from exc
        return ClientWebSocket(connection)

    return open_connection


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
