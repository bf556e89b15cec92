"""The plugin host: the child process a plugin runs in (run as a script, standard
library only, so that nothing of PJai is loaded into it).

It reads the plugin's code, closes the sandbox over itself, then runs the plugin:

1. the plugin's source is read while the file system is still there;
2. new user, network, mount and PID namespaces (no network interface but a loopback
   that is down, so no connection reaches anything; the plugin runs as the first process
   of its PID namespace, so everything it starts ends with it), then ``chroot`` into an
   empty directory (no file of the machine is there to read), and every capability
   dropped (no ``chroot``, mount or ``chmod`` to get back out, ``no_new_privs``);
3. the plugin's module runs and its entry function is called with an ``api`` whose
   calls go to PJai over standard input and output, one JSON line each way.

The OS limits on CPU time, memory, file size and open files were set by the parent
before this process started (:mod:`pjai.plugins.sandbox`). Protocol, child to parent:
``{"call": NAME, "args": {...}}`` (answered by ``{"result": ...}`` or
``{"error": "..."}``), then ``{"done": RESULT}``, ``{"failed": "..."}`` or
``{"refused": "..."}``. What the plugin's process used (CPU, peak memory) the host
measures as it ends and writes to a pipe of its own, which the plugin does not hold.
"""

from __future__ import annotations

# What a plugin may import: loaded here, before the file system goes away.
import collections  # noqa: F401
import ctypes
import datetime  # noqa: F401
import encodings.idna  # noqa: F401  (host names in socket calls)
import itertools  # noqa: F401
import json
import math  # noqa: F401
import os
import random  # noqa: F401
import re  # noqa: F401
import signal
import socket  # noqa: F401  (so that a plugin trying the network meets the namespace)
import statistics  # noqa: F401
import string  # noqa: F401
import sys
import textwrap  # noqa: F401
import traceback
from typing import Any

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWPID = 0x20000000
_CLONE_NEWNET = 0x40000000
_PR_SET_PDEATHSIG = 1
_PR_SET_NO_NEW_PRIVS = 38
_CAPABILITY_VERSION_3 = 0x20080522

_out = sys.stdout
_in = sys.stdin


def _send(message: dict[str, Any]) -> None:
    _out.write(json.dumps(message) + "\n")
    _out.flush()


class Api:
    """What a plugin can ask of PJai; each call is checked against its capabilities."""

    def _call(self, call: str, /, **args: Any) -> Any:
        _send({"call": call, "args": args})
        line = _in.readline()
        if not line:
            raise SystemExit(1)  # the parent went away
        answer = json.loads(line)
        if "error" in answer:
            raise PermissionError(answer["error"])
        return answer["result"]

    def memories(self, limit: int = 50) -> list[dict[str, Any]]:
        """The persona's live memories, best first (``memories:read``)."""
        return list(self._call("memories", limit=limit))

    def add_memory(self, content: str, **fields: Any) -> str:
        """Record a memory for the persona; its id (``memories:add``)."""
        return str(self._call("add_memory", content=content, **fields))

    def log(self, text: str) -> None:
        """A line for the run's log."""
        self._call("log", text=str(text)[:1000])


def _close_sandbox(root: str, report: int) -> str | None:
    """Enter new user, network, mount and PID namespaces; go on in a child that is the
    first process of the new PID namespace (when it ends, every process it made ends
    too), locked into an empty root with no capabilities left. The reason if the
    namespaces cannot be made."""
    libc = ctypes.CDLL(None, use_errno=True)
    flags = _CLONE_NEWUSER | _CLONE_NEWNET | _CLONE_NEWNS | _CLONE_NEWPID
    if libc.unshare(flags) != 0:
        return f"no network namespace here ({os.strerror(ctypes.get_errno())})"
    child = os.fork()
    if child:
        _wait_as(child, report)  # does not return
    os.close(report)  # the host's own channel: the plugin cannot write its measurement
    # The plugin's process: it dies with this host (a kill of the run reaches it; until
    # the plugin runs, it shares the host's process group, which the run kills too).
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    try:
        os.chroot(root)
        os.chdir("/")
    except OSError as exc:
        return f"cannot close the file system ({exc})"
    # No capability left in the new namespaces (no chroot, mount or chmod to get out),
    # and none to be gained by running anything.
    header = (ctypes.c_uint32 * 2)(_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    if libc.capset(header, data) != 0 or libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return f"cannot drop capabilities ({os.strerror(ctypes.get_errno())})"
    return None


def _wait_as(child: int, report: int) -> None:
    """Wait for the plugin's process, write what it used to ``report``, and end as it
    ended (code or signal), so that the parent sees how it stopped (its usage counts in
    this process's too). Its peak memory is its own: it was forked from the small host,
    while the host's count, after its exec, keeps the size of the process that started
    it."""
    _, status, usage = os.wait4(child, 0)
    used = {"peak_kb": usage.ru_maxrss, "cpu_s": usage.ru_utime + usage.ru_stime}
    os.write(report, json.dumps(used).encode())
    os.close(report)
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        if number not in (signal.SIGKILL, signal.SIGSTOP):  # those have no handler
            signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
    raise SystemExit(os.waitstatus_to_exitcode(status) & 0xFF)


def main() -> None:
    global _out
    # The protocol keeps its own copy of standard output; what the plugin prints goes
    # to standard error (the run's log), so that it cannot break a protocol line.
    _out = os.fdopen(os.dup(1), "w")
    sys.stdout = sys.stderr
    plugin_dir, entry, root, report = sys.argv[1:5]
    module_file, _, function = entry.partition(":")
    try:
        with open(os.path.join(plugin_dir, module_file)) as source_file:
            source = source_file.read()
        args = json.loads(_in.readline() or "{}")
    except (OSError, ValueError) as exc:
        _send({"failed": f"cannot read the plugin: {exc}"})
        return
    refused = _close_sandbox(root, int(report))
    if refused is not None:
        _send({"refused": refused})
        return
    try:
        namespace: dict[str, Any] = {"__name__": "pjai_plugin"}
        exec(compile(source, module_file, "exec"), namespace)
        run = namespace.get(function)
        if not callable(run):
            _send({"failed": f"the entry function {function} is not defined in {module_file}"})
            return
        _send({"done": run(Api(), args)})
    except MemoryError:
        _send({"failed": "ran out of its memory limit"})
    except BaseException as exc:  # the plugin's failure, reported to the parent
        failure = "".join(traceback.format_exception_only(exc)).strip()
        _send({"failed": failure})


if __name__ == "__main__":
    main()
