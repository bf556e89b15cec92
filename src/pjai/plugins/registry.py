"""The plugins a data directory has: installed copies under ``plugins/``, each enabled
or not (``plugins/state.json``). A plugin is installed disabled: enabling it is a
separate, deliberate step, which records what it grants (``plugins/grants.json``: the
SHA-256 of the copy's manifest and entry file), so that a copy changed afterwards is
not run until it is enabled again."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pjai.errors import ConfigError
from pjai.files import read_json
from pjai.plugins.manifest import (
    MANIFEST_FILE,
    MAX_FILE_BYTES,
    MAX_MANIFEST_BYTES,
    Manifest,
    is_plugin_name,
    read_plugin,
    read_plugin_file,
    read_plugin_source,
)

__all__ = ["PLUGINS_DIR", "InstalledPlugin", "Registry"]

PLUGINS_DIR = "plugins"
_STATE = "state.json"
_GRANTS = "grants.json"
_LOCK = ".state.lock"


@dataclass(frozen=True, slots=True)
class InstalledPlugin:
    """An installed plugin: its manifest, where its copy is, whether it may run, the
    SHA-256 of its copy's manifest and entry file (``digest``) and the one recorded
    when it was enabled (``granted``)."""

    manifest: Manifest
    directory: Path
    enabled: bool
    digest: str = ""
    granted: str | None = None
    source: bytes = field(default=b"", repr=False)
    """The entry file's bytes that ``digest`` covers: what a run hands the sandbox."""

    @property
    def changed(self) -> bool:
        """Whether the plugin is enabled and its copy is not what was enabled (its
        manifest or code was changed since, or it was enabled before PJai recorded what
        it granted)."""
        return self.enabled and self.granted != self.digest


class Registry:
    """The plugins of the data directory ``data_path``."""

    def __init__(self, data_path: Path) -> None:
        self.path = data_path / PLUGINS_DIR

    def install(self, source: Path) -> InstalledPlugin:
        """Copy the plugin in ``source`` here, disabled. Refused if one of its name is
        installed already (the copy appears whole or not at all)."""
        manifest, digest = read_plugin(source)
        target = self.path / manifest.name
        with self._locked():  # two installs of one name: one of them says it is there
            if target.exists():
                raise ConfigError(f"a plugin {manifest.name} is installed already; remove it first")
            self._copy(source, digest, manifest, target)
            self._change(manifest.name, enabled=False, digest=None)
        return InstalledPlugin(manifest, target, enabled=False, digest=digest)

    def _copy(self, source: Path, digest: str, manifest: Manifest, target: Path) -> None:
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
            if read_plugin(copy) != (manifest, digest):
                raise ConfigError(f"{source} changed while it was installed: try again")
            copy.replace(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def list(self) -> list[InstalledPlugin]:
        """The installed plugins, by name; a damaged copy is left out (:meth:`get`
        names what is wrong with it, and :meth:`remove` takes it away)."""
        if not self.path.is_dir():
            return []
        state, grants = self._state(), self._grants()
        found = []
        for directory in sorted(p for p in self.path.iterdir() if p.is_dir()):
            if directory.name.startswith("."):
                continue
            with contextlib.suppress(ConfigError):
                manifest, digest = read_plugin(directory)
                name = manifest.name
                enabled, granted = state.get(name, False), grants.get(name)
                found.append(InstalledPlugin(manifest, directory, enabled, digest, granted))
        return found

    def get(self, name: str) -> InstalledPlugin:
        """The installed plugin ``name``, or :class:`ConfigError` listing those there are
        (or saying what is wrong with its copy)."""
        directory = self.path / name
        if is_plugin_name(name) and directory.is_dir():
            manifest, digest, source = read_plugin_source(directory)  # a damaged copy says so
            enabled, granted = self._state().get(name, False), self._grants().get(name)
            return InstalledPlugin(manifest, directory, enabled, digest, granted, source)
        names = ", ".join(p.manifest.name for p in self.list()) or "none"
        raise ConfigError(f"no plugin {name!r} is installed (installed: {names})")

    def enable(self, name: str, enabled: bool = True) -> InstalledPlugin:
        """Let the plugin run as its copy is now (or, with ``enabled=False``, no
        longer): what it grants is recorded, and a run of a copy changed since is
        refused."""
        with self._locked():
            plugin = self.get(name)
            granted = plugin.digest if enabled else None
            self._change(name, enabled=enabled, digest=granted)
        return InstalledPlugin(plugin.manifest, plugin.directory, enabled, plugin.digest, granted)

    def remove(self, name: str) -> None:
        """Delete the plugin's copy (damaged or not) and its state. The copy is moved
        aside first: a removal cut short leaves no half copy under the plugin's name."""
        directory = self.path / name
        if not (is_plugin_name(name) and directory.is_dir()):
            self.get(name)  # says what is installed
        with self._locked():
            aside = Path(tempfile.mkdtemp(prefix=f".{name}-removed-", dir=self.path))
            directory.replace(aside / "copy")
            state, grants = self._state(), self._grants()
            state.pop(name, None)
            grants.pop(name, None)
            self._write(_GRANTS, grants)
            self._write(_STATE, state)
        shutil.rmtree(aside, ignore_errors=True)

    def _state(self) -> dict[str, bool]:
        return {k: bool(v) for k, v in self._read(_STATE).items()}

    def _grants(self) -> dict[str, str]:
        return {k: str(v) for k, v in self._read(_GRANTS).items()}

    def _read(self, name: str) -> dict[str, Any]:
        """The JSON object in the file ``name``: empty when there is none (or it holds
        no object), :class:`~pjai.errors.ConfigError` when it is no JSON."""
        try:
            loaded = read_json(self.path / name)
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise ConfigError(f"{self.path / name} is not JSON: {exc}") from exc
        return {str(k): v for k, v in loaded.items()} if isinstance(loaded, dict) else {}

    def _change(self, name: str, *, enabled: bool, digest: str | None) -> None:
        """Under the lock: read the state and the grants, change them, write them (the
        grant first: a change cut short between leaves no grant unrecorded)."""
        grants = self._grants()
        if digest is None:
            grants.pop(name, None)
        else:
            grants[name] = digest
        self._write(_GRANTS, grants)
        state = self._state()
        state[name] = enabled
        self._write(_STATE, state)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Held while the state is read, changed and written: two commands at once take
        turns instead of one losing the other's change."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / _LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _write(self, name: str, data: dict[str, bool] | dict[str, str]) -> None:
        text = json.dumps(data, indent=2, sort_keys=True)
        handle, partial = tempfile.mkstemp(prefix=f".{name}-", dir=self.path)
        try:
            with os.fdopen(handle, "w") as file:
                file.write(text)
            os.replace(partial, self.path / name)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
