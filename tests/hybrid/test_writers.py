"""Processes writing one data directory at once, one with the store on, one with it off."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pjai.errors import ConfigError, SqlAheadError
from pjai.hybrid import HybridDatabaseManager
from pjai.hybrid import manager as manager_module
from pjai.hybrid import projector as projector_module
from tests.helpers import memory, persona
from tests.hybrid.test_faults import FAST_FAIL, sql_locked

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


KILLED = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from pjai.hybrid import HybridDatabaseManager
    from pjai.hybrid.files import OFF_HEAD
    from pjai.schema import MemoryAdded
    from pjai.store.filehead import FileHead
    from pjai.store.log import EventLog

    data, url, when = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    off = {"PJAI_USE_LIVESTORE": "false"}
    noting = EventLog.set_meta

    def noted(self, **values):
        if set(values) == {OFF_HEAD}:  # SQL has committed; its head is being noted
            os.kill(os.getpid(), signal.SIGKILL)
        noting(self, **values)

    def claimed(self, **values):  # the places are noted; SQL is about to commit
        noting_now(self, **values)
        os.kill(os.getpid(), signal.SIGKILL)

    with HybridDatabaseManager.open(data, sql_urls=[url], environ=off) as manager:
        if when == "after-sql":
            EventLog.set_meta = noted
        else:
            noting_now = FileHead.note_now
            FileHead.note_now = claimed
        manager.commit(MemoryAdded(memory_id="store-off", persona_id="p1", content="x"))
    """
)


@pytest.mark.parametrize("when", ["after-sql", "before-sql"])
def test_a_store_off_commit_killed_half_way_does_not_split_the_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    # A store-off commit's process is killed between SQL's commit and its note in the
    # store file (or just before SQL's commit). A store-on process that cannot reach
    # SQL must not commit in its place: the two histories would go apart, and neither
    # side could take the other's events in again. Once SQL answers, it takes SQL's
    # event in (if SQL committed it) and commits after it, by itself.
    monkeypatch.setattr(manager_module, "RETRY_DELAYS_S", (0.01,))
    data, primary = tmp_path / "data", tmp_path / "primary.db"
    url = f"sqlite:///{primary}"
    with HybridDatabaseManager.open(data, sql_urls=[url], environ={}) as on:
        on.commit(persona("p1"))
    killed = subprocess.run([sys.executable, "-c", KILLED, str(data), url, when], check=False)
    assert killed.returncode == -signal.SIGKILL
    in_sql = {"store-off"} if when == "after-sql" else set()
    with contextlib.ExitStack() as stack:
        with sql_locked(primary):
            on = stack.enter_context(
                HybridDatabaseManager.open(data, sql_urls=[url], pool=FAST_FAIL, environ={})
            )
            with pytest.raises(ConfigError, match="committed with the store off") as caught:
                on.commit(memory("store-on"))
            assert "Commit again then" in str(caught.value)
            assert on.store is not None
            assert on.store.head.global_seq == 1  # nothing was written
        (record,) = on.commit(memory("store-on"))  # SQL answers: its event comes first
        assert record.position.global_seq == 2 + len(in_sql)
        ids = {row[0] for row in on.query("SELECT id FROM memories")}
        assert ids == {*in_sql, "store-on"}
        assert on.verify().equal
    off = {"PJAI_USE_LIVESTORE": "false"}
    with HybridDatabaseManager.open(data, sql_urls=[url], environ=off) as store_off:
        (record,) = store_off.commit(memory("later"))  # a store-off commit goes on as ever
        assert record.position.global_seq == 3 + len(in_sql)
