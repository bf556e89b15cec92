"""Feature flags: the reactive store switch and the features built on it.

A flag's value comes from its environment variable when that is set (the operator's
override, e.g. ``PJAI_USE_LIVESTORE=false``), else from ``flags.json`` in the data
directory (written by :meth:`Flags.set` and ``pjai flags set``), else its default.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pjai.errors import ConfigError

__all__ = ["FLAGS", "FlagState", "Flags"]

FLAGS: dict[str, tuple[bool, str]] = {
    "use_livestore": (True, "the reactive store; off: commands write the SQL primary directly"),
    "reactive_explorer": (True, "live queries in the memory explorer"),
    "reactive_dashboard": (True, "live queries on the dashboard"),
    "audit_trail": (True, "the event log as audit trail in the UI"),
    "sync": (False, "syncing with other instances through a sync server"),
}
"""Every flag: its default and what it turns on."""

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_name(flag: str) -> str:
    """The environment variable of ``flag``."""
    return "PJAI_USE_LIVESTORE" if flag == "use_livestore" else f"PJAI_FLAG_{flag.upper()}"


def parse_bool(text: str, what: str) -> bool:
    """``true``/``false`` (and 1/0, yes/no, on/off) as a bool."""
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{what}={text!r} is not true or false")


@dataclass(frozen=True, slots=True)
class FlagState:
    """A flag's value and where it came from."""

    name: str
    value: bool
    source: Literal["environment", "file", "default"]
    description: str


class Flags:
    """Reads and sets the flags of one data directory."""

    def __init__(self, path: Path, environ: Mapping[str, str] | None = None) -> None:
        self.path = path
        self._environ = os.environ if environ is None else environ
        self._file: dict[str, bool] = {}
        self._mtime: float | None = None
        self.refresh()

    def refresh(self) -> bool:
        """Re-read ``flags.json`` if it changed; whether it did."""
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            changed = bool(self._file)
            self._file, self._mtime = {}, None
            return changed
        if mtime == self._mtime:
            return False
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{self.path} is not a flags file: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{self.path} must hold a JSON object of flag names to booleans")
        self._file = {k: v for k, v in data.items() if k in FLAGS and isinstance(v, bool)}
        self._mtime = mtime
        return True

    def state(self, name: str) -> FlagState:
        """The value of flag ``name`` and its source."""
        default, description = _known(name)
        raw = self._environ.get(env_name(name))
        if raw is not None:
            return FlagState(name, parse_bool(raw, env_name(name)), "environment", description)
        if name in self._file:
            return FlagState(name, self._file[name], "file", description)
        return FlagState(name, default, "default", description)

    def __getitem__(self, name: str) -> bool:
        return self.state(name).value

    def all(self) -> list[FlagState]:
        """Every flag's state."""
        return [self.state(name) for name in FLAGS]

    def set(self, name: str, value: bool) -> FlagState:
        """Write ``name = value`` to ``flags.json`` (atomically); returns the new state.

        An environment variable for the flag still takes precedence; the returned state
        says so.
        """
        _known(name)
        self.refresh()
        data = {**self._file, name: value}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        temporary.replace(self.path)
        self.refresh()
        return self.state(name)


def _known(name: str) -> tuple[bool, str]:
    try:
        return FLAGS[name]
    except KeyError:
        raise ConfigError(f"unknown flag {name!r}; flags are {', '.join(FLAGS)}") from None
