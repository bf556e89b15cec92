"""What a running plugin's processes have used so far, read from ``/proc`` by the
process that runs it: the OS limits count each process alone, and a plugin that forks
anew would otherwise use CPU without end."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["children", "cpu_used"]

_TICKS = os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int] | None:
    """The processes ``pid`` started and still has; ``None`` once it has ended."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return None
    return None if state == "Z" else [int(found) for found in text.split()]


def cpu_used(host: int) -> float:
    """The CPU seconds that the processes under the plugin's namespace's init (the
    host's child) have used, those that ended too: init reaps each, which adds what it
    used to init's count of its children's. Read parent first, so that a process reaped
    between two reads is missed for a moment, never counted twice."""
    init = children(host) or []
    total = 0
    for pid in init:
        found = _stat(pid)
        if found is not None:
            total += found[2] + found[3]  # what init's reaped children used, not init
            pending = _all_children(pid)
            while pending:
                pid = pending.pop()
                if (found := _stat(pid)) is not None:
                    total += sum(found)
                    pending += _all_children(pid)
    return total / _TICKS


def _stat(pid: int) -> tuple[int, int, int, int] | None:
    """A process's own user and system CPU and its reaped children's, in clock ticks."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return utime, stime, cutime, cstime


def _all_children(pid: int) -> list[int]:
    """The processes any thread of ``pid`` started (each thread lists its own)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except OSError:
            continue
    return found
