"""The legacy SQLite file: opened read-only, checked, its rows and its scales read."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from pjai.errors import ConfigError
from pjai.hybrid.legacy.rows import COLUMNS, NOT_IMPORTED, REQUIRED, Row
from pjai.hybrid.legacy.values import Scale

__all__ = ["BUSY_SECONDS", "SCALED", "Layout", "check", "open_legacy", "rows", "scales"]

BUSY_SECONDS = 5.0
"""How long the import waits for a program writing the legacy file to finish."""

SCALED = {
    "importance": ("memory_entities", "importance"),
    "threshold": ("personas", "memory_importance_threshold"),
}
"""The columns of fractions whose scale (0-1 or 0-100) is read from each database."""


class Layout:
    """The tables and columns of one legacy file, and its number of rows."""

    def __init__(
        self, columns: dict[str, set[str]], total: int, others: list[str] | None = None
    ) -> None:
        self.columns = columns
        self.total = total
        self.others = others or []
        """The file's other tables, which are not imported."""

    def not_imported(self) -> dict[str, str]:
        """The columns of this legacy file that are not imported, and why."""
        unread = {
            f"{table}.{column}"
            for table, columns in self.columns.items()
            for column in columns
            if column not in COLUMNS[table] or f"{table}.{column}" in NOT_IMPORTED
        }
        return {name: NOT_IMPORTED.get(name, "unknown to this importer") for name in sorted(unread)}


def open_legacy(source: Path) -> sqlite3.Connection:
    """Open ``source`` read-only, in one read transaction; ConfigError if it is not a
    file SQLite can open."""
    if not source.is_file():
        problem = "is not a file" if source.exists() else "does not exist"
        raise ConfigError(f"legacy database {source} {problem}")
    # A WAL database that its last writer closed keeps every page in the file; read as
    # it is, SQLite would still make a -shm file beside it (or fail on read-only media).
    mode = "mode=ro&immutable=1" if _closed_wal(source) else "mode=ro"
    try:
        conn = sqlite3.connect(
            f"{source.resolve().as_uri()}?{mode}", uri=True, timeout=BUSY_SECONDS
        )
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot open legacy database {source}: {exc}") from exc
    # Text that is not UTF-8 comes back as bytes, for the row mapping to report, rather
    # than failing the whole read at that row.
    conn.text_factory = _text
    # Nothing the file's schema holds (views, triggers, defaults) runs functions.
    conn.execute("PRAGMA trusted_schema=OFF")
    # Every read sees the file as it was at the first: a program writing it meanwhile
    # (the desktop app, open on it) cannot show the import a memory without its persona.
    conn.execute("BEGIN")
    return conn


def _closed_wal(source: Path) -> bool:
    """Whether ``source`` is an SQLite file in WAL mode without a write-ahead log beside
    it: no connection has it open, and all its pages are in the file."""
    with source.open("rb") as file:
        header = file.read(20)
    in_wal_mode = header[:16] == b"SQLite format 3\x00" and header[18:20] == b"\x02\x02"
    return in_wal_mode and not source.with_name(f"{source.name}-wal").exists()


def _text(raw: bytes) -> str | bytes:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw


def check(conn: sqlite3.Connection, source: Path) -> Layout:
    """The file's layout; ConfigError if it is not a PJai desktop database, or if the
    tables imported are damaged (nothing is imported then)."""
    try:
        # Names are found whatever their case, as SQLite finds tables (triggers and
        # indexes have names of their own).
        kinds = dict(
            conn.execute(
                "SELECT lower(name), type FROM sqlite_schema WHERE type IN ('table', 'view') "
                "AND lower(name) IN (SELECT value FROM json_each(?))",
                (json.dumps(list(COLUMNS)),),
            ).fetchall()
        )
        # A view is a query the file's maker wrote: it may run for ever.
        if views := sorted(t for t, kind in kinds.items() if kind != "table"):
            raise ConfigError(
                f"{source} is not a PJai desktop database: {views[0]} is a "
                f"{kinds[views[0]]}, not a table"
            )
        # Columns too, whatever their case ("Name" is name to SQLite).
        present = {
            t: {r[1].lower() for r in conn.execute(f"PRAGMA table_info({t})")} for t in COLUMNS
        }
        if missing := [table for table, columns in present.items() if not columns]:
            raise ConfigError(
                f"{source} is not a PJai desktop database: no table {', '.join(missing)}"
            )
        for table, required in REQUIRED.items():
            if lacking := sorted(required - present[table]):
                raise ConfigError(
                    f"{source} is not a PJai desktop database: table {table} lacks "
                    f"column(s) {', '.join(lacking)}"
                )
        _intact(conn, source)
        total = sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in COLUMNS)
        others = [
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE "
                "'sqlite\\_%' ESCAPE '\\' AND lower(name) NOT IN "
                "(SELECT value FROM json_each(?)) ORDER BY name",
                (json.dumps(list(COLUMNS)),),
            )
        ]
    except sqlite3.Error as exc:
        if exc.sqlite_errorcode == sqlite3.SQLITE_READONLY_ROLLBACK:
            # A hot journal: rolling it back would write to the file, which is only read.
            raise ConfigError(
                f"{source} holds a change its writer did not finish (a program stopped "
                f"while writing it; see {source.name}-journal beside it). Open it once in "
                "the desktop app, or with sqlite3, so that SQLite undoes that change; then "
                "import it"
            ) from exc
        if exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:
            raise ConfigError(
                f"{source} is locked by a program writing it (the desktop app?); close "
                "that program, or let it finish writing, then import again"
            ) from exc
        log = source.with_name(f"{source.name}-wal")
        if exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_CANTOPEN and log.exists():
            # Reading a write-ahead log takes a -shm file beside it, even read-only.
            raise ConfigError(
                f"{source} is in WAL mode with changes in {log.name}, which SQLite can only "
                f"read through a {source.name}-shm file it cannot make beside it (a "
                f"read-only folder or medium?); copy {source.name} and {log.name} together "
                "into a writable folder and import the copy"
            ) from exc
        raise ConfigError(f"{source} is not a readable SQLite database: {exc}") from exc
    return Layout(present, int(total), others)


def _intact(conn: sqlite3.Connection, source: Path) -> None:
    """ConfigError if a page of the tables imported is damaged: found while importing,
    it would stop the import part way, and every run again at the same row."""
    for table in COLUMNS:
        try:
            (found, *_) = conn.execute(f"PRAGMA quick_check({table})").fetchone()
        except sqlite3.DatabaseError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_CORRUPT:
                raise
            found = str(exc)
        if found != "ok":
            raise ConfigError(
                f"{source} is damaged ({table}: {found}); nothing was imported. Recover "
                f"its rows into a new file (e.g. sqlite3 {source} .recover | sqlite3 "
                "recovered.db) and import that file"
            )


def scales(conn: sqlite3.Connection, layout: Layout) -> dict[str, Scale]:
    """The scale of each column of :data:`SCALED`, read from its values in this file."""
    found = {}
    for name, (table, column) in SCALED.items():
        if column not in layout.columns[table]:
            found[name] = Scale.detect(())
            continue
        found[name] = Scale.detect(
            value for (value,) in conn.execute(f"SELECT {column} FROM {table}")
        )
    return found


def rows(conn: sqlite3.Connection, table: str, layout: Layout) -> Iterator[Row]:
    """The rows of ``table``, known columns only: never the bulky embeddings."""
    wanted = [c for c in COLUMNS[table] if c in layout.columns[table]]
    for values in conn.execute(f"SELECT {', '.join(wanted)} FROM {table}"):
        row: Row = dict.fromkeys(COLUMNS[table])
        row.update(zip(wanted, values, strict=True))
        yield row
