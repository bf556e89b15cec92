"""The hub's own memory and work: the encoded frames it shares between live pullers, the
pages of catch-ups, the connections it holds back past their token's rate."""

from __future__ import annotations

import asyncio
import threading
import tracemalloc

import anyio
import msgspec
import pytest

from pjai.schema.records import ROOT, EventRecord, Position
from pjai.sync.protocol import (
    Events,
    Hello,
    Ping,
    Pong,
    Pull,
    Push,
    PushAck,
    Welcome,
    decode,
    encode,
)
from pjai.sync.server.hub import FRAMES_BYTES, Hub
from pjai.sync.server.log import MemoryLog
from pjai.sync.server.places import BODIES_PER_TOKEN, Bodies
from pjai.sync.server.tokens import RateLimiter
from pjai.sync.transport import Transport
from tests.sync.records import records

pytestmark = pytest.mark.anyio

WAIT = 30  # seconds before a wait counts as a hang


def large_batch(number: int, size: int) -> Events:
    """An events frame of one event with ``size`` bytes of arguments."""
    (record,) = records(1, persona_id=f"p{number}")
    args = msgspec.Raw(b'{"text":"' + b"x" * size + b'"}')
    return Events(events=[msgspec.structs.replace(record, args=args)], head=Position(1), more=False)


def test_shared_frames_keep_to_their_byte_budget() -> None:
    """Frames of up to 8 MiB each: kept by number alone, 64 of them would hold 512 MiB."""
    frames = Hub(MemoryLog(), None).frames
    batches = [large_batch(n, 3 * 1024 * 1024) for n in range(20)]
    for batch in batches:
        assert frames.encode(batch, "s1") is frames.encode(batch, "s1")  # shared
    kept = frames._frames.values()
    assert sum(len(frame) for frame in kept) <= FRAMES_BYTES
    assert len(kept) >= FRAMES_BYTES // (4 * 1024 * 1024)  # the newest are kept
    assert frames.encode(batches[-1], "s1") in kept
    assert frames.encode(Pong(nonce=1), "s1") == b'{"type":"pong","nonce":1}'


def test_kept_frames_take_the_memory_they_are_counted_as() -> None:
    """The encoder leaves room after what it wrote, half as much again: frames kept as
    they came would hold half as much again as the budget counts."""
    frames = Hub(MemoryLog(), None).frames
    batches = [large_batch(n, 1024 * 1024) for n in range(8)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for batch in batches:
            frames.encode(batch, "s1")
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert frames.kept >= 8 * 1024 * 1024
    assert held < frames.kept * 1.02


def test_a_frame_over_the_budget_is_sent_but_not_kept() -> None:
    frames = Hub(MemoryLog(), None).frames
    frames._budget = 1024 * 1024
    batch = large_batch(1, 2 * 1024 * 1024)
    assert msgspec.json.decode(frames.encode(batch, "s1"))["events"][0]["args"]["text"]
    assert frames._frames == {}


async def test_catch_ups_take_few_pages_at_once_and_live_pullers_go_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pulls of a long history, however many, read and send a few pages at a time (the
    token's slots for large bodies); a live puller is sent what is appended without one."""
    log = MemoryLog()
    history = records(3_000)  # three pages
    log.append("s1", history)
    hub = Hub(log, None)
    hub.bodies = Bodies(total=BODIES_PER_TOKEN, per_token=BODIES_PER_TOKEN)  # s1 takes all
    reading, most, release = 0, 0, threading.Event()
    read = log.read

    def held(store_id: str, after: Position, limit: int) -> list[EventRecord]:
        nonlocal reading, most
        if store_id == "s1":  # a page of a catch-up, held until released
            reading += 1
            most = max(most, reading)
            release.wait(WAIT)
            reading -= 1
        return read(store_id, after, limit)

    monkeypatch.setattr(log, "read", held)
    connect = hub.memory_connector()

    async def hello(store_id: str) -> Transport:
        transport = await connect()
        await transport.send(encode(Hello(versions=[1], store_id=store_id, client_id="c1")))
        assert isinstance(decode(await transport.receive()), Welcome)
        return transport

    pullers = [await hello("s1") for _ in range(BODIES_PER_TOKEN + 3)]
    for transport in pullers:
        await transport.send(encode(Pull(cursor=ROOT, live=False)))
    with anyio.fail_after(WAIT):
        while reading < len(pullers) and (reading, hub.bodies.waiting) != (2, 3):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    assert reading == BODIES_PER_TOKEN, f"{reading} pages read at once for one token"

    # Meanwhile a live puller of another store hears an append at once.
    live = await hello("s2")
    await live.send(encode(Pull(cursor=ROOT, live=True)))
    with anyio.fail_after(WAIT):
        assert decode(await live.receive()) == Events(events=[], head=ROOT, more=False)
        pushed = records(1)
        await live.send(encode(Push(id=1, events=pushed)))
        answers = {type(decode(await live.receive())) for _ in range(2)}
    assert answers == {PushAck, Events}
    release.set()
    with anyio.fail_after(WAIT):
        for transport in pullers:
            got: list[EventRecord] = []
            while not got or got[-1] != history[-1]:
                page = decode(await transport.receive())
                assert isinstance(page, Events)
                got += page.events
            assert got == history
    assert most == BODIES_PER_TOKEN


async def test_a_connection_over_its_token_s_rate_is_held() -> None:
    hub = Hub(MemoryLog(), None, request_limiter=RateLimiter(rate=0.01, burst=3))
    transport = await hub.memory_connector()()
    await transport.send(encode(Hello(versions=[1], store_id="s1", client_id="c1")))
    with anyio.fail_after(WAIT):
        assert isinstance(decode(await transport.receive()), Welcome)
        for nonce in range(3):  # the third is over the rate: answered, then held
            await transport.send(encode(Ping(nonce=nonce)))
            assert decode(await transport.receive()) == Pong(nonce=nonce)
    held = hub.metrics.registry.get_sample_value("pjai_sync_frames_held_total")
    assert held == 1.0
    await hub.stop()
