"""JSON files the commands read (the data directory's own, a ``--config`` file) that
hold JSON nested deeper than a parser goes are refused naming the file, not with a
traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from pjai.app import Passphrase
from pjai.app.erasing import ERASING_PREFIX, rewrites_owed
from pjai.errors import ConfigError
from pjai.hybrid.legacy.report import listed_rows
from pjai.plugins.registry import Registry
from tests.cli.invoke import Cli

DEEP = "[" * 100_000 + "]" * 100_000
TOO_DEEP = "nested too deeply to read"


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("flags.json", f"is not a flags file: its arrays or objects are {TOO_DEEP}"),
        ("identity.json", f"is not a PJai identity file: its arrays or objects are {TOO_DEEP}"),
        # What the import was is unreadable: the directory is refused all the same.
        ("importing.json", "holds part of an import that was stopped before it finished"),
    ],
)
def test_a_data_directory_file_nested_too_deeply_is_named(
    tmp_path: Path, name: str, problem: str
) -> None:
    cli = Cli(tmp_path / "data")
    cli("persona", "create", "Ann")
    file = tmp_path / "data" / name
    file.write_text(DEEP)
    said = cli.fails("persona", "list")
    assert str(file) in said, said
    assert problem in said, said
    assert file.read_text() == DEEP


@pytest.mark.parametrize("command", ["create", "update"])
def test_a_settings_file_nested_too_deeply_is_named(tmp_path: Path, command: str) -> None:
    cli = Cli(tmp_path / "data")
    cli("persona", "create", "Ann")
    config = tmp_path / "settings.json"
    config.write_text(DEEP)
    said = cli.fails("persona", command, "Ann", "--config", str(config))
    assert f"{config} is not valid JSON: its arrays or objects are {TOO_DEEP}" in said, said
    assert [p["name"] for p in cli.json("persona", "list")] == ["Ann"]


def test_other_files_nested_too_deeply_are_named(tmp_path: Path) -> None:
    data = tmp_path / "data"
    Cli(data)("persona", "create", "Ann")
    passphrase = Passphrase(data / "web-passphrase.json")
    passphrase.path.write_text(DEEP)
    with pytest.raises(ConfigError, match=f"web-passphrase.json is damaged .*{TOO_DEEP}"):
        passphrase.check("some passphrase")
    mark = data / f"{ERASING_PREFIX}0.json"
    mark.write_text(DEEP)
    with pytest.raises(ConfigError, match=str(mark)):
        rewrites_owed(data)
    mark.unlink()
    plugins = Registry(data)
    plugins.path.mkdir(parents=True, exist_ok=True)
    (plugins.path / "state.json").write_text(DEEP)
    with pytest.raises(ConfigError, match=f"state.json is not JSON: .*{TOO_DEEP}"):
        plugins.list()
    report = tmp_path / "report.jsonl"
    report.write_text(DEEP + "\n")
    assert listed_rows(report) == {}  # a line that is no report entry lists no row
