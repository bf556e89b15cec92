"""Every read of memories answers alike on the store and on SQL alone.

One mixed set of data (importance 0 and 1, times at the edges of hours, days and
months and at midnight UTC, tags that differ only in case or Unicode form, deleted
memories, links of each kind, conversations and bookmarks) is committed to the
reactive store, to an SQLite SQL primary and to PostgreSQL with the store off; each
read is made on all three and the answers compared with the store's. Keyword search
is left out: its tokenizers differ by design (docs/memory.md).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from typing import Any

import msgspec
import pytest

from pjai.app.bookmarks import Bookmarks, Conversations
from pjai.app.memories import Memories
from pjai.app.personas import Personas
from pjai.app.reads import conversations as conversation_reads
from pjai.app.reads import dashboard as dashboard_reads
from pjai.app.reads import memories as memory_reads
from pjai.app.reads import personas as persona_reads
from pjai.app.reads import personas_view as persona_views
from pjai.errors import PjaiError
from pjai.hybrid import HybridDatabaseManager
from pjai.memory.analytics import DASHBOARD, dashboard_query, health
from pjai.memory.graph import components, neighbours
from pjai.memory.optimizer import load_persona
from pjai.memory.system import MemorySystem
from pjai.memory.timeline import Unit, timeline, timeline_from_rows
from pjai.schema import (
    BookmarkCreated,
    BookmarkFilters,
    ConversationMessageAdded,
    ConversationStarted,
    MemoryAccessed,
    MemoryArchived,
    MemoryDeleted,
    MemoryFilter,
    MemoryImported,
    MemoryLinked,
    MemoryRestored,
    MemoryTierChanged,
    MemoryUpdated,
    PersonaActivated,
    PersonaCreated,
    PersonaDeleted,
)
from pjai.schema.fields import LinkKind
from pjai.schema.personas import MemoryConfig, TierCapacities
from tests.databases import ENGLISH, POSTGRES_URL, postgres_database
from tests.memory.conftest import READERS, open_reader

NOW = datetime(2026, 6, 2, 12, tzinfo=UTC)
MIDNIGHT = datetime(2026, 5, 1, tzinfo=UTC)
LAST_INSTANT = MIDNIGHT - timedelta(microseconds=1)  # 2026-04-30T23:59:59.999999
CAFE = "café"
CAFE_NFD = unicodedata.normalize("NFD", CAFE)


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def imported(memory_id: str, occurred: datetime, **fields: Any) -> MemoryImported:
    created = fields.pop("created_at", NOW - timedelta(days=1))
    return MemoryImported(
        memory_id=memory_id,
        persona_id=fields.pop("persona_id", "p1"),
        content=fields.pop("content", f"content of {memory_id}"),
        source="test",
        created_at=created,
        updated_at=created,
        occurred_at=occurred,
        **fields,
    )


MEMORIES = [
    imported("zero", MIDNIGHT, importance=0.0, tags=["Café"], tier="hot", type="fact"),
    imported("one", LAST_INSTANT, importance=1.0, tags=[CAFE], tier="hot", name="One"),
    imported(
        "nfd",
        at(2026, 5, 31, 23, 59, 59, 999_999),
        importance=0.7,
        tags=[CAFE_NFD],
        type="Fact",
        created_at=MIDNIGHT,
    ),
    imported(
        "zoned",  # 23:30 UTC on 31 May, though 1 June where it was told
        datetime(2026, 6, 1, 1, 30, tzinfo=timezone(timedelta(hours=2))),
        importance=0.3,
        tags=["ß", "Straße"],
        created_at=LAST_INSTANT,
    ),
    imported("june", at(2026, 6, 1), importance=0.8, tags=["SS", "straße"], tier="cold"),
    imported(
        "seedling",
        at(2026, 5, 15, 12),
        importance=0.1,
        tags=["🌱", "garden"],
        access_count=5,
        last_accessed_at=NOW - timedelta(hours=3),
        content="a long cold text " * 20,
        tier="cold",
    ),
    imported("late", at(2026, 5, 1, 23), importance=0.6, tags=["Garden"], name="Ünïcode"),
    imported("gone", MIDNIGHT, importance=0.9, tags=["Café"], deleted_at=NOW - timedelta(days=2)),
    imported("unlinked", at(2026, 5, 2), importance=0.95),  # deleted after it is linked
    imported("other", MIDNIGHT, importance=0.5, tags=[CAFE], persona_id="p2"),
    # Ids that differ in case, of equal importance and time: ties broken by id.
    imported("B", MIDNIGHT, importance=0.5, tags=['say "hi"', "back\\slash"], persona_id="p2"),
    imported("a", MIDNIGHT, importance=0.5, tags=["B"], persona_id="p2"),
    imported("é", MIDNIGHT, importance=0.5, persona_id="p2", tier="hot"),
    imported("first", at(1, 1, 2), importance=0.05, persona_id="p2", type="Ünïcode"),
    imported("last", at(9999, 12, 30, 23, 59, 59, 999_999), importance=0.95, persona_id="p2"),
    imported("epoch", at(1970, 1, 1), importance=0.45, persona_id="p2", created_at=at(1970, 1, 1)),
]

LINKS: list[tuple[str, str, LinkKind, float]] = [
    ("zero", "one", "references", 1.0),
    ("one", "nfd", "similar", 0.5),
    ("nfd", "zoned", "related", 0.0),
    ("zoned", "june", "causal", 0.5),
    ("june", "seedling", "temporal", 1.0),
    ("one", "unlinked", "related", 0.9),
    ("late", "zero", "similar", 0.25),
    ("nfd", "one", "causal", 0.75),  # back along a link of another kind
    ("seedling", "zero", "temporal", 0.5),  # a cycle
]


def _plant(manager: HybridDatabaseManager, switch: Callable[[], None] = lambda: None) -> None:
    """Commit the data set; ``switch`` runs between its commits."""
    config = MemoryConfig(auto_optimize=False, capacities=TierCapacities(hot=2, warm=5, cold=3))
    manager.commit(
        PersonaCreated(persona_id="p1", name="Ada", description="grows ÆRØ kale", memory=config),
        PersonaCreated(persona_id="p2", name="ada", description="builds bridges"),
        PersonaCreated(persona_id="p3", name="Ada", description="a namesake"),
        PersonaCreated(persona_id="ipek", name="İpek", description="ΟΔΥΣΣΕΑΣ"),
        PersonaCreated(persona_id="vasilis", name="Βασίλης", description="Ǆemal"),
        # Namesakes, changed since (PostgreSQL then keeps their rows in another order).
        *(PersonaCreated(persona_id=f"twin{i}", name="Twin") for i in range(4)),
    )
    switch()
    manager.commit(*MEMORIES)
    switch()
    manager.commit(
        *(
            MemoryLinked(persona_id="p1", source_id=s, target_id=t, kind=k, strength=w)
            for s, t, k, w in LINKS
        ),
        MemoryLinked(persona_id="p2", source_id="B", target_id="a", kind="similar"),
        MemoryLinked(persona_id="p2", source_id="é", target_id="a", kind="references"),
    )
    switch()
    manager.commit(MemoryDeleted(memory_id="unlinked", persona_id="p1"))
    switch()
    manager.commit(
        MemoryArchived(memory_id="late", persona_id="p1"),
        MemoryTierChanged(
            memory_id="epoch", persona_id="p2", tier="hot", reason="manual", pinned=True
        ),
        MemoryUpdated(
            memory_id="zero",
            persona_id="p1",
            tags=["Café", "CAFÉ", "🌱"],
            occurred_at=at(2026, 5, 1, 0, 0, 0, 1),
        ),
        MemoryAccessed(memory_id="one", persona_id="p1", count=4),
        MemoryImported(
            memory_id="orphan",
            persona_id="p3",
            content="of a persona deleted since",
            source="test",
            created_at=MIDNIGHT,
            updated_at=MIDNIGHT,
            importance=1.0,
        ),
        MemoryDeleted(memory_id="june", persona_id="p1"),
        MemoryRestored(memory_id="june", persona_id="p1"),
        PersonaActivated(persona_id="twin0"),
        PersonaActivated(persona_id="twin2"),
        PersonaActivated(persona_id="p2"),
    )
    switch()
    manager.commit(PersonaDeleted(persona_id="p3"))
    switch()
    manager.commit(
        ConversationStarted(conversation_id="c2", persona_id="p1", started_at=MIDNIGHT),
        ConversationStarted(conversation_id="c1", persona_id="p1", started_at=MIDNIGHT),
        ConversationStarted(conversation_id="c0", persona_id="p1", started_at=LAST_INSTANT),
        *(
            ConversationMessageAdded(
                message_id=f"m{i}",
                conversation_id="c1",
                persona_id="p1",
                role="user",
                content=f"message {i} {CAFE_NFD}",
                sent_at=MIDNIGHT if i < 3 else MIDNIGHT + timedelta(microseconds=i),
            )
            for i in (4, 2, 1, 3)
        ),
    )
    switch()
    manager.commit(
        BookmarkCreated(
            bookmark_id="may",
            persona_id="p1",
            name="May",
            time_from=MIDNIGHT,
            time_to=at(2026, 5, 31, 23, 59, 59, 999_999),
            filters=BookmarkFilters(importance_min=0.0, importance_max=1.0),
        ),
        BookmarkCreated(
            bookmark_id="cafe",
            persona_id="p1",
            name="café",
            filters=BookmarkFilters(tags=[CAFE]),
        ),
        BookmarkCreated(
            bookmark_id="night",
            persona_id="p1",
            name="Café",
            filters=BookmarkFilters(hours=[23, 24]),
        ),
        BookmarkCreated(
            bookmark_id="midnight",
            persona_id="p1",
            name="Midnight",
            filters=BookmarkFilters(hours=[0, 1], importance_max=0.0),
        ),
    )


def _flip(manager: HybridDatabaseManager, flips: Iterator[bool]) -> None:
    manager.set_flag("use_livestore", next(flips))


@pytest.fixture(scope="module")
def readers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The data above on each reader, by reader name; the tests only read.

    Besides :data:`READERS`: PostgreSQL in a database collated in a language, where text
    sorts and folds case by that language unless PJai says otherwise, and the store
    switched off and on between the commits, ending off and ending on. PostgreSQL
    sessions run in a time zone far from UTC, with a half hour (PGTZ). Without
    PostgreSQL, the store and SQLite are compared.
    """
    with pytest.MonkeyPatch.context() as env, ExitStack() as stack:
        env.setenv("PGTZ", "Asia/Kathmandu")
        found = {}
        for name in READERS:
            if name.startswith("postgresql") and not POSTGRES_URL:
                continue
            manager = stack.enter_context(open_reader(name, tmp_path_factory.mktemp(name)))
            _plant(manager)
            found[name] = manager
        if POSTGRES_URL:
            url = stack.enter_context(postgres_database(ENGLISH))
            manager = stack.enter_context(
                HybridDatabaseManager.open(
                    tmp_path_factory.mktemp("english"),
                    sql_urls=[url],
                    environ={"PJAI_USE_LIVESTORE": "false"},
                )
            )
            _plant(manager)
            found["postgresql-sql collated in English"] = manager
        for last in (False, True):
            name = f"switched, store {'on' if last else 'off'} at the end"
            manager = stack.enter_context(open_reader("store", tmp_path_factory.mktemp("sw")))
            flips = iter([False, True, False, True, False, True, last, last, last])
            _plant(manager, partial(_flip, manager, flips))
            assert manager.use_livestore == last
            found[name] = manager
        yield found


def plain(value: Any) -> Any:
    """A value as it means: rows as dicts, times in UTC, floats to 9 places (sums differ
    in their last bits by the order they add in); the time of a commit, which differs per
    reader, as a mark."""
    if hasattr(value, "_fields"):
        return {k: plain(v) for k, v in zip(value._fields, value, strict=True)}
    if isinstance(value, msgspec.Struct):
        return plain(msgspec.structs.asdict(value))
    if hasattr(value, "__dataclass_fields__"):
        return plain({k: getattr(value, k) for k in value.__dataclass_fields__})
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(plain(v) for v in value)
    if isinstance(value, datetime):
        return "commit time" if value > NOW + timedelta(days=1) else value.astimezone(UTC)
    if isinstance(value, float):
        return round(value, 9)
    return value


def _answer(manager: HybridDatabaseManager, read: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    try:
        return plain(read(manager, *args))
    except PjaiError as error:  # a refusal is an answer too
        return type(error).__name__, str(error)


def same(readers: dict[str, Any], read: Callable[..., Any], *args: Any) -> Any:
    """``read(manager, *args)`` on every reader; each answer must be the store's."""
    answers = {name: _answer(manager, read, args) for name, manager in readers.items()}
    for name, answer in answers.items():
        assert answer == answers["store"], name
    return answers["store"]


def _live(query: Callable[..., Any]) -> Callable[..., Any]:
    """A read of a live query's current rows."""
    return lambda *args: query(*args).result


FILTERS: dict[str, dict[str, Any]] = {
    "persona": {},
    "everyone": {"persona_id": None},
    "deleted too": {"include_deleted": True},
    "tiers": {"tiers": ["hot", "cold"]},
    "types fact": {"types": ["fact"]},
    "types Fact": {"types": ["Fact"]},
    "tag café": {"tags": [CAFE]},
    "tag Café": {"tags": ["Café"]},
    "tag café NFD": {"tags": [CAFE_NFD]},
    "tag ß": {"tags": ["ß"]},
    "tag SS": {"tags": ["SS"]},
    "tag straße": {"tags": ["straße"]},
    "tag emoji and garden": {"tags": ["🌱", "garden"]},
    "tag Garden": {"tags": ["Garden"]},
    "importance 0": {"importance_max": 0.0},
    "importance 1": {"importance_min": 1.0},
    "importance 0..1": {"importance_min": 0.0, "importance_max": 1.0},
    "importance 0.3..0.7": {"importance_min": 0.3, "importance_max": 0.7},
    "from midnight": {"occurred_from": MIDNIGHT},
    "to the last instant": {"occurred_to": LAST_INSTANT},
    "to midnight": {"occurred_to": MIDNIGHT},
    "May": {"occurred_from": MIDNIGHT, "occurred_to": at(2026, 5, 31, 23, 59, 59, 999_999)},
    "from a time in +02:00": {
        "occurred_from": datetime(2026, 6, 1, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    },
    "created": {"created_from": LAST_INSTANT, "created_to": MIDNIGHT},
    "hours 0-1": {"hours": (0, 1)},
    "hours 23-24": {"hours": (23, 24)},
    "deleted, tag Café": {"include_deleted": True, "tags": ["Café"]},
    "p2": {"persona_id": "p2"},
    "p2 tag with a quote": {"persona_id": "p2", "tags": ['say "hi"']},
    "p2 tag with a backslash": {"persona_id": "p2", "tags": ["back\\slash"]},
    "p2 tag b": {"persona_id": "p2", "tags": ["b"]},
    "p2 years": {"persona_id": "p2", "occurred_from": at(1, 1, 2), "occurred_to": at(1970, 1, 1)},
    "p2 to the end": {"persona_id": "p2", "occurred_from": at(9999, 12, 30, 23)},
    "p2 hours 0-24": {"persona_id": "p2", "hours": (0, 24)},
    "p2 created 1970": {"persona_id": "p2", "created_to": at(1970, 1, 1)},
}


def _where(case: str) -> MemoryFilter:
    return MemoryFilter(**{"persona_id": "p1", **FILTERS[case]})


@pytest.mark.parametrize("case", FILTERS)
@pytest.mark.parametrize("order", ["importance", "occurred_at", "created_at", "access_count"])
def test_memory_list(readers: dict[str, Any], case: str, order: str) -> None:
    where = _where(case)
    same(readers, lambda m: Memories(m).list(where, order=order, limit=100))  # type: ignore[arg-type]
    same(readers, lambda m: m.memories.list(where, order=order, descending=False))
    same(readers, lambda m: memory_reads.page(m, where, order=order, limit=100).result)  # type: ignore[arg-type]
    same(readers, _live(memory_reads.count), where)
    same(readers, lambda m: m.memories.count(where))


@pytest.mark.parametrize("case", FILTERS)
@pytest.mark.parametrize("unit", ["hour", "day", "week", "month"])
def test_timeline(readers: dict[str, Any], case: str, unit: Unit) -> None:
    where = _where(case)
    same(readers, lambda m: timeline(m, "p1", unit, where=where))
    # The live query's rows hold times as each backend has them: read as the views do.
    rows = _live(memory_reads.timeline)
    same(readers, lambda m: timeline_from_rows(rows(m, "p1", unit, where), unit))


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (MIDNIGHT, None),
        (None, MIDNIGHT),
        (LAST_INSTANT, at(2026, 6, 1)),
        (at(2026, 5, 31, 23), None),
    ],
)
@pytest.mark.parametrize("unit", ["hour", "day", "week", "month"])
def test_timeline_window(readers: dict[str, Any], start: Any, end: Any, unit: Unit) -> None:
    same(readers, lambda m: timeline(m, "p1", unit, start=start, end=end))
    same(readers, lambda m: Memories(m).timeline("p1", unit, start=start, end=end))


@pytest.mark.parametrize("persona", ["p1", "p2", "p3", None])
def test_stats_and_health(readers: dict[str, Any], persona: str | None) -> None:
    def stats(m: HybridDatabaseManager) -> Any:
        found = Memories(m).stats(persona)
        # "Opened in the last 24 hours" counts up to the clock: compared below at NOW.
        return msgspec.structs.replace(found.statistics, accessed_last_24h=0), found.health

    same(readers, stats)
    same(readers, lambda m: health(m, load_persona(m, persona) if persona else None, now=NOW))
    same(readers, _live(dashboard_reads.memory_health), persona)
    days = _live(dashboard_reads.memory_timeline)
    same(readers, lambda m: dashboard_reads.timeline_points(days(m, persona or "p1")))
    same(readers, _live(dashboard_reads.tier_distribution), persona)
    same(readers, _live(dashboard_reads.memory_statistics), persona)


@pytest.mark.parametrize(
    "memory_id", ["zero", "one", "nfd", "june", "seedling", "late", "gone", "unlinked", "a"]
)
def test_graph(readers: dict[str, Any], memory_id: str) -> None:
    for depth in (1, 2, 5):
        for strength in (0.0, 0.5, 1.0):
            same(
                readers,
                lambda m, d, s: neighbours(m, memory_id, depth=d, min_strength=s),
                depth,
                strength,
            )
    same(readers, lambda m: memory_reads.graph(m, memory_id, depth=3))
    same(readers, _live(memory_reads.links), memory_id)
    same(readers, lambda m: MemorySystem(m).links_of(memory_id))
    same(readers, lambda m: MemorySystem(m).links_of(memory_id, to_deleted=True))
    same(readers, _live(memory_reads.memory), memory_id)
    same(readers, lambda m: Memories(m).show(memory_id))


@pytest.mark.parametrize("persona", ["p1", "p2"])
def test_components(readers: dict[str, Any], persona: str) -> None:
    same(readers, components, persona)


@pytest.mark.parametrize("bookmark", ["may", "cafe", "night", "midnight"])
def test_bookmarks(readers: dict[str, Any], bookmark: str) -> None:
    same(readers, lambda m: Bookmarks(m).show(bookmark))
    same(readers, lambda m: Bookmarks(m).list("p1"))
    same(readers, _live(memory_reads.bookmarks), "p1")


def test_conversations(readers: dict[str, Any]) -> None:
    same(readers, lambda m: Conversations(m).list("p1"))
    same(readers, lambda m: Conversations(m).show("c1"))
    same(readers, lambda m: Conversations(m).show("c1", limit=2))
    same(readers, _live(conversation_reads.listing), "p1")
    same(readers, _live(conversation_reads.messages), "c1")
    same(readers, _live(conversation_reads.memories_made), "c1")


DASHBOARD_PARAMS: dict[str, list[dict[str, Any]]] = {
    "active_persona": [{}],
    "personas": [{}],
    "recent_personas": [{"limit": 2}, {"limit": 3}, {}],
    "persona_search": [
        {"text": t}
        for t in ("ADA", "ærø", "%", "ipek", "İPEK", "ΒΑΣ", "βασ", "οδυσσεας", "ǆ", "ǅ", "twin")
    ],
    "memories_by_persona": [{"persona": "p1"}],
    "memories_by_tier": [{"persona": "p1", "tier": t} for t in ("hot", "warm", "cold")],
    "memories_by_type": [{"persona": "p1", "type": t} for t in ("fact", "Fact", "note")],
    "memories_by_importance": [
        {"persona": "p1", "low": 0.0, "high": 0.0},
        {"persona": "p1", "low": 1.0, "high": 1.0},
        {"persona": "p1", "low": 0.3, "high": 0.7},
    ],
    "memories_by_date": [
        {"persona": "p1", "start": MIDNIGHT, "end": at(2026, 6, 1)},
        {"persona": "p1", "start": LAST_INSTANT, "end": MIDNIGHT},
        {"persona": "p1", "start": at(2026, 5, 1, 12), "end": at(2026, 5, 15, 12, 0, 1)},
        {"persona": "p1", "start": at(2026, 5, 15, 12), "end": at(2026, 5, 31, 23, 59, 59)},
    ],
    "memories_by_tag": [{"persona": "p1", "tag": t} for t in (CAFE, "Café", CAFE_NFD, "ß", "🌱")],
    "memory_statistics": [
        {"persona": p, "day_ago": day_ago}
        for p in ("p1", None)
        for day_ago in (NOW - timedelta(days=1), NOW - timedelta(hours=3))
    ],
    "tier_distribution": [{"persona": p} for p in ("p1", "p2", None)],
    "type_distribution": [{"persona": p} for p in ("p1", None)],
}


@pytest.mark.parametrize("name", DASHBOARD_PARAMS)
def test_dashboard(readers: dict[str, Any], name: str) -> None:
    for params in DASHBOARD_PARAMS[name]:
        same(readers, lambda m, p: m.query(*dashboard_query(name, **p)), params)


def test_every_dashboard_query_but_the_store_log_is_compared() -> None:
    assert {*DASHBOARD_PARAMS, "recent_activity"} == set(DASHBOARD)


@pytest.mark.parametrize("text", ["ipek", "İPEK", "ΒΑΣ", "βασ", "ada", "Ǆ"])
def test_persona_names(readers: dict[str, Any], text: str) -> None:
    same(readers, lambda m: Personas(m).list(name_contains=text))


def test_persona_views(readers: dict[str, Any]) -> None:
    same(readers, _live(persona_reads.choices))
    same(readers, _live(dashboard_reads.personas_counted))
    same(readers, lambda m: persona_views.persona_entries(persona_views.roster(m).result))
    for persona in ("p1", "p2", "p3", "nobody"):
        same(
            readers,
            lambda m, p: persona_views.detail_persona(persona_views.detail(m, p).result),
            persona,
        )


def _by_ids(manager: HybridDatabaseManager, ids: list[str], deleted: bool) -> Any:
    return memory_reads.by_ids(manager, ids, deleted=deleted).result


@pytest.mark.parametrize("persona", ["p1", "p2"])
def test_explorer_reads(readers: dict[str, Any], persona: str) -> None:
    ids = ["zero", "gone", "B", "a", "é", "late", "nobody"]
    for deleted in (True, False):
        same(readers, lambda m, d: sorted(_by_ids(m, ids, d), key=lambda r: r.id), deleted)
    same(readers, memory_reads.names, ids)
    same(readers, memory_reads.types, persona)
    same(readers, lambda m: memory_reads.optimize_preview(m, persona, now=NOW))
    where = MemoryFilter(persona_id=persona, include_deleted=True)
    for offset in (0, 1, 3):
        same(
            readers,
            lambda m, o: Memories(m).list(where, order="occurred_at", limit=2, offset=o),
            offset,
        )
        same(readers, lambda m, o: memory_reads.page(m, where, limit=2, offset=o).result, offset)
