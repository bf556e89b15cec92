"""Erasure by crypto-shredding: after `erase_persona`, the persona's text is in no file of
the data directory, its sealed events open nowhere, and the store still verifies and
rebuilds."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import apsw
import msgspec
import pytest
from typer.testing import CliRunner

from pjai.app import Bookmarks, Conversations, DataDir, Memories, Personas, forgetting, privacy
from pjai.app.erasedkeys import unfinished_erasures
from pjai.app.erasing import copies_left, owe_rewrite, rewrites_owed
from pjai.app.eventlog import event_log, persona_of
from pjai.app.flags import set_flag
from pjai.app.forgetting import ForgetGone
from pjai.app.privacy import erase_persona, rewrites_due
from pjai.app.rights import privacy_report, record_consent
from pjai.app.security import init_security
from pjai.app.transfer import import_legacy
from pjai.app.upkeep import repair
from pjai.cli import app as cli
from pjai.errors import (
    ConfigError,
    KeyErasedError,
    MaterializationError,
    NotFoundError,
    SqlUnavailableError,
)
from pjai.hybrid import HybridDatabaseManager
from pjai.memory.embeddings import Embeddings, Forgotten
from pjai.schema import SCHEMA, Event, PersonaCreated, PersonaErased
from pjai.security import ErasedKey, FieldCodec, KeyRing
from pjai.sql import journal as sql_journal
from pjai.sql.shards import ShardSet
from pjai.store import ROOT, EventRecord, Position
from pjai.store import log as store_log
from tests.databases import postgres_schema
from tests.hybrid.desktop_app import DesktopApp
from tests.memory.test_embeddings import TopicEncoder
from tests.security.test_keys import FAST, PASSPHRASE

MARKER = "zebra-marmalade-41"

SEALED = {t.NAME for t in SCHEMA.event_types if t.SENSITIVE}
"""The events with fields a key ring seals."""


def files_holding(directory: Path, text: str) -> list[str]:
    """The files under ``directory`` whose bytes hold ``text``."""
    return sorted(
        str(p.relative_to(directory))
        for p in directory.rglob("*")
        if p.is_file() and text.encode() in p.read_bytes()
    )


def fill(manager: HybridDatabaseManager, name: str, marker: str, *, tag: str = "") -> str:
    """A persona named ``name`` with ``marker`` in each sensitive field of each kind of
    row; ``tag`` tags its memory and bookmark."""
    tags = [tag] if tag else []
    personas = Personas(manager)
    made = personas.create(name, description=f"{marker} description")
    Memories(manager).add(made.id, f"{marker} memory", summary=marker, tags=tags)
    talk = Conversations(manager).start(made.id, title=f"{marker} talk")
    Conversations(manager).say(talk, "user", f"{marker} said")
    Bookmarks(manager).create(made.id, f"{marker} bookmark", labels=tags)
    record_consent(manager, made.id, "memory", granted=True, version="1")
    return made.id


def ada_beside_grace(manager: HybridDatabaseManager, marker: str = MARKER) -> str:
    """Ada, with ``marker`` in every sensitive field (:func:`fill`), beside Grace, whose
    rows an erasure of Ada keeps; Ada's id."""
    ada = fill(manager, "Ada", marker)
    fill(manager, "Grace", "kept-words")
    return ada


def encrypted(path: Path, **environ: str) -> DataDir:
    """A new data directory at ``path`` whose fields a key ring seals, opened by
    PASSPHRASE from its environment (``environ`` added to it)."""
    data = DataDir(path, environ={"PJAI_PASSPHRASE": PASSPHRASE, **environ})
    init_security(data, passphrase=PASSPHRASE, params=FAST)
    return data


@contextmanager
def finishing_on_opening(data: DataDir, marker: str = MARKER) -> Iterator[HybridDatabaseManager]:
    """``data`` opened anew, as the next process would, which finishes the erasures it
    owes: none is left unfinished, and once it is closed no file of it holds ``marker``."""
    with DataDir(data.path, environ=data.environ).open() as manager:
        assert privacy_report(manager).unfinished_erasures == []
        yield manager
    assert files_holding(data.path, marker) == []


def finished_on_opening(data: DataDir, marker: str = MARKER) -> None:
    """Opening ``data`` anew leaves no erasure unfinished and ``marker`` in no file of it."""
    with finishing_on_opening(data, marker):
        pass


def test_an_erased_persona_is_in_no_file_and_the_others_stay(tmp_path: Path) -> None:
    data = encrypted(tmp_path / "data")
    with data.open() as manager:
        ada = fill(manager, f"Ada-{MARKER}", MARKER, tag=MARKER)  # its name and tags go too
        grace = fill(manager, "Grace", "kept-words")
        Personas(manager).delete(ada)  # erasure takes deleted personas too
        assert files_holding(data.path, MARKER)  # plaintext in the state, before
        proof = erase_persona(data, manager, ada)
        assert proof.rows == {
            "memory_links": 0,
            "conversation_messages": 1,
            "memories": 1,
            "conversations": 1,
            "bookmarks": 1,
            "consents": 1,
            "personas": 1,
        }
        assert len(proof.keys_destroyed) == 1
        assert (proof.sealed_events, proof.plaintext_events) == (5, 0)
        assert proof.event_id is not None
        assert MARKER not in repr(proof)  # the proof holds no personal data
        assert Personas(manager).find(ada) is None
        assert Personas(manager).get(grace).description == "kept-words description"
        assert manager.verify().equal
        assert manager.store is not None
        manager.store.rebuild()
        assert manager.verify().equal
    assert files_holding(data.path, MARKER) == []
    assert files_holding(data.path, "kept-words") != []
    with data.open() as manager:
        assert [p.name for p in Personas(manager).list()] == ["Grace"]


def test_an_erasure_with_the_store_off_rewrites_the_store_file_too(tmp_path: Path) -> None:
    # With the store off, its file still holds the persona's rows in plaintext state: it
    # takes the erasure in from SQL's journal and is rewritten, before the proof says so.
    data = encrypted(tmp_path / "data")
    with data.open() as manager:
        ada = ada_beside_grace(manager)
    set_flag(data, "use_livestore", False)
    with data.open() as manager:
        assert manager.store is None
        proof = erase_persona(data, manager, ada)
    assert data.store_path.name in proof.rewritten
    assert proof.unfinished == []
    assert files_holding(data.path, MARKER) == []
    set_flag(data, "use_livestore", True)
    with data.open() as manager:
        assert [p.name for p in Personas(manager).list()] == ["Grace"]
        assert manager.verify().equal


def test_an_erasure_takes_the_persona_out_of_the_legacy_import_report(tmp_path: Path) -> None:
    source = tmp_path / "desktop.db"
    with DesktopApp(source, tags="json") as db:
        ada = db.create_persona("Ada", traits={"humor": f"{MARKER} humor", "calm": 40})
        db.add_memory(ada, "fine", tags=["ok", f"{MARKER}-" + "x" * 70])
        db.save_conversation(ada, "talk", [{"role": "user", "content": "hi", "mood": MARKER}])
        db.create_persona("Grace", traits={"wit": "kept-words"})
    data = encrypted(tmp_path / "data")
    import_legacy(data, source)
    report = data.legacy_report_path

    def values() -> list[dict[str, object]]:
        lines = [json.loads(line) for line in report.read_text().splitlines()]
        assert lines[0]["values_not_imported"] == len(lines) - 1  # the header still counts
        return lines[1:]

    listed = values()
    assert len([v for v in listed if MARKER in json.dumps(v)]) == 3  # what this test sees
    with data.open() as manager:
        proof = erase_persona(data, manager, ada)
    assert report.name in proof.rewritten
    assert proof.unfinished == []
    assert [v for v in values() if v["id"] == ada] == []
    assert [v["value"] for v in values()] == ["kept-words"]
    assert files_holding(data.path, MARKER) == []


def test_a_persona_erased_elsewhere_leaves_no_vectors_nor_report_values_here(
    tmp_path: Path,
) -> None:
    # Its erasure event came by sync: the rows went with it; the vectors and the report
    # values beside the store go once the directory is tended (as a sync run does).
    source = tmp_path / "desktop.db"
    with DesktopApp(source, tags="json") as db:
        ada = db.create_persona("Ada", traits={"humor": f"{MARKER} humor", "calm": 40})
        db.add_memory(ada, "fine", tags=["ok", f"{MARKER}-" + "x" * 70])
        db.create_persona("Grace", traits={"wit": "kept-words"})
    data = DataDir(tmp_path / "data")
    import_legacy(data, source)
    with data.open() as manager:
        vectors = Embeddings(data.vectors_path, TopicEncoder(), "topics")
        vectors.index(manager)
        tending = ForgetGone(data, manager)
        tending()  # nothing gone yet
        held = vectors_of(data.vectors_path)
        assert ada in held
        manager.commit(PersonaErased(persona_id=ada))  # as if it came from the server
        tending()
    assert ada not in vectors_of(data.vectors_path)
    assert held - {ada} == vectors_of(data.vectors_path)
    lines = [json.loads(line) for line in data.legacy_report_path.read_text().splitlines()]
    assert [line["value"] for line in lines[1:]] == ["kept-words"]


def test_a_reader_of_the_vectors_leaves_their_file_unfinished(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    with data.open() as manager:
        ada = fill(manager, "Ada", MARKER)
        Embeddings(data.vectors_path, TopicEncoder(), "topics").index(manager)
        reader = apsw.Connection(str(data.vectors_path))
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM vectors").fetchall()  # holds a snapshot
        try:
            proof = erase_persona(data, manager, ada)
        finally:
            reader.execute("COMMIT")
            reader.close()
    assert proof.vectors == 1
    assert "vectors.db" not in proof.rewritten
    assert proof.unfinished == ["vectors.db: another connection still reads an older state of it"]


def vectors_of(path: Path) -> set[str]:
    """The personas whose memories have vectors in the file at ``path``."""
    conn = apsw.Connection(str(path))
    try:
        return {row[0] for row in conn.execute("SELECT DISTINCT persona_id FROM vectors")}
    finally:
        conn.close()


def test_in_a_plain_directory_the_proof_says_what_the_log_keeps(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    with data.open() as manager:
        ada = fill(manager, "Ada", MARKER)
        proof = erase_persona(data, manager, ada)
        assert (proof.sealed_events, proof.plaintext_events) == (0, 5)
        assert proof.keys_destroyed == []
        assert Personas(manager).find(ada) is None
    # The state and SQL rows are gone; the log still holds the plain events, as said.
    assert files_holding(data.path, MARKER) == ["primary.db", "store.db"]


def damage(path: Path, table: str) -> None:
    """Write over the first leaf page of ``table`` in the SQLite file at ``path``."""
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        query = "SELECT min(pageno) FROM dbstat WHERE name = ? AND pagetype = 'leaf'"
        page = int(conn.execute(query, (table,)).get)
        size = int(conn.execute("PRAGMA page_size").get)
    finally:
        conn.close()
    with path.open("r+b") as file:
        file.seek((page - 1) * size)
        file.write(bytes(range(256)) * (size // 256))


def test_an_erasure_names_the_damaged_copies_a_repair_set_aside(tmp_path: Path) -> None:
    # A repair keeps the damaged file, with the persona's rows in plaintext, beside the
    # new one; the erasure cannot rewrite it and says so until it is deleted.
    data = encrypted(tmp_path / "data")
    with data.open() as manager:
        ada = fill(manager, "Ada", MARKER)
    damage(data.store_path, "ix_memories_persona_id_created_at")
    assert repair(data, "store").rebuilt is not None
    damage(data.primary_path, "ix_memories_persona_id_created_at")
    assert repair(data, "sql").set_aside
    copies = sorted(data.path.glob("*.damaged-*[0-9]"))
    assert data.damaged_copies() == copies
    assert [c.name.split(".damaged-")[0] for c in copies] == ["primary.db", "store.db"]
    with data.open() as manager:
        proof = erase_persona(data, manager, ada)
        for copy in copies:
            assert any(r.startswith(f"{copy}: a damaged copy") for r in proof.unfinished)
        assert sorted(files_holding(data.path, MARKER)) == sorted(
            str(c.relative_to(data.path)) for c in copies
        )
        for copy in data.path.glob("*.damaged-*"):
            copy.unlink()
        again = erase_persona(data, manager, ada)
    assert again.unfinished == []
    assert files_holding(data.path, MARKER) == []


def test_an_erasure_finishes_once_and_unknown_personas_are_refused(tmp_path: Path) -> None:
    data = encrypted(tmp_path / "data")
    with data.open() as manager:
        ada = fill(manager, "Ada", MARKER)
        erase_persona(data, manager, ada)
        again = erase_persona(data, manager, ada)
        assert (again.event_id, again.keys_destroyed, again.rows) == (None, [], {})
        with pytest.raises(NotFoundError, match="no persona 'nobody' to erase"):
            erase_persona(data, manager, "nobody")


def stop_before_the_keys(monkeypatch: pytest.MonkeyPatch, data: DataDir, persona_id: str) -> None:
    """Erase ``persona_id`` in a process stopped after the erasure event, before the
    persona's keys are destroyed."""

    def stopped(self: KeyRing, scope: str, lineages: object = None) -> list[ErasedKey]:
        raise KeyboardInterrupt

    with data.open() as manager, monkeypatch.context() as patched:
        patched.setattr(KeyRing, "erase", stopped)
        with pytest.raises(KeyboardInterrupt):
            erase_persona(data, manager, persona_id)
        # The process that stopped is told, and how to finish.
        assert privacy_report(manager).unfinished_erasures == [persona_id]


def test_an_erasure_stopped_before_its_keys_went_is_finished_by_the_next_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The persona's name is gone with the erasure event, its key is not: the next open
    # of the directory destroys the key and rewrites the files, as the erasure would.
    runner = CliRunner()
    where = ["--data-dir", str(tmp_path / "data")]
    data = encrypted(tmp_path / "data")
    monkeypatch.setenv("PJAI_PASSPHRASE", PASSPHRASE)
    with data.open() as manager:
        ada = ada_beside_grace(manager)
    stop_before_the_keys(monkeypatch, data, ada)
    told = runner.invoke(cli, ["privacy", "report", *where])
    assert told.exit_code == 0, told.output
    assert "not finished" not in told.output
    with finishing_on_opening(data) as manager:
        codec = manager.schema.codec
        assert isinstance(codec, FieldCodec)
        assert ada not in codec.keys.scopes()
        assert [k.scope for k in codec.keys.erased()] == [ada]
        records = [r for r in event_log(manager) if r.name != PersonaErased.NAME]
        for record in records:
            if persona_of(record) == ada and record.name in SEALED:
                with pytest.raises(KeyErasedError):
                    codec.unseal(record.id, record.name, bytes(record.args))
        assert [p.name for p in Personas(manager).list()] == ["Grace"]
    done = runner.invoke(cli, ["privacy", "erase", ada, "--yes", *where])
    assert done.exit_code == 0, done.output  # finished already: nothing more to do


QUOTED = 'zebra"marmalade-43'
"""A marker that the rows hold as it is and the events' arguments only escaped
(``zebra\\"marmalade``): in a directory without a key ring the log keeps the persona's
events in plaintext, and this form is in a file only while its rows' text is."""


def committed_then_stopped(self: HybridDatabaseManager, *events: Event) -> list[EventRecord]:
    """:meth:`HybridDatabaseManager.commit`, in a process stopped as soon as it returns."""
    real_commit(self, *events)
    raise KeyboardInterrupt


real_commit = HybridDatabaseManager.commit


@pytest.mark.parametrize("kind", ["plain", "encrypted"])
def test_an_erasure_stopped_right_after_its_event_is_finished_by_the_next_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    # The rows are deleted, their text is in freed pages; without a key ring no key
    # still held tells the next opening that the erasure did not finish.
    data = encrypted(tmp_path / "data") if kind == "encrypted" else DataDir(tmp_path / "data")
    with data.open() as manager:
        ada = ada_beside_grace(manager, QUOTED)
    with data.open() as manager:
        with monkeypatch.context() as patched:
            patched.setattr(HybridDatabaseManager, "commit", committed_then_stopped)
            with pytest.raises(KeyboardInterrupt):
                erase_persona(data, manager, ada)
        assert Personas(manager).find(ada) is None
        assert privacy_report(manager).unfinished_erasures == [ada]
    assert {"store.db", "primary.db"} & set(files_holding(data.path, QUOTED))
    with finishing_on_opening(data, QUOTED) as manager:
        assert [p.name for p in Personas(manager).list()] == ["Grace"]
    assert rewrites_owed(data.path) == []


def test_an_erasure_whose_event_fails_leaves_a_mark_only_where_rows_went(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = DataDir(tmp_path / "data")
    with data.open() as manager:
        ada = fill(manager, "Ada", QUOTED)
        bea = fill(manager, "Bea", "kept-words")

        def refused(self: HybridDatabaseManager, *events: Event) -> list[EventRecord]:
            raise SqlUnavailableError("SQL does not answer")

        with monkeypatch.context() as patched:
            patched.setattr(HybridDatabaseManager, "commit", refused)
            with pytest.raises(SqlUnavailableError):
                erase_persona(data, manager, ada)
            assert rewrites_owed(data.path) == []  # nothing was deleted: nothing is owed
            owe_rewrite(data.path, bea)  # owed before, as a key exchange leaves it
            with pytest.raises(SqlUnavailableError):
                erase_persona(data, manager, bea)
            assert rewrites_owed(data.path) == [bea]
        real_rows = privacy._rows

        def erased_meanwhile(manager: HybridDatabaseManager, persona_id: str) -> dict[str, int]:
            counted = real_rows(manager, persona_id)
            real_commit(manager, PersonaErased(persona_id=persona_id))  # by another process
            return counted

        with monkeypatch.context() as patched:
            patched.setattr(privacy, "_rows", erased_meanwhile)
            with pytest.raises(MaterializationError, match="does not exist"):
                erase_persona(data, manager, ada)
        assert set(rewrites_owed(data.path)) == {ada, bea}  # Ada's rows went
    with finishing_on_opening(data, QUOTED) as manager:
        assert [p.name for p in Personas(manager).list()] == ["Bea"]
    assert rewrites_owed(data.path) == [bea]  # no rewrite for a persona with its rows


@pytest.mark.parametrize("keys", [True, False], ids=["key ring", "no key ring"])
def test_an_erasure_taking_back_its_mark_leaves_another_process_s_erasure_owed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keys: bool
) -> None:
    # Two processes erase Ada at once. The first marks her; the second finds the mark
    # there. The first's event fails, and it finds her row still there (the second has
    # not committed yet), so it takes its mark back, just as the second commits its
    # erasure and stops (its keys destroyed) before its rewrite: nothing but a mark
    # tells now that freed pages keep her rows.
    data = encrypted(tmp_path / "data") if keys else DataDir(tmp_path / "data")
    with data.open() as manager:
        ada = ada_beside_grace(manager, QUOTED)  # quoted: plain events hold it escaped
    with (
        DataDir(data.path, environ=data.environ).open() as first,
        DataDir(data.path, environ=data.environ).open() as second,
    ):
        failed = False

        def refused(*events: Event) -> list[EventRecord]:
            nonlocal failed
            failed = True
            raise SqlUnavailableError("SQL does not answer")

        real_query = first.query

        def second_commits_meanwhile(query: Any) -> Any:
            nonlocal failed
            found = real_query(query)
            if failed:  # the first, taking its mark back, has just read the row
                failed = False
                erase_stopped_before_the_rewrite(monkeypatch, data, second, ada)
            return found

        with monkeypatch.context() as patched:
            patched.setattr(first, "commit", refused)
            patched.setattr(first, "query", second_commits_meanwhile)
            with pytest.raises(SqlUnavailableError):
                erase_persona(data, first, ada)
        assert rewrites_owed(data.path) == [ada]
    with finishing_on_opening(data, QUOTED) as manager:
        assert [p.name for p in Personas(manager).list()] == ["Grace"]
    assert rewrites_owed(data.path) == []


def test_opening_the_store_alone_destroys_the_keys_of_a_persona_it_holds_erased(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its erasure event came (from another device) and the files were rewritten; the
    # key exchange that deletes its keys has not come yet. A rebuild of the store alone
    # must not open its sealed events, writing their text into the file again.
    data = encrypted(tmp_path / "data")
    with data.open() as manager:
        ada = ada_beside_grace(manager)
        manager.commit(PersonaErased(persona_id=ada))
        assert manager.store is not None
        assert manager.store.compact()
        manager.shards.compact()
    assert files_holding(data.path, MARKER) == []
    monkeypatch.setenv("PJAI_PASSPHRASE", PASSPHRASE)
    done = CliRunner().invoke(cli, ["store", "rebuild", "--data-dir", str(data.path)])
    assert done.exit_code == 0, done.output
    assert files_holding(data.path, MARKER) == []
    with KeyRing.unlock(data.keys_path, passphrase=PASSPHRASE) as ring:
        assert ada not in ring.scopes()
        assert [k.scope for k in ring.erased()] == [ada]
    assert rewrites_owed(data.path) == [ada]  # SQL too: the next opening rewrites
    with finishing_on_opening(data) as manager:
        assert [p.name for p in Personas(manager).list()] == ["Grace"]
        assert manager.verify().equal
    assert rewrites_owed(data.path) == []


@pytest.mark.parametrize("livestore", [True, False])
def test_telling_unfinished_erasures_reads_only_the_erasure_and_creation_events_of_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, livestore: bool
) -> None:
    # A joining device takes a persona's keys before its events: the ring then holds
    # keys of a persona with no row, and each opening asks whether it was erased. Only
    # when it was are the creation events read too: they tell whether the keys are the
    # erased persona's or those of a persona given its id again.
    data = encrypted(tmp_path / "data")
    with data.open() as manager:
        ada = ada_beside_grace(manager)
        codec = manager.schema.codec
        assert isinstance(codec, FieldCodec)
        codec.keys.current("p-keys-before-events")
    set_flag(data, "use_livestore", livestore)
    read: list[str] = []

    def reading(patched: pytest.MonkeyPatch, module: ModuleType, name: str) -> None:
        real = getattr(module, name)

        def counted(row: Any) -> Any:
            found = real(row)
            read.append(getattr(found, "record", found).name)
            return found

        patched.setattr(module, name, counted)

    with data.open() as manager:
        assert (manager.store is not None) is livestore
        with monkeypatch.context() as patched:
            reading(patched, store_log, "_entry")
            reading(patched, sql_journal, "_record")
            assert unfinished_erasures(manager) == []
        assert read == []
        manager.commit(PersonaErased(persona_id=ada))  # as if stopped before its keys went
        with monkeypatch.context() as patched:
            reading(patched, store_log, "_entry")
            reading(patched, sql_journal, "_record")
            assert unfinished_erasures(manager) == [ada]
        erasure, creation = PersonaErased.NAME, PersonaCreated.NAME
        assert read == [erasure, creation, creation, erasure]  # Ada's, Grace's
    finished_on_opening(data)


def erase_stopped_before_the_rewrite(
    monkeypatch: pytest.MonkeyPatch,
    data: DataDir,
    manager: HybridDatabaseManager,
    persona_id: str,
) -> None:
    """Erase ``persona_id`` with ``manager``, stopped as a process would be after the
    persona's keys were destroyed, before the store and SQL were rewritten."""

    def stopped(self: HybridDatabaseManager) -> bool | None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(HybridDatabaseManager, "compact_store", stopped)
        with pytest.raises(KeyboardInterrupt):
            erase_persona(data, manager, persona_id)


def stop_before_the_rewrite(
    monkeypatch: pytest.MonkeyPatch, data: DataDir, *persona_ids: str
) -> None:
    """Erase each of ``persona_ids`` in a process stopped after the persona's keys were
    destroyed, before the store and SQL were rewritten."""
    with data.open() as manager:
        codec = manager.schema.codec
        assert isinstance(codec, FieldCodec)
        for persona_id in persona_ids:
            erase_stopped_before_the_rewrite(monkeypatch, data, manager, persona_id)
            assert persona_id not in codec.keys.scopes()  # gone before the stop
        # The process that stopped is told, and how to finish.
        assert privacy_report(manager).unfinished_erasures == sorted(persona_ids)


def test_erasures_stopped_before_their_files_were_rewritten_are_finished_by_the_next_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The keys are gone, so nothing in the key ring tells that the erasures stopped:
    # the rows' text is still in freed pages until the files are rewritten.
    data = encrypted(tmp_path / "data")
    with data.open() as manager:
        ada = fill(manager, "Ada", MARKER)
        bea = fill(manager, "Bea", f"{MARKER}-bea")
        fill(manager, "Grace", "kept-words")
    stop_before_the_rewrite(monkeypatch, data, ada, bea)
    assert {"store.db", "primary.db"} & set(files_holding(data.path, MARKER))
    with finishing_on_opening(data) as manager:
        assert [p.name for p in Personas(manager).list()] == ["Grace"]
        assert manager.verify().equal
    assert files_holding(data.path, "kept-words") != []


def ada_owed_beside_a_damaged_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[DataDir, str, Path]:
    """A directory whose erasure of Ada stopped before the rewrite, beside a damaged copy
    holding MARKER as a repair sets one aside (never rewritten, only deleted): the
    directory, Ada's id and the copy."""
    data = encrypted(tmp_path / "data")
    with data.open() as manager:
        ada = fill(manager, "Ada", MARKER)
    stop_before_the_rewrite(monkeypatch, data, ada)
    copy = data.path / "store.db.damaged-20260101T000000"
    copy.write_text(MARKER)
    return data, ada, copy


def test_an_owed_rewrite_that_cannot_finish_on_opening_stays_owed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, ada, copy = ada_owed_beside_a_damaged_copy(tmp_path, monkeypatch)
    with DataDir(data.path, environ=data.environ).open() as manager:
        assert privacy_report(manager).unfinished_erasures == [ada]
    assert files_holding(data.path, MARKER) == [copy.name]
    monkeypatch.setenv("PJAI_PASSPHRASE", PASSPHRASE)
    told = CliRunner().invoke(cli, ["privacy", "report", "--data-dir", str(data.path)])
    assert told.exit_code == 0, told.output
    assert f"erasure of {ada} not finished: damaged copies" in told.output
    assert "deleting them finishes it" in told.output
    copy.unlink()
    finished_on_opening(data)


def test_a_new_erasure_of_an_id_waiting_for_copies_owes_the_rewrite_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The id made anew and erased again: until that erasure has rewritten the files,
    # deleting the copies must not be taken for the end of it.
    data, ada, _ = ada_owed_beside_a_damaged_copy(tmp_path, monkeypatch)
    with DataDir(data.path, environ=data.environ).open() as manager:
        assert copies_left(data.path) == {ada}
        assert rewrites_due(data, manager) == []  # no compaction for the copies alone
    assert owe_rewrite(data.path, ada).before  # owed already, by a new erasure of the same id
    assert copies_left(data.path) == set()
    assert rewrites_owed(data.path) == [ada]


def test_keys_that_cannot_be_destroyed_on_opening_refuse_the_opening(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = encrypted(tmp_path / "data")
    with data.open() as manager:
        ada = fill(manager, "Ada", MARKER)
    stop_before_the_keys(monkeypatch, data, ada)

    def busy(self: KeyRing, scope: str, lineages: object = None) -> list[ErasedKey]:
        raise apsw.BusyError("database is locked")

    with monkeypatch.context() as patched:
        patched.setattr(KeyRing, "erase", busy)
        with pytest.raises(apsw.BusyError):  # not a manager whose ring still opens them
            DataDir(data.path, environ=data.environ).open()
    finished_on_opening(data)


def test_a_damaged_copy_left_costs_no_rewrite_at_each_opening(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only deleting the copy finishes such an erasure: opening again rewrites nothing.
    data, ada, copy = ada_owed_beside_a_damaged_copy(tmp_path, monkeypatch)
    compactions = []
    real = ShardSet.compact

    def counted(self: ShardSet, **options: float) -> list[str]:
        compactions.append(self)
        return real(self, **options)

    monkeypatch.setattr(ShardSet, "compact", counted)
    for _ in range(3):
        with DataDir(data.path, environ=data.environ).open() as manager:
            assert privacy_report(manager).unfinished_erasures == [ada]
    assert len(compactions) == 1
    copy.unlink()
    finished_on_opening(data)
    assert len(compactions) == 1


def test_an_owed_erasure_does_not_keep_the_directory_from_opening_while_sql_is_away(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = encrypted(tmp_path / "data")
    with data.open() as manager:
        ada = fill(manager, "Ada", MARKER)
    stop_before_the_rewrite(monkeypatch, data, ada)

    def away(self: ShardSet, **options: float) -> list[str]:
        raise SqlUnavailableError("SQL does not answer")

    with monkeypatch.context() as patched:
        patched.setattr(ShardSet, "compact", away)
        with DataDir(data.path, environ=data.environ).open() as manager:
            assert Personas(manager).list() == []  # opened and answering
            assert privacy_report(manager).unfinished_erasures == [ada]
    finished_on_opening(data)


def test_an_erasure_stopped_inside_the_vectors_rewrite_rewrites_them_on_opening(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stopped between deleting the persona's vectors and rewriting the file: the next
    # try finds none to delete, and rewrites the file all the same.
    data = encrypted(tmp_path / "data")
    with data.open() as manager:
        ada = ada_beside_grace(manager)
        Embeddings(data.vectors_path, TopicEncoder(), "topics").index(manager)
    assert ada.encode() in data.vectors_path.read_bytes()  # its vectors' rows name it

    def deleted_then_stopped(path: Path, persona_id: str, **_: object) -> Forgotten:
        db = apsw.Connection(str(path))
        try:
            db.execute("DELETE FROM vectors WHERE persona_id = ?", (persona_id,))
        finally:
            db.close()
        raise KeyboardInterrupt

    with data.open() as manager, monkeypatch.context() as patched:
        patched.setattr(forgetting, "forget_persona", deleted_then_stopped)
        with pytest.raises(KeyboardInterrupt):
            erase_persona(data, manager, ada)
    assert ada not in vectors_of(data.vectors_path)
    assert ada.encode() in data.vectors_path.read_bytes()  # a freed page keeps the rows
    finished_on_opening(data)
    assert ada.encode() not in data.vectors_path.read_bytes()


def test_a_mark_of_an_owed_rewrite_that_does_not_read_is_refused_by_name(
    tmp_path: Path,
) -> None:
    data = DataDir(tmp_path / "data")
    with data.open():
        pass
    mark = data.path / "erasing-0123.json"
    mark.write_text("{not json")
    with pytest.raises(ConfigError, match=re.escape(f"{mark} does not read as the mark")):
        data.open()
    mark.unlink()
    data.open().close()


def test_a_persona_whose_keys_went_before_any_of_its_events_came_does_not_stop_opening(
    tmp_path: Path,
) -> None:
    # A key exchange marks a persona before destroying its keys (erased on another
    # device); its events may not have come yet, or ever: the rewrite is done all the
    # same, not refused as the erasure of a persona never here.
    data = DataDir(tmp_path / "data")
    with data.open():
        pass
    owe_rewrite(data.path, "p-of-elsewhere")
    with data.open() as manager:
        assert privacy_report(manager).unfinished_erasures == []
    assert rewrites_owed(data.path) == []


@pytest.mark.parametrize("stop", [stop_before_the_keys, stop_before_the_rewrite])
def test_processes_opening_at_once_finish_an_erasure_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop: Callable[..., None]
) -> None:
    data = encrypted(tmp_path / "data")
    with data.open() as manager:
        ada = fill(manager, "Ada", MARKER)
    stop(monkeypatch, data, ada)
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def open_it() -> None:
        try:
            start.wait(timeout=30)
            with DataDir(data.path, environ=data.environ).open():
                pass
        except BaseException as exc:
            failures.append(exc)

    both = [threading.Thread(target=open_it) for _ in range(2)]
    for thread in both:
        thread.start()
    for thread in both:
        thread.join(timeout=60)
    assert failures == []
    with KeyRing.unlock(data.keys_path, passphrase=PASSPHRASE) as ring:
        assert ring.scopes().get(ada) is None
        assert len([k for k in ring.erased() if k.scope == ada]) == 1
    finished_on_opening(data)


def test_the_cli_erases_after_asking_and_prints_the_proof(tmp_path: Path) -> None:
    runner = CliRunner()
    where = ["--data-dir", str(tmp_path / "data")]
    data = DataDir(tmp_path / "data")
    with data.open() as manager:
        fill(manager, "Ada", MARKER)
    refused = runner.invoke(cli, ["privacy", "erase", "Ada", *where])
    assert refused.exit_code == 1
    assert "give --yes" in refused.output
    done = runner.invoke(cli, ["privacy", "erase", "Ada", "--yes", "--json", *where])
    assert done.exit_code == 0, done.output
    proof = json.loads(done.output)
    assert proof["rows"]["memories"] == 1
    assert proof["plaintext_events"] == 5
    plain = runner.invoke(cli, ["privacy", "erase", proof["persona_id"], "--yes", *where])
    assert "Erased" in plain.output


def test_an_erasure_waiting_for_the_sync_server_says_so_and_finishes_later(
    tmp_path: Path,
) -> None:
    data = encrypted(tmp_path / "data", PJAI_FLAG_SYNC="true")
    with data.open() as manager:
        ada = fill(manager, "Ada", MARKER)
        assert manager.store is not None
        manager.store.rebase(echoed(manager.store.pending()))  # as a sync server confirms
        assert "primary.db-wal" in files_holding(data.path, MARKER)
        proof = erase_persona(data, manager, ada)
        # Pending events keep the rows they changed until the server confirms them, and
        # SQL applies the erasure only then: neither file is said to be rewritten.
        assert "store.db" not in proof.rewritten
        assert any("wait for the sync server" in reason for reason in proof.unfinished)
        primary = f"sqlite:///{data.path / 'primary.db'}"
        assert primary not in proof.rewritten
        assert (
            f"{primary}: holds the persona's rows until the sync server confirms the erasure"
            in proof.unfinished
        )
        assert "primary.db" in files_holding(data.path, MARKER)  # rewritten, rows and all


def echoed(pending: list[EventRecord], *, after: Position = ROOT) -> list[EventRecord]:
    """``pending`` as a sync server numbers and sends them back, ``after`` the history
    it confirmed before."""
    parent, numbered = after, []
    for record in pending:
        position = Position(parent.global_seq + 1)
        numbered.append(msgspec.structs.replace(record, position=position, parent=parent))
        parent = position
    return numbered


def test_a_reader_holding_the_log_leaves_the_erasure_unfinished(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    with data.open() as manager:
        ada = fill(manager, "Ada", MARKER)
        reader = apsw.Connection(str(data.store_path))
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM memories").fetchall()  # holds a snapshot
        try:
            assert manager.store is not None
            assert manager.store.compact(wait_s=0.2) is False
        finally:
            reader.execute("COMMIT")
            reader.close()
        proof = erase_persona(data, manager, ada)
        assert proof.unfinished == []
        assert "store.db" in proof.rewritten


@pytest.mark.parametrize("sealed", ["false", "true"])
def test_an_erasure_on_a_postgresql_primary_deletes_its_rows_and_rewrites_the_tables(
    tmp_path: Path, sealed: str
) -> None:
    with postgres_schema() as url:
        data = encrypted(tmp_path / "data", PJAI_SQL_SHARDS=url, PJAI_SQL_SEALED=sealed)
        with data.open() as manager:
            ada = ada_beside_grace(manager)
            proof = erase_persona(data, manager, ada)
            assert proof.unfinished == []
            assert any(u.startswith("postgresql") for u in proof.rewritten)
            engine = manager.shards.shards[0].engine
            with engine.connect() as conn:
                texts = [
                    str(row)
                    for table in ("personas", "memories", "conversations", "conversation_messages")
                    for row in conn.exec_driver_sql(f"SELECT * FROM {table}")
                ]
                journal = [str(r) for r in conn.exec_driver_sql("SELECT * FROM pjai_journal")]
            assert not [t for t in texts + journal if MARKER in t]
            # The other persona's rows stay: in plaintext, or sealed.
            assert bool([t for t in texts if "kept-words" in t]) == (sealed == "false")
            assert [p.description for p in manager.personas.list()] == ["kept-words description"]
            assert manager.verify().equal
