"""Export and import archives, on every SQL backend: round trip, manifest, refusals."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import struct
import subprocess
import sys
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
import typer
from typer.testing import CliRunner

from pjai.app import DataDir
from pjai.cli import archive as archive_cli
from pjai.errors import (
    ArchiveCorruptError,
    ArchiveError,
    ConfigError,
    PrivacyError,
    UnknownEventWarning,
)
from pjai.hybrid import HybridDatabaseManager
from pjai.hybrid.archive import (
    EVENTS_FILE,
    MANIFEST_FILE,
    ArchiveFile,
    ArchiveManifest,
    export_archive,
    import_archive,
    replay,
    restore,
)
from pjai.schema import (
    SCHEMA,
    ConversationMessageAdded,
    ConversationStarted,
    MemoryAccessed,
    MemoryDeleted,
    MemoryImported,
    MemoryRestored,
    MemoryTierChanged,
    MemoryUpdated,
    PersonaActivated,
    PersonaDeactivated,
    Personality,
    PersonaUpdated,
    Position,
)
from pjai.schema.personas import PrivacySettings
from pjai.store import Store
from tests.databases import database
from tests.helpers import memory, persona, take_from_a_newer_pjai

OLD = datetime(2021, 3, 4, 5, 6, 7, 890_123, tzinfo=UTC)


def fill(manager: HybridDatabaseManager) -> None:
    """Personas, memories in every state, conversations with messages."""
    traits = Personality(custom_traits={"wit": 80, "calm": 20}, dominant_traits=["wit"])
    manager.commit(
        persona("p1"),
        persona("p2", "Basil"),
        PersonaUpdated(persona_id="p1", personality=traits, description="curious"),
        PersonaActivated(persona_id="p2"),
    )
    manager.commit(
        *[
            memory(f"m{i:02}", "p1" if i % 3 else "p2", importance=i / 20, tags=[f"t{i % 4}"])
            for i in range(20)
        ],
        MemoryImported(
            memory_id="old",
            persona_id="p1",
            content="from the desktop app",
            source="pjai-desktop",
            created_at=OLD,
            updated_at=OLD,
            access_count=4,
            last_accessed_at=OLD,
        ),
    )
    manager.commit(
        MemoryDeleted(memory_id="m01", persona_id="p1"),
        MemoryDeleted(memory_id="m02", persona_id="p1"),
        MemoryRestored(memory_id="m02", persona_id="p1"),
        MemoryAccessed(memory_id="m04", persona_id="p1", count=3),
        MemoryAccessed(memory_id="m03", persona_id="p2"),
        MemoryTierChanged(memory_id="m05", persona_id="p1", tier="hot", reason="manual", score=0.9),
        MemoryTierChanged(memory_id="m06", persona_id="p2", tier="cold", reason="age_decay"),
        MemoryUpdated(memory_id="m07", persona_id="p1", content="changed", tags=["x", "y"]),
    )
    manager.commit(
        ConversationStarted(conversation_id="c1", persona_id="p1", title="Hello"),
        ConversationStarted(conversation_id="c2", persona_id="p2", started_at=OLD),
        ConversationMessageAdded(
            message_id="c1-1", conversation_id="c1", persona_id="p1", role="user", content="Hi"
        ),
        ConversationMessageAdded(
            message_id="c1-2", conversation_id="c1", persona_id="p1", role="assistant", content="ä"
        ),
        ConversationMessageAdded(
            message_id="c2-1", conversation_id="c2", persona_id="p2", role="user", content="Yo"
        ),
        PersonaDeactivated(persona_id="p2"),
    )


def backend(sql_url: str) -> str:
    """The backend name ``database()`` takes for a URL of the ``sql_url`` fixture."""
    return "sqlite" if sql_url.startswith("sqlite") else "postgresql"


def store_of(manager: HybridDatabaseManager) -> Store:
    """The manager's store, which these tests keep on."""
    assert manager.store is not None
    return manager.store


def rewrite(file: Path, changes: dict[str, bytes | None]) -> None:
    """Replace, add or (with None) drop members of the zip ``file``."""
    with zipfile.ZipFile(file) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    for name, data in changes.items():
        if data is None:
            del members[name]
        else:
            members[name] = data
    with zipfile.ZipFile(file, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def read_manifest(file: Path) -> ArchiveManifest:
    """The manifest inside the archive ``file``."""
    with zipfile.ZipFile(file) as zf:
        return msgspec.json.decode(zf.read(MANIFEST_FILE), type=ArchiveManifest)


def describe(data: bytes) -> ArchiveFile:
    """What a manifest records for a file holding ``data``."""
    return ArchiveFile(
        sha256=hashlib.sha256(data).hexdigest(), size=len(data), lines=data.count(b"\n")
    )


def test_round_trip_restores_the_same_history_and_state(
    manager: HybridDatabaseManager, sql_url: str, tmp_path: Path
) -> None:
    fill(manager)
    source = store_of(manager)
    file = tmp_path / "backup.zip"
    exported: list[tuple[int, int]] = []
    manifest = export_archive(manager, file, progress=lambda d, t: exported.append((d, t)))
    assert exported[-1][0] == exported[-1][1] == manifest.events + sum(manifest.rows.values())
    target = tmp_path / "restored"
    imported: list[tuple[int, int]] = []
    with database(backend(sql_url), tmp_path / "sql-restored") as url:
        result = import_archive(
            target, file, sql_urls=[url], environ={}, progress=lambda d, t: imported.append((d, t))
        )
        assert imported[-1] == exported[-1]
        assert (result.snapshot_checked, result.note) == (True, None)
        assert result.events == result.applied == manifest.events == source.head.global_seq
        assert dict(result.rows) == manifest.rows
        with HybridDatabaseManager.open(target, sql_urls=[url], environ={}) as restored:
            store = store_of(restored)
            assert store.state_hash() == source.state_hash()
            originals = [entry.record for entry in source.events()]
            copies = [entry.record for entry in store.events()]
            assert [bytes(r.args) for r in copies] == [bytes(r.args) for r in originals]
            assert [(r.id, r.name, r.position, r.parent, r.at) for r in copies] == [
                (r.id, r.name, r.position, r.parent, r.at) for r in originals
            ]
            assert copies == originals
            assert restored.verify().equal
            restored.commit(memory("after", "p1"), MemoryAccessed(memory_id="old", persona_id="p1"))
            assert restored.head() == manifest.events + 2
            assert restored.verify().equal


def test_manifest_lists_what_the_archive_holds(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    fill(manager)
    source = store_of(manager)
    file = tmp_path / "backup.zip"
    returned = export_archive(manager, file)
    manifest = read_manifest(file)
    assert manifest == returned
    assert (manifest.format, manifest.schema_version) == (1, SCHEMA.version)
    assert manifest.schema_fingerprint == SCHEMA.fingerprint
    assert (manifest.store_id, manifest.client_id) == (source.store_id, source.client_id)
    assert manifest.head == source.head
    assert manifest.events == len(list(source.events()))
    counts = {t: source.query(f'SELECT count(*) AS n FROM "{t}"')[0].n for t in SCHEMA.tables()}
    assert manifest.rows == counts
    with zipfile.ZipFile(file) as zf:
        assert sorted(zf.namelist()) == sorted([MANIFEST_FILE, *manifest.files])
        assert all(describe(zf.read(n)) == f for n, f in manifest.files.items())
        personas = [
            msgspec.json.decode(line) for line in zf.read("tables/personas.jsonl").splitlines()
        ]
        memories = [
            msgspec.json.decode(line) for line in zf.read("tables/memories.jsonl").splitlines()
        ]
    assert [p["id"] for p in personas] == ["p1", "p2"]
    assert personas[0]["personality"]["custom_traits"] == {"calm": 20, "wit": 80}
    assert (personas[1]["is_active"], personas[0]["privacy_analytics"]) == (False, False)
    old = next(m for m in memories if m["id"] == "old")
    assert old["created_at"] == "2021-03-04T05:06:07.890123+00:00"
    assert [m["id"] for m in memories] == sorted(m["id"] for m in memories)


def test_tampered_events_are_refused_before_anything_is_written(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    fill(manager)
    file = tmp_path / "backup.zip"
    export_archive(manager, file)
    with zipfile.ZipFile(file) as zf:
        events = zf.read(EVENTS_FILE)
    at = events.index(b'"p2"')
    rewrite(file, {EVENTS_FILE: events[: at + 2] + b"3" + events[at + 3 :]})
    target = tmp_path / "restored"
    with pytest.raises(
        ArchiveCorruptError, match=r"events\.jsonl does not match the manifest.*sha256"
    ):
        import_archive(target, file, environ={})
    assert not target.exists()


def test_a_damaged_zip_member_is_named(manager: HybridDatabaseManager, tmp_path: Path) -> None:
    fill(manager)
    file = tmp_path / "backup.zip"
    export_archive(manager, file)
    with zipfile.ZipFile(file) as zf:
        info = zf.getinfo(EVENTS_FILE)
    data = bytearray(file.read_bytes())
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26 :][:4])
    start = info.header_offset + 30 + name_length + extra_length
    data[start + info.compress_size // 2] ^= 0xFF
    file.write_bytes(bytes(data))
    target = tmp_path / "restored"
    with pytest.raises(ArchiveCorruptError, match=r"events\.jsonl"):
        import_archive(target, file, environ={})
    assert not target.exists()


def test_archives_that_are_not_whole_are_refused(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    manager.commit(persona("p1"), memory("m1"))
    file = tmp_path / "backup.zip"
    export_archive(manager, file)
    target = tmp_path / "restored"
    original = file.read_bytes()
    rewrite(file, {"extra.txt": b"hello"})
    with pytest.raises(ArchiveCorruptError, match=r"extra\.txt is not listed"):
        import_archive(target, file, environ={})
    file.write_bytes(original)
    rewrite(file, {"tables/memories.jsonl": None})
    with pytest.raises(
        ArchiveCorruptError, match=r"tables/memories\.jsonl is listed but not there"
    ):
        import_archive(target, file, environ={})
    file.write_bytes(original)
    newer = msgspec.structs.replace(read_manifest(file), format=2)
    rewrite(file, {MANIFEST_FILE: msgspec.json.encode(newer)})
    with pytest.raises(ArchiveError, match="archive format 2; this PJai reads format 1"):
        import_archive(target, file, environ={})
    file.write_bytes(b"not a zip file")
    with pytest.raises(ArchiveCorruptError, match="is not a PJai archive"):
        import_archive(target, file, environ={})
    with pytest.raises(ConfigError, match="cannot read the archive"):
        import_archive(target, tmp_path / "missing.zip", environ={})
    assert not target.exists()


def test_a_data_subject_export_given_as_an_archive_is_named_as_such(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    from pjai.app.subject import export_subject

    manager.commit(persona("p1"), memory("m1"))
    file = tmp_path / "ada.zip"
    export_subject(manager, "p1", file)
    target = tmp_path / "restored"
    with pytest.raises(ArchiveError, match=r"data for its data subject .*`pjai export` makes"):
        import_archive(target, file, environ={})
    assert not target.exists()


def forge_a_snapshot_row(manager: HybridDatabaseManager, file: Path) -> None:
    """Export ``fill``'s data to ``file`` with memory m07's snapshot row changed (its
    manifest entry agreeing): the events replay to another row."""
    fill(manager)
    manifest = export_archive(manager, file)
    with zipfile.ZipFile(file) as zf:
        memories = zf.read("tables/memories.jsonl")
    forged = memories.replace(b'"content":"changed"', b'"content":"forged!"')
    assert forged != memories
    files = {**manifest.files, "tables/memories.jsonl": describe(forged)}
    forged_manifest = msgspec.json.encode(msgspec.structs.replace(manifest, files=files))
    rewrite(file, {"tables/memories.jsonl": forged, MANIFEST_FILE: forged_manifest})


def test_a_snapshot_that_replay_does_not_reproduce_is_named(
    manager: HybridDatabaseManager, sql_url: str, tmp_path: Path
) -> None:
    file = tmp_path / "backup.zip"
    forge_a_snapshot_row(manager, file)
    with (
        database(backend(sql_url), tmp_path / "sql-restored") as url,
        pytest.raises(ArchiveCorruptError, match=r"memories\.jsonl line 8: row 'm07' differs") as e,
    ):
        import_archive(tmp_path / "restored", file, sql_urls=[url], environ={})
    assert "nothing was deleted" in "".join(e.value.__notes__)


def test_an_event_no_sql_journal_could_hold_is_refused(
    manager: HybridDatabaseManager, sql_url: str, tmp_path: Path
) -> None:
    # PostgreSQL cannot keep a NUL in text: the journal would refuse the event after the
    # store took it, and catching up would fail on it for ever.
    manager.commit(persona("p1"), memory("m1"))
    file = tmp_path / "backup.zip"
    manifest = export_archive(manager, file)
    with zipfile.ZipFile(file) as zf:
        events = zf.read(EVENTS_FILE)
    forged = events.replace(b'"session_id":"', b'"session_id":"\\u0000', 1)
    files = {**manifest.files, EVENTS_FILE: describe(forged)}
    forged_manifest = msgspec.json.encode(msgspec.structs.replace(manifest, files=files))
    rewrite(file, {EVENTS_FILE: forged, MANIFEST_FILE: forged_manifest})
    target = tmp_path / "restored"
    with (
        database(backend(sql_url), tmp_path / "sql-restored") as url,
        pytest.raises(
            ArchiveCorruptError, match=r"events\.jsonl line 1: .* its session_id must"
        ) as e,
    ):
        import_archive(target, file, sql_urls=[url], environ={})
    assert f"{target} is left as it was before the import" in e.value.__notes__
    assert not target.exists()


def test_a_failed_import_into_a_new_directory_leaves_nothing_there(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    # Half an import would look like a healthy directory, and block importing again.
    fill(manager)
    file = tmp_path / "backup.zip"
    manifest = export_archive(manager, file)
    good = tmp_path / "good.zip"
    good.write_bytes(file.read_bytes())
    with zipfile.ZipFile(file) as zf:
        memories = zf.read("tables/memories.jsonl")
    forged = memories.replace(b'"content":"changed"', b'"content":"forged!"')
    files = {**manifest.files, "tables/memories.jsonl": describe(forged)}
    forged_manifest = msgspec.json.encode(msgspec.structs.replace(manifest, files=files))
    rewrite(file, {"tables/memories.jsonl": forged, MANIFEST_FILE: forged_manifest})
    target = tmp_path / "new" / "restored"
    target.mkdir(parents=True)
    (target / "notes.txt").write_text("mine")  # what was there stays
    with pytest.raises(ArchiveCorruptError, match="differs"):
        import_archive(target, file, environ={})  # the embedded primary, inside it
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    restored = import_archive(target, good, environ={})  # and a second try can go in
    assert restored.applied == manifest.events


def test_a_failed_import_keeps_what_other_programs_wrote_there_meanwhile(
    manager: HybridDatabaseManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A folder that held files before is someone's: what an editor saves there while
    # the import runs is not the import's to remove when it fails.
    file = tmp_path / "backup.zip"
    forge_a_snapshot_row(manager, file)
    target = tmp_path / "project"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    compare = restore.compare

    def meanwhile(*args: Any, **kwargs: Any) -> int:
        (target / "drafts").mkdir()
        (target / "drafts" / "chapter.txt").write_text("saved during the import")
        (target / "todo.txt").write_text("saved during the import")
        return compare(*args, **kwargs)

    monkeypatch.setattr(restore, "compare", meanwhile)
    with pytest.raises(ArchiveCorruptError, match="differs"):
        import_archive(target, file, environ={})
    assert sorted(p.name for p in target.iterdir()) == ["drafts", "notes.txt", "todo.txt"]
    assert (target / "drafts" / "chapter.txt").read_text() == "saved during the import"


def test_a_memory_past_the_push_limit_and_batches_cut_by_bytes_round_trip(
    manager: HybridDatabaseManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A million characters of three bytes each are more arguments than a push carries:
    # PJai made such events before it refused them, so their archives import.
    monkeypatch.setattr("pjai.schema.event.MAX_ARGS_BYTES", 4 * 1024 * 1024)
    manager.commit(persona("p1"), memory("m1", content="語" * 1_000_000), memory("m2"))
    file = tmp_path / "backup.zip"
    manifest = export_archive(manager, file)
    monkeypatch.setattr(replay, "BATCH_BYTES", 1)  # every event a batch of its own
    restored = import_archive(tmp_path / "restored", file, environ={})
    assert restored.applied == manifest.events == 3


def test_an_import_killed_on_the_way_leaves_a_directory_that_says_so(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    # A process killed (or out of memory, or the power gone) runs no clean-up: the
    # directory holds part of the archive, and must not pass for a whole one.
    fill(manager)
    file = tmp_path / "backup.zip"
    export_archive(manager, file)
    target = tmp_path / "restored"
    killed = subprocess.run(
        [sys.executable, "-c", (
            "import os, sys\n"
            "from pjai.hybrid.archive import import_archive\n"
            "import_archive(sys.argv[1], sys.argv[2], environ={},\n"
            "               progress=lambda done, total: done and os._exit(9))\n"
        ), str(target), str(file)],
        check=False,
    )  # fmt: skip
    assert killed.returncode == 9
    assert (target / "store.db").exists()
    with pytest.raises(
        ConfigError,
        match=f"of {file} .* stopped before it finished: remove store.db and primary.db "
        "there, and the files beside them",
    ):
        DataDir(target).open()
    (target / "importing.json").unlink()  # the user's choice: take it as it is
    DataDir(target).open().close()


@pytest.mark.parametrize("left", ["store.db-wal", "primary.db-wal", "store.db-journal"])
def test_an_import_refuses_a_journal_left_in_the_directory(
    manager: HybridDatabaseManager, tmp_path: Path, left: str
) -> None:
    # SQLite would replay a journal left by another database into the new file.
    manager.commit(persona("p1"))
    file = tmp_path / "backup.zip"
    export_archive(manager, file)
    target = tmp_path / "restored"
    target.mkdir()
    (target / left).write_bytes(b"left by a killed process")
    with pytest.raises(ConfigError, match=rf"already holds PJai data \({re.escape(left)}\)"):
        import_archive(target, file, environ={})
    assert [p.name for p in target.iterdir()] == [left]


def test_a_manifest_whose_head_is_not_where_the_events_end_is_refused(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    manager.commit(persona("p1"), memory("m1"))
    file = tmp_path / "backup.zip"
    manifest = export_archive(manager, file)
    forged = msgspec.structs.replace(manifest, head=Position(99))
    rewrite(file, {MANIFEST_FILE: msgspec.json.encode(forged)})
    target = tmp_path / "restored"
    ends = "says the log ends at e99, but its events end at e2"
    with pytest.raises(ArchiveCorruptError, match=ends):
        import_archive(target, file, environ={})
    assert not target.exists()


def test_a_snapshot_of_another_schema_is_not_compared(
    manager: HybridDatabaseManager, sql_url: str, tmp_path: Path
) -> None:
    fill(manager)
    file = tmp_path / "backup.zip"
    manifest = export_archive(manager, file)
    older = msgspec.structs.replace(manifest, schema_fingerprint="0" * 16, schema_version=0)
    rewrite(file, {MANIFEST_FILE: msgspec.json.encode(older)})
    with database(backend(sql_url), tmp_path / "sql-restored") as url:
        result = import_archive(tmp_path / "restored", file, sql_urls=[url], environ={})
        assert not result.snapshot_checked
        assert result.note is not None
        assert "not compared with the snapshot" in result.note
        with HybridDatabaseManager.open(tmp_path / "restored", sql_urls=[url], environ={}) as m:
            assert store_of(m).state_hash() == store_of(manager).state_hash()


def test_import_wants_an_empty_data_directory_and_sql_database(
    manager: HybridDatabaseManager, sql_url: str, tmp_path: Path
) -> None:
    manager.commit(persona("p1"))
    file = tmp_path / "backup.zip"
    export_archive(manager, file)
    with pytest.raises(ConfigError, match=r"already holds PJai data \(store\.db"):
        import_archive(manager.data_dir, file, sql_urls=[sql_url], environ={})
    with pytest.raises(ConfigError, match="already holds events"):
        import_archive(tmp_path / "fresh", file, sql_urls=[sql_url], environ={})
    off = {"PJAI_USE_LIVESTORE": "false"}
    with pytest.raises(ConfigError, match="switched off"):
        import_archive(tmp_path / "other", file, sql_urls=[sql_url], environ=off)
    assert not (tmp_path / "other").exists()
    assert store_of(manager).head.global_seq == 1


def test_export_refuses_to_overwrite_and_leaves_no_temporary_files(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    manager.commit(persona("p1"))
    folder = tmp_path / "archives"
    file = folder / "backup.zip"
    export_archive(manager, file)
    before = file.read_bytes()
    manager.commit(memory("m1"))
    with pytest.raises(ConfigError, match="exists; pass --overwrite"):
        export_archive(manager, file)
    assert file.read_bytes() == before
    assert export_archive(manager, file, overwrite=True).events == 2
    assert [p.name for p in folder.iterdir()] == ["backup.zip"]


def test_export_writes_no_file_over_a_link_a_device_or_a_folder(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    manager.commit(persona("p1"))
    kept = tmp_path / "kept.txt"
    kept.write_text("mine")
    link = tmp_path / "link.zip"
    link.symlink_to(kept)
    pipe = tmp_path / "pipe.zip"
    os.mkfifo(pipe)
    for target in (link, pipe, tmp_path):
        with pytest.raises(ConfigError, match="is not a regular file"):
            export_archive(manager, target, overwrite=True)
    assert link.is_symlink()
    assert kept.read_text() == "mine"
    assert stat.S_ISFIFO(pipe.stat().st_mode)


def test_export_needs_the_store(manager: HybridDatabaseManager, tmp_path: Path) -> None:
    manager.commit(persona("p1"))
    manager.set_flag("use_livestore", False)
    with pytest.raises(ConfigError, match="switch it on"):
        export_archive(manager, tmp_path / "backup.zip")
    assert not (tmp_path / "backup.zip").exists()


def test_cli_exports_and_imports(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command("export")(archive_cli.export)
    app.command("import")(archive_cli.import_archive)
    runner = CliRunner(env={"PJAI_SQL_SHARDS": None, "PJAI_USE_LIVESTORE": None})
    source, target, file = tmp_path / "source", tmp_path / "target", tmp_path / "backup.zip"
    with HybridDatabaseManager.open(source, environ={}) as manager:
        fill(manager)
        expected = store_of(manager).state_hash()
    result = runner.invoke(app, ["export", str(file), "--data-dir", str(source)])
    assert result.exit_code == 0, result.output
    assert "Exported 39 events, 7 tables, 28 rows" in result.stdout
    again = runner.invoke(app, ["export", str(file), "--data-dir", str(source)])
    assert again.exit_code == 1
    assert "pass --overwrite" in again.stderr
    replaced = runner.invoke(app, ["export", str(file), "--data-dir", str(source), "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    imported = runner.invoke(app, ["import", str(file), "--data-dir", str(target)])
    assert imported.exit_code == 0, imported.output
    assert "Imported 39 events, 7 tables, 28 rows" in imported.stdout
    with HybridDatabaseManager.open(target, environ={}) as restored:
        assert store_of(restored).state_hash() == expected
        assert restored.verify().equal
    refused = runner.invoke(app, ["import", str(file), "--data-dir", str(target)])
    assert refused.exit_code == 1
    assert "already holds PJai data" in refused.stderr
    assert "not applied" not in imported.stdout


def test_cli_says_how_many_imported_events_were_not_applied(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command("import")(archive_cli.import_archive)
    source, file = tmp_path / "source", tmp_path / "backup.zip"
    with HybridDatabaseManager.open(source, environ={}) as manager:
        manager.commit(persona("p1"))
        store = manager.store
        assert store is not None
        take_from_a_newer_pjai(store)
        export_archive(manager, file)
    runner = CliRunner(env={"PJAI_SQL_SHARDS": None, "PJAI_USE_LIVESTORE": None})
    with pytest.warns(UnknownEventWarning):
        imported = runner.invoke(app, [str(file), "--data-dir", str(tmp_path / "target")])
    assert imported.exit_code == 0, imported.output
    assert "Imported 2 events" in imported.stdout
    assert "1 of them were not applied (the log keeps them with the reason)" in imported.stdout


def test_export_is_refused_while_a_persona_does_not_allow_it(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    manager.commit(persona("p1", "Ada"), persona("p2", "Grace"))
    manager.commit(PersonaUpdated(persona_id="p2", privacy=PrivacySettings(export_allowed=False)))
    folder = tmp_path / "archives"
    folder.mkdir()
    with pytest.raises(PrivacyError, match=r"Grace \(p2\) does not allow exports"):
        export_archive(manager, folder / "2026" / "12" / "backup.zip")
    assert list(folder.iterdir()) == []  # nothing written: no temporary file, no folder
    manager.commit(PersonaUpdated(persona_id="p2", privacy=PrivacySettings()))
    assert export_archive(manager, folder / "backup.zip").events == 4


def test_an_export_removes_what_exports_killed_on_the_way_left(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    manager.commit(persona("p1"))
    folder = tmp_path / "archives"
    folder.mkdir()
    file = folder / "backup.zip"
    abandoned = folder / ".backup.zip.k1ll3d.tmp"
    running = folder / ".backup.zip.st1ll.tmp"  # another export, writing now
    other = folder / ".other.zip.k1ll3d.tmp"
    for left in (abandoned, running, other):
        left.write_bytes(b"part of an archive")
    hours_ago = time.time() - 2 * 3600
    for old in (abandoned, other):
        os.utime(old, (hours_ago, hours_ago))
    export_archive(manager, file)
    assert sorted(p.name for p in folder.iterdir()) == sorted([file.name, running.name, other.name])


def test_an_export_holds_one_state_while_another_process_commits(
    manager: HybridDatabaseManager, sql_url: str, tmp_path: Path
) -> None:
    fill(manager)
    manager.commit(*[memory(f"n{n}", "p1") for n in range(2_500)])  # progress is told per 1,000
    before = store_of(manager).head
    other = HybridDatabaseManager.open(manager.data_dir, sql_urls=[sql_url], environ={})
    commits = iter(range(3))

    def meanwhile(done: int, total: int) -> None:
        if next(commits, None) is not None:  # another process commits as the export reads
            other.commit(memory(f"late{done}", "p1"))

    file = tmp_path / "backup.zip"
    try:
        manifest = export_archive(manager, file, progress=meanwhile)
    finally:
        other.close()
    assert manifest.head == before
    restored = import_archive(tmp_path / "restored", file, environ={})
    assert restored.applied == manifest.events == before.global_seq


def forge(file: Path, manifest: ArchiveManifest, events: bytes) -> None:
    """Put ``events`` in the archive ``file`` with a manifest that agrees with them."""
    files = {**manifest.files, EVENTS_FILE: describe(events)}
    lines = events.count(b"\n")
    forged = msgspec.structs.replace(manifest, files=files, events=lines)
    rewrite(file, {EVENTS_FILE: events, MANIFEST_FILE: msgspec.json.encode(forged)})


def test_hostile_archives_are_refused_with_their_reason(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    manager.commit(persona("p1"), memory("m1"), memory("m2"))
    file = tmp_path / "backup.zip"
    manifest = export_archive(manager, file)
    original = file.read_bytes()
    with zipfile.ZipFile(file) as zf:
        events = zf.read(EVENTS_FILE)
    lines = events.splitlines(keepends=True)
    first_id = msgspec.json.decode(lines[0])["id"]
    third = msgspec.json.decode(lines[2])
    repeated = lines[2].replace(third["id"].encode(), first_id.encode())
    deep = lines[2].replace(b'"args":{', b'"args":{"x":' + b"[" * 5000 + b"]" * 5000 + b",")
    cases = {
        "repeats an event id": (b"".join([*lines[:2], repeated]), "appears twice"),
        "nests deeper than a parser goes": (b"".join([*lines[:2], deep]), "line 3"),
        "ends without a newline": (events.rstrip(b"\n"), "line 3 has no newline"),
        "holds a line too long": (b"x" * (17 * 1024 * 1024) + b"\n", "line 1 is longer"),
    }
    for what, (forged, reason) in cases.items():
        file.write_bytes(original)
        forge(file, manifest, forged)
        target = tmp_path / "restored"
        with pytest.raises(ArchiveCorruptError, match=reason):
            import_archive(target, file, environ={})
        assert not target.exists(), what

    file.write_bytes(original)
    with zipfile.ZipFile(file) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    with zipfile.ZipFile(file, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            method = zipfile.ZIP_BZIP2 if name == EVENTS_FILE else zipfile.ZIP_DEFLATED
            zf.writestr(name, data, compress_type=method)
    with pytest.raises(ArchiveCorruptError, match=r"events\.jsonl is encrypted or compressed"):
        import_archive(tmp_path / "restored", file, environ={})

    # Zip readers differ on which of two members of one name they read: one that
    # takes the first would show other events than those imported.
    with zipfile.ZipFile(file, "w") as zf:
        zf.writestr(EVENTS_FILE, b"what another reader shows\n")
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr(EVENTS_FILE, members[EVENTS_FILE])
        for name, data in members.items():
            if name != EVENTS_FILE:
                zf.writestr(name, data)
    with pytest.raises(ArchiveCorruptError, match=r"events\.jsonl appear\(s\) more than once"):
        import_archive(tmp_path / "restored", file, environ={})
    assert not (tmp_path / "restored").exists()


def test_an_archive_listing_more_files_than_one_of_pjai_is_refused_before_it_is_listed(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    # Opening a zip makes an object per member it lists (some 600 bytes each, a
    # million empty members being 88 MB of zip): an upload to the web app's import
    # form must not take the server's memory before anything looks at it.
    manager.commit(persona("p1"), memory("m1"))
    file = tmp_path / "backup.zip"
    export_archive(manager, file)
    with zipfile.ZipFile(file, "a", zipfile.ZIP_STORED) as zf:
        for number in range(40_000):
            zf.writestr(f"x{number}", b"")
    target = tmp_path / "restored"
    with pytest.raises(
        ArchiveCorruptError,
        match=r"backup\.zip is not a PJai archive: its list of files takes \d+ bytes",
    ):
        import_archive(target, file, environ={})
    assert not target.exists()


def test_a_synced_import_names_an_event_id_the_archive_repeats(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    manager.commit(persona("p1"), memory("m1"), memory("m2"))
    file = tmp_path / "backup.zip"
    manifest = export_archive(manager, file)
    with zipfile.ZipFile(file) as zf:
        lines = zf.read(EVENTS_FILE).splitlines(keepends=True)
    forge(file, manifest, b"".join([*lines, lines[1]]))
    target = tmp_path / "restored"
    with pytest.raises(ArchiveCorruptError, match=r"events\.jsonl is not one history: event "):
        import_archive(target, file, environ={}, sync=True)
    assert not target.exists()


def test_an_archive_that_is_no_regular_file_is_refused(tmp_path: Path) -> None:
    # A zip is read from its end: /dev/zero would be read until memory runs out (here
    # bounded, in a process of its own), a folder or a pipe is no archive either.
    target = tmp_path / "restored"
    refused = subprocess.run(
        [sys.executable, "-c", (
            "import resource, sys\n"
            "from pjai.errors import ConfigError\n"
            "from pjai.hybrid.archive import import_archive\n"
            "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
            "try:\n"
            "    import_archive(sys.argv[1], '/dev/zero', environ={})\n"
            "except ConfigError as exc:\n"
            "    print(exc)\n"
        ), str(target)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert refused.stdout.startswith("/dev/zero is not a regular file"), refused.stderr
    os.mkfifo(tmp_path / "pipe")
    for path in (tmp_path, tmp_path / "pipe"):
        with pytest.raises(ConfigError, match="is not a regular file"):
            import_archive(target, path, environ={})
    assert not target.exists()


def test_text_that_names_the_envelope_key_is_no_sealed_event(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    manager.commit(persona("p1"), memory("m1", content="$sealed"))
    file = tmp_path / "backup.zip"
    manifest = export_archive(manager, file)
    assert import_archive(tmp_path / "restored", file, environ={}).applied == manifest.events


def test_a_failed_synced_import_puts_the_flags_back(
    manager: HybridDatabaseManager, tmp_path: Path
) -> None:
    manager.commit(persona("p1"), memory("m1"))
    file = tmp_path / "backup.zip"
    manifest = export_archive(manager, file)
    with zipfile.ZipFile(file) as zf:
        events = zf.read(EVENTS_FILE)
    forge(file, manifest, events + b"not an event\n")
    target = tmp_path / "restored"
    target.mkdir()
    flags = target / "flags.json"
    flags.write_text('{"use_livestore": true}')
    with pytest.raises(ArchiveCorruptError, match="line 3 is not an event record"):
        import_archive(target, file, environ={}, sync=True)
    assert flags.read_text() == '{"use_livestore": true}'


def test_an_import_stopped_after_sql_took_events_keeps_the_store(
    manager: HybridDatabaseManager, sql_url: str, tmp_path: Path
) -> None:
    # An SQL primary outside the directory keeps what reached it, whatever stopped the
    # import: the store that mirrors it stays too.
    fill(manager)
    file = tmp_path / "backup.zip"
    export_archive(manager, file)

    def interrupt(done: int, total: int) -> None:
        if done > 10:
            raise KeyboardInterrupt

    target = tmp_path / "restored"
    with database(backend(sql_url), tmp_path / "sql-restored") as url:
        with pytest.raises(KeyboardInterrupt) as e:
            import_archive(target, file, sql_urls=[url], environ={}, progress=interrupt)
        assert (target / "store.db").exists()
        assert "keeps what was imported" in " ".join(e.value.__notes__)
