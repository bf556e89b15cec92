"""The plugins a data directory has: installed copies under ``plugins/``, each enabled
or not (``plugins/state.json``). A plugin is installed disabled: enabling it is a
separate, deliberate step."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pjai.errors import ConfigError
from pjai.plugins.manifest import (
    MANIFEST_FILE,
    MAX_FILE_BYTES,
    MAX_MANIFEST_BYTES,
    Manifest,
    is_plugin_name,
    read_manifest,
    read_plugin_file,
)

__all__ = ["PLUGINS_DIR", "InstalledPlugin", "Registry"]

PLUGINS_DIR = "plugins"
_STATE = "state.json"
_LOCK = ".state.lock"


@dataclass(frozen=True, slots=True)
class InstalledPlugin:
    """An installed plugin: its manifest, where its copy is, whether it may run."""

    manifest: Manifest
    directory: Path
    enabled: bool


class Registry:
    """The plugins of the data directory ``data_path``."""

    def __init__(self, data_path: Path) -> None:
        self.path = data_path / PLUGINS_DIR

    def install(self, source: Path) -> InstalledPlugin:
        """Copy the plugin in ``source`` here, disabled. Refused if one of its name is
        installed already (the copy appears whole or not at all)."""
        manifest = read_manifest(source)
        target = self.path / manifest.name
        with self._locked():  # two installs of one name: one of them says it is there
            if target.exists():
                raise ConfigError(f"a plugin {manifest.name} is installed already; remove it first")
            self._copy(source, manifest, target)
            self._change(manifest.name, enabled=False)
        return InstalledPlugin(manifest, target, enabled=False)

    def _copy(self, source: Path, manifest: Manifest, target: Path) -> None:
        staging = Path(tempfile.mkdtemp(prefix=f".{manifest.name}-", dir=self.path))
        try:
            # The manifest and the entry file are all a run reads: nothing else of the
            # source is taken (no link followed, no data directory beside it copied).
            copy = staging / "copy"
            copy.mkdir()
            # Each is read once, through an open that follows no link and waits for
            # nothing, and only up to its limit: what is copied is what was checked.
            for name, limit in (
                (MANIFEST_FILE, MAX_MANIFEST_BYTES),
                (manifest.entry.partition(":")[0], MAX_FILE_BYTES),
            ):
                try:
                    data = read_plugin_file(source / name, limit)
                except FileNotFoundError as exc:
                    raise ConfigError(f"{source / name} is not a file of the plugin") from exc
                (copy / name).write_bytes(data)
            if read_manifest(copy) != manifest:
                raise ConfigError(f"{source} changed while it was installed: try again")
            copy.replace(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def list(self) -> list[InstalledPlugin]:
        """The installed plugins, by name; a damaged copy is left out (:meth:`get`
        names what is wrong with it, and :meth:`remove` takes it away)."""
        if not self.path.is_dir():
            return []
        state = self._state()
        found = []
        for directory in sorted(p for p in self.path.iterdir() if p.is_dir()):
            if directory.name.startswith("."):
                continue
            with contextlib.suppress(ConfigError):
                manifest = read_manifest(directory)
                found.append(InstalledPlugin(manifest, directory, state.get(manifest.name, False)))
        return found

    def get(self, name: str) -> InstalledPlugin:
        """The installed plugin ``name``, or :class:`ConfigError` listing those there are
        (or saying what is wrong with its copy)."""
        directory = self.path / name
        if is_plugin_name(name) and directory.is_dir():
            manifest = read_manifest(directory)  # a damaged copy says so
            return InstalledPlugin(manifest, directory, self._state().get(name, False))
        names = ", ".join(p.manifest.name for p in self.list()) or "none"
        raise ConfigError(f"no plugin {name!r} is installed (installed: {names})")

    def enable(self, name: str, enabled: bool = True) -> InstalledPlugin:
        """Let the plugin run (or, with ``enabled=False``, no longer)."""
        plugin = self.get(name)
        self._set(name, enabled=enabled)
        return InstalledPlugin(plugin.manifest, plugin.directory, enabled)

    def remove(self, name: str) -> None:
        """Delete the plugin's copy (damaged or not) and its state. The copy is moved
        aside first: a removal cut short leaves no half copy under the plugin's name."""
        directory = self.path / name
        if not (is_plugin_name(name) and directory.is_dir()):
            self.get(name)  # says what is installed
        with self._locked():
            aside = Path(tempfile.mkdtemp(prefix=f".{name}-removed-", dir=self.path))
            directory.replace(aside / "copy")
            state = self._state()
            state.pop(name, None)
            self._write(state)
        shutil.rmtree(aside, ignore_errors=True)

    def _state(self) -> dict[str, bool]:
        try:
            loaded = json.loads((self.path / _STATE).read_text())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise ConfigError(f"{self.path / _STATE} is not JSON: {exc}") from exc
        return {str(k): bool(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}

    def _set(self, name: str, *, enabled: bool) -> None:
        with self._locked():
            self._change(name, enabled=enabled)

    def _change(self, name: str, *, enabled: bool) -> None:
        """Under the lock: read the state, change it, write it."""
        state = self._state()
        state[name] = enabled
        self._write(state)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Held while the state is read, changed and written: two commands at once take
        turns instead of one losing the other's change."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / _LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _write(self, state: dict[str, bool]) -> None:
        text = json.dumps(state, indent=2, sort_keys=True)
        handle, partial = tempfile.mkstemp(prefix=f".{_STATE}-", dir=self.path)
        try:
            with os.fdopen(handle, "w") as file:
                file.write(text)
            os.replace(partial, self.path / _STATE)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
