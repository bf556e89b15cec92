"""Two imports into one directory at once, or an import and a command opening it: the
second is refused at once, and never removes what the first made."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from pjai.app import DataDir
from pjai.errors import ConfigError
from pjai.hybrid import HybridDatabaseManager
from pjai.hybrid.archive import ImportResult, export_archive, import_archive, restore
from tests.helpers import WAIT_S, at_once, held_in_a_thread, persona
from tests.hybrid.test_archive import fill, store_of


def running(target: Path) -> str:
    """What refuses a second import or backup into ``target`` while one runs."""
    return f"another import or backup into {re.escape(str(target))} is running"


def in_use(target: Path) -> str:
    """What refuses to open ``target`` while an import or backup goes into it."""
    return f"an import or backup into {re.escape(str(target))} is running"


@pytest.fixture
def archive(manager: HybridDatabaseManager, tmp_path: Path) -> Path:
    """An archive of a filled directory."""
    fill(manager)
    file = tmp_path / "backup.zip"
    export_archive(manager, file)
    return file


def test_a_second_import_into_the_same_new_directory_is_refused_at_once(
    manager: HybridDatabaseManager, archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first has found the directory empty; were the second let in, one of them
    # would fail, and take away as its own everything the other had made.
    target = tmp_path / "restored"
    first = lambda: import_archive(target, archive, environ={})  # noqa: E731
    with held_in_a_thread(monkeypatch, restore.Made, "before", first) as outcome:
        with pytest.raises(ConfigError, match=running(target)):
            import_archive(target, archive, environ={})
        with pytest.raises(ConfigError, match=in_use(target)):
            DataDir(target, environ={}).open()  # `pjai persona create` on the same path
    assert isinstance(outcome.get("done"), ImportResult), outcome
    with HybridDatabaseManager.open(target, environ={}) as restored:
        assert store_of(restored).state_hash() == store_of(manager).state_hash()


def test_an_import_is_refused_while_a_command_makes_the_directory(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `pjai persona create` about to make the directory's files: an import that found
    # it empty would fail on them, and remove them and the persona with them.
    target = DataDir(tmp_path / "new", environ={})

    def create() -> None:
        with target.open() as manager:
            manager.commit(persona("p1"))

    making = held_in_a_thread(monkeypatch, HybridDatabaseManager, "open", create, after=False)
    with making as outcome, pytest.raises(ConfigError, match=running(target.path)):
        import_archive(target.path, archive, environ={})
    assert outcome == {"done": None}
    with target.open() as manager:
        assert [row.id for row in store_of(manager).query("SELECT id FROM personas")] == ["p1"]


def test_an_import_in_another_process_holds_the_directory_until_it_ends(
    manager: HybridDatabaseManager, archive: Path, tmp_path: Path
) -> None:
    target = tmp_path / "restored"
    with subprocess.Popen(
        [sys.executable, "-c", (
            "import sys\n"
            "from pjai.hybrid.archive import import_archive, restore\n"
            "before = restore.Made.before\n"
            "def held(*args, **kwargs):\n"
            "    made = before(*args, **kwargs)\n"
            "    print('inside', flush=True)\n"
            "    sys.stdin.readline()\n"
            "    return made\n"
            "restore.Made.before = held\n"
            "import_archive(sys.argv[1], sys.argv[2], environ={})\n"
        ), str(target), str(archive)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as other:  # fmt: skip
        assert other.stdin is not None
        assert other.stdout is not None
        try:
            assert other.stdout.readline() == "inside\n"
            with pytest.raises(ConfigError, match=running(target)):
                import_archive(target, archive, environ={})
            with pytest.raises(ConfigError, match=in_use(target)):
                DataDir(target, environ={}).open()
        finally:
            other.stdin.write("\n")
            other.stdin.close()
        assert other.wait(WAIT_S) == 0
    with HybridDatabaseManager.open(target, environ={}) as restored:
        assert store_of(restored).state_hash() == store_of(manager).state_hash()


def test_of_imports_released_together_one_goes_in_and_the_other_is_refused(
    manager: HybridDatabaseManager, archive: Path, tmp_path: Path
) -> None:
    for round_ in range(3):
        target = tmp_path / f"restored-{round_}"
        raised = at_once(2, lambda _, into=target: import_archive(into, archive, environ={}))
        assert len(raised) == 1, raised
        assert isinstance(raised[0], ConfigError)
        assert re.search(f"{running(target)}|already holds PJai data", str(raised[0]))
        assert not getattr(raised[0], "__notes__", [])  # it took nothing back
        with HybridDatabaseManager.open(target, environ={}) as restored:
            assert store_of(restored).state_hash() == store_of(manager).state_hash()
