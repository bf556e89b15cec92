"""DataDir: the one list of the files PJai keeps, and opening them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pjai.app import Personas, export_archive, init_security
from pjai.app.datadir import SYNC_LOCK_FILE, SYNC_STATUS_FILE, DataDir
from pjai.app.login import PASSPHRASE_FILE
from pjai.app.subject import export_subject
from pjai.app.websessions import WEB_SESSIONS_FILE
from pjai.errors import ConfigError, StoreModeError
from pjai.hybrid.files import FLAGS_FILE, IDENTITY_FILE, IMPORTING_FILE, STORE_FILE
from pjai.hybrid.legacy import REPORT_FILE as LEGACY_REPORT_FILE
from pjai.memory import MemorySystem
from pjai.memory.embeddings import VECTORS_FILE
from pjai.security import KEYS_FILE
from pjai.sql.engine import PRIMARY_FILE
from pjai.sync.server import SERVER_FILE
from tests.helpers import at_once
from tests.hybrid.test_identity import meet_before_making_identities
from tests.security.test_keys import FAST, PASSPHRASE


def test_every_file_is_listed_under_the_name_its_owner_defines(tmp_path: Path) -> None:
    data = DataDir(tmp_path)
    names = [f.name for f in data.files()]
    assert names == [
        STORE_FILE,
        FLAGS_FILE,
        IDENTITY_FILE,
        PRIMARY_FILE,
        VECTORS_FILE,
        SYNC_STATUS_FILE,
        SYNC_LOCK_FILE,
        SERVER_FILE,
        PASSPHRASE_FILE,
        WEB_SESSIONS_FILE,
        KEYS_FILE,
        LEGACY_REPORT_FILE,
        IMPORTING_FILE,
    ]
    paths = [
        data.store_path,
        data.flags_path,
        data.identity_path,
        data.primary_path,
        data.vectors_path,
        data.sync_status_path,
        data.sync_lock_path,
        data.sync_server_path,
        data.passphrase_path,
        data.web_sessions_path,
        data.keys_path,
        data.legacy_report_path,
        data.importing_path,
    ]
    assert [p.name for p in paths] == names
    assert all(p.parent == tmp_path for p in paths)
    assert data.existing() == []
    assert not any(f.exists for f in data.files())


def test_opening_makes_the_files_that_then_exist(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "d", environ={})
    with data.open() as manager:
        assert manager.store is not None
        assert manager.data_dir == data.path
    present = {f.name: f for f in data.existing()}
    assert {STORE_FILE, IDENTITY_FILE, PRIMARY_FILE} <= present.keys()
    assert all(f.bytes is not None and f.bytes > 0 for f in present.values())
    assert FLAGS_FILE not in present


def test_the_environment_given_is_the_one_used(tmp_path: Path) -> None:
    data = DataDir(tmp_path, environ={"PJAI_USE_LIVESTORE": "false"})
    assert data.flags()["use_livestore"] is False
    with data.open() as manager:
        assert manager.store is None
    assert not data.store_path.exists()


def test_memory_system_over_the_manager(tmp_path: Path) -> None:
    with DataDir(tmp_path, environ={}).memory() as system:
        assert isinstance(system, MemorySystem)
        assert system.query("SELECT count(*) AS n FROM memories")[0].n == 0


@pytest.mark.parametrize("keep", [False, True])
def test_scratch_directories_go_unless_kept(tmp_path: Path, keep: bool) -> None:
    data = DataDir(tmp_path / "d")
    with data.scratch("bench-x-", keep=keep) as workdir:
        assert workdir.parent == data.path
        assert workdir.name.startswith("bench-x-")
        (workdir / "f").write_text("x")
    assert workdir.exists() is keep


def test_a_directory_that_is_not_a_pjai_one_is_refused_not_made(tmp_path: Path) -> None:
    typo = DataDir(tmp_path / "typo", environ={})
    assert typo.exists is False
    with pytest.raises(ConfigError, match=f"no PJai data directory at {tmp_path / 'typo'}; "):
        typo.open(create=False)
    with pytest.raises(ConfigError, match="no PJai data directory"):
        typo.open_store(create=False)
    assert not typo.path.exists()
    empty = DataDir(tmp_path, environ={})  # exists, but holds no PJai file
    with pytest.raises(ConfigError, match="no PJai data directory"):
        empty.open(create=False)
    assert list(tmp_path.iterdir()) == []
    with typo.open():  # commands that write may make it
        pass
    assert typo.exists
    with typo.open(create=False) as manager:
        assert manager.store is not None
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="file is a file, not a PJai data directory"):
        DataDir(tmp_path / "file").require()


def test_only_sql_needs_no_directory_when_sql_lives_elsewhere(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    DataDir(tmp_path / "none", environ={"PJAI_SQL_SHARDS": url}).require(sql_only=True)
    with pytest.raises(ConfigError, match="no PJai data directory"):
        DataDir(tmp_path / "none", environ={}).require(sql_only=True)


def test_a_directory_that_cannot_be_made_is_an_error_naming_it(tmp_path: Path) -> None:
    # Below a file: no directory can be made there, even by root (chmod does not stop root).
    (tmp_path / "file").write_text("x")
    data = DataDir(tmp_path / "file" / "sub", environ={})
    assert data.existing() == []
    with pytest.raises(ConfigError, match=r"cannot use the data directory .*sub: Not a directory"):
        data.open()
    with pytest.raises(ConfigError, match="cannot use the data directory"):
        data.open_store()


def test_a_directory_that_cannot_be_written_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = DataDir(tmp_path, environ={})
    with data.open():
        pass
    # As a read-only mount or another user's directory answers (root may write anywhere).
    writable = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: mode != os.W_OK and writable(path, mode))
    for opening in (data.open, data.open_store):
        with pytest.raises(ConfigError, match=r"data directory .* cannot be written"):
            opening()


def test_a_store_opened_in_the_other_mode_is_named_in_user_terms(tmp_path: Path) -> None:
    data = DataDir(tmp_path, environ={})
    with data.open():
        pass
    with pytest.raises(StoreModeError, match="is a standalone data directory: it does not sync"):
        data.open_store(sync=True)
    with data.open_store() as store:  # as the directory is
        assert store.sync is False


def test_a_directory_holding_part_of_an_import_is_refused_however_it_opens(
    tmp_path: Path,
) -> None:
    # `pjai store info`, `store rebuild` and `sync status` open the store alone: they
    # must not take part of an import (or of a backup) for a whole directory either.
    data = DataDir(tmp_path, environ={})
    with data.open():
        pass
    data.importing_path.write_text(
        '{"doing": "a backup", "source": "/elsewhere", "started_at": "then", "again": "redo"}'
    )
    for opening in (data.open, data.open_store):
        with pytest.raises(ConfigError, match=r"part of a backup of /elsewhere .* finished: redo"):
            opening()


def test_an_export_never_replaces_a_file_the_directory_keeps(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data", environ={"PJAI_PASSPHRASE": PASSPHRASE})
    init_security(data, passphrase=PASSPHRASE, params=FAST)
    shard = tmp_path / "elsewhere" / "shard.db"
    shard.parent.mkdir()
    data = DataDir(
        data.path, environ={"PJAI_PASSPHRASE": PASSPHRASE, "PJAI_SQL_SHARDS": f"sqlite:///{shard}"}
    )
    with data.open() as manager:
        ada = Personas(manager).create("Ada", description="sealed words").id
    kept = [
        data.keys_path,
        data.store_path,
        data.path / (STORE_FILE + "-wal"),
        data.path / (STORE_FILE + ".rebuilt"),
        data.path / (STORE_FILE + ".rebuilding"),
        data.path / (STORE_FILE + ".damaged-20261206T120000"),
        data.importing_path,
        data.flags_path,
        shard,
        shard.with_name("shard.db-journal"),
    ]
    before = {path: path.read_bytes() for path in kept if path.exists()}
    with data.open() as manager:
        for path in kept:
            with pytest.raises(ConfigError, match="a file PJai keeps"):
                export_archive(manager, path, overwrite=True)
            with pytest.raises(ConfigError, match="a file PJai keeps"):
                export_subject(manager, ada, path, overwrite=True)
        # A name that only begins like a kept one is the user's to choose.
        export_archive(manager, data.path / (STORE_FILE + ".zip"))
    assert {path: path.read_bytes() for path in kept if path.exists()} == before
    assert not data.importing_path.exists()
    with data.open() as manager:
        assert manager.verify().equal


def test_a_path_with_url_characters_keeps_every_file_inside_the_directory(
    tmp_path: Path,
) -> None:
    data = DataDir(tmp_path / "my data? #1 100%41", environ={})
    with data.open() as manager:
        Personas(manager).create("Ada")
    assert data.primary_path.is_file()
    assert [p.name for p in tmp_path.iterdir()] == [data.path.name]
    with data.open() as manager:
        assert manager.verify().equal


def _opened_at_once(directories: list[DataDir]) -> list[str]:
    """Open and close ``directories`` (one may come more than once) in threads released
    together; the client ids they opened with."""
    client_ids: list[str] = []

    def open_and_close(i: int) -> None:
        with directories[i].open() as manager:
            client_ids.append(manager.identity.client_id)

    assert at_once(len(directories), open_and_close) == []
    return client_ids


def test_threads_open_fresh_data_directories_at_once(tmp_path: Path) -> None:
    for round_ in range(2):
        _opened_at_once([DataDir(tmp_path / f"data{round_}-{i}", environ={}) for i in range(3)])


@pytest.mark.parametrize("store", ["true", "false"], ids=["store-on", "store-off"])
def test_threads_open_one_fresh_data_directory_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    meet_before_making_identities(monkeypatch, 3)
    data = DataDir(tmp_path / "data", environ={"PJAI_USE_LIVESTORE": store})
    assert len(set(_opened_at_once([data] * 3))) == 1
