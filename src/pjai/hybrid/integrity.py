"""Integrity: compare the store with the SQL primary, per table and per persona.

The store file is first checked page by page (``PRAGMA quick_check``); a table whose
rows cannot all be read is reported as damaged, with the rows whose text is unreadable.

Each side is scanned once in storage order. Per persona it counts rows and adds up a
64-bit hash of each row, a sum that does not depend on row order, so neither side
sorts. Personas whose count or sum differ are read again, by persona, to name the rows
and columns that differ. Where both sides are SQLite they store identical values and
raw rows are hashed; with PostgreSQL both sides are read as Python values, JSON
columns encoded canonically. Hashes are Python's: they compare the two sides within
one run, not across runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
from sqlalchemy import Table

from pjai.errors import ConfigError, StoreCorruptError
from pjai.schema.event import Schema
from pjai.schema.types import JsonDocument, Progress
from pjai.sql.rebalance import misplaced
from pjai.sql.shards import ShardSet
from pjai.store import Store

__all__ = ["PersonaDiff", "RowDiff", "TableReport", "VerifyReport", "verify"]

MAX_ROWS_NAMED = 20

_encode = msgspec.json.Encoder(order="sorted").encode


@dataclass(frozen=True, slots=True)
class RowDiff:
    """A row that is not the same on both sides."""

    key: str
    problem: str
    columns: list[str] = field(default_factory=list)


@dataclass(slots=True)
class PersonaDiff:
    """A persona whose rows of one table differ."""

    persona_id: str
    store_rows: int
    sql_rows: int
    rows: list[RowDiff] = field(default_factory=list)


@dataclass(slots=True)
class TableReport:
    """One table on both sides."""

    table: str
    store_rows: int = 0
    sql_rows: int = 0
    store_hash: str = ""
    sql_hash: str = ""
    personas: list[PersonaDiff] = field(default_factory=list)
    damaged: str | None = None
    """Why the store's rows of this table could not all be read, if they could not."""
    unreadable: list[RowDiff] = field(default_factory=list)
    """Store rows whose text cannot be read back (the first few)."""

    @property
    def equal(self) -> bool:
        """Whether the table holds the same rows on both sides."""
        return (
            self.damaged is None
            and self.store_hash == self.sql_hash
            and self.store_rows == self.sql_rows
        )


@dataclass(slots=True)
class VerifyReport:
    """The outcome of :func:`verify`.

    ``misplaced`` lists personas stored on a shard the hash ring does not give them
    (as ``(persona id, shard it is on, shard it belongs to)``): reads by persona would
    miss them until ``pjai shards rebalance`` moves them.
    """

    tables: list[TableReport]
    seconds: float
    misplaced: list[tuple[str, int, int]] = field(default_factory=list)
    store_damage: list[str] = field(default_factory=list)
    """What SQLite found wrong with the store file's pages (``PRAGMA quick_check``)."""

    @property
    def equal(self) -> bool:
        """Whether the store file is sound, every table matches and every persona is
        on its shard."""
        return (
            not self.store_damage
            and not self.misplaced
            and all(table.equal for table in self.tables)
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "equal": self.equal,
            "seconds": round(self.seconds, 3),
            "store_damage": self.store_damage,
            "misplaced": [
                {"persona_id": p, "on_shard": on, "belongs_to": home}
                for p, on, home in self.misplaced
            ],
            "tables": [
                {
                    "table": t.table,
                    "equal": t.equal,
                    "store_rows": t.store_rows,
                    "sql_rows": t.sql_rows,
                    "store_hash": t.store_hash,
                    "sql_hash": t.sql_hash,
                    "damaged": t.damaged,
                    "unreadable": [
                        {"key": r.key, "problem": r.problem, "columns": r.columns}
                        for r in t.unreadable
                    ],
                    "personas": [
                        {
                            "persona_id": p.persona_id,
                            "store_rows": p.store_rows,
                            "sql_rows": p.sql_rows,
                            "rows": [
                                {"key": r.key, "problem": r.problem, "columns": r.columns}
                                for r in p.rows
                            ],
                        }
                        for p in t.personas
                    ],
                }
                for t in self.tables
            ],
        }


Row = tuple[Any, ...]
Sums = dict[str, list[int]]
"""Per persona: ``[row count, sum of row hashes mod 2**64]``."""

_MASK = (1 << 64) - 1


def _layout(table: Table) -> tuple[str, list[str]]:
    persona = "id" if table.name == "personas" else "persona_id"
    return persona, [c.name for c in table.columns]


def _canonical(table: Table) -> Callable[[Row], Row]:
    """Typed rows made hashable and equal across backends: JSON columns as sorted text.

    Timestamps need nothing: aware datetimes of the same instant are equal and hash
    alike whatever their time zone object, as do ``True`` and ``1``.
    """
    json_columns = [i for i, c in enumerate(table.columns) if isinstance(c.type, JsonDocument)]

    def canonical(row: Row) -> Row:
        values = list(row)
        for i in json_columns:
            values[i] = _encode(values[i])
        return tuple(values)

    return canonical


def _select(table: Table, where: str = "") -> str:
    names = ", ".join(f'"{c.name}"' for c in table.columns)
    return f'SELECT {names} FROM "{table.name}"{where}'


def _store_rows(
    store: Store, table: Table, *, raw: bool, persona: str | None = None
) -> Iterator[Row]:
    column, _ = _layout(table)
    if persona is None:
        rows = store.stream(_select(table), typed=not raw)
    else:
        quoted = persona.replace("'", "''")
        rows = store.stream(_select(table, f" WHERE \"{column}\" = '{quoted}'"), typed=not raw)
    return rows if raw else map(_canonical(table), rows)


def _sql_rows(
    shards: ShardSet, table: Table, *, raw: bool, persona: str | None = None
) -> Iterator[Row]:
    column, _ = _layout(table)
    canonical = _canonical(table)
    sealer = shards.sealer
    sealed = [
        (i, c.name)
        for i, c in enumerate(table.columns)
        if sealer and c.name in sealer.columns.get(table.name, ())
    ]
    if sealer is not None and sealed:
        plain = canonical
        owner = [c.name for c in table.columns].index(column)  # the row's persona

        def canonical(row: Row) -> Row:
            values = list(row)
            for i, name in sealed:
                values[i] = sealer.open_value(table.name, name, values[i], values[owner])
            return plain(tuple(values))

    for shard in shards:
        postgres = shard.engine.dialect.name == "postgresql"
        mark = "%s" if postgres else "?"
        where = "" if persona is None else f' WHERE "{column}" = {mark}'
        with shard.writer.connection(f"reading {table.name} for verify") as conn:
            dbapi = conn.connection.driver_connection
            assert dbapi is not None
            # A named (server-side) cursor streams PostgreSQL rows instead of loading all.
            cursor = dbapi.cursor(name=f"pjai_verify_{table.name}") if postgres else dbapi.cursor()
            try:
                cursor.execute(_select(table, where), () if persona is None else (persona,))
                while batch := cursor.fetchmany(10_000):
                    yield from (map(tuple, batch) if raw else map(canonical, batch))
            finally:
                cursor.close()


def _sums(rows: Iterator[Row], persona_index: int) -> Sums:
    sums: Sums = {}
    for row in rows:
        slot = sums.get(row[persona_index])
        if slot is None:
            sums[row[persona_index]] = [1, hash(row) & _MASK]
        else:
            slot[0] += 1
            slot[1] = (slot[1] + hash(row)) & _MASK
    return sums


def _row_diffs(table: Table, mine: list[Row], theirs: list[Row]) -> list[RowDiff]:
    columns = [c.name for c in table.columns]
    keys = [columns.index(c.name) for c in table.primary_key.columns]
    left = {tuple(r[i] for i in keys): r for r in mine}
    right = {tuple(r[i] for i in keys): r for r in theirs}
    diffs: list[RowDiff] = []
    for key in sorted(left.keys() | right.keys(), key=repr):
        name = "/".join(map(str, key))
        if key not in right:
            diffs.append(RowDiff(name, "missing in SQL"))
        elif key not in left:
            diffs.append(RowDiff(name, "missing in the store"))
        elif left[key] != right[key]:
            differing = [
                c for c, a, b in zip(columns, left[key], right[key], strict=True) if a != b
            ]
            diffs.append(RowDiff(name, "differs", differing))
        if len(diffs) >= MAX_ROWS_NAMED:
            break
    duplicates = len(theirs) - len(right)
    if duplicates:
        diffs.append(RowDiff("*", f"{duplicates} row(s) stored twice in SQL (on several shards)"))
    return diffs


def verify(
    store: Store | None,
    shards: ShardSet,
    schema: Schema,
    progress: Progress | None = None,
    *,
    syncing: bool = False,
) -> VerifyReport:
    """Compare every state table of ``store`` with the SQL shards. Refused with the store
    off, and while a synced store (``syncing``) has events the server has not confirmed:
    SQL holds confirmed events only."""
    if store is None:
        raise ConfigError("verify compares the store with SQL; switch the store on")
    if syncing and (pending := store.pending_count):
        raise ConfigError(
            f"{pending} event(s) wait for the sync server; SQL holds confirmed "
            "events only, so verify once they are confirmed (`pjai sync status`)"
        )
    with store.exclusive():  # one consistent state: commits wait until verify is done
        return _verify(store, shards, schema, progress)


def _verify(
    store: Store, shards: ShardSet, schema: Schema, progress: Progress | None
) -> VerifyReport:
    started = time.perf_counter()
    # Raw rows compare alike only where both sides are SQLite and SQL is not sealed.
    raw = shards.sealer is None and all(shard.engine.dialect.name == "sqlite" for shard in shards)
    tables = schema.metadata.sorted_tables
    reports: list[TableReport] = []
    damage = store.check()
    for done, table in enumerate(tables):
        persona, columns = _layout(table)
        at = columns.index(persona)
        report = TableReport(table.name)
        try:
            mine = _sums(_store_rows(store, table, raw=raw), at)
        except StoreCorruptError as exc:
            report.damaged = str(exc)
            report.unreadable = [
                RowDiff(key, "unreadable in the store (text that is not UTF-8)", bad)
                for key, bad in store.unreadable_rows(table.name)
            ]
            reports.append(report)
            continue
        theirs = _sums(_sql_rows(shards, table, raw=raw), at)
        report.store_rows = sum(n for n, _ in mine.values())
        report.sql_rows = sum(n for n, _ in theirs.values())
        report.store_hash = _total(mine)
        report.sql_hash = _total(theirs)
        for key in sorted(mine.keys() | theirs.keys()):
            if mine.get(key) == theirs.get(key):
                continue
            store_rows = list(_store_rows(store, table, raw=raw, persona=key))
            sql_rows = list(_sql_rows(shards, table, raw=raw, persona=key))
            report.personas.append(
                PersonaDiff(
                    key, len(store_rows), len(sql_rows), _row_diffs(table, store_rows, sql_rows)
                )
            )
            if len(report.personas) >= MAX_ROWS_NAMED:
                break
        reports.append(report)
        if progress is not None:
            progress(done + 1, len(tables))
    wrong = (
        [(p, on.index, home.index) for p, on, home in misplaced(shards)] if len(shards) > 1 else []
    )
    return VerifyReport(reports, time.perf_counter() - started, wrong, damage)


def _total(sums: Sums) -> str:
    return f"{hash(tuple(sorted((k, n, h) for k, (n, h) in sums.items()))) & _MASK:016x}"
