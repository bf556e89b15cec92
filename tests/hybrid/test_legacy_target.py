"""A failed legacy import leaves a new or empty data directory as it found it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pjai.app import DataDir
from pjai.cli import app
from pjai.errors import ConfigError
from pjai.hybrid import fresh
from pjai.hybrid.legacy import import_into
from tests.helpers import held_in_a_thread
from tests.hybrid.legacy_db import sample


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    """The sample legacy database, alone in its folder."""
    folder = tmp_path / "desktop"
    folder.mkdir()
    return sample(folder / "pjai-desktop.db")


@pytest.fixture
def not_legacy(tmp_path: Path) -> Path:
    """A file that is not an SQLite database."""
    path = tmp_path / "notes.txt"
    path.write_text("just text, " * 100)
    return path


def stop(done: int, total: int) -> None:
    """A progress callback that stops the import after its first commit."""
    raise RuntimeError("stopped by the user")


def fail_to_import(data: Path, source: Path, report: Path, **options: object) -> None:
    """Run an import that must fail: on ``source``, or, on the sample, after the first commit."""
    progress = stop if source.name == "pjai-desktop.db" else None
    with pytest.raises((ConfigError, RuntimeError)):
        import_into(data, source, report_path=report, progress=progress, **options)


@pytest.mark.parametrize("failing", ["not_legacy", "legacy"])
def test_a_new_data_directory_is_removed_with_the_folders_made_for_it(
    tmp_path: Path, failing: str, request: pytest.FixtureRequest
) -> None:
    source = request.getfixturevalue(failing)
    data = tmp_path / "new" / "deeper" / "data"
    fail_to_import(data, source, data / "report.jsonl", environ={})
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("failing", ["not_legacy", "legacy"])
def test_an_empty_data_directory_is_left_empty(
    tmp_path: Path, failing: str, request: pytest.FixtureRequest
) -> None:
    source = request.getfixturevalue(failing)
    data = tmp_path / "data"
    data.mkdir()
    reports = tmp_path / "reports"
    (reports / "old").mkdir(parents=True)
    fail_to_import(data, source, reports / "new" / "report.jsonl", environ={})
    assert list(data.iterdir()) == []
    assert list(reports.iterdir()) == [reports / "old"]  # only what the import made is gone


def test_a_data_directory_holding_anything_is_left_alone(tmp_path: Path, legacy: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "notes.txt").write_text("mine")
    fail_to_import(data, legacy, data / "report.jsonl", environ={})
    assert (data / "notes.txt").read_text() == "mine"
    assert (data / "store.db").exists()  # what was imported stays; a second run resumes
    assert not (data / "importing.json").exists()  # the error said so: it opens
    DataDir(data, environ={}).open().close()
    again = import_into(data, legacy, report_path=data / "report.jsonl", environ={})
    assert (again.skipped_personas, again.memories) == (4, 8)


def test_events_in_an_sql_primary_elsewhere_keep_the_directory(
    tmp_path: Path, sql_url: str, legacy: Path, not_legacy: Path
) -> None:
    """Removing the store would part it from the SQL primary that holds its events."""
    data, report = tmp_path / "data", tmp_path / "data" / "report.jsonl"
    fail_to_import(data, not_legacy, report, sql_urls=[sql_url], environ={})
    assert not data.exists()  # nothing was committed
    fail_to_import(data, legacy, report, sql_urls=[sql_url], environ={})
    assert (data / "store.db").exists()
    again = import_into(data, legacy, report_path=report, sql_urls=[sql_url], environ={})
    assert (again.skipped_personas, again.memories) == (4, 8)


def test_a_successful_import_keeps_what_it_made(tmp_path: Path, legacy: Path) -> None:
    data = tmp_path / "data"
    result = import_into(data, legacy, report_path=data / "report.jsonl", environ={})
    assert (result.personas, result.memories) == (4, 8)
    assert {"store.db", "primary.db", "identity.json", "report.jsonl"} <= {
        p.name for p in data.iterdir()
    }


def test_the_command_leaves_a_new_data_directory_as_it_was(
    tmp_path: Path, not_legacy: Path
) -> None:
    data = tmp_path / "data"
    result = CliRunner().invoke(app, ["import-legacy", str(not_legacy), "--data-dir", str(data)])
    assert result.exit_code == 1, result.output
    assert "is not a readable SQLite database" in result.stderr
    assert not data.exists()


def test_a_second_import_into_the_same_new_directory_is_refused_at_once(
    tmp_path: Path, legacy: Path, not_legacy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first has found the directory empty; the second, failing, would have taken
    # away as its own everything the first made.
    data = tmp_path / "data"
    first = lambda: import_into(data, legacy, report_path=data / "report.jsonl", environ={})  # noqa: E731
    with held_in_a_thread(monkeypatch, fresh.Made, "before", first) as outcome:
        running = f"another import or backup into {re.escape(str(data))} is running"
        with pytest.raises(ConfigError, match=running):
            import_into(data, not_legacy, report_path=data / "report.jsonl", environ={})
    assert "error" not in outcome, outcome
    with DataDir(data, environ={}).open() as manager:
        assert manager.store is not None
        assert manager.store.query("SELECT count(*) AS n FROM memories")[0].n == 8
