"""Protocol v1 on the wire: golden frames pin the format; bad frames are refused clearly."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pjai.schema.records import EventRecord, Position
from pjai.sync.protocol import (
    MAX_FRAME_BYTES,
    MAX_NESTING,
    Error,
    Events,
    Hello,
    Message,
    Peer,
    Ping,
    Pong,
    Presence,
    PresenceRejected,
    PresenceUpdate,
    ProtocolError,
    Pull,
    Push,
    PushAck,
    PushRejected,
    Welcome,
    decode,
    encode,
    nesting,
)

RECORD = EventRecord(
    id="0193a1b2-0000-7000-8000-000000000001",
    name="v1.PersonaCreated",
    args=msgspec.Raw(b'{"persona_id":"p1","name":"Ada"}'),
    position=Position(1),
    parent=Position(0),
    client_id="c1",
    session_id="s1",
    at=datetime(2026, 11, 26, 12, 0, tzinfo=UTC),
)
RECORD_JSON = (
    b'{"id":"0193a1b2-0000-7000-8000-000000000001","name":"v1.PersonaCreated",'
    b'"args":{"persona_id":"p1","name":"Ada"},"position":[1,0,0],"parent":[0,0,0],'
    b'"client_id":"c1","session_id":"s1","at":"2026-11-26T12:00:00Z"}'
)

GOLDEN: list[tuple[Message, bytes]] = [
    (
        Hello(versions=[1], store_id="s1", client_id="c1", token="pjai_x"),
        b'{"type":"hello","versions":[1],"store_id":"s1","client_id":"c1","token":"pjai_x"}',
    ),
    (
        Welcome(version=1, backend_id="b1", store_id="s1", head=Position(7), role="write"),
        b'{"type":"welcome","version":1,"backend_id":"b1","store_id":"s1","head":[7,0,0],'
        b'"role":"write"}',
    ),
    (Push(id=3, events=[RECORD]), b'{"type":"push","id":3,"events":[' + RECORD_JSON + b"]}"),
    (
        PushAck(id=3, head=Position(1), accepted=1),
        b'{"type":"push_ack","id":3,"head":[1,0,0],"accepted":1}',
    ),
    (
        PushRejected(id=3, reason="server_ahead", head=Position(9), detail="pull"),
        b'{"type":"push_rejected","id":3,"reason":"server_ahead","detail":"pull",'
        b'"head":[9,0,0],"index":null,"retry_after":null}',
    ),
    (
        PushRejected(id=4, reason="invalid_event", index=2, detail="bad"),
        b'{"type":"push_rejected","id":4,"reason":"invalid_event","detail":"bad",'
        b'"head":null,"index":2,"retry_after":null}',
    ),
    (
        Pull(cursor=Position(5), live=True),
        b'{"type":"pull","cursor":[5,0,0],"live":true}',
    ),
    (
        Events(events=[RECORD], head=Position(1), more=False),
        b'{"type":"events","events":[' + RECORD_JSON + b'],"head":[1,0,0],"more":false}',
    ),
    (Ping(nonce=1), b'{"type":"ping","nonce":1}'),
    (Pong(nonce=1), b'{"type":"pong","nonce":1}'),
    (
        Error(code="bad_frame", message="what was wrong"),
        b'{"type":"error","code":"bad_frame","message":"what was wrong"}',
    ),
    (
        Error(code="rate_limited", message="too soon", retry_after=0.5),
        b'{"type":"error","code":"rate_limited","message":"too soon","retry_after":0.5}',
    ),
    # presence/1
    (
        Hello(versions=[1], store_id="s1", client_id="c1", extensions=["presence/1"]),
        b'{"type":"hello","versions":[1],"store_id":"s1","client_id":"c1","token":"",'
        b'"extensions":["presence/1"]}',
    ),
    (
        Welcome(
            version=1,
            backend_id="b1",
            store_id="s1",
            head=Position(7),
            role="write",
            extensions=["presence/1"],
        ),
        b'{"type":"welcome","version":1,"backend_id":"b1","store_id":"s1","head":[7,0,0],'
        b'"role":"write","extensions":["presence/1"]}',
    ),
    (
        PresenceUpdate(name="laptop", state="away", detail={"view": "personas"}),
        b'{"type":"presence_update","name":"laptop","state":"away","detail":{"view":"personas"}}',
    ),
    (
        Presence(
            peers=[
                Peer(
                    client_id="c2",
                    session_id="x2",
                    name="desk",
                    state="online",
                    detail={},
                    last_seen=datetime(2026, 12, 5, 9, 0, tzinfo=UTC),
                )
            ]
        ),
        b'{"type":"presence","peers":[{"client_id":"c2","session_id":"x2","name":"desk",'
        b'"state":"online","detail":{},"last_seen":"2026-12-05T09:00:00Z"}]}',
    ),
    (
        PresenceRejected(detail="too long"),
        b'{"type":"presence_rejected","detail":"too long"}',
    ),
]


@pytest.mark.parametrize(
    ("message", "frame"), GOLDEN, ids=lambda v: getattr(v, "__class__", type(v)).__name__
)
def test_golden_frames(message: Message, frame: bytes) -> None:
    assert encode(message) == frame
    assert decode(frame) == message


def test_every_message_type_has_a_golden_frame() -> None:
    assert {type(m) for m, _ in GOLDEN} == set(Message.__args__)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        (b"{not json", "not a protocol v1 frame"),
        (b'{"type":"shout"}', "not a protocol v1 frame"),
        (b'{"type":"pull","cursor":"five"}', "not a protocol v1 frame"),
        (b'{"type":"ping"}', "missing required field `nonce`"),
        (b'{"type":"ping","nonce":"\xff"}', "frame is not UTF-8 text"),
        ('{"type":"ping","nonce":"\ud800"}', "frame is not UTF-8 text"),
    ],
)
def test_bad_frames_are_named(frame: bytes | str, problem: str) -> None:
    with pytest.raises(ProtocolError, match=problem) as caught:
        decode(frame)
    assert caught.value.code == "bad_frame"


def test_a_malformed_message_names_the_type_it_claimed() -> None:
    with pytest.raises(ProtocolError) as caught:
        decode(b'{"type":"presence_update","name":5}')
    assert (caught.value.code, caught.value.message_type) == ("bad_frame", "presence_update")
    with pytest.raises(ProtocolError) as caught:
        decode(b"[1]")
    assert caught.value.message_type == ""


def test_oversized_frames_are_refused() -> None:
    with pytest.raises(ProtocolError, match="the limit is"):
        decode(b" " * (MAX_FRAME_BYTES + 1))


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        (b"1", 0),
        (b"[]", 1),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'{"a": "[[[{{"}', 1),  # brackets in strings do not count
        (b'["\\\\", "\\"[[", [[]]]', 3),  # nor escaped quotes and backslashes
    ],
)
def test_nesting_counts_brackets_outside_strings(text: bytes, depth: int) -> None:
    assert nesting(text) == depth


def _events_frame(args: bytes) -> bytes:
    frame = encode(Events(events=[RECORD], head=Position(1), more=False))
    return frame.replace(b'{"persona_id":"p1","name":"Ada"}', args)


def test_a_frame_nested_too_deep_is_refused_whatever_the_stack() -> None:
    # An event whose arguments nest deeper than the limit is refused by both sides alike:
    # a decoder deep in its own stack (the client's event loop) as one near its top.
    fits = b"[" * (MAX_NESTING - 3) + b"]" * (MAX_NESTING - 3)  # in 3: the frame
    assert isinstance(decode(_events_frame(fits)), Events)
    deep = _events_frame(b"[" * 900 + b"]" * 900)

    def refused(levels: int) -> str:
        if levels:
            return refused(levels - 1)
        with pytest.raises(ProtocolError) as caught:
            decode(deep)
        return f"{caught.value.code}: {caught.value}"

    assert refused(0) == refused(700) == "bad_frame: frame nests 903 deep; the limit is 64"


@given(
    st.lists(st.integers(min_value=0, max_value=2**40), min_size=1, max_size=5),
    st.text(min_size=1, max_size=20),
    st.booleans(),
)
def test_frames_round_trip(heads: list[int], store: str, more: bool) -> None:
    for message in (
        Events(events=[RECORD], head=Position(heads[0]), more=more),
        Hello(versions=heads, store_id=store, client_id=store),
        Pull(cursor=Position(heads[-1]), live=more),
    ):
        assert decode(encode(message)) == message
