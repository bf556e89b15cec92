"""Sealed fields as the schema sees them: an envelope in place of a sensitive field's
value, and the shape of an event whose sensitive fields are sealed.

A field encryption codec (:mod:`pjai.security.fields`) replaces the value of each
sensitive field (``Event.SENSITIVE``) with an :class:`Envelope`. Whoever has no key (the
sync server) can still check such an event: :func:`sealed_type` gives the event type
with each sensitive field typed as an envelope, so every other field is validated as
usual and each envelope's shape is checked.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

__all__ = [
    "ENVELOPE_KEY",
    "MAX_SEALED_CHARS",
    "Envelope",
    "is_envelope",
    "sealed_type",
    "sealed_with",
]

ENVELOPE_KEY = "$sealed"
"""The key that marks a JSON object as an envelope (its format version is the value)."""

MAX_SEALED_CHARS = 3_000_000
"""The longest ciphertext an envelope carries (base64): a field at its longest (the 2 MiB
an event's arguments may hold), padded and encoded, fits."""


class Envelope(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A sealed value: format version, the id of the data key, the nonce and the
    ciphertext (base64), which authenticates the event id, type and field name."""

    version: Literal[1] = msgspec.field(name=ENVELOPE_KEY)
    key: Annotated[str, Meta(min_length=1, max_length=64)]
    nonce: Annotated[str, Meta(min_length=16, max_length=16)]
    data: Annotated[str, Meta(min_length=24, max_length=MAX_SEALED_CHARS)]


def is_envelope(value: Any) -> bool:
    """Whether a decoded JSON value is an envelope (by its marker key)."""
    return isinstance(value, dict) and ENVELOPE_KEY in value


_MARK = f'"{ENVELOPE_KEY}"'.encode()


def sealed_with(stored: bytes) -> str | None:
    """The id of the data key that sealed an event's stored JSON arguments (the key its
    first envelope names: a codec seals an event's fields with one key), or ``None``
    when none of them is sealed."""
    if _MARK not in stored:
        return None
    doc = msgspec.json.decode(stored)
    for value in doc.values() if isinstance(doc, dict) else ():
        if is_envelope(value) and isinstance(value.get("key"), str):
            return str(value["key"])
    return None


def _sealed_or_plain(kind: Any) -> Any:
    """An envelope, or the field's plain value where JSON tells the two apart (a string or
    a list, not another object): an event written before a field was sealed, or by a
    device without keys, holds it plain while its other fields are sealed."""
    either = Envelope | kind | UnsetType
    try:
        msgspec.json.Decoder(either)
    except TypeError:  # two kinds of JSON object: only the envelope is allowed
        return Envelope | UnsetType
    return either


def sealed_type(event_type: type[Struct]) -> type[Struct] | None:
    """``event_type`` with each of its sensitive fields an optional :class:`Envelope`, or
    its plain value where that is not a JSON object (``None`` for a type without
    sensitive fields). Decoding with it validates every other field as the event type
    does."""
    sensitive: tuple[str, ...] = getattr(event_type, "SENSITIVE", ())
    if not sensitive:
        return None
    fields: list[tuple[str, Any, Any]] = []
    for info in msgspec.structs.fields(event_type):
        if info.name in sensitive:
            fields.append((info.name, _sealed_or_plain(info.type), UNSET))
        elif info.default is not msgspec.NODEFAULT:
            fields.append((info.name, info.type, info.default))
        elif info.default_factory is not msgspec.NODEFAULT:
            fields.append(
                (info.name, info.type, msgspec.field(default_factory=info.default_factory))
            )
        else:
            fields.append((info.name, info.type, msgspec.NODEFAULT))
    # Required fields first (as defstruct wants), then those with defaults.
    spec: list[tuple[str, Any] | tuple[str, Any, Any]] = [
        (name, kind) for name, kind, default in fields if default is msgspec.NODEFAULT
    ]
    spec += [f for f in fields if f[2] is not msgspec.NODEFAULT]
    return msgspec.defstruct(
        f"Sealed{event_type.__name__}",
        spec,
        kw_only=True,
        forbid_unknown_fields=True,
        frozen=True,
    )
