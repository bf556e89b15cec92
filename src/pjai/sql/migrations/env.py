"""Alembic environment for PJai's SQL primary; run through :mod:`pjai.sql.migrate`."""

from __future__ import annotations

from alembic import context

from pjai.schema import metadata
from pjai.sql.journal import journal_metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=[metadata, journal_metadata],
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
