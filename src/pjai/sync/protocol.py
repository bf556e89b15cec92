"""PJai sync protocol v1: the messages and their wire form (docs/sync-protocol.md).

Every frame is one JSON object with a ``type`` field, sent as one WebSocket text
message. Events travel as :class:`~pjai.schema.records.EventRecord` objects, exactly as
the stores log them. This module only encodes and decodes; the state machines that
decide what to send are :mod:`pjai.sync.server.session` and :mod:`pjai.sync.clientside`.

Extensions are negotiated in the hello and welcome (``extensions``) and add messages
that only a connection which negotiated them carries: ``presence/1``
(:mod:`pjai.sync.presence`) adds ``presence_update``, ``presence`` and
``presence_rejected``.
"""

from __future__ import annotations

import re
from datetime import datetime
from itertools import accumulate
from typing import Literal

import msgspec
from msgspec import UNSET, UnsetType

from pjai.errors import PjaiError
from pjai.schema.limits import encoding_problem, text_problem
from pjai.schema.records import EventRecord, Position

__all__ = [
    "ENVELOPE_BYTES",
    "MAX_EVENTS_PER_FRAME",
    "MAX_FRAME_BYTES",
    "MAX_HELLO_BYTES",
    "MAX_ID_BYTES",
    "MAX_NESTING",
    "VERSIONS",
    "Error",
    "Events",
    "Hello",
    "Message",
    "Peer",
    "Ping",
    "Pong",
    "Presence",
    "PresenceRejected",
    "PresenceState",
    "PresenceUpdate",
    "ProtocolError",
    "Pull",
    "Push",
    "PushAck",
    "PushRejected",
    "Role",
    "Welcome",
    "decode",
    "encode",
    "fit_frame",
    "nameable",
    "nesting",
    "wire_name",
]

VERSIONS = (1,)
"""Protocol versions this PJai speaks, oldest first."""

MAX_FRAME_BYTES = 8 * 1024 * 1024
"""The largest frame either side accepts."""

ENVELOPE_BYTES = 4096
"""An upper bound on what a record adds to its arguments in a frame: four strings of at
most 100 bytes (ids, name; JSON escaping at most sixfold), positions, time and keys."""

MAX_EVENTS_PER_FRAME = 1_000
"""The most events one push or one events frame carries."""

MAX_HELLO_BYTES = 64 * 1024
"""The largest first frame a server reads (a hello takes a few hundred bytes): before
the hello nothing is known of the peer, so no more is decoded than a hello needs."""

MAX_ID_BYTES = 100
"""The longest id, client id, session id or event name a push may carry, in UTF-8 (a UUID
has 36): with the arguments limited too, a record's size in a frame is bounded
(:data:`ENVELOPE_BYTES`)."""

MAX_NESTING = 64
"""The deepest a frame's JSON may nest (objects and arrays, the frame's own included).
Both sides refuse a deeper frame, so that what one side takes the other can read, and an
event nested too deep for a decoder's stack never enters a log."""

Role = Literal["read", "write", "admin"]


def nameable(store_or_client_id: str) -> bool:
    """Whether a hello can name this store or client id: 1 to :data:`MAX_ID_BYTES` bytes of
    UTF-8 without NUL (what every database can keep)."""
    value = store_or_client_id
    if not value or text_problem(value) or encoding_problem(value):
        return False
    return len(value.encode()) <= MAX_ID_BYTES


PresenceState = Literal["online", "away"]


class ProtocolError(PjaiError):
    """A frame that is not valid protocol: undecodable, unknown type, out of order.

    ``message_type`` is the ``type`` the frame claimed when it was a JSON object with
    one, even though the rest did not decode (a peer may refuse just that message).
    """

    def __init__(self, code: str, message: str, *, message_type: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message_type = message_type


class Hello(msgspec.Struct, frozen=True, kw_only=True, tag="hello", tag_field="type"):
    """Client, first frame: the versions it speaks, which store, who it is."""

    versions: list[int]
    store_id: str
    client_id: str
    token: str = ""
    extensions: list[str] | UnsetType = UNSET
    """The extensions the client speaks (``presence/1``); absent from the frame when
    unset, so a hello without extensions is a plain v1 hello."""


class Welcome(msgspec.Struct, frozen=True, kw_only=True, tag="welcome", tag_field="type"):
    """Server, answer to hello: the chosen version, its identity, the store's head."""

    version: int
    backend_id: str
    store_id: str
    head: Position
    role: Role
    extensions: list[str] | UnsetType = UNSET
    """Of the extensions the hello offered, those this connection uses; absent when the
    hello offered none."""


class Push(msgspec.Struct, frozen=True, kw_only=True, tag="push", tag_field="type"):
    """Client: events to append; the first one's parent must be the server's head."""

    id: int
    events: list[EventRecord]


class PushAck(msgspec.Struct, frozen=True, kw_only=True, tag="push_ack", tag_field="type"):
    """Server: the push was appended; ``head`` is the store's new head."""

    id: int
    head: Position
    accepted: int


PushRejection = Literal["server_ahead", "invalid_event", "forbidden", "rate_limited"]


class PushRejected(
    msgspec.Struct, frozen=True, kw_only=True, tag="push_rejected", tag_field="type"
):
    """Server: nothing of the push was appended, and why.

    ``server_ahead``: the first parent is not the head (``head`` says where it is);
    ``invalid_event``: event ``index`` is not valid (``detail`` says why); ``forbidden``:
    the token may not write; ``rate_limited``: retry after ``retry_after`` seconds.
    """

    id: int
    reason: PushRejection
    detail: str = ""
    head: Position | None = None
    index: int | None = None
    retry_after: float | None = None


class Pull(msgspec.Struct, frozen=True, kw_only=True, tag="pull", tag_field="type"):
    """Client: send the events after ``cursor``; with ``live``, keep sending new ones."""

    cursor: Position
    live: bool = True


class Events(msgspec.Struct, frozen=True, kw_only=True, tag="events", tag_field="type"):
    """Server: consecutive events after the pull's cursor; ``more`` if others follow now."""

    events: list[EventRecord]
    head: Position
    more: bool


class Ping(msgspec.Struct, frozen=True, kw_only=True, tag="ping", tag_field="type"):
    """Either side: are you there? Answered with a pong carrying the same nonce."""

    nonce: int


class Pong(msgspec.Struct, frozen=True, kw_only=True, tag="pong", tag_field="type"):
    """Either side: the answer to a ping."""

    nonce: int


class Error(
    msgspec.Struct, frozen=True, kw_only=True, tag="error", tag_field="type", omit_defaults=True
):
    """Either side: the connection cannot go on; the sender closes it after this frame.

    Codes: ``unsupported_version``, ``unauthorized``, ``bad_frame``, ``out_of_order``,
    ``bad_cursor``, ``server_error``, ``rate_limited`` (with ``retry_after``). (A slow
    consumer is closed with code 1008 and the reason ``slow_consumer``, without a frame:
    it is not reading them.)
    """

    code: str
    message: str
    retry_after: float | None = None
    """With ``rate_limited``: the seconds before the client may open a new connection."""


class PresenceUpdate(
    msgspec.Struct, frozen=True, kw_only=True, tag="presence_update", tag_field="type"
):
    """Client, with ``presence/1``: who it is now. It replaces the client's previous one."""

    name: str
    state: PresenceState = "online"
    detail: dict[str, str] = {}
    """What it is doing, e.g. ``{"view": "personas", "persona_id": "p1"}``."""


class Peer(msgspec.Struct, frozen=True, kw_only=True):
    """One other connection on the store that announced itself."""

    client_id: str
    session_id: str
    """The server's id for the connection (one client may reconnect as a new session)."""
    name: str
    state: PresenceState
    detail: dict[str, str]
    last_seen: datetime
    """The server's time of the last frame it had from the connection."""


class Presence(msgspec.Struct, frozen=True, kw_only=True, tag="presence", tag_field="type"):
    """Server, with ``presence/1``: every other announced connection on the store now."""

    peers: list[Peer]


class PresenceRejected(
    msgspec.Struct, frozen=True, kw_only=True, tag="presence_rejected", tag_field="type"
):
    """Server, with ``presence/1``: a presence update was refused (the connection goes on)."""

    detail: str


Message = (
    Hello
    | Welcome
    | Push
    | PushAck
    | PushRejected
    | Pull
    | Events
    | Ping
    | Pong
    | Error
    | PresenceUpdate
    | Presence
    | PresenceRejected
)


class _Typed(msgspec.Struct):
    type: str = ""


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Message)


def encode(message: Message) -> bytes:
    """The frame for ``message``."""
    return _encoder.encode(message)


def decode(frame: bytes | str) -> Message:
    """The message in ``frame``, or :class:`ProtocolError` (code ``bad_frame``)."""
    if len(frame) > MAX_FRAME_BYTES:
        raise ProtocolError(
            "bad_frame", f"frame of {len(frame)} bytes; the limit is {MAX_FRAME_BYTES}"
        )
    try:
        if not isinstance(frame, str):
            # Event arguments pass through undecoded (msgspec.Raw): check the text once.
            frame.decode()
        text = frame.encode() if isinstance(frame, str) else frame
        opening = text.count(b"[") + text.count(b"{")  # the most it can nest
        if opening > MAX_NESTING and (depth := nesting(text)) > MAX_NESTING:
            raise ProtocolError(
                "bad_frame", f"frame nests {depth} deep; the limit is {MAX_NESTING}"
            )
        message: Message = _decoder.decode(frame)
    except msgspec.ValidationError as exc:
        claimed = _claimed_type(frame)
        raise ProtocolError(
            "bad_frame", f"not a protocol v1 frame: {exc}", message_type=claimed
        ) from exc
    except msgspec.DecodeError as exc:
        raise ProtocolError("bad_frame", f"not a protocol v1 frame: {exc}") from exc
    except (UnicodeDecodeError, UnicodeEncodeError) as exc:  # a lone surrogate in text
        raise ProtocolError("bad_frame", f"frame is not UTF-8 text (at {exc.start})") from exc
    except RecursionError as exc:  # the stack ran out first (a caller deep in its own)
        raise ProtocolError("bad_frame", "frame nests too deep to decode") from exc
    return message


_STRUCTURE = bytes(range(256)).translate(None, b'"[]{}')
"""Every byte but quotes and brackets (to delete)."""
_STRING = re.compile(rb'"[^"]*"')


def nesting(text: bytes) -> int:
    """How deep the JSON ``text`` nests: 1 for ``{"a": 1}``, 2 for ``[[1]]``. Brackets
    inside strings do not count; on text that is not JSON the count may be anything."""
    # Escapes go first (left to right, as JSON reads them), then all but quotes and
    # brackets, then the strings: what is left is the brackets outside strings.
    plain = text.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _STRUCTURE)
    brackets = _STRING.sub(b"", plain)
    return max(accumulate(1 if b in b"[{" else -1 for b in brackets), default=0)


def _claimed_type(frame: bytes | str) -> str:
    """The ``type`` of a JSON object that is not a valid message, or ``""``."""
    try:
        return msgspec.json.decode(frame, type=_Typed).type
    except (msgspec.ValidationError, msgspec.DecodeError):
        return ""


def wire_name(message: Message) -> str:
    """The message's ``type`` on the wire (``push_ack``)."""
    return str(type(message).__struct_config__.tag)


def fit_frame(records: list[EventRecord]) -> list[EventRecord]:
    """The longest prefix of ``records`` (at least one) that fits in one frame."""
    budget = MAX_FRAME_BYTES - ENVELOPE_BYTES
    for index, record in enumerate(records):
        budget -= len(record.args) + ENVELOPE_BYTES
        if budget < 0:
            return records[: max(index, 1)]
    return records
