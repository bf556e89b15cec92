"""Integrity: compare the store with the SQL primary, per table and per persona.

The store file is first checked page by page (``PRAGMA quick_check``); a table whose
rows cannot all be read is reported as damaged, with the rows whose text is unreadable.

Each side is scanned once in storage order. Per persona it counts rows and adds up a
64-bit hash of each row, a sum that does not depend on row order, so neither side
sorts. Personas whose count or sum differ are read again, by persona, to name the rows
and columns that differ. Hashes are Python's: they compare the two sides within one
run, not across runs.

Rows are compared in one of three forms:

- ``raw``, where both sides are SQLite: they store identical values, hashed as read;
- ``stored``, with PostgreSQL: PostgreSQL writes its timestamps and booleans the way
  the store keeps them (ISO text, 0/1); on both sides compressed text is inflated and
  JSON compared by value (:func:`_frozen`); nothing else is converted;
- ``typed``, where SQL keeps columns sealed: both sides read as Python values, the
  sealed ones opened.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import msgspec
from sqlalchemy import Boolean, Connection, Table
from sqlalchemy.exc import SQLAlchemyError

from pjai.errors import ConfigError, SqlError, StoreCorruptError, StoreError
from pjai.schema.event import Schema
from pjai.schema.tables import persona_column
from pjai.schema.types import CompressibleText, JsonDocument, Progress, Timestamp, read_text
from pjai.sql.engine import sqlite_file
from pjai.sql.rebalance import misplaced
from pjai.sql.shards import Shard, ShardSet
from pjai.sql.sqlite import page_problems
from pjai.store import Store
from pjai.store.log import FileHead

__all__ = ["PersonaDiff", "RowDiff", "TableReport", "VerifyReport", "verify"]

MAX_ROWS_NAMED = 20


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
    sql_damaged: str | None = None
    """Why SQL's rows could not be read, when a damaged SQLite file of it stopped them."""

    @property
    def equal(self) -> bool:
        """Whether the table holds the same rows on both sides."""
        return (
            self.damaged is None
            and self.sql_damaged is None
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
    sql_damage: list[str] = field(default_factory=list)
    """What SQLite found wrong with the pages of the SQL primary's SQLite files."""

    @property
    def equal(self) -> bool:
        """Whether the store file is sound, every table matches and every persona is
        on its shard."""
        return (
            not self.store_damage
            and not self.sql_damage
            and not self.misplaced
            and all(table.equal for table in self.tables)
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "equal": self.equal,
            "seconds": round(self.seconds, 3),
            "store_damage": self.store_damage,
            "sql_damage": self.sql_damage,
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
                    "sql_damaged": t.sql_damaged,
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
    persona = persona_column(table.name)
    return persona, [c.name for c in table.columns]


Form = Literal["raw", "stored", "typed"]
"""How rows are compared (see the module doc)."""

_STORED_TIME = """to_char("{0}" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""
"""A PostgreSQL timestamp written as the store keeps it (``to_iso``)."""


def _canonical(table: Table, form: Form, *, inflate: bool) -> Callable[[Row], Row] | None:
    """What makes a row of ``form`` hashable and equal across backends, if anything.

    JSON values (decoded first where stored as text) become :func:`_frozen` values;
    stored compressed text is inflated where it may be (``inflate``). Typed timestamps
    need nothing: aware datetimes of the same instant are equal and hash alike whatever
    their time zone object, as do ``True`` and ``1``.
    """
    if form == "raw":
        return None
    json = [i for i, c in enumerate(table.columns) if isinstance(c.type, JsonDocument)]
    texts = [i for i, c in enumerate(table.columns) if isinstance(c.type, CompressibleText)]
    if form == "typed" or not inflate:
        texts = []
    if not (json or texts):
        return None

    def canonical(row: Row) -> Row:
        values = list(row)
        for i in json:
            value = values[i]
            if form == "stored" and value is not None:
                value = msgspec.json.decode(value)
            values[i] = _frozen(value)
        for i in texts:
            values[i] = read_text(values[i])
        return tuple(values)

    return canonical


_EXACT = 2**53
"""Integers up to this size are exact as floats."""


def _frozen(value: Any) -> Any:
    """A decoded JSON value made hashable, equal to another exactly when they are the
    same JSON value: objects whatever their key order, booleans apart from 1 and 0,
    and numbers by value, as PostgreSQL's ``jsonb`` keeps them: it writes ``1e23`` back
    as ``100000000000000000000000`` and ``-0.0`` as ``0.0``, so an integer beyond what a
    float holds exactly is compared as the float it rounds to."""
    kind = type(value)
    if kind is list:
        return ("[]", *map(_frozen, value))
    if kind is dict:
        return ("{}", *sorted((key, _frozen(item)) for key, item in value.items()))
    if kind is bool:
        return ("bool", value)
    if kind is int and not -_EXACT <= value <= _EXACT:
        return float(value)
    return value


def _select(table: Table, where: str = "", *, stored_by_postgres: bool = False) -> str:
    names = ", ".join(
        _stored_column(c) if stored_by_postgres else f'"{c.name}"' for c in table.columns
    )
    return f'SELECT {names} FROM "{table.name}"{where}'


def _stored_column(column: Any) -> str:
    """A PostgreSQL column as the store keeps its values."""
    if isinstance(column.type, Timestamp):
        return _STORED_TIME.format(column.name)
    if isinstance(column.type, Boolean):
        return f'"{column.name}"::int'
    if isinstance(column.type, JsonDocument):
        return f'"{column.name}"::text'
    return f'"{column.name}"'


def _store_rows(
    store: Store, table: Table, *, form: Form, persona: str | None = None
) -> Iterator[Row]:
    column, _ = _layout(table)
    where = (
        "" if persona is None else " WHERE \"{}\" = '{}'".format(column, persona.replace("'", "''"))
    )
    rows = store.stream(_select(table, where), typed=form == "typed")
    canonical = _canonical(table, form, inflate=True)
    return rows if canonical is None else map(canonical, rows)


def _sql_rows(
    shards: ShardSet,
    table: Table,
    *,
    form: Form,
    persona: str | None = None,
    pinned: Pinned | None = None,
) -> Iterator[Row]:
    column, _ = _layout(table)
    sealer = shards.sealer
    sealed = [
        (i, c.name)
        for i, c in enumerate(table.columns)
        if sealer and c.name in sealer.columns.get(table.name, ())
    ]
    owner = [c.name for c in table.columns].index(column)  # the row's persona

    def opened(plain: Callable[[Row], Row]) -> Callable[[Row], Row]:
        assert sealer is not None

        def convert(row: Row) -> Row:
            values = list(row)
            for i, name in sealed:
                values[i] = sealer.open_value(table.name, name, values[i], values[owner])
            return plain(tuple(values))

        return convert

    for index, shard in enumerate(shards):
        postgres = shard.engine.dialect.name == "postgresql"
        # PostgreSQL keeps text plain; SQLite may keep it compressed.
        convert = _canonical(table, form, inflate=not postgres) or tuple
        if sealed:
            convert = opened(convert)
        mark = "%s" if postgres else "?"
        where = "" if persona is None else f' WHERE "{column}" = {mark}'
        select = _select(table, where, stored_by_postgres=postgres and form == "stored")
        with _reading(shard, (pinned or {}).get(index), f"reading {table.name} for verify") as conn:
            dbapi = conn.connection.driver_connection
            assert dbapi is not None
            # A named (server-side) cursor streams PostgreSQL rows instead of loading all.
            cursor = dbapi.cursor(name=f"pjai_verify_{table.name}") if postgres else dbapi.cursor()
            try:
                cursor.execute(select, () if persona is None else (persona,))
                while batch := cursor.fetchmany(10_000):
                    yield from map(convert, batch)
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
    with store.exclusive():  # commits of this process wait until verify is done
        return _verify(store, shards, schema, progress)


def _verify(
    store: Store, shards: ShardSet, schema: Schema, progress: Progress | None
) -> VerifyReport:
    started = time.perf_counter()
    form: Form = (
        "typed"
        if shards.sealer is not None
        else "raw"
        if all(shard.engine.dialect.name == "sqlite" for shard in shards)
        else "stored"
    )
    tables = schema.metadata.sorted_tables
    # SQLite checks the files' pages in a thread (it lets go of the GIL meanwhile).
    with ThreadPoolExecutor(1, thread_name_prefix="pjai-verify-check") as checker:
        checked = checker.submit(store.check, aside=True) if store.path is not None else None
        sql_checked = checker.submit(_sql_file_problems, shards)
        with _one_state(store, shards) as pinned:
            reports = _compare(store, shards, pinned, tables, form, progress)
        damage = checked.result() if checked is not None else store.check()
        sql_damage = sql_checked.result()
    wrong = (
        [(p, on.index, home.index) for p, on, home in misplaced(shards)] if len(shards) > 1 else []
    )
    return VerifyReport(reports, time.perf_counter() - started, wrong, damage, sql_damage)


Pinned = dict[int, Connection]
"""Per shard (by its place), a connection reading one state of it in a transaction."""


@contextmanager
def _one_state(store: Store, shards: ShardSet) -> Iterator[Pinned]:
    """Read the store and every shard, for the block, as they stood at one moment.

    Other processes commit to SQL while they hold the store file's write lock (as their
    store transaction's last step, or with the store off, where another writer may take
    it as they note their places in it just before SQL's commit: the store lacks those
    events either way, until it takes them in), so with that lock held for an instant, a
    read transaction begun on each side sees the same history; the lock is let go before
    the tables are read. The caller holds the store's lock (commits of
    this process wait): taken after the file's, it would stop a thread of ours that holds
    the file's. A shard whose state cannot be held (a damaged file) is read as it goes.
    """
    with ExitStack() as stack:
        with _others_held(store):
            stack.enter_context(store.snapshot())
            store.query("SELECT count(*) AS n FROM sqlite_schema")  # the state, from now
            pinned: Pinned = {}
            for index, shard in enumerate(shards):
                with contextlib.suppress(SqlError):
                    pinned[index] = stack.enter_context(_pinned(shard))
        yield pinned


@contextmanager
def _others_held(store: Store) -> Iterator[None]:
    """Hold the store file's write lock for the block, if it can be had within the time
    a commit waits for it (else the block runs without: the sides are read as they go)."""
    if store.path is None:  # in memory: no other process
        yield
        return
    head = FileHead(Path(store.path))
    with ExitStack() as stack:
        stack.callback(head.close)
        with contextlib.suppress(StoreError):
            stack.enter_context(head.locked())
        yield


@contextmanager
def _pinned(shard: Shard) -> Iterator[Connection]:
    """A connection to ``shard`` in a read transaction whose state is fixed from now."""
    postgres = shard.engine.dialect.name == "postgresql"
    with shard.writer.connection("reading one state for verify") as conn:
        if postgres:  # else each statement would see what was committed before it
            conn.execution_options(isolation_level="REPEATABLE READ")
        with shard.writer.translating("reading one state for verify"):
            transaction = conn.begin()
            conn.exec_driver_sql('SELECT count(*) FROM "personas"')
        try:
            yield conn
        finally:
            # It only read. A file whose damage a read met may refuse even to end it:
            # the connection is then reset as it goes back to the pool.
            with contextlib.suppress(SQLAlchemyError):
                transaction.rollback()


@contextmanager
def _reading(shard: Shard, pinned: Connection | None, doing: str) -> Iterator[Connection]:
    """``pinned``, or a new connection to ``shard``; driver errors as PJai's."""
    if pinned is None:
        with shard.writer.connection(doing) as conn:
            yield conn
    else:
        with shard.writer.translating(doing):
            yield pinned


def _sql_file_problems(shards: ShardSet) -> list[str]:
    """What SQLite finds wrong with the pages of the shards that are SQLite files."""
    files = [file for s in shards if (file := sqlite_file(s.engine.url)) is not None]
    return [f"{file}: {problem}" for file in files for problem in page_problems(file)]


def _compare(
    store: Store,
    shards: ShardSet,
    pinned: Pinned,
    tables: list[Table],
    form: Form,
    progress: Progress | None,
) -> list[TableReport]:
    reports: list[TableReport] = []
    sql_damaged: bool | None = None  # looked at once, when a read of SQL first fails
    for done, table in enumerate(tables):
        persona, columns = _layout(table)
        at = columns.index(persona)
        report = TableReport(table.name)
        try:
            mine = _sums(_store_rows(store, table, form=form), at)
        except StoreCorruptError as exc:
            report.damaged = str(exc)
            report.unreadable = [
                RowDiff(key, "unreadable in the store (text that is not UTF-8)", bad)
                for key, bad in store.unreadable_rows(table.name)
            ]
            reports.append(report)
            continue
        report.store_rows = sum(n for n, _ in mine.values())
        try:
            theirs = _sums(_sql_rows(shards, table, form=form, pinned=pinned), at)
        except SqlError as exc:
            if sql_damaged is None:
                sql_damaged = bool(_sql_file_problems(shards))
            if not sql_damaged:
                raise  # not damage (PostgreSQL away, say): verify cannot go on
            report.sql_damaged = str(exc)
            reports.append(report)
            continue
        report.sql_rows = sum(n for n, _ in theirs.values())
        report.store_hash = _total(mine)
        report.sql_hash = _total(theirs)
        for key in sorted(mine.keys() | theirs.keys()):
            if mine.get(key) == theirs.get(key):
                continue
            store_rows = list(_store_rows(store, table, form=form, persona=key))
            sql_rows = list(_sql_rows(shards, table, form=form, persona=key, pinned=pinned))
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
    return reports


def _total(sums: Sums) -> str:
    return f"{hash(tuple(sorted((k, n, h) for k, (n, h) in sums.items()))) & _MASK:016x}"
