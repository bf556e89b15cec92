"""`pjai sync connect|status|conflicts` against a real `pjai sync-server serve` process."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import create_engine
from typer.testing import CliRunner

from pjai.cli import app
from pjai.cli.sync import sync_url
from pjai.errors import ConfigError
from pjai.schema.types import new_id
from pjai.sync.server.sqllog import SqlLog
from tests.sync.records import records

runner = CliRunner()


def pjai(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """A sync server process without tokens; yields its base URL."""
    with serving(tmp_path / "server") as url:
        yield url


@contextlib.contextmanager
def serving(data_dir: Path, *, tokens: bool = False) -> Iterator[str]:
    """A sync server process on ``data_dir``, without tokens unless ``tokens``; yields
    its base URL."""
    command = [sys.executable, "-m", "pjai", "sync-server", "serve", "--port", "0"]
    process = subprocess.Popen(
        [*command, *([] if tokens else ["--no-auth"]), "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.search(r"listening on (http://\S+) ", line)
    try:
        assert found is not None, line + process.stdout.read()
        yield found[1]
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


def test_urls_are_normalised() -> None:
    assert sync_url("http://h:8765") == "ws://h:8765/sync"
    assert sync_url("https://h/") == "wss://h/sync"
    assert sync_url("ws://h:1/custom") == "ws://h:1/custom"
    with pytest.raises(ConfigError, match="'ftp://h' is not a sync server URL"):
        sync_url("ftp://h")


def test_two_directories_sync_and_report(server: str, tmp_path: Path) -> None:
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    pjai("sync", "connect", server, "--once", "--timeout", "20", "--data-dir", a)
    created = json.loads(pjai("persona", "create", "Alice", "--json", "--data-dir", a))
    assert created["name"] == "Alice"  # read back before the server confirmed it

    status = json.loads(pjai("sync", "status", "--json", "--data-dir", a))
    assert status["pending"] == 1
    assert status["state"] == "not running"
    assert status["in_step"] is False
    assert status["url"] == sync_url(server)

    pjai("sync", "connect", server, "--once", "--timeout", "20", "--data-dir", a)
    ended = pjai("sync", "connect", server, "--once", "--timeout", "20", "--json", "--data-dir", b)
    done = json.loads(ended)  # one line of JSON on standard output, progress elsewhere
    assert (done["store_id"], done["level"], done["state"]) == ("default", True, "stopped")
    assert (done["confirmed_head"], done["pending"], done["lag"]) == (1, 0, 0)
    other = runner.invoke(app, ["sync", "connect", server, "--store-id", "x", "--data-dir", b])
    assert other.exit_code == 1
    assert "syncs with store id 'default', not 'x'" in other.output
    listed = json.loads(pjai("persona", "list", "--json", "--data-dir", b))
    assert [p["name"] for p in listed] == ["Alice"]
    for directory in (a, b):
        status = json.loads(pjai("sync", "status", "--json", "--data-dir", directory))
        assert (status["confirmed_head"], status["server_head"]) == (1, 1)
        assert (status["pending"], status["lag"], status["last_error"]) == (0, 0, None)

    # Offline on both sides: a deletes the persona, b renames it; b's rename loses.
    pid = created["id"]
    pjai("persona", "delete", pid, "--data-dir", a)
    pjai("persona", "update", pid, "--name", "Alicia", "--data-dir", b)
    pjai("sync", "connect", server, "--once", "--timeout", "20", "--data-dir", a)
    pjai("sync", "connect", server, "--once", "--timeout", "20", "--data-dir", b)
    (conflict,) = json.loads(pjai("sync", "conflicts", "--json", "--data-dir", b))
    assert conflict["name"] == "v1.PersonaUpdated"
    assert "v1.PersonaDeleted" in conflict["reason"]
    assert "won" in conflict["reason"]
    assert "v1.PersonaUpdated" in pjai("sync", "conflicts", "--data-dir", b)
    assert json.loads(pjai("sync", "conflicts", "--json", "--data-dir", a)) == []


def test_bad_input_is_named(tmp_path: Path) -> None:
    result = runner.invoke(app, ["sync", "connect", "nowhere", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "'nowhere' is not a sync server URL" in result.output
    result = runner.invoke(app, ["sync", "connect", "http://h:1", "--store-id", ""])
    assert result.exit_code == 2
    assert "store id cannot be empty" in result.output
    result = runner.invoke(app, ["sync", "status", "--data-dir", str(tmp_path / "new")])
    assert result.exit_code == 1
    assert "has no store yet" in result.output
    # No server there: --once gives up after the timeout and says why; the directory it
    # would have made a synced one is not left behind.
    nowhere = ["sync", "connect", "http://127.0.0.1:9", "--once", "--timeout", "1"]
    result = runner.invoke(app, [*nowhere, "--data-dir", str(tmp_path / "c")])
    assert result.exit_code == 1
    assert "sync offline" in result.output
    assert not (tmp_path / "c").exists()


def test_an_event_this_pjai_cannot_apply_is_reported_and_acknowledged(tmp_path: Path) -> None:
    # An older server accepted a count past 64 bits; every client must sync past it.
    history = records(2)
    args = b'{"memory_id":"p1-m0","persona_id":"p1","count":100000000000000000000}'
    poison = msgspec.structs.replace(
        history[-1],
        id=new_id(),
        name="v1.MemoryAccessed",
        args=msgspec.Raw(args),
        position=history[-1].position.next(0),
        parent=history[-1].position,
    )
    (tmp_path / "server").mkdir()
    engine = create_engine(f"sqlite:///{tmp_path / 'server' / 'sync-server.db'}")
    SqlLog(engine).append("default", [*history, poison])
    engine.dispose()
    a = str(tmp_path / "a")
    with serving(tmp_path / "server") as url:
        done = runner.invoke(
            app, ["sync", "connect", url, "--once", "--timeout", "20", "--data-dir", a]
        )
    assert done.exit_code == 0, done.output
    assert "Traceback" not in done.output
    status = json.loads(pjai("sync", "status", "--json", "--data-dir", a))
    assert (status["confirmed_head"], status["quarantined"], status["last_error"]) == (3, 1, None)
    health = json.loads(pjai("doctor", "--json", "--data-dir", a))
    assert health["status"] == "degraded"
    (listed,) = health["quarantine"]["events"]
    assert (listed["event_id"], listed["sides"]) == (poison.id, ["store", "sql"])
    assert "field 'count'" in listed["reason"]
    shown = pjai("doctor", "--data-dir", a)
    assert poison.id in shown
    assert "pjai repair --ack-quarantine" in shown
    assert "Acknowledged quarantined events through e3" in pjai(
        "repair", "--ack-quarantine", "--data-dir", a
    )
    health = json.loads(pjai("doctor", "--json", "--data-dir", a))
    assert (health["status"], health["quarantine"]["events"]) == ("ok", [])
    assert health["store"]["quarantined"] == 1  # the record stays
    status = json.loads(pjai("sync", "status", "--json", "--data-dir", a))
    assert status["quarantined"] == 1


def test_a_time_no_backend_can_store_is_refused_by_the_cli(tmp_path: Path) -> None:
    data = str(tmp_path / "d")
    pjai("persona", "create", "Ada", "--id", "ada", "--data-dir", data)
    added = runner.invoke(
        app,
        [
            "memory",
            "add",
            "ada",
            "x",
            "--occurred-at",
            "9999-12-31T23:59:59-14:00",
            "--data-dir",
            data,
        ],
    )
    assert added.exit_code != 0
    assert "--occurred-at" in added.output
    assert "9999-12-30" in added.output
    assert "Traceback" not in added.output
    assert json.loads(pjai("memory", "list", "ada", "--json", "--data-dir", data)) == []


Status = dict[str, Any]


def _settled(data_dir: str, check: Callable[[Status], bool], seconds: float) -> Status:
    """``pjai sync status --json`` once ``check`` holds for it, within ``seconds`` (the
    directory may have no store yet at first)."""
    deadline = time.monotonic() + seconds
    while True:
        result = runner.invoke(app, ["sync", "status", "--json", "--data-dir", data_dir])
        status: Status = json.loads(result.stdout) if result.exit_code == 0 else {}
        if status and check(status):
            return status
        assert time.monotonic() < deadline, f"sync status never settled: {result.output}"
        time.sleep(0.05)  # the client writes its status file as it changes


def test_a_running_client_pushes_what_other_processes_commit(server: str, tmp_path: Path) -> None:
    """A `pjai sync connect` process pushes commits another process makes meanwhile."""
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    client = subprocess.Popen(
        [sys.executable, "-m", "pjai", "sync", "connect", server, "--data-dir", a],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _settled(a, lambda s: s["state"] == "online", 30)
        assert _settled(a, lambda s: True, 1)["in_step"] is True
        # This test's process is not the client's: it commits to the same store file.
        created = json.loads(pjai("persona", "create", "Alice", "--json", "--data-dir", a))
        pjai("memory", "add", created["id"], "Likes tea", "--data-dir", a)
        status = _settled(a, lambda s: s["pending"] == 0 and s["confirmed_head"] == 2, 30)
        assert (status["state"], status["lag"], status["in_step"]) == ("online", 0, True)
    finally:
        client.terminate()
        _, errors = client.communicate(timeout=20)
    assert client.returncode == 0, errors
    pjai("sync", "connect", server, "--once", "--timeout", "20", "--data-dir", b)
    listed = json.loads(pjai("persona", "list", "--json", "--data-dir", b))
    assert [p["name"] for p in listed] == ["Alice"]


def test_a_live_connection_with_pending_events_is_not_in_step(tmp_path: Path) -> None:
    """Online, lag 0, but a read-only token cannot push: the status must not call the
    directory in step while its events wait."""
    data, server_dir = str(tmp_path / "a"), tmp_path / "server"
    made = ["sync-server", "token", "create", "--store", "default", "--role", "read", "--json"]
    secret = json.loads(pjai(*made, "--data-dir", str(server_dir)))["secret"]
    with serving(server_dir, tokens=True) as url:
        client = subprocess.Popen(
            [sys.executable, "-m", "pjai", "sync", "connect", url, "--token", secret,
             "--data-dir", data],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            _settled(data, lambda s: s["state"] == "online", 30)
            pjai("persona", "create", "Alice", "--data-dir", data)
            status = _settled(data, lambda s: s["pending"] == 1 and s["state"] == "online", 30)
            time.sleep(0.5)  # what a read-only client does with it: nothing
            status = _settled(data, lambda s: True, 1)
            assert (status["state"], status["lag"], status["pending"]) == ("online", 0, 1)
            assert status["in_step"] is False
        finally:
            client.terminate()
            client.communicate(timeout=20)


def test_a_failed_first_connect_leaves_the_directory_as_it_was(tmp_path: Path) -> None:
    new, used = tmp_path / "new", tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    with serving(tmp_path / "server", tokens=True) as url:
        for directory in (new, used):
            command = ["sync", "connect", url, "--once", "--timeout", "20"]
            refused = runner.invoke(app, [*command, "--data-dir", str(directory)])
            assert refused.exit_code == 1
            said = " ".join(refused.output.split())
            assert said.count("no token was given") == 1, said  # said once, not per attempt
    assert not new.exists()
    assert [p.name for p in used.iterdir()] == ["notes.txt"]


def test_memory_list_shows_what_waits_for_the_server(tmp_path: Path) -> None:
    """Pending memories are listed, as show and search find them, and marked pending."""
    data = str(tmp_path / "a")
    pjai("flags", "set", "sync", "true", "--data-dir", data)  # synced, never connected
    persona = json.loads(pjai("persona", "create", "Ada", "--json", "--data-dir", data))["id"]
    added = json.loads(pjai("memory", "add", persona, "Likes tea", "--json", "--data-dir", data))
    (listed,) = json.loads(pjai("memory", "list", persona, "--json", "--data-dir", data))
    assert (listed["id"], listed["pending"]) == (added["id"], True)
    (ada,) = json.loads(pjai("persona", "list", "--json", "--data-dir", data))
    assert ada["id"] == persona
    assert "(pending)" in pjai("memory", "list", persona, "--data-dir", data)
    assert json.loads(pjai("memory", "show", added["id"], "--json", "--data-dir", data))["pending"]
    assert "· warm (pending)" in pjai("memory", "show", added["id"], "--data-dir", data)
    found = pjai("memory", "search", "tea", "--persona", persona, "--json", "--data-dir", data)
    (hit,) = json.loads(found)
    assert (hit["memory_id"], hit["pending"]) == (added["id"], True)


def test_a_store_moves_to_a_new_server_through_export_and_import(tmp_path: Path) -> None:
    """The way docs/sync-protocol.md gives for a reset server: export the old store,
    import it into a new synced directory, connect that to the new server."""
    old, moved, other = (str(tmp_path / name) for name in ("old", "moved", "other"))
    archive = str(tmp_path / "old.zip")
    with serving(tmp_path / "server-1") as first:
        pjai("sync", "connect", first, "--once", "--timeout", "20", "--data-dir", old)
        pjai("persona", "create", "Ada", "--data-dir", old)
        pjai("sync", "connect", first, "--once", "--timeout", "20", "--data-dir", old)
    pjai("export", archive, "--data-dir", old)
    with serving(tmp_path / "server-2") as second:
        pjai("import", archive, "--sync", "--data-dir", moved)
        assert json.loads(pjai("sync", "status", "--json", "--data-dir", moved))["pending"] == 1
        pjai("sync", "connect", second, "--once", "--timeout", "20", "--data-dir", moved)
        pjai("sync", "connect", second, "--once", "--timeout", "20", "--data-dir", other)
    listed = json.loads(pjai("persona", "list", "--json", "--data-dir", other))
    assert [p["name"] for p in listed] == ["Ada"]


def test_a_standalone_directory_syncs_the_way_the_readme_says(server: str, tmp_path: Path) -> None:
    """`make run`'s directory is standalone: `sync connect` says how to sync what it
    holds, and the README's three commands do it."""
    data, synced, other = (str(tmp_path / name) for name in ("pjai-data", "synced", "other"))
    archive = str(tmp_path / "pjai-data.zip")
    pjai("persona", "create", "Ada", "--data-dir", data)
    refused = runner.invoke(app, ["sync", "connect", server, "--once", "--data-dir", data])
    assert refused.exit_code == 1
    assert "`pjai import FILE --data-dir NEW --sync`" in " ".join(refused.output.split())
    pjai("export", archive, "--data-dir", data)
    pjai("import", archive, "--data-dir", synced, "--sync")
    pjai("sync", "connect", server, "--once", "--timeout", "20", "--data-dir", synced)
    pjai("sync", "connect", server, "--once", "--timeout", "20", "--data-dir", other)
    listed = json.loads(pjai("persona", "list", "--json", "--data-dir", other))
    assert [p["name"] for p in listed] == ["Ada"]


def test_running_clients_see_who_else_is_on_the_store(server: str, tmp_path: Path) -> None:
    """`pjai sync connect --name` announces the instance; `pjai sync status` lists the
    others on the store, and forgets them once they leave; `--hidden` takes no part."""
    a, b, c = (str(tmp_path / n) for n in "abc")
    clients = [
        subprocess.Popen(
            [sys.executable, "-m", "pjai", "sync", "connect", server, *extra, "--data-dir", d],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for d, extra in ((a, ["--name", "laptop"]), (b, ["--name", "desk"]), (c, ["--hidden"]))
    ]
    try:
        seen = _settled(a, lambda s: [p["name"] for p in s["peers"]] == ["desk"], 30)
        assert seen["peers"][0]["state"] == "online"
        _settled(b, lambda s: [p["name"] for p in s["peers"]] == ["laptop"], 30)
        # A hidden instance neither appears nor hears who is there.
        assert _settled(c, lambda s: s["state"] == "online", 30)["peers"] == []
        clients[1].terminate()
        clients[1].wait(20)
        _settled(a, lambda s: s["peers"] == [], 30)
    finally:
        for client in clients:
            client.terminate()
            client.wait(20)


def test_the_server_says_where_it_listens_as_json(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "pjai", "sync-server", "serve", "--port", "0", "--no-auth"]
    process = subprocess.Popen(
        [*command, "--json", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    try:
        said = json.loads(process.stdout.readline())
        assert said["url"].startswith("http://127.0.0.1:")
        assert set(said) == {"url", "backend_id", "storage"}
        pjai(
            "sync",
            "connect",
            said["url"],
            "--once",
            "--timeout",
            "20",
            "--data-dir",
            str(tmp_path / "a"),
        )
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()
