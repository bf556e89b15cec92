"""Integrity: compare the store with the SQL primary, and rebuild either side.

Rows are compared per table and per persona: counts and a content hash for each
persona, and for personas whose hashes differ, the rows that differ. Where both sides
are SQLite they store identical values, so raw rows are compared; with PostgreSQL
both sides are read as Python values and encoded canonically first.
"""

from __future__ import annotations

import hashlib
import heapq
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
from sqlalchemy import Table, select

from pjai.schema.event import Schema
from pjai.sql.rebalance import misplaced
from pjai.sql.shards import ShardSet
from pjai.store import Store

__all__ = ["PersonaDiff", "RowDiff", "TableReport", "VerifyReport", "verify"]

Progress = Callable[[int, int], object]
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

    @property
    def equal(self) -> bool:
        """Whether the table holds the same rows on both sides."""
        return self.store_hash == self.sql_hash and self.store_rows == self.sql_rows


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

    @property
    def equal(self) -> bool:
        """Whether every table matches and every persona is on its shard."""
        return not self.misplaced and all(table.equal for table in self.tables)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "equal": self.equal,
            "seconds": round(self.seconds, 3),
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


Keyed = tuple[str, tuple[Any, ...], Any]
"""(persona id, primary key, row values) of one row."""


def _layout(table: Table) -> tuple[str, list[str]]:
    persona = "id" if table.name == "personas" else "persona_id"
    keys = [column.name for column in table.primary_key.columns]
    return persona, keys


def _store_rows(store: Store, table: Table, *, raw: bool) -> Iterator[Keyed]:
    persona, keys = _layout(table)
    columns = [c.name for c in table.columns]
    order = ", ".join(f'"{c}"' for c in [persona, *keys])
    names = ", ".join(f'"{c}"' for c in columns)
    sql = f'SELECT {names} FROM "{table.name}" ORDER BY {order}'
    p_index = columns.index(persona)
    k_index = [columns.index(k) for k in keys]
    for row in store.stream(sql, typed=not raw):
        yield row[p_index], tuple(row[i] for i in k_index), tuple(row)


def _sql_rows(shards: ShardSet, table: Table, *, raw: bool) -> Iterator[Keyed]:
    persona, keys = _layout(table)
    columns = [c.name for c in table.columns]
    p_index = columns.index(persona)
    k_index = [columns.index(k) for k in keys]
    # Byte order, as Python compares strings, whatever the database's collation.
    order = [table.c[c].collate("C") for c in [persona, *keys]]

    def shard_rows(shard: Any) -> Iterator[Keyed]:
        with shard.writer.connection(f"reading {table.name} for verify") as conn:
            if raw:
                cursor = conn.connection.driver_connection.cursor()
                try:
                    names = ", ".join(f'"{c}"' for c in columns)
                    by = ", ".join(f'"{c}"' for c in [persona, *keys])
                    cursor.execute(f'SELECT {names} FROM "{table.name}" ORDER BY {by}')
                    while batch := cursor.fetchmany(10_000):
                        for row in batch:
                            yield row[p_index], tuple(row[i] for i in k_index), tuple(row)
                finally:
                    cursor.close()
            else:
                result = conn.execution_options(stream_results=True, yield_per=10_000)
                for row in result.execute(select(table).order_by(*order)):
                    yield row[p_index], tuple(row[i] for i in k_index), tuple(row)

    yield from heapq.merge(*(shard_rows(s) for s in shards), key=lambda r: (r[0], r[1]))


def _grouped(rows: Iterator[Keyed]) -> Iterator[tuple[str, list[Keyed]]]:
    current: str | None = None
    group: list[Keyed] = []
    for row in rows:
        if row[0] != current:
            if current is not None:
                yield current, group
            current, group = row[0], []
        group.append(row)
    if current is not None:
        yield current, group


def _digest(group: list[Keyed]) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for _persona, _key, values in group:
        h.update(_encode(values))
    return h.digest()


def _summaries(rows: Iterator[Keyed]) -> dict[str, tuple[int, bytes]]:
    return {persona: (len(group), _digest(group)) for persona, group in _grouped(rows)}


def _row_diffs(table: Table, store_group: list[Keyed], sql_group: list[Keyed]) -> list[RowDiff]:
    columns = [c.name for c in table.columns]
    left = {key: values for _p, key, values in store_group}
    right = {key: values for _p, key, values in sql_group}
    diffs: list[RowDiff] = []
    for key in sorted(left.keys() | right.keys(), key=repr):
        name = "/".join(map(str, key))
        if key not in right:
            diffs.append(RowDiff(name, "missing in SQL"))
        elif key not in left:
            diffs.append(RowDiff(name, "missing in the store"))
        elif _encode(left[key]) != _encode(right[key]):
            differing = [
                c
                for c, a, b in zip(columns, left[key], right[key], strict=True)
                if _encode(a) != _encode(b)
            ]
            diffs.append(RowDiff(name, "differs", differing))
        if len(diffs) >= MAX_ROWS_NAMED:
            break
    return diffs


def verify(
    store: Store, shards: ShardSet, schema: Schema, progress: Progress | None = None
) -> VerifyReport:
    """Compare every state table of ``store`` with the SQL shards."""
    with store.exclusive():  # one consistent state: commits wait until verify is done
        return _verify(store, shards, schema, progress)


def _verify(
    store: Store, shards: ShardSet, schema: Schema, progress: Progress | None
) -> VerifyReport:
    started = time.perf_counter()
    raw = all(shard.engine.dialect.name == "sqlite" for shard in shards)
    tables = schema.metadata.sorted_tables
    reports: list[TableReport] = []
    for done, table in enumerate(tables):
        report = TableReport(table.name)
        mine = _summaries(_store_rows(store, table, raw=raw))
        theirs = _summaries(_sql_rows(shards, table, raw=raw))
        report.store_rows = sum(n for n, _ in mine.values())
        report.sql_rows = sum(n for n, _ in theirs.values())
        report.store_hash = _total(mine)
        report.sql_hash = _total(theirs)
        for persona in sorted(mine.keys() | theirs.keys()):
            if mine.get(persona) == theirs.get(persona):
                continue
            store_group = [r for r in _store_rows(store, table, raw=raw) if r[0] == persona]
            sql_group = [r for r in _sql_rows(shards, table, raw=raw) if r[0] == persona]
            report.personas.append(
                PersonaDiff(
                    persona,
                    len(store_group),
                    len(sql_group),
                    _row_diffs(table, store_group, sql_group),
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
    return VerifyReport(reports, time.perf_counter() - started, wrong)


def _total(summaries: dict[str, tuple[int, bytes]]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for persona in sorted(summaries):
        count, digest = summaries[persona]
        h.update(persona.encode())
        h.update(count.to_bytes(8, "big"))
        h.update(digest)
    return h.hexdigest()
