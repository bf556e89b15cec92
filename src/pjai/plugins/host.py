"""The plugin host: the child process a plugin runs in (run as a script, standard
library only, so that nothing of PJai is loaded into it).

It reads the plugin's code, closes the sandbox over itself, then runs the plugin:

1. the plugin's source is read while the file system is still there;
2. new user, network, mount, IPC and PID namespaces and a session keyring of its own
   (no network interface but a loopback that is down, so no connection reaches
   anything); under an init of PJai's that ends and reaps whatever the plugin started,
   the plugin's process enters an empty read-only file system as its root (no file of
   the machine is there to read, none can be made) and drops every capability (no
   ``chroot``, mount or ``chmod`` to get back out, ``no_new_privs``);
3. the plugin's module runs and its entry function is called with an ``api`` whose
   calls go to PJai over standard input and output, one JSON line each way.

The OS limits on CPU time, memory, file size and open files were set by the parent
before this process started (:mod:`pjai.plugins.sandbox`); the limit on processes is set
here, inside the namespace, after a host run as root has gone on as ``nobody``.
Protocol, child to parent: ``{"sandboxed": true}`` once the sandbox is closed, before
the plugin's code runs; ``{"call": NAME, "args": {...}}`` (answered by
``{"result": ...}`` or ``{"error": "..."}``), then ``{"done": RESULT}``,
``{"failed": "..."}`` or ``{"refused": "..."}`` (only before ``sandboxed``: after it, a
broken protocol). What the plugin's processes used (CPU, peak memory) the init
measures as they end and writes to a pipe of its own, which the plugin does not hold.
"""

from __future__ import annotations

# What a plugin may import: loaded here, before the file system goes away.
import collections  # noqa: F401
import contextlib
import ctypes
import datetime  # noqa: F401
import encodings.idna  # noqa: F401  (host names in socket calls)
import errno
import itertools  # noqa: F401
import json
import math  # noqa: F401
import os
import random  # noqa: F401
import re  # noqa: F401
import resource
import signal
import socket  # also for plugins: trying the network, they meet the namespace
import statistics  # noqa: F401
import string  # noqa: F401
import sys
import textwrap  # noqa: F401
import traceback
from typing import Any

_CLONE_NEWNS = 0x00020000
_CLONE_NEWIPC = 0x08000000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWPID = 0x20000000
_CLONE_NEWNET = 0x40000000
_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_NOBODY = 65534
_PR_SET_NO_NEW_PRIVS = 38
_CAPABILITY_VERSION_3 = 0x20080522
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REC, _MS_PRIVATE = 0x4000, 0x40000
_KEYCTL_JOIN_SESSION_KEYRING = 1
_SYS_KEYCTL = {"x86_64": 250, "aarch64": 219}

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


_NO_IPC = {"shmmni": "0", "shmmax": "0", "shmall": "0", "msgmni": "0", "sem": "0 0 0 0"}
"""The IPC namespace's settings: no shared memory segment, message queue or semaphore."""


def _drop_root(libc: ctypes.CDLL) -> str | None:
    """Go on as ``nobody`` when run as root (the reason if that fails): the kernel
    exempts root from the process limit below, and maps nobody to the namespace's root
    as it maps any other user."""
    if os.geteuid() != 0:
        return None
    parent = os.getppid()
    os.setgroups([])
    os.setresgid(_NOBODY, _NOBODY, _NOBODY)
    os.setresuid(_NOBODY, _NOBODY, _NOBODY)
    # A change of user gives this process's /proc files to root (the maps below are
    # written there, after which they go back to root) and forgets the signal for when
    # PJai ends: set both again.
    if libc.prctl(_PR_SET_DUMPABLE, 1, 0, 0, 0) != 0:
        return f"cannot go on as nobody ({os.strerror(ctypes.get_errno())})"
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # PJai ended before the signal was set again
        return "the process that ran the plugin has ended"
    return None


def _close_sandbox(root: str, report: int, processes: int) -> str | None:
    """Enter new user, network, mount, IPC and PID namespaces and a session keyring of
    its own; go on as the plugin's process, the second of the new PID namespace, under
    an init of PJai's (below), in a root that is an empty read-only file system, with
    no capabilities left. The reason if the sandbox cannot be made."""
    libc = ctypes.CDLL(None, use_errno=True)
    dropped = os.geteuid() == 0
    if (refused := _drop_root(libc)) is not None:
        return refused
    uid, gid = os.getuid(), os.getgid()
    flags = _CLONE_NEWUSER | _CLONE_NEWNET | _CLONE_NEWNS | _CLONE_NEWIPC | _CLONE_NEWPID
    if libc.unshare(flags) != 0:
        return f"no network namespace here ({os.strerror(ctypes.get_errno())})"
    # The namespace's root is the user who runs PJai (and no one else is in it): only
    # then may its IPC settings, below, be written by a user who is not root.
    try:
        for name, text in (
            ("setgroups", "deny"),
            ("uid_map", f"0 {uid} 1"),
            ("gid_map", f"0 {gid} 1"),
        ):
            with open(f"/proc/self/{name}", "w") as mapping:
                mapping.write(text)
    except OSError as exc:
        return f"cannot map the user namespace ({exc.strerror or exc})"
    # Gone on as nobody: other processes of nobody's (daemons) may not trace these.
    if dropped and libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        return f"cannot close the process to others ({os.strerror(ctypes.get_errno())})"
    # System V shared memory and message queues would hold memory that no limit of a
    # process counts: the new IPC namespace has none to give.
    for name, none in _NO_IPC.items():
        try:
            with open(f"/proc/sys/kernel/{name}", "w") as setting:
                setting.write(none)
        except OSError as exc:
            return f"cannot close System V IPC ({name}: {exc.strerror or exc})"
    # At most this many processes (threads count) in the namespace, this host, its init
    # and the plugin included. Set once in it: the limit then counts the namespace's
    # processes, not every one of the user's (as it would if set before, as the
    # namespace's own ceiling).
    resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
    keyctl = _SYS_KEYCTL.get(os.uname().machine)
    joined = keyctl is None or libc.syscall(keyctl, _KEYCTL_JOIN_SESSION_KEYRING, None) >= 0
    # Not there, or not allowed (a seccomp filter, which the plugin inherits): none to read.
    if not joined and ctypes.get_errno() not in (errno.ENOSYS, errno.EPERM):
        return f"cannot leave the session keyring ({os.strerror(ctypes.get_errno())})"
    init = os.fork()
    if init:
        _wait_for_init(init)  # the host: does not return
    # The namespace's init: it dies with the host, and keeps a process group of its own
    # there, so that nothing the plugin signals reaches the host. Signals from inside
    # the namespace reach it only where it has a handler: Python's for SIGINT goes.
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.setpgid(0, 0)
    try:
        _read_only_root(libc, root)
    except OSError as exc:
        return f"cannot close the file system ({exc})"
    plugin = os.fork()
    if plugin:
        _init(plugin, report)  # does not return
    os.close(report)  # init's channel: the plugin cannot write its own measurement
    os.setpgid(0, 0)
    # No capability left (no mount, chroot or chmod to get out), none to be gained.
    header = (ctypes.c_uint32 * 2)(_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    if libc.capset(header, data) != 0 or libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return f"cannot drop capabilities ({os.strerror(ctypes.get_errno())})"
    return _filter_system_calls(libc)


# Classic BPF, as seccomp reads it: load a word of the call's data, jump if equal (or
# greater or equal) to a constant, return a verdict.
_LD, _JEQ, _JGE, _RET = 0x20, 0x15, 0x35, 0x06
_ALLOW, _ERRNO, _KILL = 0x7FFF0000, 0x00050000, 0x80000000
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2
_ARCHES = {
    # machine: (audit arch, socket, io_uring_setup, rt_sigaction, first x32 call or None)
    "x86_64": (0xC000003E, 41, 425, 13, 0x40000000),
    "aarch64": (0xC00000B7, 198, 425, 134, None),
}
_FAMILIES = (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6)
"""The socket families a plugin may open: in its network namespace they reach nothing.
Others are refused; some are not bound to a namespace (``AF_VSOCK`` reaches the
machine's host from a virtual machine)."""
_ARG = (16, 24)
"""Where the low 32 bits of a call's first and second argument are in its data (the high
ones follow: x86_64 and aarch64 are little-endian)."""


class _SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


def _filter_system_calls(libc: ctypes.CDLL) -> str | None:
    """A seccomp filter: no socket of a family outside :data:`_FAMILIES`, no io_uring
    (it could open one without the call), no change to how SIGCHLD is taken (ignored,
    or ``SA_NOCLDWAIT``, the kernel reaps the children as they end and their CPU is then
    in no count: neither the watch's nor init's), no call of another ABI (32-bit, x32),
    which the filter would not read right. The reason if it cannot be set; on a machine
    this does not know, the namespaces alone close the sandbox."""
    arch = _ARCHES.get(os.uname().machine)
    if arch is None:
        return None
    audit, socket_nr, io_uring_nr, sigaction_nr, x32 = arch
    first, second = _ARG
    # (code, k, where to go if true, where to go if false): a label or the next line;
    # a line that is a label's name alone marks where it is.
    program: list[tuple[int, int, str | None, str | None] | str] = [
        (_LD, 4, None, None),  # the architecture
        (_JEQ, audit, None, "kill"),
        (_LD, 0, None, None),  # the call's number
        *([(_JGE, x32, "kill", None)] if x32 is not None else []),
        (_JEQ, io_uring_nr, "nosys", None),
        (_JEQ, sigaction_nr, "sigaction", None),
        (_JEQ, socket_nr, None, "allow"),
        (_LD, first, None, None),  # its first argument: the family
        *[(_JEQ, family, "allow", None) for family in _FAMILIES],
        (_RET, _ERRNO | errno.EAFNOSUPPORT, None, None),
        "sigaction",  # (signal, new action or NULL, old action): reading it is allowed
        (_LD, first, None, None),
        (_JEQ, signal.SIGCHLD, None, "allow"),
        (_LD, second, None, None),
        (_JEQ, 0, None, "perm"),
        (_LD, second + 4, None, None),
        (_JEQ, 0, "allow", "perm"),
    ]
    verdicts = {
        "allow": _ALLOW,
        "nosys": _ERRNO | errno.ENOSYS,
        "perm": _ERRNO | errno.EPERM,
        "kill": _KILL,
    }
    lines: list[tuple[int, int, str | None, str | None]] = []
    at: dict[str, int] = {}  # where each label is, in lines
    for line in program:
        if isinstance(line, str):
            at[line] = len(lines)
        else:
            lines.append(line)
    at |= {name: len(lines) + i for i, name in enumerate(verdicts)}
    built = []
    for i, (code, k, true, false) in enumerate(lines):
        jt = at[true] - i - 1 if true else 0
        jf = at[false] - i - 1 if false else 0
        built.append(_SockFilter(code, jt, jf, k))
    built += [_SockFilter(_RET, 0, 0, verdict) for verdict in verdicts.values()]
    filters = (_SockFilter * len(built))(*built)
    prog = _SockFprog(len(built), filters)
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        return f"cannot filter system calls ({os.strerror(ctypes.get_errno())})"
    return None


def _read_only_root(libc: ctypes.CDLL, root: str) -> None:
    """Make ``root`` an empty read-only file system (no device, set-id or program files)
    and the root of this process and those it starts. Mounts stay in this namespace."""
    if libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), "cannot make the mounts private")
    closed = _MS_RDONLY | _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
    if libc.mount(b"pjai-plugin", root.encode(), b"tmpfs", closed, b"size=4k") != 0:
        raise OSError(ctypes.get_errno(), f"cannot mount an empty file system on {root}")
    os.chroot(root)
    os.chdir("/")


def _init(plugin: int, report: int) -> None:
    """The first process of the plugin's PID namespace: wait for the plugin, end and
    reap whatever it left, and write what all of it used, and how the plugin ended, to
    ``report`` (every process of the namespace was this one's child or came to it).
    Signals from inside the namespace reach it only where it has a handler: none."""
    status = 0
    while True:
        try:
            pid, found = os.wait()
        except ChildProcessError:
            break
        if pid == plugin:
            status = found
            with contextlib.suppress(ProcessLookupError):
                os.kill(-1, signal.SIGKILL)  # every process of the namespace but this one
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = {
        "peak_kb": usage.ru_maxrss,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "exit": os.waitstatus_to_exitcode(status),  # a signal's as its number, negative
    }
    os.write(report, json.dumps(used).encode())
    os.close(report)
    os._exit(0)


def _wait_for_init(init: int) -> None:
    """The host: wait for the namespace's init, then end (init said how the plugin
    ended)."""
    os.waitpid(init, 0)
    raise SystemExit(0)


def main() -> None:
    global _out
    # The protocol keeps its own copy of standard output; what the plugin prints goes
    # to standard error (the run's log), so that it cannot break a protocol line.
    _out = os.fdopen(os.dup(1), "w")
    sys.stdout = sys.stderr
    entry, root, report, processes = sys.argv[1:5]
    module_file, _, function = entry.partition(":")
    try:
        # The entry file's text as PJai read it and checked it against the grant: no
        # file is opened here, so what runs is what was granted.
        source = json.loads(_in.readline() or '""')
        args = json.loads(_in.readline() or "{}")
    except (OSError, ValueError) as exc:
        _send({"failed": f"cannot read the plugin: {exc}"})
        return
    # How SIGCHLD is taken is inherited: ignored where PJai runs, the plugin's children
    # would be reaped unseen, their CPU in no count (and the plugin may not change it).
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    refused = _close_sandbox(root, int(report), int(processes))
    if refused is not None:
        _send({"refused": refused})
        return
    # Said once, before the plugin's code runs: a "refused" after it is the plugin's.
    _send({"sandboxed": True})
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
