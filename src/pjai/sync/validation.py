"""What the events of a push must be for the server to append them; the client checks
its own events by the same rules before it gives one up as the server refused it.

Each event: arguments of at most :data:`MAX_EVENT_BYTES`, an id and the pushing
client's id (a client pushes its own events only), ids and a name of at most
``MAX_ID_BYTES``, a position and time every log can keep, and arguments its event
accepts when the schema knows it, or the name of a newer version of the vocabulary
when it does not (kept, for newer clients to materialize). The push: no event twice,
each one after the one before, the first after a head.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pjai.errors import EventError
from pjai.schema import SCHEMA, Schema
from pjai.schema.records import EventRecord, Position, header_problem
from pjai.sync.protocol import MAX_ID_BYTES

__all__ = ["MAX_EVENT_BYTES", "PushCheck"]

MAX_EVENT_BYTES = 3 * 1024 * 1024
"""The largest event arguments a push may carry: the 2 MiB of plain arguments a new event
may hold (:data:`~pjai.schema.limits.MAX_ARGS_BYTES`), or as much sealed (padded, and a
third larger as base64)."""

_NAME = re.compile(r"^v(\d+)\.[A-Z][A-Za-z0-9]*$")


class PushCheck:
    """Checks the events of pushes against ``schema``."""

    def __init__(self, schema: Schema = SCHEMA) -> None:
        self._schema = schema
        self._newest_version = max(
            (int(m[1]) for n in schema.event_names if (m := _NAME.match(n))), default=1
        )

    def problem(self, events: Sequence[EventRecord], client_id: str) -> tuple[int, str] | None:
        """The index of the first of ``events``, pushed by ``client_id``, that may not be
        appended and why; ``None`` if all may."""
        for index, record in enumerate(events):
            problem = self.event_problem(record, client_id)
            if problem is not None:
                return index, problem
        seen: set[str] = set()
        for index, record in enumerate(events):
            if record.id in seen:
                return index, f"event {record.id} appears twice in the push"
            seen.add(record.id)
            # The first event's parent is a head: a synced position has no client_seq.
            after = events[index - 1].position if index else Position(record.parent.global_seq)
            if record.parent.key != after.key or record.position.key != after.next(0).key:
                return index, f"event {record.id} at {record.position} does not follow its parent"
        return None

    def event_problem(self, record: EventRecord, client_id: str) -> str | None:
        """Why ``record``, pushed by ``client_id``, may not be appended on its own (what
        its place in a push may add aside), or ``None``."""
        size = len(record.args)
        if size > MAX_EVENT_BYTES:
            return (
                f"event {record.id} has {size} bytes of arguments; the limit is {MAX_EVENT_BYTES}"
            )
        if not record.id or not record.client_id:
            return "an event needs an id and a client_id"
        if record.client_id != client_id:
            # A client pushes its own events only: the audit trail's "who" holds.
            return (
                f"event {record.id[:40]} names client {record.client_id[:40]!r}, but this "
                f"connection is client {client_id[:40]!r}"
            )
        for field in ("id", "client_id", "session_id", "name"):
            if len(getattr(record, field).encode()) > MAX_ID_BYTES:
                return f"event {record.id[:40]}: {field} is over {MAX_ID_BYTES} bytes"
        if (problem := header_problem(record)) is not None:
            return problem
        if self._schema.knows(record.name):
            try:
                self._schema.check(record.name, record.args)
            except EventError as exc:
                return str(exc)
            return None
        match = _NAME.match(record.name)
        if match is None or int(match[1]) <= self._newest_version:
            return f"unknown event name {record.name!r}"
        return None  # a newer version of PJai's vocabulary: kept, materialized by newer clients
