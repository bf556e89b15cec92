"""Logged events and their positions in the store's history."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import msgspec

from pjai.schema.fields import UtcDatetime

__all__ = ["ROOT", "EventRecord", "EventStatus", "LogEntry", "Position"]

EventStatus = Literal["pending", "confirmed", "rejected"]
"""``pending``: committed here, not yet confirmed by an upstream. ``confirmed``: part of
the agreed history. ``rejected``: a pending event that no longer applied after a rebase;
kept for the audit trail, not materialized, never pushed."""


class Position(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """Where an event sits in history: ``(global_seq, client_seq, generation)``.

    ``global_seq`` orders events across all clients; ``client_seq`` is reserved for
    client-only events between two global positions and is 0 for every synced event;
    ``generation`` counts the rebases that renumbered the event. Order and equality
    use ``(global_seq, client_seq)`` only.
    """

    global_seq: int
    client_seq: int = 0
    generation: int = 0

    @property
    def key(self) -> tuple[int, int]:
        """The part of the position that orders events."""
        return (self.global_seq, self.client_seq)

    def next(self, generation: int) -> Position:
        """The position right after this one."""
        return Position(self.global_seq + 1, 0, generation)

    def __str__(self) -> str:
        return f"e{self.global_seq}" + (f"+{self.client_seq}" if self.client_seq else "")


ROOT = Position(0)
"""The parent of the first event."""


class EventRecord(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One event as logged and synced: id, name, JSON arguments, position and origin."""

    id: str
    name: str
    args: msgspec.Raw
    position: Position
    parent: Position
    client_id: str
    session_id: str
    at: UtcDatetime


@dataclass(frozen=True, slots=True)
class LogEntry:
    """An event record with its local status and, if it was not applied, why."""

    record: EventRecord
    status: EventStatus
    error: str | None = None
