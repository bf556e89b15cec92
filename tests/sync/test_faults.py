"""The sync layer under faults: frames duplicated, reordered, dropped or corrupted,
connections cut mid-push, a server restarted mid-push, protocol versions nobody speaks.

Whatever happens on the way, the end is the same: every store is level with the
server's log, holds each event once, confirms exactly the log's events in the log's
order, and has the state a fresh replay of that log gives.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import anyio
import msgspec
import pytest

from pjai.schema import MemoryUpdated
from pjai.schema.records import ROOT, EventRecord
from pjai.sql.engine import create_sql_engine
from pjai.store import Store
from pjai.sync.client import SyncClient, SyncStatus
from pjai.sync.clientside import ClientSession, Fail
from pjai.sync.protocol import Error, Events, Hello, Pull, Push, Welcome, decode, encode
from pjai.sync.server.hub import Hub
from pjai.sync.server.log import MemoryLog, ServerLog
from pjai.sync.server.sqllog import SqlLog
from pjai.sync.transport import ConnectionClosed, Connector, Faults, Transport, memory_pipe
from tests.helpers import memory, persona
from tests.sync.records import records

pytestmark = pytest.mark.anyio

STORE = "s1"
WAIT = 10  # seconds before a wait counts as a hang
SOON = 1  # the same, for what a quiet connection should do at once


# -- a restartable server, and transports that misbehave on cue ---------------------

Wrap = Callable[[Transport], Transport]


class Server:
    """A hub on ``log`` that can be restarted, with connectors that follow the restarts."""

    def __init__(self, log: ServerLog) -> None:
        self.log = log
        self.hub = Hub(log, None, poll_interval=0.05)
        self._serving: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self.hub.start()

    async def restart(self, log: ServerLog | None = None) -> None:
        """Stop the hub and start a new one, on ``log`` if given (a new process)."""
        await self.hub.stop()
        if log is not None:
            self.log = log
        self.hub = Hub(self.log, None, poll_interval=0.05)
        await self.hub.start()

    async def stop(self) -> None:
        await self.hub.stop()
        await asyncio.gather(*self._serving)

    def connector(self, faults: Faults | None = None) -> Connector:
        """Connects to whichever hub runs now, through ``faults``."""

        async def connect() -> Transport:
            return await self.hub.memory_connector(faults)()

        return connect

    def wrapped(self, *, client: Wrap | None = None, server: Wrap | None = None) -> Connector:
        """Connects to the current hub; the first connection's ends go through the wraps."""
        wraps = [(client, server)]

        async def connect() -> Transport:
            wrap_client, wrap_server = wraps.pop() if wraps else (None, None)
            client_end, server_end = memory_pipe()
            served = wrap_server(server_end) if wrap_server else server_end
            task = asyncio.create_task(self.hub.serve(served))
            self._serving.add(task)
            task.add_done_callback(self._serving.discard)
            return wrap_client(client_end) if wrap_client else client_end

        return connect


def kind(frame: bytes) -> str:
    """The ``type`` of a well-formed frame."""
    return str(msgspec.json.decode(frame)["type"])


def garble(frame: bytes) -> bytes:
    """What :class:`Faults` does to a corrupted frame."""
    return frame[: len(frame) // 2] + b"\x00garbage"


class Tampering:
    """A transport end that changes (or, for ``None``, loses) the first frame it sends
    that ``matches``."""

    def __init__(
        self,
        inner: Transport,
        matches: Callable[[bytes], bool],
        change: Callable[[bytes], bytes | None],
    ) -> None:
        self.inner = inner
        self.matches = matches
        self.change = change
        self.done = asyncio.Event()

    async def send(self, frame: bytes) -> None:
        if not self.done.is_set() and self.matches(frame):
            self.done.set()
            changed = self.change(frame)
            if changed is None:
                return
            frame = changed
        await self.inner.send(frame)

    async def receive(self) -> bytes:
        return await self.inner.receive()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.inner.close(code, reason)


def carries_events(frame: bytes) -> bool:
    """Whether the frame is an events frame with at least one event."""
    return kind(frame) == "events" and b'"events":[{' in frame


class Silencing:
    """A server end that goes silent at the first push it receives.

    With ``lose_push`` the push never reaches the server; otherwise the server appends
    it and its answer is lost. Either way nothing more gets through, in either
    direction, until someone closes the connection.
    """

    def __init__(self, inner: Transport, *, lose_push: bool) -> None:
        self.inner = inner
        self.lose_push = lose_push
        self.pushed = asyncio.Event()
        """The push arrived (and, with ``lose_push``, was lost)."""
        self.answered = asyncio.Event()
        """The server answered the push; the answer was lost."""
        self.push: Push | None = None

    async def send(self, frame: bytes) -> None:
        if not self.pushed.is_set():
            await self.inner.send(frame)
        elif kind(frame) == "push_ack":
            self.answered.set()

    async def receive(self) -> bytes:
        while True:
            frame = await self.inner.receive()
            if self.pushed.is_set():
                continue
            if kind(frame) == "push":
                message = decode(frame)
                assert isinstance(message, Push)
                self.push = message
                self.pushed.set()
                if self.lose_push:
                    continue
            return frame

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.inner.close(code, reason)


# -- clients, workloads and the checks ----------------------------------------------


def sync_client(store: Store, connect: Connector, seed: int) -> SyncClient:
    """A client that notices silence fast and reconnects fast, so faults heal quickly."""
    return SyncClient(
        store,
        connect,
        store_id=STORE,
        ping_interval=0.05,
        answer_timeout=0.2,
        backoff=(0.001, 0.02),
        seed=seed,
    )


def closed(hub: Hub, reason: str) -> float:
    """How many connections the hub closed for ``reason`` (its metric)."""
    found = hub.metrics.registry.get_sample_value(
        "pjai_sync_connections_closed_total", {"reason": reason}
    )
    return found or 0.0


def upstream(log: ServerLog) -> list[EventRecord]:
    return log.read(STORE, ROOT, 1_000_000)


def replay(records: Sequence[EventRecord]) -> str:
    with Store.memory(sync=True) as fresh:
        fresh.rebase(records)
        return fresh.state_hash()


async def settle(clients: Sequence[SyncClient], log: ServerLog, within: float = WAIT) -> None:
    """Wait until every client is online, has nothing pending, and has the whole log."""

    def level(status: SyncStatus) -> bool:
        head = log.head(STORE).global_seq
        return status.state == "online" and status.pending == 0 and status.confirmed_head == head

    try:
        with anyio.fail_after(within):
            while not all(level(c.status) for c in clients):
                for client in clients:
                    await client.wait_until(level)
    except TimeoutError:
        statuses = "\n".join(str(c.status) for c in clients)
        raise AssertionError(
            f"the clients did not converge on the log (head {log.head(STORE)}):\n{statuses}"
        ) from None


def assert_converged(stores: Sequence[Store], log: ServerLog) -> None:
    """Each store holds the server's log, exactly once, in order, and its state."""
    records = upstream(log)
    ids = [r.id for r in records]
    assert len(set(ids)) == len(ids), "the server logged an event twice"
    assert [r.position.global_seq for r in records] == list(range(1, len(records) + 1))
    final = replay(records)
    for store in stores:
        entries = list(store.events())
        assert store.pending() == []
        assert len({e.record.id for e in entries}) == len(entries)
        confirmed = [e.record for e in entries if e.status == "confirmed"]
        assert [(r.id, r.position.global_seq) for r in confirmed] == [
            (r.id, r.position.global_seq) for r in records
        ]
        assert [(r.name, bytes(r.args)) for r in confirmed] == [
            (r.name, bytes(r.args)) for r in records
        ]
        assert store.state_hash() == final


async def let_frames_flow(turns: int = 20) -> None:
    """Give the event loop some turns, so that commits interleave with traffic."""
    for _ in range(turns):
        await asyncio.sleep(0)


async def commit_rounds(stores: Sequence[Store], rounds: int) -> None:
    """Each store, in turn, adds a memory and edits the shared one, while syncing."""
    for r in range(rounds):
        for i, store in enumerate(stores):
            store.commit(
                memory(f"p{i}-m{r}", f"p{i}"),
                MemoryUpdated(memory_id="shared", persona_id="p0", content=f"{i} in round {r}"),
            )
            await let_frames_flow()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    server = Server(MemoryLog())
    await server.start()
    yield server
    await server.stop()


# -- 1 to 3: convergence through a faulty wire ----------------------------------------

FAULTS = {
    "duplicate": lambda seed: Faults(duplicate=0.3, seed=seed),
    "reorder": lambda seed: Faults(reorder=0.3, seed=seed),
    "drop": lambda seed: Faults(drop=0.1, seed=seed),
    "corrupt": lambda seed: Faults(corrupt=0.05, seed=seed),
    "everything": lambda seed: Faults(
        drop=0.05, duplicate=0.1, reorder=0.1, corrupt=0.02, seed=seed
    ),
}


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("fault", list(FAULTS))
async def test_clients_converge_through_a_faulty_wire(
    server: Server, fault: str, seed: int
) -> None:
    faults = FAULTS[fault](seed)
    stores = [Store.memory(sync=True) for _ in range(3)]
    clients = [
        sync_client(store, server.connector(faults), seed=seed * 10 + i)
        for i, store in enumerate(stores)
    ]
    try:
        stores[0].commit(persona("p0"), memory("shared", "p0"))
        for i, store in enumerate(stores[1:], start=1):
            store.commit(persona(f"p{i}"))
        for client in clients:
            client.start()
        await settle(clients, server.log)  # everyone has the shared memory
        await commit_rounds(stores, rounds=4)
        await settle(clients, server.log)
        assert len(upstream(server.log)) == 1 + 1 + 2 + 3 * 4 * 2
        assert_converged(stores, server.log)
    finally:
        for client in clients:
            await client.stop()
        for store in stores:
            store.close()


async def test_a_client_stopped_commits_offline_and_catches_up(server: Server) -> None:
    with Store.memory(sync=True) as a, Store.memory(sync=True) as b:
        a.commit(persona("p0"), memory("shared", "p0"))
        ca = sync_client(a, server.connector(), seed=1)
        cb = sync_client(b, server.connector(), seed=2)
        ca.start()
        cb.start()
        await settle([ca, cb], server.log)
        await cb.stop()
        offline = b.commit(persona("p1"), memory("p1-m", "p1"))
        a.commit(memory("p0-m", "p0"))  # the server moves on meanwhile
        await settle([ca], server.log)
        assert all(b.status(r.id) == "pending" for r in offline)
        cb = sync_client(b, server.connector(), seed=3)
        cb.start()
        await settle([ca, cb], server.log)
        assert_converged([a, b], server.log)
        assert [r.id for r in upstream(server.log)][-2:] == [r.id for r in offline]
        await ca.stop()
        await cb.stop()


@pytest.mark.parametrize("lose_push", [True, False], ids=["before-append", "after-append"])
async def test_closing_the_server_end_mid_push_loses_and_doubles_nothing(
    server: Server, lose_push: bool
) -> None:
    with Store.memory(sync=True) as a, Store.memory(sync=True) as b:
        ends: list[Silencing] = []

        def silencing(end: Transport) -> Transport:
            ends.append(Silencing(end, lose_push=lose_push))
            return ends[-1]

        ca = sync_client(a, server.wrapped(server=silencing), seed=1)
        cb = sync_client(b, server.connector(), seed=2)
        ca.start()
        cb.start()
        await settle([ca, cb], server.log)
        pushed = a.commit(persona("p0"), memory("p0-m", "p0"))
        (end,) = ends
        with anyio.fail_after(WAIT):
            await (end.pushed if lose_push else end.answered).wait()
        assert end.push is not None
        assert [r.id for r in end.push.events] == [r.id for r in pushed]
        logged = [r.id for r in upstream(server.log)]
        assert logged == ([] if lose_push else [r.id for r in pushed])
        await end.close()
        b.commit(persona("p1"))
        await settle([ca, cb], server.log)
        assert_converged([a, b], server.log)
        assert ca.status.reconnects >= 1
        await ca.stop()
        await cb.stop()


async def test_the_hub_answers_a_repeated_pull_at_once(server: Server) -> None:
    client_end, server_end = memory_pipe()
    serving = asyncio.create_task(server.hub.serve(server_end))
    with anyio.fail_after(WAIT):
        await client_end.send(encode(Hello(versions=[1], store_id=STORE, client_id="c1")))
        assert isinstance(decode(await client_end.receive()), Welcome)
        await client_end.send(encode(Pull(cursor=ROOT)))
        assert decode(await client_end.receive()) == Events(events=[], head=ROOT, more=False)
    await client_end.send(encode(Pull(cursor=ROOT)))  # docs: answered at once, even if empty
    try:
        with anyio.fail_after(SOON):
            answer = decode(await client_end.receive())
        assert answer == Events(events=[], head=ROOT, more=False)
    finally:
        await client_end.close()
        await serving


async def test_a_quiet_client_notices_a_lost_events_frame(server: Server) -> None:
    with Store.memory(sync=True) as a, Store.memory(sync=True) as b:
        lossy: list[Tampering] = []

        def losing(end: Transport) -> Transport:
            lossy.append(Tampering(end, carries_events, lambda frame: None))
            return lossy[-1]

        ca = sync_client(a, server.connector(), seed=1)
        # Pinging less eagerly than the others: on a busy machine a late pong makes a
        # client reconnect, and the reconnection, not the client, would find the loss.
        cb = SyncClient(b, server.wrapped(server=losing), store_id=STORE, ping_interval=0.2, seed=2)
        ca.start()
        cb.start()
        await settle([ca, cb], server.log)
        a.commit(persona("p0"))  # its echo to b is lost; nothing else is coming
        with anyio.fail_after(WAIT):
            await lossy[0].done.wait()
        await settle([ca, cb], server.log, within=SOON)
        assert_converged([a, b], server.log)
        assert cb.status.reconnects == 0  # noticed on the connection that lost the frame
        await ca.stop()
        await cb.stop()


# -- 4: a corrupt frame --------------------------------------------------------------


async def test_the_server_answers_a_corrupt_frame_with_bad_frame_and_closes(
    server: Server,
) -> None:
    client_end, server_end = memory_pipe()
    serving = asyncio.create_task(server.hub.serve(server_end))
    with anyio.fail_after(WAIT):
        await client_end.send(encode(Hello(versions=[1], store_id=STORE, client_id="c1")))
        assert isinstance(decode(await client_end.receive()), Welcome)
        await client_end.send(garble(encode(Pull(cursor=ROOT))))
        error = decode(await client_end.receive())
        assert isinstance(error, Error)
        assert error.code == "bad_frame"
        assert error.message.startswith("not a protocol v1 frame: ")
        with pytest.raises(ConnectionClosed):
            await client_end.receive()
        await serving
    assert closed(server.hub, "bad_frame") == 1


@pytest.mark.parametrize(
    ("side", "error"),
    [
        ("client", "bad_frame: not a protocol v1 frame: "),
        ("server", "the server sent a bad frame: not a protocol v1 frame: "),
    ],
)
async def test_a_client_reports_a_corrupt_frame_and_recovers(
    server: Server, side: str, error: str
) -> None:
    with Store.memory(sync=True) as a, Store.memory(sync=True) as b:
        if side == "client":  # its first push is garbled on the way to the server
            connect = server.wrapped(
                client=lambda end: Tampering(end, lambda f: kind(f) == "push", garble)
            )
        else:  # the echo of its first push is garbled on the way back
            connect = server.wrapped(server=lambda end: Tampering(end, carries_events, garble))
        ca = sync_client(a, connect, seed=1)
        cb = sync_client(b, server.connector(), seed=2)
        ca.start()
        cb.start()
        a.commit(persona("p0"), memory("p0-m", "p0"))
        with anyio.fail_after(WAIT):
            await ca.wait_until(lambda s: s.last_error is not None)
        assert ca.status.last_error is not None
        assert ca.status.last_error.startswith(error)
        assert closed(server.hub, "bad_frame") == (1 if side == "client" else 0)
        b.commit(persona("p1"))
        await settle([ca, cb], server.log)
        assert ca.status.last_error is None  # cleared once back online
        assert_converged([a, b], server.log)
        await ca.stop()
        await cb.stop()


# -- 5: the server restarts in the middle of a push ---------------------------------


async def restart_mid_push(
    server: Server, reopen: Callable[[], ServerLog | None], *, lose_push: bool
) -> None:
    """A client pushes; the server stops before answering and comes back (``reopen``)."""
    with Store.memory(sync=True) as a, Store.memory(sync=True) as b:
        b.commit(persona("p1"))
        cb = sync_client(b, server.connector(), seed=2)
        cb.start()
        await settle([cb], server.log)
        ends: list[Silencing] = []

        def silencing(end: Transport) -> Transport:
            ends.append(Silencing(end, lose_push=lose_push))
            return ends[-1]

        ca = sync_client(a, server.wrapped(server=silencing), seed=1)
        ca.start()
        await settle([ca, cb], server.log)
        pushed = a.commit(persona("p0"), memory("p0-m", "p0"))
        (end,) = ends
        with anyio.fail_after(WAIT):
            await (end.pushed if lose_push else end.answered).wait()
        logged = [r.id for r in upstream(server.log)][1:]
        assert logged == ([] if lose_push else [r.id for r in pushed])
        assert a.pending() == pushed
        await server.restart(reopen())
        await settle([ca, cb], server.log)
        assert [r.id for r in upstream(server.log)][1:] == [r.id for r in pushed]
        assert_converged([a, b], server.log)
        await ca.stop()
        await cb.stop()


@pytest.mark.parametrize("lose_push", [True, False], ids=["before-append", "after-append"])
async def test_a_hub_restart_mid_push_keeps_the_push_once(server: Server, lose_push: bool) -> None:
    await restart_mid_push(server, lambda: None, lose_push=lose_push)


@pytest.mark.parametrize("lose_push", [True, False], ids=["before-append", "after-append"])
async def test_a_process_restart_on_a_sqlite_log_keeps_the_push_once(
    tmp_path: Path, lose_push: bool
) -> None:
    url = f"sqlite:///{tmp_path / 'sync.db'}"
    logs = [SqlLog(create_sql_engine(url))]

    def reopen() -> ServerLog:
        logs.append(SqlLog(create_sql_engine(url)))  # a new process on the same file
        return logs[-1]

    server = Server(logs[0])
    await server.start()
    try:
        await restart_mid_push(server, reopen, lose_push=lose_push)
        assert len(logs) == 2
        assert logs[1].backend_id == logs[0].backend_id
    finally:
        await server.stop()
        for log in logs:
            log.engine.dispose()


# -- 6: protocol versions nobody speaks ---------------------------------------------


async def test_the_hub_refuses_an_unknown_version_and_closes(server: Server) -> None:
    client_end, server_end = memory_pipe()
    serving = asyncio.create_task(server.hub.serve(server_end))
    with anyio.fail_after(WAIT):
        await client_end.send(encode(Hello(versions=[99], store_id=STORE, client_id="c1")))
        assert decode(await client_end.receive()) == Error(
            code="unsupported_version",
            message="this server speaks protocol version 1; the client offered 99",
        )
        with pytest.raises(ConnectionClosed):
            await client_end.receive()
        await serving


async def test_a_client_offering_only_an_unknown_version_fails_for_good(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pjai.sync.clientside.VERSIONS", (99,))
    with Store.memory(sync=True) as store:
        store.commit(persona("p0"))
        client = sync_client(store, server.connector(), seed=1)
        with anyio.fail_after(WAIT):
            await client.run()  # returns: a final error, no retry
        status = client.status
        assert status.state == "failed"
        assert status.last_error == (
            "unsupported_version: this server speaks protocol version 1; the client offered 99"
        )
        assert status.reconnects == 0
        assert status.pending == 1
        assert upstream(server.log) == []
        assert closed(server.hub, "unsupported_version") == 1


def test_a_client_session_refuses_a_welcome_with_an_unknown_version() -> None:
    session = ClientSession(STORE, "c1")
    welcome = Welcome(version=99, backend_id="b1", store_id=STORE, head=ROOT, role="write")
    assert session.receive(welcome, ROOT) == [
        Fail("unsupported_version", "server chose version 99", retry=False)
    ]
    assert session.state == "closed"
    assert session.next_push([], ROOT) is None


async def test_a_client_welcomed_with_an_unknown_version_fails_and_hangs_up() -> None:
    client_end, server_end = memory_pipe()
    connections = 0

    async def connect() -> Transport:
        nonlocal connections
        connections += 1
        return client_end

    with Store.memory(sync=True) as store:
        client = sync_client(store, connect, seed=1)
        running = asyncio.create_task(client.run())
        with anyio.fail_after(WAIT):
            hello = decode(await server_end.receive())
            assert isinstance(hello, Hello)
            assert hello.versions == [1]
            welcome = Welcome(version=99, backend_id="b1", store_id=STORE, head=ROOT, role="write")
            await server_end.send(encode(welcome))
            await running
            with pytest.raises(ConnectionClosed):
                await server_end.receive()  # the client hung up
        status = client.status
        assert status.state == "failed"
        assert status.last_error == "unsupported_version: server chose version 99"
        assert connections == 1


class StuckReader:
    """A connection whose client sent frames but stopped reading: every send hangs."""

    def __init__(self, frames: list[bytes]) -> None:
        self.inbox: asyncio.Queue[bytes] = asyncio.Queue()
        for frame in frames:
            self.inbox.put_nowait(frame)
        self.closed: tuple[int, str] | None = None
        self.sent = 0
        self._gone = asyncio.Event()

    async def send(self, frame: bytes) -> None:
        if self.closed is not None:
            raise ConnectionClosed("closed")
        self.sent += 1
        if self.sent > 1:  # the welcome goes through; nothing after it is read
            await self._gone.wait()
            raise ConnectionClosed("closed")

    async def receive(self) -> bytes:
        receiving = asyncio.ensure_future(self.inbox.get())
        gone = asyncio.ensure_future(self._gone.wait())
        await asyncio.wait({receiving, gone}, return_when=asyncio.FIRST_COMPLETED)
        gone.cancel()
        if not receiving.done():
            receiving.cancel()
            raise ConnectionClosed("closed")
        return receiving.result()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed is None:
            self.closed = (code, reason)
        self._gone.set()


async def test_a_client_that_stops_reading_is_disconnected_not_buffered() -> None:
    log = MemoryLog()
    log.append(STORE, records(3))
    hub = Hub(log, None, send_timeout=0.2)
    await hub.start()
    hello = Hello(versions=[1], store_id=STORE, client_id="c1")
    stuck = StuckReader([encode(hello), encode(Pull(cursor=ROOT, live=True))])
    with anyio.fail_after(WAIT):
        await hub.serve(stuck)
    assert stuck.closed == (1008, "slow_consumer: the client does not read")
    assert stuck.sent == 2  # the welcome, then the events frame it never took
    closed = hub.metrics.registry.get_sample_value(
        "pjai_sync_connections_closed_total", {"reason": "slow_consumer"}
    )
    assert closed == 1.0
    assert hub.connections == 0
    await hub.stop()


async def test_a_connection_without_hello_is_closed() -> None:
    hub = Hub(MemoryLog(), None, hello_timeout=0.1)
    client_end, server_end = memory_pipe()
    with anyio.fail_after(WAIT):
        await hub.serve(server_end)
    assert server_end.close_reason == "no_hello: a hello must come first, and soon"
    closed = hub.metrics.registry.get_sample_value(
        "pjai_sync_connections_closed_total", {"reason": "no_hello"}
    )
    assert closed == 1.0
    with pytest.raises(ConnectionClosed):
        await client_end.receive()


def test_a_server_behind_the_store_is_waited_for_not_given_up() -> None:
    session = ClientSession("s1", "c1", "", backend_id="b1")
    (fail,) = session.receive(
        Welcome(version=1, backend_id="b1", store_id="s1", head=ROOT.next(0), role="write"),
        ROOT.next(0).next(0),
    )
    assert isinstance(fail, Fail)
    assert (fail.code, fail.retry) == ("server_behind", True)
    assert "waiting for it to catch up" in fail.message
