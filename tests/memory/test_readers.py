"""Memory queries answer alike on the store and on the SQL primary with the store off.

Search, health, the dashboard, the timeline, bookmarks and the graph run on the
reactive store, on an SQLite SQL primary and on PostgreSQL (``PJAI_USE_LIVESTORE``
false), and give the same answers for one small set of memories. Keyword scores are on
different scales per backend, so search is compared by what it finds.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pjai.app.personas import Personas
from pjai.errors import QueryError
from pjai.hybrid import HybridDatabaseManager
from pjai.memory.analytics import (
    DASHBOARD,
    Alert,
    Health,
    dashboard_query,
    health,
    health_from_rows,
    health_query,
)
from pjai.memory.graph import Neighbour, components, neighbours
from pjai.memory.optimizer import load_persona, scored_memories
from pjai.memory.search import SearchFilter, search
from pjai.memory.system import MemorySystem
from pjai.memory.timeline import Bucket, bookmark_memories, timeline
from pjai.schema import (
    BookmarkCreated,
    BookmarkFilters,
    MemoryDeleted,
    MemoryImported,
    MemoryLinked,
    PersonaCreated,
)
from pjai.schema.personas import MemoryConfig, ScoringConfig, TierCapacities
from tests.helpers import memory
from tests.memory.conftest import READERS, open_reader

NOW = datetime(2026, 7, 1, 12, tzinfo=UTC)


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def imported(memory_id: str, content: str, occurred: datetime, **fields: Any) -> MemoryImported:
    created = fields.pop("created_at", NOW - timedelta(days=1))
    return MemoryImported(
        memory_id=memory_id,
        persona_id=fields.pop("persona_id", "p1"),
        content=content,
        source="test",
        created_at=created,
        updated_at=created,
        occurred_at=occurred,
        **fields,
    )


def _plant(manager: HybridDatabaseManager) -> None:
    config = MemoryConfig(
        auto_optimize=False,
        capacities=TierCapacities(hot=2, warm=10, cold=10),
        scoring=ScoringConfig(stale_after_days=30),
    )
    manager.commit(
        PersonaCreated(persona_id="p1", name="Ada", description="grows tomatoes", memory=config)
    )
    manager.commit(PersonaCreated(persona_id="p2", name="Bob", description="builds bridges"))
    long_ago = NOW - timedelta(days=40)
    manager.commit(
        imported(
            "tomatoes",
            "planted tomatoes in the garden",
            at(2026, 5, 1, 8, 15),
            name="Tomatoes",
            tier="hot",
            importance=1.0,
            type="fact",
            tags=["garden", "june"],
        ),
        imported(
            "roses",
            "pruned the roses by the garden wall",
            at(2026, 5, 1, 20),
            tier="hot",
            importance=0.95,
            tags=["roses"],
        ),
        imported(
            "kite",
            "flew a kite on the hill",
            at(2026, 5, 2, 9),
            importance=0.05,
            created_at=long_ago,
        ),
        imported(
            "violin",
            "tuned the violin before the concert",
            at(2026, 5, 11, 19, 30),
            name="Violin",
            summary="the garden party",
            importance=0.15,
            created_at=long_ago,
            last_accessed_at=NOW - timedelta(days=2),
        ),
        imported("lighthouse", "an old lighthouse", at(2026, 6, 1, 0), tier="cold"),
        imported("gone", "a garden long gone", at(2026, 5, 1, 9), tier="hot"),
        imported("other", "garden of another persona", at(2026, 5, 1, 10), persona_id="p2"),
    )
    manager.commit(
        MemoryLinked(persona_id="p1", source_id="tomatoes", target_id="roses", strength=0.9),
        MemoryLinked(persona_id="p1", source_id="kite", target_id="roses", strength=0.3),
        MemoryLinked(persona_id="p1", source_id="kite", target_id="violin", strength=0.8),
        MemoryLinked(persona_id="p1", source_id="tomatoes", target_id="gone"),
        BookmarkCreated(
            bookmark_id="garden-days",
            persona_id="p1",
            name="Garden days",
            time_from=at(2026, 5, 1),
            time_to=at(2026, 5, 2, 9),
            filters=BookmarkFilters(importance_max=0.95, hours=[8, 21]),
        ),
    )
    manager.commit(MemoryDeleted(memory_id="gone", persona_id="p1"))


@pytest.fixture(scope="module", params=READERS)
def garden(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HybridDatabaseManager]:
    """The memories above on each reader; the tests only read."""
    with open_reader(request.param, tmp_path_factory.mktemp("readers")) as reader:
        _plant(reader)
        yield reader


def _sqlite_sql(manager: HybridDatabaseManager) -> bool:
    return not manager.use_livestore and manager.shards.shards[0].engine.dialect.name == "sqlite"


SEARCHES: list[tuple[str, dict[str, Any], set[str]]] = [
    ("garden", {"persona_id": "p1"}, {"tomatoes", "roses", "violin"}),
    ("garden", {}, {"tomatoes", "roses", "violin", "other"}),
    ("gardens", {"tiers": ("hot",)}, {"tomatoes", "roses"}),
    ("planting a tomato", {}, {"tomatoes"}),  # stemmed; "a" is a stop word
    ("june", {}, {"tomatoes"}),  # a tag
    ("party", {}, {"violin"}),  # the summary
    ("the", {"persona_id": "p1"}, {"tomatoes", "roses", "kite", "violin"}),  # stop words only
    ("lighthouse", {}, {"lighthouse"}),  # cold
    ("?!", {}, set()),
]


@pytest.mark.parametrize(("text", "where", "expected"), SEARCHES)
def test_search(
    garden: HybridDatabaseManager, text: str, where: dict[str, Any], expected: set[str]
) -> None:
    if _sqlite_sql(garden) and expected:
        with pytest.raises(QueryError, match="switch the store on"):
            search(garden, text, SearchFilter(**where))
        return
    hits = search(garden, text, SearchFilter(**where), limit=50)
    assert {h.memory_id for h in hits} == expected
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(h.score > 0 and h.sources == ("keyword",) for h in hits)


def test_search_ranks_the_best_match_first(garden: HybridDatabaseManager) -> None:
    if _sqlite_sql(garden):
        pytest.skip("no full-text index on an SQLite SQL primary (asserted by test_search)")
    hits = search(garden, "violin concert garden", SearchFilter(persona_id="p1"))
    assert hits[0].memory_id == "violin"
    first = hits[0]
    assert (first.name, first.content, first.tier, first.occurred_at) == (
        "Violin",
        "tuned the violin before the concert",
        "warm",
        at(2026, 5, 11, 19, 30),
    )


P1_HEALTH = Health(
    memories=5,
    tiers={"hot": 2, "warm": 2, "cold": 1},
    capacity_use={"hot": 1.0, "warm": 0.2, "cold": 0.1},
    fragmentation=40.0,  # |0.4 - 0.1| + |0.4 - 0.3| + |0.2 - 0.6|, halved
    importance_histogram=[1, 1, 0, 0, 0, 1, 0, 0, 0, 2],
    stale_share=0.2,  # the kite: recorded 40 days ago, never opened
    score=69.0,  # 100 - 25 (hot at capacity) - 30 * 0.2
    alerts=[Alert("critical", "hot tier at 100% of capacity")],
)


def test_health(garden: HybridDatabaseManager) -> None:
    p1 = load_persona(garden, "p1")
    assert p1 is not None
    assert health(garden, p1, now=NOW) == P1_HEALTH
    everyone = health(garden, now=NOW)
    assert (everyone.memories, everyone.tiers) == (6, {"hot": 2, "warm": 3, "cold": 1})


def test_health_as_a_live_query(garden: HybridDatabaseManager) -> None:
    query, params = health_query("p2", now=NOW)
    seen: list[int] = []
    live = garden.live(query, params)
    live.subscribe(lambda rows: seen.append(health_from_rows(rows).memories))
    try:
        garden.commit(memory("late", "p2"))
        assert seen == [1, 2]
    finally:
        live.close()
        garden.commit(MemoryDeleted(memory_id="late", persona_id="p2"))


DASHBOARD_ANSWERS: dict[str, tuple[dict[str, Any], list[Any]]] = {
    "active_persona": ({}, []),
    "personas": ({}, ["p1", "p2"]),
    "recent_personas": ({"limit": 1}, ["p2"]),
    "persona_search": ({"text": "TOMATO"}, ["p1"]),
    "memories_by_persona": ({"persona": "p1", "limit": 3}, ["tomatoes", "roses", "lighthouse"]),
    "memories_by_tier": ({"persona": "p1", "tier": "warm"}, ["violin", "kite"]),
    "memories_by_type": ({"persona": "p1", "type": "fact"}, ["tomatoes"]),
    "memories_by_importance": (
        {"persona": "p1", "low": 0.15, "high": 0.95},
        ["roses", "lighthouse", "violin"],
    ),
    "memories_by_date": (
        {"persona": "p1", "start": at(2026, 5, 1, 20), "end": at(2026, 5, 11, 19, 30)},
        ["roses", "kite"],
    ),
    "memories_by_tag": ({"persona": "p1", "tag": "roses"}, ["roses"]),
    "memory_statistics": (
        {"persona": "p1", "day_ago": NOW - timedelta(days=3)},
        [(5, 0.53, 2, 0, 1)],
    ),
    "tier_distribution": ({}, [("cold", 1), ("hot", 2), ("warm", 3)]),
    "type_distribution": ({"persona": "p1"}, [("note", 4), ("fact", 1)]),
}


@pytest.mark.parametrize("name", DASHBOARD_ANSWERS)
def test_dashboard(garden: HybridDatabaseManager, name: str) -> None:
    params, expected = DASHBOARD_ANSWERS[name]
    rows = garden.query(*dashboard_query(name, **params))
    if rows and "id" in rows[0]._fields:
        assert [r.id for r in rows] == expected
    else:
        found = [tuple(round(v, 4) if isinstance(v, float) else v for v in r) for r in rows]
        assert found == expected


def test_every_dashboard_query_but_the_store_log_is_compared() -> None:
    assert {*DASHBOARD_ANSWERS, "recent_activity"} == set(DASHBOARD)


def test_timeline(garden: HybridDatabaseManager) -> None:
    days = timeline(garden, "p1", "day")
    assert days == [
        Bucket("2026-05-01", 2, 0.975, 0.95, 1.0, at(2026, 5, 1, 8, 15), at(2026, 5, 1, 20)),
        Bucket("2026-05-02", 1, 0.05, 0.05, 0.05, at(2026, 5, 2, 9), at(2026, 5, 2, 9)),
        Bucket("2026-05-11", 1, 0.15, 0.15, 0.15, at(2026, 5, 11, 19, 30), at(2026, 5, 11, 19, 30)),
        Bucket("2026-06-01", 1, 0.5, 0.5, 0.5, at(2026, 6, 1), at(2026, 6, 1)),
    ]
    keys = {
        unit: [(b.key, b.memories) for b in timeline(garden, "p1", unit)]  # type: ignore[arg-type]
        for unit in ("hour", "week", "month")
    }
    assert keys == {
        "hour": [
            ("2026-05-01T08:00", 1),
            ("2026-05-01T20:00", 1),
            ("2026-05-02T09:00", 1),
            ("2026-05-11T19:00", 1),
            ("2026-06-01T00:00", 1),
        ],
        "week": [("2026-W18", 3), ("2026-W20", 1), ("2026-W23", 1)],
        "month": [("2026-05", 4), ("2026-06", 1)],
    }
    window = timeline(garden, "p1", "month", start=at(2026, 5, 1, 20), end=at(2026, 6, 1))
    assert [(b.key, b.memories) for b in window] == [("2026-05", 3)]


def test_bookmark(garden: HybridDatabaseManager) -> None:
    assert [r.id for r in bookmark_memories(garden, "garden-days")] == ["kite", "roses"]


def test_graph(garden: HybridDatabaseManager) -> None:
    assert neighbours(garden, "tomatoes", depth=3) == [
        Neighbour("roses", 1),
        Neighbour("kite", 2),
        Neighbour("violin", 3),
    ]
    assert neighbours(garden, "tomatoes", depth=3, min_strength=0.5) == [Neighbour("roses", 1)]
    assert components(garden, "p1") == [{"tomatoes", "roses", "kite", "violin"}]
    links = MemorySystem(garden).links_of("roses")
    assert [(r.source_id, r.target_id, r.strength) for r in links] == [
        ("tomatoes", "roses", 0.9),
        ("kite", "roses", 0.3),
    ]


def test_optimizer_reads(garden: HybridDatabaseManager) -> None:
    p1 = load_persona(garden, "p1")
    assert p1 is not None
    ranked = scored_memories(garden, p1, NOW)
    assert [m.id for m in ranked][:2] == ["roses", "tomatoes"]  # roses has two links
    recorded = NOW - timedelta(days=1)
    long_ago = NOW - timedelta(days=40)
    assert {m.id: m.created_at for m in ranked} == {
        "tomatoes": recorded,
        "roses": recorded,
        "kite": long_ago,
        "violin": long_ago,
        "lighthouse": recorded,
    }
    assert not MemorySystem(garden).over_limits("p1", now=NOW)  # auto_optimize is off


@pytest.mark.parametrize("text", ["cafe creme", "Café", "ZOE", "uber"])
def test_search_ignores_accents_on_every_reader(reader: HybridDatabaseManager, text: str) -> None:
    reader.commit(
        PersonaCreated(persona_id="p1", name="P"),
        memory("accented", content="Café crème with Zoë, über alles"),
        memory("plain", content="tea with milk"),
    )
    if _sqlite_sql(reader):
        return  # no full-text index on an SQLite SQL primary (test_search says so)
    assert [h.memory_id for h in search(reader, text, SearchFilter(persona_id="p1"))] == [
        "accented"
    ]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("ZOË", ["zoe"]),  # SQLite's own lower() folds only ASCII letters
        ("zoË", ["zoe"]),
        ("ADA", ["ada"]),
        ("ΒΑΣ", ["vasilis"]),  # a capital sigma at the end is not the final one
        ("İPEK", ["ipek"]),  # İ is i, not i and a combining dot
        ("ipek", ["ipek"]),
        ("Ǆ", ["dzemal"]),  # a title-case letter
        ("x", []),
    ],
)
def test_names_match_in_any_case_alike_on_every_reader(
    reader: HybridDatabaseManager, text: str, found: list[str]
) -> None:
    reader.commit(
        PersonaCreated(persona_id="zoe", name="Zoë"),
        PersonaCreated(persona_id="ada", name="Ada"),
        PersonaCreated(persona_id="vasilis", name="Βασίλης"),
        PersonaCreated(persona_id="ipek", name="İpek"),
        PersonaCreated(persona_id="dzemal", name="ǅemal"),
    )
    listed = Personas(reader).list(name_contains=text)
    assert sorted(p.id for p in listed) == found
    searched = reader.query(*dashboard_query("persona_search", text=text))
    assert sorted(r.id for r in searched) == found


def test_persona_search_matches_descriptions_in_any_case_on_every_reader(
    reader: HybridDatabaseManager,
) -> None:
    reader.commit(
        PersonaCreated(persona_id="zoe", name="Zoë", description="sails to Ærø"),
        PersonaCreated(persona_id="ada", name="Ada", description="writes programs"),
    )
    for text, found in [("ÆRØ", ["zoe"]), ("PROGRAM", ["ada"])]:
        searched = reader.query(*dashboard_query("persona_search", text=text))
        assert [r.id for r in searched] == found, text


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("भाषा", ["hindi"]),  # a word keeps its vowel signs
        ("दिल्ली", ["delhi"]),
        ("தமிழ்", ["tamil"]),
        ("O'Brien", ["dinner"]),  # an apostrophe comes between words, as in the index
        ("O\u2019Brien", ["dinner"]),  # a typographic apostrophe
        ("won't", ["skiing"]),
        ("Don", ["quixote"]),  # a stop word alone on both sides: searched as it is
        # Chinese, Japanese and Korean: each character a word, pairs searched as phrases.
        ("東京", ["tokyo"]),  # a word inside a sentence
        ("京都", ["kyoto"]),
        ("タワー", ["tokyo"]),
        # A sentence: the memories sharing a pair with it (school: に行).
        ("東京に行きたい", ["school", "tokyo"]),
        ("北京", ["beijing"]),
        ("京", ["beijing", "kyoto", "tokyo"]),  # one character is a word
        ("서울", ["seoul"]),
        ("iPhone", ["case"]),  # Latin letters against Japanese ones
        ("ケース", ["case"]),
        ("猫", []),
        ("ジョン・スミス", ["smith"]),  # the middle dot comes between words
        ("부산", ["busan"]),  # the memory's Hangul is decomposed (NFD)
        (unicodedata.normalize("NFD", "부산"), ["busan"]),
        (unicodedata.normalize("NFD", "がっこう"), ["school"]),
    ],
)
def test_search_cuts_words_as_the_indexes_do_on_every_reader(
    reader: HybridDatabaseManager, text: str, found: list[str]
) -> None:
    reader.commit(
        PersonaCreated(persona_id="p1", name="P"),
        memory("hindi", content="हिंदी भाषा सीखना"),
        memory("delhi", content="भारत की राजधानी दिल्ली है"),
        memory("tamil", content="தமிழ் மொழி"),
        memory("dinner", content="Dinner with Sarah O'Brien at McDonald's"),
        memory("skiing", content="I won't go skiing"),
        memory("quixote", content="Don Quixote rides again"),
        memory("tokyo", content="昨日、東京タワーに行きました"),
        memory("kyoto", content="京都の寺は美しい"),
        memory("beijing", content="我在北京工作"),
        memory("seoul", content="서울에서 친구를 만났다"),
        memory("case", content="新しいiPhone用のケース"),
        memory("smith", content="ジョン・スミスに会った"),
        memory("bread", content="パンを買った"),
        memory("busan", content=unicodedata.normalize("NFD", "부산 회의")),
        memory("school", content="がっこうに行く"),
    )
    if _sqlite_sql(reader):
        return  # no full-text index on an SQLite SQL primary (test_search says so)
    hits = search(reader, text, SearchFilter(persona_id="p1"))
    assert sorted(h.memory_id for h in hits) == found
