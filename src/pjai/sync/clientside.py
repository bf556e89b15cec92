"""The client's side of one sync connection, as a state machine without I/O.

The driver (:class:`pjai.sync.client.SyncClient`, or a test) sends what
:meth:`ClientSession.hello` returns, feeds every message it receives to
:meth:`ClientSession.receive` and carries out the actions that come back: send a
message, apply upstream events to the store (a rebase), reject a pending event the
server refused, wait, or give up on this connection. Whenever the store may have
something to push, it asks :meth:`ClientSession.next_push`.

Order of work on a connection: hello, welcome, pull (live) from the confirmed head.
A push goes out when its first event follows the server's head as last heard: the
store has rebased onto the pulled events, or the driver numbers the pending events as
that rebase will. One push is in flight at a time, the next right after the previous
one's acknowledgement, or at once when an events frame shows another event in the
place of its first one (the server is bound to refuse it). Pushes the server was
ahead of make the next ones smaller, acknowledged ones larger again. The echo of
pushed events, arriving through the pull, confirms them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import msgspec

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
    wire_name,
)
from pjai.sync.validation import PushCheck

__all__ = [
    "MAX_HOLD_S",
    "MIN_PUSH",
    "Apply",
    "ClientSession",
    "Fail",
    "Reject",
    "Send",
    "Wait",
    "asked_wait",
    "held_for",
]


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
    """Push nothing for ``seconds`` (rate limited, or the store over its quota: the
    server's ``detail`` says which)."""

    seconds: float
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Fail:
    """This connection is over; ``retry`` says whether reconnecting can help."""

    code: str
    message: str
    retry: bool
    retry_after: float | None = None
    """The seconds the server asked the client to wait before connecting again."""


Action = Send | Apply | Reject | Wait | Fail

MIN_PUSH = 100
"""The fewest events a push carries (when there are as many) after refusals: small
enough to be checked quickly on the server, large enough to make progress."""

MAX_HOLD_S = 60.0
"""The longest a ``rate_limited`` answer holds pushes back (a reconnection ends it), or
holds off the next connection."""


def held_for(retry_after: float | None) -> float:
    """The seconds to wait that a server asked for, within reason: no wait for none,
    NaN or a negative, at most :data:`MAX_HOLD_S` for more (a day's wait is not)."""
    if retry_after is None or not retry_after > 0:
        return 0.0
    return min(retry_after, MAX_HOLD_S)


def asked_wait(body: bytes | bytearray, retry_after: str | None) -> float | None:
    """The seconds a server that refused a request as too soon (HTTP 429) asked to wait:
    its JSON body's ``retry_after`` when that is a number (``true`` is not), else its
    ``Retry-After`` header's seconds; None when neither says (a date is taken as none).
    A number too large for a float is an endless wait, which :func:`held_for` caps."""
    try:
        said = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        said = None
    wait = said.get("retry_after") if isinstance(said, dict) else None
    if isinstance(wait, int | float) and not isinstance(wait, bool):
        try:
            return float(wait)
        except OverflowError:
            return math.inf
    try:
        return float(retry_after or "")
    except ValueError:
        return None


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
        self.push_size = self.batch
        """Events the next push carries at most: halved by each push the server was
        ahead of, doubled back (up to ``batch``) by each one acknowledged."""
        self.state: Literal["greeting", "ready", "closed"] = "greeting"
        self.server_head: Position | None = None
        self.can_push = True
        self._in_flight: Push | None = None
        self._acked: Position | None = None
        self._ids = itertools.count(1)
        self._check = PushCheck()  # the server's rules, on the events as pushed

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
            return self._fail(message.code, message.message, message.retry_after)
        if isinstance(message, Welcome):
            return self._welcome(message, confirmed_head)
        if self.state != "ready":
            return self._fail("out_of_order", f"{wire_name(message)} before welcome")
        if isinstance(message, Events):
            self._heard(message.head)
            if message.events:  # the server has them, whatever head it names
                self._heard(message.events[-1].position)
            self._overtaken(message.events)
            return [Apply(message.events)] if message.events else []
        if isinstance(message, PushAck):
            return self._acknowledged(message)
        if isinstance(message, PushRejected):
            return self._rejected(message)
        return self._fail("out_of_order", f"servers do not send {wire_name(message)}")

    @property
    def pushing(self) -> bool:
        """Whether a push waits for its answer."""
        return self._in_flight is not None

    @property
    def idle(self) -> bool:
        """Ready, allowed to push, and no push waiting for its answer."""
        return self.state == "ready" and self.can_push and not self.pushing

    def may_push(self, local_head: Position, confirmed_head: Position) -> bool:
        """Whether a push could go now, given the store's heads (cheap: no pending read)."""
        if not self.idle:
            return False
        sent = self._acked if self._acked and self._acked.key > confirmed_head.key else None
        return self.server_head is not None and local_head.key > (sent or confirmed_head).key

    def reach(self, confirmed_head: Position) -> int:
        """How many pending events, from the first, :meth:`next_push` may draw on: those
        sent and not yet confirmed, then one push's worth."""
        sent = self._acked.global_seq - confirmed_head.global_seq if self._acked else 0
        return max(0, sent) + self.push_size

    def unsent(self, pending: Sequence[EventRecord], confirmed_head: Position) -> list[EventRecord]:
        """The pending events not sent yet (those after the last push the server took):
        the last of ``pending``, those :meth:`next_push` draws its push from."""
        sent = confirmed_head
        if self._acked is not None and self._acked.key > sent.key:
            sent = self._acked
        return [r for r in pending if r.position.key > sent.key]

    def next_push(self, pending: Sequence[EventRecord], confirmed_head: Position) -> Push | None:
        """The next push, if one is due: pending events the server does not have yet."""
        if not self.idle or self.server_head is None:
            return None
        unsent = self.unsent(pending, confirmed_head)
        if not unsent or unsent[0].parent.key != self.server_head.key:
            return None  # nothing to send, or the store has yet to catch up with the server
        push = Push(id=next(self._ids), events=fit_frame(unsent[: self.push_size]))
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
        if welcome.store_id != self.store_id:
            # A server (or a proxy) that routes to another store: nothing of it is taken
            # in, and nothing of this one goes there.
            return self._fail(
                "wrong_store",
                f"the server welcomed this client to store {welcome.store_id!r}, not "
                f"{self.store_id!r}",
            )
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
        push = self._in_flight
        if push is None or ack.id != push.id:
            return []  # an answer to a push of an earlier connection: nothing to do
        self._in_flight = None
        last = push.events[-1].position
        if ack.head.key < last.key:
            # Appended, yet the head is short of the push: pushing again at once would
            # be answered the same, as fast as the two can talk. Reconnect, with backoff.
            return self._fail(
                "out_of_order",
                f"the server acknowledged a push up to {last}, yet says its head is {ack.head}",
            )
        self._acked = ack.head
        self._heard(ack.head)
        self.push_size = min(self.batch, self.push_size * 2)
        return []

    def _overtaken(self, events: Sequence[EventRecord]) -> None:
        """Give up the push in flight if another event holds the place of its first one.

        The server is bound to refuse it (``server_ahead``); not waiting for that answer
        lets the next push follow these events at once. The refusal, when it comes,
        names a push no longer in flight and is ignored.
        """
        push = self._in_flight
        if push is None:
            return
        first = push.events[0]
        for record in events:
            if record.position.key == first.position.key and record.id != first.id:
                self._server_ahead()
                return

    def _server_ahead(self) -> None:
        # Another client's push got in first. A smaller push is checked sooner on the
        # server and is likelier to find the head still where it was sent for.
        self._in_flight = None
        self._acked = None
        self.push_size = max(min(self.batch, MIN_PUSH), self.push_size // 2)

    def _rejected(self, rejected: PushRejected) -> list[Action]:
        push = self._in_flight
        if push is None or rejected.id != push.id:
            return []
        self._in_flight = None
        self._acked = None
        if rejected.reason == "server_ahead":
            parent = push.events[0].parent
            if rejected.head is not None and rejected.head.key <= parent.key:
                # Not ahead of where the push goes on: pushing again at once would be
                # refused again, as fast as the two can talk. Reconnect, with backoff.
                return self._fail(
                    "out_of_order",
                    f"the server refused a push after {parent} as behind its head, "
                    f"yet says its head is {rejected.head}",
                )
            self._server_ahead()
            if rejected.head is not None:
                self._heard(rejected.head)  # the pull brings those events next
            return []
        if rejected.reason == "rate_limited":
            return [Wait(held_for(rejected.retry_after) or 1.0, rejected.detail)]
        if rejected.reason == "forbidden":
            self.can_push = False
            return []
        # invalid_event: that event can never be appended; reject it here too.
        if rejected.index is None or not 0 <= rejected.index < len(push.events):
            return self._fail("invalid_event", rejected.detail)
        event = push.events[rejected.index]
        if self._check.event_problem(event, self.client_id) is None:
            # A write is given up only for a fault this device sees too: on a server's
            # word alone, a faulty or hostile one could have every write not yet
            # confirmed dropped, one refusal after another.
            return self._fail(
                "invalid_event",
                f"the sync server refuses event {event.id} ({rejected.detail}), which this "
                "device finds valid: it stays pending, and sync stops (a newer server's "
                "rules: update PJai; otherwise the server is at fault)",
            )
        return [Reject(event.id, f"refused by the sync server: {rejected.detail}")]

    def _heard(self, head: Position) -> None:
        """The server's head is at least ``head`` (frames may come late, never undo it)."""
        if self.server_head is None or head.key > self.server_head.key:
            self.server_head = head

    def _fail(self, code: str, message: str, retry_after: float | None = None) -> list[Action]:
        self.state = "closed"
        return [Fail(code, message, retry=code not in _FINAL, retry_after=retry_after)]
