"""`pjai backup`."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from pjai.cli import app

runner = CliRunner()


def test_backup_copies_a_directory_that_then_opens(tmp_path: Path) -> None:
    data, copy = str(tmp_path / "data"), str(tmp_path / "copy")
    made = runner.invoke(app, ["persona", "create", "Ada", "--json", "--data-dir", data])
    assert made.exit_code == 0, made.output
    done = runner.invoke(app, ["backup", copy, "--json", "--data-dir", data])
    assert done.exit_code == 0, done.output
    assert {f["name"] for f in json.loads(done.stdout)} >= {"store.db", "primary.db"}
    listed = runner.invoke(app, ["persona", "list", "--json", "--data-dir", copy])
    assert [p["name"] for p in json.loads(listed.stdout)] == ["Ada"]
    again = runner.invoke(app, ["backup", copy, "--data-dir", data])
    assert again.exit_code == 1
    assert "not empty" in again.output
