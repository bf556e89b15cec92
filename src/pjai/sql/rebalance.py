"""Moving personas to the shard the hash ring now gives them (after adding a shard)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, Table, select

from pjai.errors import ConfigError
from pjai.schema.event import Schema
from pjai.schema.tables import persona_column, personas
from pjai.schema.types import Progress, utc_now
from pjai.sql import journal
from pjai.sql.engine import redacted
from pjai.sql.shards import Shard, ShardSet

__all__ = ["Rebalanced", "check_placement", "misplaced", "rebalance"]


@dataclass(slots=True)
class Rebalanced:
    """What a rebalance moved."""

    personas: int = 0
    rows: int = 0
    moves: list[tuple[str, int, int]] = field(default_factory=list)
    """(persona id, from shard, to shard) for every persona moved."""


def misplaced(shards: ShardSet) -> list[tuple[str, Shard, Shard]]:
    """Personas stored on a shard other than the one the ring gives them."""
    found: list[tuple[str, Shard, Shard]] = []
    for shard in shards:
        with shard.writer.connection("listing personas") as conn:
            ids = conn.execute(select(personas.c.id)).scalars().all()
        for persona_id in ids:
            home = shards.for_persona(persona_id)
            if home.index != shard.index:
                found.append((persona_id, shard, home))
    return found


def _places(shards: ShardSet) -> dict[int, tuple[int, int] | None]:
    """Each shard's place and list length as last recorded (see :func:`check_placement`)."""
    places = {}
    for shard in shards:
        with shard.writer.connection("reading the shard's place") as conn:
            places[shard.index] = journal.shard_place(conn)
    return places


def _record_places(shards: ShardSet, only: set[int] | None = None) -> None:
    for shard in shards:
        if only is not None and shard.index not in only:
            continue
        with shard.writer.transaction("recording the shard's place") as tx:
            journal.set_shard_place(tx.conn, shard.index, len(shards), utc_now())


def check_placement(shards: ShardSet) -> None:
    """Refuse to work on shards used with another shard list (a shard left out would
    hide its personas; one added needs a rebalance), or where a persona is stored away
    from its ring shard. A database used for the first time records its place."""
    count = len(shards)
    places = _places(shards)
    for index, place in places.items():
        if place is not None and place != (index, count):
            url = redacted(shards.shards[index].url)
            raise ConfigError(
                f"shard {url} was shard {place[0] + 1} of {place[1]} when last used; this "
                f"list has it as shard {index + 1} of {count}. Give every shard, in the "
                "same order (PJAI_SQL_SHARDS); after adding shards at the end, run "
                "`pjai shards rebalance` first"
            )
    if new := {index for index, place in places.items() if place is None}:
        _record_places(shards, new)
    if count > 1 and (wrong := misplaced(shards)):
        persona_id, found, home = wrong[0]
        raise ConfigError(
            f"{len(wrong)} persona(s) are stored on another shard than this shard "
            f"list gives them (first: {persona_id!r} on shard {found.index}, "
            f"belongs on {home.index}); run `pjai shards rebalance` first"
        )


def rebalance(shards: ShardSet, schema: Schema, progress: Progress | None = None) -> Rebalanced:
    """Move every misplaced persona, with its rows and journal entries, to its shard.

    Run it while no PJai process writes to these shards. The shards' new places are
    recorded before anything moves: from then on PJai refuses to open with the old list
    (a shard would be left out) and with the new one until every persona is in place,
    so an interrupted run is finished by running it again, and nothing is written in
    between. Each persona is copied in one transaction on its new shard, replacing any
    partial copy from an interrupted run, while the transaction that then deletes it
    from the old shard holds its row (a process still writing with the old list waits,
    then finds it gone); the old shard keeps its journal, the history it applied.
    Shards added empty start at the others' checkpoint, since the rows they receive are
    complete up to there.
    """
    count = len(shards)
    for index, place in _places(shards).items():
        if place is not None and (place[0] != index or place[1] > count):
            url = redacted(shards.shards[index].url)
            raise ConfigError(
                f"shard {url} was shard {place[0] + 1} of {place[1]}; this list has it as "
                f"shard {index + 1} of {count}. A rebalance takes the shards in their "
                "order, with new ones added at the end: none left out"
            )
    marks = _checkpoints(shards)
    busy = {mark for index, mark in marks.items() if _journaled(shards.shards[index])}
    if len(busy) > 1:
        raise ConfigError(
            f"the shards are at different checkpoints ({sorted(busy)}): open PJai with the "
            "old shard list to let them catch up, then rebalance"
        )
    # Every shard at the mark before anything moves: an interrupted run leaves them
    # level, and running it again goes on where it stopped.
    mark = max(busy, default=0)
    for shard in shards:
        with shard.writer.transaction("aligning checkpoints") as tx:
            tx.advance(mark, utc_now())
    _record_places(shards)
    moves = misplaced(shards)
    result = Rebalanced()
    tables = schema.metadata.sorted_tables
    for done, (persona_id, source, target) in enumerate(moves, 1):
        with source.writer.transaction("moving a persona") as src:
            # Its row held until it is gone from here: a write to it waits, then fails.
            held = select(personas.c.id).where(personas.c.id == persona_id).with_for_update()
            src.conn.execute(held)
            rows = {t.name: _rows(src.conn, t, persona_id) for t in tables}
            entries = src.conn.execute(
                select(journal.journal).where(journal.journal.c.persona_id == persona_id)
            ).all()
            with target.writer.transaction("copying a persona to its shard") as tx:
                _delete(tx.conn, tables, persona_id)
                for table in tables:
                    if rows[table.name]:
                        tx.conn.execute(table.insert(), rows[table.name])
                present = journal.applied_ids(tx.conn, [e.event_id for e in entries])
                fresh = [e._asdict() for e in entries if e.event_id not in present]
                if fresh:
                    tx.conn.execute(journal.journal.insert(), fresh)
            _delete(src.conn, tables, persona_id)
        result.personas += 1
        result.rows += sum(len(r) for r in rows.values())
        result.moves.append((persona_id, source.index, target.index))
        if progress is not None:
            progress(done, len(moves))
    return result


def _checkpoints(shards: ShardSet) -> dict[int, int]:
    return {shard.index: shard.writer.checkpoint() for shard in shards}


def _journaled(shard: Shard) -> bool:
    with shard.writer.connection("reading the journal") as conn:
        return journal.count(conn) > 0


def _rows(conn: Connection, table: Table, persona_id: str) -> list[dict[str, object]]:
    column = table.c[persona_column(table.name)]
    return [dict(row._mapping) for row in conn.execute(select(table).where(column == persona_id))]


def _delete(conn: Connection, tables: list[Table], persona_id: str) -> None:
    for table in reversed(tables):
        conn.execute(table.delete().where(table.c[persona_column(table.name)] == persona_id))
