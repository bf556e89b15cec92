"""Child processes a web benchmark or test runs: `pjai serve` and `pjai sync connect`,
each started as a person would start it, stopped with SIGTERM (killed after 10 s)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

from pjai.bench import processes

__all__ = ["Child", "SyncProcess", "WebProcess", "free_port"]


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _child_env(extra: dict[str, str] | None) -> dict[str, str]:
    # NiceGUI takes a process that sees PYTEST_CURRENT_TEST for its own test server.
    inherited = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    return {**inherited, **(extra or {})}


class Child:
    """A `pjai ...` child process whose output goes to ``log``."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pjai", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=_child_env(env),
            )

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.process.pid

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first match of ``pattern`` in the child's output, once it appears."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.log.read_text())
            if found:
                return found
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"`pjai` printed no {pattern!r}:\n{self.log.read_text()}")
            time.sleep(0.05)

    def rss_kb(self) -> int:
        """The child's resident memory now, in KiB (Linux)."""
        return processes.resident_kb(self.pid, "memory figures")

    def stop(self) -> None:
        """Ask the child to stop (SIGTERM); kill it if it has not after 10 s."""
        processes.stop(self.process, signal.SIGTERM)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class WebProcess(Child):
    """`pjai serve` on ``data_dir`` and a free loopback port (``args`` added), once it
    announced its address (:attr:`url`)."""

    def __init__(
        self,
        data_dir: Path,
        *args: str,
        env: dict[str, str] | None = None,
        timeout: float = 60.0,
    ) -> None:
        port = free_port()
        log = data_dir.parent / f"serve-{port}.log"
        command = ["serve", "--data-dir", str(data_dir), "--port", str(port), *args]
        super().__init__(command, log, env)
        self.url = self.wait_for(r"PJai web app on (http://\S+)", timeout)[1].rstrip("/")
        self._wait_listening(port, timeout)

    def _wait_listening(self, port: int, timeout: float) -> None:
        # The app announces itself as it starts; the socket opens a moment later.
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError as exc:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    output = self.log.read_text()
                    raise RuntimeError(f"`pjai serve` never listened:\n{output}") from exc
                time.sleep(0.02)


class SyncProcess(Child):
    """`pjai sync connect` for ``data_dir`` through the server at ``url``, announced to
    the others on the store as ``name`` (without one it takes no part in presence);
    ``env`` is added to its environment."""

    def __init__(
        self,
        data_dir: Path,
        url: str,
        token: str,
        *,
        store_id: str,
        name: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 60.0,
    ) -> None:
        log = data_dir.parent / f"sync-{data_dir.name}.log"
        args = ["sync", "connect", url, "--token", token, "--store-id", store_id]
        args += ["--name", name] if name else ["--hidden"]
        args += ["--data-dir", str(data_dir)]
        super().__init__(args, log, env)
        self.wait_for(r"online", timeout)
