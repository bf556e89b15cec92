"""How uvicorn serves PJai's servers: the listening socket, the HTTP and the WebSocket
protocol.

:func:`listening_socket` is bound before uvicorn starts (connections made meanwhile
wait in its backlog) and sends small frames at once. :func:`websocket_protocol` is
uvicorn's own with a deadline on every close; :func:`http_settings` give uvicorn's h11
protocol a bound on a request's head, a deadline for it and one on every stalled send.
So a client cannot hold a connection for ever by sending nothing, sending a head a
byte at a time or without end, or no longer reading; nor make it queue without bound
what it answers by itself (pongs). The web app is served with the same HTTP settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import struct
from typing import TYPE_CHECKING, Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame

from pjai.errors import ConfigError
from pjai.sync.protocol import MAX_FRAME_BYTES, MAX_HELLO_BYTES

if TYPE_CHECKING:
    from uvicorn._types import ASGIReceiveEvent, ASGISendEvent

__all__ = [
    "FLOODED_BYTES",
    "HEAD_TIMEOUT_S",
    "MAX_HEAD_BYTES",
    "http_settings",
    "listening_socket",
    "websocket_protocol",
]

log = logging.getLogger(__name__)

FLOODED_BYTES = MAX_FRAME_BYTES + 1024 * 1024
"""Bytes waiting to be sent on a connection past which it reads nothing more until they
drain. The application writes one frame at a time, and only once the buffer is under
asyncio's high-water mark; only the peer's pings, which are answered as they are read,
can queue more."""

HEAD_TIMEOUT_S = 10.0
"""Seconds a connection has to send a request's head (its request line and headers):
from its opening, and from the end of each answer on a connection kept open. A browser
sends its head at once, and drops an unused connection it opened ahead of need after as
long."""

MAX_HEAD_BYTES = 16 * 1024
"""The most bytes of a request's head held while it is unfinished; past them it is
answered 400 and its connection closed. (h11 measures what it holds after each read,
so a whole head that comes in one read, at most 256 KiB, is read.) h11's own default,
stated here: browsers' heads stay well under it, cookies included."""


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


def http_settings(
    *, send_timeout: float | None = 10.0, head_timeout: float = HEAD_TIMEOUT_S
) -> dict[str, Any]:
    """uvicorn's settings for a PJai server's HTTP connections: its h11 protocol, whose
    connections are closed when a request's head does not come within ``head_timeout``
    seconds (:class:`_HeadsInTime`) and reset when what they have to send does not move
    for ``send_timeout`` seconds (:class:`_ResetStalledSends`; ``None``: never), and
    unfinished heads of at most :data:`MAX_HEAD_BYTES`.

    h11 rather than httptools (which uvicorn picks when it is installed): uvicorn bounds
    a head's size only with h11. With httptools it keeps every header line a client
    sends while the head goes on, without bound: a client sending header lines without
    end would have the server's memory grow until it is killed.
    """

    class Protocol(_HeadsInTime):
        head_within = head_timeout

    chosen: type[_HeadsInTime] = Protocol
    if send_timeout is not None:
        stall: float = send_timeout

        class Resetting(_ResetStalledSends, Protocol):
            stall_after = stall

        chosen = Resetting
    return {"http": chosen, "h11_max_incomplete_event_size": MAX_HEAD_BYTES}


class _HeadsInTime(H11Protocol):
    """uvicorn's h11 protocol, whose connections are closed when a request's head does
    not come within ``head_within`` seconds: of the connection's opening, or of the end
    of the answer before it.

    uvicorn sets no time on a head. A connection that sends nothing, or a byte now and
    then (each byte stops uvicorn's keep-alive timer, which starts again only once an
    answer has ended), would be kept for ever. Each one holds a file descriptor, and
    is one of the connections uvicorn counts against ``limit_concurrency``: a few
    thousand of them, cheap for a client to keep, would make the sync server answer 503
    to every other request. A request whose head has come is not timed here until it
    is answered; nor is a connection upgraded to a WebSocket, whose protocol has
    deadlines of its own. The clock starts again as an answer ends, even one sent
    before the request's body was all read (a refusal): a client still sending that
    body then has ``head_within`` seconds before its connection is closed.
    """

    head_within: ClassVar[float] = HEAD_TIMEOUT_S
    _head_due: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._await_head()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._stop_awaiting()  # the WebSocket's protocol takes the connection over
        super().handle_websocket_upgrade(event)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_awaiting()
        super().connection_lost(exc)

    def _await_head(self) -> None:
        self._stop_awaiting()
        self._head_due = self.loop.call_later(self.head_within, self._head_late)

    def _stop_awaiting(self) -> None:
        if self._head_due is not None:
            self._head_due.cancel()
            self._head_due = None

    def _head_late(self) -> None:
        self._head_due = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request's head came: the end of its answer waits for the next
        log.debug("closed an HTTP connection that sent no request in %s s", self.head_within)
        self.transport.close()


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

    And it reads a connection's first message, its hello, up to
    :data:`~pjai.sync.protocol.MAX_HELLO_BYTES` only: before it nothing is known of
    the peer, and a message of ``ws_max_size`` held until the hello's deadline would
    let each connection a peer opens hold as much. The parser refuses a larger one
    (close 1009) as its header comes, before holding any of it; later messages have
    ``ws_max_size`` again. (A message that comes in the same read as the hello keeps
    the hello's bound: PJai's client sends nothing more before the welcome.)
    """

    reset_after: ClassVar[float] = 10.0
    _reset: asyncio.TimerHandle | None = None
    _lost = False
    _flooded = False
    _greeted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.conn.max_message_size = MAX_HELLO_BYTES

    def send_receive_event_to_app(self) -> None:
        if not self._greeted:
            self._greeted = True
            self.conn.max_message_size = self.config.ws_max_size
        super().send_receive_event_to_app()

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
