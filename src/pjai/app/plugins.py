"""Plugins of a data directory: install, list, enable, disable, remove, and run one for
a persona, answering its calls only as far as its capabilities go (:mod:`pjai.plugins`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pjai.app.memories import Memories
from pjai.hybrid import HybridDatabaseManager
from pjai.plugins import (
    Handler,
    InstalledPlugin,
    PluginError,
    PluginRun,
    Registry,
    run_sandboxed,
)
from pjai.schema.selection import MemoryFilter

__all__ = ["plugin_registry", "run_plugin"]

_ADDABLE = {"name", "summary", "tags", "importance", "type"}
"""The fields of a memory a plugin may set besides its content."""

_MAX_READ = 500
"""The most memories one call of a plugin reads."""
MAX_READ_BYTES = 16_000_000
"""The most text (UTF-8) one ``memories`` answer holds: past it, the answer has fewer
memories than asked for (whole ones, the best first)."""
_PAGE = 16
"""Memories read at a time for an answer: what PJai holds at once stays near the bound."""


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
    :class:`~pjai.plugins.PluginError` if it is disabled, refused or failed."""
    plugin = registry.get(name)
    if not plugin.enabled:
        raise PluginError(f"plugin {name} is disabled: `pjai plugin enable {name}` lets it run")
    memories = Memories(manager)
    memories.list(MemoryFilter(persona_id=persona_id), limit=1)  # NotFoundError: no persona
    return run_sandboxed(
        plugin.directory, plugin.manifest, arguments or {}, _handler(plugin, memories, persona_id)
    )


def _handler(plugin: InstalledPlugin, memories: Memories, persona_id: str) -> Handler:
    granted: set[str] = set(plugin.manifest.capabilities)
    budget = plugin.manifest.limits.writes_mb * 1_000_000
    written = 0

    def handle(call: str, args: dict[str, Any]) -> Any:
        nonlocal written
        if call == "memories":
            _need(plugin, granted, "memories:read")
            limit = args.get("limit", 50)
            if not isinstance(limit, int) or not 1 <= limit <= _MAX_READ:
                raise PluginError(f"memories(limit=...) takes 1 to {_MAX_READ}")
            return _read(memories, persona_id, limit)
        if call == "add_memory":
            _need(plugin, granted, "memories:add")
            content = args.get("content")
            extra = {k: v for k, v in args.items() if k != "content"}
            if not isinstance(content, str) or set(extra) - _ADDABLE:
                allowed = ", ".join(sorted(_ADDABLE))
                raise PluginError(f"add_memory takes content (text) and {allowed}")
            tags = extra.get("tags", [])
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise PluginError("add_memory(tags=...) takes a list of texts")
            texts = [content, *tags, *(v for v in extra.values() if isinstance(v, str))]
            size = sum(len(t.encode(errors="replace")) for t in texts)
            if written + size > budget:
                raise PluginError(
                    f"add_memory: this run added {written:,} bytes of text; its limit is "
                    f"{budget:,} (limits.writes_mb in plugin.json)"
                )
            added = memories.add(persona_id, content, **extra).memory.id
            written += size
            return added
        raise PluginError(f"there is no call {call!r} (memories, add_memory, log)")

    return handle


def _read(memories: Memories, persona_id: str, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` of the persona's memories, best first, while their text stays
    within :data:`MAX_READ_BYTES`; read a page at a time."""
    where = MemoryFilter(persona_id=persona_id)
    answer: list[dict[str, Any]] = []
    size = 0
    while len(answer) < limit:
        wanted = min(_PAGE, limit - len(answer))
        page = memories.list(where, limit=wanted, offset=len(answer))
        for m in page:
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


def _need(plugin: InstalledPlugin, granted: set[str], capability: str) -> None:
    if capability not in granted:
        raise PluginError(f"plugin {plugin.manifest.name} is not granted {capability}")
