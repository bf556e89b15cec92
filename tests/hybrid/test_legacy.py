"""Importing a PJai desktop database, on every SQL backend."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from pjai.cli.legacy import import_legacy as import_legacy_command
from pjai.errors import ConfigError
from pjai.hybrid import HybridDatabaseManager
from pjai.hybrid.legacy import (
    NOT_IMPORTED,
    SOURCE,
    LegacyImport,
    Rejection,
    UnmappedValue,
    import_legacy,
)
from pjai.hybrid.legacy import run as legacy_run
from pjai.hybrid.legacy.report import MAX_SHOWN
from pjai.schema import (
    ConversationStarted,
    Event,
    EventRecord,
    MemoryAdded,
    MemoryUpdated,
    PersonaCreated,
    PersonaDeleted,
    PersonaErased,
    Personality,
    PersonaUpdated,
)
from tests.hybrid.legacy_db import LegacyDatabase, sample


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


REJECTED: dict[tuple[str, str | None], str] = {
    ("memory_entities", "m-blank"): "content is blank",
    ("memory_entities", "m-ghost"): "persona 'p-ghost' was not imported",
    ("conversations", "c-garbled"): "messages is not valid JSON",
    ("conversations", "c-no-role"): "its one message cannot be imported (messages[0] has",
}
"""The rows of the sample that cannot be imported, and (part of) why."""

UNMAPPED: dict[tuple[str, str, str], tuple[Any, str]] = {
    ("personas", "p-broken", "personality_traits"): ('{"openness": 0.5,', "is not valid JSON"),
    ("memory_entities", "m-too-important", "importance"): (
        150,
        "is outside the 0-100 scale of this database; PJai's default 0.5 is kept",
    ),
}
"""The values of imported sample rows that are not imported: value and (part of) why."""


SAMPLE_ROWS = 4 + 10 + 5


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    """The sample legacy database, alone in its folder."""
    folder = tmp_path / "desktop"
    folder.mkdir()
    return sample(folder / "pjai-desktop.db")


def run(manager: HybridDatabaseManager, source: Path, report: Path) -> LegacyImport:
    """Import ``source``; check that progress reached every legacy row."""
    calls: list[tuple[int, int]] = []
    result = import_legacy(
        manager,
        source,
        report_path=report,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls[-1] == (SAMPLE_ROWS, SAMPLE_ROWS)
    return result


def read_report(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    header, *rows = [json.loads(line) for line in path.read_text().splitlines()]
    return header, rows


def messages(manager: HybridDatabaseManager, conversation_id: str) -> list[tuple[Any, ...]]:
    rows = manager.query(
        "SELECT id, role, content, sent_at FROM conversation_messages"
        " WHERE conversation_id = ? ORDER BY id",
        [conversation_id],
    )
    return [tuple(row) for row in rows]


@pytest.fixture
def imported(manager: HybridDatabaseManager, legacy: Path, tmp_path: Path) -> LegacyImport:
    """The sample legacy database, imported once."""
    return run(manager, legacy, tmp_path / "report.jsonl")


def test_the_result_counts_what_was_imported(
    manager: HybridDatabaseManager, imported: LegacyImport
) -> None:
    assert (imported.personas, imported.memories, imported.conversations) == (4, 8, 3)
    assert (imported.messages, imported.rejected) == (5, 4)
    assert {(u.table, u.row_id, u.column) for u in imported.unmapped} == set(UNMAPPED)
    for value in imported.unmapped:
        expected, reason = UNMAPPED[value.table, value.row_id, value.column]
        assert value.value == expected
        assert reason in value.reason
    assert imported.scales == {
        "memory_entities.importance": "0-100",
        "personas.memory_importance_threshold": "0-100",
    }
    skipped = (imported.skipped_personas, imported.skipped_memories)
    assert skipped == (0, 0)
    assert imported.skipped_conversations == 0
    assert manager.verify().equal


def test_personas_are_mapped(manager: HybridDatabaseManager, imported: LegacyImport) -> None:
    ada = manager.personas.get("p-ada")
    assert ada is not None
    assert (ada.name, ada.description) == ("Ada", "Research assistant")
    assert ada.communication_style == "warm and concise"
    big_five = ada.personality.big_five
    assert (big_five.openness, big_five.conscientiousness, big_five.extraversion) == (90, 75, 30)
    assert (big_five.agreeableness, big_five.neuroticism) == (60, 20)
    assert ada.personality.custom_traits == {"curiosity": 95}
    assert ada.personality.type == "sanguine"
    assert (ada.memory.max_memories, ada.memory.importance_threshold) == (5000, 0.4)
    assert (ada.memory.auto_optimize, ada.memory.retention_days) == (True, 365)
    privacy = ada.privacy
    assert (privacy.data_collection, privacy.analytics) == (True, True)
    assert (privacy.share_with_researchers, privacy.personality_analysis) == (False, True)
    assert (privacy.memory_retention, privacy.export_allowed) == (True, False)
    assert ada.created_at == at("2023-01-05T10:00:00Z")
    # Of the two personas marked active, the one updated last is activated; activation
    # stamps its updated_at with the import time.
    assert ada.is_active
    assert ada.updated_at > at("2024-03-01T10:00:00Z")

    bob = manager.personas.get("p-bob")
    assert bob is not None
    assert not bob.is_active
    assert bob.created_at == at("2023-01-01T00:00:00Z")  # epoch seconds
    assert bob.updated_at == at("2023-06-01T08:00")  # naive: UTC
    assert bob.personality.big_five.openness == 40  # 0-100 numbers are kept
    assert bob.personality.big_five.extraversion == 50
    assert bob.personality.custom_traits == {"humor": 80}
    assert (bob.memory.retention_days, bob.memory.importance_threshold) == (None, 0.3)
    assert bob.memory.max_memories == 10_000
    assert bob.privacy.analytics is False  # NULL: PJai's default

    cy = manager.personas.get("p-cy")
    assert cy is not None
    assert cy.created_at == at("2023-07-22T04:26:40Z")  # epoch milliseconds
    assert cy.updated_at == cy.created_at
    # Unreadable traits cost the traits, not the persona.
    broken = manager.personas.get("p-broken")
    assert broken is not None
    assert broken.personality == Personality()


def test_memories_are_mapped(manager: HybridDatabaseManager, imported: LegacyImport) -> None:
    tiers = {}
    for memory_id in (
        "m-active",
        "m-hot",
        "m-warm",
        "m-cold",
        "m-null",
        "m-bob",
        "m-too-important",
        "m-orphan",
    ):
        memory = manager.memories.get(memory_id)
        assert memory is not None, memory_id
        tiers[memory_id] = (memory.tier, memory.importance)
    assert tiers == {
        "m-active": ("hot", 0.9),
        "m-hot": ("hot", 1.0),
        "m-warm": ("warm", 0.0),
        "m-cold": ("cold", 0.35),
        "m-null": ("warm", 0.5),
        "m-bob": ("warm", 0.7),
        "m-too-important": ("warm", 0.5),  # 150 is out of range: PJai's default, reported
        "m-orphan": ("warm", 0.5),  # its persona's traits were unreadable, not the persona
    }
    active = manager.memories.get("m-active")
    assert active is not None
    assert (active.type, active.name, active.summary) == (
        "fact",
        "Thesis deadline",
        "thesis due June",
    )
    assert (active.content, active.tags) == ("Ada's thesis is due in June.", ["work", "urgent"])
    assert (active.access_count, active.last_accessed_at) == (7, at("2024-02-02T10:00:00Z"))
    assert active.created_at == at("2024-01-10T08:00:00Z")
    assert active.occurred_at == active.created_at
    assert active.updated_at == at("2024-01-11T09:30:00Z")
    assert active.deleted_at is None
    cold = manager.memories.get("m-cold")
    assert cold is not None
    assert cold.deleted_at == at("2024-01-20T00:00:00Z")
    null = manager.memories.get("m-null")
    assert null is not None
    assert (null.type, null.tags, null.access_count) == ("note", [], 0)
    assert null.created_at == at("2024-01-01T00:00:00Z")
    assert null.updated_at == null.created_at
    bob = manager.memories.get("m-bob")
    assert bob is not None
    assert bob.created_at == at("2024-01-01T00:00:00Z")  # epoch milliseconds


def test_conversations_are_mapped(manager: HybridDatabaseManager, imported: LegacyImport) -> None:
    conversation = manager.query(
        "SELECT persona_id, title, message_count, started_at FROM conversations WHERE id = ?",
        ["c-plan"],
    )
    started = at("2024-02-01T08:59:00Z")
    assert [tuple(row) for row in conversation] == [("p-ada", "Planning", 3, started)]
    assert messages(manager, "c-plan") == [
        ("c-plan:0", "user", "Plan my week", at("2024-02-01T09:00:00Z")),
        ("c-plan:1", "assistant", "Here is a plan.", at("2024-02-01T09:01:00Z")),
        ("c-plan:2", "user", "Thanks", started),  # no timestamp: the conversation's
    ]
    assert messages(manager, "c-chess") == [
        ("c-chess:0", "user", "e4", at("2024-02-01T09:00:00Z")),
        ("c-chess:1", "assistant", "e5", at("2024-02-01T09:00:30Z")),
    ]
    empty = manager.query("SELECT message_count FROM conversations WHERE id = 'c-empty'")
    assert empty[0][0] == 0


def test_imported_events_record_the_source(
    manager: HybridDatabaseManager, imported: LegacyImport
) -> None:
    assert manager.store is not None
    names = [entry.record.name for entry in manager.store.events()]
    assert names.count("v1.PersonaImported") == 4
    assert names.count("v1.PersonaActivated") == 1
    assert names.count("v1.MemoryImported") == 8
    assert names.count("v1.ConversationStarted") == 3
    assert names.count("v1.ConversationMessageAdded") == 5
    payloads = [
        json.loads(bytes(e.record.args))
        for e in manager.store.events()
        if e.record.name in ("v1.PersonaImported", "v1.MemoryImported")
    ]
    assert {payload["source"] for payload in payloads} == {SOURCE}


def test_rejected_rows_are_listed_with_reasons(
    manager: HybridDatabaseManager, legacy: Path, tmp_path: Path
) -> None:
    report = tmp_path / "reports" / "legacy.jsonl"
    result = run(manager, legacy, report)

    assert {(r.table, r.row_id) for r in result.rejections} == set(REJECTED)
    for rejection in result.rejections:
        assert REJECTED[rejection.table, rejection.row_id] in rejection.reason, rejection
    header, rows = read_report(report)
    assert header["complete"] is True
    assert (header["rejected"], header["values_not_imported"]) == (4, 2)
    assert header["imported"] == {"personas": 4, "memories": 8, "conversations": 3, "messages": 5}
    assert header["columns_not_imported"] == NOT_IMPORTED
    assert header["scales"] == result.scales
    rejected = [Rejection(r["table"], r["id"], r["reason"]) for r in rows if r["kind"] == "row"]
    assert rejected == list(result.rejections)
    values = [
        UnmappedValue(r["table"], r["id"], r["column"], r["value"], r["reason"])
        for r in rows
        if r["kind"] == "value"
    ]
    assert values == list(result.unmapped)
    assert len(rows) == 6
    assert not report.with_name(report.name + ".tmp").exists()


def test_a_second_run_imports_nothing_and_reports_the_same_rows(
    manager: HybridDatabaseManager, legacy: Path, tmp_path: Path
) -> None:
    first = run(manager, legacy, tmp_path / "first.jsonl")
    head = manager.head()

    second = run(manager, legacy, tmp_path / "second.jsonl")

    assert manager.head() == head  # not one event committed
    assert (second.personas, second.memories, second.conversations, second.messages) == (0, 0, 0, 0)
    assert (second.skipped_personas, second.skipped_memories) == (4, 8)
    assert second.skipped_conversations == 3
    # Rows that cannot be imported, and values that were not, are reported by every run,
    # each once.
    assert second.rejections == first.rejections
    assert second.unmapped == first.unmapped
    _, rows = read_report(tmp_path / "second.jsonl")
    assert len(rows) == len({(r["table"], r["id"]) for r in rows}) == 6
    assert manager.verify().equal


def test_a_second_run_after_edits_in_pjai_imports_nothing_and_rejects_nothing_new(
    manager: HybridDatabaseManager, legacy: Path, tmp_path: Path
) -> None:
    first = run(manager, legacy, tmp_path / "first.jsonl")
    manager.commit(PersonaUpdated(persona_id="p-ada", name="Ada Lovelace"))
    manager.commit(MemoryUpdated(memory_id="m-hot", persona_id="p-ada", content="Likes tea."))
    head = manager.head()

    second = run(manager, legacy, tmp_path / "second.jsonl")

    assert manager.head() == head
    assert (second.personas, second.memories, second.conversations) == (0, 0, 0)
    skipped = (second.skipped_personas, second.skipped_memories, second.skipped_conversations)
    assert skipped == (4, 8, 3)
    assert second.rejections == first.rejections
    ada, tea = manager.personas.get("p-ada"), manager.memories.get("m-hot")
    assert ada is not None
    assert tea is not None
    assert (ada.name, tea.content) == ("Ada Lovelace", "Likes tea.")


@pytest.mark.parametrize("store", ["on", "off"])
def test_a_persona_erased_here_is_not_imported_again(
    manager: HybridDatabaseManager, legacy: Path, tmp_path: Path, store: str
) -> None:
    # An erasure leaves no row to skip by: the desktop file, which still holds the
    # persona, must not bring it back on the next run.
    first = run(manager, legacy, tmp_path / "first.jsonl")
    manager.commit(PersonaErased(persona_id="p-ada"))
    if store == "off":
        manager.set_flag("use_livestore", False)
    head = manager.head()

    second = run(manager, legacy, tmp_path / "second.jsonl")

    assert manager.head() == head  # not one event committed
    assert manager.personas.get("p-ada") is None
    assert (second.personas, second.memories, second.conversations) == (0, 0, 0)
    erased = [r for r in second.rejections if r not in first.rejections]
    assert {r.table for r in erased} == {"personas", "memory_entities", "conversations"}
    assert all("'p-ada' was erased here" in r.reason for r in erased)
    skipped = (second.skipped_personas, second.skipped_memories, second.skipped_conversations)
    assert skipped == (3, 2, 2)  # the other personas' rows: Ada had 6 memories, 1 conversation
    manager.set_flag("use_livestore", True)
    assert manager.verify().equal


def test_a_persona_without_a_creation_time_pjai_keeps_is_found_again_by_its_id(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    source = tmp_path / "legacy.db"
    with LegacyDatabase(source) as db:
        db.persona("p-old", "Too old", created_at="0001-01-01T00:00:00Z")  # PJai cannot hold
        db.persona("p-none", "No time")
        db.persona("p-updated", "Changed since", updated_at="2024-01-01T00:00:00Z")
        db.memory("m-old", "p-old", "kept", created_at=0)
    first = import_legacy(manager, source, report_path=tmp_path / "report.jsonl")
    assert (first.personas, first.memories, first.rejected) == (3, 1, 0)
    head = manager.head()
    with closing(sqlite3.connect(source)) as conn, conn:  # edited in the desktop app since
        conn.execute("UPDATE personas SET updated_at = '2025-01-01T00:00:00Z'")

    second = import_legacy(manager, source, report_path=tmp_path / "report.jsonl")

    assert manager.head() == head
    assert (second.skipped_personas, second.skipped_memories, second.rejected) == (3, 1, 0)


def test_a_pjai_persona_with_a_desktop_persona_s_id_is_not_merged_with_it(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    manager.commit(PersonaCreated(persona_id="p-1", name="Mine"))
    manager.commit(MemoryAdded(memory_id="mine", persona_id="p-1", content="my own memory"))
    manager.commit(ConversationStarted(conversation_id="c-mine", persona_id="p-1"))
    head = manager.head()
    source = tmp_path / "legacy.db"
    with LegacyDatabase(source) as db:
        db.persona("p-1", "Desktop", created_at="2023-01-01T00:00:00Z", is_active=1)
        db.memory("m-1", "p-1", "the desktop persona's memory", created_at=0)
        db.conversation(1, "p-1", [{"role": "user", "content": "hi"}], created_at=0)

    for _ in range(2):
        result = import_legacy(manager, source, report_path=tmp_path / "report.jsonl")

        assert manager.head() == head  # nothing attached to the PJai persona
        assert (result.personas, result.memories, result.conversations) == (0, 0, 0)
        skipped = (result.skipped_personas, result.skipped_memories)
        assert (*skipped, result.skipped_conversations) == (0, 0, 0)
        [persona, memory, conversation] = result.rejections
        assert (persona.table, persona.row_id) == ("personas", "p-1")
        assert persona.reason.startswith("id 'p-1' is taken by another persona")
        assert persona.reason.endswith("; nothing was imported over it")
        assert memory == Rejection("memory_entities", "m-1", "persona 'p-1' was not imported")
        assert conversation == Rejection("conversations", "1", "persona 'p-1' was not imported")
    mine = manager.personas.get("p-1")
    assert mine is not None
    assert (mine.name, mine.is_active) == ("Mine", False)
    assert manager.memories.get("m-1") is None
    _, rows = read_report(tmp_path / "report.jsonl")
    assert [(r["kind"], r["table"], r["id"]) for r in rows] == [
        ("row", "personas", "p-1"),
        ("row", "memory_entities", "m-1"),
        ("row", "conversations", "1"),
    ]


def test_a_second_desktop_file_with_the_same_ids_is_rejected_not_skipped(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    hi = [{"role": "user", "content": "hi"}]
    laptop, desktop = tmp_path / "laptop.db", tmp_path / "desktop.db"
    with LegacyDatabase(laptop) as db:
        db.persona("p-a", "Ann", created_at="2023-01-01T00:00:00Z")
        db.persona("p-untimed", "No times")  # the import time stands in: the id decides
        db.memory("m1", "p-a", "Ann's memory", created_at=0)
        db.conversation(1, "p-a", hi, title="Ann's talk", created_at=0)
    with LegacyDatabase(desktop) as db:
        db.persona("p-b", "Ben", created_at="2024-02-02T00:00:00Z")
        db.persona("p-a", "Another Ann", created_at="2024-03-03T00:00:00Z")
        db.persona("p-untimed", "No times either")
        db.memory("m1", "p-b", "Ben's memory", created_at=0)
        db.memory("m2", "p-a", "Another Ann's memory", created_at=0)
        db.conversation(1, "p-b", hi, title="Ben's talk", created_at=0)
        db.conversation(2, "p-b", hi, title="Ben's other talk", created_at=0)
    import_legacy(manager, laptop, report_path=tmp_path / "laptop.jsonl")

    for run_number in range(2):
        result = import_legacy(manager, desktop, report_path=tmp_path / "desktop.jsonl")

        imported = (result.personas, result.memories, result.conversations)
        assert imported == ((1, 0, 1) if run_number == 0 else (0, 0, 0))
        skipped = (result.skipped_personas, result.skipped_memories)
        assert (*skipped, result.skipped_conversations) == (1 + run_number, 0, run_number)
        reasons = {(r.table, r.row_id): r.reason for r in result.rejections}
        assert reasons.keys() == {
            ("personas", "p-a"),
            ("memory_entities", "m1"),
            ("memory_entities", "m2"),
            ("conversations", "1"),
        }
        assert reasons["personas", "p-a"].startswith("id 'p-a' is taken by another persona")
        assert reasons["memory_entities", "m1"] == (
            "id 'm1' is taken by a memory of another persona (p-a); nothing was imported over it"
        )
        assert reasons["memory_entities", "m2"] == "persona 'p-a' was not imported"
        assert reasons["conversations", "1"] == (
            "id '1' is taken by a conversation of another persona (p-a);"
            " nothing was imported over it"
        )
    ann, memory = manager.personas.get("p-a"), manager.memories.get("m1")
    assert ann is not None
    assert memory is not None
    assert (ann.name, memory.persona_id, memory.content) == ("Ann", "p-a", "Ann's memory")
    assert manager.memories.get("m2") is None
    titles = manager.query("SELECT id, persona_id, title FROM conversations ORDER BY id")
    assert [tuple(row) for row in titles] == [
        ("1", "p-a", "Ann's talk"),
        ("2", "p-b", "Ben's other talk"),
    ]
    assert manager.verify().equal


def test_an_import_stopped_by_an_error_still_writes_its_report(
    manager: HybridDatabaseManager, legacy: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report.jsonl"

    def stop(done: int, total: int) -> None:
        raise RuntimeError("stopped by the user")

    with pytest.raises(RuntimeError, match="stopped by the user"):
        import_legacy(manager, legacy, report_path=report, progress=stop)

    header, rows = read_report(report)
    assert (header["complete"], header["error"]) == (False, "stopped by the user")
    assert header["imported"]["personas"] == 4  # the first batch was committed
    assert [(r["kind"], r["table"], r["id"]) for r in rows] == [("value", "personas", "p-broken")]
    resumed = run(manager, legacy, report)
    assert (resumed.skipped_personas, resumed.memories, resumed.conversations) == (4, 8, 3)


def test_the_source_file_is_never_modified(
    manager: HybridDatabaseManager, legacy: Path, tmp_path: Path
) -> None:
    before = hashlib.sha256(legacy.read_bytes()).hexdigest()
    files = sorted(p.name for p in legacy.parent.iterdir())

    run(manager, legacy, tmp_path / "report.jsonl")
    run(manager, legacy, tmp_path / "report.jsonl")

    assert hashlib.sha256(legacy.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in legacy.parent.iterdir()) == files  # no journal left behind


def counted_commits(manager: HybridDatabaseManager, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the manager's commits from now on, as they are made."""
    commits: list[int] = []
    commit = manager.commit

    def counted(*events: Event) -> list[EventRecord]:
        commits.append(len(events))
        return commit(*events)

    monkeypatch.setattr(manager, "commit", counted)
    return commits


def test_a_batch_refused_at_commit_is_split_until_the_row_at_fault_is_found(
    manager: HybridDatabaseManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A memory of a persona PJai has deleted validates, but its commit is refused."""
    manager.commit(PersonaCreated(persona_id="gone", name="Gone"))
    manager.commit(PersonaDeleted(persona_id="gone"))
    source = tmp_path / "legacy.db"
    with LegacyDatabase(source) as db:
        db.persona("p1", "One", created_at=0)
        for i in range(1200):
            db.memory(f"ok{i}", "p1", f"memory {i}", created_at=0)
            if i == 700:
                db.memory("lost", "gone", "a memory of a deleted persona", created_at=0)
    commits = counted_commits(manager, monkeypatch)

    result = import_legacy(manager, source, report_path=tmp_path / "report.jsonl")

    assert (result.personas, result.memories, result.skipped_personas) == (1, 1200, 0)
    assert [(r.row_id, r.table) for r in result.rejections] == [("lost", "memory_entities")]
    assert "'gone' does not exist or is deleted" in result.rejections[0].reason
    # The persona; 500 memories; 500 with "lost" (its 202nd row), refused and halved
    # until "lost" is alone: the other rows go in with the halves without it; the last 201.
    halves = [250, 125, 125, 62, 63, 31, 15, 7, 8, 4, 4, 2, 2, 1, 1, 16, 32, 250]
    assert commits == [1, 500, 500, *halves, 201]
    assert manager.memories.count() == 1200
    assert manager.verify().equal


def test_import_with_the_store_off_then_on(sql_url: str, legacy: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    off = {"PJAI_USE_LIVESTORE": "false"}
    with HybridDatabaseManager.open(data, sql_urls=[sql_url], environ=off) as manager:
        assert manager.store is None
        first = run(manager, legacy, tmp_path / "report.jsonl")
        assert (first.personas, first.memories, first.conversations) == (4, 8, 3)
    with HybridDatabaseManager.open(data, sql_urls=[sql_url], environ={}) as manager:
        again = run(manager, legacy, tmp_path / "report.jsonl")
        assert (again.personas, again.memories, again.conversations) == (0, 0, 0)
        assert again.skipped_memories == 8
        assert manager.verify().equal


def test_duplicate_ids_and_odd_values(manager: HybridDatabaseManager, tmp_path: Path) -> None:
    source = tmp_path / "legacy.db"
    with LegacyDatabase(source) as db:
        db.execute("DROP TABLE conversations")
        db.execute("CREATE TABLE conversations (id, persona_id, title, messages, created_at)")
        db.persona("p1", "One", created_at="2024-05-05", is_active="yes")
        db.persona("p2", "Two", is_active="maybe", created_at=0)
        db.persona("p3", "Three")
        db.memory("m1", "p1", "tier in capitals", memory_tier="COLD", created_at=0)
        db.memory("m2", "p1", "unknown tier", memory_tier="frozen", created_at=0)
        db.memory("m3", "p1", "bad time", created_at="last tuesday")
        db.memory("m4", "p1", "tags not a list", tags={"a": 1}, created_at=0)
        db.conversation(7, "p1", [{"role": "user", "content": "hi"}], created_at=0)
        db.conversation(7, "p1", [], created_at=0)
        db.conversation(8, "p1", [{"role": "user", "content": "hi", "time": "soon"}])

    before = datetime.now(UTC)
    result = import_legacy(manager, source, report_path=tmp_path / "report.jsonl")
    after = datetime.now(UTC)

    # An unreadable value costs that value, never the row; an id clash costs the row.
    assert [(r.row_id, r.reason) for r in result.rejections] == [
        ("7", "id '7' appears more than once in conversations")
    ]
    assert {(u.row_id, u.column): (u.value, u.reason) for u in result.unmapped} == {
        ("p2", "is_active"): (
            "maybe",
            "is not a boolean (0/1, true/false); the persona is not activated",
        ),
        ("p3", "created_at"): (None, "is missing, as is updated_at; the import time stands in"),
        ("m2", "memory_tier"): ("frozen", "is not active, hot, warm or cold; warm is kept"),
        ("m3", "created_at"): (
            "last tuesday",
            "is not ISO-8601 nor epoch seconds; the import time stands in",
        ),
        ("m4", "tags"): (
            '{"a": 1}',
            "is neither a JSON array nor comma-separated text; no tags kept",
        ),
        ("8", "messages[0].time"): (
            "soon",
            "is not ISO-8601 nor epoch seconds; the conversation's start stands in",
        ),
    }
    assert (result.personas, result.memories, result.conversations) == (3, 4, 2)
    one, two, three = (manager.personas.get(p) for p in ("p1", "p2", "p3"))
    assert one is not None
    assert two is not None
    assert three is not None
    assert one.is_active
    assert not two.is_active
    assert before <= three.created_at == three.updated_at <= after
    tiers = {}
    for memory_id in ("m1", "m2", "m3", "m4"):
        memory = manager.memories.get(memory_id)
        assert memory is not None
        tiers[memory_id] = memory.tier
    assert tiers == {"m1": "cold", "m2": "warm", "m3": "warm", "m4": "warm"}
    bad_time, no_tags = manager.memories.get("m3"), manager.memories.get("m4")
    assert bad_time is not None
    assert no_tags is not None
    assert before <= bad_time.created_at <= after
    assert no_tags.tags == []
    assert messages(manager, "7") == [("7:0", "user", "hi", at("1970-01-01T00:00:00Z"))]
    [(_, _, _, sent_at)] = messages(manager, "8")  # no start either: the commit's time
    assert before <= sent_at <= after


def test_a_large_value_not_imported_is_kept_for_the_report_as_its_start_and_length(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    # Held whole until the report is written, values a file holds by the thousand would
    # fill the memory: one of 2 MB per row, kept four times over, did.
    source = tmp_path / "legacy.db"
    large = "x" * (2 * 1024 * 1024)
    with LegacyDatabase(source) as db:
        db.persona("p1", "One")
        db.memory("m1", "p1", "large tags", tags=large, created_at=0)
        db.memory("m2", "p1", "small tags", tags='{"a": 1}', created_at=0)
    result = import_legacy(manager, source, report_path=tmp_path / "report.jsonl")
    values = {(u.row_id, u.column): u.value for u in result.unmapped}
    assert values["m2", "tags"] == '{"a": 1}'  # small: whole
    cut = f"… ({len(large):,} characters in all, in the legacy file)"
    assert values["m1", "tags[0]"] == "x" * MAX_SHOWN + cut  # one tag, too long to keep
    assert result.memories == 2


def test_rows_of_large_values_are_committed_in_smaller_batches(
    manager: HybridDatabaseManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "legacy.db"
    with LegacyDatabase(source) as db:
        db.persona("p1", "One", created_at=0)
        for i in range(10):
            db.memory(f"m{i}", "p1", "x" * 300_000, created_at=0)
    monkeypatch.setattr(legacy_run, "BATCH_BYTES", 1_000_000)
    commits = counted_commits(manager, monkeypatch)
    result = import_legacy(manager, source, report_path=tmp_path / "report.jsonl")
    assert result.memories == 10
    # The persona; then a batch each time the rows pending pass 1 MB: every fourth row.
    assert commits == [1, 4, 4, 2]


def test_a_tag_or_trait_no_backend_can_store_costs_that_item_only(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    # JSON can escape a NUL or a lone surrogate; no backend stores either.
    source = tmp_path / "legacy.db"
    with LegacyDatabase(source) as db:
        db.persona(
            "p1",
            "One",
            personality_traits='{"hu\\u0000mor": 50, "wit": 70, "Openness": 60}',
            personality_temperament="sanguine",
            created_at=0,
        )
        db.persona("p2", "Two", personality_traits='["kind", "\\ud800x"]', created_at=0)
        db.memory("m1", "p1", "tagged", tags='["a\\u0000b", "keep", "\\udc80"]', created_at=0)

    result = import_legacy(manager, source, report_path=tmp_path / "report.jsonl")

    assert {(u.row_id, u.column): u.reason for u in result.unmapped} == {
        ("p1", "personality_traits.hu\x00mor"): "its name must not contain the NUL character "
        "(U+0000); the trait is left out",
        ("p2", "personality_traits[1]"): "its name is not valid Unicode text: character "
        "'\\ud800' at position 0 is a lone surrogate; the trait is left out",
        ("m1", "tags[0]"): "must not contain the NUL character (U+0000); the tag is left out",
        ("m1", "tags[2]"): "is not valid Unicode text: character '\\udc80' at position 0 is "
        "a lone surrogate; the tag is left out",
    }
    one, two, memory = (
        manager.personas.get("p1"),
        manager.personas.get("p2"),
        manager.memories.get("m1"),
    )
    assert one is not None
    assert two is not None
    assert memory is not None
    assert one.personality.custom_traits == {"wit": 70}
    assert one.personality.big_five.openness == 60
    assert one.personality.type == "sanguine"
    assert two.personality.dominant_traits == ["kind"]
    assert memory.tags == ["keep"]


def import_one_conversation(
    manager: HybridDatabaseManager, tmp_path: Path, said: list[Any]
) -> LegacyImport:
    """Import a desktop file of one persona, p1, with one conversation, c1, of ``said``."""
    source = tmp_path / "legacy.db"
    with LegacyDatabase(source) as db:
        db.persona("p1", "One", created_at=0)
        db.conversation("c1", "p1", said, created_at=0)
    return import_legacy(manager, source, report_path=tmp_path / "report.jsonl")


def test_a_conversation_whose_messages_are_all_left_out_says_why(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    # The message goes for its NUL; its unreadable time alone would not cost it.
    message = {"role": "user", "content": "hi\x00", "timestamp": "soon"}

    result = import_one_conversation(manager, tmp_path, [message])

    [rejection] = result.rejections
    assert rejection.row_id == "c1"
    assert rejection.reason.startswith(
        "its one message cannot be imported (messages[0] content must not contain the NUL"
    )


def test_a_message_whose_text_is_not_text_says_what_it_is(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    # Content as a list of parts, as chat APIs write it, is not a missing content.
    parts = {"role": "user", "content": [{"type": "text", "text": "hi"}]}
    said = [parts, {"role": 1, "content": "x"}, {"text": "ok"}, {"role": "user", "text": "y"}]

    result = import_one_conversation(manager, tmp_path, said)

    assert (result.messages, result.rejections) == (1, ())
    assert [(u.column, u.reason) for u in result.unmapped if u.row_id == "c1"] == [
        ("messages[0]", "its content is not text but a list; the message is not imported"),
        ("messages[1]", "its role is not text but a number; the message is not imported"),
        ("messages[2]", "has no role (role, sender, author); the message is not imported"),
    ]


def test_a_message_written_in_another_encoding_costs_that_message_only(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    # The first message's text was written in Latin-1: SQLite holds the column as TEXT
    # that is not UTF-8, which the import reads as bytes.
    source = tmp_path / "legacy.db"
    with LegacyDatabase(source) as db:
        db.persona("p1", "One", created_at=0)
    said = [{"role": "user", "content": "caf\xe9"}, {"role": "assistant", "content": "fine"}]
    with closing(sqlite3.connect(source)) as conn:
        conn.execute(
            "INSERT INTO conversations (id, persona_id, messages, created_at) "
            "VALUES ('c1', 'p1', CAST(? AS TEXT), 0)",
            [json.dumps(said, ensure_ascii=False).encode("latin-1")],
        )
        conn.commit()

    result = import_legacy(manager, source, report_path=tmp_path / "report.jsonl")

    assert (result.conversations, result.messages, result.rejections) == (1, 1, ())
    [lost] = [u for u in result.unmapped if u.row_id == "c1"]
    assert lost.column == "messages[0]"
    assert lost.reason.endswith("; the message is not imported")
    assert messages(manager, "c1") == [("c1:1", "assistant", "fine", at("1970-01-01T00:00Z"))]


def test_a_damaged_file_is_refused_before_anything_is_imported(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    # Personas and memories read well; the conversations' page does not.
    source = tmp_path / "legacy.db"
    with LegacyDatabase(source) as db:
        db.persona("p1", "One", created_at=0)
        db.memory("m1", "p1", "a memory", created_at=0)
        db.conversation("c1", "p1", [{"role": "user", "content": "hi"}], created_at=0)
    with closing(sqlite3.connect(source)) as conn:
        (page,) = conn.execute(
            "SELECT rootpage FROM sqlite_schema WHERE name = 'conversations'"
        ).fetchone()
        (size,) = conn.execute("PRAGMA page_size").fetchone()
    with source.open("r+b") as file:
        file.seek((page - 1) * size)
        file.write(b"\xaa" * size)
    head = manager.head()

    with pytest.raises(ConfigError, match=r"is damaged \(conversations: .*nothing was imported"):
        import_legacy(manager, source, report_path=tmp_path / "report.jsonl")
    assert manager.head() == head
    assert manager.personas.get("p1") is None


def test_a_file_left_with_an_unfinished_change_says_how_to_undo_it(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    # The file and its journal as a program stopped in the middle of a write left them.
    writing, source = tmp_path / "writing.db", tmp_path / "legacy.db"
    with LegacyDatabase(writing) as db:
        db.persona("p1", "One", created_at=0)
    with closing(sqlite3.connect(writing)) as conn:
        conn.execute("PRAGMA cache_size = 1")  # pages go to the file before the commit
        conn.execute("BEGIN")
        for n in range(200):
            conn.execute("INSERT INTO personas (id, name) VALUES (?, ?)", (f"x{n}", "x" * 500))
        shutil.copy(writing, source)
        shutil.copy(f"{writing}-journal", f"{source}-journal")
        conn.rollback()

    with pytest.raises(ConfigError, match="holds a change its writer did not finish"):
        import_legacy(manager, source, report_path=tmp_path / "report.jsonl")
    with closing(sqlite3.connect(source)) as conn:  # as the error says: undone
        assert conn.execute("SELECT count(*) FROM personas").fetchone() == (1,)
    assert import_legacy(manager, source, report_path=tmp_path / "report.jsonl").personas == 1


def test_columns_are_found_whatever_their_case(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    source = tmp_path / "legacy.db"
    with closing(sqlite3.connect(source)) as conn:
        conn.execute("CREATE TABLE Personas (ID TEXT PRIMARY KEY, Name TEXT, Created_At TEXT)")
        conn.execute("CREATE TABLE memory_entities (Id, Persona_Id, Content, Importance, Extra)")
        conn.execute("CREATE TABLE conversations (ID, PERSONA_ID, MESSAGES)")
        conn.execute("INSERT INTO Personas VALUES ('p1', 'One', '2024-01-01')")
        conn.execute("INSERT INTO memory_entities VALUES ('m1', 'p1', 'hello', 80, 'x')")
        conn.commit()

    result = import_legacy(manager, source, report_path=tmp_path / "report.jsonl")

    assert (result.personas, result.memories, result.rejected) == (1, 1, 0)
    memory = manager.memories.get("m1")
    assert memory is not None
    assert memory.importance == 0.8
    header, _ = read_report(tmp_path / "report.jsonl")
    assert header["columns_not_imported"] == {"memory_entities.extra": "unknown to this importer"}


def test_the_report_names_the_tables_that_are_not_imported(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    source = tmp_path / "legacy.db"
    with LegacyDatabase(source) as db:
        db.persona("p1", "One", created_at=0)
        db.execute("CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT)")
        db.execute("INSERT INTO settings VALUES ('theme', 'dark')")
        db.execute("CREATE TABLE Relationships (a, b) ")
        db.execute("CREATE TABLE log (id INTEGER PRIMARY KEY AUTOINCREMENT)")  # + sqlite_sequence

    import_legacy(manager, source, report_path=tmp_path / "report.jsonl")

    header, _ = read_report(tmp_path / "report.jsonl")
    assert header["tables_not_imported"] == ["Relationships", "log", "settings"]


def test_a_file_written_while_it_is_imported_is_read_as_it_was_when_the_import_began(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    # The desktop app, open on the file, adds a persona and its memory mid-import.
    source = tmp_path / "legacy.db"
    with LegacyDatabase(source) as db:
        db.execute("PRAGMA journal_mode = WAL")
        db.persona("p1", "One", created_at=0)
        db.memory("m1", "p1", "before", created_at=0)
    with closing(sqlite3.connect(source)) as app:
        app.execute("SELECT count(*) FROM personas").fetchone()

        def write(done: int, total: int) -> None:
            if done == 1:  # the personas have been read
                app.execute("INSERT INTO personas (id, name, created_at) VALUES ('p2', 'Two', 0)")
                app.execute(
                    "INSERT INTO memory_entities (id, persona_id, content, created_at) "
                    "VALUES ('m2', 'p2', 'during', 0)"
                )
                app.commit()

        report = tmp_path / "report.jsonl"
        first = import_legacy(manager, source, report_path=report, progress=write)
        assert (first.personas, first.memories, first.rejections) == (1, 1, ())
        again = import_legacy(manager, source, report_path=report)
        assert (again.personas, again.memories, again.rejections) == (1, 1, ())


def only_personas(path: Path) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE personas (id, name)")


def endless_view(path: Path) -> None:
    # Counting its rows would never end.
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE memory_entities (id, persona_id, content)")
        conn.execute("CREATE TABLE conversations (id, persona_id)")
        conn.execute(
            "CREATE VIEW PERSONAS AS WITH RECURSIVE n(id) AS (SELECT 1 UNION ALL "
            "SELECT id + 1 FROM n) SELECT id, 'x' AS name FROM n"
        )
        # A trigger may share a table's name: it is not what the table is.
        conn.execute(
            "CREATE TRIGGER conversations AFTER INSERT ON memory_entities BEGIN SELECT 1; END"
        )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda path: None, "does not exist"),
        (endless_view, "personas is a view, not a table"),
        (lambda path: path.mkdir(), "is not a file"),
        (lambda path: path.write_text("just text, " * 100), "is not a readable SQLite database"),
        (only_personas, "no table memory_entities, conversations"),
    ],
)
def test_a_file_that_is_not_a_legacy_database_is_refused(
    manager: HybridDatabaseManager, tmp_path: Path, make: Any, message: str
) -> None:
    source = tmp_path / "legacy.db"
    make(source)
    with pytest.raises(ConfigError, match=message) as raised:
        import_legacy(manager, source, report_path=tmp_path / "report.jsonl")
    assert str(source) in str(raised.value)
    assert not (tmp_path / "report.jsonl").exists()


def test_a_legacy_table_without_a_needed_column_is_refused(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    source = tmp_path / "legacy.db"
    with LegacyDatabase(source) as db:
        db.execute("ALTER TABLE memory_entities DROP COLUMN content")
    with pytest.raises(ConfigError, match="table memory_entities lacks column"):
        import_legacy(manager, source, report_path=tmp_path / "report.jsonl")


def test_the_report_never_overwrites_the_source(
    manager: HybridDatabaseManager, legacy: Path
) -> None:
    with pytest.raises(ConfigError, match="would overwrite the legacy database"):
        import_legacy(manager, legacy, report_path=legacy)


def test_the_command_prints_a_json_summary_the_rejections_and_the_values_left(
    legacy: Path, tmp_path: Path
) -> None:
    app = typer.Typer()
    app.command()(import_legacy_command)
    runner = CliRunner()
    data = tmp_path / "data"
    command = [str(legacy), "--data-dir", str(data)]

    first = runner.invoke(app, [*command, "--json"])
    assert first.exit_code == 0, first.output
    report = data / "legacy-import-report.jsonl"
    assert json.loads(first.stdout) == {
        "personas": 4,
        "memories": 8,
        "conversations": 3,
        "rejected": 4,
        "values_not_imported": 2,
        "report": str(report),
    }
    assert read_report(report)[0]["rejected"] == 4

    second = runner.invoke(app, command)
    assert second.exit_code == 0, second.output
    lines = second.stdout.splitlines()
    assert "memory_entities m-ghost: persona 'p-ghost' was not imported" in lines
    assert (
        "conversations c-no-role: its one message cannot be imported (messages[0] has no "
        "role (role, sender, author); the message is not imported)"
    ) in lines
    assert (
        "memory_entities m-too-important importance 150: is outside the 0-100 scale of this "
        "database; PJai's default 0.5 is kept"
    ) in lines
    assert any(line.startswith("personas p-broken personality_traits '{") for line in lines)
    assert any(line.startswith("Imported 0 persona(s), 0 memories") for line in lines)
    assert lines[-2].endswith("; 4 row(s) not imported; 2 value(s) not imported.")

    missing = runner.invoke(app, [str(tmp_path / "nope.db"), "--data-dir", str(data)])
    assert missing.exit_code == 2
