"""Processes writing one data directory at once, one with the store on, one with it off."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pjai.errors import SqlAheadError
from pjai.hybrid import HybridDatabaseManager
from pjai.hybrid import projector as projector_module
from tests.helpers import memory, persona

STORE_OFF_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from pjai.hybrid import HybridDatabaseManager
    from pjai.schema import MemoryAdded

    data, url, stop = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    off = {"PJAI_USE_LIVESTORE": "false"}
    with HybridDatabaseManager.open(data, sql_urls=[url], environ=off) as manager:
        print("ready", flush=True)
        done = 0
        while not stop.exists():
            manager.commit(MemoryAdded(memory_id=f"off{done}", persona_id="p1", content="x"))
            done += 1
    print(done, flush=True)
    """
)

BUSY_FOR_S = 3.0


def test_a_busy_store_off_writer_does_not_starve_a_store_on_writer(
    tmp_path: Path, sql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process commits with the store off in a tight loop and takes the next
    # place in SQL again and again. A store-on commit must take those commits in and
    # go after them: here with a single try, so that any lost race shows.
    monkeypatch.setattr(projector_module, "AHEAD_RETRIES", 0)
    data, stop = tmp_path / "data", tmp_path / "stop"
    with HybridDatabaseManager.open(data, sql_urls=[sql_url], environ={}) as on:
        on.commit(persona("p1"))
        with subprocess.Popen(
            [sys.executable, "-c", STORE_OFF_WRITER, str(data), sql_url, str(stop)],
            stdout=subprocess.PIPE,
            text=True,
        ) as writer:
            assert writer.stdout is not None
            try:
                assert writer.stdout.readline().strip() == "ready"
                committed, refused = 0, []
                started = time.monotonic()
                while time.monotonic() - started < BUSY_FOR_S:
                    try:
                        on.commit(memory(f"on{committed}"))
                        committed += 1
                    except SqlAheadError as exc:
                        refused.append(exc)
                        on.catch_up()  # with no retry, nothing else takes them in
            finally:
                stop.touch()
            off_committed = int(writer.stdout.readline())
            assert writer.wait(timeout=30) == 0
        assert refused == []
        assert off_committed > 0
        assert committed > 0
        on.catch_up()
        assert on.memories.count() == committed + off_committed
        assert on.verify().equal
