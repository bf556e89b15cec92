"""A data directory on a disk that fills up keeps every acknowledged commit."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from pjai.cli import app
from pjai.errors import PjaiError
from pjai.hybrid import HybridDatabaseManager
from tests.helpers import persona
from tests.tmpfs import FILLER, commit_until_full, tmpfs


def test_data_directory_filled_to_a_full_disk_reopens_with_every_acknowledged_event(
    tmp_path: Path,
) -> None:
    with tmpfs(tmp_path / "disk", "6m") as disk:
        data_dir = disk / "data"
        with HybridDatabaseManager.open(data_dir, environ={}) as manager:
            [created] = manager.commit(persona("p1"))
            acknowledged = commit_until_full(manager.commit, PjaiError)
        (disk / FILLER).unlink()
        with HybridDatabaseManager.open(data_dir, environ={}) as manager:
            memories = {row.id for row in manager.query("SELECT id FROM memories")}
            assert memories == set(acknowledged)
            assert manager.store is not None
            logged = {entry.record.id for entry in manager.store.events()}
            assert logged == {created.id, *acknowledged.values()}
            assert manager.verify().equal  # SQL holds them too
        result = CliRunner().invoke(app, ["verify", "--data-dir", str(data_dir)])
        assert result.exit_code == 0, result.output
