"""What a plugin's run writes: within its limits, never room made by deleting the user's
memories, and every memory it added, moved or was refused named in the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pjai.app import DataDir, Memories, Personas
from pjai.app.plugins import run_plugin
from pjai.cli import app as cli
from pjai.hybrid import HybridDatabaseManager
from pjai.plugins import PluginError, Registry
from pjai.schema.selection import MemoryFilter
from tests.plugins.test_sandbox import installed, plugin

Setting = tuple[Registry, HybridDatabaseManager, str]

FLOOD = """
added = []
for i in range(25):
    try:
        added.append(api.add_memory("spam %d" % i, importance=1.0))
    except PermissionError as refused:
        return [len(added), str(refused)]
return [len(added), None]
"""


def test_a_plugin_never_makes_room_by_deleting_the_user_s_memories(
    setting: Setting, tmp_path: Path
) -> None:
    registry, manager, _ = setting
    cy = Personas(manager).create("Cy")
    Personas(manager).update(cy.id, sets=["memory.max_memories=20"])
    mine = Memories(manager).add(cy.id, "my mother's birthday is 3 May", importance=0.2)
    name = installed(registry, plugin(tmp_path, "flood", FLOOD, ["memories:add"]))
    done = run_plugin(registry, manager, name, cy.id)
    count, refused = done.result
    assert count == 19
    assert f"persona {cy.id} holds its memory.max_memories" in refused
    assert "does not make room by deleting" in refused
    assert done.refused == {"add_memory": 1}
    assert len(done.added) == 19
    assert [m for m in done.moved if m.action == "deleted"] == []
    assert Memories(manager).get(mine.memory.id).deleted_at is None
    assert len(Memories(manager).list(MemoryFilter(persona_id=cy.id))) == 20


def test_a_run_adds_no_more_memories_than_its_limit(setting: Setting, tmp_path: Path) -> None:
    registry, manager, ada = setting
    source = plugin(tmp_path, "adder", FLOOD, ["memories:add"], memories=3)
    done = run_plugin(registry, manager, installed(registry, source), ada)
    count, refused = done.result
    assert count == 3
    assert "this run added 3 memories, its limit (limits.memories in plugin.json)" in refused
    assert len(Memories(manager).list(MemoryFilter(persona_id=ada))) == 4  # 1 before


def test_a_failed_run_says_which_memories_it_added_and_that_they_stay(
    setting: Setting, tmp_path: Path
) -> None:
    registry, manager, ada = setting
    code = "for i in range(7):\n    api.add_memory('partial %d' % i)\nraise RuntimeError('boom')"
    name = installed(registry, plugin(tmp_path, "partial", code, ["memories:add"]))
    with pytest.raises(PluginError) as raised:
        run_plugin(registry, manager, name, ada)
    added = [
        m.id
        for m in Memories(manager).list(MemoryFilter(persona_id=ada), limit=50)
        if m.content.startswith("partial")
    ]
    said = str(raised.value)
    assert said.startswith("plugin partial failed: RuntimeError: boom; it had added 7 memories (")
    assert said.endswith(", and 2 more), which stay")
    assert sum(i in said for i in added) == 5


def test_a_stopped_run_says_what_it_added(setting: Setting, tmp_path: Path) -> None:
    registry, manager, ada = setting
    code = "api.add_memory('one')\nwhile True:\n    pass"
    name = installed(registry, plugin(tmp_path, "spinner", code, ["memories:add"], cpu_s=1))
    with pytest.raises(
        PluginError, match=r"of CPU: stopped; it had added 1 memory \(.+\), which stays"
    ):
        run_plugin(registry, manager, name, ada)


def test_refused_calls_are_counted_and_shown(tmp_path: Path) -> None:
    runner = CliRunner()
    where = ["--data-dir", str(tmp_path / "data")]
    with DataDir(tmp_path / "data").open() as manager:
        Personas(manager).create("Ada", activate=True)
    code = (
        "for _ in range(20):\n    try:\n        api.memories(500)\n"
        "    except PermissionError:\n        pass\nreturn 'all fine'"
    )
    source = plugin(tmp_path, "sneak", code, [])
    for command in (["install", str(source)], ["enable", "sneak"]):
        assert runner.invoke(cli, ["plugin", *command, *where]).exit_code == 0
    ran = runner.invoke(cli, ["plugin", "run", "sneak", *where])
    assert ran.exit_code == 0, ran.output
    assert "refused calls: memories 20" in ran.output
    ran = runner.invoke(cli, ["plugin", "run", "sneak", "--json", *where])
    assert json.loads(ran.output)["refused"] == {"memories": 20}


def test_a_run_names_the_memories_it_added_and_what_its_adds_moved(tmp_path: Path) -> None:
    runner = CliRunner()
    where = ["--data-dir", str(tmp_path / "data")]
    with DataDir(tmp_path / "data").open() as manager:
        ada = Personas(manager).create("Ada", activate=True)
        Personas(manager).update(
            ada.id,
            sets=[
                "memory.capacities.hot=1",
                "memory.capacities.warm=1",
                "memory.capacities.cold=100",
            ],
        )
        Memories(manager).add(ada.id, "mine", importance=0.1)
    code = "return [api.add_memory('theirs %d' % i, importance=0.9) for i in range(7)]"
    source = plugin(tmp_path, "mover", code, ["memories:add"])
    for command in (["install", str(source)], ["enable", "mover"]):
        assert runner.invoke(cli, ["plugin", *command, *where]).exit_code == 0
    ran = runner.invoke(cli, ["plugin", "run", "mover", "--json", *where])
    done = json.loads(ran.output)
    assert done["added"] == done["result"]
    assert done["moved"]
    assert {m["action"] for m in done["moved"]} == {"moved"}
    shown = runner.invoke(cli, ["plugin", "run", "mover", *where]).output
    assert "added 7 memory(ies): " in shown
    assert "… and 2 more (--json lists every one)" in shown
    assert "The optimizer then changed" in shown
