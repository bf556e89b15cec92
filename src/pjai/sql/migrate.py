"""Creating and upgrading the SQL primary's tables with Alembic, and checking for drift."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Engine, MetaData, func, select
from sqlalchemy.types import TypeEngine

from pjai.schema import metadata
from pjai.schema.search import POSTGRESQL_SEARCH_OBJECTS
from pjai.sql.journal import journal_metadata

__all__ = ["TARGET_METADATA", "comparison", "current", "drift", "head", "heads", "upgrade"]

_SCRIPTS = Path(__file__).parent / "migrations"

_MIGRATION_LOCK = 0x706A6169_6D696772  # "pjaimigr"
"""PostgreSQL advisory lock key held while a process migrates a database."""

# Alembic runs a migration through module globals (``alembic.context``, ``alembic.op``)
# that point at the one migration under way: two at once in a process, even on different
# databases, run each other's steps on each other's connections.
_ALEMBIC = threading.Lock()

TARGET_METADATA: tuple[MetaData, ...] = (metadata, journal_metadata)
"""Every table of the SQL primary: the state tables, the journal and its checkpoints."""


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    return config


def heads() -> list[str]:
    """Every migration no other revises; a sound chain has exactly one."""
    return list(ScriptDirectory.from_config(_config()).get_heads())


def head() -> str:
    """The newest migration this version of PJai knows."""
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None
    return revision


def current(engine: Engine) -> str | None:
    """The migration the database is at, or ``None`` for an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Migrate the database up to ``revision``; returns the revision it is at.

    Safe to call from several threads and processes at once: a process runs one
    migration at a time, and each holds the database's write lock (SQLite) or an
    advisory lock (PostgreSQL) from its start, so that one migrates and the others wait
    and then find the work done.
    """
    config = _config()
    with _ALEMBIC, engine.connect() as conn:
        conn.execution_options(pjai_begin="IMMEDIATE")
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(select(func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    at = current(engine)
    assert at is not None
    return at


def _declared_type(context: MigrationContext, table: str, column: str) -> str | None:
    assert context.connection is not None
    rows = context.connection.exec_driver_sql(f'PRAGMA table_info("{table}")').all()
    return next((str(row[2]) for row in rows if row[1] == column), None)


def _compare_type(
    context: MigrationContext,
    inspected_column: Column[Any],
    metadata_column: Column[Any],
    inspected_type: TypeEngine[Any],
    metadata_type: TypeEngine[Any],
) -> bool | None:
    """Whether a column's type differs; ``None`` leaves the answer to Alembic.

    SQLite keeps each column's declared type as written, but SQLAlchemy reflects a type
    name it does not know by its affinity: ``CompressibleText``'s ``ZTEXT`` comes back as
    ``TEXT``, and Alembic alone would report a type change that is not there. So on
    SQLite the declared text is compared, exactly, with the one the table definition
    compiles to: stricter than Alembic's comparison, which accepts synonyms.

    Alembic does not compare collations: on PostgreSQL a text column with another
    collation than the one declared (``"C"``, see :mod:`pjai.schema.types`) is a change.
    """
    if context.dialect.name != "sqlite":
        declared = getattr(metadata_type.dialect_impl(context.dialect), "collation", None)
        return True if getattr(inspected_type, "collation", None) != declared else None
    declared = _declared_type(context, inspected_column.table.name, inspected_column.name)
    compiled = metadata_type.compile(dialect=context.dialect)
    return declared is None or declared.upper() != compiled.upper()


def _declared_or_search(
    item: Any, name: str | None, kind: str, reflected: bool, declared: Any
) -> bool:
    """Whether to compare ``item``: all but PostgreSQL's search document of memories,
    which the tables do not declare (see :mod:`pjai.schema.search`)."""
    return not (reflected and declared is None and (kind, name) in POSTGRESQL_SEARCH_OBJECTS)


def comparison() -> dict[str, Any]:
    """The options Alembic compares the tables with, for autogenerate and :func:`drift`.

    Types are compared (see ``_compare_type``) and so are server defaults: PJai's tables
    declare one (``memories.pinned``), so any other default found in a database is drift.
    PostgreSQL's search document of memories is left out: the tables do not declare it.
    """
    return {
        "target_metadata": list(TARGET_METADATA),
        "compare_type": _compare_type,
        "compare_server_default": True,
        "include_object": _declared_or_search,
    }


def drift(engine: Engine) -> list[Any]:
    """What Alembic finds between the database's tables and PJai's definitions.

    Empty when the database holds exactly the tables, columns, types, nullability,
    indexes, unique and foreign key constraints that :data:`TARGET_METADATA` declares.
    Alembic does not compare CHECK constraints.
    """
    options = comparison()
    target = options.pop("target_metadata")
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts=options)
        return list(compare_metadata(context, target))
