"""Reads for the audit trail: the store's event log, filtered and a page at a time, how
many events a filter selects, one event, the conflicts a sync lost, and the
configuration changes.

Everything is read from the store's own log (``pjai_eventlog``, with the events a
rebase rejected in ``pjai_rejected``), so these live queries run on the store itself
and, unlike those of ``manager.live``, end with it: with the store off they raise
:class:`~pjai.errors.QueryError` saying so.

The log is not a declared table, so the queries are SQL text; each is built from the
filter's parts with bound parameters only. A filter reads:

- ``persona_id``: ``json_extract(args, '$.persona_id')`` (every event about a persona
  names it so);
- ``text``: a case-insensitive (ASCII) ``LIKE '%text%'`` over the arguments' JSON
  text, for the text as JSON writes it (a quote, a backslash or a line break escaped):
  a scan of the log, not a full-text index, and it finds what the arguments hold as
  stored (a field the codec encrypts is not searchable);
- ``outcomes``: the log's ``status`` column for confirmed and pending events; rejected
  events are the rows of the rejected table.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from pjai.app.audit import ConfigChange
from pjai.app.reads.store_only import store_of
from pjai.errors import QueryError
from pjai.hybrid import HybridDatabaseManager
from pjai.schema import ConfigChanged
from pjai.schema.records import EventStatus
from pjai.schema.tables import personas
from pjai.schema.types import from_iso, to_iso
from pjai.store import LiveQuery, Row
from pjai.store.log import LOG_TABLE, REJECTED_TABLE

__all__ = [
    "OUTCOMES",
    "STORE_OFF",
    "AuditFilter",
    "Winner",
    "change_of",
    "client_ids",
    "config_changes",
    "conflicts",
    "count",
    "event",
    "page",
    "payload_text",
    "persona_names",
    "winner_of",
]

STORE_OFF = "the audit trail reads the store's log; the store is off"
"""Why the audit trail shows nothing while the reactive store is switched off."""

OUTCOMES: tuple[EventStatus, ...] = ("confirmed", "pending", "rejected")
"""Where an event can stand, as the outcome filter offers them."""

_COLUMNS = "global_seq, client_seq, event_id, name, args, client_id, session_id, at, status, error"


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which events of the log to show; an empty part selects every event.

    ``since`` and ``until`` bound the time the event was committed (inclusive);
    ``outcomes`` is a subset of :data:`OUTCOMES`; ``text`` is searched in the
    arguments (see the module docstring).
    """

    persona_id: str | None = None
    names: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    client_id: str | None = None
    outcomes: tuple[EventStatus, ...] = ()
    text: str = ""


def _like(text: str) -> str:
    """The ``LIKE`` pattern finding ``text`` inside JSON: the text as JSON writes it
    (the arguments are JSON without ASCII escapes), its backslashes and wildcards
    escaped with a backslash."""
    written = json.dumps(text, ensure_ascii=False)[1:-1]
    escaped = written.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _arms(where: AuditFilter) -> tuple[list[str], dict[str, Any]]:
    """One ``SELECT ... WHERE ...`` per table the filter reads, and their parameters."""
    conditions: list[str] = []
    params: dict[str, Any] = {}
    if where.persona_id is not None:
        conditions.append("json_extract(args, '$.persona_id') = :persona")
        params["persona"] = where.persona_id
    if where.names:
        keys = [f"name{i}" for i in range(len(where.names))]
        conditions.append(f"name IN ({', '.join(':' + k for k in keys)})")
        params.update(zip(keys, where.names, strict=True))
    if where.since is not None:
        conditions.append("at >= :since")
        params["since"] = to_iso(where.since)
    if where.until is not None:
        conditions.append("at <= :until")
        params["until"] = to_iso(where.until)
    if where.client_id is not None:
        conditions.append("client_id = :client")
        params["client"] = where.client_id
    if where.text.strip():
        conditions.append("args LIKE :text ESCAPE '\\'")
        params["text"] = _like(where.text.strip())
    outcomes = set(where.outcomes or OUTCOMES)
    arms: list[str] = []
    live = sorted(outcomes - {"rejected"})
    if live:
        log_conditions = list(conditions)
        if len(live) == 1:
            log_conditions.append("status = :status")
            params["status"] = live[0]
        arms.append(_select(LOG_TABLE, log_conditions))
    if "rejected" in outcomes:
        arms.append(_select(REJECTED_TABLE, conditions))
    return arms, params


def _select(table: str, conditions: list[str]) -> str:
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    # ``lost`` puts a rejected event after the live one at its position.
    lost = int(table == REJECTED_TABLE)
    return f"SELECT {_COLUMNS}, {lost} AS lost FROM {table}{where}"


def page(
    manager: HybridDatabaseManager, where: AuditFilter, *, limit: int = 25, offset: int = 0
) -> LiveQuery:
    """One page of the events ``where`` selects, newest first (by global position;
    a rejected event sits where the rebase that rejected it would have put it).

    Rows: ``global_seq, client_seq, event_id, name, args, client_id, session_id, at,
    status, error`` (``session_id`` is ``plugin:NAME@VERSION`` for what a plugin's run
    caused).
    Newest first walks the log's key backwards and stops at the page's end, so a page
    costs little however long the log is (a narrow filter reads further).
    """
    arms, params = _arms(where)
    if not arms:
        raise QueryError("the outcome filter selects nothing")
    query = (
        " UNION ALL ".join(arms)
        + " ORDER BY global_seq DESC, client_seq DESC, lost, event_id LIMIT :limit OFFSET :offset"
    )
    return store_of(manager, STORE_OFF).live(query, {**params, "limit": limit, "offset": offset})


def count(manager: HybridDatabaseManager, where: AuditFilter) -> LiveQuery:
    """How many events ``where`` selects (one row, ``n``)."""
    arms, params = _arms(where)
    counts = [f"(SELECT count(*) FROM ({arm}))" for arm in arms] or ["0"]
    return store_of(manager, STORE_OFF).live(f"SELECT {' + '.join(counts)} AS n", params)


def event(manager: HybridDatabaseManager, event_id: str) -> LiveQuery:
    """One event of the log, live or rejected (no row if the log has none; the live
    one first if both have it)."""
    match = ["event_id = :id"]
    query = f"{_select(LOG_TABLE, match)} UNION ALL {_select(REJECTED_TABLE, match)} ORDER BY lost"
    return store_of(manager, STORE_OFF).live(query, {"id": event_id})


def conflicts(manager: HybridDatabaseManager, *, limit: int = 50) -> LiveQuery:
    """The newest ``limit`` events a sync rejected, with the reasons (rows as
    :func:`page` gives them; :func:`winner_of` reads the event that won)."""
    query = (
        f"SELECT {_COLUMNS} FROM {REJECTED_TABLE} ORDER BY global_seq DESC, rowid DESC LIMIT :limit"
    )
    return store_of(manager, STORE_OFF).live(query, {"limit": limit})


@dataclass(frozen=True, slots=True)
class Winner:
    """The event that won a conflict, as the rejection's reason names it."""

    name: str
    event_id: str
    position: str
    client_id: str


_WINNER = re.compile(
    r"\(conflict: (?P<name>\S+) (?P<id>\S+) at (?P<position>\S+) from client (?P<client>\S+) "
)


def winner_of(reason: str | None) -> Winner | None:
    """The winner a rejection's reason names, as
    :func:`pjai.store.conflicts.explain` words it; ``None`` when no event won (the
    event was refused for another reason)."""
    found = _WINNER.search(reason or "")
    if found is None:
        return None
    return Winner(found["name"], found["id"], found["position"], found["client"])


def config_changes(manager: HybridDatabaseManager, *, limit: int = 50) -> LiveQuery:
    """The newest ``limit`` configuration changes of the live history, rejected ones
    left out as :func:`pjai.app.config_changes` leaves them (read each row with
    :func:`change_of`)."""
    query = (
        f"SELECT {_COLUMNS} FROM {LOG_TABLE} WHERE name = :name "
        "ORDER BY global_seq DESC LIMIT :limit"
    )
    return store_of(manager, STORE_OFF).live(query, {"name": ConfigChanged.NAME, "limit": limit})


def change_of(manager: HybridDatabaseManager, row: Row) -> ConfigChange:
    """A row of :func:`config_changes` as the change it records."""
    change = manager.schema.decode(row.name, row.args, event_id=row.event_id)
    assert isinstance(change, ConfigChanged)
    return ConfigChange(
        row.event_id,
        int(row.global_seq),
        from_iso(row.at),
        row.client_id,
        change.key,
        change.old,
        change.new,
        change.source,
        change.persona_id,
    )


def payload_text(manager: HybridDatabaseManager, event_id: str, name: str, args: str) -> str:
    """An event's arguments as readable JSON (through the schema's codec), indented."""
    clear = manager.schema.codec.unseal(event_id, name, args.encode())
    return json.dumps(json.loads(clear), indent=2, ensure_ascii=False, sort_keys=True)


def persona_names(manager: HybridDatabaseManager) -> dict[str, str]:
    """Every persona's name by id, deleted ones too (their history stays in the log)."""
    c = personas.c
    rows = manager.query(select(c.id, c.name).order_by(c.name, c.id))
    return {r.id: r.name for r in rows}


def client_ids(manager: HybridDatabaseManager) -> list[str]:
    """The installations that made events of the log (a plain read: it scans the log)."""
    query = (
        f"SELECT client_id FROM {LOG_TABLE} UNION SELECT client_id FROM {REJECTED_TABLE} "
        "ORDER BY client_id"
    )
    return [r.client_id for r in store_of(manager, STORE_OFF).query(query)]
