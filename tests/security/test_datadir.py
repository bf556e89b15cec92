"""An encrypted data directory: made with `pjai security init`, opened with its
passphrase or key file, refused without, its logs holding ciphertext."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pjai.app import DataDir, Memories, Passphrase, Personas, erase_persona
from pjai.app.rights import record_consent
from pjai.app.security import change_passphrase, init_security, rotate_key, security_status
from pjai.cli import app as cli
from pjai.errors import ConfigError, KeyRingError, StoreError
from pjai.hybrid.archive import export_archive, import_archive
from pjai.store import Store
from tests.security.test_keys import FAST, PASSPHRASE

MARKER = "zebra-marmalade-41"


def opened(path: Path, **environ: str) -> DataDir:
    return DataDir(path, environ=environ)


def test_an_encrypted_directory_seals_its_logs_and_opens_only_with_its_lock(tmp_path: Path) -> None:
    data = opened(tmp_path / "data", PJAI_PASSPHRASE=PASSPHRASE)
    init_security(data, passphrase=PASSPHRASE, params=FAST)
    with data.open() as manager:
        ada = Personas(manager).create("Ada", description=MARKER)
        Memories(manager).add(ada.id, f"the {MARKER} recipe")
        store = manager.store
        assert store is not None
        assert all(MARKER.encode() not in bytes(e.record.args) for e in store.events())
        assert all(MARKER.encode() not in bytes(r.args) for r in manager.shards.journal())
        assert Personas(manager).get(ada.id).description == MARKER
        assert manager.verify().equal
    with pytest.raises(KeyRingError, match="is encrypted: give its passphrase in PJAI_PASSPHRASE"):
        opened(tmp_path / "data").open()
    with pytest.raises(KeyRingError, match="does not unlock"):
        opened(tmp_path / "data", PJAI_PASSPHRASE="wrong passphrase!").open()
    # The store file alone, without the ring, is refused rather than read as plain.
    with pytest.raises(StoreError, match=r"sealed .*open it with its key ring"):
        Store.open(data.store_path)
    report = security_status(data)
    assert (report.encrypted, report.unlocked, report.locks) == (True, True, ["passphrase"])
    assert report.data_keys == {ada.id: 1}
    assert not security_status(opened(tmp_path / "data")).unlocked


def test_a_plain_directory_takes_encryption_and_keeps_its_older_events(tmp_path: Path) -> None:
    plain = opened(tmp_path / "data")
    with plain.open() as manager:
        ada = Personas(manager).create("Ada", description="written before")
    data = opened(tmp_path / "data", PJAI_PASSPHRASE=PASSPHRASE)
    init_security(data, passphrase=PASSPHRASE, params=FAST)
    with data.open() as manager:
        Personas(manager).update(ada.id, description=MARKER)
        assert manager.store is not None
        first, second = (bytes(e.record.args) for e in manager.store.events())
        assert b"written before" in first
        assert MARKER.encode() not in second
        assert manager.store.rebuild() == 2
        assert Personas(manager).get(ada.id).description == MARKER
    with pytest.raises(KeyRingError, match="encrypted already"):
        init_security(data, passphrase=PASSPHRASE, params=FAST)


def test_a_key_file_opens_it_and_rotation_and_a_new_passphrase_keep_it_readable(
    tmp_path: Path,
) -> None:
    key_file = tmp_path / "elsewhere" / "pjai.key"
    data = opened(tmp_path / "data", PJAI_KEY_FILE=str(key_file))
    init_security(data, passphrase=PASSPHRASE, key_file=key_file, params=FAST)
    with data.open() as manager:
        ada = Personas(manager).create("Ada", description="before the rotation")
    rotate_key(data, ada.id)
    change_passphrase(data, "another long passphrase", params=FAST)
    with opened(tmp_path / "data", PJAI_PASSPHRASE="another long passphrase").open() as manager:
        Personas(manager).update(ada.id, description="after the rotation")
        assert manager.store is not None
        assert manager.store.rebuild() == 2
    assert security_status(data).data_keys == {ada.id: 2}


def test_the_cli_initialises_and_reports(tmp_path: Path) -> None:
    runner = CliRunner()
    where = ["--data-dir", str(tmp_path / "data")]
    made = runner.invoke(cli, ["security", "init", *where], input=PASSPHRASE + "\n")
    assert made.exit_code == 0, made.output
    assert "Encrypted" in made.output
    locked = runner.invoke(cli, ["security", "status", *where], env={"PJAI_PASSPHRASE": None})
    assert "encrypted, locked" in locked.output
    env = {"PJAI_PASSPHRASE": PASSPHRASE}
    assert runner.invoke(cli, ["persona", "create", "Ada", *where], env=env).exit_code == 0
    shown = runner.invoke(cli, ["security", "status", *where], env=env)
    assert "unlocks with: passphrase" in shown.output
    refused = runner.invoke(cli, ["persona", "list", *where], env={"PJAI_PASSPHRASE": None})
    assert refused.exit_code == 1
    assert "is encrypted: give its passphrase" in refused.output
    rotated = runner.invoke(cli, ["security", "rotate", "Ada", "--json", *where], env=env)
    assert rotated.exit_code == 0, rotated.output
    assert set(json.loads(rotated.output)) == {"persona_id", "key_id"}
    code = runner.invoke(cli, ["security", "recovery-code", "--json", *where], env=env)
    assert code.exit_code == 0, code.output
    assert len(json.loads(code.stdout)["recovery_code"]) >= 16


def test_a_store_sealed_under_one_key_ring_refuses_another(tmp_path: Path) -> None:
    data = opened(tmp_path / "data", PJAI_PASSPHRASE=PASSPHRASE)
    init_security(data, passphrase=PASSPHRASE, params=FAST)
    with data.open() as manager:
        Personas(manager).create("Ada", description=MARKER)
    data.keys_path.unlink()  # lost, and made again: a different store key
    init_security(data, passphrase=PASSPHRASE, params=FAST)
    with pytest.raises(StoreError, match="open it with its key ring"):
        opened(tmp_path / "data", PJAI_PASSPHRASE=PASSPHRASE).open()


def test_an_encrypted_directory_s_archive_is_sealed_and_opens_with_its_key_ring(
    tmp_path: Path,
) -> None:
    sealed = opened(tmp_path / "sealed", PJAI_PASSPHRASE=PASSPHRASE)
    init_security(sealed, passphrase=PASSPHRASE, params=FAST)
    with sealed.open() as manager:
        ada = Personas(manager).create("Ada", description=MARKER)
        Memories(manager).add(ada.id, f"the {MARKER} recipe", summary=MARKER)
        Memories(manager).add(ada.id, f"cold {MARKER}", tier="cold")
        manifest = export_archive(manager, tmp_path / "sealed.zip")
    assert manifest.sealed_with is not None
    with zipfile.ZipFile(tmp_path / "sealed.zip") as zf:
        assert not [n for n in zf.namelist() if MARKER.encode() in zf.read(n)]
    # Without the key ring, nothing is written.
    with pytest.raises(ConfigError, match=r"is sealed .* copy that directory's keys\.db"):
        import_archive(tmp_path / "fresh", tmp_path / "sealed.zip", environ={})
    assert not (tmp_path / "fresh" / "store.db").exists()
    # With a copy of the key ring (another ring does not do), it restores and compares.
    other = opened(tmp_path / "other", PJAI_PASSPHRASE=PASSPHRASE)
    init_security(other, passphrase=PASSPHRASE, params=FAST)
    with pytest.raises(ConfigError, match="is sealed"):
        import_archive(other.path, tmp_path / "sealed.zip", **other.opening_options())
    restored = opened(tmp_path / "restored", PJAI_PASSPHRASE=PASSPHRASE)
    restored.path.mkdir()
    shutil.copyfile(sealed.keys_path, restored.keys_path)
    result = import_archive(restored.path, tmp_path / "sealed.zip", **restored.opening_options())
    assert result.note is None  # the snapshot was compared row by row
    with restored.open() as manager:
        assert Personas(manager).get(ada.id).description == MARKER


def test_a_plain_archive_imports_into_an_encrypted_directory_opened_with_its_ring(
    tmp_path: Path,
) -> None:
    plain = opened(tmp_path / "plain")
    with plain.open() as manager:
        ada = Personas(manager).create("Ada", description=MARKER)
        Memories(manager).add(ada.id, f"the {MARKER} recipe", tags=[MARKER])
        export_archive(manager, tmp_path / "plain.zip")
    sealed = opened(tmp_path / "sealed", PJAI_PASSPHRASE=PASSPHRASE)
    init_security(sealed, passphrase=PASSPHRASE, params=FAST)
    with pytest.raises(ConfigError, match=r"is encrypted .* but was not opened with it"):
        import_archive(sealed.path, tmp_path / "plain.zip", environ={})
    import_archive(sealed.path, tmp_path / "plain.zip", **sealed.opening_options())
    with sealed.open() as manager:
        assert [p.name for p in Personas(manager).list()] == ["Ada"]
        assert Personas(manager).get(ada.id).description == MARKER
        # Its events are sealed as the directory's own are: no readable text in the logs.
        store = manager.store
        assert store is not None
        assert all(MARKER.encode() not in bytes(e.record.args) for e in store.events())
        assert all(MARKER.encode() not in bytes(r.args) for r in manager.shards.journal())
        assert manager.verify().equal


def test_a_plain_archive_of_a_persona_erased_here_is_refused(tmp_path: Path) -> None:
    plain = opened(tmp_path / "plain")
    with plain.open() as manager:
        ada = Personas(manager).create("Ada", description=MARKER)
        export_archive(manager, tmp_path / "plain.zip")
    data = opened(tmp_path / "data", PJAI_PASSPHRASE=PASSPHRASE)
    init_security(data, passphrase=PASSPHRASE, params=FAST)
    import_archive(data.path, tmp_path / "plain.zip", **data.opening_options())
    with data.open() as manager:
        erase_persona(data, manager, ada.id)
    again = opened(tmp_path / "again", PJAI_PASSPHRASE=PASSPHRASE)
    again.path.mkdir()
    shutil.copyfile(data.keys_path, again.keys_path)  # the ring that erased Ada
    with pytest.raises(ConfigError, match=r"cannot be sealed here: .* was erased"):
        import_archive(again.path, tmp_path / "plain.zip", **again.opening_options())
    assert not [p for p in again.path.rglob("*") if MARKER.encode() in p.read_bytes()]


def test_an_archive_written_before_an_erasure_restores_without_the_erased_persona(
    tmp_path: Path,
) -> None:
    data = opened(tmp_path / "data", PJAI_PASSPHRASE=PASSPHRASE)
    init_security(data, passphrase=PASSPHRASE, params=FAST)
    with data.open() as manager:
        ada = Personas(manager).create("Ada", description=MARKER)
        first = Memories(manager).add(ada.id, MARKER).memory
        second = Memories(manager).add(ada.id, f"{MARKER} again").memory
        Memories(manager).link(first.id, second.id, "related")  # no sealed column
        record_consent(manager, ada.id, "memory", granted=True, version="1")
        grace = Personas(manager).create("Grace")
        record_consent(manager, grace.id, "memory", granted=True, version="1")
        export_archive(manager, tmp_path / "before.zip")
        erase_persona(data, manager, ada.id)
    restored = opened(tmp_path / "restored", PJAI_PASSPHRASE=PASSPHRASE)
    restored.path.mkdir()
    shutil.copyfile(data.keys_path, restored.keys_path)  # the ring as it is now
    result = import_archive(restored.path, tmp_path / "before.zip", **restored.opening_options())
    assert result.note is not None
    # The persona, its two memories, their link and its consent.
    assert "5 rows of the snapshot belong to personas erased" in result.note
    with restored.open() as manager:
        assert [p.name for p in Personas(manager).list(include_deleted=True)] == ["Grace"]
    assert not [
        p.name
        for p in restored.path.rglob("*")
        if p.is_file() and MARKER.encode() in p.read_bytes()
    ]


def test_a_desktop_import_into_an_encrypted_directory_is_sealed_like_the_rest(
    tmp_path: Path,
) -> None:
    from pjai.app import import_legacy
    from tests.hybrid.desktop_app import DesktopApp

    desktop = tmp_path / "pjai.db"
    with DesktopApp(desktop, importance="0-1", tags="comma") as db:
        ada = db.create_persona("Ada", description=f"the {MARKER} person")
        db.add_memory(ada, f"the {MARKER} recipe", importance=0.8)
    data = opened(tmp_path / "data", PJAI_PASSPHRASE=PASSPHRASE)
    init_security(data, passphrase=PASSPHRASE, params=FAST)
    with pytest.raises(KeyRingError, match="is encrypted: give its passphrase"):
        import_legacy(opened(tmp_path / "data"), desktop)
    result = import_legacy(data, desktop)
    assert (result.personas, result.memories) == (1, 1)
    assert result.report == data.legacy_report_path
    with data.open() as manager:
        store = manager.store
        assert store is not None
        assert all(MARKER.encode() not in bytes(e.record.args) for e in store.events())
        assert all(MARKER.encode() not in bytes(r.args) for r in manager.shards.journal())
        assert Personas(manager).get(ada).description == f"the {MARKER} person"
    # Through the command, without the passphrase: refused, nothing written.
    runner = CliRunner()
    where = ["--data-dir", str(tmp_path / "data")]
    refused = runner.invoke(
        cli, ["import-legacy", str(desktop), *where], env={"PJAI_PASSPHRASE": None}
    )
    assert refused.exit_code == 1
    assert "is encrypted: give its passphrase" in refused.output


def test_a_passphrase_that_is_not_text_is_refused_by_name(tmp_path: Path) -> None:
    # Bytes that were not UTF-8 (a terminal, a pipe or the environment in another
    # encoding) reach Python as lone surrogates: refused, never a crash.
    bad = "correct horse \udcff battery"
    data = opened(tmp_path / "data", PJAI_PASSPHRASE=PASSPHRASE)
    with pytest.raises(KeyRingError, match="the passphrase is not UTF-8 text"):
        init_security(data, passphrase=bad, params=FAST)
    assert not data.encrypted
    init_security(data, passphrase=PASSPHRASE, params=FAST)
    with pytest.raises(KeyRingError, match="PJAI_PASSPHRASE is not valid Unicode text"):
        opened(tmp_path / "data", PJAI_PASSPHRASE=bad).open()
    with pytest.raises(KeyRingError, match="PJAI_KEY_FILE is not valid Unicode text"):
        opened(tmp_path / "data", PJAI_KEY_FILE=f"{tmp_path}/\udcff.key").open()
    web = Passphrase.of(tmp_path / "data")
    with pytest.raises(ConfigError, match="the passphrase is not valid Unicode text"):
        web.set(bad)
    web.set(PASSPHRASE)
    assert not web.check(bad)
    assert web.check(PASSPHRASE)
