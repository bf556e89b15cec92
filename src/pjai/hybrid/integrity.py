"""Integrity: compare the store with the SQL primary, per table and per persona.

The store file is first checked page by page (``PRAGMA quick_check``); a table whose
rows cannot all be read is reported as damaged, with the rows whose text is unreadable.

Each side is scanned once in storage order (:mod:`pjai.hybrid.rowforms` says in which
form rows are compared), as they stood at one moment (:mod:`pjai.hybrid.onestate`).
Per persona it counts rows and adds up a 64-bit hash of each row, a sum that does not
depend on row order, so neither side sorts. Personas whose count or sum differ are read
again, by persona, to name the rows and columns that differ
(:mod:`pjai.hybrid.verifyreport`). Hashes are Python's: they compare the two sides
within one run, not across runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Table

from pjai.errors import ConfigError, SqlError, StoreCorruptError
from pjai.hybrid.onestate import Pinned, one_state
from pjai.hybrid.rowforms import Form, Row, layout, rows_in_sql, rows_in_store
from pjai.hybrid.verifyreport import PersonaDiff, RowDiff, TableReport, VerifyReport
from pjai.schema.event import Schema
from pjai.schema.types import Progress
from pjai.sql.engine import sqlite_file
from pjai.sql.rebalance import misplaced
from pjai.sql.shards import ShardSet
from pjai.sql.sqlite import page_problems
from pjai.store import Store

__all__ = ["PersonaDiff", "RowDiff", "TableReport", "VerifyReport", "verify"]

MAX_ROWS_NAMED = 20

Sums = dict[str, list[int]]
"""Per persona: ``[row count, sum of row hashes mod 2**64]``."""

_MASK = (1 << 64) - 1


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
        with one_state(store, shards) as pinned:
            reports = _compare(store, shards, pinned, tables, form, progress)
        damage = checked.result() if checked is not None else store.check()
        sql_damage = sql_checked.result()
    wrong = (
        [(p, on.index, home.index) for p, on, home in misplaced(shards)] if len(shards) > 1 else []
    )
    return VerifyReport(reports, time.perf_counter() - started, wrong, damage, sql_damage)


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
        persona, columns = layout(table)
        at = columns.index(persona)
        report = TableReport(table.name)
        try:
            mine = _sums(rows_in_store(store, table, form=form), at)
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
            theirs = _sums(rows_in_sql(shards, table, form=form, pinned=pinned), at)
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
            store_rows = list(rows_in_store(store, table, form=form, persona=key))
            sql_rows = list(rows_in_sql(shards, table, form=form, persona=key, pinned=pinned))
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
