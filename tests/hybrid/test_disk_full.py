"""A data directory on a disk that fills up keeps every acknowledged commit."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from pjai.cli import app
from pjai.errors import PjaiError
from pjai.hybrid import HybridDatabaseManager
from tests.helpers import persona
from tests.tmpfs import FILLER, commit_until_full_error, tmpfs


def test_data_directory_filled_to_a_full_disk_reopens_with_every_acknowledged_event(
    tmp_path: Path,
) -> None:
    with tmpfs(tmp_path / "disk", "6m") as disk:
        data_dir = disk / "data"
        with HybridDatabaseManager.open(data_dir, environ={}) as manager:
            [created] = manager.commit(persona("p1"))
            acknowledged, failure = commit_until_full_error(manager.commit, PjaiError)
        # The dual write commits SQL first: when SQL took the failing commit and only the
        # store ran out of space, the error says so and the store takes it on reopening.
        taken = any("SQL committed these events" in n for n in getattr(failure, "__notes__", []))
        settled = {f"m{len(acknowledged)}"} if taken else set()
        (disk / FILLER).unlink()
        with HybridDatabaseManager.open(data_dir, environ={}) as manager:
            memories = {row.id for row in manager.query("SELECT id FROM memories")}
            assert memories == set(acknowledged) | settled
            assert manager.store is not None
            logged = {entry.record.id for entry in manager.store.events()}
            assert {created.id, *acknowledged.values()} <= logged
            assert len(logged) == 1 + len(acknowledged) + len(settled)
            assert manager.verify().equal  # SQL holds them too
        result = CliRunner().invoke(app, ["verify", "--data-dir", str(data_dir)])
        assert result.exit_code == 0, result.output
