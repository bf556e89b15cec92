"""How many connections a sync server process holds, and whose.

Every connection takes a place, of which the process has :attr:`Limits.total`: by
default half its open-file limit, at most 10,000, so that however many connections
peers open, the process keeps file descriptors for its database and files. Two more
limits keep one peer from taking every place:

- a connection that has not said hello yet holds a place of its remote address (an
  IPv6 one counts by its /64 network, :func:`address_key`), which
  has :attr:`Limits.per_address` (a peer without a token holds no more than that, each
  for at most ``hello_timeout``);
- a connection that said hello holds a place of its token, which has
  :attr:`Limits.per_token` (a server without tokens has no such limit).

A connection that finds no place is closed at once: over the total or its address's
places with WebSocket close code 1013 (try again later), over its token's with an
``error`` frame, ``too_many_connections``. Clients retry both with their backoff.

Places bound the connections open at once, not how fast they come: a peer that opens
a connection and closes it again without pause costs the server a handshake, a token
check and a read of the store's head each time. :class:`Openings` limits how many
connections one remote address, and one token, open a second.

The large bodies of HTTP answers (``/pull``, ``GET /keys``) and the pages of catch-ups
over WebSockets are limited too (:class:`Bodies`): each is made and sent under a slot,
of which the process has :data:`BODIES` and one token :data:`BODIES_PER_TOKEN`; the
others wait for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import resource
import threading
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from pjai.sync.server.tokens import RateLimiter, digest

__all__ = [
    "BODIES",
    "BODIES_PER_TOKEN",
    "MAX_TOTAL",
    "PER_ADDRESS",
    "PER_TOKEN",
    "Bodies",
    "Limits",
    "Openings",
    "Places",
    "TooSoon",
    "address_key",
    "default_total",
]

MAX_TOTAL = 10_000
"""The most connections a process holds by default, however high its open-file limit."""
PER_ADDRESS = 32
"""Connections from one address that may be waiting to say hello, by default."""
PER_TOKEN = 64
"""Connections one token may hold, by default."""
BODIES = 8
"""Large HTTP bodies (a ``/pull`` page, a store's keys) a process makes and sends at once."""
BODIES_PER_TOKEN = 2
"""Large HTTP bodies one token has made and sent at once."""


def address_key(host: str) -> str:
    """Whom a remote address's limits count for: the address, or for IPv6 its /64
    network, which one host commonly holds whole (a new address for each connection, or
    each try, would escape the limit); an IPv4 address mapped into IPv6 is itself."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return host


def default_total() -> int:
    """Half the process's open-file limit, at least 16, at most :data:`MAX_TOTAL`."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_TOTAL
    return max(16, min(MAX_TOTAL, soft // 2))


@dataclass(frozen=True, slots=True)
class Limits:
    """How many connections a process holds: in all, per address before hello, per
    token after it."""

    total: int = field(default_factory=default_total)
    per_address: int = PER_ADDRESS
    per_token: int = PER_TOKEN

    def __post_init__(self) -> None:
        for name in ("total", "per_address", "per_token"):
            if getattr(self, name) < 1:
                raise ValueError(f"connection limit {name} must be at least 1")


class Places:
    """The places taken under :class:`Limits`. Sessions take a token's place from worker
    threads, so every count is kept under one lock."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._lock = threading.Lock()
        self.total = 0
        self._greeting: Counter[str] = Counter()
        self._tokens: Counter[str] = Counter()

    def enter(self, address: str) -> str | None:
        """Take a place for a new connection from ``address``; why there is none, or
        ``None``. The connection holds an address place until :meth:`greeted`."""
        with self._lock:
            if self.total >= self.limits.total:
                return f"the server holds {self.limits.total} connections, its most"
            if self._greeting[address] >= self.limits.per_address:
                return (
                    f"{self.limits.per_address} connections from this address have not "
                    "said hello yet"
                )
            self.total += 1
            self._greeting[address] += 1
            return None

    def greeted(self, address: str) -> None:
        """Give back the address place of a connection that said hello."""
        with self._lock:
            _give(self._greeting, address)

    def claim(self, token_id: str) -> str | None:
        """Take a place of ``token_id``; why there is none, or ``None``."""
        with self._lock:
            if self._tokens[token_id] >= self.limits.per_token:
                return f"this token holds {self.limits.per_token} connections, its most"
            self._tokens[token_id] += 1
            return None

    def leave(self, *, address: str | None, token_id: str | None) -> None:
        """Give back a closed connection's place, and its address place (when it never
        said hello) and token place (when it took one)."""
        with self._lock:
            self.total -= 1
            if address is not None:
                _give(self._greeting, address)
            if token_id is not None:
                _give(self._tokens, token_id)


def _give(counts: Counter[str], key: str) -> None:
    counts[key] -= 1
    if counts[key] <= 0:
        del counts[key]  # the counts keep only who holds places


@dataclass(frozen=True, slots=True)
class TooSoon:
    """An opening refused: over the rate of its remote address or of its token."""

    whose: str
    """``from this address`` or ``with this token``."""
    retry_after: float
    """Seconds until the address or token may open one again (rounded to milliseconds)."""

    @property
    def message(self) -> str:
        return f"too many connections opened {self.whose}; retry in {self.retry_after:g} s"


class Openings:
    """How fast connections are opened: a token bucket per remote address and per token,
    of ``rate`` openings a second and bursts of ``burst``. A token is counted by the
    secret a client presents, before it is looked up: a refused opening costs no token
    check."""

    def __init__(self, rate: float, burst: float) -> None:
        self._limiter = RateLimiter(rate, burst)

    def address(self, address: str) -> TooSoon | None:
        """Take an opening of ``address``; ``None`` if it had one."""
        return _too_soon(self._limiter.take(f"address {address}", 1), "from this address")

    def token(self, secret: str) -> TooSoon | None:
        """Take an opening of the token whose secret is ``secret``; ``None`` if it had one."""
        return _too_soon(self._limiter.take(digest(secret), 1), "with this token")


def _too_soon(wait: float, whose: str) -> TooSoon | None:
    return None if wait <= 0 else TooSoon(whose, max(round(wait, 3), 0.001))


class Bodies:
    """Slots for the large bodies of HTTP answers and the pages of catch-ups: each is
    made and sent under one, so that the clients that ask for them and read slowly, or
    not at all, make the process hold at most :data:`BODIES` of them, and one token at
    most :data:`BODIES_PER_TOKEN` (the others wait their turn)."""

    def __init__(self, total: int = BODIES, per_token: int = BODIES_PER_TOKEN) -> None:
        self._total = asyncio.Semaphore(total)
        self._per_token = per_token
        self._tokens: dict[str, tuple[asyncio.Semaphore, int]] = {}
        self.held = 0
        """Slots taken now."""
        self.waiting = 0
        """Requests waiting for a slot now."""

    @contextlib.asynccontextmanager
    async def slot(self, token_id: str) -> AsyncIterator[None]:
        """Hold a slot of ``token_id`` and one of the process while the body is made and
        sent."""
        own, users = self._tokens.get(token_id, (asyncio.Semaphore(self._per_token), 0))
        self._tokens[token_id] = (own, users + 1)
        try:
            self.waiting += 1
            try:
                await own.acquire()
                try:
                    await self._total.acquire()
                except BaseException:
                    own.release()
                    raise
            finally:
                self.waiting -= 1
            self.held += 1
            try:
                yield
            finally:
                self.held -= 1
                self._total.release()
                own.release()
        finally:
            own, users = self._tokens[token_id]
            if users == 1:
                del self._tokens[token_id]  # only tokens asking now are kept
            else:
                self._tokens[token_id] = (own, users - 1)
