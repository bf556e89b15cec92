"""What a plugin's processes use of the CPU is counted, however they end: none can be
reaped by the kernel unseen (an ignored SIGCHLD), which would leave its CPU out of every
count, so that a plugin could use the machine's cores for its whole wall time."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pjai.app import DataDir, Memories, Personas
from pjai.app.plugins import run_plugin
from pjai.cli import app as cli
from pjai.hybrid import HybridDatabaseManager
from pjai.plugins import PluginError, Registry
from pjai.schema.selection import MemoryFilter
from tests.plugins.test_sandbox import installed, plugin

Setting = tuple[Registry, HybridDatabaseManager, str]

BURN_UNWAITED = """
import ctypes, os, signal, time
said = []
try:
    {ignore}
except OSError as refused:
    said.append(str(refused))
for _ in range(10):  # 3 s of CPU in all, each child under the OS's limit of 1 s
    pid = os.fork()
    if pid == 0:
        end = time.process_time() + 0.3
        while time.process_time() < end:
            pass
        os._exit(0)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:  # reaped by the kernel as it ended
        pass
return said
"""

IGNORE = "signal.signal(signal.SIGCHLD, signal.SIG_IGN)"
NO_WAIT = (  # sigaction(SIGCHLD, {SIG_DFL, flags: SA_NOCLDWAIT}): children reaped unseen
    "act = ctypes.create_string_buffer(256)\n"
    "    ctypes.c_int.from_buffer(act, 136).value = 2\n"
    "    if ctypes.CDLL(None, use_errno=True).sigaction(signal.SIGCHLD, act, None) != 0:\n"
    "        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))"
)


@pytest.mark.parametrize("ignore", [IGNORE, NO_WAIT], ids=["sig-ign", "sa-nocldwait"])
def test_children_the_kernel_would_reap_unseen_still_count(
    setting: Setting, tmp_path: Path, ignore: str
) -> None:
    registry, manager, ada = setting
    code = BURN_UNWAITED.format(ignore=ignore)
    name = installed(registry, plugin(tmp_path, "unseen", code, [], cpu_s=1, wall_s=60))
    with pytest.raises(PluginError, match="used more than its 1 s of CPU"):
        run_plugin(registry, manager, name, ada)


def test_a_sigchld_ignored_where_pjai_runs_is_not_the_plugin_s(tmp_path: Path) -> None:
    # PJai started by a process that ignores SIGCHLD, which is inherited: the plugin's
    # children would be reaped unseen, without the plugin asking for it.
    where = ["--data-dir", str(tmp_path / "data")]
    with DataDir(tmp_path / "data").open() as manager:
        Personas(manager).create("Ada", activate=True)
    code = BURN_UNWAITED.format(ignore="pass")
    source = plugin(tmp_path, "inherits", code, [], cpu_s=1, wall_s=60)
    runner = CliRunner()
    for command in (["install", str(source)], ["enable", "inherits"]):
        assert runner.invoke(cli, ["plugin", *command, *where]).exit_code == 0
    run = subprocess.run(
        [sys.executable, "-m", "pjai", "plugin", "run", "inherits", *where],
        capture_output=True,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGCHLD, signal.SIG_IGN),
    )
    assert run.returncode != 0, run.stdout
    assert "used more than its 1 s of CPU" in run.stderr + run.stdout


BUSY_CALLER = """
import os, time
done, told = os.pipe()
if os.fork() == 0:  # burns CPU in new processes without end, each under the OS's limit
    while True:
        pid = os.fork()
        if pid == 0:
            end = time.process_time() + 0.3
            while time.process_time() < end:
                pass
            os._exit(0)
        os.waitpid(pid, 0)
        os.write(told, b"x")  # one more 0.3 s of CPU used
os.set_blocking(done, False)
bursts = 0
while True:  # calls often enough that the run never waits on it for long
    try:
        bursts += len(os.read(done, 4096))
    except BlockingIOError:
        pass
    api.add_memory("bursts %d" % bursts)  # what a stopped run added stays
    time.sleep(0.05)
"""


def test_a_plugin_that_calls_without_pause_is_still_watched(
    setting: Setting, tmp_path: Path
) -> None:
    # Its calls keep the run from ever waiting 0.1 s on the pipe: its CPU is added up
    # all the same, and it is stopped near its 1 s (0.3 s a burst), not at its wall time.
    registry, manager, ada = setting
    code = BUSY_CALLER
    name = installed(registry, plugin(tmp_path, "busy", code, ["memories:add"], cpu_s=1, wall_s=20))
    with pytest.raises(PluginError, match="used more than its 1 s of CPU"):
        run_plugin(registry, manager, name, ada)
    said = [m.content for m in Memories(manager).list(MemoryFilter(persona_id=ada), limit=1000)]
    bursts = max(int(text.split()[1]) for text in said if text.startswith("bursts "))
    assert bursts < 10, bursts
