"""An import looks for room on the disks it writes to before it writes anything, and
keeps a spare margin free there."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pjai.cli import app
from pjai.errors import NoRoomError, SqlError
from pjai.hybrid.archive import import_archive, restore
from pjai.hybrid.archive.footprint import WORK_FACTOR
from pjai.hybrid.room import SPARE_BYTES, megabytes
from tests.helpers import compressible_archive
from tests.tmpfs import tmpfs

MB = 1024 * 1024


def test_an_import_its_disk_has_no_room_for_is_refused_before_it_writes_anything(
    tmp_path: Path,
) -> None:
    # 128 MiB, 1 MiB of it taken; the large archive is 0.1 MB zipped, 68 MB unzipped:
    # its import wrote past the disk's end before, and needs 5 times that with the
    # spare kept.
    large, unzipped = compressible_archive(tmp_path / "large", 360, 96 * 1024)
    small, _ = compressible_archive(tmp_path / "small", 1, 100)
    with tmpfs(tmp_path / "disk", "128m") as disk:
        target = disk / "restored"
        with pytest.raises(NoRoomError) as refused:
            import_archive(target, large, environ={})
        needed = 2 * math.ceil(WORK_FACTOR * unzipped)
        assert str(refused.value) == (
            f"the import of {large} ({megabytes(unzipped)} once unzipped) needs "
            f"{megabytes(needed)} on the disk of {target}, and keeps "
            f"{megabytes(SPARE_BYTES)} spare there; it has 127.0 MB free. Free some space "
            "there, or import into a data directory on a larger disk."
        )
        assert not target.exists()  # nothing half-written, not even the folder
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]

        cli = CliRunner().invoke(app, ["import", str(large), "--data-dir", str(target)])
        assert cli.exit_code != 0
        said = " ".join(cli.output.split())  # as wrapped at the terminal's width
        assert f"error: the import of {large} (" in said, cli.output
        assert "and keeps 64.0 MB spare there;" in said
        assert not target.exists()

        result = import_archive(target, small, environ={})  # room for that one
        assert result.events == 2


def test_an_import_whose_disk_fills_up_meanwhile_says_so_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Room that another writer takes after the check: SQLite ends the transaction
    # itself on a full disk, and the error said only that the batch's savepoint was
    # gone ("no such savepoint: pjai_batch").
    large, _ = compressible_archive(tmp_path / "large", 360, 96 * 1024)
    monkeypatch.setattr(restore, "check_import_room", lambda *args: None)
    with tmpfs(tmp_path / "disk", "128m") as disk:
        with pytest.raises(SqlError, match="disk is full") as failed:
            import_archive(disk / "restored", large, environ={})
        assert "savepoint" not in str(failed.value)
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]
