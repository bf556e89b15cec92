"""`backup`: a consistent copy of a data directory in use, that opens on its own."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pjai.app import DataDir, Personas, backup, init_security
from pjai.errors import ConfigError, KeyRingError
from pjai.store import Store
from tests.helpers import held_in_a_thread, memory, persona
from tests.security.test_keys import FAST, PASSPHRASE


def test_a_copy_taken_while_another_process_writes_opens_whole(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data", environ={})
    with data.open() as manager:
        manager.commit(persona("p1"), *(memory(f"m{i}") for i in range(50)))
        assert manager.store is not None
        store_id = manager.store.store_id
    with Store.open(data.store_path) as other:  # another writer on the same file
        other.commit(memory("late"))
        copied = backup(data, tmp_path / "copy")
    assert {f.name for f in copied} == {"store.db", "primary.db", "identity.json"}
    copy = DataDir(tmp_path / "copy", environ={})
    with copy.open() as manager:
        assert manager.store is not None
        assert manager.store.query("SELECT count(*) AS n FROM memories")[0].n == 51
        assert manager.verify().equal
        assert manager.store.store_id == store_id


def test_a_backup_never_overwrites(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data", environ={})
    with data.open() as manager:
        manager.commit(persona("p1"))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        backup(data, tmp_path / "full")
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]


def test_an_encrypted_directory_s_backup_holds_its_locked_key_ring(tmp_path: Path) -> None:
    environ = {"PJAI_PASSPHRASE": PASSPHRASE}
    data = DataDir(tmp_path / "data", environ=environ)
    init_security(data, passphrase=PASSPHRASE, params=FAST)
    with data.open() as manager:
        ada = Personas(manager).create("Ada", description="sealed words")
    copied = backup(data, tmp_path / "copy")
    assert "keys.db" in {f.name for f in copied}
    assert (tmp_path / "copy" / "keys.db").stat().st_mode & 0o777 == 0o600
    with pytest.raises(KeyRingError):
        DataDir(tmp_path / "copy", environ={}).open()  # locked as the original is
    with DataDir(tmp_path / "copy", environ=environ).open() as manager:
        assert Personas(manager).get(ada.id).description == "sealed words"
        assert manager.store is not None
        manager.store.rebuild()  # the sealed log opens with the copied keys
        assert manager.verify().equal


def test_a_backup_stopped_on_the_way_leaves_a_directory_that_says_so(tmp_path: Path) -> None:
    # A process killed (or the power gone) runs no clean-up: what it copied must not
    # pass for a whole backup (here the store and the primary, not the identity).
    data = DataDir(tmp_path / "data", environ={})
    with data.open() as manager:
        manager.commit(persona("p1"), memory("m1"))
    copy = tmp_path / "copy"
    killed = subprocess.run(
        [sys.executable, "-c", (
            "import os, shutil, sys\n"
            "from pathlib import Path\n"
            "from pjai.app import DataDir, backup\n"
            "shutil.copyfile = lambda *args, **kwargs: os._exit(9)\n"
            "backup(DataDir(sys.argv[1], environ={}), Path(sys.argv[2]))\n"
        ), str(data.path), str(copy)],
        check=False,
    )  # fmt: skip
    assert killed.returncode == 9
    assert (copy / "store.db").exists()
    assert not (copy / "identity.json").exists()
    with pytest.raises(
        ConfigError,
        match=f"part of a backup of {data.path} .* stopped before it finished: "
        f"delete what is in {copy} and back up again",
    ):
        DataDir(copy, environ={}).open()
    with pytest.raises(ConfigError, match="not empty"):
        backup(data, copy)
    shutil.rmtree(copy)
    backup(data, copy)
    with DataDir(copy, environ={}).open() as manager:
        assert manager.verify().equal


def test_a_backup_names_a_missing_source_or_a_file_for_destination(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no PJai data directory"):
        backup(DataDir(tmp_path / "typo", environ={}), tmp_path / "copy")
    assert not (tmp_path / "typo").exists()
    assert not (tmp_path / "copy").exists()
    data = DataDir(tmp_path / "data", environ={})
    data.open().close()
    (tmp_path / "file").write_text("mine")
    with pytest.raises(ConfigError, match="is a file"):
        backup(data, tmp_path / "file")
    assert (tmp_path / "file").read_text() == "mine"


def test_a_second_backup_into_the_same_new_directory_is_refused_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first has found the directory empty; were the second let in, the one that
    # failed would take away as its own what the other had copied.
    data = DataDir(tmp_path / "data", environ={})
    with data.open() as manager:
        manager.commit(persona("p1"), memory("m1"))
    copy = tmp_path / "copy"
    first = lambda: backup(data, copy)  # noqa: E731
    # Held as it opens the directory it copies, the copy's found empty.
    with held_in_a_thread(monkeypatch, DataDir, "open", first, after=False) as outcome:
        running = f"another import or backup into {re.escape(str(copy))} is running"
        with pytest.raises(ConfigError, match=running):
            backup(data, copy)
        with pytest.raises(ConfigError, match=running.removeprefix("another ")):
            DataDir(copy, environ={}).open()
    assert "error" not in outcome, outcome
    with DataDir(copy, environ={}).open() as manager:
        assert manager.verify().equal
        assert manager.store is not None
        assert manager.store.query("SELECT count(*) AS n FROM memories")[0].n == 1
