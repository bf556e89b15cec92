"""The encoded ``events`` frames a hub shares between the live pullers of a store."""

from __future__ import annotations

from pjai.sync.protocol import Events, Message, encode

__all__ = ["FRAMES_BYTES", "Frames"]

FRAMES_BYTES = 32 * 1024 * 1024
"""Bytes of encoded ``events`` frames a hub keeps for its live pullers, at most."""


class Frames:
    """Encoded frames of the latest event batches: the live pullers of a store are sent
    the same batch after each append, which is encoded once for all of them. Frames are
    kept per store: event ids are unique within a store only (an archive imported into
    two stores keeps its ids). At most ``size`` frames and ``budget`` bytes are kept, the
    oldest going first: frames of up to ``MAX_FRAME_BYTES`` each would otherwise hold
    ``size`` times that."""

    def __init__(self, size: int = 64, budget: int = FRAMES_BYTES) -> None:
        self._size = size
        self._budget = budget
        self._frames: dict[tuple[object, ...], bytes] = {}
        self.kept = 0
        """Bytes of the frames kept."""

    def encode(self, message: Message | Events, store_id: str) -> bytes:
        if not isinstance(message, Events) or not message.events:
            return encode(message)
        first, last = message.events[0], message.events[-1]
        key = (store_id, first.id, last.id, len(message.events), message.head.key, message.more)
        frame = self._frames.get(key)
        if frame is None:
            frame = encode(message)
            if len(frame) > self._budget:
                return frame
            # The encoder leaves room after what it wrote, half as much again: a frame
            # kept is a copy of its own size, or the budget would hold half as much more.
            frame = self._frames[key] = bytes(memoryview(frame))
            self.kept += len(frame)
            while len(self._frames) > self._size or self.kept > self._budget:
                oldest = next(iter(self._frames))
                self.kept -= len(self._frames.pop(oldest))
        return frame
