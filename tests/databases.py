"""SQL databases for contract tests: SQLite always, PostgreSQL when configured.

PostgreSQL tests read ``PJAI_TEST_POSTGRES_URL`` (``.ci/run`` sets it) and run each
test in a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from pjai.sql.engine import default_url

POSTGRES_URL = os.environ.get("PJAI_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", "postgresql"]

ENGLISH = "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
"""``CREATE DATABASE`` clauses for a database collated in a language (ICU's English):
"alice" sorts before "Bob_1", and lower() follows the language's rules."""


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL whose connections use a fresh PostgreSQL schema, dropped afterwards."""
    if not POSTGRES_URL:
        pytest.skip("PJAI_TEST_POSTGRES_URL is not set: PostgreSQL tests skipped")
    schema = f"pjai_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(make_url(POSTGRES_URL).set(drivername="postgresql+psycopg"))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(POSTGRES_URL).set(drivername="postgresql+psycopg")
    url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def postgres_database(clauses: str) -> Iterator[str]:
    """The URL of a fresh PostgreSQL database made with ``CREATE DATABASE``'s ``clauses``
    (template, locale, ...), dropped afterwards."""
    if not POSTGRES_URL:
        pytest.skip("PJAI_TEST_POSTGRES_URL is not set: PostgreSQL tests skipped")
    name = f"pjai_test_{uuid.uuid4().hex[:12]}"
    url = make_url(POSTGRES_URL).set(drivername="postgresql+psycopg")
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" {clauses}'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def database(backend: str, data_dir: Path, name: str = "primary") -> Iterator[str]:
    """A fresh database URL of ``backend``."""
    if backend == "sqlite":
        data_dir.mkdir(parents=True, exist_ok=True)
        yield default_url(data_dir).replace("primary.db", f"{name}.db")
    else:
        with postgres_schema() as url:
            yield url
