"""The key ring: locks on the store key, data keys per persona, rotation, erasure."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import apsw
import pytest

from pjai.app import DataDir
from pjai.app.security import init_security, security_status
from pjai.errors import KeyRingError
from pjai.schema.types import new_id
from pjai.security import STORE_SCOPE, Argon2Params, KeyRing, datakeys, fingerprint, keys, locks
from pjai.security.sharing import absorb

FAST = Argon2Params(iterations=1, lanes=1, memory_kib=8 * 1024)
"""Cheap stretching for tests; the defaults take a quarter of a second."""

PASSPHRASE = "correct horse battery"


def made(tmp_path: Path) -> KeyRing:
    return KeyRing.create(tmp_path / "keys.db", passphrase=PASSPHRASE, params=FAST)


def stored_wraps(path: Path, scope: str) -> list[bytes]:
    """The wrapped data keys of ``scope`` as the file holds them."""
    conn = apsw.Connection(str(path))
    try:
        rows = conn.execute("SELECT wrapped FROM data_keys WHERE scope = ?", (scope,))
        return [bytes(w) for (w,) in rows]
    finally:
        conn.close()


def test_a_passphrase_unlocks_the_same_keys_and_a_wrong_one_is_refused(tmp_path: Path) -> None:
    with made(tmp_path) as ring:
        key_id, key = ring.current("p1")
        store_print = ring.store_key_fingerprint
    with KeyRing.unlock(tmp_path / "keys.db", passphrase=PASSPHRASE) as again:
        assert again.store_key_fingerprint == store_print
        assert again.key(key_id) == key
        assert again.current("p1") == (key_id, key)
    with pytest.raises(KeyRingError, match="passphrase given does not unlock"):
        KeyRing.unlock(tmp_path / "keys.db", passphrase="not the passphrase")
    with pytest.raises(KeyRingError, match="locked: unlock it with its passphrase"):
        KeyRing.unlock(tmp_path / "keys.db")
    with pytest.raises(KeyRingError, match="at least 12 characters"):
        KeyRing.create(tmp_path / "other.db", passphrase="short")
    assert not (tmp_path / "other.db").exists()


def test_the_file_keeps_no_key_in_the_clear(tmp_path: Path) -> None:
    with made(tmp_path) as ring:
        _, key = ring.current("p1")
    raw = (tmp_path / "keys.db").read_bytes()
    assert key not in raw
    assert PASSPHRASE.encode() not in raw
    assert stat.S_IMODE((tmp_path / "keys.db").stat().st_mode) == 0o600


def test_changing_the_passphrase_rewraps_without_changing_the_keys(tmp_path: Path) -> None:
    with made(tmp_path) as ring:
        key_id, key = ring.current("p1")
        ring.change_passphrase("a brand new passphrase", FAST)
    with pytest.raises(KeyRingError, match="does not unlock"):
        KeyRing.unlock(tmp_path / "keys.db", passphrase=PASSPHRASE)
    with KeyRing.unlock(tmp_path / "keys.db", passphrase="a brand new passphrase") as ring:
        assert ring.key(key_id) == key


def test_a_key_file_and_a_one_time_recovery_code_unlock_it_too(tmp_path: Path) -> None:
    key_file = tmp_path / "elsewhere" / "pjai.key"
    with made(tmp_path) as ring:
        ring.add_key_file(key_file)
        code = ring.recovery_code(FAST)
        key_id, key = ring.current(STORE_SCOPE)
        assert ring.locks() == ["key file", "passphrase", "recovery code"]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    with KeyRing.unlock(tmp_path / "keys.db", key_file=key_file) as ring:
        assert ring.key(key_id) == key
    typed = code.lower().replace("-", " ")  # as a person might type it
    with pytest.raises(KeyRingError, match="at least 12 characters"):
        KeyRing.recover(tmp_path / "keys.db", typed, "short")  # the code still works after
    with KeyRing.recover(tmp_path / "keys.db", typed, "a new passphrase", FAST) as ring:
        assert ring.key(key_id) == key
        assert ring.locks() == ["key file", "passphrase"]  # the code is used up
    with pytest.raises(KeyRingError, match="locked: unlock it with its key file, passphrase"):
        KeyRing.recover(tmp_path / "keys.db", code, "another passphrase")
    with KeyRing.unlock(tmp_path / "keys.db", passphrase="a new passphrase") as ring:
        assert ring.key(key_id) == key
    key_file.write_text("not a key\n")
    with pytest.raises(KeyRingError, match="is not a PJai key file"):
        KeyRing.unlock(tmp_path / "keys.db", key_file=key_file)
    key_file.write_bytes(b"\x85" * 33)  # neither a key nor text
    with pytest.raises(KeyRingError, match=r"is not a PJai key file \(32 bytes, or their base64"):
        KeyRing.unlock(tmp_path / "keys.db", key_file=key_file)


def test_a_key_file_of_32_bytes_as_they_are_unlocks_it(tmp_path: Path) -> None:
    key_file = tmp_path / "raw.key"
    key_file.write_bytes(b"\x85" + secrets.token_bytes(31))  # as `head -c 32 /dev/urandom`
    key_file.chmod(0o600)
    with made(tmp_path) as ring:
        ring.add_key_file(key_file)
        key_id, key = ring.current(STORE_SCOPE)
    with KeyRing.unlock(tmp_path / "keys.db", key_file=key_file) as ring:
        assert ring.key(key_id) == key
    key_file.chmod(0o644)
    with pytest.raises(KeyRingError, match="can be read by other users"):
        KeyRing.unlock(tmp_path / "keys.db", key_file=key_file)


def test_rotation_gives_new_events_a_new_key_and_keeps_the_old_one(tmp_path: Path) -> None:
    with made(tmp_path) as ring:
        old_id, old = ring.current("p1")
        new_id = ring.rotate("p1")
        assert new_id != old_id
        assert ring.current("p1")[0] == new_id
        assert ring.key(old_id) == old
        assert ring.scopes() == {"p1": 2}
    with KeyRing.unlock(tmp_path / "keys.db", passphrase=PASSPHRASE) as ring:
        assert ring.current("p1")[0] == new_id


def test_erasing_a_persona_destroys_its_keys_in_the_file(tmp_path: Path) -> None:
    with made(tmp_path) as ring:
        first_id, first = ring.current("p1")
        second_id = ring.rotate("p1")
        second = ring.key(second_id)
        assert second is not None
        kept_id, kept = ring.current("p2")
        wrapped = stored_wraps(tmp_path / "keys.db", "p1")
        erased = ring.erase("p1")
        assert {e.key_id for e in erased} == {first_id, second_id}
        assert {e.fingerprint for e in erased} == {fingerprint(first), fingerprint(second)}
        assert ring.key(first_id) is None
        assert ring.was_erased(first_id)
        with pytest.raises(KeyRingError, match="p1 was erased"):
            ring.current("p1")
        assert ring.key(kept_id) == kept
    raw = (tmp_path / "keys.db").read_bytes()
    with KeyRing.unlock(tmp_path / "keys.db", passphrase=PASSPHRASE) as ring:
        assert ring.key(second_id) is None
        assert [e.key_id for e in ring.erased()] == sorted([first_id, second_id])
    # What the file holds of the erased keys is their ids and fingerprints: no wrapped
    # key of p1 is left to be opened by a stolen passphrase.
    assert len(wrapped) == 2
    assert all(w not in raw for w in wrapped)
    assert [p.name for p in tmp_path.iterdir()] == ["keys.db"]  # no journal left behind


def test_a_key_made_while_another_process_erases_is_destroyed_or_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A web app rotates or makes a persona's key while the CLI erases that persona:
    # whichever goes first, no key of the persona outlives the erasure unrecorded.
    path = tmp_path / "keys.db"
    with made(tmp_path) as ring:
        ring.current("p1")
        ring.current("p2")
    erasing = KeyRing.unlock(path, passphrase=PASSPHRASE)
    other = KeyRing.unlock(path, passphrase=PASSPHRASE)
    other._conn.setbusytimeout(0)  # waiting on the erasure's lock would refuse it too
    made_meanwhile: list[str] = []
    unwrap = erasing._unwrap_data_key

    def rotating(*args: Any) -> bytes:
        with contextlib.suppress(apsw.BusyError):
            made_meanwhile.append(other.rotate("p1"))
        return unwrap(*args)

    monkeypatch.setattr(erasing, "_unwrap_data_key", rotating)
    erased = {e.key_id for e in erasing.erase("p1")}
    assert set(made_meanwhile) <= erased
    assert erasing.scopes() == {"p2": 1}
    # Made while the erasure is under way: checked against it as it is written.
    monkeypatch.undo()
    monkeypatch.setattr(datakeys, "new_id", lambda: (erasing.erase("p2"), new_id())[1])
    with pytest.raises(KeyRingError, match="p2 was erased"):
        other.rotate("p2")
    assert erasing.scopes() == {}
    erasing.close()
    other.close()


def test_an_altered_data_key_is_refused(tmp_path: Path) -> None:
    with made(tmp_path) as ring:
        key_id, _ = ring.current("p1")
    conn = apsw.Connection(str(tmp_path / "keys.db"))
    conn.execute("UPDATE data_keys SET scope = 'p2' WHERE id = ?", (key_id,))
    conn.close()
    with (
        KeyRing.unlock(tmp_path / "keys.db", passphrase=PASSPHRASE) as ring,
        pytest.raises(KeyRingError, match="does not open: it was altered"),
    ):
        ring.key(key_id)


def test_a_lock_changed_by_another_process_meanwhile_is_not_undone(tmp_path: Path) -> None:
    # Two processes opened the ring with the same passphrase; the second change would
    # silently replace the first, locking its user out.
    path = tmp_path / "keys.db"
    with made(tmp_path) as ring:
        ring.recovery_code(FAST)
    first = KeyRing.unlock(path, passphrase=PASSPHRASE)
    second = KeyRing.unlock(path, passphrase=PASSPHRASE)
    try:
        first.change_passphrase("the first new passphrase", FAST)
        with pytest.raises(KeyRingError, match="passphrase was changed by another process"):
            second.change_passphrase("the second new passphrase", FAST)
        code = first.recovery_code(FAST)  # printed to its user: it must keep working
        with pytest.raises(KeyRingError, match="recovery code was changed by another process"):
            second.recovery_code(FAST)
    finally:
        first.close()
        second.close()
    with KeyRing.unlock(path, passphrase="the first new passphrase"):
        pass
    KeyRing.recover(path, code, "a recovered passphrase", FAST).close()


def test_a_lock_changed_while_another_process_unlocks_is_not_undone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Unlocking stretches the secret for a while: a lock changed by another process
    # during that time is a change made since this one opened the ring.
    path = tmp_path / "keys.db"
    with made(tmp_path) as ring:
        old_code = ring.recovery_code(FAST)
    stretch, shown = locks.stretch, []

    def meanwhile(change: Callable[[KeyRing], object]) -> None:
        def stretching(*args: Any) -> bytes:
            monkeypatch.setattr(locks, "stretch", stretch)
            with KeyRing.unlock(path, passphrase=PASSPHRASE) as other:
                shown.append(change(other))
            return stretch(*args)

        monkeypatch.setattr(locks, "stretch", stretching)

    meanwhile(lambda other: other.recovery_code(FAST))  # printed to its user
    with pytest.raises(KeyRingError, match="recovery code was changed by another process"):
        KeyRing.recover(path, old_code, "a recovered passphrase", FAST)
    meanwhile(lambda other: other.change_passphrase("the first new passphrase", FAST))
    with (
        KeyRing.unlock(path, passphrase=PASSPHRASE) as ring,
        pytest.raises(KeyRingError, match="passphrase was changed by another process"),
    ):
        ring.change_passphrase("the second new passphrase", FAST)
    KeyRing.unlock(path, passphrase="the first new passphrase").close()
    KeyRing.recover(path, shown[0], "a recovered passphrase", FAST).close()


def test_a_ring_made_meanwhile_by_another_process_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keys.db"
    with made(tmp_path) as ring:
        fingerprint_before = ring.store_key_fingerprint
    # As if the other process made it just after this one looked.
    real = Path.exists
    monkeypatch.setattr(Path, "exists", lambda p: False if p == path else real(p))
    with pytest.raises(KeyRingError, match="has a key ring already"):
        KeyRing.create(path, passphrase="another passphrase here", params=FAST)
    monkeypatch.undo()
    with KeyRing.unlock(path, passphrase=PASSPHRASE) as ring:
        assert ring.store_key_fingerprint == fingerprint_before
    assert [p.name for p in tmp_path.iterdir()] == ["keys.db"]  # no draft left


def disk_writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """What is flushed to the disk (``fsync``: the file or directory, by path) and named
    (``link``, ``replace``: from, to), in order, from now on."""
    done: list[tuple[str, ...]] = []
    fsync, link, replace = os.fsync, os.link, os.replace

    def flushed(fd: int) -> None:
        done.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        fsync(fd)

    def linked(source: Any, target: Any, *args: Any, **kwargs: Any) -> None:
        done.append(("link", str(source), str(target)))
        link(source, target, *args, **kwargs)

    def replaced(source: Any, target: Any, *args: Any, **kwargs: Any) -> None:
        done.append(("replace", str(source), str(target)))
        replace(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "fsync", flushed)
    monkeypatch.setattr(os, "link", linked)
    monkeypatch.setattr(os, "replace", replaced)
    return done


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names open files by /proc")
def test_a_new_key_file_and_key_ring_are_on_the_disk_before_they_are_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A key file lost or empty after a power cut, with the ring locked by it alone,
    # would leave every sealed field locked for good.
    key_file, ring_file = tmp_path / "elsewhere" / "pjai.key", tmp_path / "data" / "keys.db"
    done = disk_writes(monkeypatch)
    KeyRing.create(ring_file, key_file=key_file).close()
    monkeypatch.undo()
    named = [step for step in done if step[0] != "fsync" and step[-1] == str(key_file)]
    assert len(named) == 1  # written whole beside it, then named
    temporary = named[0][1]
    at = done.index(named[0])
    assert ("fsync", temporary) in done[:at]  # its bytes on the disk before its name
    assert ("fsync", str(key_file.parent)) in done[at:]  # its name on the disk
    linked = [step for step in done if step[0] != "fsync" and step[-1] == str(ring_file)]
    assert ("fsync", str(ring_file.parent)) in done[done.index(linked[0]) :]
    assert sorted(p.name for p in key_file.parent.iterdir()) == ["pjai.key"]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    KeyRing.unlock(ring_file, key_file=key_file).close()


def test_a_key_file_that_cannot_be_written_is_named(tmp_path: Path) -> None:
    where = tmp_path / "a file"
    where.write_text("not a directory\n")
    with pytest.raises(KeyRingError, match=r"cannot write the key file .*pjai\.key"):
        KeyRing.create(tmp_path / "keys.db", key_file=where / "pjai.key")
    assert not (tmp_path / "keys.db").exists()


@pytest.mark.skipif(os.name != "posix", reason="file modes")
def test_the_journal_beside_the_ring_is_as_private_as_the_ring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite gives a journal the mode of its database: keys.db is made private at every
    # opening (a copy made by hand may be readable by others), before anything is
    # written, so the journal that holds a transaction's old pages is private too.
    seen: list[dict[str, int]] = []
    connect = keys.connect

    def watched(path: Path) -> apsw.Connection:
        conn = connect(path)

        def modes() -> bool:
            seen.append({p.name: stat.S_IMODE(p.stat().st_mode) for p in path.parent.iterdir()})
            return False  # let the commit go on

        conn.set_commit_hook(modes)
        return conn

    monkeypatch.setattr(keys, "connect", watched)
    before = os.umask(0o022)
    try:
        made(tmp_path).close()
        (tmp_path / "keys.db").chmod(0o644)  # as `cp` from a backup leaves it
        with KeyRing.unlock(tmp_path / "keys.db", passphrase=PASSPHRASE) as ring:
            ring.rotate("p1")
            ring.erase("p1")
    finally:
        os.umask(before)
    journals = [m for modes in seen for name, m in modes.items() if name.endswith("-journal")]
    assert journals  # seen while a transaction was open
    assert set(journals) == {0o600}
    assert {m for modes in seen for m in modes.values()} == {0o600}


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "pjai.key"
    with made(tmp_path) as ring:
        ring.add_key_file(key_file)
    key_file.chmod(0o644)
    with pytest.raises(KeyRingError, match=r"can be read by other users \(mode 0o644\)"):
        KeyRing.unlock(tmp_path / "keys.db", key_file=key_file)


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"not a database at all" * 100, "is damaged"), (b"", "is not a key ring this PJai reads")],
)
def test_a_damaged_or_foreign_key_ring_is_named_and_left_as_it_was(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "keys.db"
    path.write_bytes(content)
    with pytest.raises(KeyRingError, match=problem):
        KeyRing.unlock(path, passphrase=PASSPHRASE)
    assert path.read_bytes() == content


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"not a database at all" * 100, "is damaged"), (b"", "is not a key ring")],
)
def test_a_damaged_ring_is_named_when_nothing_is_given_to_unlock_it(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    # Without a passphrase or key file the ring's fingerprint is read to look in the OS
    # keyring: a damaged file is said in words there too.
    data = DataDir(tmp_path / "data", environ={})
    init_security(data, passphrase=PASSPHRASE, params=FAST)
    data.keys_path.write_bytes(content)
    with pytest.raises(KeyRingError, match=problem):
        data.key_ring()
    report = security_status(data)
    assert report.locked_because is not None
    assert problem in report.locked_because


def test_a_ring_damaged_past_what_unlocking_reads_is_named_when_used(tmp_path: Path) -> None:
    path = tmp_path / "keys.db"
    with made(tmp_path) as ring:
        for n in range(300):  # the data keys fill pages past the locks'
            ring.current(f"persona-{n}")
    damaged = bytearray(path.read_bytes())
    for page in range(3, len(damaged) // 4096 - 2):
        damaged[page * 4096 + 100 : page * 4096 + 140] = b"\xff" * 40
    path.write_bytes(damaged)
    with KeyRing.unlock(path, passphrase=PASSPHRASE) as ring:
        with pytest.raises(KeyRingError, match=r"keys\.db is damaged .*restore it from a backup"):
            ring.scopes()
        with pytest.raises(KeyRingError, match=r"keys\.db is damaged"):
            absorb(ring, [], [])


def test_the_status_of_a_ring_that_did_not_unlock_says_why(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data", environ={"PJAI_PASSPHRASE": "not the passphrase!"})
    init_security(data, passphrase=PASSPHRASE, params=FAST)
    report = security_status(data)
    assert (report.encrypted, report.unlocked) == (True, False)
    assert report.locked_because is not None
    assert "does not unlock this key ring" in report.locked_because


def _format(path: Path) -> str:
    conn = apsw.Connection(str(path))
    try:
        return str(conn.execute("SELECT value FROM meta WHERE name = 'format'").get)
    finally:
        conn.close()


def test_a_ring_that_holds_lineages_is_refused_by_a_pjai_from_before_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A PJai from before lineages reads format 1 only: it would not open their keys,
    # would make keys without one and erase every lineage of an id.
    with made(tmp_path) as ring:
        ring.start("p1")
    assert _format(tmp_path / "keys.db") == "2"
    with monkeypatch.context() as older:
        older.setattr(keys, "FORMAT", "1")
        older.setattr(keys, "READS", ("1",), raising=False)
        with pytest.raises(KeyRingError, match=r"is not a key ring this PJai reads .*format '2'"):
            KeyRing.unlock(tmp_path / "keys.db", passphrase=PASSPHRASE)


@pytest.mark.parametrize("found", ["3", "a newer one"])
def test_a_key_ring_of_a_format_this_pjai_does_not_know_is_refused_naming_it(
    tmp_path: Path, found: str
) -> None:
    path = tmp_path / "keys.db"
    with made(tmp_path):
        pass
    conn = apsw.Connection(str(path))
    conn.execute("UPDATE meta SET value = ? WHERE name = 'format'", (found,))
    conn.close()
    before = path.read_bytes()
    with pytest.raises(KeyRingError, match=f"is not a key ring this PJai reads .*format '{found}'"):
        KeyRing.unlock(path, passphrase=PASSPHRASE)
    assert path.read_bytes() == before
