"""Sharding: consistent hashing, routing, cross-shard reads, rebalancing."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pjai.app import DataDir
from pjai.app.upkeep import checkup
from pjai.errors import ConfigError
from pjai.hybrid import HybridDatabaseManager
from pjai.schema import SCHEMA, PersonaActivated
from pjai.sql import journal, migrate
from pjai.sql.rebalance import misplaced, rebalance
from pjai.sql.repositories import MemoryFilter
from pjai.sql.shards import HashRing, ShardSet
from tests.helpers import memory, persona


def test_ring_spreads_keys_evenly() -> None:
    ring = HashRing(4)
    counts = Counter(ring.shard_of(f"persona-{i}") for i in range(20_000))
    assert set(counts) == {0, 1, 2, 3}
    assert max(counts.values()) / min(counts.values()) < 1.6


@given(
    st.integers(min_value=1, max_value=6), st.lists(st.text(min_size=1), min_size=1, max_size=50)
)
def test_adding_a_shard_moves_keys_only_to_it(count: int, keys: list[str]) -> None:
    before, after = HashRing(count), HashRing(count + 1)
    for key in keys:
        assert after.shard_of(key) in (before.shard_of(key), count)


def test_adding_a_shard_moves_about_its_share() -> None:
    before, after = HashRing(3), HashRing(4)
    keys = [f"p{i}" for i in range(10_000)]
    moved = sum(before.shard_of(k) != after.shard_of(k) for k in keys)
    assert 0.15 < moved / len(keys) < 0.35  # about 1/4


def shard_urls(base: Path, count: int) -> list[str]:
    return [f"sqlite:///{base / f'shard{i}.db'}" for i in range(count)]


def ids_on(manager: HybridDatabaseManager, index: int, table: str) -> set[str]:
    with manager.shards.shards[index].engine.connect() as conn:
        return {row[0] for row in conn.exec_driver_sql(f"SELECT id FROM {table}")}


def test_personas_and_their_memories_live_on_one_shard(tmp_path: Path) -> None:
    urls = shard_urls(tmp_path, 3)
    with HybridDatabaseManager.open(tmp_path / "data", sql_urls=urls, environ={}) as manager:
        people = [f"persona-{i}" for i in range(30)]
        manager.commit(*[persona(p) for p in people])
        manager.commit(
            *[memory(f"{p}-m{j}", p, importance=j / 10) for p in people for j in range(3)]
        )
        for index in range(3):
            mine = ids_on(manager, index, "personas")
            assert mine == {p for p in people if manager.shards.for_persona(p).index == index}
            assert {m.rsplit("-m", 1)[0] for m in ids_on(manager, index, "memories")} == mine
        assert all(ids_on(manager, i, "personas") for i in range(3))
        # Reads fan out and merge.
        assert manager.personas.count() == 30
        assert [p.id for p in manager.personas.list()] == sorted(
            people, key=lambda p: (p.upper(), p)
        )
        top = manager.memories.list(limit=5)
        assert [m.importance for m in top] == [0.2] * 5
        assert manager.memories.count(MemoryFilter(persona_id="persona-7")) == 3
        assert manager.memories.statistics().total == 90
        # Activation reaches every shard: exactly one persona is active.
        manager.commit(PersonaActivated(persona_id="persona-3"))
        manager.commit(PersonaActivated(persona_id="persona-21"))
        active = [p.id for p in manager.personas.list() if p.is_active]
        assert active == ["persona-21"]
        assert manager.verify().equal


def test_rebalance_moves_only_personas_that_hash_to_the_new_shard(tmp_path: Path) -> None:
    data = tmp_path / "data"
    rng = random.Random(3)
    with HybridDatabaseManager.open(data, sql_urls=shard_urls(tmp_path, 2), environ={}) as manager:
        people = [f"persona-{rng.random():.8f}" for _ in range(40)]
        manager.commit(*[persona(p) for p in people])
        manager.commit(*[memory(f"{p}-m", p) for p in people])
        # Activations touch every shard; their history must survive moving personas.
        manager.commit(PersonaActivated(persona_id=people[0]))
        manager.commit(PersonaActivated(persona_id=people[1]))
    three = shard_urls(tmp_path, 3)
    expected = {p for p in people if HashRing(3).shard_of(p) == 2}
    assert expected  # the new shard takes some personas
    with pytest.raises(ConfigError, match="run `pjai shards rebalance` first"):
        HybridDatabaseManager.open(data, sql_urls=three, environ={})
    shards = ShardSet(three, SCHEMA)
    for shard in shards:
        migrate.upgrade(shard.engine)
    assert {p for p, _on, _home in misplaced(shards)} == expected
    moved = rebalance(shards, SCHEMA)
    assert {p for p, _from, to in moved.moves} == expected
    assert {to for _p, _from, to in moved.moves} == {2}
    assert moved.rows == 2 * len(expected)
    assert misplaced(shards) == []
    assert len({shard.writer.checkpoint() for shard in shards}) == 1
    assert rebalance(shards, SCHEMA).personas == 0
    shards.dispose()
    with HybridDatabaseManager.open(data, sql_urls=three, environ={}) as manager:
        assert ids_on(manager, 2, "personas") == expected
        assert manager.verify().equal
        assert manager.memories.count() == 40
        manager.commit(*[memory(f"{p}-later", p) for p in sorted(expected)[:3]])
        manager.commit(PersonaActivated(persona_id=sorted(expected)[0]))
        assert manager.verify().equal
        assert manager.health().bridge.lag_events == 0


def test_every_shard_checkpoint_marks_the_head(tmp_path: Path) -> None:
    env = {"PJAI_USE_LIVESTORE": "false"}
    urls = shard_urls(tmp_path, 2)
    with HybridDatabaseManager.open(tmp_path / "data", sql_urls=urls, environ=env) as manager:
        a = next(f"p{i}" for i in range(100) if manager.shards.for_persona(f"p{i}").index == 0)
        b = next(f"p{i}" for i in range(100) if manager.shards.for_persona(f"p{i}").index == 1)
        manager.commit(persona(a), persona(b))
        records = manager.commit(memory("ma", a), memory("mb", b))
        assert records[-1].position.global_seq == 4
        assert [shard.writer.checkpoint() for shard in manager.shards] == [4, 4]
        assert manager.health().bridge.lag_events == 0
    # A second writer takes the next position, not one already used.
    with HybridDatabaseManager.open(tmp_path / "data2", sql_urls=urls, environ=env) as other:
        assert other.commit(memory("mc", a))[0].position.global_seq == 5


class Interrupted(Exception):
    """Stands in for a process killed in the middle of a rebalance."""


def test_an_interrupted_rebalance_goes_on_when_run_again(tmp_path: Path) -> None:
    data = tmp_path / "data"
    people = [f"persona-{i}" for i in range(20)]
    with HybridDatabaseManager.open(data, sql_urls=shard_urls(tmp_path, 2), environ={}) as manager:
        manager.commit(*[persona(p) for p in people])
        manager.commit(*[memory(f"{p}-m", p) for p in people])
        # One event SQL refused, journaled on the shard of the persona that moves.
        moving = next(p for p in people if HashRing(3).shard_of(p) == 2)
        with manager.shards.for_persona(moving).engine.begin() as conn:
            conn.exec_driver_sql(
                "UPDATE pjai_journal SET status = 'quarantined' WHERE persona_id = ? "
                "AND name = 'v1.MemoryAdded'",
                (moving,),
            )
    three = shard_urls(tmp_path, 3)
    shards = ShardSet(three, SCHEMA)
    for shard in shards:
        migrate.upgrade(shard.engine)

    def stop_after_one(done: int, _total: int) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        rebalance(shards, SCHEMA, stop_after_one)
    left = len(misplaced(shards))
    assert left > 0
    # Half-way, no process opens to write, with the old list nor with the new one.
    for env in ({}, {"PJAI_USE_LIVESTORE": "false"}):
        with pytest.raises(ConfigError, match="was shard 1 of 3 when last used"):
            HybridDatabaseManager.open(data, sql_urls=shard_urls(tmp_path, 2), environ=env)
        with pytest.raises(ConfigError, match="run `pjai shards rebalance` first"):
            HybridDatabaseManager.open(data, sql_urls=three, environ=env)
    moved = rebalance(shards, SCHEMA)  # the same command again, where it stopped
    assert moved.personas == left
    assert misplaced(shards) == []
    shards.dispose()
    with HybridDatabaseManager.open(data, sql_urls=three, environ={}) as manager:
        assert manager.verify().equal
        assert manager.memories.count() == 20
        # Its journal entry is on the old shard and the new one: it counts once.
        assert manager.quarantine().sql == 1


def test_a_shard_left_out_of_the_list_is_refused_not_hidden(tmp_path: Path) -> None:
    data = tmp_path / "data"
    three = shard_urls(tmp_path, 3)
    with HybridDatabaseManager.open(data, sql_urls=three, environ={}) as manager:
        manager.commit(*[persona(f"persona-{i}") for i in range(20)])
        assert ids_on(manager, 2, "personas")  # the last shard holds some
    for kept, place in ((three[:2], "shard 1 of 3"), (three[1:], "shard 2 of 3")):
        for env in ({}, {"PJAI_USE_LIVESTORE": "false"}):
            with pytest.raises(ConfigError, match=f"was {place} when last used"):
                HybridDatabaseManager.open(data, sql_urls=kept, environ=env)
    shards = ShardSet(three[:2], SCHEMA)
    with pytest.raises(ConfigError, match="none left out"):
        rebalance(shards, SCHEMA)
    shards.dispose()
    with HybridDatabaseManager.open(data, sql_urls=three, environ={}) as manager:
        assert manager.verify().equal
        assert manager.personas.count() == 20


class Killed(BaseException):
    """The process stops here."""


def one_per_shard(manager: HybridDatabaseManager, people: list[str]) -> tuple[str, str]:
    """A persona of ``people`` on the first shard, and one on the second."""
    first = next(p for p in people if manager.shards.for_persona(p).index == 0)
    second = next(p for p in people if manager.shards.for_persona(p).index == 1)
    return first, second


def directory_with_a_cut_off_commit(tmp_path: Path) -> tuple[list[str], str]:
    """A data directory on two shards whose last commit was cut off between them (see
    :func:`cut_off_between_shards`): the shards' URLs, and the first shard's persona."""
    urls = shard_urls(tmp_path, 2)
    people = [f"persona-{i}" for i in range(10)]
    with HybridDatabaseManager.open(tmp_path / "data", sql_urls=urls, environ={}) as manager:
        manager.commit(*[persona(p) for p in people])
        return urls, cut_off_between_shards(manager, people)


def cut_off_between_shards(manager: HybridDatabaseManager, people: list[str]) -> str:
    """Commit memories "a" and "b" of a persona on each of two shards, the second shard
    committing and the process dying before the first does; the first shard's persona."""
    first, second = one_per_shard(manager, people)
    shard = manager.shards.shards[0]
    real = shard.writer.transaction

    @contextmanager
    def cut_off(doing: str = "writing to SQL") -> Iterator[Any]:
        with real(doing) as tx:
            yield tx
            raise Killed  # after the other shard committed, before this one does

    shard.writer.transaction = cut_off  # type: ignore[method-assign]
    with pytest.raises(Killed):
        manager.commit(memory("a", first), memory("b", second))
    shard.writer.transaction = real  # type: ignore[method-assign]
    return first


def test_a_commit_cut_off_between_two_shards_leaves_a_directory_that_opens_and_repairs(
    tmp_path: Path,
) -> None:
    # One commit over two shards: the second shard committed, the process died before
    # the first did. Its events were never acknowledged; the directory must still open,
    # say what happened, and be made whole by `repair --side sql`.
    urls, first = directory_with_a_cut_off_commit(tmp_path)
    with HybridDatabaseManager.open(tmp_path / "data", sql_urls=urls, environ={}) as manager:
        assert manager.last_error is not None
        assert "journal breaks after" in manager.last_error
        assert not manager.verify().equal
        # A commit would take the lost event's place, and the events after the gap
        # would then seem to follow it: commits wait for the repair.
        with pytest.raises(ConfigError, match="Commits wait until then"):
            manager.commit(memory("c", first))
        health = manager.health()  # doctor says so, not ok
        assert health.status == "degraded"
        assert "journal breaks after" in (health.bridge.last_error or "")
        manager.repair("sql")
        assert manager.verify().equal
        assert manager.health().status == "ok"
        manager.commit(memory("c", first))
        assert {m.id for m in manager.memories.list()} == {"c"}


def test_a_process_commits_again_once_another_repaired_a_commit_cut_off_between_shards(
    tmp_path: Path,
) -> None:
    urls, first = directory_with_a_cut_off_commit(tmp_path)
    with HybridDatabaseManager.open(tmp_path / "data", sql_urls=urls, environ={}) as running:
        with pytest.raises(ConfigError, match="Commits wait until then"):
            running.commit(memory("c", first))
        with HybridDatabaseManager.open(tmp_path / "data", sql_urls=urls, environ={}) as other:
            other.repair("sql")
        running.commit(memory("c", first))
        assert running.health().status == "ok"
        assert running.verify().equal


def test_a_commit_over_two_shards_read_half_made_is_not_taken_for_a_cut_off_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A process with the store on reads SQL's journal shard by shard while another,
    # with the store off, commits over both shards: it must not see a commit cut off
    # (and refuse every commit until restarted), but take the whole commit in.
    urls = shard_urls(tmp_path, 2)
    data = tmp_path / "data"
    people = [f"persona-{i}" for i in range(10)]
    with (
        HybridDatabaseManager.open(data, sql_urls=urls, environ={}) as running,
        HybridDatabaseManager.open(
            data, sql_urls=urls, environ={"PJAI_USE_LIVESTORE": "false"}
        ) as other,
    ):
        first, second = one_per_shard(running, people)
        running.commit(persona(first), persona(second))
        reading = journal.journal_entries
        shards_read: list[object] = []

        def entries(conn: Any, **options: Any) -> Any:
            shards_read.append(conn)
            if len(shards_read) == 2:  # the first shard read, the second not yet
                other.commit(memory("a", first), memory("b", second))
            return reading(conn, **options)

        monkeypatch.setattr(journal, "journal_entries", entries)
        assert running.catch_up() == 2
        monkeypatch.undo()
        assert running.last_error is None
        running.commit(memory("c", first))
        assert running.verify().equal


def test_a_store_off_commit_cut_off_between_two_shards_stops_commits_until_repaired(
    tmp_path: Path,
) -> None:
    # With the store off, SQL is all there is. Commits made after the gap used to be
    # taken: the store never took them in (they follow the gap), and the repair that
    # mends the gap with the store on dropped them with the cut-off commit's events.
    urls = shard_urls(tmp_path, 2)
    data = tmp_path / "data"
    off = {"PJAI_USE_LIVESTORE": "false"}
    people = [f"persona-{i}" for i in range(10)]
    with HybridDatabaseManager.open(data, sql_urls=urls, environ={}) as manager:
        manager.commit(*[persona(p) for p in people])
    with HybridDatabaseManager.open(data, sql_urls=urls, environ=off) as manager:
        first = cut_off_between_shards(manager, people)
    with HybridDatabaseManager.open(data, sql_urls=urls, environ=off) as manager:
        assert "journal breaks after" in (manager.last_error or "")
        with pytest.raises(ConfigError, match="stand at different checkpoints"):
            manager.commit(memory("c", first))
        manager.repair("sql")  # from SQL's journal up to the gap
        manager.commit(memory("c", first))
        assert {m.id for m in manager.memories.list(MemoryFilter(persona_id=first))} == {"c"}
    with HybridDatabaseManager.open(data, sql_urls=urls, environ={}) as manager:
        assert manager.last_error is None  # the store took all of SQL's journal in
        assert {row[0] for row in manager.query("SELECT id FROM memories")} == {"c"}
        assert manager.verify().equal


def test_doctor_answers_with_several_shards_and_the_store_off(tmp_path: Path) -> None:
    urls = shard_urls(tmp_path, 2)
    with HybridDatabaseManager.open(tmp_path / "data", sql_urls=urls, environ={}) as manager:
        manager.commit(*[persona(f"persona-{i}") for i in range(4)])
        manager.commit(*[memory(f"m{i}", f"persona-{i}") for i in range(4)])
        assert all(ids_on(manager, i, "memories") for i in range(2))
    off = {"PJAI_USE_LIVESTORE": "false", "PJAI_SQL_SHARDS": ",".join(urls)}
    found = checkup(DataDir(tmp_path / "data", environ=off))
    assert found.health.status == "ok"
    # The vectors' state reads every persona's memories: no one shard holds them.
    assert isinstance(found.vectors, str)
    assert "this read has rows on 2 SQL shards" in found.vectors
