"""A plugin meets the persona's privacy: restricted memories are withheld unless granted,
and its reads and adds follow the persona's switches, as exports and conversations do."""

from __future__ import annotations

from pathlib import Path

from pjai.app import Memories, Personas
from pjai.app.plugins import run_plugin
from pjai.hybrid import HybridDatabaseManager
from pjai.plugins import Registry
from pjai.schema.selection import MemoryFilter
from tests.plugins.test_sandbox import installed, plugin

Setting = tuple[Registry, HybridDatabaseManager, str]

READ = """
try:
    return [m["content"] for m in api.memories(limit=50)]
except PermissionError as refused:
    return str(refused)
"""


def test_restricted_memories_are_read_only_with_their_own_capability(
    setting: Setting, tmp_path: Path
) -> None:
    registry, manager, ada = setting
    card = Memories(manager).add(ada, "my card is 4111 1111 1111 1111").memory
    assert "restricted" in card.tags
    for n in range(20):  # more than a page after it
        Memories(manager).add(ada, f"restricted note {n}: mail me at a{n}@example.org")
    reader = installed(registry, plugin(tmp_path, "reader", READ, ["memories:read"]))
    assert run_plugin(registry, manager, reader, ada).result == ["likes green tea"]
    granted = ["memories:read", "memories:read-restricted"]
    trusted = installed(registry, plugin(tmp_path, "trusted", READ, granted))
    read = run_plugin(registry, manager, trusted, ada).result
    assert len(read) == 22
    assert card.content in read


def test_a_persona_that_allows_no_export_refuses_plugin_reads(
    setting: Setting, tmp_path: Path
) -> None:
    registry, manager, ada = setting
    Personas(manager).update(ada, sets=["privacy.export_allowed=false"])
    name = installed(registry, plugin(tmp_path, "reader", READ, ["memories:read"]))
    done = run_plugin(registry, manager, name, ada)
    assert done.result.startswith(f"Ada ({ada}) does not allow exports")
    assert "(privacy.export_allowed is off): plugin reader may not read its memories" in (
        done.result
    )
    assert done.refused == {"memories": 1}


def test_a_persona_with_data_collection_off_refuses_plugin_adds(
    setting: Setting, tmp_path: Path
) -> None:
    registry, manager, ada = setting
    Personas(manager).update(ada, sets=["privacy.data_collection=false"])
    code = (
        "try:\n    api.add_memory('noted')\n"
        "except PermissionError as refused:\n    return str(refused)"
    )
    name = installed(registry, plugin(tmp_path, "noter", code, ["memories:add"]))
    done = run_plugin(registry, manager, name, ada)
    assert done.result.startswith(
        f"Ada ({ada}) has data collection off (privacy.data_collection): "
        "plugin noter may not add memories to it"
    )
    assert done.added == []
    assert len(Memories(manager).list(MemoryFilter(persona_id=ada))) == 1
