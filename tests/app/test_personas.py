"""Personas: settings merged from a file and edits; privacy changes audited."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pjai.app import (
    TEMPLATES,
    DataDir,
    Memories,
    Personas,
    config_changes,
    merge_settings,
    set_flag,
)
from pjai.app.privacy import erase_persona
from pjai.errors import ConfigError, EventValidationError, MaterializationError, QueryError
from pjai.hybrid import HybridDatabaseManager
from pjai.schema import PersonaCreated


def test_settings_merge_a_file_then_edits(tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"privacy": {"analytics": True}, "memory": {"max_memories": 9}}))
    merged = merge_settings(
        {"memory": {"max_memories": 1, "auto_optimize": True}},
        config,
        ["memory.capacities.hot=5", "personality.type=INTJ", 'personality.dominant_traits=["a"]'],
    )
    assert merged == {
        "memory": {"max_memories": 9, "capacities": {"hot": 5}},
        "privacy": {"analytics": True},
        "personality": {"type": "INTJ", "dominant_traits": ["a"]},
    }
    assert merge_settings({}, {"privacy": {"analytics": False}}) == {
        "privacy": {"analytics": False}
    }


@pytest.mark.parametrize(
    ("config", "sets", "message"),
    [
        ({"colour": {}}, [], "the settings must be an object with keys among personality"),
        (None, ["privacy"], "use PATH=VALUE with PATH under personality, memory, privacy"),
        (None, ["privacy.=1"], "use PATH=VALUE"),
        (None, ["memory.x=1", "memory.x.y=2"], "x is not a group of settings"),
        ({"privacy": 5}, ["privacy.analytics=true"], "privacy is not a group of settings"),
    ],
)
def test_bad_settings_are_named(config: object, sets: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        merge_settings({}, config, sets)  # type: ignore[arg-type]


def test_a_settings_file_that_is_not_json_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ConfigError, match=r"bad\.json is not valid JSON"):
        merge_settings({}, bad)
    with pytest.raises(ConfigError, match="cannot read"):
        merge_settings({}, tmp_path / "missing.json")


def test_lifecycle(manager: HybridDatabaseManager) -> None:
    personas = Personas(manager)
    ada = personas.create("Ada", persona_id="ada", activate=True, sets=["memory.max_memories=9"])
    assert (ada.id, ada.is_active, ada.memory.max_memories) == ("ada", True, 9)
    personas.create("Basil", persona_id="basil")
    assert [p.name for p in personas.list()] == ["Ada", "Basil"]
    assert personas.activate("basil").is_active
    assert personas.get("ada").is_active is False
    renamed = personas.update("basil", name="Basil II", style="terse").persona
    assert (renamed.name, renamed.communication_style) == ("Basil II", "terse")
    report = personas.report("basil")
    assert (report.persona.id, report.health.memories) == ("basil", 0)
    deleted = personas.delete("basil")
    assert deleted is not None
    assert deleted.deleted_at is not None
    with pytest.raises(QueryError, match="no persona 'basil'"):
        personas.get("basil")
    assert [p.id for p in personas.list(include_deleted=True)] == ["ada", "basil"]
    with pytest.raises(ConfigError, match="nothing to change: give --name"):
        personas.update("ada")
    personas.update("ada", sets=["memory.max_memories=500"])
    with pytest.raises(ConfigError, match=r"'Ada' already has memory\.max_memories=500"):
        personas.update("ada", sets=["memory.max_memories=500"])
    with pytest.raises(EventValidationError, match=r"v1\.PersonaUpdated"):
        personas.update("ada", sets=["memory.max_memories=0"])
    # A value of the wrong type is refused, not taken for the one the persona has.
    with pytest.raises(EventValidationError, match=r"memory\.max_memories': expected a whole"):
        personas.update("ada", sets=["memory.max_memories=500.0"])
    with pytest.raises(EventValidationError, match=r"privacy\.export_allowed': expected true"):
        personas.update("ada", sets=["privacy.export_allowed=1"])  # it is true
    personas.update("ada", sets=["memory.importance_threshold=1"])
    with pytest.raises(ConfigError, match=r"already has memory\.importance_threshold=1\.0"):
        personas.update("ada", sets=["memory.importance_threshold=1.0"])  # a number: the same
    with pytest.raises(ConfigError, match=r"'\\ud800' is not valid Unicode text"):
        personas.update("ada", sets=['memory.retention_action="\\ud800"'])
    assert config_changes(manager) == []  # no privacy setting changed


def test_a_size_limit_below_what_the_persona_keeps_is_said(
    manager: HybridDatabaseManager,
) -> None:
    # Important memories are never deleted for space: a limit below them is taken, and
    # the change says the persona stays over it rather than nothing at all.
    personas = Personas(manager)
    personas.create("Ada", persona_id="ada")
    memories = Memories(manager)
    for memory_id in ("a", "b", "c"):
        memories.add("ada", f"note {memory_id}", memory_id=memory_id, importance=0.9)
    memories.add("ada", "unimportant", memory_id="d", importance=0.1)
    lowered = personas.update("ada", sets=["memory.max_memories=2"])
    assert [(m.memory_id, m.reason) for m in lowered.moves if m.action == "deleted"] == [
        ("d", "space")
    ]
    assert lowered.notes == [
        "Ada holds 3 live memories, 1 over its memory.max_memories of 2: pinned memories "
        "and those of importance 0.3 or more are never deleted for space"
    ]
    assert personas.update("ada", sets=["memory.max_memories=3"]).notes == []
    assert personas.update("ada", name="Ada II").notes == []


@pytest.mark.parametrize("store", ["on", "off"])
def test_a_privacy_change_is_recorded_with_old_and_new_values(data: DataDir, store: str) -> None:
    if store == "off":
        set_flag(data, "use_livestore", False)
    with data.open() as manager:
        personas = Personas(manager, source="test")
        personas.create("Ada", persona_id="ada", sets=["privacy.export_allowed=false"])
        personas.create("Basil", persona_id="basil")
        changed = personas.update(
            "ada", sets=["privacy.analytics=true", "privacy.export_allowed=true"]
        ).persona
        assert (changed.privacy.analytics, changed.privacy.export_allowed) == (True, True)
        personas.update("ada", name="Ada II")  # not a privacy change
        personas.update("basil", sets=["privacy.data_collection=false"])
    with data.open() as manager:
        assert (manager.store is None) == (store == "off")
        found = config_changes(manager, persona_id="ada")
        everything = config_changes(manager)
    assert [(c.key, c.old, c.new, c.source, c.persona_id) for c in found] == [
        ("privacy.analytics", False, True, "test", "ada"),
        ("privacy.export_allowed", False, True, "test", "ada"),
    ]
    assert [c.key for c in everything][-1] == "privacy.data_collection"
    assert found[0].event_id != found[1].event_id


def test_own_unconfirmed_changes_are_read_back_when_syncing(data: DataDir) -> None:
    set_flag(data, "sync", True)
    with data.open() as manager:
        personas = Personas(manager)
        ada = personas.create("Ada", persona_id="ada")  # pending: SQL has not got it
        assert ada.name == "Ada"
        assert manager.personas.get("ada") is None
        assert personas.update("ada", name="Ada II").persona.name == "Ada II"


def test_a_persona_from_a_template_keeps_what_is_given(manager: HybridDatabaseManager) -> None:
    personas = Personas(manager)
    assert {"assistant", "coach", "writer", "tutor", "companion", "researcher"} <= set(TEMPLATES)
    coach = personas.create("Kim", template_name="coach", sets=["memory.capacities.warm=9"])
    assert coach.description == TEMPLATES["coach"].description
    assert coach.personality.type == "motivator"
    assert (coach.memory.capacities.hot, coach.memory.capacities.warm) == (150, 9)
    writer = personas.create("Wil", template_name="writer", description="Mine", style="")
    assert (writer.description, writer.communication_style) == ("Mine", "")
    assert writer.personality.big_five.openness == 90
    for name in TEMPLATES:  # every template makes a valid persona
        assert personas.create(name, template_name=name).name == name
    with pytest.raises(ConfigError, match="no persona template 'chef': use one of assistant"):
        personas.create("X", template_name="chef")


def test_a_taken_id_is_named_as_a_persona(manager: HybridDatabaseManager) -> None:
    personas = Personas(manager)
    personas.create("Coach", persona_id="coach")
    with pytest.raises(ConfigError, match=r"^a persona with id 'coach' exists$"):
        personas.create("Other", persona_id="coach")
    personas.delete("coach")
    with pytest.raises(ConfigError, match="exists \\(deleted: `pjai persona restore`"):
        personas.create("Other", persona_id="coach")


def test_the_id_of_an_erased_persona_is_not_given_again(
    data: DataDir, manager: HybridDatabaseManager
) -> None:
    # A device with the erasure but not yet the new persona would destroy its keys.
    personas = Personas(manager)
    personas.create("Coach", persona_id="coach")
    erase_persona(data, manager, "coach")
    with pytest.raises(ConfigError, match=r"^the persona with id 'coach' was erased: "):
        personas.create("Other", persona_id="coach")
    assert personas.list(include_deleted=True) == []
    assert personas.create("Other").id != "coach"


def test_deactivate_leaves_no_persona_active(manager: HybridDatabaseManager) -> None:
    personas = Personas(manager)
    personas.create("Ada", persona_id="ada", activate=True)
    assert personas.active() is not None
    assert personas.deactivate("ada").is_active is False
    assert personas.active() is None
    with pytest.raises(QueryError, match="no persona 'nobody'"):
        personas.deactivate("nobody")


def test_restore_brings_back_the_memories_deleted_with_the_persona(
    manager: HybridDatabaseManager,
) -> None:
    personas, memories = Personas(manager), Memories(manager)
    personas.create("Ada", persona_id="ada", activate=True)
    for memory_id in ("kept", "earlier"):
        memories.add("ada", memory_id, memory_id=memory_id)
    memories.delete("earlier")  # deleted before the persona was: stays deleted
    personas.delete("ada")
    with pytest.raises(QueryError, match="no persona 'ada'"):
        personas.get("ada")
    back = personas.restore("ada")
    assert (back.deleted_at, back.is_active) == (None, False)
    assert memories.get("kept").deleted_at is None
    assert memories.get("earlier").deleted_at is not None
    in_sql = manager.memories.get("kept")
    assert in_sql is not None
    assert in_sql.deleted_at is None  # SQL has it back too
    assert manager.verify().equal
    with pytest.raises(QueryError, match="no deleted persona 'ada'"):
        personas.restore("ada")


@pytest.mark.parametrize("store", ["on", "off"])
def test_a_taken_key_is_named_as_the_user_knows_it_on_every_backend(
    data: DataDir, store: str
) -> None:
    if store == "off":
        set_flag(data, "use_livestore", False)  # SQL itself refuses
    with data.open() as manager:
        manager.commit(PersonaCreated(persona_id="coach", name="Coach"))
        with pytest.raises(MaterializationError, match=r"a persona with id 'coach' exists$"):
            manager.commit(PersonaCreated(persona_id="coach", name="Other"))
