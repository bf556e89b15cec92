"""The client's side of one sync connection, as a state machine without I/O.

The driver (:class:`pjai.sync.client.SyncClient`, or a test) sends what
:meth:`ClientSession.hello` returns, feeds every message it receives to
:meth:`ClientSession.receive` and carries out the actions that come back: send a
message, apply upstream events to the store (a rebase), reject a pending event the
server refused, wait, or give up on this connection. Whenever the store may have
something to push, it asks :meth:`ClientSession.next_push`.

Order of work on a connection: hello, welcome, pull (live) from the confirmed head;
pushes go out only once the pulled events have brought the store up to the server's
head, one batch at a time, the next right after the previous one's acknowledgement.
The echo of pushed events, arriving through the pull, confirms them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pjai.schema.records import EventRecord, Position
from pjai.sync.protocol import (
    MAX_EVENTS_PER_FRAME,
    VERSIONS,
    Error,
    Events,
    Hello,
    Message,
    Ping,
    Pong,
    Pull,
    Push,
    PushAck,
    PushRejected,
    Welcome,
    fit_frame,
)

__all__ = ["Apply", "ClientSession", "Fail", "Reject", "Send", "Wait"]


@dataclass(frozen=True, slots=True)
class Send:
    """Send this message."""

    message: Message


@dataclass(frozen=True, slots=True)
class Apply:
    """Rebase the store onto these upstream events."""

    events: list[EventRecord]


@dataclass(frozen=True, slots=True)
class Reject:
    """The server refused this pending event for good: reject it in the store."""

    event_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Wait:
    """Push nothing for ``seconds`` (rate limited)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Fail:
    """This connection is over; ``retry`` says whether reconnecting can help."""

    code: str
    message: str
    retry: bool


Action = Send | Apply | Reject | Wait | Fail

_FINAL = {"unsupported_version", "unauthorized", "server_reset", "invalid_event", "wrong_store"}


class ClientSession:
    """The protocol state of one connection, from the client's side."""

    def __init__(
        self,
        store_id: str,
        client_id: str,
        token: str = "",
        *,
        backend_id: str | None = None,
        batch: int = MAX_EVENTS_PER_FRAME,
    ) -> None:
        self.store_id = store_id
        self.client_id = client_id
        self.token = token
        self.backend_id = backend_id
        """The server identity last synced with; a different one means a reset server."""
        self.batch = min(batch, MAX_EVENTS_PER_FRAME)
        self.state: Literal["greeting", "ready", "closed"] = "greeting"
        self.server_head: Position | None = None
        self.can_push = True
        self._in_flight: Push | None = None
        self._acked: Position | None = None
        self._ids = itertools.count(1)

    def hello(self) -> Hello:
        """The first frame."""
        return Hello(
            versions=list(VERSIONS),
            store_id=self.store_id,
            client_id=self.client_id,
            token=self.token,
        )

    def receive(self, message: Message, confirmed_head: Position) -> list[Action]:
        """Handle a message from the server, given the store's confirmed head."""
        if isinstance(message, Ping):
            return [Send(Pong(nonce=message.nonce))]
        if isinstance(message, Pong):
            return []
        if isinstance(message, Error):
            return self._fail(message.code, message.message)
        if isinstance(message, Welcome):
            return self._welcome(message, confirmed_head)
        if self.state != "ready":
            return self._fail("out_of_order", f"{_type(message)} before welcome")
        if isinstance(message, Events):
            self.server_head = message.head
            return [Apply(message.events)] if message.events else []
        if isinstance(message, PushAck):
            return self._acknowledged(message)
        if isinstance(message, PushRejected):
            return self._rejected(message)
        return self._fail("out_of_order", f"servers do not send {_type(message)}")

    def may_push(self, local_head: Position, confirmed_head: Position) -> bool:
        """Whether a push could go now, given the store's heads (cheap: no pending read)."""
        if self.state != "ready" or not self.can_push or self._in_flight is not None:
            return False
        sent = self._acked if self._acked and self._acked.key > confirmed_head.key else None
        return self.server_head is not None and local_head.key > (sent or confirmed_head).key

    def next_push(self, pending: Sequence[EventRecord], confirmed_head: Position) -> Push | None:
        """The next push, if one is due: pending events the server does not have yet."""
        if self.state != "ready" or not self.can_push or self._in_flight is not None:
            return None
        if self.server_head is None:
            return None
        sent = confirmed_head
        if self._acked is not None and self._acked.key > sent.key:
            sent = self._acked
        unsent = [r for r in pending if r.position.key > sent.key]
        if not unsent or unsent[0].parent.key != self.server_head.key:
            return None  # nothing to send, or the store has yet to catch up with the server
        push = Push(id=next(self._ids), events=fit_frame(unsent[: self.batch]))
        self._in_flight = push
        return push

    def waiting(self, confirmed_head: Position) -> bool:
        """Whether the server owes an answer: a welcome, a push's answer or its echo."""
        if self.state != "ready" or self._in_flight is not None:
            return True
        return self._acked is not None and self._acked.key > confirmed_head.key

    # -- the messages ---------------------------------------------------------------

    def _welcome(self, welcome: Welcome, confirmed_head: Position) -> list[Action]:
        if self.state != "greeting":
            return self._fail("out_of_order", "a second welcome")
        if welcome.version not in VERSIONS:
            return self._fail("unsupported_version", f"server chose version {welcome.version}")
        if self.backend_id is not None and welcome.backend_id != self.backend_id:
            return self._fail(
                "server_reset",
                f"the server's history is not the one this store synced with (backend "
                f"{welcome.backend_id}, expected {self.backend_id}); this store cannot "
                "continue on it: start a new store that pulls from this server and bring "
                "this one's data over with export and import",
            )
        if welcome.head.key < confirmed_head.key:
            # Same history, older head: a server process that has not caught up with the
            # database yet, or one restored from a backup. Retried, and shown meanwhile.
            return self._fail(
                "server_behind",
                f"the server is at {welcome.head} but this store confirmed up to "
                f"{confirmed_head}; waiting for it to catch up",
            )
        self.backend_id = welcome.backend_id
        self.state = "ready"
        self.server_head = welcome.head
        self.can_push = welcome.role != "read"
        self._in_flight, self._acked = None, None
        return [Send(Pull(cursor=confirmed_head, live=True))]

    def _acknowledged(self, ack: PushAck) -> list[Action]:
        if self._in_flight is None or ack.id != self._in_flight.id:
            return []  # an answer to a push of an earlier connection: nothing to do
        self._in_flight = None
        self._acked = ack.head
        if ack.head.key > (self.server_head.key if self.server_head else (0, 0)):
            self.server_head = ack.head
        return []

    def _rejected(self, rejected: PushRejected) -> list[Action]:
        push = self._in_flight
        if push is None or rejected.id != push.id:
            return []
        self._in_flight = None
        self._acked = None
        if rejected.reason == "server_ahead":
            if rejected.head is not None:
                self.server_head = rejected.head  # the pull brings those events next
            return []
        if rejected.reason == "rate_limited":
            return [Wait(rejected.retry_after or 1.0)]
        if rejected.reason == "forbidden":
            self.can_push = False
            return []
        # invalid_event: that event can never be appended; reject it here too.
        if rejected.index is None or not 0 <= rejected.index < len(push.events):
            return self._fail("invalid_event", rejected.detail)
        event = push.events[rejected.index]
        return [Reject(event.id, f"refused by the sync server: {rejected.detail}")]

    def _fail(self, code: str, message: str) -> list[Action]:
        self.state = "closed"
        return [Fail(code, message, retry=code not in _FINAL)]


def _type(message: Message) -> str:
    """The message's name on the wire (``push_ack``)."""
    return str(type(message).__struct_config__.tag)
