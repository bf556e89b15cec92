"""A sync client's side of presence (``presence/1``, docs/sync-protocol.md): how it
announces itself, and who else is on the store as the server last said."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC

import msgspec

from pjai.errors import PjaiError
from pjai.sync.presence import MAX_PEERS, PRESENCE
from pjai.sync.protocol import Peer, Presence, PresenceRejected, PresenceState, PresenceUpdate

__all__ = ["PeerBook"]

log = logging.getLogger(__name__)


class PeerBook:
    """One client's announcement and the peers it heard of.

    The extension is offered in the hello once there is an announcement, and on where
    the welcome accepts it (:meth:`welcomed`); the announcement is sent then, and again
    after each change (:meth:`due`). Offline, no peer is known (:meth:`offline`).
    """

    def __init__(
        self, own_client_id: str, announcement: PresenceUpdate | None, wake: Callable[[], None]
    ) -> None:
        self._own = own_client_id
        self._announcement = announcement
        self._wake = wake
        self._due = False
        self._on = False  # negotiated on the current connection
        self._peers: list[Peer] = []
        self._listeners: list[Callable[[list[Peer]], None]] = []
        self._changed = asyncio.Event()

    @property
    def offered(self) -> bool:
        """Whether the hello offers the extension: there is something to announce."""
        return self._announcement is not None

    @property
    def peers(self) -> list[Peer]:
        """Who else is on the store now, as the server last said: empty while offline,
        without an announcement, or with a server that does not speak ``presence/1``."""
        return list(self._peers)

    def announce(
        self,
        name: str | None = None,
        *,
        state: PresenceState | None = None,
        detail: Mapping[str, str] | None = None,
    ) -> None:
        """Change how this client appears to its peers (what is not given stays).

        Sent at once when connected; safe to call from any thread. The first
        announcement of a client made without a presence name takes effect from its
        next connection, since the extension is negotiated in the hello.
        """
        current = self._announcement
        if current is None:
            if name is None:
                raise PjaiError("the first announcement needs a name")
            current = PresenceUpdate(name=name)
        self._announcement = PresenceUpdate(
            name=current.name if name is None else name,
            state=state or current.state,
            detail=current.detail if detail is None else dict(detail),
        )
        self._due = True
        self._wake()

    def on_peers(self, callback: Callable[[list[Peer]], None]) -> Callable[[], None]:
        """Call ``callback(peers)`` on the client's event loop whenever the peers change;
        returns the function that stops it."""
        self._listeners.append(callback)

        def stop() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(callback)

        return stop

    async def wait(self, check: Callable[[list[Peer]], bool]) -> None:
        """Wait until ``check(peers)`` holds (wrap it in ``asyncio.timeout()``)."""
        while not check(self.peers):
            changed = self._changed
            await changed.wait()

    def welcomed(self, extensions: object) -> None:
        """The server's welcome: the announcement is due where it accepted the extension."""
        self._on = self._due = isinstance(extensions, list) and PRESENCE in extensions

    def due(self, ready: bool) -> PresenceUpdate | None:
        """The announcement to send now, on a ``ready`` session, if one is owed."""
        if not (ready and self._on and self._due) or self._announcement is None:
            return None
        self._due = False
        return self._announcement

    def heard(self, message: Presence | PresenceRejected) -> None:
        """Take the server's word on who is there (or its refusal of the announcement)."""
        if isinstance(message, PresenceRejected):
            log.warning("the sync server refused this client's presence: %s", message.detail)
            return
        # An older session of this client may linger on the server.
        peers = [_in_utc(peer) for peer in message.peers if peer.client_id != self._own]
        if None in peers:
            log.warning("the sync server sent peers seen at no time UTC can hold; left out")
        kept = [peer for peer in peers if peer is not None]
        if len(kept) > MAX_PEERS:  # a server keeping to the protocol sends no more
            kept = sorted(kept, key=lambda peer: peer.last_seen)[-MAX_PEERS:]
        self._set(kept)

    def offline(self) -> None:
        """The connection ended: the extension is off and nobody is known to be there."""
        self._on = False
        self._set([])

    def _set(self, peers: list[Peer]) -> None:
        if peers == self._peers:
            return
        self._peers = peers
        self._changed.set()
        self._changed = asyncio.Event()
        for callback in list(self._listeners):
            try:
                callback(list(peers))
            except Exception:  # one listener's bug must not stop syncing
                log.exception("a presence listener failed")


def _in_utc(peer: Peer) -> Peer | None:
    """``peer`` with its ``last_seen`` in UTC; ``None`` when it has no offset or is out of
    the range UTC can hold (a server can send ``0001-01-01T00:00:00+01:00``)."""
    if peer.last_seen.tzinfo is None:
        return None
    try:
        return msgspec.structs.replace(peer, last_seen=peer.last_seen.astimezone(UTC))
    except OverflowError:
        return None
