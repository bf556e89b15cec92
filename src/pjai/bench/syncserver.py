"""Sync server processes for ``pjai bench sync``: uvicorn on a loopback port, as deployed,
in a process of its own so that its memory is its own."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from pjai.bench import processes
from pjai.sync.server import Limits, ServerConfig, SyncServer, default_total

__all__ = ["ServerProcess", "serve", "servers"]

_URL_VARIABLE = "PJAI_BENCH_SYNC_DB_URL"


def serve(db_url: str) -> None:
    """Run a sync server on a free loopback port until SIGINT or SIGTERM (the child's entry).

    Prints the port once it listens. On PostgreSQL it takes wake-ups from the other
    server processes.
    """
    # The benchmark's clients all run on this machine, with few tokens: only the total
    # limits how many connections it holds (pjai.sync.server.places), and each of them
    # may make a request a second and open a connection a second (the idle connections
    # share one token, and every connection one address).
    total = default_total()
    limits = Limits(total=total, per_address=total, per_token=total)
    config = ServerConfig(limits=limits, request_rate=float(total), connection_rate=float(total))
    with SyncServer.open(db_url, config) as server:
        server.run(on_listening=lambda url: print(urlsplit(url).port, flush=True))


_ENTRY = f"import os; from pjai.bench.syncserver import serve; serve(os.environ['{_URL_VARIABLE}'])"


class ServerProcess:
    """A :func:`serve` child process; its stderr goes to ``log``."""

    def __init__(self, db_url: str, log: Path) -> None:
        env = {**os.environ, _URL_VARIABLE: db_url}
        self.log = log
        with log.open("ab") as errors:
            self.child = subprocess.Popen(
                [sys.executable, "-c", _ENTRY], stdout=subprocess.PIPE, stderr=errors, env=env
            )
        assert self.child.stdout is not None
        line = self.child.stdout.readline().strip()
        if not line.isdigit():
            self.stop()
            raise RuntimeError(f"the sync server did not start:\n{log.read_text()}")
        self.url = f"ws://127.0.0.1:{int(line)}/sync"

    def rss_kb(self) -> int:
        """The server's resident memory now, in KiB."""
        return processes.resident_kb(self.child.pid, "the idle-connection figure")

    def stop(self) -> None:
        """Shut the server down gracefully (SIGINT), or kill it after 10 s."""
        processes.stop(self.child, signal.SIGINT)
        if self.child.stdout is not None:
            self.child.stdout.close()


@contextlib.contextmanager
def servers(db_url: str, workdir: Path, count: int) -> Iterator[list[ServerProcess]]:
    """``count`` server processes on ``db_url``, stopped after."""
    started: list[ServerProcess] = []
    try:
        for _ in range(count):
            started.append(ServerProcess(db_url, workdir / "server.log"))
        yield started
    finally:
        for server in started:
            server.stop()
