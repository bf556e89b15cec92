"""What :func:`~pjai.hybrid.integrity.verify` found: per table, the rows each side
holds and their hashes, the personas and rows that differ, the store's rows that
cannot be read; over all, the damage SQLite found in the files' pages and the
personas kept on a shard that is not theirs (:class:`VerifyReport`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["PersonaDiff", "RowDiff", "TableReport", "VerifyReport"]


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
    """The outcome of :func:`~pjai.hybrid.integrity.verify`.

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
