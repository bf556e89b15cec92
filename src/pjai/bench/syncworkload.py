"""The sizes of a ``pjai bench sync`` run: the full one and ``--quick``."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FULL", "QUICK", "SHARED_PUSHES", "STEP_TIMEOUT_S", "WARMUP", "SyncWorkload"]

STEP_TIMEOUT_S = 120.0
"""The longest a run waits on one of its steps (clients levelling, a commit reaching the
other client, connections opening, a fan-in) before it fails."""


@dataclass(frozen=True, slots=True)
class SyncWorkload:
    """Sizes of one run."""

    samples: int
    """Sequential commits timed from client A to the live query on client B."""
    clients: int
    """Concurrent pushers in the fan-in."""
    batches: int
    """Pushes per fan-in client."""
    batch: int
    """Events per push."""
    client_batches: int
    """Commits of ``batch`` events per SyncClient in its fan-in (they commit slowly)."""
    idle: int
    """Idle connections whose server memory is measured."""


FULL = SyncWorkload(samples=1_000, clients=100, batches=10, batch=100, client_batches=4, idle=500)
QUICK = SyncWorkload(samples=100, clients=20, batches=4, batch=50, client_batches=2, idle=100)
WARMUP = 20
"""Untimed commits (latency) and connections (memory) before measuring."""
SHARED_PUSHES = 2
"""Pushes of ``batch`` events each client of the shared fan-in makes."""
