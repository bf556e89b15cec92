"""The plugins a data directory has: installed copies under ``plugins/``, each enabled
or not (``plugins/state.json``). A plugin is installed disabled: enabling it is a
separate, deliberate step."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pjai.errors import ConfigError
from pjai.plugins.manifest import Manifest, read_manifest

__all__ = ["PLUGINS_DIR", "InstalledPlugin", "Registry"]

PLUGINS_DIR = "plugins"
_STATE = "state.json"


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
        if target.exists():
            raise ConfigError(f"a plugin {manifest.name} is installed already; remove it first")
        self.path.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{manifest.name}-", dir=self.path))
        try:
            shutil.copytree(source, staging / "copy", ignore=shutil.ignore_patterns(".*"))
            (staging / "copy").replace(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self._set(manifest.name, enabled=False)
        return InstalledPlugin(manifest, target, enabled=False)

    def list(self) -> list[InstalledPlugin]:
        """The installed plugins, by name."""
        if not self.path.is_dir():
            return []
        state = self._state()
        found = []
        for directory in sorted(p for p in self.path.iterdir() if p.is_dir()):
            if directory.name.startswith("."):
                continue
            manifest = read_manifest(directory)
            found.append(InstalledPlugin(manifest, directory, state.get(manifest.name, False)))
        return found

    def get(self, name: str) -> InstalledPlugin:
        """The installed plugin ``name``, or :class:`ConfigError` listing those there are."""
        for plugin in self.list():
            if plugin.manifest.name == name:
                return plugin
        names = ", ".join(p.manifest.name for p in self.list()) or "none"
        raise ConfigError(f"no plugin {name!r} is installed (installed: {names})")

    def enable(self, name: str, enabled: bool = True) -> InstalledPlugin:
        """Let the plugin run (or, with ``enabled=False``, no longer)."""
        plugin = self.get(name)
        self._set(name, enabled=enabled)
        return InstalledPlugin(plugin.manifest, plugin.directory, enabled)

    def remove(self, name: str) -> None:
        """Delete the plugin's copy and state."""
        plugin = self.get(name)
        shutil.rmtree(plugin.directory)
        state = self._state()
        state.pop(name, None)
        self._write(state)

    def _state(self) -> dict[str, bool]:
        try:
            loaded = json.loads((self.path / _STATE).read_text())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise ConfigError(f"{self.path / _STATE} is not JSON: {exc}") from exc
        return {str(k): bool(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}

    def _set(self, name: str, *, enabled: bool) -> None:
        state = self._state()
        state[name] = enabled
        self._write(state)

    def _write(self, state: dict[str, bool]) -> None:
        partial = self.path / (_STATE + ".tmp")
        partial.write_text(json.dumps(state, indent=2, sort_keys=True))
        partial.replace(self.path / _STATE)
