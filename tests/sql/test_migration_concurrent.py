"""Migrations started together, by threads of one process or by several processes, all
succeed, and each database is migrated once."""

from __future__ import annotations

import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import pytest

from pjai.sql import create_sql_engine, migrate
from tests.databases import BACKENDS, database
from tests.helpers import at_once

THREADS = 4
ROUNDS = 5


def _migrate_at_once(urls: list[str]) -> None:
    """Migrate the databases of ``urls`` (one may come more than once) in threads
    released together."""
    engines = [create_sql_engine(url) for url in urls]
    try:
        assert at_once(len(engines), lambda i: migrate.upgrade(engines[i])) == []
        for engine in engines:
            assert migrate.current(engine) == migrate.head()
            assert migrate.drift(engine) == []
    finally:
        for engine in engines:
            engine.dispose()


@pytest.mark.parametrize("shared", [False, True], ids=["own-files", "one-file"])
def test_threads_migrate_at_once(tmp_path: Path, shared: bool) -> None:
    # Alembic runs a migration through module globals: two at once in a process run each
    # other's steps on each other's connections, or fail with KeyError: 'script'.
    for round_ in range(ROUNDS):
        _migrate_at_once(
            [f"sqlite:///{tmp_path}/{round_}-{0 if shared else i}.db" for i in range(THREADS)]
        )


# Each process migrates when told to on stdin, and Alembic logs every step it runs.
_MIGRATE = """
import logging, sys
from pjai.sql import create_sql_engine, migrate
logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
engine = create_sql_engine(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
migrate.upgrade(engine)
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_processes_migrate_one_database_at_once(tmp_path: Path, backend: str) -> None:
    with database(backend, tmp_path) as url, ExitStack() as stack:
        processes = [
            stack.enter_context(
                subprocess.Popen(
                    [sys.executable, "-c", _MIGRATE, url],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
            for _ in range(3)
        ]
        for process in processes:
            assert process.stdout is not None
            assert process.stdout.readline() == "ready\n"
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        outputs = [process.communicate(timeout=120)[0] for process in processes]
        assert [process.returncode for process in processes] == [0, 0, 0], outputs
        first_steps = [line for out in outputs for line in out.splitlines() if "-> 0001" in line]
        assert len(first_steps) == 1, outputs  # migrated once; the others found it done
        engine = create_sql_engine(url)
        try:
            assert migrate.current(engine) == migrate.head()
        finally:
            engine.dispose()
