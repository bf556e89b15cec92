"""How uvicorn serves the sync server: the listening socket and the WebSocket protocol.

:func:`listening_socket` is bound before uvicorn starts (connections made meanwhile
wait in its backlog) and sends small frames at once. :func:`websocket_protocol` is
uvicorn's own with a deadline on every close, :func:`http_protocol` uvicorn's HTTP
protocol with a deadline on every stalled send, so that a client that stops reading
cannot hold its connection for ever, nor make it queue without bound what it answers
by itself (pongs).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import struct
from typing import TYPE_CHECKING, ClassVar

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame

from pjai.errors import ConfigError
from pjai.sync.protocol import MAX_FRAME_BYTES

if TYPE_CHECKING:
    from uvicorn._types import ASGIReceiveEvent, ASGISendEvent

__all__ = ["FLOODED_BYTES", "http_protocol", "listening_socket", "websocket_protocol"]

log = logging.getLogger(__name__)

FLOODED_BYTES = MAX_FRAME_BYTES + 1024 * 1024
"""Bytes waiting to be sent on a connection past which it reads nothing more until they
drain. The application writes one frame at a time, and only once the buffer is under
asyncio's high-water mark; only the peer's pings, which are answered as they are read,
can queue more."""


def listening_socket(host: str, port: int, *, backlog: int = 2048) -> socket.socket:
    """A socket listening on ``host:port`` (0: a free port) for uvicorn's ``sockets=``.

    Connections accepted from it send small frames at once (TCP_NODELAY): without it a
    push's ack followed by its echo would wait for the client's delayed ACK, ~40 ms.
    Raises :class:`~pjai.errors.ConfigError` when it cannot listen there.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=backlog)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            message = (
                f"cannot listen on {host}:{port}: the port is in use (another server?); "
                "choose another port, or port 0 for a free one"
            )
        else:
            message = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        raise ConfigError(message) from exc
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # accepted sockets inherit it
    return sock


def http_protocol(send_timeout: float = 10.0) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (httptools when installed, as uvicorn picks it, or h11)
    for the sync server (its ``http`` option), whose connections are reset when what
    they have to send does not move for ``send_timeout`` seconds."""
    base: type[asyncio.Protocol] = H11Protocol
    with contextlib.suppress(ImportError):
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        base = HttpToolsProtocol

    class Protocol(_ResetStalledSends, base):  # type: ignore[valid-type,misc]
        stall_after = send_timeout

    return Protocol


class _ResetStalledSends(asyncio.Protocol):
    """A mixin for uvicorn's HTTP protocols: a connection whose client takes nothing of
    what it is sent for ``stall_after`` seconds is reset.

    uvicorn sets no time on an HTTP answer's sending: a client that asks for a large
    body (``/pull``, ``GET /keys``) and reads nothing would keep its connection, the
    body and its slot (:class:`~pjai.sync.server.places.Bodies`) for ever. The clock
    runs while the write buffer is over asyncio's high-water mark and restarts whenever
    the client has taken some of it, so a slow client that reads goes on.
    """

    stall_after: ClassVar[float] = 10.0
    transport: asyncio.Transport
    _stall: asyncio.TimerHandle | None = None
    _unsent = 0

    def pause_writing(self) -> None:
        super().pause_writing()
        self._watch()

    def resume_writing(self) -> None:
        self._unwatch()
        super().resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._unwatch()
        super().connection_lost(exc)

    def _watch(self) -> None:
        self._unwatch()
        self._unsent = self.transport.get_write_buffer_size()
        self._stall = asyncio.get_running_loop().call_later(self.stall_after, self._check)

    def _unwatch(self) -> None:
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None

    def _check(self) -> None:
        self._stall = None
        if self.transport.get_write_buffer_size() < self._unsent:
            self._watch()  # the client reads, slowly
            return
        log.debug("reset an HTTP connection that took nothing for %s s", self.stall_after)
        _reset(self.transport)


def websocket_protocol(close_timeout: float = 10.0) -> type[WebSocketsSansIOProtocol]:
    """uvicorn's WebSocket protocol for the sync server (its ``ws`` option), whose
    connections end within ``close_timeout`` seconds of starting to close."""

    class Protocol(_ResetLateCloses):
        reset_after = close_timeout

    return Protocol


class _ResetLateCloses(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, with a deadline on every close.

    uvicorn writes a close frame only once its write buffer is under its limit, and
    ends a connection with ``transport.close()``, which waits for that buffer to drain:
    a client that keeps its TCP connection open without reading would keep the
    connection, its buffers and its application task for ever. As the ``websockets``
    library's own server does, a close not done within ``reset_after`` seconds aborts
    the connection; with an RST, so that the kernel does not keep the unread data
    either. Closes start when the application closes or returns, when uvicorn's
    keepalive ping gets no answer and when the server shuts down.

    It also lets go of each message's payload once uvicorn has handed it on: the
    WebSocket parser would keep the last one read, up to ``ws_max_size``, for as long
    as the connection is idle; and takes a handshake answered with an HTTP refusal as
    complete, as uvicorn's wsproto protocol does.
    """

    reset_after: ClassVar[float] = 10.0
    _reset: asyncio.TimerHandle | None = None
    _lost = False
    _flooded = False

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # uvicorn answers each ping as it reads it, whether or not the peer reads: one
        # that sends pings and reads nothing would have the answers kept without bound.
        if self.transport.get_write_buffer_size() > FLOODED_BYTES and not self._flooded:
            self._flooded = True
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._flooded:
            self._flooded = False
            if not self.read_paused:  # uvicorn's own pause: a message the app has not read
                self.transport.resume_reading()

    # The parser (a generator) holds the last frame it read until the next one comes;
    # once uvicorn has taken a data frame's payload, the frame needs it no more.

    def handle_text(self, event: Frame) -> None:
        super().handle_text(event)
        event.data = b""

    def handle_bytes(self, event: Frame) -> None:
        super().handle_bytes(event)
        event.data = b""

    def handle_cont(self, event: Frame) -> None:
        super().handle_cont(event)
        event.data = b""

    async def receive(self) -> ASGIReceiveEvent:
        message = await super().receive()
        if self._flooded:
            self.transport.pause_reading()  # uvicorn resumed reading for the next message
        return message

    async def send(self, message: ASGISendEvent) -> None:
        if message["type"] == "websocket.close":
            self._reset_unless_closed()  # started before the wait for buffer room
        await super().send(message)
        if message["type"] == "websocket.http.response.body" and not message.get("more_body"):
            # A handshake answered with a refusal (429, 403) is done with: uvicorn would
            # log an error for each one, "returned without completing handshake".
            self.handshake_complete = True

    async def run_asgi(self) -> None:
        try:
            await super().run_asgi()
        finally:
            self._reset_unless_closed()

    def keepalive_timeout(self) -> None:
        super().keepalive_timeout()
        self._reset_unless_closed()

    def shutdown(self) -> None:
        super().shutdown()
        self._reset_unless_closed()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if self._reset is not None:
            self._reset.cancel()
        super().connection_lost(exc)

    def _reset_unless_closed(self) -> None:
        if self._reset is None and not self._lost:
            self._reset = asyncio.get_running_loop().call_later(self.reset_after, self._abort)

    def _abort(self) -> None:
        log.debug(
            "reset a WebSocket connection not closed within %s s (%d bytes unsent)",
            self.reset_after,
            self.transport.get_write_buffer_size(),
        )
        _reset(self.transport)


def _reset(transport: asyncio.Transport) -> None:
    """End a connection at once with an RST, dropping what it had yet to send."""
    sock = transport.get_extra_info("socket")
    if sock is not None:  # linger 0: close() sends an RST and drops the unsent data
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
