"""Presence, the ``presence/1`` extension of the sync protocol (docs/sync-protocol.md).

Connections that negotiated it announce who they are (:class:`~pjai.sync.protocol.
PresenceUpdate`), and the server tells each of them who else is on the store
(:class:`~pjai.sync.protocol.Presence`). This module holds the rules without I/O: the
limits a peer's announcement must keep (:func:`check_update`) and one store's
:class:`Roster` on one server process, which coalesces changes into at most one
fan-out per :data:`FAN_OUT_INTERVAL_S`, and spaces large ones out further
(:data:`FAN_OUT_BYTES_PER_S`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Generic, TypeVar

import msgspec

from pjai.sync.protocol import Peer, PresenceUpdate

__all__ = [
    "FAN_OUT_BYTES_PER_S",
    "FAN_OUT_INTERVAL_S",
    "MAX_DETAIL_CHARS",
    "MAX_DETAIL_KEYS",
    "MAX_NAME_CHARS",
    "MAX_PEERS",
    "PRESENCE",
    "SEEN_REFRESH",
    "Roster",
    "check_update",
]

L = TypeVar("L")

PRESENCE = "presence/1"
"""The extension's name and version, as the hello offers it and the welcome accepts it."""

MAX_NAME_CHARS = 80
"""The longest name an announcement may carry."""

MAX_DETAIL_KEYS = 8
"""The most keys an announcement's ``detail`` may have."""

MAX_DETAIL_CHARS = 200
"""The longest key or value in an announcement's ``detail``."""

MAX_PEERS = 200
"""The most peers a ``presence`` frame lists, the latest seen: with the limits above
its frame stays under 3 MB, whoever else connects to the store."""

FAN_OUT_INTERVAL_S = 0.1
"""The least time between two fan-outs of one store's presence (at most 10 a second):
a burst of changes within it goes out as one ``presence`` frame."""

FAN_OUT_BYTES_PER_S = 64 * 1024
"""The most bytes of peers a second that fan-outs send each listener: after a fan-out
whose peers encode to *B* bytes, the next waits *B* / 64 KiB seconds when that is longer
than :data:`FAN_OUT_INTERVAL_S`. A peer announcing as often as it can still has a small
roster sent ten times a second, but a large one (wide announcements from its other
connections: up to megabytes) no faster than a slow link takes it: no listener becomes
a slow consumer, and the server's work stays within listeners times 64 KiB a second
per store."""

SEEN_REFRESH = timedelta(seconds=10)
"""A peer's ``last_seen`` alone (pings, pushes) is fanned out again once it moved this
far past the value last sent; joins, leaves and updates go out at once."""


def check_update(update: PresenceUpdate) -> str | None:
    """Why the server refuses ``update``, or ``None``: peers are not trusted."""
    if not update.name.strip() or len(update.name) > MAX_NAME_CHARS:
        return f"presence needs a name of 1 to {MAX_NAME_CHARS} characters, got {len(update.name)}"
    if len(update.detail) > MAX_DETAIL_KEYS:
        return f"presence detail has {len(update.detail)} keys; the limit is {MAX_DETAIL_KEYS}"
    for key, value in update.detail.items():
        if len(key) > MAX_DETAIL_CHARS or len(value) > MAX_DETAIL_CHARS:
            return (
                f"presence detail {key[:40]!r}: keys and values are at most "
                f"{MAX_DETAIL_CHARS} characters"
            )
    return None


class Roster(Generic[L]):
    """One store's presence on one server process: the connections that negotiated it
    (its listeners, of any type ``L``), those that announced themselves, and when to
    send them.

    :meth:`due` says when the next fan-out may go, :meth:`take` marks it sent; changes
    made in between are coalesced into that one fan-out, which goes ``interval``
    seconds after the last one, or later for a large one (``bytes_per_s``). Times given
    to ``due`` and ``take`` are monotonic seconds; ``last_seen`` times are the server's
    clock.
    """

    def __init__(
        self, interval: float = FAN_OUT_INTERVAL_S, bytes_per_s: float = FAN_OUT_BYTES_PER_S
    ) -> None:
        self.interval = interval
        self.bytes_per_s = bytes_per_s
        self.listeners: dict[str, L] = {}
        """By session id."""
        self.peers: dict[str, Peer] = {}
        """By session id."""
        self._sent_seen: dict[str, datetime] = {}
        self._next_at: float | None = None
        self._dirty = False

    def listen(self, session_id: str, listener: L) -> None:
        """Add a connection that hears the roster; it is sent the roster soon."""
        if session_id not in self.listeners:
            self.listeners[session_id] = listener
            self._dirty = True

    def announce(
        self, session_id: str, client_id: str, update: PresenceUpdate, at: datetime
    ) -> None:
        """Add or replace the connection's presence, as of its frame ``at``."""
        self.peers[session_id] = Peer(
            client_id=client_id,
            session_id=session_id,
            name=update.name,
            state=update.state,
            detail=update.detail,
            last_seen=at,
        )
        self._sent_seen[session_id] = at
        self._dirty = True

    def seen(self, session_id: str, at: datetime) -> None:
        """The connection sent a frame ``at``; no-op for one that did not announce."""
        peer = self.peers.get(session_id)
        if peer is None or at <= peer.last_seen:
            return
        self.peers[session_id] = msgspec.structs.replace(peer, last_seen=at)
        if at - self._sent_seen[session_id] >= SEEN_REFRESH:
            self._sent_seen[session_id] = at
            self._dirty = True

    def leave(self, session_id: str) -> bool:
        """The connection closed: drop it; whether it was here."""
        if self.listeners.pop(session_id, None) is None:
            return False
        if self.peers.pop(session_id, None) is not None:
            del self._sent_seen[session_id]
            self._dirty = True
        return True

    @property
    def owed(self) -> bool:
        """Whether a change waits to be fanned out."""
        return self._dirty

    def due(self, now: float) -> float | None:
        """Seconds until the next fan-out may go (0: now), or ``None`` when none is owed."""
        if not self._dirty:
            return None
        if self._next_at is None:
            return 0.0
        return max(0.0, self._next_at - now)

    def take(self, now: float) -> list[Peer] | None:
        """The peers to fan out now, or ``None`` when nothing is due yet."""
        if self.due(now) != 0.0:
            return None
        peers = list(self.peers.values())
        if len(peers) > MAX_PEERS:
            peers = sorted(peers, key=lambda peer: peer.last_seen)[-MAX_PEERS:]
        size = len(msgspec.json.encode(peers))  # what each listener is sent, at most
        self._dirty, self._next_at = False, now + max(self.interval, size / self.bytes_per_s)
        return peers

    @staticmethod
    def others(peers: list[Peer], session_id: str) -> list[Peer]:
        """``peers`` as the connection ``session_id`` receives them: without itself."""
        return [peer for peer in peers if peer.session_id != session_id]
