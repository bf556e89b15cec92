"""The hub's own memory and work: the encoded frames it shares between live pullers, the
connections it holds back past their token's rate."""

from __future__ import annotations

import anyio
import msgspec
import pytest

from pjai.schema.records import Position
from pjai.sync.protocol import Events, Hello, Ping, Pong, Welcome, decode, encode
from pjai.sync.server.hub import FRAMES_BYTES, Hub
from pjai.sync.server.log import MemoryLog
from pjai.sync.server.tokens import RateLimiter
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


def test_a_frame_over_the_budget_is_sent_but_not_kept() -> None:
    frames = Hub(MemoryLog(), None).frames
    frames._budget = 1024 * 1024
    batch = large_batch(1, 2 * 1024 * 1024)
    assert msgspec.json.decode(frames.encode(batch, "s1"))["events"][0]["args"]["text"]
    assert frames._frames == {}


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
