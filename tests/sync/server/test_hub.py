"""The hub's own memory: the encoded frames it shares between live pullers."""

from __future__ import annotations

import msgspec

from pjai.schema.records import Position
from pjai.sync.protocol import Events, Pong
from pjai.sync.server.hub import FRAMES_BYTES, Hub
from pjai.sync.server.log import MemoryLog
from tests.sync.records import records


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
