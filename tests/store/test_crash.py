"""A writer killed with SIGKILL loses no acknowledged commit and leaves a replayable log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pjai.store import Store

WRITER = textwrap.dedent(
    """
    import sys
    from pjai.schema import MemoryAdded, MemoryAccessed, PersonaCreated
    from pjai.store import Store

    store = Store.open(sys.argv[1])
    store.commit(PersonaCreated(persona_id="p1", name="Ada"))
    i = 0
    while True:
        events = [MemoryAdded(memory_id=f"m{i}", persona_id="p1", content=f"memory {i}")]
        if i:
            events.append(MemoryAccessed(memory_id=f"m{i - 1}", persona_id="p1"))
        store.commit(*events)
        print(f"m{i}", flush=True)
        i += 1
    """
)


@pytest.mark.parametrize("durability", ["normal", "full"])
def test_sigkill_mid_stream_loses_no_acknowledged_commit(tmp_path: Path, durability: str) -> None:
    path = tmp_path / "store.db"
    script = WRITER.replace(
        "Store.open(sys.argv[1])", f"Store.open(sys.argv[1], durability={durability!r})"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True
    ) as writer:
        assert writer.stdout is not None
        acknowledged = [writer.stdout.readline().strip() for _ in range(300)]
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    assert acknowledged[-1] == "m299"

    with Store.open(path) as store:
        present = {row.id for row in store.query("SELECT id FROM memories")}
        assert set(acknowledged) <= present
        state = store.state_hash()
        records = [entry.record for entry in store.events()]
        assert [r.position.global_seq for r in records] == list(range(1, len(records) + 1))
        store.rebuild()
        assert store.state_hash() == state
    with Store.memory(sync=True) as fresh:
        fresh.rebase(records)
        assert fresh.state_hash() == state
