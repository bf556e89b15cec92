"""An erased persona's id given again, on a device whose PostgreSQL primary keeps the
sensitive columns sealed: each row is sealed with the key of the persona it belongs
to, so that the erasure of the one leaves the other's rows readable in SQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pjai.app import DataDir, tending
from pjai.errors import ErasedValueError, MaterializationError
from pjai.schema import SCHEMA, MemoryFilter
from pjai.schema.ops import Insert, Op
from pjai.schema.sealed import sealed_with
from pjai.security import FieldCodec
from pjai.security.columns import PREFIX, ColumnSealer
from pjai.sql.engine import PoolConfig, sqlite_url
from pjai.sql.shards import ShardSet
from tests.databases import postgres_schema
from tests.helpers import memory, persona, projections
from tests.security.test_reused_id import (
    NEW,
    Devices,
    ada_keys,
    each_reads_the_new_ada,
    erase_ada,
    new_ada,
    no_key_exchange,
    old_ada,
    ring,
    three_devices,
)


@pytest.fixture
def sealed_desk(tmp_path: Path) -> Iterator[Devices]:
    """Three devices, the desk's SQL primary a PostgreSQL database sealing its columns."""
    with (
        postgres_schema() as url,
        three_devices(tmp_path, {"PJAI_SQL_SHARDS": url, "PJAI_SQL_SEALED": "true"}) as devices,
    ):
        assert devices.desk.sql_sealed()
        yield devices


def each_sql_reads_the_new_ada(devices: Devices) -> None:
    """Every device's SQL primary holds the new Ada, readable."""
    for each in (devices.laptop, devices.desk, devices.phone):
        with DataDir(each.path, environ=each.environ).open() as manager:
            assert manager.personas.get("ada").description == NEW, each.path.name
            listed = manager.memories.list(MemoryFilter(persona_id="ada"))
            assert [m.content for m in listed] == [f"{NEW} memory"], each.path.name


def test_a_sealed_primary_seals_the_new_persona_s_rows_with_her_key_not_the_erased_one_s(
    sealed_desk: Devices, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The desk holds the old Ada, her key current, and the new Ada's key; her erasure
    # and the new Ada's events come to it in one pull, before her key's deletion: the
    # new Ada's rows go to SQL while the old Ada's key is still current there.
    devices = sealed_desk
    old_ada(devices.laptop)
    assert devices.sync_once(devices.laptop).level
    old_keys = ada_keys(devices.laptop)
    assert devices.sync_once(devices.desk).level  # the old Ada, her key
    new_ada(devices.phone)  # offline: it has not heard of Ada
    devices.keys_only(devices.phone)  # shares the new Ada's key
    devices.keys_only(devices.desk)  # takes it; the old Ada's stays current
    assert len(ada_keys(devices.desk)) == 2
    erase_ada(devices.laptop)
    assert devices.sync_once(devices.laptop).level
    assert devices.sync_once(devices.phone).level  # her Ada comes after the erasure
    with monkeypatch.context() as later:
        later.setattr(tending, "sync_keys", no_key_exchange)
        assert devices.sync_once(devices.desk).level  # the erasure and the new Ada
    assert not ada_keys(devices.desk) & old_keys
    devices.everyone_syncs()
    each_sql_reads_the_new_ada(devices)
    each_reads_the_new_ada(devices, old_keys)


def sealed_under(ops: list[Op]) -> set[str]:
    """The ids of the keys that sealed the values ``ops`` write."""
    return {
        v[len(PREFIX) :].split(":")[0]
        for op in ops
        if isinstance(op, Insert)
        for v in op.values.values()
        if isinstance(v, str) and v.startswith(PREFIX)
    }


def test_an_event_s_columns_are_sealed_with_the_key_that_sealed_the_event(
    tmp_path: Path,
) -> None:
    with ring(tmp_path) as keys:
        codec, sealer = FieldCodec(keys), ColumnSealer(keys)
        name, _, args = SCHEMA.encode(memory("m1", "p1", content="words"))
        old, _ = keys.start("p1")
        stored = codec.seal("e1", name, args)  # her key, while it was current
        new, _ = keys.start("p1")  # a persona given her id again, current now
        ops: list[Op] = [Insert("memories", {"id": "m1", "persona_id": "p1", "content": "w"})]
        assert sealed_under(sealer.seal_ops(ops, "p1", stored)) == {old}
        assert sealed_under(sealer.seal_ops(ops, "p1", args)) == {new}  # none sealed
        assert sealed_under(sealer.seal_ops(ops, "p1")) == {new}
        other = codec.seal("e2", *SCHEMA.encode(memory("m2", "p2"))[::2])
        assert sealed_under(sealer.seal_ops(ops, "p1", other)) == {new}  # not p1's key
        keys.erase("p1", {old})
        with pytest.raises(ErasedValueError, match=f"data key {old} of p1 is erased"):
            sealer.seal_ops(ops, "p1", stored)


def test_an_event_whose_persona_was_erased_since_it_was_read_is_not_written_to_sql(
    tmp_path: Path,
) -> None:
    # Its key erased between reading the event and writing its rows: they are not
    # sealed with another key of the id (a persona's given it again) but refused.
    with ring(tmp_path) as keys:
        codec = FieldCodec(keys)
        shards = ShardSet(
            [sqlite_url(tmp_path / "sql.db")], SCHEMA, PoolConfig(), sealer=ColumnSealer(keys)
        )
        try:
            shards.upgrade(())
            items = projections([persona("p1"), persona("p2"), memory("m1")], codec=codec)
            records = [item.record for item in items]
            keys.start("p1")  # a persona given her id again
            old = sealed_with(bytes(records[0].args))
            assert old is not None
            keys.erase("p1", {old})
            writer = shards.shards[0].writer
            with (
                pytest.raises(MaterializationError, match=f"data key {old} of p1 is erased"),
                writer.transaction() as tx,
            ):
                tx.project(items, strict=True)
            with writer.transaction() as tx:
                projected = tx.project(items, strict=False)
            assert projected.applied == 1
            assert [r.id for r, _ in projected.quarantined] == [records[0].id, records[2].id]
        finally:
            shards.dispose()
