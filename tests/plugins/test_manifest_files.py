"""A plugin's files are read once, bounded, and only when they are regular files: a
link, a device, a pipe or a file past its limit is refused before anything is read."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pjai.errors import ConfigError
from pjai.plugins import Registry
from pjai.plugins.manifest import MAX_MANIFEST_BYTES, read_manifest
from tests.plugins.test_sandbox import plugin


def test_a_manifest_that_is_a_link_to_a_device_is_refused(tmp_path: Path) -> None:
    source = plugin(tmp_path, "zeros", "return 1", [])
    (source / "plugin.json").unlink()
    (source / "plugin.json").symlink_to("/dev/zero")
    with pytest.raises(ConfigError, match=r"plugin\.json is not a file of the plugin \(a link\)"):
        Registry(tmp_path / "data").install(source)


def test_a_manifest_or_entry_that_is_a_pipe_is_refused_without_waiting(tmp_path: Path) -> None:
    source = plugin(tmp_path, "piped", "return 1", [])
    (source / "plugin.json").unlink()
    os.mkfifo(source / "plugin.json")  # a read would wait for a writer that never comes
    with pytest.raises(ConfigError, match="not a regular file"):
        read_manifest(source)
    entry = plugin(tmp_path, "piped-entry", "return 1", [])
    (entry / "main.py").unlink()
    os.mkfifo(entry / "main.py")
    with pytest.raises(ConfigError, match=r"main\.py is not"):
        Registry(tmp_path / "data").install(entry)


def test_a_manifest_past_its_limit_is_refused_unread(tmp_path: Path) -> None:
    source = plugin(tmp_path, "huge", "return 1", [])
    with open(source / "plugin.json", "r+b") as file:
        file.truncate(300 * 2**20)  # sparse: 300 MB that a whole read would hold
    with pytest.raises(ConfigError, match=f"over {MAX_MANIFEST_BYTES:,} bytes"):
        read_manifest(source)


def test_an_installed_copy_made_a_link_is_named_damaged(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "data")
    copy = registry.install(plugin(tmp_path, "later", "return 1", [])).directory
    (copy / "plugin.json").unlink()
    (copy / "plugin.json").symlink_to("/dev/zero")
    with pytest.raises(ConfigError, match="a link"):
        registry.get("later")
    assert registry.list() == []


@pytest.mark.parametrize("version", ["1.0\n", "1.0\nerror: x", "1 0", "", "v" * 33])
def test_a_version_is_one_short_word(tmp_path: Path, version: str) -> None:
    source = plugin(tmp_path, "versioned", "return 1", [])
    manifest = json.loads((source / "plugin.json").read_text())
    (source / "plugin.json").write_text(json.dumps({**manifest, "version": version}))
    with pytest.raises(ConfigError, match=r"\$\.version"):
        read_manifest(source)
