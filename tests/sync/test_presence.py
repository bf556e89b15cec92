"""Presence, the ``presence/1`` extension: negotiation, limits, the roster, fan-out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from pjai.store import Store
from pjai.sync.client import SyncClient
from pjai.sync.presence import (
    FAN_OUT_BYTES_PER_S,
    MAX_DETAIL_CHARS,
    MAX_DETAIL_KEYS,
    MAX_NAME_CHARS,
    MAX_PEERS,
    PRESENCE,
    SEEN_REFRESH,
    Roster,
)
from pjai.sync.protocol import (
    MAX_FRAME_BYTES,
    Error,
    Hello,
    Message,
    Peer,
    Ping,
    Pong,
    Presence,
    PresenceRejected,
    PresenceUpdate,
    Welcome,
    decode,
    encode,
)
from pjai.sync.server.hub import Hub
from pjai.sync.server.log import MemoryLog
from pjai.sync.server.session import ServerSession
from pjai.sync.transport import Transport
from pjai.sync.websocket import websocket_connector
from tests.helpers import persona
from tests.sync.servers import serving

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


def hello(*extensions: str, client_id: str = "c1") -> bytes:
    if not extensions:
        return encode(Hello(versions=[1], store_id="s1", client_id=client_id))
    return encode(Hello(versions=[1], store_id="s1", client_id=client_id, extensions=[*extensions]))


def greeted(*extensions: str) -> ServerSession:
    session = ServerSession(MemoryLog(), None)
    (welcome,) = session.receive(hello(*extensions))
    assert isinstance(welcome, Welcome)
    return session


# -- the session, without I/O ------------------------------------------------------


def test_the_welcome_accepts_the_extensions_the_server_speaks() -> None:
    session = ServerSession(MemoryLog(), None)
    (welcome,) = session.receive(hello(PRESENCE, "cursors/9"))
    assert isinstance(welcome, Welcome)
    assert welcome.extensions == [PRESENCE]
    assert session.has(PRESENCE)
    old = ServerSession(MemoryLog(), None, extensions=())
    (welcome,) = old.receive(hello(PRESENCE))
    assert isinstance(welcome, Welcome)
    assert welcome.extensions == []
    assert not old.has(PRESENCE)


def test_a_hello_without_extensions_gets_a_plain_v1_welcome() -> None:
    session = ServerSession(MemoryLog(), None)
    (welcome,) = session.receive(hello())
    assert b"extensions" not in encode(welcome)
    assert not session.has(PRESENCE)


def test_an_announcement_is_kept() -> None:
    session = greeted(PRESENCE)
    update = PresenceUpdate(name="laptop", state="away", detail={"view": "personas"})
    assert session.receive(encode(update)) == []
    assert session.presence == update
    assert session.presence_changed


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        (encode(PresenceUpdate(name="x" * (MAX_NAME_CHARS + 1))), "a name of 1 to 80"),
        (encode(PresenceUpdate(name="  ")), "a name of 1 to 80"),
        (
            encode(PresenceUpdate(name="a", detail={str(i): "" for i in range(9)})),
            f"the limit is {MAX_DETAIL_KEYS}",
        ),
        (encode(PresenceUpdate(name="a", detail={"view": "v" * 201})), "at most 200"),
        (encode(PresenceUpdate(name="a", detail={"k" * 201: ""})), "at most 200"),
        (b'{"type":"presence_update","name":5}', "Expected `str`"),
        (b'{"type":"presence_update","name":"a","state":"busy"}', "Invalid enum value 'busy'"),
        (b'{"type":"presence_update","name":"a","detail":{"n":1}}', "Expected `str`"),
    ],
)
def test_a_bad_announcement_is_refused_and_the_session_goes_on(frame: bytes, problem: str) -> None:
    session = greeted(PRESENCE)
    (refused,) = session.receive(frame)
    assert isinstance(refused, PresenceRejected)
    assert problem in refused.detail
    assert session.presence is None
    assert session.state == "ready"
    assert session.receive(encode(Ping(nonce=7))) == [Pong(nonce=7)]


def test_an_announcement_without_the_extension_is_out_of_order() -> None:
    session = greeted()
    (error,) = session.receive(encode(PresenceUpdate(name="laptop")))
    assert isinstance(error, Error)
    assert error.code == "out_of_order"
    assert session.state == "closed"


def test_every_frame_moves_last_seen() -> None:
    times = iter([T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)])
    session = ServerSession(MemoryLog(), None, clock=lambda: next(times))
    session.receive(hello(PRESENCE))
    session.receive(encode(Ping(nonce=1)))
    assert session.seen_at == T0 + timedelta(seconds=2)


# -- the roster, without I/O ---------------------------------------------------------


def peer(session_id: str, name: str, at: datetime = T0) -> Peer:
    return Peer(
        client_id=f"c-{session_id}",
        session_id=session_id,
        name=name,
        state="online",
        detail={},
        last_seen=at,
    )


def announce(roster: Roster[str], session_id: str, name: str, at: datetime = T0) -> None:
    roster.listen(session_id, session_id)
    roster.announce(session_id, f"c-{session_id}", PresenceUpdate(name=name), at)


def test_a_burst_of_changes_goes_out_as_one_fan_out() -> None:
    roster: Roster[str] = Roster(interval=0.1)
    assert roster.due(0.0) is None
    announce(roster, "a", "one")
    assert roster.take(0.0) == [peer("a", "one")]
    for index, now in enumerate((0.01, 0.02, 0.05)):
        announce(roster, "a", f"name {index}")
        announce(roster, "b", "other")
        assert roster.take(now) is None  # within the interval: held back
    assert roster.due(0.05) == pytest.approx(0.05)
    assert roster.take(0.1) == [peer("a", "name 2"), peer("b", "other")]
    assert roster.due(0.5) is None  # nothing owed after the coalesced fan-out


def test_a_large_roster_goes_out_no_faster_than_its_bytes_allow() -> None:
    # One peer announcing as fast as it can, beside wide announcements of its own other
    # connections, would otherwise have every listener sent the whole roster ten times
    # a second.
    roster: Roster[str] = Roster(interval=0.1)
    wide = PresenceUpdate(
        name="wide", detail={f"k{k}": "v" * MAX_DETAIL_CHARS for k in range(MAX_DETAIL_KEYS)}
    )
    for n in range(64):
        roster.listen(f"s{n}", f"s{n}")
        roster.announce(f"s{n}", "rogue", wide, T0)
    peers = roster.take(0.0)
    assert peers is not None
    size = len(encode(Presence(peers=peers)))
    assert size > FAN_OUT_BYTES_PER_S  # more than a second's worth
    for step in range(1, 10):
        announce(roster, "s0", f"name {step}")
        assert roster.take(step * 0.1) is None  # held back, coalesced
    wait = roster.due(0.1)
    assert wait is not None
    assert wait + 0.1 == pytest.approx(size / FAN_OUT_BYTES_PER_S, rel=0.01)
    assert roster.take(size / FAN_OUT_BYTES_PER_S) is not None


def test_a_listener_joining_is_sent_the_roster_without_being_listed() -> None:
    roster: Roster[str] = Roster(interval=0.1)
    roster.listen("quiet", "quiet")
    assert roster.take(0.0) == []
    roster.listen("quiet", "quiet")
    assert roster.due(1.0) is None  # the same listener again is no news
    assert roster.leave("quiet")
    assert not roster.leave("quiet")
    assert roster.due(1.0) is None  # nobody listed left


def test_a_leave_is_fanned_out_and_last_seen_now_and_then() -> None:
    roster: Roster[str] = Roster(interval=0.1)
    announce(roster, "a", "one")
    announce(roster, "b", "two")
    roster.take(0.0)
    roster.seen("a", T0 + timedelta(seconds=1))
    assert roster.due(1.0) is None  # a ping alone is not news yet
    assert roster.peers["a"].last_seen == T0 + timedelta(seconds=1)
    roster.seen("a", T0 + SEEN_REFRESH)
    assert roster.take(1.0) == [peer("a", "one", T0 + SEEN_REFRESH), peer("b", "two")]
    assert roster.leave("b")
    assert roster.take(2.0) == [peer("a", "one", T0 + SEEN_REFRESH)]
    assert Roster.others([peer("a", "one"), peer("b", "two")], "a") == [peer("b", "two")]


# -- clients and a hub in memory ---------------------------------------------------------


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    hub = Hub(MemoryLog(), None, poll_interval=0.05)
    await hub.start()
    yield hub
    await hub.stop()


def names(client: SyncClient) -> set[tuple[str, str]]:
    return {(p.name, p.state) for p in client.presence.peers}


async def test_clients_on_one_store_see_each_other_and_not_another_stores(hub: Hub) -> None:
    with Store.memory(sync=True) as a, Store.memory(sync=True) as b, Store.memory(sync=True) as c:
        ca = SyncClient(a, hub.memory_connector(), store_id="s1", presence_name="laptop")
        cb = SyncClient(
            b, hub.memory_connector(), store_id="s1", presence_name="desk", presence_detail={}
        )
        cc = SyncClient(c, hub.memory_connector(), store_id="s2", presence_name="elsewhere")
        heard: list[list[Peer]] = []
        stop_hearing = ca.presence.on_peers(heard.append)
        for client in (ca, cb, cc):
            client.start()
        async with asyncio.timeout(5):
            await ca.presence.wait(lambda peers: names(ca) == {("desk", "online")})
            await cb.presence.wait(lambda peers: names(cb) == {("laptop", "online")})
            await cc.wait_until(lambda s: s.state == "online")
        (desk,) = ca.presence.peers
        assert desk.client_id == b.client_id
        assert heard[-1] == ca.presence.peers
        stop_hearing()
        # An update fans out to the other client on the store.
        ca.presence.announce(state="away", detail={"view": "personas", "persona_id": "p1"})
        async with asyncio.timeout(5):
            await cb.presence.wait(lambda peers: names(cb) == {("laptop", "away")})
        assert cb.presence.peers[0].detail == {"view": "personas", "persona_id": "p1"}
        assert cc.presence.peers == []
        # A disconnect removes the peer.
        await cb.stop()
        async with asyncio.timeout(5):
            await ca.presence.wait(lambda peers: peers == [])
        assert cb.presence.peers == []  # offline: nobody is known
        assert len(heard) == 1  # the listener stopped hearing
        await ca.stop()
        await cc.stop()


async def receive_until(transport: Transport, last: type[Message]) -> list[Message]:
    frames: list[Message] = []
    while not frames or not isinstance(frames[-1], last):
        frames.append(decode(await transport.receive()))
    return frames


async def test_a_client_without_the_extension_works_as_before_and_hears_no_presence(
    hub: Hub,
) -> None:
    with Store.memory(sync=True) as a:
        ca = SyncClient(a, hub.memory_connector(), store_id="s1", presence_name="laptop")
        ca.start()
        plain = await hub.memory_connector()()
        await plain.send(hello(client_id="plain"))
        (welcome,) = await receive_until(plain, Welcome)
        assert isinstance(welcome, Welcome)
        async with asyncio.timeout(5):
            await ca.wait_until(lambda s: s.state == "online")
        listener = await hub.memory_connector()()
        await listener.send(hello(PRESENCE, client_id="listener"))
        async with asyncio.timeout(5):
            frames = await receive_until(listener, Presence)
            while not (isinstance(frames[-1], Presence) and frames[-1].peers):
                frames = await receive_until(listener, Presence)
        ca.presence.announce(state="away")
        async with asyncio.timeout(5):
            frames = await receive_until(listener, Presence)
        # The plain connection, on the same store, got none of it, and works as before.
        await plain.send(encode(Ping(nonce=3)))
        async with asyncio.timeout(5):
            frames = await receive_until(plain, Pong)
        assert frames == [Pong(nonce=3)]
        assert ca.presence.peers == []  # connections that do not announce are not listed
        await plain.close()
        await listener.close()
        await ca.stop()


async def test_a_client_keeps_syncing_with_a_server_without_presence() -> None:
    hub = Hub(MemoryLog(), None, poll_interval=0.05, presence=False)
    await hub.start()
    try:
        with Store.memory(sync=True) as a, Store.memory(sync=True) as b:
            ca = SyncClient(a, hub.memory_connector(), store_id="s1", presence_name="laptop")
            cb = SyncClient(b, hub.memory_connector(), store_id="s1", presence_name="desk")
            ca.start()
            cb.start()
            (created,) = a.commit(persona("p1"))
            async with asyncio.timeout(5):
                assert await ca.synced(created.id) == "confirmed"
                await cb.wait_until(lambda s: s.confirmed_head >= 1)
            assert ca.presence.peers == cb.presence.peers == []
            assert hub.rosters == {}
            await ca.stop()
            await cb.stop()
    finally:
        await hub.stop()


async def test_a_bad_announcement_is_refused_and_others_keep_their_presence(hub: Hub) -> None:
    with Store.memory(sync=True) as a:
        ca = SyncClient(a, hub.memory_connector(), store_id="s1", presence_name="laptop")
        ca.start()
        rogue = await hub.memory_connector()()
        await rogue.send(hello(PRESENCE, client_id="rogue"))
        await rogue.send(encode(PresenceUpdate(name="ok")))
        async with asyncio.timeout(5):
            await ca.presence.wait(lambda peers: names(ca) == {("ok", "online")})
        await rogue.send(encode(PresenceUpdate(name="x" * 1000)))
        await rogue.send(b'{"type":"presence_update","detail":[]}')
        await rogue.send(encode(Ping(nonce=9)))
        async with asyncio.timeout(5):
            frames = [f for f in await receive_until(rogue, Pong) if not isinstance(f, Presence)]
        assert [type(f) for f in frames] == [Welcome, PresenceRejected, PresenceRejected, Pong]
        assert names(ca) == {("ok", "online")}
        await rogue.close()
        async with asyncio.timeout(5):
            await ca.presence.wait(lambda peers: peers == [])
        await ca.stop()


async def test_a_burst_of_updates_ends_in_the_last_one(hub: Hub) -> None:
    with Store.memory(sync=True) as a, Store.memory(sync=True) as b:
        ca = SyncClient(a, hub.memory_connector(), store_id="s1", presence_name="laptop")
        cb = SyncClient(b, hub.memory_connector(), store_id="s1", presence_name="desk")
        ca.start()
        cb.start()
        async with asyncio.timeout(5):
            await cb.presence.wait(lambda peers: bool(peers))
        for index in range(50):
            ca.presence.announce(detail={"step": str(index)})
        async with asyncio.timeout(5):
            await cb.presence.wait(lambda peers: [p.detail for p in peers] == [{"step": "49"}])
        await ca.stop()
        await cb.stop()


async def test_presence_travels_over_websockets() -> None:
    hub = Hub(MemoryLog(), None)
    with Store.memory(sync=True) as a, Store.memory(sync=True) as b:
        async with asyncio.timeout(20), serving(hub) as url:
            connect = websocket_connector(url.replace("http", "ws") + "/sync")
            ca = SyncClient(a, connect, store_id="s1", presence_name="laptop")
            cb = SyncClient(b, connect, store_id="s1", presence_name="desk")
            ca.start()
            cb.start()
            await ca.presence.wait(lambda peers: names(ca) == {("desk", "online")})
            cb.presence.announce("desk, upstairs", detail={"view": "memories"})
            await ca.presence.wait(lambda peers: names(ca) == {("desk, upstairs", "online")})
            assert ca.presence.peers[0].detail == {"view": "memories"}
            await cb.stop()
            await ca.presence.wait(lambda peers: peers == [])
            await ca.stop()


def test_a_presence_frame_lists_the_latest_seen_peers_and_fits_a_frame() -> None:
    # However many connections announce themselves, the frame each listener gets fits.
    roster: Roster[str] = Roster(interval=0.1)
    widest = PresenceUpdate(
        name="名" * MAX_NAME_CHARS,
        detail={f"{k}{'键' * (MAX_DETAIL_CHARS - 1)}": "值" * MAX_DETAIL_CHARS for k in range(8)},
    )
    for n in range(MAX_PEERS + 50):
        roster.listen(f"s{n}", f"s{n}")
        roster.announce(f"s{n}", "c" * 100, widest, T0 + timedelta(seconds=n))
    peers = roster.take(0.0)
    assert peers is not None
    assert [p.session_id for p in peers] == [f"s{n}" for n in range(50, MAX_PEERS + 50)]
    assert len(encode(Presence(peers=peers))) < MAX_FRAME_BYTES
