"""`SyncServer`: a sync server as one resource, composed once and closed once.

:meth:`SyncServer.open` opens the server's database (a URL, or an SQLite file such as
:data:`~pjai.sync.server.database.SERVER_FILE` in a data directory), makes the hub and
the ASGI app, and serves them with uvicorn on a socket bound before it starts:

- :meth:`SyncServer.run` in the foreground until SIGINT or SIGTERM (``pjai sync-server
  serve``, a benchmark's server process);
- :meth:`SyncServer.start` in the running event loop, :meth:`SyncServer.start_thread`
  in a thread with a loop of its own (tests, benchmarks); both return once it serves.

:meth:`SyncServer.close` (or ``aclose``, or leaving a ``with`` / ``async with`` block)
stops serving and closes the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import uvicorn

from pjai.errors import ConfigError, PjaiError
from pjai.resource import Resource
from pjai.sync.protocol import MAX_EVENTS_PER_FRAME, MAX_FRAME_BYTES
from pjai.sync.server.asgi import create_app
from pjai.sync.server.database import ServerDatabase
from pjai.sync.server.hub import Hub
from pjai.sync.server.log import DEFAULT_MAX_STORE_BYTES
from pjai.sync.server.places import Limits, Openings
from pjai.sync.server.sockets import (
    HEAD_TIMEOUT_S,
    http_settings,
    listening_socket,
    websocket_protocol,
)
from pjai.sync.server.tokens import RateLimiter

__all__ = ["STARTUP_TIMEOUT", "ServerConfig", "SyncServer"]

STARTUP_TIMEOUT = 30.0
"""Seconds :meth:`SyncServer.start` and :meth:`SyncServer.start_thread` wait for the
server to serve."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """How a sync server process runs."""

    require_tokens: bool = True
    poll_interval: float = 1.0
    """Seconds between reads of what other server processes appended (the fallback when
    a PostgreSQL notification is lost)."""
    send_timeout: float = 10.0
    hello_timeout: float = 10.0
    """Seconds a new connection has to say hello in; then it is closed (``no_hello``)."""
    head_timeout: float = HEAD_TIMEOUT_S
    """Seconds a connection has to send an HTTP request's head in (a WebSocket's
    handshake included), from its opening and from the end of each answer; then it is
    closed."""
    close_timeout: float = 10.0
    """Seconds a connection has to close in, once the server closes it; then its TCP
    connection is reset (a client that does not read takes no close frame)."""
    rate: float = 50_000.0
    """Events a second one token may push (bursts up to twice that, at least one full push)."""
    byte_rate: float = 16 * 1024 * 1024
    """Bytes of frames a second one token may send (bursts up to twice that, at least one
    frame of the largest size)."""
    request_rate: float = 50.0
    """Requests a second one token may make besides its pushes: its hellos and other
    frames (pulls, pings, presence) and its HTTP requests for ``/pull`` and ``/keys``.
    Bursts go up to ten times that: a token's devices reconnecting at once pass."""
    connection_rate: float = 10.0
    """Connections a second one remote address, and one token, may open, whether they
    last or not; bursts go up to ten times that: a token's devices (or an address's)
    reconnecting at once pass."""
    ping_interval: float = 20.0
    """Seconds between uvicorn's WebSocket keepalive pings."""
    ping_timeout: float = 20.0
    """Seconds a keepalive ping waits for its pong; then the connection is closed."""
    hosts: frozenset[str] = frozenset()
    """Without tokens: names besides IP addresses, ``localhost`` and the machine's own by
    which clients may name the server (``--allowed-host``)."""
    limits: Limits = field(default_factory=Limits)
    """How many connections the process holds: in all, per address before hello, per
    token after it (:mod:`pjai.sync.server.places`)."""
    max_store_bytes: int | None = DEFAULT_MAX_STORE_BYTES
    """The bytes of records one store's log holds at most (``None``: no limit); a push
    past it is asked to wait (:class:`~pjai.sync.server.log.OverQuota`)."""

    def __post_init__(self) -> None:
        if self.max_store_bytes is not None and self.max_store_bytes <= 0:
            raise ConfigError(
                f"ServerConfig.max_store_bytes must be above 0 or None, got {self.max_store_bytes}"
            )
        for name in ("rate", "byte_rate", "request_rate", "connection_rate", "head_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"ServerConfig.{name} must be a number above 0, got {value:g}")


class SyncServer(Resource):
    """A sync server: a hub and its ASGI app, served by uvicorn, and the database
    it owns, if any.

    :meth:`open` makes one on a database; ``SyncServer(hub)`` serves a hub made by
    hand (a log in memory, in tests). It serves once: from :meth:`run`, :meth:`start`
    or :meth:`start_thread` until stopped.
    """

    def __init__(
        self,
        hub: Hub,
        *,
        database: ServerDatabase | None = None,
        ping_interval: float = 20.0,
        ping_timeout: float = 20.0,
        head_timeout: float = HEAD_TIMEOUT_S,
        hosts: frozenset[str] = frozenset(),
    ) -> None:
        self.hub = hub
        self.database = database
        """The database this server owns and closes, if it was opened with one."""
        listen_url = database.url if database is not None and database.postgres else None
        self.app = create_app(hub, listen_url=listen_url, hosts=hosts)
        self._config = uvicorn.Config(
            self.app,
            **http_settings(send_timeout=hub.send_timeout, head_timeout=head_timeout),
            ws=websocket_protocol(hub.close_timeout),
            # A message the server reads is at most a frame, and comes as sent: with
            # compression a few kilobytes would unpack into megabytes before a check.
            ws_max_size=MAX_FRAME_BYTES,
            ws_per_message_deflate=False,
            ws_ping_interval=ping_interval,
            ws_ping_timeout=ping_timeout,
            lifespan="on",
            log_level="warning",
            # HTTP requests answer 503 past the connections the hub may hold (WebSocket
            # upgrades are not counted by uvicorn: the hub refuses those itself).
            limit_concurrency=hub.places.limits.total,
            timeout_graceful_shutdown=10,
        )
        self._uvicorn: _Uvicorn | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None
        self._closed = False

    @classmethod
    def open(cls, database: str | Path, config: ServerConfig | None = None) -> SyncServer:
        """A server on ``database`` (a URL, or an SQLite file's path), tables created if
        needed; it listens for PostgreSQL notifications from other server processes."""
        config = config or ServerConfig()
        opened = ServerDatabase.open(database, max_store_bytes=config.max_store_bytes)
        try:
            hub = Hub(
                opened.log,
                opened.tokens.check if config.require_tokens else None,
                # A burst always admits one full push, or a low rate would refuse every one.
                limiter=RateLimiter(config.rate, max(config.rate * 2, MAX_EVENTS_PER_FRAME)),
                byte_limiter=RateLimiter(
                    config.byte_rate, max(config.byte_rate * 2, MAX_FRAME_BYTES)
                ),
                # Bursts always admit one request and one opening, as for pushes.
                request_limiter=RateLimiter(config.request_rate, max(config.request_rate * 10, 1)),
                openings=Openings(config.connection_rate, max(config.connection_rate * 10, 1)),
                poll_interval=config.poll_interval,
                send_timeout=config.send_timeout,
                hello_timeout=config.hello_timeout,
                close_timeout=config.close_timeout,
                keys=opened.keys,
                limits=config.limits,
            )
            return cls(
                hub,
                database=opened,
                ping_interval=config.ping_interval,
                ping_timeout=config.ping_timeout,
                head_timeout=config.head_timeout,
                hosts=config.hosts,
            )
        except BaseException:
            opened.close()
            raise

    # -- what it is ------------------------------------------------------------------

    @property
    def backend_id(self) -> str:
        """Identifies the server's log; a new one means its history was reset."""
        return self.hub.log.backend_id

    @property
    def storage(self) -> str:
        """Where the log is kept: the database URL with any password hidden, or
        ``memory``."""
        return self.database.display_url if self.database is not None else "memory"

    @property
    def base_url(self) -> str:
        """``http://host:port`` while it listens."""
        if self._base_url is None:
            raise PjaiError("the sync server is not listening")
        return self._base_url

    @property
    def sync_url(self) -> str:
        """The WebSocket endpoint for clients, ``ws://host:port/sync``."""
        return "ws" + self.base_url.removeprefix("http") + "/sync"

    def refuses_everyone(self) -> bool:
        """Whether tokens are required and none is live (each revoked or expired), so
        every client is refused."""
        if self.hub.authenticate is None or self.database is None:
            return False
        return not any(t.live() for t in self.database.tokens.list())

    # -- serving -----------------------------------------------------------------------

    def run(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        on_listening: Callable[[str], None] | None = None,
    ) -> bool:
        """Serve in this thread until SIGINT or SIGTERM, which stop it gracefully;
        whether it started (uvicorn logs why not).

        ``on_listening`` gets the base URL once the socket listens, before uvicorn
        starts: clients that connect meanwhile wait in the socket's backlog. Signals
        stop it from before that call on.
        """
        server = self._prepare()
        with _stopped_by_signals(server):
            sock = self._listen(host, port)
            if on_listening is not None:
                on_listening(self.base_url)
            with asyncio.Runner(loop_factory=self._config.get_loop_factory()) as runner:
                runner.run(self._serve(server, sock, None))
        return server.started

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in the running event loop; returns the base URL once it serves."""
        server = self._prepare()
        sock = self._listen(host, port)
        ready = asyncio.Event()
        self._task = asyncio.create_task(self._serve(server, sock, ready.set))
        waiting = asyncio.create_task(ready.wait())
        try:
            async with asyncio.timeout(STARTUP_TIMEOUT):
                await asyncio.wait({waiting, self._task}, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            await self.stop()
            raise PjaiError(f"the sync server did not start in {STARTUP_TIMEOUT:g} s") from None
        finally:
            waiting.cancel()
        if not server.started:
            await self.stop()
            raise PjaiError("the sync server did not start (uvicorn logged why)")
        return self.base_url

    def start_thread(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in a thread of its own, with its own event loop; returns the base URL
        once it serves."""
        server = self._prepare()
        sock = self._listen(host, port)
        ready = threading.Event()

        def serve() -> None:
            with asyncio.Runner(loop_factory=self._config.get_loop_factory()) as runner:
                runner.run(self._serve(server, sock, ready.set))

        self._thread = threading.Thread(target=serve, name="pjai-sync-server", daemon=True)
        self._thread.start()
        if not ready.wait(STARTUP_TIMEOUT):
            self._stop_thread()
            raise PjaiError(f"the sync server did not start in {STARTUP_TIMEOUT:g} s")
        if not server.started:
            self._stop_thread()
            raise PjaiError("the sync server did not start (uvicorn logged why)")
        return self.base_url

    async def stop(self) -> None:
        """Stop serving gracefully: open connections are closed (code 1012)."""
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._task is not None:
            task, self._task = self._task, None
            await task
        if self._thread is not None:
            await asyncio.to_thread(self._stop_thread)

    # -- closing -----------------------------------------------------------------------

    def close(self) -> None:
        """Stop serving (a thread of :meth:`start_thread`) and close the database.

        A server started with :meth:`start` is stopped in its loop: ``await aclose()``.
        """
        if self._task is not None and not self._task.done():
            raise RuntimeError("the sync server serves in an event loop: await aclose()")
        self._stop_thread()
        self._close_database()

    async def aclose(self) -> None:
        """Stop serving and close the database."""
        await self.stop()
        await asyncio.to_thread(self._close_database)

    async def __aenter__(self) -> SyncServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- inside ------------------------------------------------------------------------

    def _prepare(self) -> _Uvicorn:
        if self._closed:
            raise PjaiError("the sync server is closed")
        if self._uvicorn is not None:
            raise PjaiError("the sync server serves once; open another one to serve again")
        self._uvicorn = _Uvicorn(self._config)
        return self._uvicorn

    def _listen(self, host: str, port: int) -> socket.socket:
        sock = listening_socket(host, port)
        address = f"[{host}]" if ":" in host else host
        self._base_url = f"http://{address}:{sock.getsockname()[1]}"
        return sock

    async def _serve(
        self, server: _Uvicorn, sock: socket.socket, ready: Callable[[], None] | None
    ) -> None:
        server.on_started = ready
        try:
            await server.serve(sockets=[sock])
        except SystemExit:
            if server.started:
                raise
            # uvicorn gave up starting (the app's startup failed) and logged why.
        finally:
            sock.close()
            self._base_url = None
            if ready is not None:
                ready()  # started or not: the caller looks at server.started

    def _stop_thread(self) -> None:
        if self._thread is None:
            return
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        self._thread.join()
        self._thread = None

    def _close_database(self) -> None:
        if not self._closed:
            self._closed = True
            if self.database is not None:
                self.database.close()


class _Uvicorn(uvicorn.Server):
    """uvicorn's server, which says when it serves, and handles signals only where
    :meth:`SyncServer.run` asks it to."""

    on_started: Callable[[], None] | None = None
    signals = False

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.on_started is not None:
            self.on_started()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if not self.signals:
            yield  # serving beside other work (a thread, a test's loop): stop() stops it
            return
        with super().capture_signals():
            yield


@contextlib.contextmanager
def _stopped_by_signals(server: _Uvicorn) -> Iterator[None]:
    """SIGTERM and Ctrl-C stop ``server`` gracefully (in the main thread).

    uvicorn handles both while it serves and, once shut down, raises the signal again
    with the handlers it found: these, which only ask it to stop. They are in place
    from before the socket listens, so an early signal stops the server as well.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    server.signals = True

    def stop(_sig: int, _frame: FrameType | None) -> None:
        server.should_exit = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
