"""Importing databases written the way the PJai desktop app writes them, on every backend."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from pjai.app import DataDir
from pjai.app.transfer import import_legacy as import_into_dir
from pjai.cli import app
from pjai.errors import ConfigError
from pjai.hybrid import HybridDatabaseManager
from pjai.hybrid.legacy import LegacyImport, import_legacy
from pjai.schema import PersonaActivated, Personality
from pjai.schema.tables import conversation_messages
from tests.hybrid.desktop_app import DesktopApp


class Desktop:
    """The ids of the rows of :func:`desktop`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ids: dict[str, str] = {}


@pytest.fixture
def desktop(tmp_path: Path) -> Desktop:
    """A desktop database of the release with 0-1 importances, written as a user would.

    Traits as an array of names, as an array of trait objects and as the column default;
    tags as comma-separated text, a JSON array and the default; importances 0-1 and the
    default; tiers changed, a memory accessed, one deleted; messages with each usual set
    of field names, and a conversation left with its default messages.
    """
    folder = tmp_path / "desktop"
    folder.mkdir()
    result = Desktop(folder / "pjai.db")
    ids = result.ids
    with DesktopApp(result.path, importance="0-1", tags="comma") as db:
        ids["ada"] = db.create_persona(
            "Ada", description="Research assistant", traits=["curious", "Openness", "patient"]
        )
        ids["ben"] = db.create_persona(
            "Ben",
            traits=[
                {"name": "helpful", "value": 80, "category": "custom", "description": "Helps"},
                {"name": "analytical", "value": 90, "category": "custom"},
                {"name": "Agreeableness", "value": 70, "category": "big_five"},
            ],
            temperament="analytical",
            communication_style="precise",
            importance_threshold=70,
        )
        ids["cy"] = db.create_persona("Cy")
        db.activate(ids["ada"])
        db.activate(ids["ben"])  # the app keeps one active persona: Ben now

        ids["thesis"] = db.add_memory(
            ids["ada"], "Ada's thesis is due in June.", type="fact", importance=0.8,
            tags=["work", "urgent"],
        )  # fmt: skip
        ids["tea"] = db.add_memory(
            ids["ada"], "Likes green tea.", type="preference", importance=0.35,
            tags='["preference", "drinks"]',
        )  # fmt: skip
        ids["plain"] = db.add_memory(ids["ada"], "Met Sam at a conference.")
        ids["chess"] = db.add_memory(ids["ben"], "Ben plays chess.", importance=1.0)
        db.move_to_tier(ids["chess"], "cold")
        db.access(ids["chess"])
        db.access(ids["chess"])
        ids["old"] = db.add_memory(ids["ben"], "Old phone number.", importance=0.05)
        db.delete_memory(ids["old"])
        ids["warm"] = db.add_memory(ids["cy"], "Cy is new.", importance=0.5, tags="")
        db.move_to_tier(ids["warm"], "warm")

        ids["plan"] = db.save_conversation(
            ids["ada"],
            "Planning",
            [
                {"id": "m1", "role": "user", "content": "Plan my week",
                 "timestamp": "2024-02-01T09:00:00.000Z"},
                {"id": "m2", "role": "assistant", "content": "Here is a plan.",
                 "timestamp": "2024-02-01T09:01:00.000Z"},
            ],
        )  # fmt: skip
        ids["chat"] = db.save_conversation(
            ids["ben"],
            "Chess",
            [
                {"sender": "user", "text": "e4", "created_at": 1706778000000},
                {"sender": "assistant", "text": "e5", "created_at": 1706778030000},
            ],
        )
        ids["notes"] = db.save_conversation(
            ids["cy"],
            "Notes",
            [{"author": "user", "message": "Remember this", "date": "2024-03-01 10:00:00"}],
        )
        ids["empty"] = db.save_conversation(ids["cy"], "Nothing yet")
    return result


def run(manager: HybridDatabaseManager, source: Path, report: Path) -> LegacyImport:
    return import_legacy(manager, source, report_path=report)


def test_every_row_of_a_desktop_database_is_imported(
    manager: HybridDatabaseManager, desktop: Desktop, tmp_path: Path
) -> None:
    ids = desktop.ids
    result = run(manager, desktop.path, tmp_path / "report.jsonl")

    assert (result.personas, result.memories, result.conversations) == (3, 6, 4)
    assert (result.messages, result.rejections) == (5, ())
    assert result.scales == {
        "memory_entities.importance": "0-1",
        "personas.memory_importance_threshold": "0-100",
    }
    assert manager.verify().equal

    ada, ben, cy = (manager.personas.get(ids[name]) for name in ("ada", "ben", "cy"))
    assert ada is not None
    assert ben is not None
    assert cy is not None
    # Trait names without strengths are kept as the dominant traits.
    assert ada.personality.dominant_traits == ["curious", "Openness", "patient"]
    assert ada.personality.custom_traits == {}
    assert ben.personality.custom_traits == {"helpful": 80, "analytical": 90}
    assert ben.personality.big_five.agreeableness == 70
    assert (ben.personality.type, ben.communication_style) == ("analytical", "precise")
    # The column defaults: traits '[]', temperament, threshold 50, retention 30, ...
    assert cy.personality == Personality(type="balanced")
    assert cy.communication_style == "conversational"
    assert (cy.memory.max_memories, cy.memory.importance_threshold) == (1000, 0.5)
    assert (cy.memory.retention_days, cy.memory.auto_optimize) == (30, True)
    assert (ben.memory.importance_threshold, ben.is_active, ada.is_active) == (0.7, True, False)

    memories = {}
    for name in ("thesis", "tea", "plain", "chess", "old", "warm"):
        memory = manager.memories.get(ids[name])
        assert memory is not None, name
        memories[name] = (memory.importance, memory.tier, memory.tags)
    assert memories == {
        "thesis": (0.8, "hot", ["work", "urgent"]),  # 0.8, not 0.008; comma tags
        "tea": (0.35, "hot", ["preference", "drinks"]),  # a JSON array of tags
        "plain": (0.5, "hot", []),  # the defaults: importance 0.5, tier 'active', '[]'
        "chess": (1.0, "cold", []),
        "old": (0.05, "hot", []),
        "warm": (0.5, "warm", []),
    }
    chess, old = manager.memories.get(ids["chess"]), manager.memories.get(ids["old"])
    assert chess is not None
    assert old is not None
    assert chess.access_count == 2
    assert chess.last_accessed_at is not None
    assert old.deleted_at is not None

    sent = manager.query(
        "SELECT conversation_id, role, content FROM conversation_messages ORDER BY id"
    )
    assert sorted(tuple(row) for row in sent) == sorted(
        [
            (ids["plan"], "user", "Plan my week"),
            (ids["plan"], "assistant", "Here is a plan."),
            (ids["chat"], "user", "e4"),
            (ids["chat"], "assistant", "e5"),
            (ids["notes"], "user", "Remember this"),
        ]
    )

    # What PJai has no place for is reported, value by value.
    assert [(u.table, u.row_id, u.column, u.value) for u in result.unmapped] == [
        ("personas", ids["ben"], "personality_traits[0].description", "Helps")
    ]


def test_a_second_run_imports_nothing(
    manager: HybridDatabaseManager, desktop: Desktop, tmp_path: Path
) -> None:
    first = run(manager, desktop.path, tmp_path / "first.jsonl")
    head = manager.head()

    second = run(manager, desktop.path, tmp_path / "second.jsonl")

    assert manager.head() == head
    assert (second.personas, second.memories, second.conversations) == (0, 0, 0)
    skipped = (second.skipped_personas, second.skipped_memories, second.skipped_conversations)
    assert skipped == (3, 6, 4)
    assert (second.rejections, second.unmapped) == ((), first.unmapped)


@pytest.fixture
def awkward(tmp_path: Path) -> Desktop:
    """A 0-100 desktop database (the app's own DDL) holding values PJai cannot all take."""
    result = Desktop(tmp_path / "awkward.db")
    ids = result.ids
    with DesktopApp(result.path, importance="0-100", tags="json") as db:
        ids["many"] = db.create_persona(
            "Many traits",
            traits=[f"trait {n}" for n in range(18)] + ["trait 0", {"value": 3}, " ", 7],
        )
        ids["odd"] = db.create_persona("Odd", traits={"humor": 150, "wit": "high", "calm": 40})
        ids["scaled"] = db.add_memory(ids["odd"], "Scaled.", importance=80)
        ids["default"] = db.add_memory(ids["odd"], "Default importance.")
        ids["high"] = db.add_memory(ids["odd"], "Too important.", importance=150)
        ids["low"] = db.add_memory(ids["odd"], "Below zero.", importance=-3)
        ids["tagged"] = db.add_memory(ids["odd"], "Tags.", tags=["ok", "x" * 70, 5, ""])
        ids["blank"] = db.add_memory(ids["odd"], "   ")
        ids["mixed"] = db.save_conversation(
            ids["odd"],
            "t" * 600,
            [
                {"role": "user", "content": "kept", "time": "soon", "mood": "happy"},
                {"content": "no speaker"},
                "not an object",
                {"role": "assistant", "content": "   "},
            ],
        )
        ids["silent"] = db.save_conversation(ids["odd"], "Silent", [{"text": "who?"}])
        ids["mute"] = db.save_conversation(ids["odd"], "Mute", [{"text": "a"}, {"role": "x"}])
    return result


def test_unmappable_values_cost_the_value_and_are_reported(
    manager: HybridDatabaseManager, awkward: Desktop, tmp_path: Path
) -> None:
    ids = awkward.ids
    report = tmp_path / "report.jsonl"
    result = run(manager, awkward.path, report)

    assert (result.personas, result.memories, result.conversations) == (2, 5, 1)
    reasons = {r.row_id: r.reason for r in result.rejections}
    assert reasons.keys() == {ids["blank"], ids["silent"], ids["mute"]}
    assert reasons[ids["blank"]] == "content is blank"
    assert reasons[ids["silent"]] == (
        "its one message cannot be imported (messages[0] has no role (role, sender, author); "
        "the message is not imported)"
    )
    assert reasons[ids["mute"]].startswith("none of its 2 messages can be imported (messages[0]")
    assert result.scales["memory_entities.importance"] == "0-100"
    importances = {}
    for name in ("scaled", "default", "high", "low", "tagged"):
        memory = manager.memories.get(ids[name])
        assert memory is not None
        importances[name] = memory.importance
    # Out of range is reported, not clamped: PJai's default stands in.
    assert importances == {"scaled": 0.8, "default": 0.5, "high": 0.5, "low": 0.5, "tagged": 0.5}
    tagged = manager.memories.get(ids["tagged"])
    assert tagged is not None
    assert tagged.tags == ["ok"]

    many, odd = manager.personas.get(ids["many"]), manager.personas.get(ids["odd"])
    assert many is not None
    assert odd is not None
    assert many.personality.dominant_traits == [f"trait {n}" for n in range(16)]
    assert odd.personality.custom_traits == {"calm": 40}
    assert odd.personality.dominant_traits == ["humor", "wit"]
    query = "SELECT title, message_count FROM conversations WHERE id = ?"
    assert tuple(manager.query(query, [ids["mixed"]])[0]) == ("", 1)

    unmapped = {(u.row_id, u.column): u for u in result.unmapped}
    expected: dict[tuple[str, str], tuple[Any, str]] = {
        (ids["many"], "personality_traits[16]"): ("trait 16", "PJai keeps 16 dominant traits"),
        (ids["many"], "personality_traits[17]"): ("trait 17", "PJai keeps 16 dominant traits"),
        (ids["many"], "personality_traits[18]"): ("trait 0", "repeats a trait"),
        (ids["many"], "personality_traits[19]"): ({"value": 3}, "has no name"),
        (ids["many"], "personality_traits[20]"): (" ", "has a blank name"),
        (ids["many"], "personality_traits[21]"): (7, "is neither a name nor a trait object"),
        (ids["odd"], "personality_traits.humor"): (150, "is above 100"),
        (ids["odd"], "personality_traits.wit"): ("high", "is not a strength 0-100"),
        (ids["high"], "importance"): (150, "outside the 0-100 scale of this database"),
        (ids["low"], "importance"): (-3, "outside the 0-100 scale of this database"),
        (ids["tagged"], "tags[1]"): ("x" * 70, "at most 64 characters; the tag is left out"),
        (ids["tagged"], "tags[2]"): (5, "is not text; the tag is left out"),
        (ids["mixed"], "title"): ("t" * 600, "at most 500 characters; PJai's default is kept"),
        (ids["mixed"], "messages[0].time"): ("soon", "the conversation's start stands in"),
        (ids["mixed"], "messages[0].mood"): ("happy", "PJai's messages have no mood"),
        (ids["mixed"], "messages[1]"): ({"content": "no speaker"}, "has no role"),
        (ids["mixed"], "messages[2]"): ("not an object", "is not a JSON object"),
        (ids["mixed"], "messages[3]"): ({"role": "assistant", "content": "   "}, "has no content"),
    }
    assert set(unmapped) == set(expected)
    for key, (value, reason) in expected.items():
        assert unmapped[key].value == value, key
        assert reason in unmapped[key].reason, (key, unmapped[key].reason)

    lines = [json.loads(line) for line in report.read_text().splitlines()[1:]]
    assert sum(line["kind"] == "value" for line in lines) == len(expected)


def test_a_database_of_fractions_keeps_them_and_reports_a_stray_value(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    """The scale is the one most values fit: one stray 7 does not make 0.8 read 0.008."""
    path = tmp_path / "fractions.db"
    with DesktopApp(path, importance="0-1") as db:
        persona = db.create_persona("P", importance_threshold=0.25)
        kept = [db.add_memory(persona, f"m{n}", importance=v) for n, v in enumerate((0.8, 1, 0))]
        stray = db.add_memory(persona, "stray", importance=7)

    result = run(manager, path, tmp_path / "report.jsonl")

    assert result.scales == {
        "memory_entities.importance": "0-1",
        "personas.memory_importance_threshold": "0-1",
    }
    values = []
    for memory_id in [*kept, stray]:
        memory = manager.memories.get(memory_id)
        assert memory is not None
        values.append(memory.importance)
    assert values == [0.8, 1.0, 0.0, 0.5]
    imported = manager.personas.get(persona)
    assert imported is not None
    assert imported.memory.importance_threshold == 0.25
    assert [(u.row_id, u.column, u.value) for u in result.unmapped] == [(stray, "importance", 7)]


def test_the_command_imports_a_desktop_database_and_prints_what_it_left(
    desktop: Desktop, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    command = ["import-legacy", str(desktop.path), "--data-dir", str(data)]
    runner = CliRunner()

    first = runner.invoke(app, [*command, "--json"])
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert (summary["personas"], summary["memories"], summary["conversations"]) == (3, 6, 4)
    assert (summary["rejected"], summary["values_not_imported"]) == (0, 1)

    second = runner.invoke(app, command)
    assert second.exit_code == 0, second.output
    lines = second.stdout.splitlines()
    ben = desktop.ids["ben"]
    assert (
        f"personas {ben} personality_traits[0].description 'Helps': PJai's traits have no "
        "description; left out"
    ) in lines
    assert any(line.startswith("Imported 0 persona(s), 0 memories") for line in lines)
    assert "skipped 13 row(s) already imported" in second.stdout


def test_a_time_past_the_range_of_utc_is_reported_not_a_crash(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    # Valid ISO-8601 with an offset, yet before the year 1 (or after 9999) once in UTC.
    path = tmp_path / "edges.db"
    with DesktopApp(path) as db:
        persona = db.create_persona("Old")
        db.execute(
            "UPDATE personas SET created_at = '0001-01-01T00:00:00+14:00' WHERE id = ?", [persona]
        )
        memory = db.add_memory(persona, "late", last_accessed="9999-12-31T23:59:59-12:00")

    result = run(manager, path, tmp_path / "report.jsonl")

    assert (result.personas, result.memories) == (1, 1)
    assert {(u.row_id, u.column) for u in result.unmapped} == {
        (persona, "created_at"),
        (memory, "last_accessed"),
    }
    assert all("is not a time PJai can keep" in u.reason for u in result.unmapped)


def test_text_kept_as_a_blob_is_read_as_text_or_the_row_is_rejected(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    # SQLite keeps whatever a program bound: text as a blob is still text, other bytes
    # would become something else, so their row is left out and reported.
    path = tmp_path / "blobs.db"
    with DesktopApp(path) as db:
        persona = db.create_persona("placeholder")
        db.execute("UPDATE personas SET name = ? WHERE id = ?", ["Zoë".encode(), persona])
        text_blob = db.add_memory(persona, "placeholder")
        db.execute("UPDATE memory_entities SET content = ? WHERE id = ?", [b"as bytes", text_blob])
        binary = db.add_memory(persona, "placeholder")
        db.execute("UPDATE memory_entities SET content = ? WHERE id = ?", [b"\xff\x00", binary])
        db.execute("INSERT INTO personas (id, name) VALUES (?, 'Bytes')", [b"\xfe\x01"])

    result = run(manager, path, tmp_path / "report.jsonl")

    imported = manager.personas.get(persona)
    assert imported is not None
    assert imported.name == "Zoë"
    kept = manager.memories.get(text_blob)
    assert kept is not None
    assert kept.content == "as bytes"
    assert manager.memories.get(binary) is None
    assert {(r.table, r.row_id, r.reason) for r in result.rejections} == {
        ("memory_entities", binary, "content holds binary data, not UTF-8 text (x'ff00')"),
        ("personas", None, "id holds binary data, not UTF-8 text (x'fe01')"),
    }


def test_odd_values_cost_their_column_not_the_row(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    # Bytes that are not UTF-8 in a column the row can do without, text that SQLite
    # holds as TEXT but is not UTF-8, JSON nested deeper than a parser goes, and a blank
    # role beside a usable sender.
    path = tmp_path / "odd.db"
    deep = "[" * 5000 + "]" * 5000
    with DesktopApp(path) as db:
        persona = db.create_persona("Ada")
        db.execute("UPDATE personas SET personality_traits = ? WHERE id = ?", [deep, persona])
        named = db.add_memory(persona, "kept despite its name", tags=deep)
        db.execute("UPDATE memory_entities SET name = ? WHERE id = ?", [b"\xff\xfe", named])
        tagged = db.add_memory(persona, "kept despite its tags")
        db.execute("UPDATE memory_entities SET tags = ? WHERE id = ?", [b"work,\xffhome", tagged])
        summed = db.add_memory(persona, "kept despite its summary")
        db.execute(
            "UPDATE memory_entities SET summary = CAST(x'c328' AS TEXT) WHERE id = ?", [summed]
        )
        chat = db.save_conversation(
            persona, "chat", [{"role": "", "sender": "user", "content": "", "text": "hello"}]
        )
        db.execute("UPDATE conversations SET title = ? WHERE id = ?", [b"\xff", chat])
        nested = db.save_conversation(persona, "nested", deep)

    result = run(manager, path, tmp_path / "report.jsonl")

    assert (result.personas, result.memories, result.conversations, result.messages) == (
        1,
        3,
        1,
        1,
    )
    assert [(r.row_id, r.reason) for r in result.rejections] == [
        (nested, "messages is not JSON PJai can read: its arrays or objects are nested too deeply")
    ]
    reported = {(u.row_id, u.column) for u in result.unmapped}
    assert {
        (persona, "personality_traits"),
        (named, "name"),
        (named, "tags"),
        (tagged, "tags"),
        (summed, "summary"),
        (chat, "title"),
    } <= reported
    c = conversation_messages.c
    sent = manager.query(select(c.role, c.content).where(c.conversation_id == chat))
    assert [tuple(row) for row in sent] == [("user", "hello")]


def test_a_report_never_replaces_a_file_that_is_not_a_report(
    manager: HybridDatabaseManager, desktop: Desktop, tmp_path: Path
) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("mine")
    with pytest.raises(ConfigError, match="exists and is not an import report"):
        run(manager, desktop.path, other)
    assert other.read_text() == "mine"
    assert manager.query("SELECT count(*) FROM personas")[0][0] == 0

    report = tmp_path / "report.jsonl"
    run(manager, desktop.path, report)
    run(manager, desktop.path, report)  # an earlier report is replaced


def test_the_command_refuses_a_report_over_the_data_directory_files(
    desktop: Desktop, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    runner = CliRunner()
    made = runner.invoke(app, ["import-legacy", str(desktop.path), "--data-dir", str(data)])
    assert made.exit_code == 0, made.output
    before = (data / "store.db").read_bytes()
    for name in ("store.db", "primary.db", "store.db-wal"):
        command = ["import-legacy", str(desktop.path), "--data-dir", str(data)]
        refused = runner.invoke(app, [*command, "--report", str(data / name)])
        assert refused.exit_code == 1
        assert "would replace a file PJai keeps there" in refused.output
    assert (data / "store.db").read_bytes() == before


def test_an_import_stopped_before_the_activation_activates_on_its_second_run(
    manager: HybridDatabaseManager, desktop: Desktop, tmp_path: Path, monkeypatch: Any
) -> None:
    commit = manager.commit

    def stopped(*events: Any) -> Any:
        if any(isinstance(event, PersonaActivated) for event in events):
            raise KeyboardInterrupt
        return commit(*events)

    monkeypatch.setattr(manager, "commit", stopped)
    with pytest.raises(KeyboardInterrupt):
        run(manager, desktop.path, tmp_path / "report.jsonl")
    monkeypatch.setattr(manager, "commit", commit)

    run(manager, desktop.path, tmp_path / "report.jsonl")

    ben = manager.personas.get(desktop.ids["ben"])
    assert ben is not None
    assert ben.is_active


def test_imported_memories_holding_restricted_data_are_tagged_so(tmp_path: Path) -> None:
    source = tmp_path / "desktop.db"
    with DesktopApp(source) as db:
        ada = db.create_persona("Ada")
        mail = db.add_memory(ada, "write to zqxj@example.com")
        plain = db.add_memory(ada, "likes green tea")
    data = DataDir(tmp_path / "data")
    import_into_dir(data, source)
    with data.open() as manager:
        found = {m: manager.memories.get(m) for m in (mail, plain)}
    assert {m: memory.tags for m, memory in found.items() if memory} == {
        mail: ["restricted"],
        plain: [],
    }


def test_a_time_pjai_cannot_keep_is_reported_once(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    path = tmp_path / "old.db"
    with DesktopApp(path) as db:
        ada = db.create_persona("Ada")
        old = db.add_memory(ada, "from year one", created_at="0001-01-01 00:00:00")
    result = run(manager, path, tmp_path / "report.jsonl")
    assert [(u.row_id, u.column) for u in result.unmapped] == [(old, "created_at")]


def test_a_closed_wal_database_is_read_without_a_file_made_beside_it(
    manager: HybridDatabaseManager, desktop: Desktop, tmp_path: Path
) -> None:
    with contextlib.closing(sqlite3.connect(desktop.path)) as conn:
        assert conn.execute("PRAGMA journal_mode=WAL").fetchone() == ("wal",)
    before = {p.name: p.read_bytes() for p in desktop.path.parent.iterdir()}
    assert list(before) == ["pjai.db"]  # closed: no -wal, no -shm
    assert run(manager, desktop.path, tmp_path / "report.jsonl").memories == 6
    after = {p.name: p.read_bytes() for p in desktop.path.parent.iterdir()}
    assert after == before


def test_an_open_wal_database_is_read_with_what_its_log_holds(
    manager: HybridDatabaseManager, desktop: Desktop, tmp_path: Path
) -> None:
    # The desktop app still has it open: the last memory is in the -wal file only.
    with contextlib.closing(sqlite3.connect(desktop.path)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute(
            "INSERT INTO memory_entities (id, persona_id, type, content) "
            "VALUES ('late', ?, 'note', 'Late.')",
            (desktop.ids["ada"],),
        )
        conn.commit()
        assert desktop.path.with_name("pjai.db-wal").stat().st_size > 0
        assert run(manager, desktop.path, tmp_path / "report.jsonl").memories == 7
