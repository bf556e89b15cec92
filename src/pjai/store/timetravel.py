"""Time travel: the state as of any position of the event log, and what changed between two.

:func:`state_at` replays the log up to a global position into a scratch in-memory store
with the store's own materializers. The log records each event's outcome, so the replay
applies in bulk the events that applied and skips the others (:meth:`Store.load`); if
the outcomes do not hold, it replays event by event as a rebuild does. Either way the
state seen there is exactly the one the store had after that event.
:func:`diff` compares two such states table by table, row by primary key.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pjai.errors import QueryError
from pjai.schema.records import LogEntry
from pjai.store.damage import Salvage
from pjai.store.sqlite import ENVIRONMENT_ERRORS
from pjai.store.store import Store

__all__ = [
    "ChangedRow",
    "StateDiff",
    "TableDiff",
    "compare",
    "diff",
    "head_position",
    "state_at",
]

log = logging.getLogger(__name__)

Key = tuple[Any, ...]
Values = dict[str, Any]


def head_position(store: Store) -> int:
    """The global position of ``store``'s last event (0 for an empty log)."""
    return store.head.global_seq


def _check_position(store: Store, position: int) -> None:
    head = head_position(store)
    if isinstance(position, bool) or not isinstance(position, int):
        raise QueryError(f"a position is a whole number within 0..{head}, got {position!r}")
    if not 0 <= position <= head:
        raise QueryError(
            f"position {position} is outside the event log: choose one within 0..{head}"
        )


def state_at(store: Store, position: int, *, indexes: bool = True) -> Store:
    """A new in-memory store holding the state ``store`` had after the event at
    ``position``; 0 is the empty state. For reading: the caller closes it.

    Events that did not apply in ``store`` do not apply in the copy either. Without
    ``indexes`` the copy has its tables and primary keys only (enough to read by key
    and to :func:`compare`), which saves a tenth of the time. Raises
    :class:`~pjai.errors.QueryError` for a position outside ``0..head``.
    """
    _check_position(store, position)
    with _collector_paused():
        with store.exclusive():
            entries = _entries_up_to(store, position)
        scratch = Store.memory(schema=store.schema)
        try:
            scratch.load(entries, indexes=indexes)
        except Exception as exc:
            scratch.close()
            if isinstance(exc, ENVIRONMENT_ERRORS):
                raise
            log.warning("the log's recorded outcomes do not replay (%s); replaying one by one", exc)
            return _replayed(store, entries)
        except BaseException:
            scratch.close()
            raise
    return scratch


@contextmanager
def _collector_paused() -> Iterator[None]:
    """A replay keeps every decoded event alive until it ends; the cyclic garbage
    collector would walk them again and again (a tenth of the time), so it waits."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _replayed(store: Store, entries: list[LogEntry]) -> Store:
    """``entries`` replayed one by one, each event's outcome decided anew."""
    scratch = Store.memory(schema=store.schema)
    try:
        if entries:
            # The scratch store is standalone: every event in it counts as applied history.
            confirmed = [LogEntry(e.record, "confirmed", e.error) for e in entries]
            scratch.restore(Salvage(meta={}, entries=confirmed))
    except BaseException:
        scratch.close()
        raise
    return scratch


def _entries_up_to(store: Store, position: int) -> list[LogEntry]:
    entries: list[LogEntry] = []
    if position == 0:
        return entries
    for entry in store.events():
        if entry.record.position.global_seq > position:
            break
        entries.append(entry)
    return entries


@dataclass(frozen=True, slots=True)
class ChangedRow:
    """A row present at both positions whose values differ: only the changed columns,
    each with its value before and after."""

    key: Key
    changes: dict[str, tuple[Any, Any]]


@dataclass(frozen=True, slots=True)
class TableDiff:
    """What changed in one table: rows added, removed (their full values) and changed."""

    table: str
    key_columns: tuple[str, ...]
    added: list[Values] = field(default_factory=list)
    removed: list[Values] = field(default_factory=list)
    changed: list[ChangedRow] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Whether nothing changed in the table."""
        return not (self.added or self.removed or self.changed)


@dataclass(frozen=True, slots=True)
class StateDiff:
    """The difference between the states at positions ``before`` and ``after``, per
    table (tables without changes are left out)."""

    before: int
    after: int
    tables: dict[str, TableDiff]

    @property
    def empty(self) -> bool:
        """Whether the two states are equal."""
        return not self.tables


def diff(store: Store, a: int, b: int | None = None) -> StateDiff:
    """What changed in ``store``'s state from position ``a`` to position ``b`` (the head
    when ``None``): per table, rows added, removed and changed, by primary key.

    ``a`` may come after ``b``: the diff then goes backwards in time.
    """
    head = head_position(store)
    b = head if b is None else b
    _check_position(store, a)
    _check_position(store, b)
    with _state(store, a) as first, _state(store, b) as second:
        return compare(first, second, a, b)


def compare(before: Store, after: Store, a: int, b: int) -> StateDiff:
    """The diff from state ``before`` (at position ``a``) to state ``after`` (at ``b``):
    for a caller that holds both states already (one from :func:`state_at`, say)."""
    tables: dict[str, TableDiff] = {}
    for table in after.schema.metadata.sorted_tables:
        keys = tuple(c.name for c in table.primary_key.columns)
        found = _table_diff(
            table.name, keys, _rows(before, table.name, keys), _rows(after, table.name, keys)
        )
        if not found.empty:
            tables[table.name] = found
    return StateDiff(a, b, tables)


@contextmanager
def _state(store: Store, position: int) -> Iterator[Store]:
    """The state at ``position``: the store itself at its head, else a scratch copy."""
    if position == head_position(store):
        yield store
        return
    scratch = state_at(store, position)
    try:
        yield scratch
    finally:
        scratch.close()


def _rows(store: Store, table: str, keys: tuple[str, ...]) -> dict[Key, Values]:
    order = ", ".join(f'"{k}"' for k in keys) or "rowid"
    rows = store.query(f'SELECT * FROM "{table}" ORDER BY {order}')
    found: dict[Key, Values] = {}
    for row in rows:
        values = row._asdict()
        key = tuple(values[k] for k in keys) if keys else tuple(values.values())
        found[key] = values
    return found


def _table_diff(
    name: str, keys: tuple[str, ...], before: dict[Key, Values], after: dict[Key, Values]
) -> TableDiff:
    found = TableDiff(name, keys)
    for key, values in after.items():
        old = before.get(key)
        if old is None:
            found.added.append(values)
        elif old != values:
            changes = {c: (old[c], v) for c, v in values.items() if old.get(c) != v}
            found.changed.append(ChangedRow(key, changes))
    found.removed.extend(values for key, values in before.items() if key not in after)
    return found
