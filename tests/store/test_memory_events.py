"""Cold compression, archives, links, bookmarks and the full-text index in the store."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from pjai.errors import EventValidationError, MaterializationError
from pjai.schema import (
    BookmarkCreated,
    BookmarkDeleted,
    BookmarkFilters,
    BookmarkUpdated,
    Event,
    MemoryArchived,
    MemoryLinked,
    MemoryLinksDecayed,
    MemoryLinkUpdated,
    MemoryTierChanged,
    MemoryUnlinked,
    MemoryUpdated,
    PersonaDeleted,
    PersonaImported,
    PersonaUpdated,
)
from pjai.schema.personas import NO_PERSONA_ID, MemoryConfig, ScoringConfig, TierShares
from pjai.schema.records import EventRecord, Position
from pjai.store import Store
from tests.helpers import memory, persona


def raw_content(store: Store, memory_id: str) -> object:
    return next(
        store.stream(f"SELECT content FROM memories WHERE id = '{memory_id}'", typed=False)
    )[0]


def search(store: Store, words: str) -> list[str]:
    rows = store.query(
        "SELECT m.id FROM memories_fts JOIN memories m ON m.rowid = memories_fts.rowid "
        "WHERE memories_fts MATCH ? ORDER BY m.id",
        [words],
    )
    return [r.id for r in rows]


def test_cold_content_is_compressed_and_read_back(store: Store) -> None:
    text = "the quick brown fox jumps over the lazy dog " * 20
    store.commit(
        persona("p1"),
        memory("m1", content=text),
        memory("m2", content="cold from the start", tier="cold"),
    )
    assert raw_content(store, "m1") == text
    assert isinstance(raw_content(store, "m2"), bytes)
    store.commit(
        MemoryTierChanged(memory_id="m1", persona_id="p1", tier="cold", reason="age_decay")
    )
    stored = raw_content(store, "m1")
    assert isinstance(stored, bytes)
    assert len(stored) < len(text) / 5
    assert store.query("SELECT content FROM memories WHERE id = 'm1'")[0].content == text
    store.commit(MemoryUpdated(memory_id="m1", persona_id="p1", content="new cold words"))
    assert isinstance(raw_content(store, "m1"), bytes)
    assert (
        store.query("SELECT content FROM memories WHERE id = 'm1'")[0].content == "new cold words"
    )
    store.commit(
        MemoryTierChanged(memory_id="m1", persona_id="p1", tier="hot", reason="access_pattern")
    )
    assert raw_content(store, "m1") == "new cold words"


def test_full_text_index_follows_every_change(store: Store) -> None:
    store.commit(
        persona("p1"), memory("m1", content="Running shoes for the marathon", tags=["sport"])
    )
    assert search(store, "run") == ["m1"]  # stemmed
    assert search(store, "sport") == ["m1"]
    store.commit(MemoryTierChanged(memory_id="m1", persona_id="p1", tier="cold", reason="manual"))
    assert search(store, "marathon") == ["m1"]  # compressed, still indexed
    store.commit(MemoryUpdated(memory_id="m1", persona_id="p1", content="Swimming lessons"))
    assert search(store, "marathon") == []
    assert search(store, "swim") == ["m1"]
    store.rebuild()
    assert search(store, "swim") == ["m1"]


def test_rebase_rolls_the_index_back_too() -> None:
    def upstream(position: int, event: Event) -> EventRecord:
        return EventRecord(
            id=f"up{position}",
            name=event.NAME,
            args=msgspec.Raw(msgspec.json.encode(event)),
            position=Position(position),
            parent=Position(position - 1),
            client_id="other",
            session_id="other",
            at=datetime.now(UTC),
        )

    with Store.memory(sync=True) as store:
        store.commit(persona("p1"), memory("m1", content="pending words"))
        assert search(store, "pending") == ["m1"]
        # Another client created and deleted p1 first: the pending memory no longer applies.
        result = store.rebase(
            [upstream(1, persona("p1")), upstream(2, PersonaDeleted(persona_id="p1"))]
        )
        assert [r.name for r, _ in result.rejected] == ["v1.PersonaCreated", "v1.MemoryAdded"]
        assert store.query("SELECT count(*) AS n FROM memories")[0].n == 0
        assert search(store, "pending") == []


def test_archive_moves_to_cold_and_marks_it(store: Store) -> None:
    store.commit(persona("p1"), memory("m1", content="an old story", tier="hot"))
    store.commit(MemoryArchived(memory_id="m1", persona_id="p1", reason="retention"))
    row = store.query("SELECT tier, archived_at, content FROM memories")[0]
    assert (row.tier, row.content) == ("cold", "an old story")
    assert row.archived_at is not None
    with pytest.raises(MaterializationError, match="unarchived"):
        store.commit(MemoryArchived(memory_id="m1", persona_id="p1"))


def test_links_are_made_updated_decayed_and_removed(store: Store) -> None:
    store.commit(persona("p1"), memory("a"), memory("b"), memory("c", "p1"))
    store.commit(
        MemoryLinked(
            persona_id="p1",
            source_id="a",
            target_id="b",
            kind="causal",
            strength=0.8,
            decay_rate=0.1,
        ),
        MemoryLinked(persona_id="p1", source_id="a", target_id="c", strength=0.5),
    )
    with pytest.raises(EventValidationError, match="itself"):
        store.commit(MemoryLinked(persona_id="p1", source_id="a", target_id="a"))
    with pytest.raises(MaterializationError, match="no live memory 'zz'"):
        store.commit(MemoryLinked(persona_id="p1", source_id="a", target_id="zz"))
    duplicate = "a memory link with source_id 'a', target_id 'b', kind 'causal' exists"
    with pytest.raises(MaterializationError, match=duplicate):
        store.commit(MemoryLinked(persona_id="p1", source_id="a", target_id="b", kind="causal"))
    store.commit(MemoryLinksDecayed(persona_id="p1", days=10))
    strengths = {
        r.target_id: r.strength for r in store.query("SELECT target_id, strength FROM memory_links")
    }
    assert strengths["b"] == pytest.approx(0.8 * 2.718281828459045**-1)
    assert strengths["c"] == pytest.approx(0.5)  # no decay rate
    store.commit(MemoryLinkUpdated(persona_id="p1", source_id="a", target_id="c", confidence=0.2))
    store.commit(MemoryUnlinked(persona_id="p1", source_id="a", target_id="b", kind="causal"))
    assert [r.target_id for r in store.query("SELECT target_id FROM memory_links")] == ["c"]
    with pytest.raises(MaterializationError, match="no causal link"):
        store.commit(MemoryUnlinked(persona_id="p1", source_id="a", target_id="b", kind="causal"))


def test_bookmarks(store: Store) -> None:
    store.commit(persona("p1"))
    store.commit(
        BookmarkCreated(
            bookmark_id="b1",
            persona_id="p1",
            name="Work",
            filters=BookmarkFilters(hours=[9, 17], tiers=["hot"]),
            colour="#ff8800",
        )
    )
    row = store.query("SELECT * FROM bookmarks")[0]
    assert (row.name, row.filters["hours"], row.colour) == ("Work", [9, 17], "#ff8800")
    store.commit(BookmarkUpdated(bookmark_id="b1", persona_id="p1", description="9 to 5"))
    with pytest.raises(EventValidationError, match="time_from"):
        store.commit(
            BookmarkUpdated(
                bookmark_id="b1",
                persona_id="p1",
                time_from=datetime(2026, 2, 1, tzinfo=UTC),
                time_to=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )
    store.commit(BookmarkDeleted(bookmark_id="b1", persona_id="p1"))
    with pytest.raises(MaterializationError):
        store.commit(BookmarkDeleted(bookmark_id="b1", persona_id="p1"))


@pytest.mark.parametrize("kind", ["created", "imported"])
def test_no_persona_takes_the_id_of_the_key_scope_of_no_persona(store: Store, kind: str) -> None:
    # Its keys would be that scope's: erasing it would destroy them.
    made = persona(NO_PERSONA_ID)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    if kind == "imported":
        made = PersonaImported(
            **msgspec.structs.asdict(made), source="pjai-desktop", created_at=at, updated_at=at
        )
    with pytest.raises(EventValidationError, match="kept for what belongs to no persona") as caught:
        store.commit(made)
    assert caught.value.field == "persona_id"
    assert store.query("SELECT id FROM personas") == []


def test_scoring_settings_are_checked(store: Store) -> None:
    store.commit(persona("p1"))
    zero = ScoringConfig(importance_weight=0, recency_weight=0, frequency_weight=0, links_weight=0)
    with pytest.raises(EventValidationError, match="positive weight"):
        store.commit(PersonaUpdated(persona_id="p1", memory=MemoryConfig(scoring=zero)))
    lopsided = ScoringConfig(target=TierShares(hot=0.5, warm=0.5, cold=0.5))
    with pytest.raises(EventValidationError, match="add up to 1"):
        store.commit(PersonaUpdated(persona_id="p1", memory=MemoryConfig(scoring=lopsided)))
    store.commit(
        PersonaUpdated(
            persona_id="p1", memory=MemoryConfig(scoring=ScoringConfig(half_life_days=7))
        )
    )
    assert (
        store.query("SELECT memory_scoring FROM personas")[0].memory_scoring["half_life_days"] == 7
    )
