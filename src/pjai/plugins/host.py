"""The plugin host: the child process a plugin runs in (run as a script, standard
library only, so that nothing of PJai is loaded into it).

It reads the plugin's code, closes the sandbox over itself, then runs the plugin:

1. the plugin's source is read while the file system is still there;
2. new user, network and mount namespaces (no network interface but a loopback that is
   down, so no connection reaches anything), then ``chroot`` into an empty directory
   (no file of the machine is there to read);
3. the plugin's module runs and its entry function is called with an ``api`` whose
   calls go to PJai over standard input and output, one JSON line each way.

The OS limits on CPU time, memory, file size and open files were set by the parent
before this process started (:mod:`pjai.plugins.sandbox`). Protocol, child to parent:
``{"call": NAME, "args": {...}}`` (answered by ``{"result": ...}`` or
``{"error": "..."}``), then ``{"done": RESULT}``, ``{"failed": "..."}`` or
``{"refused": "..."}``.
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
import socket  # noqa: F401  (so that a plugin trying the network meets the namespace)
import statistics  # noqa: F401
import string  # noqa: F401
import sys
import textwrap  # noqa: F401
import traceback
from typing import Any

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000

_out = sys.stdout
_in = sys.stdin


def _send(message: dict[str, Any]) -> None:
    _out.write(json.dumps(message) + "\n")
    _out.flush()


class Api:
    """What a plugin can ask of PJai; each call is checked against its capabilities."""

    def _call(self, name: str, **args: Any) -> Any:
        _send({"call": name, "args": args})
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


def _close_sandbox(root: str) -> str | None:
    """Enter new namespaces and an empty root; the reason if that is not possible."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET | _CLONE_NEWNS) != 0:
        return f"no network namespace here ({os.strerror(ctypes.get_errno())})"
    try:
        os.chroot(root)
        os.chdir("/")
    except OSError as exc:
        return f"cannot close the file system ({exc})"
    return None


def main() -> None:
    global _out
    # The protocol keeps its own copy of standard output; what the plugin prints goes
    # to standard error (the run's log), so that it cannot break a protocol line.
    _out = os.fdopen(os.dup(1), "w")
    sys.stdout = sys.stderr
    plugin_dir, entry, root = sys.argv[1:4]
    module_file, _, function = entry.partition(":")
    try:
        with open(os.path.join(plugin_dir, module_file)) as source_file:
            source = source_file.read()
        args = json.loads(_in.readline() or "{}")
    except (OSError, ValueError) as exc:
        _send({"failed": f"cannot read the plugin: {exc}"})
        return
    refused = _close_sandbox(root)
    if refused is not None:
        _send({"refused": refused})
        return
    try:
        namespace: dict[str, Any] = {"__name__": "pjai_plugin"}
        exec(compile(source, module_file, "exec"), namespace)
        result = namespace[function](Api(), args)
        _send({"done": result})
    except MemoryError:
        _send({"failed": "ran out of its memory limit"})
    except BaseException as exc:  # the plugin's failure, reported to the parent
        _send({"failed": "".join(traceback.format_exception_only(exc)).strip()})


if __name__ == "__main__":
    main()
