"""Feature flags: the reactive store switch and syncing.

A flag's value comes from its environment variable when that is set (the operator's
override, e.g. ``PJAI_USE_LIVESTORE=false``), else from ``flags.json`` in the data
directory (written by :meth:`Flags.set` and ``pjai flags set``), else its default.
Names in ``flags.json`` that this PJai does not know (flags of another version) are
ignored, listed by :attr:`Flags.unknown`, and kept when the file is written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pjai.errors import ConfigError
from pjai.files import read_json, replace_text

__all__ = ["FLAGS", "FlagState", "Flags"]

FLAGS: dict[str, tuple[bool, str]] = {
    "use_livestore": (True, "the reactive store; off: commands write the SQL primary directly"),
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
        self._other: dict[str, object] = {}
        self._mtime: float | None = None
        self.refresh()

    def refresh(self) -> bool:
        """Re-read ``flags.json`` if it changed; whether it did."""
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            return self._gone()
        if mtime == self._mtime:
            return False
        try:
            data = read_json(self.path)
        except FileNotFoundError:  # removed since (unset its last flag): as if never there
            return self._gone()
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{self.path} is not a flags file: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{self.path} must hold a JSON object of flag names to booleans")
        for name, value in data.items():
            if name in FLAGS and not isinstance(value, bool):
                raise ConfigError(
                    f"{self.path}: flag {name!r} must be true or false, got "
                    f"{json.dumps(value)}; correct it or remove it"
                )
        self._take(data, mtime)
        return True

    def _gone(self) -> bool:
        changed = bool(self._file)
        self._file, self._other, self._mtime = {}, {}, None
        return changed

    @property
    def unknown(self) -> list[str]:
        """Names in ``flags.json`` that are not flags of this PJai; they do nothing."""
        return sorted(self._other)

    def stored(self, name: str) -> bool | None:
        """The value ``flags.json`` holds for flag ``name``, or ``None`` if it holds none."""
        _known(name)
        return self._file.get(name)

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
        self._write({**self._other, **self._file, name: value})
        return self.state(name)

    def unset(self, name: str) -> FlagState:
        """Remove ``name`` from ``flags.json`` (atomically): its default applies again.

        A file left holding nothing is removed.
        """
        _known(name)
        self.refresh()
        kept = {k: v for k, v in self._file.items() if k != name}
        if kept or self._other:
            self._write({**self._other, **kept})
        else:
            self.path.unlink(missing_ok=True)
            self._take({}, None)
        return self.state(name)

    def _write(self, data: dict[str, object]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        replace_text(self.path, json.dumps(data, indent=2, sort_keys=True) + "\n")
        # Taken from what was written, not re-read: a write within the file system's
        # time resolution leaves the modification time as it was.
        self._take(data, self.path.stat().st_mtime)

    def _take(self, data: dict[str, object], mtime: float | None) -> None:
        self._file = {k: v for k, v in data.items() if k in FLAGS and isinstance(v, bool)}
        self._other = {k: v for k, v in data.items() if k not in FLAGS}
        self._mtime = mtime


def _known(name: str) -> tuple[bool, str]:
    try:
        return FLAGS[name]
    except KeyError:
        raise ConfigError(f"unknown flag {name!r}; flags are {', '.join(FLAGS)}") from None
