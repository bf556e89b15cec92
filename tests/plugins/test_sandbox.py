"""Plugins in their sandbox: what they are granted works; files, the network, memory,
CPU, file size and wall time beyond their limits are refused, each with a clear error."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import pjai
from pjai.app import DataDir, Memories, Personas
from pjai.app import plugins as app_plugins
from pjai.app.plugins import run_plugin
from pjai.cli import app as cli
from pjai.errors import ConfigError
from pjai.hybrid import HybridDatabaseManager
from pjai.plugins import PluginError, Registry
from pjai.schema.selection import MemoryFilter


def plugin(tmp_path: Path, name: str, code: str, capabilities: list[str], **limits: int) -> Path:
    """Write a plugin called ``name`` whose ``run(api, args)`` is ``code``."""
    directory = tmp_path / "sources" / name
    directory.mkdir(parents=True)
    manifest: dict[str, Any] = {
        "name": name,
        "version": "1.0",
        "entry": "main.py:run",
        "capabilities": capabilities,
        "limits": {"cpu_s": 2, "memory_mb": 256, "file_mb": 1, "wall_s": 5} | limits,
    }
    (directory / "plugin.json").write_text(json.dumps(manifest))
    body = textwrap.indent(textwrap.dedent(code), "    ")
    (directory / "main.py").write_text(f"def run(api, args):\n{body}\n")
    return directory


def hosts_end(within_s: float = 10.0) -> bool:
    """Whether every plugin host process is gone within ``within_s`` (killed ones take a
    moment to be reaped); a plugin left running keeps one past it."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        found = subprocess.run(["pgrep", "-f", "pjai/plugins/host.py"], capture_output=True)
        if not found.stdout.split():
            return True
        time.sleep(0.05)
    return False


def installed(registry: Registry, source: Path) -> str:
    name = registry.install(source).manifest.name
    registry.enable(name)
    return name


def test_a_granted_plugin_reads_and_adds_memories_and_its_use_is_measured(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path
) -> None:
    registry, manager, ada = setting
    source = plugin(
        tmp_path,
        "summariser",
        """
        found = api.memories(limit=10)
        api.log(f"read {len(found)}")
        print("printing does not break the protocol")
        new = api.add_memory("seen: " + found[0]["content"], tags=["plugin"])
        return {"read": len(found), "added": new, "word": args["word"]}
        """,
        ["memories:read", "memories:add"],
    )
    name = installed(registry, source)
    done = run_plugin(registry, manager, name, ada, {"word": "hi"})
    assert done.result["read"] == 1
    assert done.result["word"] == "hi"
    assert done.calls == {"memories": 1, "log": 1, "add_memory": 1}
    assert "read 1" in done.log
    assert done.cpu_s > 0  # as the OS measured it
    assert done.max_rss_mb > 0
    added = Memories(manager).get(done.result["added"])
    assert (added.content, added.tags) == ("seen: likes green tea", ["plugin"])


def test_what_a_run_adds_is_within_its_write_limit(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path
) -> None:
    registry, manager, ada = setting
    code = (
        "added = []\n"
        "try:\n"
        "    for i in range(5):\n"
        "        added.append(api.add_memory('x' * 400_000))\n"
        "except PermissionError as refused:\n"
        "    return [len(added), str(refused)]"
    )
    source = plugin(tmp_path, "adder", code, ["memories:add"], writes_mb=1)
    done = run_plugin(registry, manager, installed(registry, source), ada)
    count, refused = done.result
    assert count == 2
    assert "this run added 800,000 bytes of text; its limit is 1,000,000" in refused
    assert len(Memories(manager).list(MemoryFilter(persona_id=ada))) == 3  # 1 before


def test_a_plugins_memory_is_its_own_not_that_of_the_process_that_ran_it(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path
) -> None:
    registry, manager, ada = setting
    code = "x = bytearray(40 * 2**20)\nx[::4096] = b'x' * len(x[::4096])\nreturn 1"
    name = installed(registry, plugin(tmp_path, "grower", code, []))
    ballast = bytearray(300 * 2**20)  # this process, much larger than the plugin
    ballast[::4096] = b"x" * len(ballast[::4096])
    used = run_plugin(registry, manager, name, ada).max_rss_mb
    assert 40 < used < 150, used  # its 40 MiB and Python; not the 300 MiB here


@pytest.mark.parametrize(
    ("code", "capabilities", "limits", "message"),
    [
        ("api.add_memory('sneaky')", ["memories:read"], {}, "not granted memories:add"),
        ("return open('/etc/passwd').read()", [], {}, "No such file or directory"),
        (
            "import socket\nsocket.create_connection(('127.0.0.1', 5432), timeout=2)",
            [],
            {},
            "Network is unreachable",
        ),
        ("block = bytearray(2 * 1024 ** 3)", [], {}, r"ran out of its memory limit \(256 MB\)"),
        ("while True:\n    pass", [], {"cpu_s": 1}, "used more than its 1 s of CPU"),
        ("import time\ntime.sleep(60)", [], {"wall_s": 1}, "ran longer than its 1 s"),
        ("import os\nos.listdir('/')\nreturn os.listdir('/')", [], {}, None),
        ("api.add_memory('x', tags='abc')", ["memories:add"], {}, "takes a list of texts"),
    ],
    ids=[
        "capability",
        "files",
        "network",
        "memory",
        "cpu",
        "wall",
        "empty-root",
        "tags-as-text",
    ],
)
def test_what_a_plugin_is_not_granted_is_refused(
    setting: tuple[Registry, HybridDatabaseManager, str],
    tmp_path: Path,
    code: str,
    capabilities: list[str],
    limits: dict[str, int],
    message: str | None,
) -> None:
    registry, manager, ada = setting
    name = installed(registry, plugin(tmp_path, "hostile", code, capabilities, **limits))
    if message is None:  # the plugin sees an empty file system
        assert run_plugin(registry, manager, name, ada).result == []
        return
    with pytest.raises(PluginError, match=message):
        run_plugin(registry, manager, name, ada)
    assert len(Memories(manager).list(MemoryFilter(persona_id=ada))) == 1  # nothing added


def test_a_plugin_writing_beyond_its_file_limit_is_stopped(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path
) -> None:
    registry, manager, ada = setting
    # The root it sees is read-only and empty: the files it can make are in memory.
    code = (
        "import os\nwith os.fdopen(os.memfd_create('x'), 'wb') as f:\n    f.write(b'x' * 3_000_000)"
    )
    name = installed(registry, plugin(tmp_path, "writer", code, []))
    with pytest.raises(PluginError, match="wrote more than its 1 MB file limit"):
        run_plugin(registry, manager, name, ada)


def test_what_a_plugin_prints_is_kept_by_its_end_on_one_line(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path
) -> None:
    # Its standard error is a pipe, not a file: what it allocates there (fallocate past
    # the size, which no file limit counts) takes no disk, and lines that look like
    # PJai's own are one line of its log.
    code = (
        "import ctypes, sys\n"
        "allocated = ctypes.CDLL(None).fallocate(2, 1, ctypes.c_longlong(0), 1 << 31)\n"
        "print('x' * 3_000_000, file=sys.stderr)\n"
        "print('end\\nerror: plugin probe failed', file=sys.stderr)\n"
        "return allocated"
    )
    done = _run_result(setting, tmp_path, code)
    assert done.result == -1  # a pipe has no room to allocate
    (printed,) = done.log
    assert printed.startswith("stderr: x")
    assert printed.endswith("x end error: plugin probe failed")
    assert len(printed) < 2100


def test_plugins_install_disabled_and_bad_manifests_are_refused(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path
) -> None:
    registry, manager, ada = setting
    source = plugin(tmp_path, "quiet", "return 1", [])
    made = registry.install(source)
    assert not made.enabled
    with pytest.raises(PluginError, match="plugin quiet is disabled"):
        run_plugin(registry, manager, "quiet", ada)
    with pytest.raises(ConfigError, match="installed already"):
        registry.install(source)
    registry.enable("quiet")
    assert run_plugin(registry, manager, "quiet", ada).result == 1
    registry.enable("quiet", False)
    assert [(p.manifest.name, p.enabled) for p in registry.list()] == [("quiet", False)]
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "plugin.json").write_text(json.dumps({"name": "Bad Name", "version": "1"}))
    with pytest.raises(ConfigError, match=r"plugin\.json"):
        registry.install(broken)
    miscalled = plugin(tmp_path, "miscalled", "return 1", ["memories.read"])
    with pytest.raises(
        ConfigError,
        match="a capability is one of memories:read, memories:read-restricted, memories:add",
    ):
        registry.install(miscalled)
    with pytest.raises(ConfigError, match="no plugin 'nothing' is installed"):
        registry.get("nothing")


def test_the_cli_installs_enables_runs_and_lists(tmp_path: Path) -> None:
    runner = CliRunner()
    where = ["--data-dir", str(tmp_path / "data")]
    with DataDir(tmp_path / "data").open() as manager:
        Personas(manager).create("Ada", activate=True)
    source = plugin(
        tmp_path, "counter", "return {'n': len(api.memories()), **args}", ["memories:read"]
    )
    made = runner.invoke(cli, ["plugin", "install", str(source), *where]).output
    assert "disabled" in made
    every_limit = (
        "limits 2 s CPU, 256 MB memory, 1 MB files, 5 s wall time, 32 processes, "
        "1,000 memories and 10 MB of memory text added"
    )
    assert every_limit in " ".join(made.split())
    refused = runner.invoke(cli, ["plugin", "run", "counter", *where])
    assert refused.exit_code == 1
    assert "is disabled" in refused.output
    assert runner.invoke(cli, ["plugin", "enable", "counter", *where]).exit_code == 0
    ran = runner.invoke(cli, ["plugin", "run", "counter", "--arg", "k=v", "--json", *where])
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.output)["result"] == {"n": 0, "k": "v"}
    listed = runner.invoke(cli, ["plugin", "list", *where]).output
    assert "counter 1.0 (enabled): grants memories:read" in listed
    assert every_limit in " ".join(listed.split())
    assert runner.invoke(cli, ["plugin", "remove", "counter", *where]).exit_code == 0
    assert "no plugin installed" in runner.invoke(cli, ["plugin", "list", *where]).output
    again = runner.invoke(cli, ["plugin", "install", str(source), "--json", *where])
    made = json.loads(again.output)
    assert (made["enabled"], made["manifest"]["name"]) == (False, "counter")


def test_a_plugin_runs_from_a_data_directory_given_relative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The default data directory, ./pjai-data, is relative; the plugin starts elsewhere.
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    with DataDir(Path("pjai-data")).open() as manager:
        Personas(manager).create("Ada", activate=True)
    source = plugin(tmp_path, "hello", "return 'hi'", [])
    for command in (["install", str(source)], ["enable", "hello"]):
        assert runner.invoke(cli, ["plugin", *command]).exit_code == 0
    ran = runner.invoke(cli, ["plugin", "run", "hello", "--json"])
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.output)["result"] == "hi"


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (  # a second chroot to climb out of the first
            "import os\nos.chmod('/', 0o755)\nos.mkdir('/x')\nos.chroot('/x')\n"
            "for _ in range(64):\n    os.chdir('..')\nos.chroot('.')\n"
            "return open('/etc/hostname').read()",
            "PermissionError|Operation not permitted|Read-only",
        ),
        (
            "import os\nos.write(1, b'{')\nos.read(0, 1)",
            "ran longer than its 1 s",
        ),  # never ends its line
        (  # calls without reading the answers, until the pipe is full
            "import json, os\ncall = json.dumps({'call': 'log', 'args': {'text': 'x' * 999}})\n"
            "while True:\n    os.write(1, call.encode() + b'\\n')",
            "ran longer than its 1 s",
        ),
    ],
    ids=["chroot-escape", "unended-line", "unread-answers"],
)
def test_a_plugin_cannot_get_out_or_hang_the_run(
    setting: tuple[Registry, HybridDatabaseManager, str],
    tmp_path: Path,
    code: str,
    message: str,
) -> None:
    registry, manager, ada = setting
    name = installed(registry, plugin(tmp_path, "escaper", code, [], wall_s=1))
    started = time.monotonic()
    with pytest.raises(PluginError, match=message):
        run_plugin(registry, manager, name, ada)
    assert time.monotonic() - started < 10


def test_what_a_plugin_starts_ends_with_its_run(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path
) -> None:
    registry, manager, ada = setting
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    time.sleep(30)\n"
        "    os._exit(0)\n"
        "return os.getpid()"
    )
    name = installed(registry, plugin(tmp_path, "forker", code, []))
    assert run_plugin(registry, manager, name, ada).result == 2  # after its namespace's init
    assert hosts_end()  # the sleeper it started in a session of its own is gone


def test_a_read_of_memories_comes_in_pages_and_stops_at_its_size(
    setting: tuple[Registry, HybridDatabaseManager, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry, manager, ada = setting
    memories = Memories(manager)
    for i in range(39):  # with the tea: 40, more than two pages
        memories.add(ada, f"note {i:02d} " + "x" * 40, importance=i / 100)
    best_first = [m.id for m in memories.list(MemoryFilter(persona_id=ada), limit=40)]
    code = "return [m['id'] for m in api.memories(limit=500)]"
    name = installed(registry, plugin(tmp_path, "reader", code, ["memories:read"]))
    assert run_plugin(registry, manager, name, ada).result == best_first
    monkeypatch.setattr(app_plugins, "MAX_READ_BYTES", 500)  # the tea (15 bytes), ten of 48
    assert run_plugin(registry, manager, name, ada).result == best_first[:11]


FORK_BOMB = (
    "import os, time\n"
    "started = 0\n"
    "while started < 1000:\n"
    "    try:\n"
    "        child = os.fork()\n"
    "    except OSError:\n"
    "        break\n"
    "    if child == 0:\n"
    "        time.sleep(30)\n"
    "        os._exit(0)\n"
    "    started += 1\n"
    "return started"
)
"""A plugin that starts processes until it may not; returns how many it started."""


def test_a_plugin_starts_no_more_processes_than_its_limit(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path
) -> None:
    registry, manager, ada = setting
    name = installed(registry, plugin(tmp_path, "bomb", FORK_BOMB, [], processes=8))
    # Eight in its namespace: PJai's host and init, the plugin, and five it started.
    assert run_plugin(registry, manager, name, ada).result == 5
    assert hosts_end()


def test_a_plugin_that_undoes_its_death_signal_still_ends_with_its_run(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path
) -> None:
    registry, manager, ada = setting
    code = (
        "import ctypes, os, time\n"
        "ctypes.CDLL(None).prctl(1, 0, 0, 0, 0)  # no signal when the host dies\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    ctypes.CDLL(None).prctl(1, 0, 0, 0, 0)\n"
        "while True:\n"
        "    time.sleep(1)"
    )
    name = installed(registry, plugin(tmp_path, "orphan", code, [], wall_s=1))
    with pytest.raises(PluginError, match="ran longer than its 1 s"):
        run_plugin(registry, manager, name, ada)
    assert hosts_end()  # ended with its namespace, not left to run


def test_what_a_plugin_says_of_itself_is_not_taken_for_its_measurement_or_outcome(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path
) -> None:
    registry, manager, ada = setting
    liar = (
        "import sys\nx = bytearray(100 * 2**20)\nx[::4096] = b'x' * len(x[::4096])\n"
        "sys.modules['__main__']._send({'done': 'tiny', 'peak_kb': 1})\nsys.exit(0)"
    )
    name = installed(registry, plugin(tmp_path, "liar", liar, []))
    assert run_plugin(registry, manager, name, ada).max_rss_mb > 100  # the host measured it
    forger = (
        "import sys\napi.add_memory('written')\n"
        "sys.modules['__main__']._send({'refused': 'no network namespace here'})\nsys.exit(0)"
    )
    name = installed(registry, plugin(tmp_path, "forger", forger, ["memories:add"]))
    with pytest.raises(PluginError, match="refused after it ran"):
        run_plugin(registry, manager, name, ada)


def test_a_plugin_s_log_is_kept_up_to_its_limit(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path
) -> None:
    registry, manager, ada = setting
    code = "for n in range(1_500):\n    api.log(f'line {n}')\nreturn 'logged'"
    name = installed(registry, plugin(tmp_path, "chatty", code, []))
    done = run_plugin(registry, manager, name, ada)
    assert done.calls == {"log": 1_500}
    assert done.log[-2:] == ["line 999", "(more lines than 1000: not kept)"]


def test_a_missing_entry_function_is_named(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path
) -> None:
    registry, manager, ada = setting
    source = plugin(tmp_path, "misnamed", "return 1", [])
    (source / "main.py").write_text("def other(api, args):\n    return 1\n")
    name = installed(registry, source)
    with pytest.raises(PluginError, match=r"the entry function run is not defined in main\.py"):
        run_plugin(registry, manager, name, ada)


def test_a_memory_added_by_a_plugin_may_have_a_name(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path
) -> None:
    registry, manager, ada = setting
    code = "return api.add_memory('x', name='named')"
    name = installed(registry, plugin(tmp_path, "namer", code, ["memories:add"]))
    added = run_plugin(registry, manager, name, ada).result
    assert Memories(manager).get(added).name == "named"


def _run_result(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path, code: str, **limits: int
) -> Any:
    registry, manager, ada = setting
    name = installed(registry, plugin(tmp_path, "probe", code, [], **limits))
    return run_plugin(registry, manager, name, ada)


def test_the_root_is_read_only_even_to_the_plugin_that_owns_it(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path
) -> None:
    code = (
        "import os, socket\nsaid = []\n"
        "for attempt in (lambda: os.chmod('/', 0o755), lambda: open('/x', 'w'),\n"
        "                lambda: socket.socket(socket.AF_UNIX).bind('/s')):\n"
        "    try:\n        attempt()\n        said.append('done')\n"
        "    except OSError as exc:\n        said.append(exc.strerror)\n"
        "return said"
    )
    assert _run_result(setting, tmp_path, code).result == ["Read-only file system"] * 3


def test_sockets_outside_the_namespace_and_io_uring_are_refused(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path
) -> None:
    if os.uname().machine not in ("x86_64", "aarch64"):
        pytest.skip("the system call filter knows x86_64 and aarch64")
    code = (
        "import ctypes, os, socket\nsaid = []\n"
        "for family in (40, 16, 17, socket.AF_UNIX, socket.AF_INET):  # vsock, netlink, packet\n"
        "    try:\n        socket.socket(family, socket.SOCK_DGRAM).close()\n"
        "        said.append('opened')\n"
        "    except OSError as exc:\n        said.append(exc.errno)\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "params = ctypes.create_string_buffer(120)\n"
        "said.append(libc.syscall(425, 8, params) == -1 and ctypes.get_errno())  # io_uring\n"
        "return said"
    )
    refused, nosys = errno.EAFNOSUPPORT, errno.ENOSYS
    expected = [refused, refused, refused, "opened", "opened", nosys]
    assert _run_result(setting, tmp_path, code).result == expected


_KEYCTL = {"x86_64": 250, "aarch64": 219}
"""keyctl's system call number; its operation 0 gets a keyring's id (-3: the session's)."""


def test_shared_memory_and_keyrings_of_the_machine_are_out_of_reach(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path
) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    key = 0x5A5A0000 + os.getpid() % 0xFFFF
    code = (
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        f"made = libc.shmget({key}, 4096, 0o1600)  # IPC_CREAT, left behind\n"
        f"keyring = libc.syscall({_KEYCTL[os.uname().machine]}, 0, -3, 0)  # session keyring\n"
        "return [made >= 0, keyring]"
    )
    made, keyring = _run_result(setting, tmp_path, code).result
    assert not made  # its own IPC namespace has no segment to give (nor the machine's)
    assert libc.shmget(key, 0, 0) == -1
    ours = libc.syscall(_KEYCTL[os.uname().machine], 0, -3, 0)
    assert keyring != ours


def test_what_a_plugin_signals_does_not_reach_its_host(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path
) -> None:
    # Its process group holds itself alone: the kill ends the plugin, not its host, and
    # the sleeper in a session of its own ends with the run.
    code = (
        "import ctypes, os, signal, time\nctypes.CDLL(None).prctl(1, 0, 0, 0, 0)\n"
        "if os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\n"
        "time.sleep(0.2)\nos.kill(0, signal.SIGKILL)"
    )
    with pytest.raises(PluginError, match=r"stopped without an answer \(exit -9\)"):
        _run_result(setting, tmp_path, code)
    assert hosts_end()


def test_what_the_processes_a_plugin_started_used_is_counted(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path
) -> None:
    code = (
        "import os, time\n"
        "if os.fork() == 0:  # never waited for by the plugin\n"
        "    end = time.process_time() + 1.0\n"
        "    while time.process_time() < end:\n        pass\n"
        "    os._exit(0)\n"
        "time.sleep(2.5)\nreturn 'done'"
    )
    assert _run_result(setting, tmp_path, code, cpu_s=5).cpu_s >= 0.9


_BURN_IN_CHILDREN = (
    "import os, time\n"
    "for _ in range({n}):\n"
    "    pid = os.fork()\n"
    "    if pid == 0:  # a new process: the OS's CPU limit counts from 0 again\n"
    "        end = time.process_time() + 0.6\n"
    "        while time.process_time() < end:\n            pass\n"
    "        os._exit(0)\n"
    "    os.waitpid(pid, 0)\n"
    "return 'done'"
)


def test_processes_that_together_use_more_than_the_cpu_limit_are_stopped(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path
) -> None:
    # Each child stays under the OS's limit of 1 s; together they use 1.8 s.
    with pytest.raises(PluginError, match="used more than its 1 s of CPU"):
        _run_result(setting, tmp_path, _BURN_IN_CHILDREN.format(n=3), cpu_s=1, wall_s=30)


def test_a_plugin_forking_anew_without_end_is_stopped_at_its_cpu_limit(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path
) -> None:
    # Not at its wall time: the run counts what its processes used while it waits.
    with pytest.raises(PluginError, match="used more than its 1 s of CPU"):
        _run_result(setting, tmp_path, _BURN_IN_CHILDREN.format(n=10**6), cpu_s=1, wall_s=15)
    assert hosts_end()


def test_a_plugin_ends_with_the_process_that_runs_it(tmp_path: Path) -> None:
    where = ["--data-dir", str(tmp_path / "data")]
    with DataDir(tmp_path / "data").open() as manager:
        Personas(manager).create("Ada", activate=True)
    source = plugin(tmp_path, "sleeper", "import time\ntime.sleep(30)", [], wall_s=60)
    runner = CliRunner()
    for command in (["install", str(source)], ["enable", "sleeper"]):
        assert runner.invoke(cli, ["plugin", *command, *where]).exit_code == 0
    run = subprocess.Popen([sys.executable, "-m", "pjai", "plugin", "run", "sleeper", *where])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and hosts_end(0.1):
        time.sleep(0.1)  # until its host runs
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert hosts_end()


def test_install_takes_the_manifest_and_the_entry_file_only(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path
) -> None:
    registry, _, _ = setting
    source = plugin(tmp_path, "tidy", "return 1", [])
    (source / "notes.txt").write_text("not read by a run")
    (source / "zeros").symlink_to("/dev/zero")
    (source / "loop").symlink_to(".")
    made = registry.install(source)
    assert sorted(p.name for p in made.directory.iterdir()) == ["main.py", "plugin.json"]
    linked = plugin(tmp_path, "linked", "return 1", [])
    (linked / "main.py").unlink()
    (linked / "main.py").symlink_to(source / "main.py")
    with pytest.raises(ConfigError, match=r"main\.py is not a file of the plugin"):
        registry.install(linked)


def test_a_damaged_copy_is_named_and_can_be_removed(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path
) -> None:
    registry, _, _ = setting
    installed(registry, plugin(tmp_path, "good", "return 1", []))
    installed(registry, plugin(tmp_path, "bad", "return 1", []))
    (registry.path / "bad" / "plugin.json").write_text("{")
    assert [p.manifest.name for p in registry.list()] == ["good"]
    with pytest.raises(ConfigError, match="is not JSON"):
        registry.get("bad")
    registry.remove("bad")
    assert not (registry.path / "bad").exists()
    assert registry.get("good").enabled


def test_plugins_switched_at_once_keep_every_switch(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path
) -> None:
    registry, _, _ = setting
    names = [f"p{i}" for i in range(6)]
    for name in names:
        registry.install(plugin(tmp_path, name, "return 1", []))

    def flip(name: str) -> None:
        for _ in range(20):
            Registry(registry.path.parent).enable(name)

    threads = [threading.Thread(target=flip, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(p.enabled for p in registry.list())
    assert len(registry.list()) == len(names)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        # Nested past Python's stack: a protocol error, not a crash of PJai.
        (
            "import sys\nsys.modules['__main__']._out.write('[' * 100000 + '\\n')\n"
            "sys.modules['__main__']._out.flush()\nimport time\ntime.sleep(5)",
            "broke the protocol",
        ),
    ],
)
def test_a_line_nested_too_deep_breaks_the_protocol(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path, code: str, expected: str
) -> None:
    with pytest.raises(PluginError, match=expected):
        _run_result(setting, tmp_path, code)


def test_call_names_and_log_lines_are_kept_short(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path
) -> None:
    code = (
        "for i in range(50):\n"
        "    try:\n        api._call('x' * 100000 + str(i))\n    except PermissionError:\n"
        "        pass\n"
        "api.log('first\\nplugin x: a line like PJai\\'s')\nreturn 1"
    )
    done = _run_result(setting, tmp_path, code)
    assert done.calls == {"(unknown calls)": 50, "log": 1}
    assert done.log == ["first plugin x: a line like PJai's"]


def test_a_name_with_a_last_newline_is_not_a_plugin_name(tmp_path: Path) -> None:
    source = plugin(tmp_path, "nl", "return 1", [])
    manifest = json.loads((source / "plugin.json").read_text())
    (source / "plugin.json").write_text(json.dumps({**manifest, "name": "nl\n"}))
    with pytest.raises(ConfigError, match=r"plugin\.json"):
        Registry(tmp_path / "data").install(source)


def test_the_namespace_s_init_is_out_of_the_plugin_s_reach(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path
) -> None:
    code = (
        "import os, signal, time\n"
        "for number in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL, signal.SIGSTOP):\n"
        "    os.kill(1, number)\n"
        "time.sleep(0.3)\nreturn 'ok'"
    )
    done = _run_result(setting, tmp_path, code)
    assert done.result == "ok"
    assert done.max_rss_mb > 0  # init measured it


def test_an_exit_code_is_not_taken_for_a_signal(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path
) -> None:
    # 152 is 128 + SIGXCPU: read as a signal, near the CPU limit (within 0.5 s of it) it
    # would say "used more". 0.6 s leaves the start of the process room below the limit
    # on a busy machine, where it takes more CPU.
    code = "import os, time\nend = time.process_time() + 0.6\n"
    code += "while time.process_time() < end:\n    pass\nos._exit(152)"
    with pytest.raises(PluginError, match=r"stopped without an answer \(exit 152\)"):
        _run_result(setting, tmp_path, code, cpu_s=1)


def test_one_plugin_installed_at_once_twice_is_installed_once(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path
) -> None:
    registry, _, _ = setting
    source = plugin(tmp_path, "twice", "return 1", [])
    said: list[str] = []

    def install() -> None:
        try:
            Registry(registry.path.parent).install(source)
            said.append("installed")
        except ConfigError as exc:
            said.append(str(exc))

    threads = [threading.Thread(target=install) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(said)[-1] == "installed"
    assert said.count("installed") == 1
    assert all("is installed already" in s for s in said if s != "installed")


def test_a_plugin_that_goes_on_after_its_answer_is_stopped_and_not_measured_as_idle(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path
) -> None:
    code = "import sys, time\nsys.modules['__main__']._send({'done': 'small'})\ntime.sleep(60)"
    with pytest.raises(PluginError, match="went on after its answer and was stopped"):
        _run_result(setting, tmp_path, code)
    assert hosts_end()


def test_text_that_is_not_valid_unicode_is_not_a_crash(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path
) -> None:
    logged = _run_result(setting, tmp_path, "api.log('a\\ud800b')\nreturn 1")
    assert logged.log == ["a?b"]
    registry, manager, ada = setting
    answer = installed(registry, plugin(tmp_path, "answer", "return ['x\\ud800']", []))
    with pytest.raises(PluginError, match="an answer that is not valid Unicode"):
        run_plugin(registry, manager, answer, ada)


def test_a_user_who_is_not_root_runs_plugins(tmp_path: Path) -> None:
    # The sandbox is made by whoever runs PJai: as root (CI) nothing shows what a user
    # may not do, so the run is made again as nobody.
    if os.getuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run as another user")
    # An interpreter another user may run (the virtual environment's may lie under
    # /root), of this one's version, given this environment's packages.
    python = shutil.which("python3", path="/usr/bin:/usr/local/bin")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    if python is None or not os.access(python, os.X_OK):
        pytest.skip("no system python3 for another user")
    found = subprocess.run(
        [python, "-c", "import sys; print(f'{sys.version_info.major}.{sys.version_info.minor}')"],
        capture_output=True,
        text=True,
    )
    if found.stdout.strip() != version:
        pytest.skip(f"the system python3 is not {version}, this environment's")
    paths = [str(Path(pjai.__file__).parents[1]), *site.getsitepackages()]
    main = "def run(api, args):\n" + textwrap.indent(FORK_BOMB, "    ") + "\n"
    script = f"MAIN = {main!r}\n" + textwrap.dedent(
        """
        import json, tempfile
        from pathlib import Path
        import msgspec
        from pjai.plugins.manifest import Manifest
        from pjai.plugins.sandbox import run_sandboxed
        source = Path(tempfile.mkdtemp())
        manifest = {
            "name": "p", "version": "1", "entry": "main.py:run", "capabilities": [],
            "limits": {"processes": 8},
        }
        (source / "plugin.json").write_text(json.dumps(manifest))
        (source / "main.py").write_text(MAIN)
        loaded = msgspec.json.decode((source / "plugin.json").read_bytes(), type=Manifest)
        print(run_sandboxed(source, loaded, {}, lambda call, args: None).result)
        """
    )
    nobody = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
    ran = subprocess.run(
        [*nobody, python, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
        env={"PATH": "/usr/bin:/bin", "TMPDIR": "/tmp", "PYTHONPATH": os.pathsep.join(paths)},
    )
    # It ran, and its process limit held for a user the kernel does not exempt either.
    assert (ran.returncode, ran.stdout.strip()) == (0, "5"), ran.stderr


def _as_root_with_setpriv() -> None:
    if os.getuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv: run as root, the plugin goes on as nobody")


def test_run_as_root_a_plugin_runs_where_the_temporary_directory_is_closed(
    setting: tuple[Registry, HybridDatabaseManager, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _as_root_with_setpriv()
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    monkeypatch.setattr(tempfile, "tempdir", str(closed))  # TMPDIR=/root/tmp, say
    assert _run_result(setting, tmp_path, "return 7").result == 7


def test_run_as_root_other_processes_of_nobody_cannot_trace_the_plugin(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path
) -> None:
    _as_root_with_setpriv()
    registry, manager, ada = setting
    name = installed(
        registry, plugin(tmp_path, "sleeper", "import time\ntime.sleep(3)", [], wall_s=10)
    )
    running = threading.Thread(target=run_plugin, args=(registry, manager, name, ada))
    running.start()
    try:
        pids: list[str] = []
        deadline = time.monotonic() + 10
        while len(pids) < 3 and time.monotonic() < deadline:  # the host, its init, the plugin
            found = subprocess.run(["pgrep", "-f", "pjai/plugins/host.py"], capture_output=True)
            pids = found.stdout.decode().split()
            time.sleep(0.05)
        assert len(pids) == 3
        attach = (
            "import ctypes, sys\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "for pid in sys.argv[1:]:\n"
            "    attached = libc.ptrace(16, int(pid), None, None) == 0  # PTRACE_ATTACH\n"
            "    print('attached' if attached else ctypes.get_errno())\n"
        )
        nobody = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
        python = shutil.which("python3", path="/usr/bin:/usr/local/bin") or sys.executable
        tried = subprocess.run(
            [*nobody, python, "-c", attach, *pids], capture_output=True, text=True, timeout=30
        )
        assert tried.stdout.split() == [str(errno.EPERM)] * 3, tried.stderr
    finally:
        running.join()


def test_a_plugin_cannot_make_a_user_namespace_to_gain_capabilities_back(
    setting: tuple[Registry, HybridDatabaseManager, str], tmp_path: Path
) -> None:
    # In one of its own it would be root again: it could mount, and chroot out.
    code = (
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "return [libc.unshare(0x10000000), ctypes.get_errno()]"
    )
    assert _run_result(setting, tmp_path, code).result == [-1, errno.EPERM]


@pytest.mark.parametrize(("said", "instead"), [("wall", "ran longer"), ("cpu", "of CPU")])
def test_a_plugin_cannot_claim_it_was_stopped_at_a_limit(
    setting: tuple[Registry, HybridDatabaseManager, str],
    tmp_path: Path,
    said: str,
    instead: str,
) -> None:
    code = f"import os\nos.write(1, b'{{\"{said}\": true}}\\n')\nimport time\ntime.sleep(1)"
    with pytest.raises(PluginError) as raised:
        _run_result(setting, tmp_path, code)
    assert instead not in str(raised.value)
    assert "stopped without an answer" in str(raised.value)
