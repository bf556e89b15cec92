"""MemorySystem: commands, opening versus reading, and auto-optimization on commit."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pjai.errors import ConfigError, NotFoundError, QueryError
from pjai.memory import optimizer
from pjai.memory.search import search
from pjai.memory.system import MemorySystem
from pjai.schema import MemoryImported, PersonaCreated, PersonaUpdated
from pjai.schema.personas import MemoryConfig, ScoringConfig, TierCapacities, TierShares
from pjai.schema.selection import MemoryFilter
from pjai.schema.types import utc_now
from pjai.store import Store
from tests.helpers import memory

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)

FILL = ScoringConfig(target=TierShares(hot=1, warm=0, cold=0))
"""A target that fills the tiers in order, each up to its capacity."""


def system_with(store: Store, **config: object) -> MemorySystem:
    memory_config = MemoryConfig(**config)  # type: ignore[arg-type]
    store.commit(PersonaCreated(persona_id="p1", name="P", memory=memory_config))
    return MemorySystem(store)


def names(store: Store, event: str) -> int:
    return sum(1 for e in store.events() if e.record.name == event)


def tier_counts(store: Store) -> dict[str, int]:
    rows = store.query(
        "SELECT tier, count(*) AS n FROM memories WHERE deleted_at IS NULL GROUP BY tier"
    )
    return {r.tier: r.n for r in rows}


def test_add_update_delete_restore(store: Store) -> None:
    system = system_with(store, auto_optimize=False)
    added = system.add("p1", "the first note", memory_id="m1", tags=["x"], importance=0.7)
    assert (added.id, added.content, added.tags, added.importance) == (
        "m1",
        "the first note",
        ["x"],
        0.7,
    )
    system.update("p1", "m1", content="the changed note")
    system.delete("p1", "m1")
    deleted = system.get("m1")
    assert deleted is not None
    assert (deleted.content, deleted.deleted_at is not None) == ("the changed note", True)
    system.restore("p1", "m1")
    restored = system.get("m1")
    assert restored is not None
    assert restored.deleted_at is None
    assert system.get("nothing") is None


def test_add_makes_an_id(store: Store) -> None:
    system = system_with(store, auto_optimize=False)
    a, b = system.add("p1", "one"), system.add("p1", "two")
    assert a.id != b.id


def test_open_counts_an_access_get_and_search_do_not(store: Store) -> None:
    system = system_with(store, auto_optimize=False)
    system.add("p1", "lighthouse keeper", memory_id="m1")
    system.get("m1")
    assert [h.memory_id for h in search(store, "lighthouse")] == ["m1"]
    assert names(store, "v1.MemoryAccessed") == 0
    first = system.open("m1")
    second = system.open("m1")
    assert (first.access_count, second.access_count) == (1, 2)
    assert second.last_accessed_at is not None
    assert names(store, "v1.MemoryAccessed") == 2


def test_open_refuses_deleted_and_unknown_memories(store: Store) -> None:
    system = system_with(store, auto_optimize=False)
    system.add("p1", "soon gone", memory_id="m1")
    system.delete("p1", "m1")
    with pytest.raises(QueryError, match="no live memory 'm1'"):
        system.open("m1")
    with pytest.raises(QueryError, match="no live memory 'ghost'"):
        system.open("ghost")


def test_over_capacity_is_optimized_on_commit(store: Store) -> None:
    system = system_with(store, capacities=TierCapacities(hot=2, warm=3, cold=100), scoring=FILL)
    for i in range(8):
        system.add(
            "p1", f"note {i}", memory_id=f"m{i}", tier="hot", pinned=False, importance=i / 10
        )
    assert tier_counts(store) == {"hot": 2, "warm": 3, "cold": 3}
    assert names(store, "v1.MemoryTierChanged") > 0
    assert not system.over_limits("p1")


def test_without_auto_optimize_nothing_moves(store: Store) -> None:
    system = system_with(
        store, auto_optimize=False, max_memories=2, capacities=TierCapacities(hot=2)
    )
    system.commit(*[memory(f"m{i}", tier="hot") for i in range(5)])
    assert tier_counts(store) == {"hot": 5}
    assert names(store, "v1.MemoryTierChanged") == 0
    assert not system.over_limits("p1")


def test_over_max_memories(store: Store) -> None:
    system = system_with(store, max_memories=2)
    store.commit(memory("a", importance=0.1), memory("b", importance=0.9))
    assert not system.over_limits("p1")
    store.commit(memory("c", importance=0.8))
    assert system.over_limits("p1")
    system.optimize("p1")
    assert not system.over_limits("p1")
    unimportant = system.get("a")
    assert unimportant is not None
    assert unimportant.deleted_at is not None


def test_an_add_that_frees_no_space_deletes_nothing_over_max_memories(store: Store) -> None:
    system = system_with(store, max_memories=2)
    system.add("p1", "mine", memory_id="a", importance=0.1)
    assert system.room("p1") == 1
    system.add("p1", "theirs", memory_id="b", importance=1.0, free_space=False)
    system.add("p1", "theirs too", memory_id="c", importance=1.0, free_space=False)
    assert system.room("p1") == 0
    kept = system.get("a")
    assert kept is not None
    assert kept.deleted_at is None  # a plugin's add makes no room
    system.add("p1", "mine again", memory_id="d", importance=0.9)
    assert names(store, "v1.MemoryDeleted") == 1  # the user's own add still does


def test_a_restore_at_max_memories_is_refused_naming_the_limit(store: Store) -> None:
    # Its run would delete a memory for space: this one (undoing the restore) or another
    # that the user did not touch. Either way nothing is deleted and the limit is named.
    system = system_with(store, max_memories=2)
    system.add("p1", "unimportant", memory_id="a", importance=0.1)
    system.add("p1", "important", memory_id="b", importance=0.9)
    system.delete("p1", "a")
    system.delete("p1", "b")
    system.add("p1", "kept", memory_id="c", importance=0.2)
    system.add("p1", "kept too", memory_id="d", importance=0.9)
    refused = r"P \(p1\) holds 2 live memories and its memory.max_memories is 2"
    with pytest.raises(ConfigError, match=refused):
        system.restore("p1", "a")  # the lowest-scored: its restore would be undone
    with pytest.raises(ConfigError, match=refused):
        system.restore("p1", "b")  # c would make room for it
    live = "SELECT id FROM memories WHERE deleted_at IS NULL ORDER BY id"
    assert [r.id for r in store.query(live)] == ["c", "d"]
    store.commit(PersonaUpdated(persona_id="p1", memory=MemoryConfig(max_memories=3)))
    system.restore("p1", "b")
    assert [r.id for r in store.query(live)] == ["b", "c", "d"]


def test_over_max_memories_with_nothing_to_delete_runs_no_optimizer(store: Store) -> None:
    # Every memory is above the threshold: a run could delete none, so a commit does
    # not start one (it would re-rank every memory on every add, and delete nothing).
    system = system_with(store, max_memories=2)
    store.commit(*[memory(m, importance=0.9) for m in ("a", "b", "c")])
    assert not system.over_limits("p1")
    store.commit(memory("d", importance=0.1))
    assert system.over_limits("p1")


def test_a_tier_may_pass_its_capacity_by_one_percent_before_a_run(store: Store) -> None:
    system = system_with(store, capacities=TierCapacities(hot=200, warm=1000, cold=10_000))
    store.commit(*[memory(f"m{i}", tier="hot") for i in range(202)])
    assert not system.over_limits("p1")  # 2 over 200: within 1%
    store.commit(memory("one-more", tier="hot"))
    assert system.over_limits("p1")


def test_a_full_last_tier_with_every_tier_full_runs_no_optimizer(store: Store) -> None:
    # More memories than all capacities: the run could put the cold ones nowhere.
    system = system_with(store, capacities=TierCapacities(hot=1, warm=1, cold=2))
    system.commit(*[memory(f"m{i}", tier=t) for i, t in enumerate(["hot", "warm"] + ["cold"] * 3)])
    assert not system.over_limits("p1")
    store.commit(memory("hot-too", tier="hot"))
    assert system.over_limits("p1")  # but a tier that can pass memories on still runs


def old_memory(memory_id: str, days: int) -> MemoryImported:
    at = NOW - timedelta(days=days)
    return MemoryImported(
        memory_id=memory_id, persona_id="p1", content="x", source="t", created_at=at, updated_at=at
    )


def test_over_the_retention_period(store: Store) -> None:
    system = system_with(store, retention_days=30)
    store.commit(old_memory("recent", 10))
    assert not system.over_limits("p1", now=NOW)
    store.commit(old_memory("old", 40))
    assert system.over_limits("p1", now=NOW)
    assert not system.over_limits("p1", now=NOW - timedelta(days=20))


def test_archived_memories_no_longer_count_against_retention(store: Store) -> None:
    system = system_with(store, retention_days=30)
    store.commit(old_memory("old", 40))
    system.optimize("p1", now=NOW)
    assert store.query("SELECT archived_at FROM memories")[0].archived_at is not None
    assert not system.over_limits("p1", now=NOW)
    before = len(list(store.events()))
    system.add("p1", "a new note")  # no optimizer run
    assert len(list(store.events())) == before + 1


def test_archived_memories_past_retention_that_deletes_are_over_limits(store: Store) -> None:
    # Archived under the archive action, they are still due when the action becomes
    # delete: the next change deletes them, as it would an unarchived one.
    system = system_with(store, retention_days=30)
    store.commit(old_memory("old", 40))
    system.optimize("p1", now=NOW)
    delete = MemoryConfig(retention_days=30, retention_action="delete")
    store.commit(PersonaUpdated(persona_id="p1", memory=delete))
    assert system.over_limits("p1", now=NOW)
    with system.optimizations() as runs:
        system.add("p1", "a new note")
    moves = {(m.memory_id, m.action, m.reason) for r in runs for m in r.moves}
    assert ("old", "deleted", "retention") in moves


def test_archived_memories_over_cold_capacity_start_no_run(store: Store) -> None:
    # The optimizer does not move them: a run for them would change nothing, at every
    # commit.
    caps = TierCapacities(hot=1, warm=1, cold=1)
    system = system_with(store, retention_days=1, capacities=caps)
    store.commit(*[old_memory(f"o{i}", 10) for i in range(3)])
    system.optimize("p1", now=NOW)
    assert tier_counts(store) == {"cold": 3}
    assert not system.over_limits("p1", now=NOW)
    report = system.optimize("p1", now=NOW)
    assert report.events == 0
    assert (
        "3 pinned or archived memories keep the cold tier above its target of 1: the "
        "optimizer does not move them (unpin with pjai memory update ID --unpin; an "
        "archived memory leaves cold when moved)"
    ) in report.notes


def test_a_move_that_retention_would_undo_at_once_is_refused(store: Store) -> None:
    system = system_with(store, retention_days=30)
    recorded = utc_now() - timedelta(days=40)
    store.commit(
        MemoryImported(memory_id="old", persona_id="p1", content="x", source="t",
                       created_at=recorded, updated_at=recorded)
    )  # fmt: skip
    system.optimize("p1")  # archived: cold
    before = len(list(store.events()))
    with pytest.raises(ConfigError, match="retention of 30 days, which archives it: the move"):
        system.move("old", "hot")
    assert len(list(store.events())) == before  # nothing written, nothing undone
    assert system.move("old", "cold", pinned=True)  # where retention keeps it: fine


def test_unknown_or_deleted_persona_is_never_over_limits(store: Store) -> None:
    assert not MemorySystem(store).over_limits("ghost")


def test_links_through_the_system(store: Store) -> None:
    system = system_with(store, auto_optimize=False)
    system.add("p1", "sailing boat harbour regatta", memory_id="m1")
    system.add("p1", "sailing boat harbour storm", memory_id="m2")
    for i, word in enumerate(["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]):
        system.add("p1", f"{word} filler", memory_id=f"z{i}")
    system.link("p1", "z0", "z1", strength=0.01, decay_rate=1.0)
    assert system.auto_link("p1") == 1
    assert system.decay_links("p1", 1) == 1
    rows = store.query("SELECT source_id, target_id FROM memory_links")
    assert [(r.source_id, r.target_id) for r in rows] == [("m1", "m2")]


def test_a_memory_s_links_leave_out_deleted_ones_as_its_neighbours_do(store: Store) -> None:
    system = system_with(store, auto_optimize=False)
    for name in ("a", "b", "c"):
        system.add("p1", f"{name} text", memory_id=name)
    system.link("p1", "a", "b")
    system.link("p1", "c", "a")
    system.delete("p1", "b")
    assert [(r.source_id, r.target_id) for r in system.links_of("a")] == [("c", "a")]
    assert len(system.links_of("a", to_deleted=True)) == 2


def test_a_new_importance_re_ranks_with_its_reason(store: Store) -> None:
    system = system_with(store, capacities=TierCapacities(hot=1, warm=10, cold=10), scoring=FILL)
    system.add("p1", "a", memory_id="a", importance=0.9, tier="hot", pinned=False)
    system.add("p1", "b", memory_id="b", importance=0.2)
    system.update("p1", "b", importance=1.0)
    args = [
        json.loads(bytes(e.record.args))
        for e in store.events()
        if e.record.name == "v1.MemoryTierChanged"
    ]
    moves = {(a["memory_id"], a["tier"], a["reason"]) for a in args}
    assert moves == {("b", "hot", "importance_change"), ("a", "warm", "optimization")}
    system.update("p1", "b", content="changed text")  # no importance: no re-rank
    assert names(store, "v1.MemoryTierChanged") == 2


def test_one_optimizer_run_per_persona_at_a_time(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = system_with(
        store,
        auto_optimize=False,
        capacities=TierCapacities(hot=1, warm=10, cold=10),
        scoring=FILL,
    )
    for i in range(3):
        system.add(
            "p1", f"note {i}", memory_id=f"m{i}", importance=0.5 + i / 10, tier="hot", pinned=False
        )
    slow = optimizer.scored_memories

    def planned_slowly(*args: Any) -> Any:
        found = slow(*args)
        time.sleep(0.05)  # both runs would plan from the same state without the lock
        return found

    monkeypatch.setattr(optimizer, "scored_memories", planned_slowly)
    systems = [system, MemorySystem(store)]  # as two commands would each make one
    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(lambda s: s.optimize("p1", now=NOW), systems))
    assert sorted(r.events for r in reports) == [0, 2]
    assert names(store, "v1.MemoryTierChanged") == 2


def test_a_tier_given_on_add_holds_when_another_memory_changes(store: Store) -> None:
    system = system_with(store)
    kept = system.add("p1", "keep me cold", memory_id="kept", tier="cold", importance=1.0)
    assert (kept.tier, kept.pinned) == ("cold", True)
    for i in range(9):
        system.add("p1", f"note {i}", memory_id=f"m{i}", importance=0.5)
    assert [m.pinned for m in system.list_memories(MemoryFilter(tiers=["warm"]))] == [False] * 9
    with system.optimizations() as runs:
        system.update("p1", "m3", importance=0.9)  # re-ranks the persona
    cold = system.get("kept")
    assert cold is not None
    assert (cold.tier, cold.pinned) == ("cold", True)
    (run,) = runs
    moved = {m.memory_id: (m.tier, m.to, m.reason) for m in run.moves}
    assert "kept" not in moved
    assert moved["m3"] == ("warm", "hot", "importance_change")
    # 10 memories: 1 hot, 3 warm, 6 cold, one of them the pinned one.
    assert len(moved) == run.events == 6  # m3 to hot; 5 of the others to cold


def test_a_move_by_hand_pins_and_unpinning_lets_the_optimizer_move_it(store: Store) -> None:
    system = system_with(store, auto_optimize=False)
    system.add("p1", "one", memory_id="m1", importance=0.1)
    system.add("p1", "two", memory_id="m2", importance=0.9)
    system.add("p1", "three", memory_id="m3", importance=0.5)
    assert system.move("m1", "hot")
    moved = system.get("m1")
    assert moved is not None
    assert (moved.tier, moved.pinned) == ("hot", True)
    assert not system.move("m1", "hot")  # pinned there already: nothing to do
    first = system.optimize("p1")  # 3 memories: 1 hot, 1 warm, 1 cold; m1 holds hot
    assert [(m.memory_id, m.to) for m in first.moves] == [("m3", "cold")]
    system.update("p1", "m1", pinned=False)
    report = system.optimize("p1")
    assert [(m.memory_id, m.to) for m in report.moves] == [
        ("m2", "hot"),
        ("m3", "warm"),
        ("m1", "cold"),
    ]
    # Choosing the tier it is in pins it too.
    assert system.move("m1", "cold")
    assert [m.id for m in system.list_memories(MemoryFilter()) if m.pinned] == ["m1"]


def test_archiving_unpins(store: Store) -> None:
    system = system_with(store, retention_days=30)
    store.commit(
        MemoryImported(
            memory_id="old", persona_id="p1", content="x", source="t", tier="hot", pinned=True,
            created_at=NOW - timedelta(days=40), updated_at=NOW - timedelta(days=40),
        )
    )  # fmt: skip
    system.optimize("p1", now=NOW)
    archived = system.get("old")
    assert archived is not None
    assert (archived.tier, archived.pinned, archived.archived_at is not None) == (
        "cold",
        False,
        True,
    )


def test_a_tier_full_of_pinned_memories_is_not_over_limits(store: Store) -> None:
    system = system_with(store, capacities=TierCapacities(hot=1))
    system.add("p1", "a", tier="hot")
    system.add("p1", "b", tier="hot")
    assert tier_counts(store) == {"hot": 2}
    assert not system.over_limits("p1")


def test_events_written_before_pinning_read_as_not_pinned() -> None:
    from pjai.schema import SCHEMA

    added = SCHEMA.decode(
        "v1.MemoryAdded", b'{"memory_id":"m","persona_id":"p","content":"x","tier":"cold"}'
    )
    moved = SCHEMA.decode(
        "v1.MemoryTierChanged",
        b'{"memory_id":"m","persona_id":"p","tier":"hot","reason":"manual"}',
    )
    assert (added.pinned, moved.pinned) == (False, False)


def test_search_like_mem0(store: Store) -> None:
    system = system_with(store, auto_optimize=False)
    system.add("p1", "Likes green tea in the morning", memory_id="tea")
    system.add("p1", "Plays chess on Sundays", memory_id="chess")
    hits = system.search("tea", persona_id="p1")
    assert [h.memory_id for h in hits] == ["tea"]
    assert [h.memory_id for h in system.search("chess")] == ["chess"]
    assert names(store, "v1.MemoryAccessed") == 0
    with pytest.raises(NotFoundError, match="no persona 'ghost'"):
        system.search("tea", persona_id="ghost")


def test_a_small_cold_tier_with_room_above_does_not_rerun_the_optimizer_on_every_add(
    store: Store,
) -> None:
    # Cold's capacity is 10, but hot and warm have room for 1,100: a run brings cold
    # within its capacity, and the adds after it start no run of their own.
    system = system_with(store, capacities=TierCapacities(hot=100, warm=1_000, cold=10))
    for i in range(100):
        system.add("p1", f"memory {i}", memory_id=f"m{i:03}")
    report = system.optimize("p1", now=NOW)
    assert report.tiers_after == {"hot": 10, "warm": 80, "cold": 10}
    with system.optimizations() as runs:
        for i in range(5):
            system.add("p1", f"more {i}")
    assert runs == []


def test_a_memory_past_retention_is_archived_by_the_run_its_age_starts(store: Store) -> None:
    # The check that starts a run and the run agree on the exact time: at the hour,
    # the run archived nothing, and each commit meanwhile started another.
    system = system_with(store, retention_days=1)
    now = datetime(2026, 11, 26, 12, 45, tzinfo=UTC)
    at = now - timedelta(days=1, minutes=10)
    store.commit(
        MemoryImported(
            memory_id="old", persona_id="p1", content="old", source="t", created_at=at,
            updated_at=at,
        )
    )  # fmt: skip
    assert system.over_limits("p1", now=now)
    assert system.optimize("p1", now=now).archived == 1
    assert not system.over_limits("p1", now=now)
