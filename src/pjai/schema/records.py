"""Logged events and their positions in the store's history."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from pjai.errors import EventValidationError
from pjai.schema.codec import PLAIN, Codec, History
from pjai.schema.fields import UtcDatetime
from pjai.schema.limits import INT64_MAX, text_problem, time_problem
from pjai.schema.types import new_id

__all__ = [
    "ROOT",
    "EventRecord",
    "EventStatus",
    "Following",
    "LogEntry",
    "Position",
    "acting_as",
    "args_text",
    "header_problem",
    "session_of",
    "stamp",
]

EventStatus = Literal["pending", "confirmed", "rejected"]
"""``pending``: committed here, not yet confirmed by an upstream. ``confirmed``: part of
the agreed history. ``rejected``: a pending event that no longer applied after a rebase;
kept for the audit trail, not materialized, never pushed."""


Seq = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]


class Position(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """Where an event sits in history: ``(global_seq, client_seq, generation)``.

    ``global_seq`` orders events across all clients; ``client_seq`` is reserved for
    client-only events between two global positions and is 0 for every synced event;
    ``generation`` counts the rebases that renumbered the event. Order and equality
    use ``(global_seq, client_seq)`` only.
    """

    global_seq: Seq
    client_seq: Seq = 0
    generation: Seq = 0

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

    def __post_init__(self) -> None:
        # A record with a time out of range could be logged by no backend.
        if (problem := time_problem(self.at)) is not None:
            raise ValueError(f"event {self.id[:40]}: its time {problem}")


def header_problem(record: EventRecord) -> str | None:
    """Why ``record``'s id, name, client or session could not be journaled by every SQL
    backend, or ``None``. Its time and arguments are checked as they are decoded."""
    for field in ("id", "name", "client_id", "session_id"):
        if (problem := text_problem(getattr(record, field))) is not None:
            return f"event {record.id[:40]!r}: its {field} {problem}"
    return None


_ACTING: ContextVar[str | None] = ContextVar("pjai_acting_session", default=None)


@contextmanager
def acting_as(session_id: str) -> Iterator[None]:
    """Within the block (this thread or task), the events committed here name
    ``session_id`` as their session in place of the process's: the events a plugin's run
    causes name the plugin (``plugin:NAME@VERSION``) in the audit trail."""
    token = _ACTING.set(session_id)
    try:
        yield
    finally:
        _ACTING.reset(token)


def session_of(default: str) -> str:
    """The session the events committed here name: the one :func:`acting_as` set, else
    ``default`` (the process's)."""
    return _ACTING.get() or default


def stamp(
    encoded: Iterable[tuple[str, bytes]],
    *,
    after: Position,
    generation: int,
    client_id: str,
    session_id: str,
    at: datetime,
    codec: Codec = PLAIN,
    history: History | None = None,
) -> list[EventRecord]:
    """New records for encoded events (name and arguments, as
    :meth:`~pjai.schema.Schema.encode` gives them), numbered one after another from
    ``after``: each gets a new id, its position and its parent's, the origin, and its
    arguments sealed by ``codec`` (the schema's) with its id, after ``history`` (the
    committing store's log, if known) and the records made before it here."""
    records: list[EventRecord] = []
    parent = Position(after.global_seq, after.client_seq)  # as logged: no generation
    plain = codec is PLAIN
    before = None if history is None else Following(history, records)
    for name, args in encoded:
        position = parent.next(generation)
        event_id = new_id()
        records.append(
            EventRecord(
                id=event_id,
                name=name,
                args=msgspec.Raw(args if plain else _made(codec, event_id, name, args, before)),
                position=position,
                parent=parent,
                client_id=client_id,
                session_id=session_id,
                at=at,
            )
        )
        parent = Position(position.global_seq, position.client_seq)
    return records


def _made(codec: Codec, event_id: str, name: str, args: bytes, history: History | None) -> bytes:
    """A new event's arguments as ``codec`` stores them: sealed, and proved."""
    return codec.prove(event_id, name, codec.seal(event_id, name, args, history))


class Following:
    """The history of a record being made: ``history`` (none: an empty log), then the
    ``records`` made before it, in order (in the same commit; a list its maker extends
    as it goes)."""

    def __init__(self, history: History | None, records: list[EventRecord]) -> None:
        self._history, self._records = history, records
        self._found: dict[tuple[frozenset[str], str], tuple[bytes | None, int]] = {}
        """What was found, and how many records there were then: of a large commit,
        the history is read once, and each record looked at once."""

    def last(self, names: Collection[str], persona_id: str) -> bytes | None:
        """As :meth:`History.last`, the commit's own records first."""
        asked = (frozenset(names), persona_id)
        before = self._found.get(asked)
        seen = 0 if before is None else before[1]
        found = None
        for record in reversed(self._records[seen:]):
            if record.name in names:
                args = msgspec.json.decode(bytes(record.args))
                if isinstance(args, dict) and args.get("persona_id") == persona_id:
                    found = bytes(record.args)
                    break
        if found is None and before is not None:
            found = before[0]
        elif found is None and self._history is not None:
            found = self._history.last(names, persona_id)
        self._found[asked] = found, len(self._records)
        return found


def args_text(record: EventRecord) -> str:
    """The record's JSON arguments as text, as logs and journals keep them.

    Arguments that are not UTF-8 cannot be kept by any log: such a record is refused
    with :class:`~pjai.errors.EventValidationError` before anything is written.
    """
    try:
        return bytes(record.args).decode()
    except UnicodeDecodeError as exc:
        raise EventValidationError(
            record.name[:100],
            f"the arguments of event {record.id[:40]} are not valid UTF-8 (byte {exc.start}); "
            "no log can keep them",
        ) from exc


@dataclass(frozen=True, slots=True)
class LogEntry:
    """An event record with its local status and, if it was not applied, why."""

    record: EventRecord
    status: EventStatus
    error: str | None = None
