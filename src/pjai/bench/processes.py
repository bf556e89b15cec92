"""What the benchmarks read of, and do to, the child processes they start (Linux)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["resident_kb", "stop"]


def resident_kb(pid: int, figure: str, *, peak: bool = False) -> int:
    """Process ``pid``'s resident memory now (with ``peak``, its highest so far), in
    KiB; ``figure`` is what needs it.

    The peak is the kernel's ``VmHWM``, which starts again at ``exec``; the
    ``ru_maxrss`` of ``getrusage`` does not, and reports a child's parent's size at
    the fork when that is larger.
    """
    field = "VmHWM:" if peak else "VmRSS:"
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    raise RuntimeError(f"no {field[:-1]} in /proc; {figure} needs Linux")


def stop(process: subprocess.Popen[Any], sig: signal.Signals) -> None:
    """Send ``sig`` to ``process`` if it still runs; kill it if it has not ended after 10 s."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
