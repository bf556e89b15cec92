"""The one seam for event bytes: how event arguments are kept at rest and on the wire.

Every new event's arguments go through a :class:`Codec` when its record is made
(:func:`~pjai.schema.records.stamp`, which gives the event its id), and back when the
schema decodes a record. An :class:`~pjai.schema.EventRecord` carries its arguments as
the codec left them, so the store's log, the SQL journal, the sync server's log and
export archives keep and send them as they are, and only code that decodes a payload
through the schema sees it in the clear. Field encryption is a codec
(:mod:`pjai.security.fields`); nothing else needs to know whether arguments are
encrypted. The codec is given the event's id and name, so that what it seals can be
bound to the one event it belongs to.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["PLAIN", "Codec", "PlainCodec"]


class Codec(Protocol):
    """Turns an event's JSON arguments into what is stored and sent, and back.

    Both sides are JSON objects (records embed their arguments in JSON frames), and
    ``unseal(id, name, seal(id, name, args))`` gives ``args`` back.
    """

    @property
    def name(self) -> str:
        """What the codec is called in health reports and archive manifests."""
        ...

    def seal(self, event_id: str, event_name: str, args: bytes) -> bytes:
        """The stored form of a new event's JSON arguments."""
        ...

    def unseal(self, event_id: str, event_name: str, stored: bytes) -> bytes:
        """The JSON arguments of a stored event."""
        ...


class PlainCodec:
    """Keeps arguments as they are: plain JSON."""

    name = "plain"

    def seal(self, event_id: str, event_name: str, args: bytes) -> bytes:
        """``args`` unchanged."""
        return args

    def unseal(self, event_id: str, event_name: str, stored: bytes) -> bytes:
        """``stored`` unchanged."""
        return stored


PLAIN = PlainCodec()
"""The codec of a schema that was not given another (:meth:`Schema.with_codec`)."""
