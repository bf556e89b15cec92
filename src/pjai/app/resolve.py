"""What a person means by the id they typed: a whole id, its start, or a persona's name.

People copy ids from a listing or type a name; the interfaces pass what was typed here
and get the id, looked up as this instance sees the data (the store when it is on,
with its unconfirmed changes; else the SQL primary):

- a whole id is that id;
- for personas, a name (exactly as written, else ignoring case) is that persona;
- the start of an id is the one id that starts so.

Earlier rules win: ``ada`` is the persona whose id is ``ada`` before the one named Ada.
What matches several things is refused with the candidates (id and name); what matches
nothing, with what was looked for. No persona given means the active persona.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Table, func, select

from pjai.errors import QueryError
from pjai.hybrid import HybridDatabaseManager
from pjai.schema import bookmarks, conversations, memories, personas

__all__ = [
    "NO_ACTIVE_PERSONA",
    "Candidate",
    "active_persona_id",
    "bookmark_id",
    "conversation_id",
    "memory_id",
    "persona_id",
    "persona_scope",
]

LISTED = 10
"""At most this many candidates are named when what was typed matches more."""

NO_ACTIVE_PERSONA = (
    "no persona is active: activate one with `pjai persona activate NAME`, "
    "or name the persona (--persona NAME)"
)


@dataclass(frozen=True, slots=True)
class Candidate:
    """Something a typed reference could mean: its id, a name for people, its state."""

    id: str
    name: str
    deleted: bool = False
    active: bool = False

    def __str__(self) -> str:
        return f"{self.id} ({self.name})" if self.name else self.id


def _ambiguous(ref: str, what: str, found: Sequence[Candidate], more: bool) -> QueryError:
    listed = "; ".join(str(c) for c in found[:LISTED])
    tail = "; ..." if more or len(found) > LISTED else ""
    return QueryError(f"{ref!r} could be any of these {what}: {listed}{tail}; give more of the id")


# -- personas -----------------------------------------------------------------------


def _personas(manager: HybridDatabaseManager) -> list[Candidate]:
    store = manager.store
    if store is None:  # the repository reads every shard
        return [
            Candidate(p.id, p.name, p.deleted_at is not None, p.is_active)
            for p in manager.personas.list(include_deleted=True)
        ]
    c = personas.c
    rows = store.query(select(c.id, c.name, c.deleted_at, c.is_active).order_by(c.name, c.id))
    return [Candidate(r.id, r.name, r.deleted_at is not None, bool(r.is_active)) for r in rows]


def _match(ref: str, candidates: Sequence[Candidate], *, names: bool) -> list[Candidate]:
    """The candidates ``ref`` means, by the first rule that matches any."""
    rules: list[Callable[[Candidate], bool]] = [lambda c: c.id == ref]
    if names:
        folded = ref.casefold()
        rules += [lambda c: c.name == ref, lambda c: c.name.casefold() == folded]
    rules.append(lambda c: c.id.startswith(ref))
    for rule in rules:
        if found := [c for c in candidates if rule(c)]:
            return found
    return []


def active_persona_id(manager: HybridDatabaseManager) -> str:
    """The active persona's id, or :class:`~pjai.errors.QueryError` saying how to make one
    active."""
    active = [c for c in _personas(manager) if c.active and not c.deleted]
    if not active:
        raise QueryError(NO_ACTIVE_PERSONA)
    return active[0].id


def persona_id(manager: HybridDatabaseManager, ref: str | None, *, deleted: bool = False) -> str:
    """The id of the live persona ``ref`` names (id, name or start of an id); ``None`` is
    the active persona. With ``deleted``, among the deleted personas instead."""
    if ref is None:
        if deleted:
            raise QueryError("name the deleted persona")
        return active_persona_id(manager)
    if not ref.strip():
        raise QueryError("a persona cannot be named by empty text")
    everyone = _personas(manager)
    found = _match(ref, [c for c in everyone if c.deleted == deleted], names=True)
    if len(found) == 1:
        return found[0].id
    if found:
        raise _ambiguous(ref, "deleted personas" if deleted else "personas", found, False)
    others = _match(ref, [c for c in everyone if c.deleted != deleted], names=True)
    if deleted:
        reason = f"; persona {others[0]} is not deleted" if len(others) == 1 else ""
        raise QueryError(f"no deleted persona {ref!r}{reason}")
    hint = (
        f" (persona {others[0]} is deleted: `pjai persona restore {others[0].id}` brings it back)"
        if len(others) == 1
        else ""
    )
    raise QueryError(f"no persona {ref!r}{hint}")


def persona_scope(manager: HybridDatabaseManager, ref: str | None, *, every: bool) -> str | None:
    """The persona a command reads (``ref``, else the active one), or ``None`` for every
    persona when ``every``."""
    if every:
        if ref is not None:
            raise QueryError(f"give a persona ({ref!r}) or every persona, not both")
        return None
    if ref is None and not any(c.active and not c.deleted for c in _personas(manager)):
        raise QueryError(f"{NO_ACTIVE_PERSONA}, or ask for every persona (--all)")
    return persona_id(manager, ref)


# -- memories, bookmarks, conversations ---------------------------------------------


def _by_id(
    manager: HybridDatabaseManager,
    table: Table,
    ref: str,
    what: tuple[str, str],
    describe: Callable[[Any], str],
    live: Sequence[ColumnElement[bool]] = (),
) -> str:
    """The id in ``table`` that is ``ref`` or the only one starting with it; ``what``
    names one row and several."""
    if not ref.strip():
        raise QueryError(f"a {what[0]} cannot be named by empty text")
    c = table.c
    try:
        if manager.query(select(c.id).where(c.id == ref, *live)):
            return ref
        # substr, not LIKE: SQLite's LIKE ignores case, and ids are exact.
        start = func.substr(c.id, 1, len(ref)) == ref
        rows = manager.query(select(table).where(start, *live).order_by(c.id).limit(LISTED + 1))
    except QueryError:
        # Ad-hoc reads over several SQL shards with the store off: whole ids only.
        return ref
    if len(rows) == 1:
        return str(rows[0].id)
    if rows:
        found = [Candidate(r.id, describe(r)) for r in rows]
        raise _ambiguous(ref, what[1], found, len(rows) > LISTED)
    raise QueryError(f"no {what[0]} {ref!r}: give its id or the start of it")


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 40 else line[:39] + "…"


def memory_id(manager: HybridDatabaseManager, ref: str) -> str:
    """The id of the memory (live or deleted) that ``ref`` is or starts."""
    what = ("memory", "memories")
    return _by_id(manager, memories, ref, what, lambda r: _short(r.name or r.content))


def bookmark_id(manager: HybridDatabaseManager, ref: str) -> str:
    """The id of the live bookmark that ``ref`` is or starts."""
    live = [bookmarks.c.deleted_at.is_(None)]
    return _by_id(manager, bookmarks, ref, ("bookmark", "bookmarks"), lambda r: str(r.name), live)


def conversation_id(manager: HybridDatabaseManager, ref: str) -> str:
    """The id of the conversation that ``ref`` is or starts."""
    return _by_id(
        manager, conversations, ref, ("conversation", "conversations"), lambda r: _short(r.title)
    )
