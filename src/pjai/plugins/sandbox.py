"""Running a plugin in its sandbox: a child process with OS limits, no network, no file
system, and a capability-scoped API over a pipe (:mod:`pjai.plugins.host`).

The parent sets the limits (``setrlimit``: CPU seconds, address space, file size, open
files) between fork and exec, answers the plugin's calls (:mod:`pjai.plugins.protocol`)
only as far as its manifest grants them and only for the persona it runs for, stops it
at its wall-time limit, and reports what it used as the OS measured it (``wait4``).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pjai.errors import PjaiError
from pjai.memory.optimizer import MemoryMove
from pjai.plugins.manifest import Limits, Manifest, read_plugin_source
from pjai.plugins.protocol import Handler, converse, one_line, quoted_reason
from pjai.plugins.watch import children

__all__ = ["Handler", "PluginError", "PluginRun", "run_sandboxed"]

_HOST = Path(__file__).with_name("host.py")
"""The child's program, run as a script: nothing of PJai is imported into it."""

_HOST_GRACE_S = 2.0
"""How long the host may take to measure the plugin and end, once it is stopped."""
_TAIL_BYTES = 2000
"""How much of what a plugin prints (its standard error) a run keeps: the end."""


class PluginError(PjaiError):
    """A plugin could not run, was stopped at a limit, or failed; the message says which."""


@dataclass(frozen=True, slots=True)
class PluginRun:
    """How a plugin's run went: its result, its calls, what it used (as measured), and
    what it changed."""

    name: str
    result: Any
    calls: dict[str, int]
    cpu_s: float
    max_rss_mb: float
    wall_s: float
    log: list[str] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)
    """The calls answered with an error (not granted, over a limit, wrong arguments), by
    name: a plugin that catches the error still shows in the run."""
    added: list[str] = field(default_factory=list)
    """The ids of the memories the run added, in order."""
    moved: list[MemoryMove] = field(default_factory=list)
    """What the optimizer runs its adds started did to the persona's other memories:
    tier moves, and archivings or deletions by retention and the privacy rules (never
    deletions for space: a plugin's add makes no room)."""


def run_sandboxed(
    directory: Path,
    manifest: Manifest,
    arguments: dict[str, Any],
    handle: Handler,
    *,
    source: bytes | None = None,
) -> PluginRun:
    """Run the plugin in ``directory`` with ``arguments``; ``handle`` answers its calls.
    ``source``: its entry file's bytes as read when its grant was checked (read from
    ``directory`` when not given); the sandbox runs these, and opens no file of it.

    Raises :class:`PluginError`: no sandbox here (no network namespace), a limit
    exceeded (saying which), the plugin failed (its error), or broke the protocol.
    """
    limits = manifest.limits
    if source is None:
        source = read_plugin_source(directory)[2]
    try:
        text = source.decode()
    except UnicodeDecodeError as exc:
        raise PluginError(
            f"plugin {manifest.name}: {manifest.entry.partition(':')[0]} is not UTF-8 text ({exc})"
        ) from exc
    with tempfile.TemporaryDirectory(prefix="pjai-plugin-root-", dir=_root_parent()) as root:
        os.chmod(root, 0o555)  # empty; the host mounts a read-only file system on it
        # What the plugin used, as the host measured it: a pipe the plugin does not hold.
        measured, report = os.pipe()
        # What it prints goes to a pipe, of which the end is kept: its root is read-only,
        # and a file would take what it allocates past its size (no limit counts that).
        printed, errors = os.pipe()
        try:
            child = subprocess.Popen(
                [
                    sys.executable, "-I", "-S", str(_HOST),
                    manifest.entry, root, str(report), str(limits.processes),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                cwd=root,
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                preexec_fn=lambda: _limit(limits),
                start_new_session=True,
                pass_fds=(report,),
            )  # fmt: skip
        except BaseException:
            os.close(measured)
            os.close(printed)
            raise
        finally:
            os.close(report)
            os.close(errors)
        tail = _Tail(printed)
        started = time.monotonic()
        outcome: dict[str, Any] | None = None
        refused: dict[str, int] = {}
        try:
            outcome, calls, log = converse(child, text, arguments, handle, limits, started, refused)
        finally:
            _stop(child, done=outcome is not None and "done" in outcome)
        wall = time.monotonic() - started
        usage = _usage(child)
        used = _measured(measured)
    if said := tail.text():
        log.append(f"stderr: {said}")
    # How the plugin's process ended, as its namespace's init saw it; the host's own
    # end when there is no word from init (killed at the wall time, never ran).
    ended = used.get("exit")
    code = ended if isinstance(ended, int) and not isinstance(ended, bool) else child.returncode
    return _finish(manifest, outcome, calls, refused, log, usage, used, wall, code)


_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None)
"""Loaded here, not between fork and exec, where loading could wait on a lock another
thread of the parent held as it forked."""


def _root_parent() -> str | None:
    """Where the plugin's empty root is made: the temporary directory, unless PJai runs
    as root and that is closed to others (``/root/tmp``): the host, gone on as nobody,
    must reach it, so then ``/tmp``."""
    if os.geteuid() != 0:
        return None
    here = Path(tempfile.gettempdir())
    for place in (here, Path("/tmp")):
        if all(folder.stat().st_mode & stat.S_IXOTH for folder in (place, *place.parents)):
            return str(place)
    raise PluginError(
        f"no temporary directory others may pass through ({here}, /tmp): the plugin, run "
        "as nobody, needs one for its empty root; set TMPDIR to one"
    )


def _limit(limits: Limits) -> None:
    """Between fork and exec: the OS limits of the plugin's process."""
    mib = 1024 * 1024
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * mib, limits.memory_mb * mib))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_mb * mib, limits.file_mb * mib))
    resource.setrlimit(resource.RLIMIT_NOFILE, (32, 32))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # The host, and with it the plugin's namespace, dies with the process that runs it.
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class _Tail:
    """Reads what the plugin prints (a pipe) in a thread until every writer is gone,
    keeping its last :data:`_TAIL_BYTES`."""

    def __init__(self, fd: int) -> None:
        self._fd, self._kept = fd, b""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        with os.fdopen(self._fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                self._kept = (self._kept + chunk)[-_TAIL_BYTES:]

    def text(self) -> str:
        """What was kept, as one line of valid text (the run has ended: no writer is
        left, or one its namespace's end leaves behind is not waited for long)."""
        self._reader.join(timeout=_HOST_GRACE_S)
        return one_line(self._kept.decode(errors="replace"))


def _stop(child: subprocess.Popen[bytes], *, done: bool) -> None:
    """End the run. A plugin that is ``done`` ends by itself: its namespace's init
    then ends what it left, measures it all and ends, and the host with it (given a
    moment). Otherwise, or after that moment, init is killed (which ends every process
    of the namespace, whatever the plugin did to its signals or session), then the
    host's group. Not poll(): the exit status is reaped by wait4, with the resource use."""
    if done:
        _host_ends(child, time.monotonic() + _HOST_GRACE_S)
    for pid in children(child.pid) or ():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    _host_ends(child, time.monotonic() + _HOST_GRACE_S)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)
    for stream in (child.stdin, child.stdout):
        if stream is not None:
            stream.close()


def _host_ends(child: subprocess.Popen[bytes], deadline: float) -> None:
    """Wait until the host has ended (not reaped), or ``deadline``."""
    while time.monotonic() < deadline and children(child.pid) is not None:
        time.sleep(0.01)


def _measured(measured: int) -> dict[str, Any]:
    """What the host measured of the plugin's process (nothing if it never ran)."""
    with os.fdopen(measured, "rb") as pipe:
        data = pipe.read(4096)
    try:
        used = json.loads(data) if data else {}
    except ValueError:
        return {}
    return used if isinstance(used, dict) else {}


def _usage(child: subprocess.Popen[bytes]) -> resource.struct_rusage | None:
    """The child's resource use as the OS counted it (and its exit status reaped)."""
    try:
        _, status, usage = os.wait4(child.pid, 0)
    except ChildProcessError:
        return None
    child.returncode = os.waitstatus_to_exitcode(status)
    return usage


def _finish(
    manifest: Manifest,
    outcome: dict[str, Any] | None,
    calls: dict[str, int],
    refused: dict[str, int],
    log: list[str],
    usage: resource.struct_rusage | None,
    used: dict[str, Any],
    wall: float,
    code: int | None,
) -> PluginRun:
    limits = manifest.limits
    cpu = (usage.ru_utime + usage.ru_stime) if usage is not None else 0.0
    # The plugin process's own peak, as the host measured it (the host's count, after
    # its exec, keeps the size of the process that started it).
    peak = used.get("peak_kb")
    rss = peak / 1024 if isinstance(peak, int) and not isinstance(peak, bool) else 0.0
    name = manifest.name
    over_cpu = f"plugin {name} used more than its {limits.cpu_s} s of CPU: stopped"
    # What its processes used together, as init counted them (the OS holds each alone
    # to the limit): over it, an answer is not taken.
    together = used.get("cpu_s")
    if outcome is not None and (
        outcome.get("cpu")
        or ("done" in outcome and isinstance(together, float) and together > limits.cpu_s)
    ):
        raise PluginError(over_cpu)
    if outcome is not None and "done" in outcome:
        if "exit" not in used:
            # Its namespace's init measures it once it has ended: it went on after its
            # answer, and was stopped, so what it used is not known.
            raise PluginError(
                f"plugin {name} went on after its answer and was stopped "
                f"{_HOST_GRACE_S:g} s later; what it used is not known"
            )
        try:
            json.dumps(outcome["done"], ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise PluginError(
                f"plugin {name} broke the protocol (an answer that is not valid Unicode)"
            ) from None
        return PluginRun(
            name, outcome["done"], calls, round(cpu, 3), round(rss, 1), wall, log, refused
        )
    if outcome is not None and outcome.get("wall"):
        raise PluginError(f"plugin {name} ran longer than its {limits.wall_s} s: stopped")
    if outcome is not None and "refused" in outcome:
        raise PluginError(f"plugin {name} was not run: {quoted_reason(outcome['refused'])}")
    if code in (-signal.SIGXCPU, -signal.SIGKILL) and cpu >= limits.cpu_s - 0.5:
        raise PluginError(over_cpu)
    if outcome is not None and "failed" in outcome:
        reason = quoted_reason(outcome["failed"])
        if "File too large" in reason:  # Python turns the OS's SIGXFSZ into this error
            raise PluginError(f"plugin {name} wrote more than its {limits.file_mb} MB file limit")
        if "memory" in reason:
            reason += f" ({limits.memory_mb} MB)"
        raise PluginError(f"plugin {name} failed: {reason}")
    raise PluginError(f"plugin {name} stopped without an answer (exit {code})")
