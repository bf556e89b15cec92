"""The store switch and quarantined events: the store does not go off over them."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from pjai.errors import ConfigError, StoreError
from pjai.hybrid import HybridDatabaseManager
from tests.helpers import memory
from tests.hybrid.test_faults import quick_to_give_up, sql_locked

INTRUDER = (
    "INSERT INTO memories (id, persona_id, type, name, content, summary, tags,"
    " importance, tier, access_count, occurred_at, created_at, updated_at) VALUES"
    " ('m1', 'p1', 'note', '', 'intruder', '', '[]', 0.5, 'warm', 0,"
    " '2020-01-01T00:00:00.000000+00:00', '2020-01-01T00:00:00.000000+00:00',"
    " '2020-01-01T00:00:00.000000+00:00')"
)
"""A row m1 written into SQL behind PJai's back: SQL refuses the real m1 later."""


def held_back_from_sql(manager: HybridDatabaseManager, primary: Path) -> None:
    """Commit m1 and m2 to the store only, SQL locked, while someone writes another m1
    into SQL: catching SQL up will quarantine the real m1 there."""
    with sql_locked(primary) as blocker:
        manager.commit(memory("m1"))
        manager.commit(memory("m2"))
        blocker.execute(INTRUDER)
        blocker.execute("COMMIT")


def content_of_m1(manager: HybridDatabaseManager) -> str:
    return str(manager.query("SELECT content FROM memories WHERE id = 'm1'")[0][0])


def test_the_store_does_not_go_off_over_events_sql_refused(tmp_path: Path) -> None:
    # With the store off, SQL is all that is read and what store-off commits build on:
    # an event SQL refused, and no one reviewed, would be gone from sight.
    with quick_to_give_up(tmp_path) as manager:
        held_back_from_sql(manager, tmp_path / "primary.db")
        assert manager.store is not None
        refused = list(manager.store.events())[1].record  # m1, at e2
        with pytest.raises(ConfigError, match="cannot switch the reactive store off") as caught:
            manager.set_flag("use_livestore", False)
        message = str(caught.value)
        assert f"v1.MemoryAdded {refused.id} at e2 (refused by SQL" in message
        assert "a memory with id 'm1' exists" in message
        assert "pjai repair --side sql" in message
        assert "pjai repair --ack-quarantine" in message
        assert manager.use_livestore
        assert manager.flags["use_livestore"]
        assert content_of_m1(manager) == "content of m1"
        assert manager.quarantine().sql == 1  # the switch-off's catch-up quarantined it
        # The way it names works: SQL rebuilt from the store's log takes the event.
        manager.repair("sql")
        manager.set_flag("use_livestore", False)
        assert content_of_m1(manager) == "content of m1"
        assert manager.memories.get("m2") is not None


def test_acknowledged_quarantined_events_let_the_store_go_off(tmp_path: Path) -> None:
    with quick_to_give_up(tmp_path) as manager:
        held_back_from_sql(manager, tmp_path / "primary.db")
        manager.catch_up()
        with pytest.raises(ConfigError, match="quarantined"):
            manager.set_flag("use_livestore", False)
        assert manager.acknowledge_quarantine().sql == 1
        manager.set_flag("use_livestore", False)
        assert not manager.use_livestore
        assert content_of_m1(manager) == "intruder"  # as reviewed and accepted


@pytest.mark.parametrize("source", ["file", "environment"])
def test_opening_with_the_store_off_is_refused_over_quarantined_events(
    tmp_path: Path, source: str
) -> None:
    # `pjai flags set use_livestore false` writes the flags file and opens the
    # directory; PJAI_USE_LIVESTORE=false opens it so too.
    url = f"sqlite:///{tmp_path / 'primary.db'}"
    with quick_to_give_up(tmp_path) as manager:
        held_back_from_sql(manager, tmp_path / "primary.db")
    flags = tmp_path / "data" / "flags.json"
    environ = {"PJAI_USE_LIVESTORE": "false"} if source == "environment" else {}
    if source == "file":
        flags.write_text('{"use_livestore": false}')
    with pytest.raises(ConfigError, match=r"wait for review \(1 refused by SQL\)") as caught:
        HybridDatabaseManager.open(tmp_path / "data", sql_urls=[url], environ=environ)
    if source == "environment":
        assert "run them with PJAI_USE_LIVESTORE unset" in str(caught.value)
    else:
        assert "pjai flags set use_livestore true" in str(caught.value)
    assert quarantined_in_sql(tmp_path / "primary.db") == 1  # kept, for the review
    flags.write_text('{"use_livestore": true}')  # as `pjai flags set use_livestore true`
    with HybridDatabaseManager.open(tmp_path / "data", sql_urls=[url], environ={}) as on:
        on.repair("sql")
    if source == "file":
        flags.write_text('{"use_livestore": false}')
    with HybridDatabaseManager.open(tmp_path / "data", sql_urls=[url], environ=environ) as off:
        assert not off.use_livestore
        assert content_of_m1(off) == "content of m1"
        assert off.memories.get("m2") is not None


@contextlib.contextmanager
def on_beside_off(
    tmp_path: Path,
) -> Iterator[tuple[HybridDatabaseManager, HybridDatabaseManager]]:
    """Two processes on one directory and SQLite primary (``primary.db`` in
    ``tmp_path``): one with the store on (:func:`quick_to_give_up`), one with it off."""
    url = f"sqlite:///{tmp_path / 'primary.db'}"
    off_env = {"PJAI_USE_LIVESTORE": "false"}
    with (
        quick_to_give_up(tmp_path) as on,
        HybridDatabaseManager.open(tmp_path / "data", sql_urls=[url], environ=off_env) as off,
    ):
        yield on, off


def refused_off_over_quarantine(manager: HybridDatabaseManager, tmp_path: Path) -> None:
    """SQL (``primary.db`` in ``tmp_path``) quarantines an event of ``manager``'s, then
    the flags file says off (another process set it): ``manager`` follows at its next
    call and is refused."""
    held_back_from_sql(manager, tmp_path / "primary.db")
    manager.catch_up()
    manager.flags.path.write_text('{"use_livestore": false}')
    with pytest.raises(ConfigError, match="cannot switch the reactive store off"):
        manager.refresh()


def quarantined_in_sql(primary: Path) -> int:
    check = sqlite3.connect(primary)
    try:
        query = "SELECT count(*) FROM pjai_journal WHERE status = 'quarantined'"
        return int(check.execute(query).fetchone()[0])
    finally:
        check.close()


def test_with_the_store_off_health_raises_the_alarm_over_events_sql_refused(
    tmp_path: Path,
) -> None:
    # A process with the store off reads SQL alone; another, with the store on,
    # catches SQL up and SQL refuses one of its events.
    with on_beside_off(tmp_path) as (on, off):
        assert off.health().status == "ok"
        held_back_from_sql(on, tmp_path / "primary.db")
        on.catch_up()
        health = off.health()
        assert health.status == "degraded"
        assert health.quarantine.sql == 1
        assert [q.name for q in health.quarantine.events] == ["v1.MemoryAdded"]
        assert off.acknowledge_quarantine().sql == 1
        assert off.health().status == "ok"


def quarantined_by_the_store(on: HybridDatabaseManager, off: HybridDatabaseManager) -> str:
    """m1 committed with the store off, while the store's state holds another m1
    (written behind PJai's back): ``on`` takes it in from SQL and its store quarantines
    it. Returns m1's event id."""
    with sqlite3.connect(on.store_path) as raw:
        raw.execute(INTRUDER)
    (record,) = off.commit(memory("m1"))
    on.catch_up()
    assert on.store is not None
    assert [e.record.id for e in on.store.quarantined()] == [record.id]
    return record.id


def test_with_the_store_off_the_store_files_quarantined_events_are_seen_and_acknowledged(
    tmp_path: Path,
) -> None:
    # A process with the store off does not open the store file, which another process
    # with the store on keeps writing: what that store quarantines is read from the file.
    with on_beside_off(tmp_path) as (on, off):
        refused = quarantined_by_the_store(on, off)
        # And SQL refused a later event: acknowledging it must not pass m1 unseen.
        (later,) = off.commit(memory("m2"))
        with sqlite3.connect(tmp_path / "primary.db") as raw:
            raw.execute(
                "UPDATE pjai_journal SET status = 'quarantined' WHERE event_id = ?", [later.id]
            )
        health = off.health()
        assert health.status == "degraded"
        assert health.store.status == "off"
        assert health.store.quarantined == 1
        assert (health.quarantine.store, health.quarantine.sql) == (1, 1)
        assert [(q.event_id, q.sides) for q in health.quarantine.events] == [
            (refused, ("store",)),
            (later.id, ("sql",)),
        ]
        assert "a memory with id 'm1' exists" in health.quarantine.events[0].reason
        acknowledged = off.acknowledge_quarantine()
        assert (acknowledged.store, acknowledged.sql) == (1, 1)
        assert [q.event_id for q in acknowledged.events] == [refused, later.id]
        assert acknowledged.reviewed_through == later.position.global_seq
        assert off.health().status == "ok"
        assert not on.quarantine().alarm


def test_with_the_store_off_an_unreadable_store_file_is_not_taken_for_one_without_quarantine(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'primary.db'}"
    with quick_to_give_up(tmp_path):
        pass
    store_file = tmp_path / "data" / "store.db"
    with HybridDatabaseManager.open(
        tmp_path / "data", sql_urls=[url], environ={"PJAI_USE_LIVESTORE": "false"}
    ) as off:
        assert off.health().status == "ok"
        garbage = tmp_path / "garbage"
        garbage.write_bytes(b"not a database" * 1000)
        garbage.replace(store_file)
        health = off.health()
        assert health.status == "degraded"
        assert health.store.error is not None
        assert f"cannot read the quarantined events in the store file {store_file}" in (
            health.store.error
        )
        with pytest.raises(StoreError, match="cannot read the quarantined events"):
            off.acknowledge_quarantine()


def test_a_running_process_refused_over_quarantined_events_switches_once_they_are_acknowledged(
    tmp_path: Path,
) -> None:
    # The flags file says off (another process set it): this process follows at its next
    # call and is refused, once, while quarantined events wait; it goes on with the store
    # on (its reads, its commits, its look for other processes' commits), and its
    # periodic look (refresh, as the web app's) switches once they are acknowledged,
    # without the flags file changing again.
    url = f"sqlite:///{tmp_path / 'primary.db'}"
    on_env = {"PJAI_USE_LIVESTORE": "true"}  # another process, kept on the store
    with quick_to_give_up(tmp_path) as manager:
        refused_off_over_quarantine(manager, tmp_path)
        for round_ in range(2):  # each look tries again, and stays on while they wait
            manager.commit(memory(f"m{3 + round_}"))
            assert manager.memories.get(f"m{3 + round_}") is not None
            assert not manager.refresh()
            assert manager.use_livestore
        with HybridDatabaseManager.open(tmp_path / "data", sql_urls=[url], environ=on_env) as other:
            other.commit(memory("m5"))
        assert manager.refresh()  # another process's commit is taken in
        assert manager.memories.get("m5") is not None
        assert manager.use_livestore
        with HybridDatabaseManager.open(tmp_path / "data", sql_urls=[url], environ=on_env) as ack:
            assert ack.acknowledge_quarantine().sql == 1
        manager.commit(memory("m6"))  # an ordinary call does not look again
        assert manager.use_livestore
        manager.refresh()
        assert not manager.use_livestore
        manager.commit(memory("m7"))
        assert manager.memories.get("m7") is not None


def test_a_running_process_refused_over_quarantined_events_follows_the_flag_back_on(
    tmp_path: Path,
) -> None:
    with quick_to_give_up(tmp_path) as manager:
        refused_off_over_quarantine(manager, tmp_path)
        manager.flags.path.write_text('{"use_livestore": true}')
        manager.refresh()
        assert manager.acknowledge_quarantine().sql == 1
        manager.refresh()
        assert manager.use_livestore  # the flag says on again: nothing to switch


def test_a_refused_switch_set_back_on_reads_the_quarantine_no_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pjai.hybrid import switch

    with quick_to_give_up(tmp_path) as manager:
        held_back_from_sql(manager, tmp_path / "primary.db")
        manager.catch_up()
        with pytest.raises(ConfigError, match="cannot switch the reactive store off"):
            manager.set_flag("use_livestore", False)
        looked: list[object] = []
        real = switch.unreviewed
        monkeypatch.setattr(switch, "unreviewed", lambda *a: looked.append(a) or real(*a))
        manager.refresh()
        manager.refresh()
        assert looked == []
        assert manager.use_livestore
