"""The store key kept in the OS keyring: a device opens its directory without the
passphrase once it is remembered, and needs it again once forgotten. The tests put an
in-memory backend in place of the system's (there is none on a server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.errors import NoKeyringError, PasswordDeleteError
from typer.testing import CliRunner

from pjai.app import DataDir, Personas, init_security
from pjai.app.security import forget_key, remember_key, security_status
from pjai.cli import app as cli
from pjai.errors import KeyRingError
from pjai.security.oskeyring import SERVICE, recall
from tests.security.test_keys import FAST, PASSPHRASE


class NoKeyring(KeyringBackend):
    """What a server without a keyring service has: every call fails."""

    priority = 1

    def get_password(self, service: str, username: str) -> str | None:
        raise NoKeyringError("no keyring here")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise NoKeyringError("no keyring here")

    def delete_password(self, service: str, username: str) -> None:
        raise NoKeyringError("no keyring here")


class MemoryKeyring(KeyringBackend):
    """A keyring that keeps its entries in a dictionary."""

    priority = 1

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise PasswordDeleteError("not there")


@pytest.fixture
def os_keyring() -> Iterator[MemoryKeyring]:
    before = keyring.get_keyring()
    memory = MemoryKeyring()
    keyring.set_keyring(memory)
    try:
        yield memory
    finally:
        keyring.set_keyring(before)


def test_a_remembered_key_opens_the_directory_without_the_passphrase(
    tmp_path: Path, os_keyring: MemoryKeyring
) -> None:
    data = DataDir(tmp_path / "data", environ={"PJAI_PASSPHRASE": PASSPHRASE})
    init_security(data, passphrase=PASSPHRASE, params=FAST)
    with data.open() as manager:
        ada = Personas(manager).create("Ada", description="kept words")
    locked = DataDir(data.path, environ={})
    with pytest.raises(KeyRingError, match="pjai security remember"):
        locked.open()
    report = remember_key(data)
    assert report.remembered
    ((service, name),) = os_keyring.entries
    assert (service, name) == (SERVICE, f"store key {report.store_key}")
    assert PASSPHRASE not in str(os_keyring.entries)
    with locked.open() as manager:  # no passphrase given: the OS keyring opens it
        assert Personas(manager).get(ada.id).description == "kept words"
    assert security_status(locked).remembered
    assert forget_key(locked)
    assert not forget_key(locked)
    with pytest.raises(KeyRingError, match="is encrypted: give its passphrase"):
        DataDir(data.path, environ={}).open()


def test_an_entry_that_is_not_the_ring_s_key_is_not_used(
    tmp_path: Path, os_keyring: MemoryKeyring
) -> None:
    data = DataDir(tmp_path / "data", environ={"PJAI_PASSPHRASE": PASSPHRASE})
    report = init_security(data, passphrase=PASSPHRASE, params=FAST)
    assert report.store_key is not None
    os_keyring.set_password(SERVICE, f"store key {report.store_key}", "bm90IHRoZSBrZXk=")
    assert recall(report.store_key) is None
    with pytest.raises(KeyRingError):
        DataDir(data.path, environ={}).open()


def test_without_an_os_keyring_remember_says_so(tmp_path: Path) -> None:
    before = keyring.get_keyring()
    keyring.set_keyring(NoKeyring())
    try:
        data = DataDir(tmp_path / "data", environ={"PJAI_PASSPHRASE": PASSPHRASE})
        init_security(data, passphrase=PASSPHRASE, params=FAST)
        with pytest.raises(KeyRingError, match="no OS keyring"):
            remember_key(data)
        assert not security_status(data).remembered
    finally:
        keyring.set_keyring(before)


def test_the_commands_remember_and_forget(
    tmp_path: Path, os_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    where = ["--data-dir", str(tmp_path / "data")]
    monkeypatch.setenv("PJAI_PASSPHRASE", PASSPHRASE)
    init_security(DataDir(tmp_path / "data"), passphrase=PASSPHRASE, params=FAST)
    runner = CliRunner()
    done = runner.invoke(cli, ["security", "remember", *where])
    assert done.exit_code == 0, done.output
    assert "is in the OS keyring" in done.output
    status = runner.invoke(cli, ["security", "status", *where])
    assert "kept in the OS keyring" in status.output
    monkeypatch.delenv("PJAI_PASSPHRASE")
    gone = runner.invoke(cli, ["security", "forget", *where])
    assert "Removed the store key" in gone.output
    assert os_keyring.entries == {}
