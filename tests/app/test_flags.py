"""Setting a flag writes the flags file and leaves a record in the event log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pjai.app import DataDir, checkup, config_changes, flag_states, set_flag
from pjai.errors import ConfigError
from pjai.hybrid import FLAGS
from pjai.hybrid.flags import Flags
from pjai.schema import PersonaCreated
from tests.helpers import at_once


def changes(data: DataDir) -> list[tuple[str, object, object, str]]:
    with data.open() as manager:
        return [(c.key, c.old, c.new, c.source) for c in config_changes(manager)]


def test_switching_the_store_off_and_on_is_recorded_either_way(data: DataDir) -> None:
    with data.open() as manager:
        manager.commit(PersonaCreated(persona_id="p1", name="Ada"))
    off = set_flag(data, "use_livestore", "false", source="test")
    assert (off.state.value, off.state.source, off.old, off.recorded) == (False, "file", True, True)
    with data.open() as manager:
        assert manager.store is None  # read from SQL's journal
        (change,) = config_changes(manager)
        assert (change.key, change.old, change.new) == ("flags.use_livestore", True, False)
        assert change.client_id == manager.identity.client_id
    on = set_flag(data, "use_livestore", True, source="test")
    assert (on.state.value, on.old, on.recorded) == (True, False, True)
    expected = [
        ("flags.use_livestore", True, False, "test"),
        ("flags.use_livestore", False, True, "test"),
    ]
    assert changes(data) == expected  # the store took the first from the journal
    with data.open() as manager:
        assert manager.verify().equal


def test_setting_the_value_the_file_holds_changes_nothing(data: DataDir) -> None:
    assert set_flag(data, "use_livestore", False).recorded
    again = set_flag(data, "use_livestore", False)
    assert (again.recorded, again.old, again.state.value) == (False, False, False)
    assert len(changes(data)) == 1


def test_the_first_record_of_a_synced_directory_is_in_its_log(data: DataDir) -> None:
    set_flag(data, "sync", True, source="test")
    with data.open() as manager:
        assert manager.syncing
        assert manager.store is not None
        assert manager.store.pending_count == 1  # pushed at the first connect
        assert [c.key for c in config_changes(manager)] == ["flags.sync"]


def test_a_change_that_cannot_be_recorded_is_undone(data: DataDir) -> None:
    with data.open():
        pass  # a standalone store now exists
    with pytest.raises(ConfigError, match="made standalone") as raised:
        set_flag(data, "sync", True)
    assert "flag sync was left false: its change was not recorded" in raised.value.__notes__
    assert data.flags().stored("sync") is None
    assert not data.flags_path.exists()  # as it was
    set_flag(data, "use_livestore", False)
    with pytest.raises(ConfigError, match="needs the reactive store"):
        set_flag(data, "sync", True)
    assert data.flags().stored("sync") is None
    assert [key for key, *_ in changes(data)] == ["flags.use_livestore"]


def test_bad_names_and_values_are_refused_before_anything_is_written(data: DataDir) -> None:
    with pytest.raises(ConfigError, match="unknown flag 'nonsense'; flags are use_livestore"):
        set_flag(data, "nonsense", True)
    with pytest.raises(ConfigError, match="use_livestore='maybe' is not true or false"):
        set_flag(data, "use_livestore", "maybe")
    assert not data.flags_path.exists()


def test_the_environment_still_wins_and_the_file_change_is_recorded(data: DataDir) -> None:
    env = DataDir(data.path, environ={**(data.environ or {}), "PJAI_USE_LIVESTORE": "true"})
    change = set_flag(env, "use_livestore", False)
    assert (change.state.value, change.state.source, change.recorded) == (True, "environment", True)
    assert data.flags().stored("use_livestore") is False
    assert changes(env) == [("flags.use_livestore", True, False, "api")]


def test_flags_no_feature_reads_are_gone_and_a_file_naming_them_still_loads(
    data: DataDir,
) -> None:
    assert set(FLAGS) == {"use_livestore", "sync"}
    data.path.mkdir(parents=True)
    old = {"reactive_explorer": False, "audit_trail": True, "use_livestore": False}
    data.flags_path.write_text(json.dumps(old))
    report = flag_states(data)
    assert report.unknown == ["audit_trail", "reactive_explorer"]
    assert {s.name: s.value for s in report.states} == {"use_livestore": False, "sync": False}
    set_flag(data, "use_livestore", True)
    kept = json.loads(data.flags_path.read_text())
    assert kept == {**old, "use_livestore": True}  # what another version wrote stays


def test_unset_brings_the_default_back(tmp_path: Path) -> None:
    flags = Flags(tmp_path / "flags.json", environ={})
    flags.set("sync", True)
    assert flags.stored("sync") is True
    state = flags.unset("sync")
    assert (state.value, state.source, flags.stored("sync")) == (False, "default", None)


def test_a_synced_directory_keeps_its_store_and_its_mode(data: DataDir) -> None:
    """Switching the store or the sync off in a synced directory is refused, with the
    reason, and every command still works afterwards."""
    set_flag(data, "sync", True)
    with pytest.raises(ConfigError, match="the sync flag needs the reactive store"):
        set_flag(data, "use_livestore", False)
    with pytest.raises(ConfigError, match="was made to sync"):
        set_flag(data, "sync", False)
    assert (data.flags()["use_livestore"], data.flags()["sync"]) == (True, True)
    assert checkup(data).health.store.status == "ok"
    assert [key for key, *_ in changes(data)] == ["flags.sync"]


def test_flags_set_at_once_each_leave_a_whole_file(tmp_path: Path) -> None:
    # Each writer writes a temporary file of its own: one shared by all was renamed
    # away under the others ("No such file or directory").
    path = tmp_path / "flags.json"

    def flip(i: int) -> None:
        flags = Flags(path, environ={})
        for n in range(30):
            flags.set("sync", (i + n) % 2 == 0)

    assert at_once(6, flip) == []
    assert set(json.loads(path.read_text())) == {"sync"}
    assert [p.name for p in tmp_path.iterdir()] == ["flags.json"]


def test_a_flags_file_removed_as_it_is_read_reads_as_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process unsets the file's last flag between the look at the file and its
    # read: the reader sees the defaults, as after the removal, not an error.
    path = tmp_path / "flags.json"
    Flags(path).set("sync", True)
    reader = Flags(path)
    Flags(path).set("sync", False)  # a newer file than the reader read
    stat, looks = Path.stat, []

    def removed_after_the_look(self: Path, *args: object, **kwargs: object) -> object:
        found = stat(self, *args, **kwargs)
        if self == path and not looks:
            looks.append(self)
            path.unlink()  # as `unset` of the last flag does
        return found

    monkeypatch.setattr(Path, "stat", removed_after_the_look)
    assert reader.refresh()
    monkeypatch.undo()
    assert reader.stored("sync") is None
    assert reader.state("sync").source == "default"
