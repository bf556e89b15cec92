"""The server's session state machine, frame in, messages out (no I/O)."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import pytest

from pjai.schema.records import EventRecord, Position
from pjai.sql.engine import create_sql_engine
from pjai.sync.protocol import (
    MAX_FRAME_BYTES,
    MAX_HELLO_BYTES,
    Error,
    Events,
    Hello,
    Message,
    Ping,
    Pong,
    Pull,
    Push,
    PushAck,
    PushRejected,
    Welcome,
    encode,
    fit_frame,
)
from pjai.sync.server import session as session_module
from pjai.sync.server.log import MemoryLog
from pjai.sync.server.session import RECHECK_S, ServerSession
from pjai.sync.server.sqllog import SqlLog
from pjai.sync.server.tokens import RateLimiter, Token
from tests.sync.records import records

TOKENS = {
    "pjai_w": Token("t1", "s1", "write", "", "", None),
    "pjai_r": Token("t2", "s1", "read", "", "", None),
    "pjai_all": Token("t3", "*", "admin", "", "", None),
}


def session(log: MemoryLog | None = None, **options: object) -> ServerSession:
    return ServerSession(log or MemoryLog(), TOKENS.get, **options)  # type: ignore[arg-type]


def send(s: ServerSession, message: Message | bytes) -> list[Message]:
    return s.receive(message if isinstance(message, bytes) else encode(message))


def ready(log: MemoryLog | None = None, token: str = "pjai_w", **options: object) -> ServerSession:
    s = session(log, **options)
    (welcome,) = send(s, Hello(versions=[1], store_id="s1", client_id="c1", token=token))
    assert isinstance(welcome, Welcome)
    return s


def test_hello_negotiates_and_names_what_the_server_speaks() -> None:
    s = session()
    (welcome,) = send(s, Hello(versions=[1, 2], store_id="s1", client_id="c1", token="pjai_w"))
    assert welcome == Welcome(
        version=1, backend_id=s._log.backend_id, store_id="s1", head=Position(0), role="write"
    )
    (refused,) = send(session(), Hello(versions=[2, 3], store_id="s1", client_id="c1"))
    assert refused == Error(
        code="unsupported_version",
        message="this server speaks protocol version 1; the client offered 2, 3",
    )


NO_TOKEN = (
    "no token was given; this server requires one (pjai sync connect --token, or PJAI_SYNC_TOKEN)"
)


@pytest.mark.parametrize(
    ("token", "store", "message"),
    [
        ("pjai_nope", "s1", "unknown, revoked or expired token"),
        (
            "",
            "s1",
            NO_TOKEN,
        ),
        ("pjai_w", "s2", "this token is for store 's1', not this one"),
    ],
)
def test_hello_refuses_bad_tokens(token: str, store: str, message: str) -> None:
    s = session()
    (refused,) = send(s, Hello(versions=[1], store_id=store, client_id="c1", token=token))
    assert refused == Error(code="unauthorized", message=message)
    assert s.state == "closed"
    assert send(s, Ping(nonce=1)) == []


def test_a_header_token_and_a_star_token_work() -> None:
    s = session(header_token="pjai_all")
    (welcome,) = send(s, Hello(versions=[1], store_id="any", client_id="c1"))
    assert isinstance(welcome, Welcome)
    assert welcome.role == "admin"


def test_frames_out_of_order_and_bad_frames_close() -> None:
    (early,) = send(session(), Pull(cursor=Position(0)))
    assert isinstance(early, Error)
    assert (early.code, early.message) == ("out_of_order", "pull before hello")
    (bad,) = send(ready(), b"\x00garbage")
    assert isinstance(bad, Error)
    assert bad.code == "bad_frame"
    (again,) = send(ready(), Hello(versions=[1], store_id="s1", client_id="c1"))
    assert isinstance(again, Error)
    assert again.code == "out_of_order"
    (wrong,) = send(ready(), Events(events=[], head=Position(0), more=False))
    assert isinstance(wrong, Error)
    assert wrong.message == "events is sent by servers, not clients"
    (ack,) = send(ready(), PushAck(id=1, head=Position(0), accepted=0))
    assert isinstance(ack, Error)
    assert ack.message == "push_ack is sent by servers, not clients"


def test_a_first_frame_larger_than_a_hello_is_refused_unread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoded: list[object] = []
    monkeypatch.setattr(session_module, "decode", lambda frame: decoded.append(frame))
    (refused,) = send(session(), b"[" * (MAX_HELLO_BYTES + 1))
    assert isinstance(refused, Error)
    assert refused.code == "bad_frame"
    size = MAX_HELLO_BYTES + 1
    assert refused.message == f"a first frame of {size} bytes; a hello takes 65536 at most"
    assert decoded == []


def test_a_hello_padded_to_its_bound_is_read() -> None:
    hello = encode(Hello(versions=[1], store_id="s1", client_id="c1", token="pjai_w"))
    padded = hello[:-1] + b" " * (MAX_HELLO_BYTES - len(hello)) + b"}"
    assert len(padded) == MAX_HELLO_BYTES
    (welcome,) = send(session(), padded)
    assert isinstance(welcome, Welcome)


def test_an_event_id_is_accepted_once() -> None:
    log = MemoryLog()
    s = ready(log)
    first = records(2)
    send(s, Push(id=1, events=first))
    twice = [
        msgspec.structs.replace(r, position=Position(3 + i), parent=Position(2 + i))
        for i, r in enumerate(records(2, "p2"))
    ]
    inside = [twice[0], msgspec.structs.replace(twice[1], id=twice[0].id)]
    (rejected,) = send(s, Push(id=2, events=inside))
    assert isinstance(rejected, PushRejected)
    assert (rejected.reason, rejected.index) == ("invalid_event", 1)
    assert rejected.detail == f"event {twice[0].id} appears twice in the push"
    logged = [twice[0], msgspec.structs.replace(twice[1], id=first[1].id)]
    (rejected,) = send(s, Push(id=3, events=logged))
    assert isinstance(rejected, PushRejected)
    assert (rejected.reason, rejected.index) == ("invalid_event", 1)
    assert "is already in this store's log" in rejected.detail
    assert s.state == "ready"  # the connection goes on
    assert log.head("s1") == Position(2)


def test_overlong_ids_are_refused() -> None:
    s = ready()
    (first,) = records(1)
    long = msgspec.structs.replace(first, session_id="s" * 101)
    (rejected,) = send(s, Push(id=1, events=[long]))
    assert isinstance(rejected, PushRejected)
    assert (rejected.reason, rejected.index) == ("invalid_event", 0)
    assert rejected.detail == f"event {first.id}: session_id is over 100 bytes"


def test_events_frames_stay_under_the_frame_limit() -> None:
    big = records(1)[0]
    size = MAX_FRAME_BYTES // 5
    heavy = [
        msgspec.structs.replace(
            big, id=f"e{i}", args=msgspec.Raw(b'"' + b"x" * size + b'"'), position=Position(i + 1)
        )
        for i in range(12)
    ]
    fitted = fit_frame(heavy)
    assert 1 <= len(fitted) < len(heavy)
    assert len(encode(Events(events=fitted, head=Position(12), more=True))) <= MAX_FRAME_BYTES
    assert fit_frame(heavy[:1]) == heavy[:1]  # one event always goes, whatever its size
    small = records(3)
    assert fit_frame(small) == small


def test_ping_pong() -> None:
    assert send(ready(), Ping(nonce=7)) == [Pong(nonce=7)]
    assert send(ready(), Pong(nonce=7)) == []


@pytest.mark.parametrize("early", [Ping(nonce=1), Pong(nonce=1)])
def test_nothing_but_hello_is_answered_before_hello(early: Message) -> None:
    s = session()
    (refused,) = send(s, early)
    name = early.__struct_config__.tag
    assert refused == Error(code="out_of_order", message=f"{name} before hello")
    assert s.state == "closed"
    # A client that gives up before its hello ends the connection without an answer.
    quitting = session()
    assert send(quitting, Error(code="bad_frame", message="bye")) == []
    assert quitting.state == "closed"


def test_push_is_appended_once_and_echoed_by_the_pull() -> None:
    log = MemoryLog()
    s = ready(log)
    batch = records(3)
    assert send(s, Push(id=1, events=batch)) == [PushAck(id=1, head=Position(3), accepted=3)]
    assert s.appended[0].count == 3
    assert send(s, Push(id=2, events=batch)) == [PushAck(id=2, head=Position(3), accepted=0)]
    assert send(s, Pull(cursor=Position(0), live=True)) == []
    echo = s.next_events(log.head("s1"))
    assert echo == Events(events=batch, head=Position(3), more=False)
    assert s.next_events(log.head("s1")) is None  # live: nothing until the head moves


def test_a_push_behind_the_head_is_rejected_with_the_head() -> None:
    log = MemoryLog()
    first = records(2)
    log.append("s1", first)
    stale = records(2, "p2")  # starts at the root again
    (answer,) = send(ready(log), Push(id=5, events=stale))
    assert isinstance(answer, PushRejected)
    assert (answer.reason, answer.head) == ("server_ahead", Position(2))
    assert log.head("s1") == Position(2)


def _with(record: EventRecord, **changes: object) -> EventRecord:
    return msgspec.structs.replace(record, **changes)


@pytest.mark.parametrize(
    ("change", "index", "detail"),
    [
        ({"args": msgspec.Raw(b'{"persona_id":"p1"}')}, 1, "field 'name'"),
        ({"name": "v1.NoSuchEvent"}, 1, "unknown event name 'v1.NoSuchEvent'"),
        ({"position": Position(9)}, 1, "does not follow its parent"),
        ({"client_id": ""}, 1, "needs an id and a client_id"),
    ],
)
def test_an_invalid_event_rejects_the_whole_push(
    change: dict[str, object], index: int, detail: str
) -> None:
    log = MemoryLog()
    batch = records(3)
    batch[1] = _with(batch[1], **change)
    if "args" in change:
        batch[1] = _with(batch[1], name="v1.PersonaCreated")
    (answer,) = send(ready(log), Push(id=1, events=batch))
    assert isinstance(answer, PushRejected)
    assert (answer.reason, answer.index) == ("invalid_event", index)
    assert detail in answer.detail
    assert log.head("s1") == Position(0)


@pytest.mark.parametrize("log_url", ["memory", "sqlite"])
def test_a_push_from_a_position_no_head_has_is_refused(log_url: str, tmp_path: Path) -> None:
    # A synced position has no client_seq: one from [head, 7] would be logged by the SQL
    # log (it compares global_seq), and every client would then refuse to follow it.
    engine = create_sql_engine(f"sqlite:///{tmp_path}/sync.db")
    log = MemoryLog() if log_url == "memory" else SqlLog(engine)
    first = records(1)
    assert isinstance(send(ready(log), Push(id=1, events=first))[0], PushAck)
    (event,) = records(1, "p2")
    event = _with(event, parent=Position(1, 7), position=Position(2))
    (answer,) = send(ready(log), Push(id=2, events=[event]))
    assert isinstance(answer, PushRejected)
    assert (answer.reason, answer.index) == ("invalid_event", 0)
    assert "does not follow its parent" in answer.detail
    assert log.head("s1") == Position(1)
    engine.dispose()


@pytest.mark.parametrize("field", ["id", "name", "session_id"])
def test_an_event_whose_header_holds_a_nul_is_refused(field: str) -> None:
    # The SQL journal keeps these as text, which PostgreSQL cannot hold with a NUL (a
    # client id with one is refused with the hello).
    (event,) = records(1)
    event = _with(event, **{field: getattr(event, field) + "\x00"})
    (answer,) = send(ready(), Push(id=1, events=[event]))
    assert isinstance(answer, PushRejected)
    assert (answer.reason, answer.index) == ("invalid_event", 0)
    assert answer.detail.endswith(f"its {field} must not contain the NUL character (U+0000)")


def test_a_newer_vocabulary_is_accepted() -> None:
    batch = records(2)
    batch[1] = _with(batch[1], name="v9.MemoryPinned", args=msgspec.Raw(b'{"memory_id":"m"}'))
    (answer,) = send(ready(), Push(id=1, events=batch))
    assert isinstance(answer, PushAck)


def test_read_tokens_may_not_push_and_limits_hold() -> None:
    (answer,) = send(ready(token="pjai_r"), Push(id=1, events=records(1)))
    assert isinstance(answer, PushRejected)
    assert answer.reason == "forbidden"
    (empty,) = send(ready(), Push(id=2, events=[]))
    assert isinstance(empty, PushRejected)
    assert empty.detail == "a push carries 1 to 1000 events, got 0"
    limited = ready(limiter=RateLimiter(rate=10, burst=5))
    (slow,) = send(limited, Push(id=3, events=records(6)))
    assert isinstance(slow, PushRejected)
    assert slow.reason == "rate_limited"
    assert slow.retry_after is not None
    assert slow.retry_after > 0


def test_a_push_takes_its_frame_s_bytes_from_the_token_s_byte_budget() -> None:
    # Counted in events alone, a push of one 3 MiB event costs one: a token could make
    # the server take and write the largest frames at the event rate.
    log = MemoryLog()
    batch = records(3)
    first = encode(Push(id=1, events=batch[:1]))
    limited = ready(
        log,
        limiter=RateLimiter(rate=1e6, burst=1e6),
        byte_limiter=RateLimiter(rate=100, burst=len(first)),
    )
    (ok,) = send(limited, first)
    assert isinstance(ok, PushAck)
    (held,) = send(limited, Push(id=2, events=batch[1:]))
    assert isinstance(held, PushRejected)
    assert (held.reason, held.detail) == ("rate_limited", "too many bytes for this token")
    assert held.retry_after is not None
    assert held.retry_after > 0
    assert log.head("s1") == batch[0].position  # nothing of it appended


def test_frames_other_than_pushes_hold_their_connection_past_the_token_s_rate() -> None:
    """Hellos, pulls, pings and presence cost the server work, and the pushes' limits do
    not pace them: past the token's request rate each is answered, and the adapter
    holds the connection (reads none of its frames) until the token is within it."""
    requests = RateLimiter(rate=0.01, burst=4)
    s = ready(request_limiter=requests)  # the hello is the first request
    for nonce in range(3):
        assert send(s, Ping(nonce=nonce)) == [Pong(nonce=nonce)]
        assert s.hold == 0
    assert send(s, Pull(cursor=Position(0))) == []  # answered, by the writer
    assert s.cursor == Position(0)
    assert 99 <= s.hold <= 101  # one request over, at 0.01 a second
    # The token's other connections share its rate, from their hello; another token's
    # do not.
    assert ready(request_limiter=requests).hold >= 100
    assert ready(token="pjai_all", request_limiter=requests).hold == 0


def test_pushes_are_no_requests_and_other_frames_count_their_bytes() -> None:
    s = ready(
        request_limiter=RateLimiter(rate=1, burst=10),
        byte_limiter=RateLimiter(rate=1024, burst=4096),
    )
    (ack,) = send(s, Push(id=1, events=records(1)))  # counted in events and bytes only
    assert isinstance(ack, PushAck)
    assert s.hold == 0
    ping = encode(Ping(nonce=1))
    padded = ping[:-1] + b" " * 8192 + b"}"  # JSON whitespace
    assert send(s, padded) == [Pong(nonce=1)]
    assert s.hold > 4  # over 8 KiB at 1 KiB a second


def test_one_off_pulls_page_through_and_end() -> None:
    log = MemoryLog()
    log.append("s1", records(1_500))
    s = ready(log)
    send(s, Pull(cursor=Position(100), live=False))
    first = s.next_events(log.head("s1"))
    assert first is not None
    assert (len(first.events), first.more) == (1_000, True)
    second = s.next_events(log.head("s1"))
    assert second is not None
    assert (len(second.events), second.more) == (400, False)
    assert s.next_events(log.head("s1")) is None
    assert s.cursor is None
    send(s, Pull(cursor=Position(1_500), live=False))
    assert s.next_events(log.head("s1")) == Events(events=[], head=Position(1_500), more=False)


def test_a_cursor_past_the_head_is_refused() -> None:
    (refused,) = send(ready(), Pull(cursor=Position(4)))
    assert isinstance(refused, Error)
    assert refused.code == "bad_cursor"


def test_a_revoked_token_stops_an_open_connection_pushing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("pjai.sync.server.session.RECHECK_S", 0.0)
    valid = dict(TOKENS)
    s = ServerSession(MemoryLog(), valid.get)
    send(s, Hello(versions=[1], store_id="s1", client_id="c1", token="pjai_w"))
    batch = records(2)
    assert send(s, Push(id=1, events=batch[:1])) == [PushAck(id=1, head=Position(1), accepted=1)]
    del valid["pjai_w"]  # revoked
    assert send(s, Push(id=2, events=batch[1:])) == [
        Error(code="unauthorized", message="the token was revoked or expired")
    ]
    assert s.state == "closed"


def test_a_revoked_token_stops_a_pulling_session_within_the_recheck_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    valid = dict(TOKENS)
    looked: list[str] = []

    def authenticate(secret: str) -> Token | None:
        looked.append(secret)
        return valid.get(secret)

    log = MemoryLog()
    batch = records(3)
    s = ServerSession(log, authenticate)
    send(s, Hello(versions=[1], store_id="s1", client_id="c1", token="pjai_r"))
    send(s, Pull(cursor=Position(0), live=True))
    assert s.next_events(log.head("s1")) == Events(events=[], head=Position(0), more=False)
    for record in batch[:2]:  # many frames within RECHECK_S: no lookup for any of them
        log.append("s1", [record])
        clock[0] += RECHECK_S / 4
        sent = s.next_events(log.head("s1"))
        assert isinstance(sent, Events)
        assert [r.id for r in sent.events] == [record.id]
    assert looked == ["pjai_r"]  # the hello's only
    del valid["pjai_r"]  # revoked
    clock[0] += RECHECK_S / 2  # past RECHECK_S since the hello's look
    log.append("s1", batch[2:])
    assert s.next_events(log.head("s1")) == Error(
        code="unauthorized", message="the token was revoked or expired"
    )
    assert (s.state, looked) == ("closed", ["pjai_r", "pjai_r"])
    assert s.next_events(log.head("s1")) is None


@pytest.mark.parametrize(
    ("store_id", "client_id", "field"),
    [
        ("s" * 101, "c1", "store_id"),
        ("", "c1", "store_id"),
        ("s1", "c" * 101, "client_id"),
        ("s1", "", "client_id"),
        ("s1", "c\x00", "client_id"),
    ],
)
def test_a_hello_names_a_short_store_and_client(store_id: str, client_id: str, field: str) -> None:
    # A client id goes into every presence frame: a long one would make them too large.
    (refused,) = send(session(), Hello(versions=[1], store_id=store_id, client_id=client_id))
    message = f"hello needs a {field} of 1 to 100 bytes without NUL"
    assert refused == Error(code="bad_frame", message=message)


def test_a_client_pushes_only_its_own_events() -> None:
    s = ready()  # client c1
    batch = records(1, client_id="someone-else")
    (rejected,) = send(s, Push(id=1, events=batch))
    assert isinstance(rejected, PushRejected)
    assert (rejected.reason, rejected.index) == ("invalid_event", 0)
    assert rejected.detail == (
        f"event {batch[0].id} names client 'someone-else', but this connection is client 'c1'"
    )


@pytest.mark.parametrize(
    ("name", "args", "detail"),
    [
        (
            "v1.MemoryAccessed",
            b'{"memory_id":"m1","persona_id":"p1","count":100000000000000000000}',
            "field 'count'",
        ),
        (
            "v1.MemoryAdded",
            b'{"memory_id":"m1","persona_id":"p1","content":"x",'
            b'"occurred_at":"9999-12-31T23:59:59-14:00"}',
            "field 'occurred_at'",
        ),
        (
            "v1.MemoryAdded",
            b'{"memory_id":"m1","persona_id":"p1","content":"a\\u0000b"}',
            "NUL",
        ),
    ],
)
def test_values_no_backend_can_store_are_refused_at_push_time(
    name: str, args: bytes, detail: str
) -> None:
    log = MemoryLog()
    batch = records(2)
    batch[1] = _with(batch[1], name=name, args=msgspec.Raw(args))
    (answer,) = send(ready(log), Push(id=1, events=batch))
    assert isinstance(answer, PushRejected)
    assert (answer.reason, answer.index) == ("invalid_event", 1)
    assert detail in answer.detail
    assert log.head("s1") == Position(0)


def test_a_frame_that_is_not_utf8_or_has_a_time_out_of_range_closes() -> None:
    batch = records(1)
    frame = encode(Push(id=1, events=batch))
    (error,) = send(ready(), frame.replace(b'"name":"v1.', b'"name":"\xff1.'))
    assert isinstance(error, Error)
    assert error.code == "bad_frame"
    assert "not UTF-8" in error.message
    at = msgspec.json.encode(batch[0].at)
    (error,) = send(ready(), frame.replace(at, b'"9999-12-31T23:59:59-14:00"'))
    assert isinstance(error, Error)
    assert error.code == "bad_frame"
    assert "time must lie between" in error.message
