"""Transports: taking the frames that already arrived, in memory."""

from __future__ import annotations

import asyncio

import pytest

from pjai.sync.transport import arrived, memory_pipe

pytestmark = pytest.mark.anyio


async def test_the_frames_that_arrived_are_taken_together() -> None:
    client, server = memory_pipe()
    for frame in (b"1", b"2", b"3"):
        await server.send(frame)
    frames = [await client.receive()]
    receiving = await arrived(client, frames, 64)
    assert frames == [b"1", b"2", b"3"]
    assert not receiving.done()  # it waits for the next one
    await server.send(b"4")
    assert await receiving == b"4"


async def test_no_more_than_asked_for_are_taken() -> None:
    client, server = memory_pipe()
    for frame in (b"1", b"2", b"3"):
        await server.send(frame)
    frames = [await client.receive()]
    receiving = await arrived(client, frames, 2)
    assert frames == [b"1", b"2"]
    assert await receiving == b"3"


async def test_a_closed_connection_ends_the_receive_it_returns() -> None:
    client, server = memory_pipe()
    await server.send(b"1")
    await server.close()
    frames: list[bytes] = []
    receiving = await arrived(client, frames, 64)
    assert frames == [b"1"]
    assert receiving.done()
    assert receiving.exception() is not None


async def test_a_cancelled_caller_leaves_no_receive_behind() -> None:
    client, _server = memory_pipe()
    before = asyncio.all_tasks()
    taking = asyncio.create_task(arrived(client, [], 64))
    await asyncio.sleep(0)  # it has started a receive and waits a turn
    taking.cancel()
    with pytest.raises(asyncio.CancelledError):
        await taking
    await asyncio.sleep(0)
    assert asyncio.all_tasks() == before
