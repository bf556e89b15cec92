"""The sync runner's bookkeeping: URLs, the flag it sets, the status it reports."""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path

import pytest

from pjai.app import (
    DataDir,
    SyncOutcome,
    connect,
    sync_conflicts,
    sync_status,
    sync_url,
)
from pjai.app.eventlog import pending_erasures
from pjai.errors import ConfigError
from pjai.schema import PersonaErased
from pjai.sync.client import SyncStatus
from tests.helpers import history, persona


def test_urls_are_normalised() -> None:
    assert sync_url("http://h:8765") == "ws://h:8765/sync"
    assert sync_url("https://h/") == "wss://h/sync"
    assert sync_url("ws://h:1/custom?x=1") == "ws://h:1/custom?x=1"
    with pytest.raises(ConfigError, match="'ftp://h' is not a sync server URL"):
        sync_url("ftp://h")
    with pytest.raises(ConfigError, match="'http://:8765' is not a sync server URL"):
        sync_url("http://:8765")  # no host
    for bad, why in (
        ("http://[::1", "Invalid IPv6 URL"),
        ("http://h:99999", "out of range"),
        ("http://h:abc", "could not be cast"),
    ):
        with pytest.raises(ConfigError, match=rf"is not a sync server URL .*{why}"):
            sync_url(bad)


def test_a_directory_that_could_not_be_made_synced_is_left_as_it_was(tmp_path: Path) -> None:
    data = DataDir(tmp_path, environ={"PJAI_USE_LIVESTORE": "false"})
    with pytest.raises(ConfigError, match="needs the reactive store"):
        connect(data, "http://127.0.0.1:9", once=True, timeout=0)
    assert data.flags().stored("sync") is None
    assert not data.store_path.exists()
    assert not data.sync_status_path.exists()
    with pytest.raises(ConfigError, match="not a sync server URL"):
        connect(data, "nowhere")
    assert not data.flags_path.exists()


def test_a_run_in_another_thread_ends_when_its_stop_event_is_set(tmp_path: Path) -> None:
    stop = threading.Event()
    reported: list[SyncStatus] = []
    ended: list[SyncOutcome] = []

    def seen(status: SyncStatus) -> None:
        reported.append(status)
        stop.set()  # at the first status: nothing listens on port 9, it keeps retrying

    def run() -> None:
        ended.append(connect(DataDir(tmp_path), "http://127.0.0.1:9", report=seen, stop=stop))

    running = threading.Thread(target=run, daemon=True)
    running.start()
    running.join(timeout=60)
    assert not running.is_alive(), "the run did not end when stop was set"
    assert reported
    assert ended[0].status.state == "stopped"
    assert not ended[0].level


def test_status_needs_a_store(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "new")
    with pytest.raises(ConfigError, match="has no store yet; `pjai sync connect URL` makes one"):
        sync_status(data)
    with pytest.raises(ConfigError, match="has no store yet"):
        sync_conflicts(data)


@pytest.mark.parametrize(
    ("pid", "state", "shown"),
    [
        (os.getpid(), "online", "online"),  # a running client
        (os.getpid(), "stopped", "not running"),
        (0, "online", "not running"),  # no such process
    ],
)
def test_status_joins_the_store_and_the_status_file(
    tmp_path: Path, pid: int, state: str, shown: str
) -> None:
    data = DataDir(tmp_path, environ={"PJAI_FLAG_SYNC": "true"})
    with data.open():
        pass
    report = sync_status(data)
    assert (report.state, report.last_state, report.lag, report.confirmed_head) == (
        "not running",
        None,
        None,
        0,
    )
    seen = {"state": state, "pid": pid, "server_head": 4, "url": "ws://h/sync", "reconnects": 2}
    data.sync_status_path.write_text(json.dumps(seen))
    report = sync_status(data)
    assert (report.state, report.last_state, report.lag, report.reconnects) == (shown, state, 4, 2)
    assert sync_conflicts(data) == []
    data.sync_status_path.write_text("{")
    with pytest.raises(ConfigError, match="is not JSON"):
        sync_status(data)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"[1]", "is not a sync status (Expected `object`, got `array`)"),
        (b'{"pid": 1, "server_head": "a"}', "is not a sync status (Expected `int | null`"),
        (b'{"pid": 1, "state": "online", "peers": [1]}', "is not a sync status"),
        (b"\xff\xfe\x00", "is not JSON"),
        (b'{"url": "\xff"}', "is not JSON"),
        (b'{"peers": [' * 100_000, "is not JSON"),
    ],
)
def test_a_status_file_of_another_shape_is_named(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    data = DataDir(tmp_path, environ={"PJAI_FLAG_SYNC": "true"})
    with data.open():
        pass
    data.sync_status_path.write_bytes(content)
    with pytest.raises(ConfigError, match=re.escape(f"{data.sync_status_path} {problem}")):
        sync_status(data)
    data.sync_status_path.unlink()
    data.sync_status_path.mkdir()
    with pytest.raises(ConfigError, match=r"sync-status\.json cannot be read"):
        sync_status(data)


def test_an_erasure_another_process_made_counts_as_waiting_for_the_server(
    tmp_path: Path,
) -> None:
    # Compacting while it waits would keep the rows its pending event holds, and the
    # compaction would count as done.
    data = DataDir(tmp_path / "data", environ={"PJAI_FLAG_SYNC": "true"})
    with data.open() as syncing:
        assert syncing.store is not None
        syncing.store.rebase(history([persona("ada")]))  # confirmed: nothing pending
        assert pending_erasures(syncing) == set()
        with data.open() as other:  # as `pjai privacy erase` in another terminal
            other.commit(PersonaErased(persona_id="ada"))
        assert pending_erasures(syncing) == {"ada"}
