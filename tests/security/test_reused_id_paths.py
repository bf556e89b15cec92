"""The ways an event or a row is sealed other than a commit through the store (a commit
with the store off, an archive's plain fields sealed as it is restored, an archive's
snapshot) seal a persona's with the lineage her creation started, as a commit does,
where the key ring holds keys of more than one lineage of her id (an erased persona's,
and a new one's given the id again)."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import msgspec

from pjai.app import DataDir, Memories, Personas
from pjai.app.flags import set_flag
from pjai.hybrid.archive import EVENTS_FILE, export_archive, import_archive
from pjai.hybrid.archive.format import decode_record, encode_record
from pjai.schema import MemoryFilter
from pjai.schema.sealed import sealed_with
from tests.hybrid.test_archive import forge, read_manifest
from tests.security.test_erasure import encrypted


def test_a_commit_with_the_store_off_seals_with_the_lineage_of_the_persona_s_creation(
    tmp_path: Path,
) -> None:
    data = encrypted(tmp_path / "data")
    with data.open() as manager:
        ada = Personas(manager).create("Ada").id
    with data.key_ring() as keys:
        (hers,) = keys.lineages(ada)
        other, _ = keys.start(ada)  # the key of a persona given her id, current here
    set_flag(data, "use_livestore", False)
    with DataDir(data.path, environ=data.environ).open() as manager:  # the ring as it is now
        assert manager.store is None
        Memories(manager).add(ada, "words")
        Memories(manager).add(ada, "more words")
        added = [r for r in manager.shards.journal() if r.name == "v1.MemoryAdded"]
    assert [sealed_with(bytes(r.args)) for r in added] == [hers, hers]
    with data.key_ring() as keys:
        keys.erase(ada, {other})
    set_flag(data, "use_livestore", True)
    with data.open() as manager:
        assert {m.content for m in Memories(manager).list(MemoryFilter(persona_id=ada))} == {
            "words",
            "more words",
        }
        assert manager.verify().equal


def test_an_archive_s_plain_fields_are_sealed_with_the_lineage_of_their_persona_s_creation(
    tmp_path: Path,
) -> None:
    source, archive = encrypted(tmp_path / "source"), tmp_path / "ada.zip"
    with source.open() as manager:
        ada = Personas(manager).create("Ada").id
        Memories(manager).add(ada, "words")
        export_archive(manager, archive)
        # Her memory as a device without her key writes it: plain, after her sealed
        # creation.
        codec, events = manager.schema.codec, b""
        with zipfile.ZipFile(archive) as zf:
            for line in zf.read(EVENTS_FILE).splitlines():
                record = decode_record(line)
                if record.name == "v1.MemoryAdded":
                    plain = codec.unseal(record.id, record.name, bytes(record.args))
                    record = msgspec.structs.replace(record, args=msgspec.Raw(plain))
                events += encode_record(record) + b"\n"
    forge(archive, read_manifest(archive), events)
    with source.key_ring() as keys:
        (hers,) = keys.lineages(ada)
        keys.start(ada)  # the key of a persona given her id, current here
    target = DataDir(tmp_path / "target", environ=source.environ)
    target.path.mkdir()
    shutil.copyfile(source.keys_path, target.keys_path)
    import_archive(target.path, archive, **target.opening_options())
    with target.open() as manager:
        assert manager.store is not None
        (added,) = [e.record for e in manager.store.events() if e.record.name == "v1.MemoryAdded"]
        assert sealed_with(bytes(added.args)) == hers
        assert [m.content for m in Memories(manager).list(MemoryFilter(persona_id=ada))] == [
            "words"
        ]
        assert manager.verify().equal


def test_an_archive_s_snapshot_seals_a_persona_s_rows_with_the_lineage_of_her_creation(
    tmp_path: Path,
) -> None:
    source, archive = encrypted(tmp_path / "source"), tmp_path / "ada.zip"
    with source.open() as manager:
        ada = Personas(manager).create("Ada", description="hers").id
        Memories(manager).add(ada, "words")
    with source.key_ring() as keys:
        other, _ = keys.start(ada)  # the key of a persona given her id, current here
    with DataDir(source.path, environ=source.environ).open() as manager:  # as read now
        export_archive(manager, archive)
    target = DataDir(tmp_path / "target", environ=source.environ)
    target.path.mkdir()
    shutil.copyfile(source.keys_path, target.keys_path)
    with target.key_ring() as keys:
        keys.erase(ada, {other})  # that persona erased: Ada's rows still open
    result = import_archive(target.path, archive, **target.opening_options())
    assert result.note is None  # every row of the snapshot compared
    with target.open() as manager:
        assert Personas(manager).get(ada).description == "hers"
