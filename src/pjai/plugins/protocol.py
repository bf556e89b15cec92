"""The run's side of a plugin's protocol: its calls answered over its standard input
and output until it says how it ended (the plugin's side is :mod:`pjai.plugins.host`).

Every read and write waits at most until the run's deadline, and the CPU the plugin's
processes use together is watched meanwhile. What the plugin says (its log lines, its
reasons) is kept as one line of valid text: it cannot print lines that look like PJai's.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import time
from collections.abc import Callable
from typing import Any

from pjai.errors import PjaiError
from pjai.plugins.manifest import Limits
from pjai.plugins.watch import cpu_used

__all__ = ["Handler"]

_MAX_LOG_LINES = 1_000
"""The most ``log`` lines a run keeps (each up to 1,000 characters)."""
_CALLS = frozenset({"memories", "add_memory", "log"})
_ENDINGS = frozenset({"done", "failed", "refused"})
_MAX_CALL_NAME = 64
_MAX_LINE = 1 << 20
"""The longest protocol line a plugin may send."""
_MAX_REASON = 1000
"""The most characters of a plugin's own reason (why it failed) an error quotes."""
_WATCH_S = 0.1
"""How often a run adds up the CPU its plugin's processes used, while it waits on it."""

Handler = Callable[[str, dict[str, Any]], Any]
"""Answers one call of the plugin (``name``, ``args``); raises
:class:`~pjai.plugins.sandbox.PluginError` to refuse it."""


def one_line(text: str) -> str:
    """``text`` as one line of valid Unicode: a plugin's text cannot print lines that
    look like PJai's own, nor stop the printing of them (a lone surrogate)."""
    valid = text.encode(errors="replace").decode()
    return " ".join(valid.splitlines()).strip()


def quoted_reason(said: Any) -> str:
    """A reason the plugin's process gave, as one line of at most :data:`_MAX_REASON`
    characters: the plugin's own text cannot print lines that look like PJai's."""
    text = one_line(str(said))
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


class _Pipe:
    """The child's standard input and output as raw, non-blocking descriptors: every
    read and write waits at most until the run's deadline, whatever the plugin does
    (a line it never ends, answers it never reads)."""

    def __init__(self, child: subprocess.Popen[bytes], deadline: float, cpu_s: int) -> None:
        assert child.stdin is not None
        assert child.stdout is not None
        self._in, self._out = child.stdin.fileno(), child.stdout.fileno()
        os.set_blocking(self._in, False)
        os.set_blocking(self._out, False)
        self._host, self._deadline, self._cpu_s = child.pid, deadline, cpu_s
        self._buffer = b""
        self._watched = time.monotonic()
        self.over_cpu = False
        """Its processes together used more than its CPU limit (each alone is held to
        it by the OS; one that forks anew is not)."""

    def _wait(self, fd: int, event: int) -> bool:
        with selectors.DefaultSelector() as selector:
            selector.register(fd, event)
            while (left := self._deadline - time.monotonic()) > 0:
                if self._past_cpu():
                    return False
                if selector.select(timeout=min(left, _WATCH_S)):
                    return True
        return False

    def _past_cpu(self) -> bool:
        """Whether its processes together used more than its CPU limit, added up at
        most every :data:`_WATCH_S`: whether or not the run waited on the plugin that
        long (a plugin that calls often would otherwise never be watched)."""
        now = time.monotonic()
        if now >= self._watched + _WATCH_S:
            self._watched = now
            if cpu_used(self._host) > self._cpu_s:
                self.over_cpu = True
        return self.over_cpu

    def line(self) -> bytes | None:
        """The next line (``b""`` at the end); ``None`` past the deadline or the CPU
        limit; a line over the limit is cut there."""
        while b"\n" not in self._buffer and len(self._buffer) <= _MAX_LINE:
            if not self._wait(self._out, selectors.EVENT_READ):
                return None
            try:
                chunk = os.read(self._out, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                return b""
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line[: _MAX_LINE + 1]

    def send(self, data: bytes) -> bool:
        """Write ``data`` whole; ``False`` past the deadline or the CPU limit, or once
        the child is gone."""
        view = memoryview(data)
        while view:
            if not self._wait(self._in, selectors.EVENT_WRITE):
                return False
            try:
                view = view[os.write(self._in, view) :]
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                return False
        return True


def converse(
    child: subprocess.Popen[bytes],
    source: str,
    arguments: dict[str, Any],
    handle: Handler,
    limits: Limits,
    started: float,
    refused: dict[str, int],
) -> tuple[dict[str, Any] | None, dict[str, int], list[str]]:
    """Answer the plugin's calls until it says it is done; ``None`` if it stopped
    without saying (a limit, a crash); ``{"wall": True}`` past its wall time. The calls
    answered with an error are counted in ``refused``, as they are answered."""
    pipe = _Pipe(child, started + limits.wall_s, limits.cpu_s)
    calls: dict[str, int] = {}
    log: list[str] = []
    sandboxed = False  # the host said the sandbox is closed: the plugin's code may run
    given = json.dumps(source).encode() + b"\n" + json.dumps(arguments).encode() + b"\n"
    if not pipe.send(given):
        return None, calls, log
    while True:
        line = pipe.line()
        if line is None:
            return {"cpu": True} if pipe.over_cpu else {"wall": True}, calls, log
        if not line:
            return None, calls, log
        if len(line) > _MAX_LINE:
            return {"failed": "sent a line over 1 MiB"}, calls, log
        try:
            message = json.loads(line)
        except (ValueError, RecursionError):  # not JSON, or nested past Python's stack
            return {"failed": "broke the protocol (a line that is not JSON)"}, calls, log
        if isinstance(message, dict) and "sandboxed" in message and "call" not in message:
            sandboxed = True
            continue
        if not isinstance(message, dict) or "call" not in message:
            if isinstance(message, dict) and "refused" in message and (calls or sandboxed):
                # Only the host refuses, before the plugin's code runs: a plugin that
                # ran cannot pass itself off as one that was not run.
                return {"failed": "broke the protocol (refused after it ran)"}, calls, log
            if not isinstance(message, dict):
                return None, calls, log
            # Only what the plugin may say: "wall" and "cpu" are the run's own findings.
            return {k: v for k, v in message.items() if k in _ENDINGS}, calls, log
        name, args = str(message["call"])[:_MAX_CALL_NAME], message.get("args") or {}
        # Counted by name for the calls there are; the rest together (a name each would
        # let a plugin grow this process's memory without end).
        counted = name if name in _CALLS else "(unknown calls)"
        calls[counted] = calls.get(counted, 0) + 1
        answer = _answer(name, args if isinstance(args, dict) else {}, handle, log)
        if "error" in answer:
            refused[counted] = refused.get(counted, 0) + 1
        if not pipe.send(json.dumps(answer, default=str).encode() + b"\n"):
            if pipe.over_cpu:
                return {"cpu": True}, calls, log
            return (
                {"wall": True} if time.monotonic() >= started + limits.wall_s else None,
                calls,
                log,
            )


def _answer(name: str, args: dict[str, Any], handle: Handler, log: list[str]) -> dict[str, Any]:
    if name == "log":
        if len(log) < _MAX_LOG_LINES:
            # One line: a plugin's text cannot print lines that look like PJai's own.
            log.append(one_line(str(args.get("text", ""))[:1000]))
        elif len(log) == _MAX_LOG_LINES:
            log.append(f"(more lines than {_MAX_LOG_LINES}: not kept)")
        return {"result": None}
    try:
        return {"result": handle(name, args)}
    except PjaiError as exc:
        return {"error": str(exc)}
    except (TypeError, ValueError) as exc:  # arguments the handler could not take
        return {"error": f"{name}: {exc}"}
