"""The client's WebSocket end (``websockets``); the server's is
:mod:`pjai.sync.server.websocket`.

Frames are sent as text messages (each one JSON object); a received binary message
is read the same way. Compression is off: frames are small and latency matters more.
"""

from __future__ import annotations

import asyncio

import msgspec
import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.uri import parse_uri

from pjai.errors import ConfigError
from pjai.sync.clientside import asked_wait
from pjai.sync.protocol import MAX_FRAME_BYTES
from pjai.sync.transport import ConnectionClosed, Connector, Transport

__all__ = ["CLOSE_TIMEOUT_S", "ClientWebSocket", "websocket_connector"]

CLOSE_TIMEOUT_S = 10.0
"""How long a close may wait for the server to take the closing frame; then the
connection is cut."""


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
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self._ws.close(code, reason[:120])
        except TimeoutError:
            self._ws.transport.abort()  # a server that reads nothing never takes it


class _NoRedirects(connect):
    """A connection that takes an HTTP redirect as a refusal: a sync server does not
    send one, and a captive portal or anyone between must not send the client (and its
    token) elsewhere."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


def websocket_connector(url: str, token: str = "", *, open_timeout: float = 10.0) -> Connector:
    """Connects to a sync server's WebSocket endpoint (``ws://host:port/sync``). A failure
    to connect, whatever the other end answered, is a :class:`ConnectionClosed`, which
    the client retries; a URL that is not a WebSocket URL is a :class:`ConfigError` at
    once."""
    try:
        parse_uri(url)
    except websockets.InvalidURI as exc:
        raise ConfigError(f"{url!r} is not a sync server's address: {exc}") from None
    headers = {"Authorization": f"Bearer {token}"} if token else None

    async def open_connection() -> Transport:
        try:
            connection = await _NoRedirects(
                url,
                additional_headers=headers,
                compression=None,
                max_size=MAX_FRAME_BYTES,
                ping_interval=None,  # the protocol pings itself
                open_timeout=open_timeout,
                proxy=None,
            )
        # WebSocketException: any refused or broken handshake; ValueError: an answer
        # websockets cannot make sense of (a port out of range in a header).
        except (OSError, TimeoutError, websockets.WebSocketException, ValueError) as exc:
            raise ConnectionClosed(
                f"cannot connect to {url}: {_why(exc)}", retry_after=_asked_wait(exc)
            ) from exc
        return ClientWebSocket(connection)

    return open_connection


def _asked_wait(error: BaseException) -> float | None:
    """The seconds a server that refused the connection as too soon (429) asked the
    client to wait: its body's ``retry_after``, else its ``Retry-After`` header."""
    if not isinstance(error, websockets.InvalidStatus) or error.response.status_code != 429:
        return None
    response = error.response
    return asked_wait(response.body or b"", response.headers.get("Retry-After"))


def _why(error: BaseException) -> str:
    """Why a connection failed, for a person: the system's words without errno codes."""
    if isinstance(error, ConnectionRefusedError):
        return "nothing listens there (connection refused)"
    if isinstance(error, TimeoutError):
        return "no answer in time"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror[0].lower() + error.strerror[1:]
    if isinstance(error, websockets.InvalidStatus) and 300 <= error.response.status_code < 400:
        where = error.response.headers.get("Location", "nowhere")[:300]
        return f"{error}: it redirects to {where}, which a sync server does not do"
    if isinstance(error, websockets.InvalidStatus):
        # A refusal that says why (a sync server's 403 to a name it does not answer to).
        try:
            said = msgspec.json.decode(error.response.body or b"")
        except msgspec.DecodeError:
            said = None
        if isinstance(said, dict) and isinstance(said.get("message"), str):
            return f"{error} ({said['message'][:300]})"
    return str(error)
