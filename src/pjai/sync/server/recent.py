"""The newest events of a store, as a sync server process keeps them in memory
(:class:`~pjai.sync.server.sqllog.SqlLog`'s cache), and the memory each takes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec

from pjai.schema.records import EventRecord

__all__ = ["RECORD_BYTES", "Recent", "cached_size", "owned"]

RECORD_BYTES = 560
"""What a cached record takes besides its arguments and the text of its four strings:
the record, its two positions, its time and the objects around them (about 550 bytes,
measured with tracemalloc on records decoded from a push)."""


def owned(record: EventRecord) -> EventRecord:
    """``record`` with arguments of its own. Decoded arguments (``msgspec.Raw``) are a view
    of the whole buffer they came from, a push frame of up to ``MAX_FRAME_BYTES`` or a
    row: a cached record would keep all of it, whatever its arguments' size."""
    args = record.args.copy()
    return record if args is record.args else msgspec.structs.replace(record, args=args)


def cached_size(record: EventRecord) -> int:
    """The memory ``record`` takes in the cache, in bytes, about: its arguments, its id,
    name, client and session, and :data:`RECORD_BYTES` more."""
    return (
        len(record.args)
        + len(record.id)
        + len(record.name)
        + len(record.client_id)
        + len(record.session_id)
        + RECORD_BYTES
    )


@dataclass(slots=True)
class Recent:
    """The newest events of one store: ``records[i]`` is at ``start + i + 1``."""

    start: int
    records: list[EventRecord] = field(default_factory=list)
    size: int = 0
    """The memory ``records`` take (:func:`cached_size`)."""

    @property
    def head(self) -> int:
        return self.start + len(self.records)

    def add(self, records: Sequence[EventRecord]) -> None:
        """Keep ``records``, which follow the head, each with arguments of its own."""
        kept = [owned(r) for r in records]
        self.records.extend(kept)
        self.size += sum(cached_size(r) for r in kept)

    def drop(self, count: int, free: int) -> None:
        """Drop the oldest ``count`` events, and more until ``free`` bytes are freed (or
        none is left)."""
        freed = sum(cached_size(r) for r in self.records[:count])
        while freed < free and count < len(self.records):
            freed += cached_size(self.records[count])
            count += 1
        del self.records[:count]
        self.start += count
        self.size -= freed
