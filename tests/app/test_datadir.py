"""DataDir: the one list of the files PJai keeps, and opening them."""

from __future__ import annotations

from pathlib import Path

import pytest

from pjai.app import SYNC_STATUS_FILE, DataDir
from pjai.hybrid.files import FLAGS_FILE, IDENTITY_FILE, STORE_FILE
from pjai.memory import MemorySystem
from pjai.memory.embeddings import VECTORS_FILE
from pjai.sql.engine import PRIMARY_FILE
from pjai.sync.server import SERVER_FILE


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
        SERVER_FILE,
    ]
    paths = [
        data.store_path,
        data.flags_path,
        data.identity_path,
        data.primary_path,
        data.vectors_path,
        data.sync_status_path,
        data.sync_server_path,
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
