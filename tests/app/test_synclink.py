"""The web app's own sync client: connect, status file, refusals, disconnect."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pjai.app import DataDir, Personas, SyncLink, connect, sync_status
from pjai.app.sync import SyncLock
from pjai.errors import ConfigError
from pjai.sync.server.hub import Hub
from pjai.sync.server.log import MemoryLog
from tests.sync.servers import serving

pytestmark = pytest.mark.anyio


def synced(path: Path) -> DataDir:
    return DataDir(path, environ={"PJAI_FLAG_SYNC": "true"})


async def test_connect_syncs_writes_the_status_file_and_disconnect_stops(tmp_path: Path) -> None:
    hub = Hub(MemoryLog(), None, poll_interval=0.05)
    here, there = synced(tmp_path / "here"), synced(tmp_path / "there")
    async with asyncio.timeout(30), serving(hub) as url:
        with here.open() as mine, there.open() as theirs:
            link, other = SyncLink(here, mine), SyncLink(there, theirs)
            status = await link.connect(url, store_id="shared", name="laptop")
            assert status.state == "online"
            await other.connect(url, store_id="shared")
            arrived = asyncio.Event()
            loop = asyncio.get_running_loop()
            assert theirs.store is not None
            watch = theirs.store.live("SELECT id FROM personas").subscribe(
                lambda rows: rows and loop.call_soon_threadsafe(arrived.set)
            )
            ada = Personas(mine).create("Ada")
            await arrived.wait()
            watch.unsubscribe()
            report = sync_status(here)
            assert (report.state, report.pid, report.store_id) == ("online", os.getpid(), "shared")
            with pytest.raises(
                ConfigError, match=r"already connected to ws://.*: disconnect first"
            ):
                await link.connect(url)
            await link.disconnect()
            assert link.client is None
            assert json.loads(here.sync_status_path.read_text())["state"] == "stopped"
            assert sync_status(here).state == "not running"
            await other.disconnect()
            assert Personas(theirs).get(ada.id).name == "Ada"


async def test_a_refused_first_answer_leaves_nothing_running(tmp_path: Path) -> None:
    hub = Hub(MemoryLog(), lambda token: None, poll_interval=0.05)  # knows no token
    data = synced(tmp_path / "here")
    async with asyncio.timeout(30), serving(hub) as url:
        with data.open() as manager:
            link = SyncLink(data, manager)
            with pytest.raises(ConfigError, match=r"the sync server at ws://.* refused: .*token"):
                await link.connect(url, token="wrong")
            assert link.client is None
            assert sync_status(data).state == "not running"


async def test_standalone_directories_and_other_processes_clients_are_refused(
    tmp_path: Path,
) -> None:
    alone = DataDir(tmp_path / "alone")
    with alone.open() as manager, pytest.raises(ConfigError, match="standalone data directory"):
        await SyncLink(alone, manager).connect("http://127.0.0.1:9")
    data = synced(tmp_path / "synced")
    # Another process's client: it holds the directory's sync lock, and wrote its status.
    holder = _holding(data.sync_lock_path)
    try:
        data.sync_status_path.write_text(json.dumps({"state": "online", "pid": holder.pid}))
        with (
            data.open() as manager,
            pytest.raises(ConfigError, match=rf"process {holder.pid} syncs this data directory"),
        ):
            await SyncLink(data, manager).connect("http://127.0.0.1:9")
        with pytest.raises(ConfigError, match="syncs this data directory"):  # the CLI's too
            connect(data, "http://127.0.0.1:9", once=True, timeout=5)
    finally:
        holder.kill()
        holder.communicate()
    with data.open() as manager:  # the kernel let go of its lock as it ended
        link = SyncLink(data, manager)
        await link.connect("http://127.0.0.1:9", settle_s=0.2)  # offline first: it tries
        assert link.client is not None
        with pytest.raises(ConfigError, match="syncs this data directory"):
            SyncLock(data)  # held while the link runs
        await link.disconnect()
    SyncLock(data).close()  # and let go once it stopped


def _holding(lock: Path) -> subprocess.Popen[bytes]:
    """Another process, once it holds ``lock``."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(lock)], stdout=subprocess.PIPE)
    assert holder.stdout is not None
    assert holder.stdout.readline() == b"locked\n"
    return holder


_HOLD_LOCK = """
import fcntl, sys, time
lock = open(sys.argv[1], "a")
fcntl.flock(lock, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(60)
"""
