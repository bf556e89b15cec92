"""The one seam for event bytes: how event arguments are kept at rest and on the wire.

Every new event's arguments go through a :class:`Codec` when its record is made
(:func:`~pjai.schema.records.stamp`, which gives the event its id), and back when the
schema decodes a record. An :class:`~pjai.schema.EventRecord` carries its arguments as
the codec left them, so the store's log, the SQL journal, the sync server's log and
export archives keep and send them as they are, and only code that decodes a payload
through the schema sees it in the clear. Field encryption is a codec
(:mod:`pjai.security.fields`); nothing else needs to know whether arguments are
encrypted. The codec is given the event's id and name, so that what it seals can be
bound to the one event it belongs to, and the history the event follows
(:class:`History`), so that it can tell which persona of an id given again it seals for.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol

from pjai.schema.ops import Op

__all__ = ["PLAIN", "Codec", "ColumnCodec", "History", "PlainCodec"]


class History(Protocol):
    """The events a new event follows, as the store that commits it holds them: its
    log (applied events only) and the events of the same commit before it."""

    def last(self, names: Collection[str], persona_id: str) -> bytes | None:
        """The stored arguments of the newest of them named one of ``names`` whose
        ``persona_id`` is ``persona_id``, or ``None``."""
        ...


class Codec(Protocol):
    """Turns an event's JSON arguments into what is stored and sent, and back.

    Both sides are JSON objects (records embed their arguments in JSON frames), and
    ``unseal(id, name, seal(id, name, args))`` gives ``args`` back.
    """

    @property
    def name(self) -> str:
        """What the codec is called in health reports and archive manifests."""
        ...

    def seal(
        self, event_id: str, event_name: str, args: bytes, history: History | None = None
    ) -> bytes:
        """The stored form of a new event's JSON arguments; ``history``: what the event
        follows, where known."""
        ...

    def prove(self, event_id: str, event_name: str, stored: bytes) -> bytes:
        """The stored form of a new event, with what proves that a device of the store
        made it where the event needs that (``Event.PROVED``), checked as it is
        unsealed. Given only to events made here, never to one taken in."""
        ...

    def unseal(self, event_id: str, event_name: str, stored: bytes) -> bytes:
        """The JSON arguments of a stored event."""
        ...

    def columns(self) -> ColumnCodec | None:
        """The same keys sealing table columns (archive snapshots, a shared SQL
        primary), or ``None`` for a codec that keeps values plain."""
        ...


class PlainCodec:
    """Keeps arguments as they are: plain JSON."""

    name = "plain"

    def seal(
        self, event_id: str, event_name: str, args: bytes, history: History | None = None
    ) -> bytes:
        """``args`` unchanged."""
        return args

    def prove(self, event_id: str, event_name: str, stored: bytes) -> bytes:
        """``stored`` unchanged: with no key, there is no proof."""
        return stored

    def unseal(self, event_id: str, event_name: str, stored: bytes) -> bytes:
        """``stored`` unchanged."""
        return stored

    def columns(self) -> ColumnCodec | None:
        """``None``: columns stay plain too."""
        return None


PLAIN = PlainCodec()
"""The codec of a schema that was not given another (:meth:`Schema.with_codec`)."""


class ColumnCodec(Protocol):
    """Keeps the sensitive columns (:data:`pjai.schema.tables.SENSITIVE`) of a shared
    SQL primary sealed: what SQL is given to write, and what is read back from it."""

    @property
    def name(self) -> str:
        """What the codec is called in health reports."""
        ...

    @property
    def columns(self) -> Mapping[str, tuple[str, ...]]:
        """Per table, the columns kept sealed."""
        ...

    def seal_ops(
        self, ops: Sequence[Op], persona_id: str | None, stored: bytes | None = None
    ) -> list[Op]:
        """``ops`` (of one event of ``persona_id``) with each sensitive value sealed,
        with the key that sealed ``stored`` (the event's stored arguments), if any.
        Raises :class:`~pjai.errors.ErasedValueError` when that key was erased."""
        ...

    def open_value(self, table: str, column: str, value: Any, persona_id: str | None) -> Any:
        """The plain value of a sensitive column of ``persona_id``'s row as SQL returned
        it (a plain value, from before sealing was on, is returned as it is)."""
        ...

    def open_row(self, table: str, row: Mapping[str, Any]) -> dict[str, Any]:
        """``row`` of ``table`` with its sensitive columns opened."""
        ...

    def seal_row(
        self,
        table: str,
        row: Mapping[str, Any],
        persona_id: str | None,
        stored: bytes | None = None,
    ) -> dict[str, Any]:
        """``row`` of ``table`` with its sensitive columns sealed under a data key of
        ``persona_id`` (the store's own for none): of the lineage of the key that sealed
        ``stored`` (an event of hers), if any. Raises
        :class:`~pjai.errors.ErasedValueError` when that key was erased."""
        ...
