"""Feature flags as an interface shows and sets them; every change is audited.

Setting a flag writes ``flags.json`` and commits a ``v1.ConfigChanged`` through the
manager, which opens under the new value: switching the store off, the record goes
to SQL's journal (the store takes it from there when it is back on); making a new
directory a synced one, to the synced store's log. When the record cannot be
committed, the flag is put back as it was, so that no change goes unrecorded; only a
process killed between writing the file and committing the record leaves the flag
changed without its record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pjai.app.datadir import DataDir
from pjai.hybrid.flags import FLAGS, FlagState, parse_bool
from pjai.schema import ConfigChanged

__all__ = ["FlagChange", "FlagReport", "flag_states", "set_flag"]


@dataclass(frozen=True, slots=True)
class FlagReport:
    """Every flag's state, and the names in the flags file that are not flags."""

    states: list[FlagState]
    unknown: list[str]


@dataclass(frozen=True, slots=True)
class FlagChange:
    """What :func:`set_flag` did.

    ``old`` is the value the flags file (or the default) gave before; ``recorded``
    whether a change was written and audited (setting the value the file already
    holds changes nothing). ``state`` is the flag now, which an environment variable
    may still override.
    """

    state: FlagState
    old: bool
    recorded: bool


def flag_states(data_dir: DataDir) -> FlagReport:
    """Every flag's value and where it comes from."""
    flags = data_dir.flags()
    return FlagReport(flags.all(), flags.unknown)


def set_flag(
    data_dir: DataDir, name: str, value: bool | str, *, source: str = "api", **options: Any
) -> FlagChange:
    """Set flag ``name`` in the flags file and record the change in the event log.

    ``value`` is a bool or text (``true``/``false``, ``on``/``off``...); ``source``
    says where the change was made (``pjai flags set``); ``options`` go to the
    manager (``progress``...). Raises :class:`~pjai.errors.ConfigError` for an
    unknown flag or value, or at once while an import or a backup goes into the
    directory (:meth:`~pjai.app.DataDir.writing`), and the manager's error, with the
    flag left as it was, when the change cannot be recorded.
    """
    wanted = parse_bool(value, name) if isinstance(value, str) else value
    with data_dir.writing():  # an import going into the directory would take the file
        flags = data_dir.flags()
        stored = flags.stored(name)
        old = FLAGS[name][0] if stored is None else stored
        if stored == wanted:
            return FlagChange(flags.state(name), old, recorded=False)
        flags.set(name, wanted)
        try:
            with data_dir.open(**options) as manager:
                change = ConfigChanged(key=f"flags.{name}", old=old, new=wanted, source=source)
                manager.commit(change)
        except BaseException as exc:
            if stored is None:
                flags.unset(name)
            else:
                flags.set(name, stored)
            exc.add_note(f"flag {name} was left {str(old).lower()}: its change was not recorded")
            raise
        return FlagChange(flags.state(name), old, recorded=True)
