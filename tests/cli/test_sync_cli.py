"""`pjai sync connect|status|conflicts` against a real `pjai sync-server serve` process."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pjai.cli import app
from pjai.cli.sync import sync_url
from pjai.errors import ConfigError

runner = CliRunner()


def pjai(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """A sync server process without tokens; yields its base URL."""
    command = [sys.executable, "-m", "pjai", "sync-server", "serve", "--port", "0"]
    process = subprocess.Popen(
        [*command, "--no-auth", "--data-dir", str(tmp_path / "server")],
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
    assert status["url"] == sync_url(server)

    pjai("sync", "connect", server, "--once", "--timeout", "20", "--data-dir", a)
    pjai("sync", "connect", server, "--once", "--timeout", "20", "--data-dir", b)
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
    result = runner.invoke(app, ["sync", "status", "--data-dir", str(tmp_path / "new")])
    assert result.exit_code == 1
    assert "has no store yet" in result.output
    # No server there: --once gives up after the timeout and says so.
    nowhere = ["sync", "connect", "http://127.0.0.1:9", "--once", "--timeout", "1"]
    result = runner.invoke(app, [*nowhere, "--data-dir", str(tmp_path / "c")])
    assert result.exit_code == 1
    status = json.loads(pjai("sync", "status", "--json", "--data-dir", str(tmp_path / "c")))
    assert status["last_error"]
