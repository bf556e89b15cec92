"""What every backend can store: the limits event values obey beyond their declared types.

An event that validates must materialize on every store and SQL primary that may hold
it, or it would stop every instance that receives it. So besides its msgspec type:

- every integer field declares bounds, and those bounds fit 64 bits (a :class:`Schema`
  refuses an event type with an unbounded one); counts stored in ``Integer`` columns
  keep to 32 bits, the size of PostgreSQL's ``integer``;
- text holds no NUL character, which PostgreSQL cannot store in ``text``;
- a new event's arguments are at most :data:`MAX_ARGS_BYTES` of JSON, the most a
  sync server takes (the 1,000,000 characters a memory's content may have can be more
  bytes than that);
- a time lies between :data:`EARLIEST` and :data:`LATEST` in UTC, a day inside the
  range of Python's ``datetime`` (years 1 to 9999), so that it stays in range when
  converted to UTC or shown in any time zone; a time to encode has a UTC offset in whole
  minutes, the most JSON keeps.

Text that cannot be encoded as UTF-8 (a lone surrogate) is refused as the event is
encoded; arguments that are not UTF-8 are refused as they are decoded.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
from msgspec import inspect

__all__ = [
    "EARLIEST",
    "INT32_MAX",
    "INT64_MAX",
    "INT64_MIN",
    "JSON_ESCAPE",
    "LATEST",
    "MAX_ARGS_BYTES",
    "Problem",
    "Walk",
    "encoding_problem",
    "exact_time_problem",
    "text_problem",
    "time_problem",
    "walker",
]

INT32_MAX = 2**31 - 1
"""The largest value of an ``Integer`` column on PostgreSQL."""
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
"""The range of SQLite's ``INTEGER`` and PostgreSQL's ``bigint``."""

MAX_ARGS_BYTES = 2 * 1024 * 1024
"""The most JSON a new event's arguments may hold: as much as a sync server takes once
the sensitive fields are sealed (padded, base64), so that an event committed here can
reach every other instance."""

EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
"""The earliest time an event may carry."""
LATEST = datetime(9999, 12, 30, 23, 59, 59, 999_999, tzinfo=UTC)
"""The latest time an event may carry."""

JSON_ESCAPE = b"\\u"
"""JSON carries a NUL character only as the escape ``\\u0000``: arguments without a
``\\u`` escape need no look at their text."""

Problem = tuple[str, str]
"""A field path (dotted, list items by index) and what is wrong with its value."""

Check = Callable[[Any], str | None]
Checks = tuple[Check | None, Check | None]
"""The checks of strings and of datetimes."""
Walk = Callable[[Any], Problem | None]
"""Finds the first value of a payload that no backend could store, or ``None``."""


def time_problem(value: datetime) -> str | None:
    """Why ``value`` cannot be stored as an event time, or ``None``."""
    if EARLIEST <= value <= LATEST:
        return None
    return f"must lie between {EARLIEST.date()} and {LATEST.date()} in UTC"


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text by every backend (a NUL), or ``None``."""
    if "\x00" in value:
        return "must not contain the NUL character (U+0000)"
    return None


def encoding_problem(value: str) -> str | None:
    """Why ``value`` cannot be encoded as UTF-8 (a lone surrogate), or ``None``."""
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        return (
            f"is not valid Unicode text: character {exc.object[exc.start]!r} at "
            f"position {exc.start} is a lone surrogate"
        )
    return None


def exact_time_problem(value: datetime) -> str | None:
    """:func:`time_problem`, or why ``value``'s UTC offset cannot be kept exactly as JSON
    is written (offsets keep whole minutes)."""
    offset = value.utcoffset()
    if offset is None:
        return None  # a naive time: its type's own validation refuses it
    if offset.seconds % 60 or offset.microseconds:
        return (
            f"has a UTC offset with seconds ({offset}), which event times cannot keep; "
            "give it in UTC"
        )
    return time_problem(value)


def walker(
    event_type: type[msgspec.Struct],
    *,
    text: Check | None = text_problem,
    time: Check | None = time_problem,
) -> Walk:
    """A function finding the first unstorable value of an ``event_type`` payload.

    ``text`` checks every string (default: no NUL), ``time`` every datetime (default:
    within the limits); ``None`` skips them. Raises ``ValueError`` at once if the type
    declares an integer without bounds that fit 64 bits.
    """
    info = inspect.type_info(event_type)
    assert isinstance(info, inspect.StructType)
    visit = _struct(info, event_type.__name__, (text, time))
    return visit if visit is not None else _nothing


def _nothing(_value: Any) -> None:
    return None


# A visit returns the path below the value it was given (``""`` for the value itself)
# and the problem; paths are only built on the way back from a problem.


def _within(part: str, problem: Problem) -> Problem:
    path, reason = problem
    return (part + ("." + path if path and path[0] != "[" else path), reason)


def _node(t: inspect.Type, where: str, checks: Checks) -> Walk | None:
    """How to visit a value of type ``t``; ``None`` when nothing in it needs a look."""
    if isinstance(t, inspect.IntType):
        low = t.ge if t.ge is not None else (t.gt + 1 if t.gt is not None else None)
        high = t.le if t.le is not None else (t.lt - 1 if t.lt is not None else None)
        if low is None or high is None or low < INT64_MIN or high > INT64_MAX:
            raise ValueError(
                f"{where} is an integer without bounds within 64 bits; declare them "
                "(pjai.schema.fields) so that every backend can store it"
            )
        return None
    if isinstance(t, inspect.StrType):
        return _leaf(str, checks[0])
    if isinstance(t, inspect.DateTimeType):
        return _leaf(datetime, checks[1])
    if isinstance(t, inspect.StructType):
        return _struct(t, where, checks)
    if isinstance(t, inspect.ListType | inspect.SetType | inspect.FrozenSetType):
        return _items(_node(t.item_type, f"{where}[]", checks))
    if isinstance(t, inspect.DictType):
        return _mapping(
            _node(t.key_type, f"{where} key", checks), _node(t.value_type, where, checks)
        )
    if isinstance(t, inspect.UnionType):
        # Each member's visit only looks at values of its own kind.
        members = [v for m in t.types if (v := _node(m, where, checks)) is not None]
        return _first(members) if members else None
    if isinstance(t, inspect.Metadata):
        return _node(t.type, where, checks)
    if isinstance(t, inspect.FloatType | inspect.BoolType | inspect.NoneType | inspect.LiteralType):
        return None
    raise ValueError(f"{where} has type {t!r}, which PJai's event limits do not cover")


class _Leaf:
    """The visit of a value checked as a whole when it is a ``kind`` (a string, a time)."""

    __slots__ = ("check", "kind")

    def __init__(self, kind: type, check: Check) -> None:
        self.kind = kind
        self.check = check

    def __call__(self, value: Any) -> Problem | None:
        problem = self.check(value) if isinstance(value, self.kind) else None
        return None if problem is None else ("", problem)


def _leaf(kind: type, check: Check | None) -> Walk | None:
    return None if check is None else _Leaf(kind, check)


def _struct(t: inspect.StructType, where: str, checks: Checks) -> Walk | None:
    # Fields checked as a whole are checked straight from the struct: most payloads
    # are flat, and this is on the path of every commit.
    leaves: list[tuple[str, type, Check]] = []
    nested: list[tuple[str, Walk]] = []
    for f in t.fields:
        node = _node(f.type, f"{where}.{f.name}", checks)
        if isinstance(node, _Leaf):
            leaves.append((f.name, node.kind, node.check))
        elif node is not None:
            nested.append((f.name, node))
    if not leaves and not nested:
        return None

    def visit(value: Any) -> Problem | None:
        if not isinstance(value, msgspec.Struct):
            return None
        for name, kind, check in leaves:
            field = getattr(value, name)
            if isinstance(field, kind) and (reason := check(field)) is not None:
                return (name, reason)
        for name, walk in nested:
            problem = walk(getattr(value, name))
            if problem is not None:
                return _within(name, problem)
        return None

    return visit


def _items(item: Walk | None) -> Walk | None:
    if item is None:
        return None

    def visit(value: Any) -> Problem | None:
        if isinstance(value, list | tuple | set | frozenset):
            for index, element in enumerate(value):
                problem = item(element)
                if problem is not None:
                    return _within(f"[{index}]", problem)
        return None

    return visit


def _mapping(key: Walk | None, val: Walk | None) -> Walk | None:
    if key is None and val is None:
        return None

    def visit(value: Any) -> Problem | None:
        if not isinstance(value, dict):
            return None
        for k, v in value.items():
            problem = (key(k) if key is not None else None) or (
                _within(f"[{k!r}]", p) if val is not None and (p := val(v)) else None
            )
            if problem is not None:
                return problem
        return None

    return visit


def _first(members: list[Walk]) -> Walk:
    if len(members) == 1:
        return members[0]

    def visit(value: Any) -> Problem | None:
        for member in members:
            problem = member(value)
            if problem is not None:
                return problem
        return None

    return visit
