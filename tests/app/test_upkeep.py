"""Migrations, health with the files present, and repair through the application layer."""

from __future__ import annotations

from pjai.app import DataDir, Personas, checkup, migrations, repair, upgrade_sql
from pjai.hybrid.files import STORE_FILE


def test_migrations_and_checkup(data: DataDir) -> None:
    (before,) = migrations(data).shards
    assert before[1] is None
    ((url, revision),) = upgrade_sql(data)
    assert (url, revision) == (before[0], migrations(data).newest)
    with data.open() as manager:
        Personas(manager).create("Ada")
    found = checkup(data)
    assert found.health.status == "ok"
    assert STORE_FILE in [f.name for f in found.files]
    assert found.to_dict()["files"][0]["name"] == STORE_FILE
    assert found.to_dict()["store"]["head"] == 1


def test_repair_rebuilds_a_side_from_the_log(data: DataDir) -> None:
    with data.open() as manager:
        Personas(manager).create("Ada")
    done = repair(data, "sql")
    assert done.done is not None
    assert (done.side, done.done.events, done.done.source, done.rebuilt) == ("sql", 1, "log", None)
