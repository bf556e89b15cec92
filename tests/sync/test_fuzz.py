"""Nothing a peer sends may stop the server: generated frames and HTTP requests.

Every frame either decodes or is refused with :class:`ProtocolError` (``bad_frame``);
a server session answers any sequence of frames with messages (an ``Error`` with a
documented code closes it) and never raises; the HTTP endpoints answer any query with a
documented status and a JSON error, never a server error.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus
from websockets.http11 import Response

from pjai.schema import SCHEMA
from pjai.schema.records import ROOT, stamp
from pjai.schema.types import utc_now
from pjai.sync import websocket as websocket_module
from pjai.sync.protocol import (
    Error,
    Message,
    ProtocolError,
    Push,
    PushAck,
    PushRejected,
    decode,
    encode,
)
from pjai.sync.server import asgi
from pjai.sync.server.asgi import MAX_KEYS_BODY, create_app
from pjai.sync.server.hub import Hub
from pjai.sync.server.log import MemoryLog
from pjai.sync.server.session import ServerSession
from tests.bodies import MIB, OfferedBody

CODES = {"unsupported_version", "unauthorized", "bad_frame", "out_of_order", "bad_cursor"}
"""The ``Error`` codes the protocol documents (``server_error`` is the server's own)."""

TYPES = ["hello", "push", "pull", "ping", "pong", "error", "presence_update", "events", "welcome"]
FIELDS = [
    "versions", "store_id", "client_id", "token", "extensions", "events", "cursor", "live",
    "nonce", "code", "message", "name", "state", "detail", "id", "args", "position",
    "parent", "session_id", "at", "global_seq", "client_seq", "generation", "head", "more",
]  # fmt: skip

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=12,
)


@st.composite
def frames(draw: st.DrawFn) -> bytes | str:
    """Frames shaped like protocol messages with arbitrary fields, or arbitrary bytes."""
    kind = draw(st.sampled_from(["shaped", "bytes", "text"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "text":
        return draw(st.text(max_size=300))
    body: dict[str, Any] = {"type": draw(st.sampled_from(TYPES) | st.text(max_size=10))}
    body |= draw(st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=6))
    return json.dumps(body)


@settings(max_examples=400, deadline=None)
@given(frames())
def test_any_frame_decodes_or_is_refused_as_a_bad_frame(frame: bytes | str) -> None:
    message: Message | None = None
    code = None
    try:
        message = decode(frame)
    except ProtocolError as exc:
        code = exc.code
    if message is None:
        assert code == "bad_frame"
    else:
        assert decode(encode(message)) == message


HELLO = json.dumps({"type": "hello", "versions": [1], "store_id": "s", "client_id": "c"})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.booleans(), st.lists(frames(), max_size=6))
def test_a_session_answers_any_frames_and_closes_only_with_a_documented_error(
    greet: bool, sent: list[bytes | str]
) -> None:
    session = ServerSession(MemoryLog(), None)
    for frame in [HELLO, *sent] if greet else sent:
        replies: list[Message] = session.receive(frame)
        errors = [r for r in replies if isinstance(r, Error)]
        for error in errors:
            assert error.code in CODES, error
        if errors:
            assert session.state == "closed"
    if session.state == "closed":
        assert session.receive(HELLO) == []  # a closed session says nothing more


APPS = {
    "open": create_app(Hub(MemoryLog(), None), hosts=frozenset({"server", "s"})),
    "locked": create_app(Hub(MemoryLog(), lambda token: None)),
}
"""Servers for every example: one that asks for no token, one that knows none."""


QUERY = st.dictionaries(
    st.sampled_from(["store_id", "after", "limit", "cursor"]) | st.text(max_size=6),
    st.text(max_size=12) | st.integers(min_value=-(2**70), max_value=2**70).map(str),
    max_size=4,
)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(sorted(APPS)),
    st.sampled_from(["/pull", "/keys", "/health", "/metrics", "/sync", "/nowhere"]),
    QUERY,
    st.none() | st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
)
def test_http_endpoints_answer_any_request_without_a_server_error(
    app: str, path: str, query: dict[str, str], token: str | None
) -> None:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    response = asyncio.run(_get(app, path, query, headers))
    assert response.status_code in {200, 400, 401, 403, 404, 405}, response.text
    if response.status_code >= 400 and response.headers.get("content-type") == "application/json":
        assert "error" in response.json()


async def _get(
    app: str, path: str, query: dict[str, str], headers: dict[str, str]
) -> httpx.Response:
    transport = httpx.ASGITransport(app=APPS[app])
    async with httpx.AsyncClient(transport=transport, base_url="http://server") as client:
        return await client.get(path, params=query, headers=headers)


EVENT_NAMES = [*SCHEMA.event_names, "v1.NotAnEvent", "v9.FromTheFuture", "nonsense"]
EVENT_FIELDS = sorted({f for t in SCHEMA.event_types for f in t.__struct_fields__})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(EVENT_NAMES),
            st.dictionaries(st.sampled_from(EVENT_FIELDS), JSON, max_size=6),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_pushed_events_with_any_arguments_are_acknowledged_or_rejected(
    pushed: list[tuple[str, dict[str, Any]]],
) -> None:
    session = ServerSession(MemoryLog(), None)
    session.receive(HELLO)
    records = stamp(
        [(name, json.dumps(args).encode()) for name, args in pushed],
        after=ROOT,
        generation=0,
        client_id="c",
        session_id="c",
        at=utc_now(),
    )
    (reply,) = session.receive(encode(Push(id=1, events=records)))
    assert isinstance(reply, PushAck | PushRejected), reply
    if isinstance(reply, PushRejected):
        assert reply.reason == "invalid_event"
    assert session.state == "ready"  # a bad event costs its push, not the connection


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(sorted(APPS)),
    st.sampled_from(["/keys", "/keys/delete"]),
    st.binary(max_size=200) | JSON.map(lambda v: json.dumps(v).encode()),
)
def test_the_keys_channel_answers_any_body_without_a_server_error(
    app: str, path: str, body: bytes
) -> None:
    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=APPS[app])
        async with httpx.AsyncClient(transport=transport, base_url="http://server") as client:
            return await client.post(path, content=body)

    response = asyncio.run(post())
    assert response.status_code in {200, 400, 401, 403}, response.text
    if response.status_code != 200:
        assert "error" in response.json()


def test_a_keys_body_is_read_only_with_a_token_and_up_to_its_limit() -> None:
    body = OfferedBody()

    async def post(app: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=APPS[app])
        async with httpx.AsyncClient(transport=transport, base_url="http://server") as client:
            return await client.post("/keys", content=body.stream())

    assert asyncio.run(post("locked")).status_code == 401
    assert body.read == 0  # refused before a byte of it was read
    refused = asyncio.run(post("open"))
    assert refused.status_code == 400
    assert refused.json()["message"] == (
        f"the body is longer than the limit of {MAX_KEYS_BODY} bytes"
    )
    assert body.read <= MAX_KEYS_BODY + MIB


def test_a_store_keeps_keys_up_to_its_limits_and_a_deep_body_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(asgi, "MAX_STORE_KEYS", 3)
    app = create_app(Hub(MemoryLog(), None), hosts=frozenset({"server", "s"}))

    async def post(body: bytes) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://server") as client:
            return await client.post("/keys", content=body)

    def put(*ids: str, blob: str = "wrapped") -> httpx.Response:
        items = [{"id": i, "kind": "data", "scope": "p1", "blob": blob} for i in ids]
        return asyncio.run(post(json.dumps({"store_id": "s1", "items": items}).encode()))

    assert put("k1", "k2").json() == {"stored": 2}
    full = put("k3", "k4")
    assert full.status_code == 413
    assert full.json()["message"] == (
        "the store 's1' keeps 2 keys (14 bytes); the limit is 3 keys and "
        f"{asgi.MAX_STORE_KEY_BYTES:,} bytes"
    )
    monkeypatch.setattr(asgi, "MAX_STORE_KEYS", 100)
    monkeypatch.setattr(asgi, "MAX_STORE_KEY_BYTES", 1_000)
    assert put("k3", blob="x" * 987).status_code == 413  # 14 + 987 bytes
    assert put("k3", blob="x" * 986).json() == {"stored": 1}
    monkeypatch.setattr(asgi, "MAX_STORE_KEYS", 4)  # k1, k2, k3: room for one more

    def delete(*ids: str) -> httpx.Response:
        gone = [{"id": i, "proof": "p"} for i in ids]
        body = json.dumps({"store_id": "s1", "deleted": gone}).encode()

        async def post_delete() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
                return await client.post("/keys/delete", content=body)

        return asyncio.run(post_delete())

    assert delete("never-put-1", "never-put-2").status_code == 413  # each kept as a key
    assert delete("never-put-1").json() == {"deleted": 0}
    deep = asyncio.run(post(b"[" * 100_000 + b"]" * 100_000))
    assert (deep.status_code, deep.json()["error"]) == (400, "bad_request")


def test_no_web_page_may_use_the_sync_server() -> None:
    # Without tokens, a page the user visits could otherwise push and pull: a browser
    # sends an Origin with every WebSocket and cross-site request; PJai's clients none.
    async def get(origin: str | None) -> httpx.Response:
        transport = httpx.ASGITransport(app=APPS["open"])
        headers = {"origin": origin} if origin else {}
        async with httpx.AsyncClient(transport=transport, base_url="http://server") as client:
            return await client.get("/pull", params={"store_id": "s"}, headers=headers)

    refused = asyncio.run(get("http://attacker.example"))
    assert refused.status_code == 403
    assert refused.json()["message"] == "the sync server is not for web pages"
    assert asyncio.run(get(None)).status_code == 200

    sent = handshake([(b"origin", b"http://attacker.example")])
    assert sent == [{"type": "websocket.close", "code": 4403}]


@pytest.mark.parametrize(
    ("host", "served"),
    [
        ("attacker.example", False),  # a page whose name its DNS points at the server
        ("attacker.example:8765", False),
        ("[::1", False),  # not a name at all
        ("server", True),  # given as a name of the server
        ("SERVER:8765", True),
        ("192.168.1.5:8765", True),
        ("[::1]:8765", True),
        ("localhost", True),
        ("sync.localhost", True),
        (socket.gethostname(), True),
    ],
)
def test_a_server_without_tokens_answers_only_to_its_own_names(host: str, served: bool) -> None:
    # DNS rebinding: a page's same-origin requests carry no Origin, but name its own host.
    async def get(app: Any) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://server") as client:
            return await client.get("/pull", params={"store_id": "s"}, headers={"host": host})

    answer = asyncio.run(get(APPS["open"]))
    assert answer.status_code == (200 if served else 403), answer.text
    if not served:
        assert "--allowed-host" in answer.json()["message"]
    # With tokens a page has none to give: every name is served (here: refused for the token).
    assert asyncio.run(get(APPS["locked"])).status_code == 401


def handshake(headers: list[tuple[bytes, bytes]], **extensions: Any) -> list[dict[str, Any]]:
    """What the server without tokens sends in answer to a WebSocket handshake."""
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(dict(message))

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    scope = {
        "type": "websocket",
        "path": "/sync",
        "headers": headers,
        "query_string": b"",
        "extensions": extensions,
    }
    asyncio.run(APPS["open"](scope, receive, send))
    return sent


def test_a_websocket_naming_the_server_otherwise_is_told_why_it_is_refused() -> None:
    sent = handshake([(b"host", b"nas.lan.:8765")], **{"websocket.http.response": {}})
    assert [m["type"] for m in sent] == [
        "websocket.http.response.start",
        "websocket.http.response.body",
    ]
    assert sent[0]["status"] == 403
    said = json.loads(sent[1]["body"])["message"]
    assert "no name 'nas.lan'" in said
    assert "--allowed-host" in said
    # The client shows it.
    refusal = InvalidStatus(Response(403, "Forbidden", Headers(), sent[1]["body"]))
    assert "--allowed-host" in websocket_module._why(refusal)


@pytest.mark.parametrize("host", ["localhost.", "127.0.0.1.", "SERVER.", "s."])
def test_a_name_with_the_roots_dot_is_the_same_name(host: str) -> None:
    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=APPS["open"])
        async with httpx.AsyncClient(transport=transport, base_url="http://server") as client:
            return await client.get("/pull", params={"store_id": "s"}, headers={"host": host})

    assert asyncio.run(get()).status_code == 200
