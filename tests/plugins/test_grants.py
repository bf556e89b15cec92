"""Enabling a plugin grants what its copy is then: a copy changed afterwards (its
manifest or its code) is not run until it is enabled again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pjai.app import DataDir, Personas
from pjai.app.plugins import run_plugin
from pjai.cli import app as cli
from pjai.hybrid import HybridDatabaseManager
from pjai.plugins import InstalledPlugin, PluginError, Registry
from tests.plugins.test_sandbox import installed, plugin

Setting = tuple[Registry, HybridDatabaseManager, str]


@pytest.mark.parametrize("changed", ["manifest", "code"])
def test_a_copy_changed_since_it_was_enabled_is_not_run(
    setting: Setting, tmp_path: Path, changed: str
) -> None:
    registry, manager, ada = setting
    name = installed(registry, plugin(tmp_path, "meek", "return 1", []))
    copy = registry.get(name).directory
    if changed == "manifest":
        manifest = json.loads((copy / "plugin.json").read_text())
        manifest["capabilities"] = ["memories:read"]
        (copy / "plugin.json").write_text(json.dumps(manifest))
    (copy / "main.py").write_text("def run(api, args):\n    return len(api.memories())\n")
    assert registry.get(name).changed
    with pytest.raises(
        PluginError, match="plugin meek changed since it was enabled; enable it again"
    ):
        run_plugin(registry, manager, name, ada)
    registry.enable(name)  # a deliberate grant of what it is now
    assert not registry.get(name).changed
    expected = 1 if changed == "manifest" else None
    if expected is None:
        with pytest.raises(PluginError, match="not granted memories:read"):
            run_plugin(registry, manager, name, ada)
    else:
        assert run_plugin(registry, manager, name, ada).result == expected


def test_enabling_again_a_copy_that_asks_for_more_says_what_it_is_now_granted(
    tmp_path: Path,
) -> None:
    DataDir(tmp_path / "data").open().close()
    where = ["--data-dir", str(tmp_path / "data")]
    runner = CliRunner()
    source = plugin(tmp_path, "meek", "return 1", [])
    assert runner.invoke(cli, ["plugin", "install", str(source), *where]).exit_code == 0
    first = runner.invoke(cli, ["plugin", "enable", "meek", *where])
    assert first.exit_code == 0, first.output
    assert "meek is enabled: it is granted nothing; limits 2 s CPU" in " ".join(
        first.output.split()
    )
    copy = tmp_path / "data" / "plugins" / "meek" / "plugin.json"
    manifest = json.loads(copy.read_text())
    manifest["capabilities"] = ["memories:read"]
    copy.write_text(json.dumps(manifest))
    again = runner.invoke(cli, ["plugin", "enable", "meek", *where])
    assert again.exit_code == 0, again.output
    assert "it is granted memories:read;" in again.output


def test_a_plugin_enabled_without_a_recorded_grant_is_enabled_again(
    setting: Setting, tmp_path: Path
) -> None:
    registry, manager, ada = setting
    name = installed(registry, plugin(tmp_path, "older", "return 1", []))
    (registry.path / "grants.json").unlink()  # as a state written before grants were
    with pytest.raises(PluginError, match="changed since it was enabled"):
        run_plugin(registry, manager, name, ada)
    registry.enable(name, False)
    assert json.loads((registry.path / "grants.json").read_text()) == {}
    registry.enable(name)
    assert run_plugin(registry, manager, name, ada).result == 1


def test_the_cli_lists_a_changed_copy(tmp_path: Path) -> None:
    runner = CliRunner()
    where = ["--data-dir", str(tmp_path / "data")]
    with DataDir(tmp_path / "data").open() as manager:
        Personas(manager).create("Ada", activate=True)
    source = plugin(tmp_path, "edited", "return 1", [])
    for command in (["install", str(source)], ["enable", "edited"]):
        assert runner.invoke(cli, ["plugin", *command, *where]).exit_code == 0
    copy = tmp_path / "data" / "plugins" / "edited"
    (copy / "main.py").write_text("def run(api, args):\n    return 2\n")
    listed = runner.invoke(cli, ["plugin", "list", *where]).output
    assert "edited 1.0 (enabled, changed since: enable it again)" in listed
    ran = runner.invoke(cli, ["plugin", "run", "edited", *where])
    assert ran.exit_code == 1
    assert "changed since it was enabled" in ran.output


def test_the_code_that_runs_is_the_code_whose_grant_was_checked(
    setting: Setting, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, manager, ada = setting
    name = installed(registry, plugin(tmp_path, "meek", "return 'granted'", []))
    copy = registry.get(name).directory
    real_get = registry.get

    def swapped_after_the_check(asked: str) -> InstalledPlugin:
        checked = real_get(asked)
        # Another writer of the data directory changes the copy once it was checked.
        (copy / "main.py").write_text("def run(api, args):\n    return 'swapped'\n")
        return checked

    monkeypatch.setattr(registry, "get", swapped_after_the_check)
    assert run_plugin(registry, manager, name, ada).result == "granted"
    monkeypatch.undo()
    with pytest.raises(PluginError, match="changed since it was enabled"):
        run_plugin(registry, manager, name, ada)
