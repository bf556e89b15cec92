"""The audit trail says a plugin wrote what its run caused: those events name the
plugin (``plugin:NAME@VERSION``) as their session, with the store on or off."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from pjai.app import Memories, Personas
from pjai.app.plugins import plugin_registry, run_plugin
from pjai.app.subject import export_subject
from pjai.hybrid import HybridDatabaseManager
from pjai.schema.records import EventRecord
from tests.plugins.test_sandbox import installed, plugin


def _added(manager: HybridDatabaseManager) -> dict[str, str]:
    """The session of each ``v1.MemoryAdded`` of the log, by the memory's content."""
    records: list[EventRecord]
    if manager.store is not None:
        records = [e.record for e in manager.store.events()]
    else:
        records = list(manager.shards.journal())
    found = {}
    for record in records:
        if record.name == "v1.MemoryAdded":
            args = json.loads(bytes(record.args))
            found[args["content"]] = record.session_id
    return found


@pytest.mark.parametrize("store", ["on", "off"])
def test_what_a_plugin_adds_names_the_plugin_in_the_audit_trail(tmp_path: Path, store: str) -> None:
    environ = {} if store == "on" else {"PJAI_USE_LIVESTORE": "false"}
    with HybridDatabaseManager.open(tmp_path / "data", environ=environ) as manager:
        assert manager.use_livestore == (store == "on")
        ada = Personas(manager).create("Ada").id
        Memories(manager).add(ada, "mine")
        registry = plugin_registry(tmp_path / "data")
        code = "return api.add_memory('theirs')"
        name = installed(registry, plugin(tmp_path, "scribe", code, ["memories:add"]))
        run_plugin(registry, manager, name, ada)
        Memories(manager).add(ada, "mine again")
        sessions = _added(manager)
        assert sessions["theirs"] == "plugin:scribe@1.0"
        assert sessions["mine"] == sessions["mine again"] != "plugin:scribe@1.0"
        if store == "on":
            export = export_subject(manager, ada, tmp_path / "ada.zip")
            with zipfile.ZipFile(export.path) as archive:
                trail = json.loads(archive.read("audit-trail.json"))
            assert "plugin:scribe@1.0" in {e["session_id"] for e in trail}
