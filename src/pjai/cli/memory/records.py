"""``pjai memory add|list|show|open|update|delete|restore``: one memory at a time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, cast

import msgspec
import typer
from rich.text import Text

from pjai.app import Memories, MemoryChange, MemoryView, resolve
from pjai.cli.common import (
    DEFAULT_DATA_DIR,
    DataDirOption,
    IdOpt,
    JsonFlag,
    PersonaOpt,
    ValueAfterPersona,
    console,
    for_persona,
    leading_persona,
    open_manager,
    open_persona,
    parse_span,
    parse_time,
    persona_and,
    print_json,
    print_result,
)
from pjai.cli.memory.options import (
    UNFILTERED,
    Filters,
    Limit,
    MemoryArg,
    Since,
    Until,
    filtered,
    memory_table,
    moves_text,
    tier_text,
)
from pjai.cli.output import Format, listing, plain, print_rows
from pjai.schema.fields import Tier
from pjai.sql.repositories import MemoryFilter, MemoryOrder

__all__ = ["add", "delete", "list_memories", "open_memory", "restore", "show", "update"]


def add(
    first: Annotated[str, leading_persona("CONTENT", "What to remember")],
    content: ValueAfterPersona = None,
    persona: PersonaOpt = None,
    name: Annotated[str, typer.Option(help="A short title.")] = "",
    summary: Annotated[str, typer.Option(help="A summary or context.")] = "",
    kind: Annotated[str, typer.Option("--type", help="note, fact, preference, event...")] = "note",
    tags: Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeatable).")] = None,
    importance: Annotated[float, typer.Option(help="0 to 1.")] = 0.5,
    tier: Annotated[
        Tier | None,
        typer.Option(help="hot, warm or cold, pinned there (default: warm, not pinned)."),
    ] = None,
    occurred_at: Annotated[str | None, typer.Option(help="When it happened (ISO time).")] = None,
    memory_id: IdOpt = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Record a memory for a persona (by default the active one); a --tier given pins
    it there (the optimizer leaves it)."""
    persona_ref, text = persona_and(first, content, persona)
    fields: dict[str, Any] = {
        "name": name,
        "summary": summary,
        "type": kind,
        "tags": tags or [],
        "importance": importance,
        "tier": tier,
        "occurred_at": parse_time(occurred_at, "--occurred-at"),
        "memory_id": memory_id,
    }
    with open_persona(data_dir, persona_ref) as (manager, persona_id):
        change = Memories(manager).add(persona_id, text, **fields)
    memory = change.memory
    pinned = ", pinned" if memory.pinned else ""
    text = f"Added memory {memory.id} ({memory.tier}{pinned})."
    if memory.deleted_at is not None:  # the run of its own add made room with it
        text = (
            f"Added memory {memory.id}, but the optimizer deleted it at once to keep the "
            "persona within memory.max_memories: it ranked lowest of the memories below "
            "the importance threshold."
        )
    _print_change(change, as_json, text)


def _print_change(change: MemoryChange, as_json: bool, text: str) -> None:
    """The memory (with ``moves`` in JSON) or ``text``, then what the optimizer moved."""
    if as_json:
        print_json({**msgspec.to_builtins(change.memory), "moves": change.moves})
        return
    console.print(text, highlight=False)
    if change.moves:
        console.print(moves_text(change.moves), highlight=False)


@listing
@filtered
@for_persona
def list_memories(
    persona: str | None = None,
    filters: Filters = UNFILTERED,
    since: Since = None,
    until: Until = None,
    order: Annotated[
        str, typer.Option(help="importance, occurred_at, created_at or access_count.")
    ] = "importance",
    deleted: Annotated[bool, typer.Option(help="Include deleted memories.")] = False,
    limit: Limit = 50,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    fmt: Format = "table",
) -> None:
    """List a persona's memories (by default the active one's), best first by --order;
    those this instance changed and the sync server has not confirmed yet are marked
    pending."""
    if order not in ("importance", "occurred_at", "created_at", "access_count"):
        raise typer.BadParameter(
            f"{order!r}: use importance, occurred_at, created_at or access_count",
            param_hint="--order",
        )
    occurred = parse_span(since, until, ("--since", "--until"))
    where = MemoryFilter(
        tiers=cast("list[Tier] | None", filters.tiers),  # checked by tier_list
        types=filters.types,
        tags=filters.tags,
        importance_min=filters.min_importance,
        importance_max=filters.max_importance,
        occurred_from=occurred[0],
        occurred_to=occurred[1],
        include_deleted=deleted,
    )
    sort = cast("MemoryOrder", order)  # checked above
    with open_persona(data_dir, persona) as (manager, persona_id):
        where = msgspec.structs.replace(where, persona_id=persona_id)
        service = Memories(manager)
        found = service.list(where, order=sort, limit=limit)
        pending = service.pending()
    listed = [{**msgspec.to_builtins(m), "pending": m.id in pending} for m in found]
    print_rows(listed, memory_table(found, pending), fmt)


def show(
    memory_id: MemoryArg,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Show a memory with its links (records nothing; pjai memory open counts an
    access)."""
    _print_view(*_viewed(data_dir, memory_id, Memories.show), as_json)


def open_memory(
    memory_id: MemoryArg,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Open a memory: counted as an access (it ranks higher), shown with its links."""
    _print_view(*_viewed(data_dir, memory_id, Memories.open), as_json)


def _viewed(
    data_dir: Path, memory_id: str, look: Callable[[Memories, str], MemoryView]
) -> tuple[MemoryView, bool]:
    """The memory ``memory_id`` names as ``look`` (``Memories.show``, ``Memories.open``)
    returns it, and whether the sync server has yet to confirm a change of it."""
    with open_manager(data_dir) as manager:
        service = Memories(manager)
        view = look(service, resolve.memory_id(manager, memory_id))
        return view, view.memory.id in service.pending()


def _print_view(view: MemoryView, pending: bool, as_json: bool) -> None:
    memory = view.memory
    if as_json:
        links = [link._asdict() for link in view.links]
        print_json({"memory": memory, "links": links, "pending": pending})
        return
    tier = tier_text(memory.tier, pinned=memory.pinned, pending=pending)
    title = [(memory.name, "bold"), f" ({memory.id})"] if memory.name else [(memory.id, "bold")]
    console.print(Text.assemble(*title, f" · {tier}"))
    console.print(memory.content, highlight=False)
    if memory.summary:
        console.print(Text.assemble(("summary:", "dim"), " ", memory.summary))
    console.print(
        f"importance {plain(memory.importance)} · type {memory.type} · tags {plain(memory.tags)} · "
        f"happened {memory.occurred_at:%Y-%m-%d %H:%M} · opened {memory.access_count} time(s)"
    )
    for link in view.links:
        outgoing = link.source_id == memory.id
        other, arrow = (link.target_id, "→") if outgoing else (link.source_id, "←")
        console.print(f"  {link.kind} {arrow} {other} (strength {plain(link.strength)})")


def update(
    memory_id: MemoryArg,
    content: Annotated[str | None, typer.Option(help="New content.")] = None,
    name: Annotated[str | None, typer.Option(help="New title.")] = None,
    summary: Annotated[str | None, typer.Option(help="New summary.")] = None,
    kind: Annotated[str | None, typer.Option("--type", help="New type.")] = None,
    tags: Annotated[list[str] | None, typer.Option("--tag", help="New tags (repeat).")] = None,
    importance: Annotated[float | None, typer.Option(help="New importance.")] = None,
    tier: Annotated[
        Tier | None, typer.Option(help="Move to this tier by hand and pin it there.")
    ] = None,
    pin: Annotated[
        bool | None,
        typer.Option(
            "--pin/--unpin", help="Keep it in its tier, or let the optimizer move it again."
        ),
    ] = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Change a memory's fields, move it to another tier by hand (pinned), or pin or
    unpin it."""
    given = {"content": content, "name": name, "summary": summary, "type": kind}
    fields: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if tags is not None:
        fields["tags"] = tags
    if importance is not None:
        fields["importance"] = importance
    if not fields and tier is None and pin is None:
        raise typer.BadParameter("nothing to change: give at least one field to set")
    with open_manager(data_dir) as manager:
        memory_id = resolve.memory_id(manager, memory_id)
        change = Memories(manager).update(memory_id, tier=tier, pinned=pin, **fields)
    memory = change.memory
    pinned = ", pinned" if memory.pinned else ""
    if change.changed:
        text = f"Updated memory {memory_id} ({memory.tier}{pinned})."
    else:
        text = f"Memory {memory_id} is already {memory.tier}{pinned}; nothing changed."
    _print_change(change, as_json, text)


def delete(
    memory_id: MemoryArg, data_dir: DataDirOption = DEFAULT_DATA_DIR, as_json: JsonFlag = False
) -> None:
    """Delete a memory (soft: pjai memory restore brings it back)."""
    with open_manager(data_dir) as manager:
        memory = Memories(manager).delete(resolve.memory_id(manager, memory_id))
    print_result(memory, as_json, f"Deleted memory {memory.id}.")


def restore(
    memory_id: MemoryArg, data_dir: DataDirOption = DEFAULT_DATA_DIR, as_json: JsonFlag = False
) -> None:
    """Bring back a deleted memory."""
    with open_manager(data_dir) as manager:
        memory = Memories(manager).restore(resolve.memory_id(manager, memory_id))
    print_result(memory, as_json, f"Restored memory {memory.id}.")
