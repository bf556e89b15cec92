"""Commands that write a data directory's files without opening its manager (the flags,
the key ring, the web app's passphrase and sessions, a first sync, the sync server's
database): while an import
goes into the directory they are refused at once, and the import, failing, takes back
only what it made."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pjai.app import DataDir, set_flag
from pjai.cli import app
from pjai.errors import ConfigError
from pjai.hybrid.archive import export_archive, import_archive, restore
from pjai.sync.server import SyncServer
from tests.helpers import WAIT_S, persona

runner = CliRunner()


def in_use(target: Path) -> str:
    """What refuses a command writing ``target`` while an import goes into it."""
    return f"an import or backup into {re.escape(str(target))} is running"


class ImportFails(Exception):
    """What the held import raises once it goes on."""


@dataclass(frozen=True)
class HeldImport:
    """An import into the new directory ``target``, held on a thread of its own once it
    has found the directory empty (inside its lock); :meth:`fail` lets it go on, to
    fail and take back what it made."""

    target: Path
    worker: threading.Thread
    go: threading.Event
    outcome: dict[str, BaseException]

    def fail(self) -> None:
        self.go.set()
        self.worker.join(WAIT_S)
        assert not self.worker.is_alive()


@pytest.fixture
def held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldImport]:
    with DataDir(tmp_path / "source", environ={}).open() as manager:
        manager.commit(persona("p1"))
        export_archive(manager, tmp_path / "backup.zip")
    target = tmp_path / "restored"
    inside, go = threading.Event(), threading.Event()
    outcome: dict[str, BaseException] = {}
    found_empty = restore.Made.before

    def holding(*args: Any, **kwargs: Any) -> Any:
        made = found_empty(*args, **kwargs)
        inside.set()
        assert go.wait(WAIT_S)
        return made

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise ImportFails("the import fails")

    monkeypatch.setattr(restore.Made, "before", holding)
    monkeypatch.setattr(restore, "_restore", failing)

    def run() -> None:
        try:
            import_archive(target, tmp_path / "backup.zip", environ={})
        except ImportFails as exc:
            outcome["error"] = exc

    held = HeldImport(target, threading.Thread(target=run), go, outcome)
    held.worker.start()
    try:
        assert inside.wait(WAIT_S)
        yield held
    finally:
        held.fail()
    assert "error" in outcome, "the import did not fail as it was made to"
    assert not target.exists()  # taken back whole: nothing of the command is left


@pytest.mark.parametrize(
    ("command", "given"),
    [
        (["flags", "set", "use_livestore", "false"], None),
        (["security", "init"], "correct horse battery\n"),
        (["web", "passphrase"], "twelve chars or more\n"),
        (["web", "token", "create", "--name", "ada"], None),
        (["sync", "connect", "http://127.0.0.1:9", "--once", "--timeout", "0"], None),
    ],
    ids=["flags", "security", "passphrase", "web-token", "sync"],
)
def test_a_command_writing_the_directory_is_refused_while_an_import_goes_into_it(
    held: HeldImport, command: list[str], given: str | None
) -> None:
    result = runner.invoke(app, [*command, "--data-dir", str(held.target)], input=given)
    assert result.exit_code == 1, result.output
    assert re.search(in_use(held.target), " ".join(result.output.split())), result.output
    assert list(held.target.iterdir()) == []  # as the import found it
    held.fail()


@pytest.mark.parametrize(
    "command",
    [
        ["sync-server", "token", "create", "--store", "team", "--role", "write"],
        ["sync-server", "serve", "--port", "0"],
    ],
    ids=["token", "serve"],
)
def test_the_sync_server_is_refused_its_database_in_a_directory_an_import_holds(
    held: HeldImport, command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without --db, its database is a file of the data directory.
    monkeypatch.delenv("PJAI_SYNC_DB", raising=False)
    # Were the database made, the server would not listen: the command ends either way.
    monkeypatch.setattr(SyncServer, "run", lambda *_args, **_kwargs: False)
    result = runner.invoke(app, [*command, "--data-dir", str(held.target)])
    assert result.exit_code == 1, result.output
    assert re.search(in_use(held.target), " ".join(result.output.split())), result.output
    assert list(held.target.iterdir()) == []
    held.fail()


def test_a_flag_is_not_set_in_a_directory_an_import_holds(
    held: HeldImport, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Refused before the flags file is written: the import, failing meanwhile, would
    # remove the file, and the change be recorded for a flag that no file holds.
    data = DataDir(held.target, environ={})
    opened = DataDir.open

    def open_once_the_import_failed(self: DataDir, **options: Any) -> Any:
        held.fail()
        return opened(self, **options)

    monkeypatch.setattr(DataDir, "open", open_once_the_import_failed)
    with pytest.raises(ConfigError, match=in_use(held.target)):
        set_flag(data, "use_livestore", False)
    held.fail()
