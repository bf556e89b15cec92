"""`pjai sync-server`: the Starlette application around a :class:`~pjai.sync.hub.Hub`.

Routes: ``/sync`` (WebSocket, the protocol), ``/pull`` (HTTP catch-up: one events
frame), ``/health`` and ``/metrics`` (Prometheus text; needs an admin token when
tokens are required). A bearer token comes in the ``Authorization`` header or in the
hello frame. On PostgreSQL each process listens for ``pjai_sync`` notifications and
refreshes the store named; its timer refreshes anyway. uvicorn serves the app with
:func:`websocket_protocol`, which puts a deadline on every close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import psycopg
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from pjai.errors import PjaiError
from pjai.schema.records import Position
from pjai.sql.engine import PoolConfig, create_sql_engine
from pjai.sync.hub import Hub
from pjai.sync.protocol import MAX_EVENTS_PER_FRAME, Events, encode, fit_frame
from pjai.sync.sqllog import NOTIFY_CHANNEL, SqlLog
from pjai.sync.tokens import RateLimiter, Role, Token, TokenStore, can
from pjai.sync.websocket import ServerWebSocket

if TYPE_CHECKING:
    from uvicorn._types import ASGISendEvent

__all__ = [
    "ServerConfig",
    "create_app",
    "listen_for_wakeups",
    "listening_socket",
    "open_server",
    "websocket_protocol",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """How a sync server process runs."""

    db_url: str
    require_tokens: bool = True
    poll_interval: float = 1.0
    send_timeout: float = 10.0
    hello_timeout: float = 10.0
    """Seconds a new connection has to say hello in; then it is closed (``no_hello``)."""
    close_timeout: float = 10.0
    """Seconds a connection has to close in, once the server closes it; then its TCP
    connection is reset (a client that does not read takes no close frame)."""
    rate: float = 50_000.0
    """Events a second one token may push (bursts up to twice that, at least one full push)."""


def open_server(config: ServerConfig) -> tuple[Hub, TokenStore]:
    """The hub and token store for ``config`` (tables created if needed)."""
    # No pre-ping: a round trip per push. A dead connection fails that one request with
    # server_error (the client retries) and the pool drops it.
    engine = create_sql_engine(config.db_url, PoolConfig(size=10, overflow=20, pre_ping=False))
    server_log = SqlLog(engine)
    tokens = TokenStore(engine)
    hub = Hub(
        server_log,
        tokens.check if config.require_tokens else None,
        # A burst always admits one full push, or a low rate would refuse every one.
        limiter=RateLimiter(config.rate, max(config.rate * 2, MAX_EVENTS_PER_FRAME)),
        poll_interval=config.poll_interval,
        send_timeout=config.send_timeout,
        hello_timeout=config.hello_timeout,
        close_timeout=config.close_timeout,
    )
    return hub, tokens


def listening_socket(host: str, port: int, *, backlog: int = 2048) -> socket.socket:
    """A socket listening on ``host:port`` (0: a free port) for uvicorn's ``sockets=``.

    Connections accepted from it send small frames at once (TCP_NODELAY): without it a
    push's ack followed by its echo would wait for the client's delayed ACK, ~40 ms.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=backlog)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # accepted sockets inherit it
    return sock


def _bearer(header: str | None) -> str:
    if header and header.lower().startswith("bearer "):
        return header[7:].strip()
    return ""


def create_app(hub: Hub, tokens: TokenStore | None, *, listen_url: str | None = None) -> Starlette:
    """The server's ASGI application; ``listen_url``: PostgreSQL to LISTEN on.

    Serve it with uvicorn's ``ws=websocket_protocol(hub.close_timeout)``, or the TCP
    connection of a client that stops reading stays open after the server closed it.
    """

    def authorized(request: Request, store_id: str, role: Role) -> Token | Response | None:
        if hub.authenticate is None:
            return None
        token = hub.authenticate(_bearer(request.headers.get("authorization")))
        if token is None:
            return JSONResponse({"error": "unauthorized", "message": "a valid token"}, 401)
        if token.store_id not in (store_id, "*") or not can(token.role, role):
            message = f"the token may not {role} store {store_id!r}"
            return JSONResponse({"error": "forbidden", "message": message}, 403)
        return token

    async def sync(websocket: WebSocket) -> None:
        await websocket.accept()
        token = _bearer(websocket.headers.get("authorization"))
        transport = ServerWebSocket(websocket, close_timeout=hub.close_timeout)
        await hub.serve(transport, header_token=token)

    async def pull(request: Request) -> Response:
        params = request.query_params
        store_id = params.get("store_id", "")
        try:
            after = int(params.get("after", "0"))
            limit = min(int(params.get("limit", str(MAX_EVENTS_PER_FRAME))), MAX_EVENTS_PER_FRAME)
        except ValueError:
            return JSONResponse({"error": "bad_request", "message": "after, limit: integers"}, 400)
        if not store_id or after < 0 or limit < 1:
            message = "give store_id, after >= 0 and limit >= 1"
            return JSONResponse({"error": "bad_request", "message": message}, 400)
        denied = authorized(request, store_id, "read")
        if isinstance(denied, Response):
            return denied
        head = await asyncio.to_thread(hub.log.refresh, store_id)
        if after > head.global_seq:
            message = (
                f"the store is at {head}, before the cursor e{after}; is this the same "
                "server (backend id) the client synced with?"
            )
            return JSONResponse({"error": "bad_cursor", "message": message}, 400)
        events = fit_frame(await asyncio.to_thread(hub.log.read, store_id, Position(after), limit))
        last = events[-1].position if events else Position(after)
        frame = Events(events=events, head=head, more=last.key < head.key)
        return Response(encode(frame), media_type="application/json")

    async def health(_: Request) -> Response:
        try:
            await asyncio.to_thread(hub.log.head, "")
        except PjaiError as exc:
            return JSONResponse({"status": "unavailable", "error": str(exc)}, 503)
        body = {
            "status": "ok",
            "backend_id": hub.log.backend_id,
            "connections": hub.connections,
            "stores_watched": len(hub.feeds),
        }
        return JSONResponse(body)

    async def metrics(request: Request) -> Response:
        denied = authorized(request, "*", "admin")
        if isinstance(denied, Response):
            return denied
        return Response(generate_latest(hub.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await hub.start()
        listener = asyncio.create_task(listen_for_wakeups(listen_url, hub)) if listen_url else None
        try:
            yield
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
            await hub.stop()

    routes = [
        WebSocketRoute("/sync", sync),
        Route("/pull", pull),
        Route("/health", health),
        Route("/metrics", metrics),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


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
    """

    reset_after: ClassVar[float] = 10.0
    _reset: asyncio.TimerHandle | None = None
    _lost = False

    async def send(self, message: ASGISendEvent) -> None:
        if message["type"] == "websocket.close":
            self._reset_unless_closed()  # started before the wait for buffer room
        await super().send(message)

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
        sock = self.transport.get_extra_info("socket")
        if sock is not None:  # linger 0: close() sends an RST and drops the unsent data
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()


async def listen_for_wakeups(url: str, hub: Hub) -> None:
    """LISTEN for appends made by other processes and refresh those stores."""
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    delay = 0.5
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                delay = 0.5
                for store_id in list(hub.feeds):
                    hub.wake(store_id)  # what was missed while not listening
                own = getattr(hub.log, "instance", None)
                async for note in conn.notifies():
                    origin, tab, store_id = note.payload.partition("\t")
                    if not tab:  # a bare store id
                        origin, store_id = "", origin
                    if origin != own:  # this process knows its own appends already
                        hub.wake(store_id)
        except psycopg.Error as exc:
            log.warning("LISTEN %s failed (%s); polling until it is back", NOTIFY_CHANNEL, exc)
            await asyncio.sleep(delay)
            delay = min(10.0, delay * 2)
