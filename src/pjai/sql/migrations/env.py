"""Alembic environment for PJai's SQL primary; run through :mod:`pjai.sql.migrate`."""

from __future__ import annotations

from alembic import context

from pjai.sql.migrate import comparison

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    render_as_batch=connection.dialect.name == "sqlite",
    **comparison(),
)
with context.begin_transaction():
    context.run_migrations()
