"""The server's side of one sync connection, as a state machine without I/O.

:meth:`ServerSession.receive` takes a frame and returns the messages to send back;
:meth:`ServerSession.next_events` gives the next batch for the connection's pull, and
:meth:`ServerSession.recheck` ends a session whose token was revoked or expired. The
hub (:mod:`pjai.sync.server.hub`), over WebSockets or the in-memory transport of the
tests, drives it. Reads and appends go to a :class:`~pjai.sync.server.log.ServerLog`,
once the events of a push passed :mod:`~pjai.sync.validation`. With the
``presence/1`` extension the session keeps the connection's announced presence
(:attr:`ServerSession.presence`) and the time of its last frame; the hub fans them out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Literal

from msgspec import UNSET

from pjai.schema import SCHEMA, Schema
from pjai.schema.records import Position
from pjai.schema.types import new_id, utc_now
from pjai.sync.presence import PRESENCE, check_update
from pjai.sync.protocol import (
    MAX_EVENTS_PER_FRAME,
    MAX_HELLO_BYTES,
    MAX_ID_BYTES,
    VERSIONS,
    Error,
    Events,
    Hello,
    Message,
    Ping,
    Pong,
    PresenceRejected,
    PresenceUpdate,
    ProtocolError,
    Pull,
    Push,
    PushAck,
    PushRejected,
    Welcome,
    decode,
    fit_frame,
    nameable,
    wire_name,
)
from pjai.sync.server.log import (
    Appended,
    DuplicateEventError,
    OverQuota,
    ServerAhead,
    ServerLog,
)
from pjai.sync.server.places import Openings
from pjai.sync.server.tokens import RateLimiter, Role, Token, can
from pjai.sync.validation import MAX_EVENT_BYTES, PushCheck

__all__ = ["EXTENSIONS", "MAX_EVENT_BYTES", "QUOTA_RETRY_S", "Authenticate", "ServerSession"]

log = logging.getLogger(__name__)

EXTENSIONS = frozenset({PRESENCE})
"""The protocol extensions this server speaks."""

RECHECK_S = 5.0
"""How often, at most, an open connection's token is looked up again: before a frame
from the connection is handled or one is sent to it, once this long has passed since the
last look."""

QUOTA_RETRY_S = 60.0
"""How long a client whose push would pass its store's quota is asked to wait (as for a
rate limit, ``rate_limited``) before it tries again."""

_FULL_TOLD: dict[str, float] = {}
"""When the log last said that each store is full (``time.monotonic()``)."""


def _tell_full(store_id: str, detail: str) -> None:
    """Say in the server's log, at most once a minute a store, that a store is full: its
    devices' pushes wait until its operator gives it room (``--max-store-bytes``)."""
    now = time.monotonic()
    if now - _FULL_TOLD.get(store_id, -QUOTA_RETRY_S) < QUOTA_RETRY_S:
        return
    if len(_FULL_TOLD) >= 10_000:  # remembered for a few stores at most
        _FULL_TOLD.clear()
    _FULL_TOLD[store_id] = now
    log.warning("store %r is full, its pushes wait: %s (raise --max-store-bytes)", store_id, detail)


Authenticate = Callable[[str], Token | None]
"""Looks a bearer token up; ``None`` when it is unknown, revoked or expired."""


class ServerSession:
    """The protocol state of one connection: greeting, then ready, then closed."""

    def __init__(
        self,
        log: ServerLog,
        authenticate: Authenticate | None,
        *,
        schema: Schema = SCHEMA,
        limiter: RateLimiter | None = None,
        byte_limiter: RateLimiter | None = None,
        request_limiter: RateLimiter | None = None,
        openings: Openings | None = None,
        header_token: str = "",
        extensions: Collection[str] = EXTENSIONS,
        clock: Callable[[], datetime] = utc_now,
        claim: Callable[[str], str | None] | None = None,
    ) -> None:
        self._log = log
        self._claim = claim
        self._authenticate = authenticate
        self._limiter = limiter
        self._byte_limiter = byte_limiter
        self._request_limiter = request_limiter
        self._openings = openings
        self._speaks = frozenset(extensions)
        self._clock = clock
        self._check = PushCheck(schema)
        self.state: Literal["greeting", "ready", "closed"] = "greeting"
        self.store_id = ""
        self.client_id = ""
        self.role: Role = "read"
        self.token_id = ""
        self.cursor: Position | None = None
        self.live = False
        self.hold = 0.0
        """Seconds the adapter waits before it reads the connection's next frame (the
        token is over its request or byte rate); it sets it back to 0 after."""
        self._answered = False
        self._secret = header_token  # until the hello, whose own token comes first
        self._checked_at = 0.0
        # What happened since the adapter last looked: appends (they wake pullers), the
        # head as last read from the log, and the outcome of each push (for metrics).
        self.appended: list[Appended] = []
        self.head_seen: Position | None = None
        self.push_results: list[str] = []
        self.session_id = new_id()
        """The server's id for this connection, as peers see it in presence."""
        self.extensions: frozenset[str] = frozenset()
        """The extensions this connection negotiated."""
        self.presence: PresenceUpdate | None = None
        """The connection's latest accepted announcement (``presence/1``)."""
        self.presence_changed = False
        """Set when :attr:`presence` changes; the adapter clears it when it has looked."""
        self.seen_at: datetime = clock()
        """The server's time of the last frame from the connection."""

    # -- frames in, messages out ---------------------------------------------------

    def receive(self, frame: bytes | str) -> list[Message]:
        """Handle one frame; returns what to send. After an :class:`Error`, close."""
        if self.state == "closed":
            return []
        if self.state == "greeting" and len(frame) > MAX_HELLO_BYTES:
            detail = f"a first frame of {len(frame)} bytes; a hello takes {MAX_HELLO_BYTES} at most"
            return self._fail("bad_frame", detail)
        try:
            message = decode(frame)
        except ProtocolError as exc:
            if exc.message_type == "presence_update" and self.has(PRESENCE):
                # One malformed announcement costs the peer that message, not its session.
                self._charge(frame)
                return [PresenceRejected(detail=str(exc))]
            return self._fail(exc.code, str(exc))
        if isinstance(message, Hello):
            if self.state != "greeting":
                return self._fail("out_of_order", "hello was already received")
            return self._hello(message)
        if isinstance(message, Error):
            self.state = "closed"
            return []
        if self.state != "ready":
            # Hello first: a connection that has not said who it is gets no answers, pongs
            # included, so it cannot keep itself open without one.
            return self._fail("out_of_order", f"{wire_name(message)} before hello")
        if (refused := self.recheck()) is not None:
            return [refused]
        if not isinstance(message, Push):
            self._charge(frame)
        self.seen_at = self._clock()
        if isinstance(message, Ping):
            return [Pong(nonce=message.nonce)]
        if isinstance(message, PresenceUpdate):
            return self._presence(message)
        if isinstance(message, Pong):
            return []
        if isinstance(message, Push):
            size = len(frame) if isinstance(frame, bytes) else len(frame.encode())
            answer = self._push(message, size)
            self.push_results.append(answer.reason if isinstance(answer, PushRejected) else "ok")
            return [answer]
        if isinstance(message, Pull):
            return self._pull(message)
        return self._fail("out_of_order", f"{wire_name(message)} is sent by servers, not clients")

    def next_events(self, head: Position) -> Events | Error | None:
        """The next batch for the pull, given the store's ``head``; ``None`` if none is due.

        An :class:`Error` instead when the token turns out revoked or expired
        (:meth:`recheck`): send it and close."""
        if self.cursor is None or self.state != "ready":
            return None
        batch = fit_frame(self._log.read(self.store_id, self.cursor, MAX_EVENTS_PER_FRAME))
        if not batch and self._answered:
            return None
        if (refused := self.recheck()) is not None:
            return refused
        if batch:
            self.cursor = batch[-1].position
        self._answered = True
        head = max(head, self.cursor, key=lambda p: p.key)
        more = self.cursor.key < head.key
        if not more and not self.live:
            self.cursor = None  # a one-off pull ends here
        return Events(events=batch, head=head, more=more)

    @property
    def unanswered(self) -> bool:
        """Whether a pull came that no events frame has answered yet."""
        return self.cursor is not None and not self._answered

    @property
    def token_place(self) -> str | None:
        """The token whose place this connection took (``claim``), to give back."""
        return self.token_id if self._claim is not None and self.token_id else None

    @property
    def recheck_due(self) -> bool:
        """Whether :meth:`recheck` would look the token up now (it may be a query)."""
        return (
            self._authenticate is not None
            and self.state == "ready"
            and time.monotonic() - self._checked_at >= RECHECK_S
        )

    def recheck(self) -> Error | None:
        """Look the token up again if :data:`RECHECK_S` have passed since the last look:
        the ``unauthorized`` error that ends the session if it was revoked or expired
        since, else ``None``. The session calls it before handling a frame and before
        sending events; the adapter before sending anything else (presence)."""
        if not self.recheck_due:
            return None
        assert self._authenticate is not None
        token = self._authenticate(self._secret)
        if token is None:
            self.state = "closed"
            return Error(code="unauthorized", message="the token was revoked or expired")
        self.role, self._checked_at = token.role, time.monotonic()
        return None

    def has(self, extension: str) -> bool:
        """Whether the connection negotiated ``extension`` (``presence/1``)."""
        return self.state == "ready" and extension in self.extensions

    # -- the messages --------------------------------------------------------------

    def _hello(self, hello: Hello) -> list[Message]:
        shared = set(VERSIONS) & set(hello.versions)
        if not shared:
            offered = ", ".join(str(v) for v in hello.versions) or "none"
            ours = ", ".join(str(v) for v in VERSIONS)
            return self._fail(
                "unsupported_version",
                f"this server speaks protocol version {ours}; the client offered {offered}",
            )
        for field in ("store_id", "client_id"):
            value: str = getattr(hello, field)
            if not nameable(value):
                detail = f"hello needs a {field} of 1 to {MAX_ID_BYTES} bytes without NUL"
                return self._fail("bad_frame", detail)
        if self._authenticate is None:
            self.role = "admin"
        else:
            secret = hello.token or self._secret
            if (
                self._openings is not None
                and hello.token
                and hello.token != self._secret  # the header's was counted as it opened
                and (too_soon := self._openings.token(hello.token)) is not None
            ):
                return self._fail("rate_limited", too_soon.message, too_soon.retry_after)
            if not secret:
                return self._fail(
                    "unauthorized",
                    "no token was given; this server requires one (pjai sync connect "
                    "--token, or PJAI_SYNC_TOKEN)",
                )
            token = self._authenticate(secret)
            if token is None:
                return self._fail("unauthorized", "unknown, revoked or expired token")
            if token.store_id not in (hello.store_id, "*"):
                return self._fail(
                    "unauthorized", f"this token is for store {token.store_id!r}, not this one"
                )
            if self._claim is not None and (crowded := self._claim(token.id)) is not None:
                return self._fail("too_many_connections", crowded)
            self.role, self.token_id = token.role, token.id
            self._secret, self._checked_at = secret, time.monotonic()
        self.store_id, self.client_id = hello.store_id, hello.client_id
        self._charge(b"")  # a hello is a request, as its pull is
        self.state, self.seen_at = "ready", self._clock()
        head = self.head_seen = self._log.refresh(self.store_id)
        wanted = hello.extensions
        accepted = [name for name in wanted if name in self._speaks] if wanted else []
        self.extensions = frozenset(accepted)
        return [
            Welcome(
                version=max(shared),
                backend_id=self._log.backend_id,
                store_id=self.store_id,
                head=head,
                role=self.role,
                # A hello without extensions gets a plain v1 welcome.
                extensions=UNSET if wanted is UNSET else accepted,
            )
        ]

    def _presence(self, update: PresenceUpdate) -> list[Message]:
        if not self.has(PRESENCE):
            return self._fail(
                "out_of_order", f"presence_update without the {PRESENCE} extension negotiated"
            )
        problem = check_update(update)
        if problem is not None:
            return [PresenceRejected(detail=problem)]
        self.presence, self.presence_changed = update, True
        return []

    def _push(self, push: Push, size: int) -> PushAck | PushRejected:
        if not can(self.role, "write"):
            return PushRejected(id=push.id, reason="forbidden", detail="the token may only read")
        if not 0 < len(push.events) <= MAX_EVENTS_PER_FRAME:
            detail = f"a push carries 1 to {MAX_EVENTS_PER_FRAME} events, got {len(push.events)}"
            return PushRejected(id=push.id, reason="invalid_event", detail=detail)
        key = self.token_id or self.store_id
        for limiter, amount, what in (
            (self._limiter, len(push.events), "events"),
            (self._byte_limiter, size, "bytes"),  # the frame's: what the server holds
        ):
            wait = 0.0 if limiter is None else limiter.take(key, amount)
            if wait > 0:
                detail = f"too many {what} for this token"
                return PushRejected(
                    id=push.id, reason="rate_limited", detail=detail, retry_after=round(wait, 3)
                )
        if (known := self._log.behind(self.store_id, push.events)) is not None:
            return self._answer(push, known)
        if (problem := self._check.problem(push.events, self.client_id)) is not None:
            index, detail = problem
            return PushRejected(id=push.id, reason="invalid_event", index=index, detail=detail)
        try:
            result = self._log.append(self.store_id, push.events)
        except DuplicateEventError as exc:
            index = next(i for i, r in enumerate(push.events) if r.id == exc.event_id)
            return PushRejected(id=push.id, reason="invalid_event", index=index, detail=str(exc))
        return self._answer(push, result)

    def _answer(
        self, push: Push, result: Appended | ServerAhead | OverQuota
    ) -> PushAck | PushRejected:
        if isinstance(result, Appended):
            if result.count:
                self.appended.append(result)
            return PushAck(id=push.id, head=result.head, accepted=result.count)
        if isinstance(result, OverQuota):
            # Asked to wait, as a rate limit does: the client keeps its events and tries
            # again, which goes once the server's operator gives the store more room.
            detail = (
                f"the store's log holds {result.held:,} bytes of events and may hold "
                f"{result.limit:,}: this push would pass that"
            )
            _tell_full(self.store_id, detail)
            return PushRejected(
                id=push.id, reason="rate_limited", detail=detail, retry_after=QUOTA_RETRY_S
            )
        return PushRejected(
            id=push.id,
            reason="server_ahead",
            head=result.head,
            detail=f"the store is at {result.head}; pull, rebase and push again",
        )

    def _charge(self, frame: bytes | str) -> None:
        """Count a frame other than a push against the token's request and byte rates,
        and hold the connection (:attr:`hold`) while the token is over either: each
        costs work (a pull, a read of the log), and an honest client sends a few a
        minute. Held, a flooding client stops being read; refused, it would reconnect."""
        size = len(frame) if isinstance(frame, bytes) else len(frame.encode())
        key = self.token_id or self.store_id
        for limiter, amount in ((self._request_limiter, 1), (self._byte_limiter, size)):
            if limiter is not None:
                self.hold = max(self.hold, limiter.charge(key, amount))

    def _pull(self, pull: Pull) -> list[Message]:
        head = self.head_seen = self._log.refresh(self.store_id)
        if pull.cursor.key > head.key:
            return self._fail(
                "bad_cursor",
                f"the store is at {head}, before the cursor {pull.cursor}; is this the same "
                "server (backend id) the client synced with?",
            )
        self.cursor, self.live, self._answered = pull.cursor, pull.live, False
        return []

    def _fail(self, code: str, message: str, retry_after: float | None = None) -> list[Message]:
        self.state = "closed"
        return [Error(code=code, message=message, retry_after=retry_after)]
