"""Plugins of a data directory: install, list, enable, disable, remove, and run one for
a persona, answering its calls only as far as its capabilities go (:mod:`pjai.plugins`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from pjai.app.memories import Memories
from pjai.app.personas import Personas
from pjai.errors import PrivacyError
from pjai.hybrid import HybridDatabaseManager
from pjai.memory.classify import RESTRICTED
from pjai.memory.data_collection import check_collection_allowed
from pjai.memory.optimizer import MemoryMove
from pjai.plugins import (
    InstalledPlugin,
    PluginError,
    PluginRun,
    Registry,
    run_sandboxed,
)
from pjai.schema.records import acting_as
from pjai.schema.selection import MemoryFilter

__all__ = ["plugin_registry", "plugin_session", "run_plugin"]

_ADDABLE = {"name", "summary", "tags", "importance", "type"}
"""The fields of a memory a plugin may set besides its content."""

_MAX_READ = 500
"""The most memories one call of a plugin reads."""
MAX_READ_BYTES = 16_000_000
"""The most text (UTF-8) one ``memories`` answer holds: past it, the answer has fewer
memories than asked for (whole ones, the best first)."""
_PAGE = 16
"""Memories read at a time for an answer: what PJai holds at once stays near the bound."""
_NAMED = 5
"""How many of the memories a failed run added its error names by id."""


def plugin_session(name: str, version: str) -> str:
    """The session the events a run of plugin ``name`` at ``version`` causes carry."""
    return f"plugin:{name}@{version}"


def plugin_registry(data_path: Path) -> Registry:
    """The plugins of the data directory at ``data_path``."""
    return Registry(data_path)


def run_plugin(
    registry: Registry,
    manager: HybridDatabaseManager,
    name: str,
    persona_id: str,
    arguments: dict[str, Any] | None = None,
) -> PluginRun:
    """Run the enabled plugin ``name`` for ``persona_id`` in its sandbox;
    :class:`~pjai.plugins.PluginError` if it is disabled, refused or failed (saying
    which memories it had added: they stay)."""
    plugin = registry.get(name)
    if not plugin.enabled:
        raise PluginError(f"plugin {name} is disabled: `pjai plugin enable {name}` lets it run")
    if plugin.changed:
        raise PluginError(
            f"plugin {name} changed since it was enabled; enable it again "
            f"(`pjai plugin enable {name}`) to grant what it is now"
        )
    memories = Memories(manager)
    memories.list(MemoryFilter(persona_id=persona_id), limit=1)  # NotFoundError: no persona
    calls = _Calls(plugin, memories, persona_id)
    # What the run causes (its adds, the optimizer runs they start) names the plugin as
    # its session in the event log: the audit trail says a plugin wrote it.
    try:
        with acting_as(plugin_session(plugin.manifest.name, plugin.manifest.version)):
            done = run_sandboxed(
                plugin.directory, plugin.manifest, arguments or {}, calls, source=plugin.source
            )
    except PluginError as exc:
        if not calls.added:
            raise
        raise PluginError(f"{exc}; {calls.kept()}") from exc
    return replace(done, added=list(calls.added), moved=list(calls.moved))


class _Calls:
    """Answers one run's calls as far as the plugin's capabilities go, and keeps what
    its adds did: the memories added, those the optimizer then moved or deleted."""

    def __init__(self, plugin: InstalledPlugin, memories: Memories, persona_id: str) -> None:
        self.plugin, self.memories, self.persona_id = plugin, memories, persona_id
        self.granted: set[str] = set(plugin.manifest.capabilities)
        self.added: list[str] = []
        self.moved: list[MemoryMove] = []
        self.written = 0

    def __call__(self, call: str, args: dict[str, Any]) -> Any:
        if call == "memories":
            self._need("memories:read")
            limit = args.get("limit", 50)
            if not isinstance(limit, int) or not 1 <= limit <= _MAX_READ:
                raise PluginError(f"memories(limit=...) takes 1 to {_MAX_READ}")
            self._check_reads_allowed()
            restricted = "memories:read-restricted" in self.granted
            return _read(self.memories, self.persona_id, limit, restricted=restricted)
        if call == "add_memory":
            self._need("memories:add")
            return self._add(args)
        raise PluginError(f"there is no call {call!r} (memories, add_memory, log)")

    def _add(self, args: dict[str, Any]) -> str:
        limits = self.plugin.manifest.limits
        content = args.get("content")
        extra = {k: v for k, v in args.items() if k != "content"}
        if not isinstance(content, str) or set(extra) - _ADDABLE:
            allowed = ", ".join(sorted(_ADDABLE))
            raise PluginError(f"add_memory takes content (text) and {allowed}")
        tags = extra.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise PluginError("add_memory(tags=...) takes a list of texts")
        check_collection_allowed(
            self.memories.manager,
            self.persona_id,
            refused=f"plugin {self.plugin.manifest.name} may not add memories to it",
        )
        if len(self.added) >= limits.memories:
            raise PluginError(
                f"add_memory: this run added {len(self.added):,} memories, its limit "
                "(limits.memories in plugin.json)"
            )
        texts = [content, *tags, *(v for v in extra.values() if isinstance(v, str))]
        size = sum(len(t.encode(errors="replace")) for t in texts)
        budget = limits.writes_mb * 1_000_000
        if self.written + size > budget:
            raise PluginError(
                f"add_memory: this run added {self.written:,} bytes of text; its limit is "
                f"{budget:,} (limits.writes_mb in plugin.json)"
            )
        # A plugin never makes room: at max_memories its add is refused, and the
        # optimizer run its add starts deletes nothing for space.
        if self.memories.system.room(self.persona_id) == 0:
            raise PluginError(
                f"add_memory: persona {self.persona_id} holds its memory.max_memories of "
                "memories; a plugin does not make room by deleting (`pjai persona update "
                "--set memory.max_memories=N` raises it)"
            )
        change = self.memories.add(self.persona_id, content, free_space=False, **extra)
        self.added.append(change.memory.id)
        self.moved += change.moves
        self.written += size
        return change.memory.id

    def _check_reads_allowed(self) -> None:
        """A plugin's read takes the persona's memories out of PJai: refused, as an
        export is, while ``privacy.export_allowed`` is off."""
        persona = Personas(self.memories.manager).get(self.persona_id)
        if not persona.privacy.export_allowed:
            raise PrivacyError(
                f"{persona.name} ({self.persona_id}) does not allow exports "
                f"(privacy.export_allowed is off): plugin {self.plugin.manifest.name} may "
                "not read its memories; turn it on with `pjai persona update PERSONA --set "
                "privacy.export_allowed=true`"
            )

    def _need(self, capability: str) -> None:
        if capability not in self.granted:
            raise PluginError(f"plugin {self.plugin.manifest.name} is not granted {capability}")

    def kept(self) -> str:
        """What the run had added, which stays, for its error."""
        n = len(self.added)
        shown = ", ".join(self.added[:_NAMED])
        more = f", and {n - _NAMED} more" if n > _NAMED else ""
        what = "memory" if n == 1 else "memories"
        said = f"it had added {n} {what} ({shown}{more}), which {'stays' if n == 1 else 'stay'}"
        if self.moved:
            said += f"; the optimizer then changed {len(self.moved)} other memories"
        return said


def _read(
    memories: Memories, persona_id: str, limit: int, *, restricted: bool
) -> list[dict[str, Any]]:
    """Up to ``limit`` of the persona's memories, best first, while their text stays
    within :data:`MAX_READ_BYTES`; read a page at a time. Those tagged ``restricted``
    are left out unless ``restricted``."""
    where = MemoryFilter(persona_id=persona_id)
    answer: list[dict[str, Any]] = []
    size = offset = 0
    while len(answer) < limit:
        wanted = min(_PAGE, limit - len(answer))
        page = memories.list(where, limit=wanted, offset=offset)
        offset += len(page)
        for m in page:
            if RESTRICTED in m.tags and not restricted:
                continue
            size += sum(len(t.encode(errors="replace")) for t in (m.name, m.content, *m.tags))
            if size > MAX_READ_BYTES:
                return answer
            answer.append(
                {
                    "id": m.id,
                    "name": m.name,
                    "content": m.content,
                    "tags": list(m.tags),
                    "importance": m.importance,
                    "tier": m.tier,
                    "occurred_at": m.occurred_at.isoformat(),
                }
            )
        if len(page) < wanted:
            break
    return answer
