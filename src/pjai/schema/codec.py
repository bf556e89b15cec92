"""The one seam for event bytes: how event arguments are kept at rest and on the wire.

Every event's arguments go through a :class:`Codec` when a :class:`~pjai.schema.Schema`
encodes it, and back when the schema decodes it. An :class:`~pjai.schema.EventRecord`
carries its arguments as the codec left them, so the store's log, the SQL journal, the
sync server's log and export archives keep and send them as they are, and only code
that decodes a payload through the schema sees it in the clear. Field encryption is a
codec; nothing else needs to know whether arguments are encrypted.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["PLAIN", "Codec", "PlainCodec"]


class Codec(Protocol):
    """Turns an event's JSON arguments into what is stored and sent, and back.

    Both sides are JSON objects (records embed their arguments in JSON frames), and
    ``unseal(name, seal(name, args))`` gives ``args`` back.
    """

    @property
    def name(self) -> str:
        """What the codec is called in health reports and archive manifests."""
        ...

    def seal(self, event_name: str, args: bytes) -> bytes:
        """The stored form of a new event's JSON arguments."""
        ...

    def unseal(self, event_name: str, stored: bytes) -> bytes:
        """The JSON arguments of a stored event."""
        ...


class PlainCodec:
    """Keeps arguments as they are: plain JSON."""

    name = "plain"

    def seal(self, event_name: str, args: bytes) -> bytes:
        """``args`` unchanged."""
        return args

    def unseal(self, event_name: str, stored: bytes) -> bytes:
        """``stored`` unchanged."""
        return stored


PLAIN = PlainCodec()
"""The codec of a schema that was not given another (:meth:`Schema.with_codec`)."""
