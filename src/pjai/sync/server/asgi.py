"""The sync server's ASGI application (Starlette) around a :class:`~pjai.sync.server.hub.Hub`.

Routes: ``/sync`` (WebSocket, the protocol), ``/pull`` (HTTP catch-up: one events
frame), ``/keys`` (the keys channel: :mod:`pjai.sync.server.keys`), ``/health`` and
``/metrics`` (Prometheus text; needs an admin token when tokens are required). A
bearer token comes in the ``Authorization`` header or in the hello frame. On PostgreSQL
the app listens for ``pjai_sync`` notifications while it runs
(:mod:`pjai.sync.server.wakeups`); it gives the memory the process freed back to the
system every few seconds (:mod:`pjai.sync.server.memory`). Serve it with uvicorn and
:func:`~pjai.sync.server.sockets.websocket_protocol`, as
:class:`~pjai.sync.server.SyncServer` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

import msgspec
from msgspec import Meta
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from pjai.errors import PjaiError
from pjai.schema.limits import text_problem
from pjai.schema.records import Position
from pjai.sync.protocol import (
    MAX_EVENTS_PER_FRAME,
    MAX_ID_BYTES,
    Events,
    encode,
    fit_frame,
    nameable,
)
from pjai.sync.server.browsers import NotForBrowsers, own_names, plain
from pjai.sync.server.hub import Hub
from pjai.sync.server.keys import (
    MAX_KEYS,
    MAX_STORE_KEY_BYTES,
    MAX_STORE_KEYS,
    Deletion,
    KeyItem,
)
from pjai.sync.server.memory import trim_freed_memory
from pjai.sync.server.places import address_key
from pjai.sync.server.tokens import Role, Token, can
from pjai.sync.server.wakeups import listen_for_wakeups
from pjai.sync.server.websocket import ServerWebSocket

__all__ = ["BODY_PROGRESS_BYTES", "BODY_STALL_S", "create_app", "read_body"]

log = logging.getLogger(__name__)


def _bearer(header: str | None) -> str:
    if header and header.lower().startswith("bearer "):
        return header[7:].strip()
    return ""


MAX_KEYS_BODY = 2 * 1024 * 1024
"""The largest body a keys request may send."""


BODY_STALL_S = 10.0
"""Seconds :func:`read_body` waits for each next :data:`BODY_PROGRESS_BYTES` of a body
(or its end)."""

BODY_PROGRESS_BYTES = 16 * 1024
"""How much of a body must come every :data:`BODY_STALL_S` seconds: 1.6 KB/s at least,
which a body of the largest size (:data:`MAX_KEYS_BODY`) beats in under 22 minutes."""


async def read_body(request: Request, limit: int, *, stall_s: float | None = None) -> bytes:
    """The request's body; ``ValueError`` as soon as it is longer than ``limit``, and
    ``TimeoutError`` when its next :data:`BODY_PROGRESS_BYTES` (or its end) do not come
    within ``stall_s`` seconds (:data:`BODY_STALL_S`). A client sending its body a byte
    at a time would otherwise hold its connection, and the task reading it, for ever."""
    stall_s = BODY_STALL_S if stall_s is None else stall_s
    body = bytearray()
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(stall_s) as window:
            moved = 0
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise ValueError(f"the body is longer than the limit of {limit} bytes")
                if len(body) - moved >= BODY_PROGRESS_BYTES:
                    moved = len(body)
                    window.reschedule(loop.time() + stall_s)
    except TimeoutError:
        message = f"the body did not move on by {BODY_PROGRESS_BYTES} bytes in {stall_s:g} s"
        raise TimeoutError(message) from None
    return bytes(body)


CHUNK_BYTES = 64 * 1024
"""A large body goes out this much at a time, each part once the one before has left."""


class _Chunked(Response):
    """A large body sent a chunk at a time while ``held`` (a slot of
    :class:`~pjai.sync.server.places.Bodies`) stays entered: a client that reads slowly
    or not at all has the server buffer a chunk, and holds the slot until its connection
    is reset (:func:`~pjai.sync.server.sockets.http_settings`)."""

    def __init__(self, made: Response, held: contextlib.AsyncExitStack) -> None:
        super().__init__(made.body, made.status_code, media_type=made.media_type)
        self._held = held

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with self._held:
            start = {"type": "http.response.start", "status": self.status_code}
            await send({**start, "headers": self.raw_headers})
            body = memoryview(self.body)
            for at in range(0, len(body), CHUNK_BYTES):
                part = bytes(body[at : at + CHUNK_BYTES])
                await send({"type": "http.response.body", "body": part, "more_body": True})
            await send({"type": "http.response.body", "body": b""})


async def _under_slot(hub: Hub, token_id: str, make: Callable[[], Awaitable[Response]]) -> Response:
    """The answer ``make`` gives, made and (when it succeeds) sent under a slot of the
    token's (:class:`~pjai.sync.server.places.Bodies`)."""
    held = contextlib.AsyncExitStack()
    await held.enter_async_context(hub.bodies.slot(token_id))
    try:
        made = await make()
    except BaseException:
        await held.aclose()
        raise
    if made.status_code != 200:
        await held.aclose()
        return made
    return _Chunked(made, held)


class KeysPut(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``POST /keys``: wrapped keys to keep for a store."""

    store_id: Annotated[str, Meta(min_length=1, max_length=100)]
    items: Annotated[list[KeyItem], Meta(max_length=MAX_KEYS)]


class KeysDeleted(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``POST /keys/delete``: keys a device destroyed, each with its proof."""

    store_id: Annotated[str, Meta(min_length=1, max_length=100)]
    deleted: Annotated[list[Deletion], Meta(max_length=MAX_KEYS)]


def _keys_problem(asked: KeysPut | KeysDeleted) -> str | None:
    """Why a keys request cannot be kept by every database (a store id no hello could
    name, a NUL character in a text), or ``None``."""
    if not nameable(asked.store_id):
        return f"give a store_id of 1 to {MAX_ID_BYTES} bytes, without NUL"
    named: list[tuple[str, str, tuple[str, ...]]]
    if isinstance(asked, KeysDeleted):
        named = [
            (f"deleted[{n}]", "id and proof", (d.id, d.proof)) for n, d in enumerate(asked.deleted)
        ]
    else:
        named = [
            (f"items[{n}]", "id, scope and blob", (i.id, i.scope, i.blob))
            for n, i in enumerate(asked.items)
        ]
    for where, fields, values in named:
        if any(text_problem(value) for value in values):
            return f"{where}: its {fields} must not contain the NUL character (U+0000)"
    return None


def _rate_limited(message: str, wait: float) -> JSONResponse:
    """429 ``rate_limited``: retry in ``wait`` seconds (whole ones in ``Retry-After``)."""
    body = {"error": "rate_limited", "message": message, "retry_after": wait}
    return JSONResponse(body, 429, headers={"Retry-After": str(math.ceil(wait))})


def create_app(
    hub: Hub, *, listen_url: str | None = None, hosts: frozenset[str] = frozenset()
) -> Starlette:
    """The server's ASGI application; ``listen_url``: PostgreSQL to LISTEN on; ``hosts``:
    names besides IP addresses, ``localhost`` and the machine's own by which a server
    without tokens may be named (:class:`~pjai.sync.server.browsers.NotForBrowsers`).

    Serve it with uvicorn's ``ws=websocket_protocol(hub.close_timeout)``, or the TCP
    connection of a client that stops reading stays open after the server closed it.
    """
    # A keys change is checked against the store's limits and written under this lock:
    # requests sent at once would each pass the check before any was written. (Server
    # processes beside this one may each write one change past the limits.)
    keys_changing = asyncio.Lock()

    def authorized(request: Request, store_id: str | None, role: Role) -> Token | Response | None:
        """The request's token if it may ``role`` the store (``None``: some store)."""
        if hub.authenticate is None:
            return None
        token = hub.authenticate(_bearer(request.headers.get("authorization")))
        if token is None:
            return JSONResponse({"error": "unauthorized", "message": "a valid token"}, 401)
        if token.store_id not in (store_id or token.store_id, "*") or not can(token.role, role):
            message = f"the token may not {role} store {store_id!r}"
            return JSONResponse({"error": "forbidden", "message": message}, 403)
        return token

    def admitted(request: Request, store_id: str, role: Role) -> Token | Response | None:
        """As :func:`authorized`, and within the token's request rate (the store's
        without tokens), which its frames other than pushes count against too: 429
        past it."""
        found = authorized(request, store_id, role)
        if isinstance(found, Response):
            return found
        limiter, key = hub.request_limiter, found.id if found else store_id
        if limiter is None or (wait := limiter.take(key, 1)) <= 0:
            return found
        wait = max(round(wait, 3), 0.001)
        return _rate_limited(f"too many requests for this token; retry in {wait} s", wait)

    async def sync(websocket: WebSocket) -> None:
        token = _bearer(websocket.headers.get("authorization"))
        address = address_key(websocket.client.host) if websocket.client else ""
        # Before the handshake and the token check: a peer that opens and closes
        # connections without pause is refused at the least cost.
        if (too_soon := hub.opening(address, token)) is not None:
            refusal = _rate_limited(too_soon.message, too_soon.retry_after)
            if "websocket.http.response" in websocket.scope.get("extensions", {}):
                await websocket.send_denial_response(refusal)
            else:
                await websocket.close(1013, too_soon.message)
            return
        await websocket.accept()
        transport = ServerWebSocket(websocket, close_timeout=hub.close_timeout)
        await hub.serve(transport, header_token=token, address=address)

    async def pull(request: Request) -> Response:
        params = request.query_params
        store_id = params.get("store_id", "")
        try:
            after = int(params.get("after", "0"))
            limit = min(int(params.get("limit", str(MAX_EVENTS_PER_FRAME))), MAX_EVENTS_PER_FRAME)
        except ValueError:
            return JSONResponse({"error": "bad_request", "message": "after, limit: integers"}, 400)
        if not nameable(store_id) or after < 0 or limit < 1:
            message = f"give a store_id of 1 to {MAX_ID_BYTES} bytes, after >= 0 and limit >= 1"
            return JSONResponse({"error": "bad_request", "message": message}, 400)
        denied = admitted(request, store_id, "read")
        if isinstance(denied, Response):
            return denied
        return await _under_slot(
            hub, denied.id if denied else store_id, lambda: page(store_id, after, limit)
        )

    async def page(store_id: str, after: int, limit: int) -> Response:
        try:
            head = await asyncio.to_thread(hub.log.refresh, store_id)
            events = await asyncio.to_thread(hub.log.read, store_id, Position(after), limit)
        finally:
            if store_id not in hub.feeds:  # nobody here watches it: keep nothing for it
                hub.log.forget(store_id)
        if after > head.global_seq:
            message = (
                f"the store is at {head}, before the cursor e{after}; is this the same "
                "server (backend id) the client synced with?"
            )
            return JSONResponse({"error": "bad_cursor", "message": message}, 400)
        events = fit_frame([e for e in events if e.position.key <= head.key])
        last = events[-1].position if events else Position(after)
        frame = Events(events=events, head=head, more=last.key < head.key)
        return Response(encode(frame), media_type="application/json")

    async def get_keys(request: Request) -> Response:
        store_id = request.query_params.get("store_id", "")
        if not nameable(store_id):
            message = f"give a store_id of 1 to {MAX_ID_BYTES} bytes"
            return JSONResponse({"error": "bad_request", "message": message}, 400)
        denied = admitted(request, store_id, "read")
        if isinstance(denied, Response):
            return denied
        return await _under_slot(hub, denied.id if denied else store_id, lambda: keys_of(store_id))

    async def keys_of(store_id: str) -> Response:
        items, deleted = await asyncio.to_thread(hub.keys.get, store_id)
        body = {
            # A key's check is the server's own, never listed.
            "items": [
                {"id": i.id, "kind": i.kind, "scope": i.scope, "blob": i.blob} for i in items
            ],
            "deleted": [msgspec.to_builtins(d) for d in deleted],
        }
        return JSONResponse(body)

    async def change_keys(request: Request) -> Response:
        deleting = request.url.path.endswith("/delete")
        # The token first, then at most the limit read: no one makes the server hold more.
        denied = authorized(request, None, "write")
        if isinstance(denied, Response):
            return denied
        try:
            body = await read_body(request, MAX_KEYS_BODY)
            kind: type[KeysPut | KeysDeleted] = KeysDeleted if deleting else KeysPut
            asked = msgspec.json.decode(body, type=kind)
        except TimeoutError as exc:  # the rest of the body is not read: the connection ends
            closing = {"Connection": "close"}
            return JSONResponse({"error": "timeout", "message": str(exc)}, 408, closing)
        except (ValueError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            return JSONResponse({"error": "bad_request", "message": str(exc)}, 400)
        except RecursionError:
            message = "the body nests too deep to read"
            return JSONResponse({"error": "bad_request", "message": message}, 400)
        if (problem := _keys_problem(asked)) is not None:
            return JSONResponse({"error": "bad_request", "message": problem}, 400)
        denied = admitted(request, asked.store_id, "write")
        if isinstance(denied, Response):
            return denied
        async with keys_changing:
            return await keys_kept(asked)

    async def keys_kept(asked: KeysPut | KeysDeleted) -> Response:
        """Keep the change if the store's keys stay within their limits."""
        # A deletion of a key never put is kept too (as deleted): it counts as a key. A
        # key kept already (to delete, or put again) adds none: a store full of keys
        # still takes the deletion of its own.
        ids = [k.id for k in (asked.deleted if isinstance(asked, KeysDeleted) else asked.items)]
        count, size = await asyncio.to_thread(hub.keys.usage, asked.store_id)
        adding = len(set(ids)) - await asyncio.to_thread(hub.keys.known, asked.store_id, ids)
        more = sum(len(i.blob) for i in asked.items) if isinstance(asked, KeysPut) else 0
        if count + adding > MAX_STORE_KEYS or size + more > MAX_STORE_KEY_BYTES:
            message = (
                f"the store {asked.store_id!r} keeps {count:,} keys ({size:,} bytes); the "
                f"limit is {MAX_STORE_KEYS:,} keys and {MAX_STORE_KEY_BYTES:,} bytes"
            )
            return JSONResponse({"error": "too_many_keys", "message": message}, 413)
        if isinstance(asked, KeysDeleted):
            done, refused = await asyncio.to_thread(hub.keys.delete, asked.store_id, asked.deleted)
            if not refused:
                return JSONResponse({"deleted": done})
            message = (
                f"{len(refused)} deletion(s) do not carry the proof their key was shared "
                "with (only a device of the store deletes a key): those keys are kept"
            )
            body = {"error": "forbidden", "message": message, "deleted": done, "refused": refused}
            return JSONResponse(body, 403)
        done = await asyncio.to_thread(hub.keys.put, asked.store_id, asked.items)
        return JSONResponse({"stored": done})

    async def health(_: Request) -> Response:
        try:
            await asyncio.to_thread(hub.log.head, "")
        except PjaiError as exc:
            return JSONResponse({"status": "unavailable", "error": str(exc)}, 503)
        body = {
            "status": "ok",
            "backend_id": hub.log.backend_id,
            "connections": hub.connections,
            "stores_watched": len(hub.feeds),
        }
        return JSONResponse(body)

    async def metrics(request: Request) -> Response:
        denied = authorized(request, "*", "admin")
        if isinstance(denied, Response):
            return denied
        return Response(generate_latest(hub.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await hub.start()
        tasks = [asyncio.create_task(trim_freed_memory())]
        if listen_url:
            tasks.append(asyncio.create_task(listen_for_wakeups(listen_url, hub)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await hub.stop()

    routes = [
        WebSocketRoute("/sync", sync),
        Route("/pull", pull),
        Route("/keys", get_keys, methods=["GET"]),
        Route("/keys", change_keys, methods=["POST"]),
        Route("/keys/delete", change_keys, methods=["POST"]),
        Route("/health", health),
        Route("/metrics", metrics),
    ]
    open_door = hub.authenticate is None
    # The machine's names are asked of the system (DNS, maybe) here, once, and only
    # where they count: not in the event loop, at the first request.
    names = frozenset(plain(h) for h in hosts) | (own_names() if open_door else frozenset())
    guard = Middleware(NotForBrowsers, open_door=open_door, hosts=names)
    return Starlette(routes=routes, lifespan=lifespan, middleware=[guard])
