"""Whether upstream events commute with pending ones, judged from their operations.

A rebase rolls the pending events back, applies the upstream events and applies the
pending events again. When no upstream event touches a row that a pending event reads
or writes, and no pending event touches a row that an upstream event reads or writes,
the order makes no difference: the upstream events applied on top of the pending ones
leave the state a replay would, every event has the same effect, and the pending
events' changesets stay exact. The rebase can then leave the pending events in place.

An event's touches come from its materializer's operations, which depend on the event
alone (its payload, id and time), never on the state: the rows an update, check or
delete matches (its ``where``), an inserted row (its key and unique columns), the
parent row a foreign key needs, and the child rows a delete could trip over. Two
touches of one table meet unless a column both constrain has values that cannot be
equal. What is not understood (an event this version cannot decode, a value of a kind
not compared here) meets everything, so a doubt always means a full rebase.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ForeignKeyConstraint, Table, UniqueConstraint

from pjai.schema.event import Schema
from pjai.schema.ops import NOT_NULL, Delete, Insert, Op, Update
from pjai.schema.records import EventRecord

__all__ = ["Footprints", "Keyed", "Touch"]

_PLAIN = (str, int, float, bytes, bool)
"""Value types compared here: two of the same type that differ can never be equal in SQL."""


@dataclass(frozen=True, slots=True)
class Touch:
    """Rows of ``table`` an event reads or writes: those matching ``where`` (all if empty)."""

    table: str
    where: Mapping[str, Any]
    writes: bool


Keyed = tuple[tuple[Touch, tuple[str, ...] | None], ...]
"""An event's touches, each with the primary key it names (see :func:`_key`)."""


@dataclass(frozen=True, slots=True)
class _Reference:
    """A foreign key: ``child.columns`` refer to ``parent.keys``."""

    child: str
    columns: tuple[str, ...]
    parent: str
    keys: tuple[str, ...]


class Footprints:
    """Tells whether upstream events commute with a store's pending events.

    The pending events' touches are kept indexed between rebases (a store has thousands
    of pending events after a long time offline, and each rebase brings a few upstream
    ones), so that a check costs about the upstream events' touches, not the pending ones.
    """

    def __init__(self, schema: Schema) -> None:
        self._schema = schema
        tables: list[Table] = list(schema.metadata.sorted_tables)
        self._keys = {t.name: tuple(c.name for c in t.primary_key.columns) for t in tables}
        self._unique = {
            t.name: [
                tuple(c.name for c in u.columns)
                for u in t.constraints
                if isinstance(u, UniqueConstraint)
            ]
            + [(c.name,) for c in t.columns if c.unique]
            + [tuple(c.name for c in i.columns) for i in t.indexes if i.unique]
            for t in tables
        }
        references = [
            _Reference(
                t.name,
                tuple(e.parent.name for e in fk.elements),
                fk.referred_table.name,
                tuple(e.column.name for e in fk.elements),
            )
            for t in tables
            for fk in t.constraints
            if isinstance(fk, ForeignKeyConstraint)
        ]
        self._parents = {t.name: [r for r in references if r.child == t.name] for t in tables}
        self._children = {t.name: [r for r in references if r.parent == t.name] for t in tables}
        self._pending = _Index()

    def commute(self, upstream: Sequence[EventRecord], pending: Sequence[EventRecord]) -> bool:
        """Whether ``upstream`` can be applied on top of ``pending`` instead of under them."""
        index = self._pending
        index.keep({record.id for record in pending})
        for record in pending:
            if record.id not in index:
                index.add(record.id, self.touches(record))
        if index.unknown:
            return False
        for record in upstream:
            touches = self.touches(record)
            if touches is None or any(index.meets(touch, key) for touch, key in touches):
                return False
        return True

    def touches(self, record: EventRecord) -> Keyed | None:
        """The rows ``record`` touches, each with the key it names; ``None``: all rows."""
        if not self._schema.knows(record.name):
            return None
        try:
            ops = self._schema.materialize(record).ops
        except Exception:  # it does not apply at all, whatever the reason: a full rebase
            return None
        touches = [t for op in ops for t in self._touches(op)]
        keys = self._keys
        return tuple((t, _key(t, keys.get(t.table.removesuffix(_KEY), ()))) for t in touches)

    def _touches(self, op: Op) -> Iterable[Touch]:
        if isinstance(op, Insert):
            values = op.values
            yield Touch(op.table, values, True)  # the row as inserted, its key included
            key = self._keys.get(op.table, ())
            if key and all(values.get(c) is not None for c in key):
                # Two inserts of one key meet whatever their other columns hold (under a
                # name of their own: a check of the row must not meet every insert).
                yield Touch(f"{op.table}{_KEY}", {c: values[c] for c in key}, True)
            for columns in self._unique.get(op.table, ()):
                if all(values.get(c) is not None for c in columns):
                    yield Touch(op.table, {c: values[c] for c in columns}, True)
            for ref in self._parents.get(op.table, ()):
                yield from _parent(ref, values)
            return
        if isinstance(op, Update) and not op.values:
            yield Touch(op.table, op.where, False)  # a check
            return
        if isinstance(op, Update):
            # The row must be told apart before and after: columns it sets do not count.
            kept = {c: v for c, v in op.where.items() if c not in op.values}
            yield Touch(op.table, kept, True)
            changed = set(op.values)
            if any(changed.intersection(u) for u in self._unique.get(op.table, ())):
                yield Touch(op.table, {}, True)
            for ref in self._parents.get(op.table, ()):
                if changed.intersection(ref.columns):
                    yield from _parent(ref, {**kept, **op.values})
            for ref in self._children.get(op.table, ()):
                if changed.intersection(ref.keys):
                    yield Touch(ref.child, {}, True)
            return
        assert isinstance(op, Delete)
        yield Touch(op.table, op.where, True)
        for ref in self._children.get(op.table, ()):
            # Rows referring to a deleted row refuse the delete (or follow it).
            where = op.where
            if all(_plain(where.get(k)) for k in ref.keys):
                pairs = zip(ref.columns, ref.keys, strict=True)
                yield Touch(ref.child, {c: where[k] for c, k in pairs}, True)
            else:
                yield Touch(ref.child, {}, True)


def _parent(ref: _Reference, values: Mapping[str, Any]) -> Iterable[Touch]:
    """The parent row a foreign key of a written row needs (none when it is NULL)."""
    given = [values.get(c) for c in ref.columns]
    if any(c in values and values[c] is None for c in ref.columns):
        return
    if all(_plain(v) for v in given):
        yield Touch(ref.parent, dict(zip(ref.keys, given, strict=True)), False)
    else:
        yield Touch(ref.parent, {}, False)


def _plain(value: Any) -> bool:
    return isinstance(value, _PLAIN)


def _differ(a: Any, b: Any) -> bool:
    """Whether a column can never hold both ``a`` and ``b`` (``None``: IS NULL)."""
    if a is None or b is None:
        return (a is None) != (b is None) and a is not NOT_NULL and b is not NOT_NULL
    if a is NOT_NULL or b is NOT_NULL:
        return False
    return type(a) is type(b) and isinstance(a, _PLAIN) and a != b


def _meet(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether some row could match both ``where`` mappings."""
    if len(b) < len(a):
        a, b = b, a
    return not any(c in b and _differ(v, b[c]) for c, v in a.items())


_Pool = dict[str, dict[tuple[str, ...] | None, dict[str, list[Touch]]]]
"""Touches by table, then by the key they name (``None``: several rows), then by event."""


_KEY = " key"
"""The name of a table's inserted keys, apart from its rows (see ``_touches``)."""


class _Index:
    """The touches of a set of events, reads apart from writes, for quick meeting tests."""

    def __init__(self) -> None:
        self._events: dict[str, Keyed | None] = {}
        self._reads: _Pool = {}
        self._writes: _Pool = {}
        self.unknown = 0
        """How many of the events touch rows that cannot be told."""

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._events

    def add(self, event_id: str, touches: Keyed | None) -> None:
        """Index an event's touches (``None``: it may touch anything)."""
        self._events[event_id] = touches
        if touches is None:
            self.unknown += 1
            return
        for touch, key in touches:
            pool = self._writes if touch.writes else self._reads
            pool.setdefault(touch.table, {}).setdefault(key, {}).setdefault(event_id, [])
            pool[touch.table][key][event_id].append(touch)

    def keep(self, event_ids: set[str]) -> None:
        """Forget the events not in ``event_ids``."""
        for event_id in [i for i in self._events if i not in event_ids]:
            touches = self._events.pop(event_id)
            if touches is None:
                self.unknown -= 1
                continue
            for touch, key in touches:
                pool = self._writes if touch.writes else self._reads
                by_key = pool[touch.table]
                group = by_key.get(key)
                if group is not None:
                    group.pop(event_id, None)
                    if not group:
                        del by_key[key]

    def meets(self, touch: Touch, key: tuple[str, ...] | None) -> bool:
        """Whether ``touch`` (naming ``key``) meets an indexed touch, one of the two writing."""
        pools = (self._writes, self._reads) if touch.writes else (self._writes,)
        for pool in pools:
            by_key = pool.get(touch.table)
            if not by_key:
                continue
            if key is None:
                groups: Iterable[dict[str, list[Touch]]] = by_key.values()
            else:
                groups = [g for g in (by_key.get(key), by_key.get(None)) if g]
            for group in groups:
                for touches in group.values():
                    if any(_meet(touch.where, other.where) for other in touches):
                        return True
        return False


def _key(touch: Touch, columns: tuple[str, ...]) -> tuple[str, ...] | None:
    """The primary key ``touch`` names, if it names a whole one in text (PJai's ids).

    Keys of other types are not indexed: SQL may find values of two types equal.
    """
    values = tuple(touch.where.get(c) for c in columns)
    if columns and all(isinstance(v, str) for v in values):
        return cast(tuple[str, ...], values)
    return None
