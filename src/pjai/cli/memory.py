"""``pjai memory ...``: add, list, search, open, change and organise memories."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, cast

import typer
from rich.table import Table
from rich.text import Text

from pjai.cli.common import (
    DEFAULT_DATA_DIR,
    DataDir,
    IdOpt,
    JsonFlag,
    MaxImportance,
    MinImportance,
    TagOpt,
    TierOpt,
    TypeOpt,
    console,
    open_manager,
    parse_time,
    print_json,
    progress_bar,
)
from pjai.errors import QueryError
from pjai.memory import (
    Embeddings,
    EmbeddingsUnavailable,
    MemorySystem,
    SearchFilter,
    health,
    ingest_conversation,
    neighbours,
    search,
    timeline,
)
from pjai.memory.optimizer import OptimizationReport
from pjai.schema.fields import Tier
from pjai.schema.links import LinkKind
from pjai.schema.models import Memory
from pjai.sql.repositories import MemoryFilter, MemoryOrder

app = typer.Typer(help="Memories: add, list, search, open, organise.", no_args_is_help=True)

Method = Literal["keyword", "semantic", "hybrid"]
Unit = Literal["hour", "day", "week", "month"]

PersonaArg = Annotated[str, typer.Argument(help="The persona's id.")]
MemoryArg = Annotated[str, typer.Argument(help="The memory's id.")]
Since = Annotated[str | None, typer.Option(help="Happened at or after (ISO time, UTC).")]
Until = Annotated[str | None, typer.Option(help="Happened at or before (ISO time, UTC).")]
Limit = Annotated[int, typer.Option(min=1, help="At most this many.")]


def _memory(system: MemorySystem, memory_id: str) -> Memory:
    memory = system.get(memory_id)
    if memory is None:
        raise QueryError(f"no memory {memory_id!r}")
    return memory


def _table(memories: list[Memory]) -> Table:
    table = Table("id", "tier", "importance", "happened", "name", "content")
    for m in memories:
        text = m.content if len(m.content) <= 60 else m.content[:59] + "…"
        table.add_row(
            m.id, m.tier, f"{m.importance:.2f}", f"{m.occurred_at:%Y-%m-%d %H:%M}", m.name, text
        )
    return table


@app.command()
def add(
    persona_id: PersonaArg,
    content: Annotated[str, typer.Argument(help="What to remember.")],
    name: Annotated[str, typer.Option(help="A short title.")] = "",
    summary: Annotated[str, typer.Option(help="A summary or context.")] = "",
    kind: Annotated[str, typer.Option("--type", help="note, fact, preference, event...")] = "note",
    tags: Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeatable).")] = None,
    importance: Annotated[float, typer.Option(help="0 to 1.")] = 0.5,
    tier: Annotated[Tier, typer.Option(help="hot, warm or cold.")] = "warm",
    occurred_at: Annotated[str | None, typer.Option(help="When it happened (ISO time).")] = None,
    memory_id: IdOpt = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Record a memory."""
    when = parse_time(occurred_at, "--occurred-at")
    with open_manager(data_dir) as manager:
        fields: dict[str, Any] = {
            "name": name,
            "summary": summary,
            "type": kind,
            "tags": tags or [],
            "importance": importance,
            "tier": tier,
            "occurred_at": when,
            "memory_id": memory_id,
        }
        memory = MemorySystem(manager).add(persona_id, content, **fields)
    if as_json:
        print_json(memory)
    else:
        console.print(f"Added memory {memory.id} ({memory.tier}).")


@app.command("list")
def list_memories(
    persona_id: PersonaArg,
    tiers: TierOpt = None,
    types: TypeOpt = None,
    tags: TagOpt = None,
    min_importance: MinImportance = None,
    max_importance: MaxImportance = None,
    since: Since = None,
    until: Until = None,
    order: Annotated[
        str, typer.Option(help="importance, occurred_at, created_at or access_count.")
    ] = "importance",
    deleted: Annotated[bool, typer.Option(help="Include deleted memories.")] = False,
    limit: Limit = 50,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """List a persona's memories (from the SQL primary), best first by ``--order``."""
    if order not in ("importance", "occurred_at", "created_at", "access_count"):
        raise typer.BadParameter(
            f"{order!r}: use importance, occurred_at, created_at or access_count",
            param_hint="--order",
        )
    where = MemoryFilter(
        persona_id=persona_id,
        tiers=cast("list[Tier] | None", tiers),  # checked by tier_list
        types=types,
        tags=tags,
        importance_min=min_importance,
        importance_max=max_importance,
        occurred_from=parse_time(since, "--since"),
        occurred_to=parse_time(until, "--until"),
        include_deleted=deleted,
    )
    sort: MemoryOrder = order  # type: ignore[assignment]  # checked above
    with open_manager(data_dir) as manager:
        found = manager.memories.list(where, order=sort, limit=limit)
    if as_json:
        print_json(found)
    else:
        console.print(_table(found))


@app.command("search")
def search_memories(
    text: Annotated[str, typer.Argument(help="What to look for.")],
    persona_id: Annotated[str | None, typer.Option("--persona", help="Only this persona.")] = None,
    tiers: TierOpt = None,
    types: TypeOpt = None,
    tags: TagOpt = None,
    min_importance: MinImportance = None,
    max_importance: MaxImportance = None,
    since: Since = None,
    until: Until = None,
    created_since: Annotated[str | None, typer.Option(help="Recorded at or after.")] = None,
    created_until: Annotated[str | None, typer.Option(help="Recorded at or before.")] = None,
    method: Annotated[Method, typer.Option(help="keyword, semantic or hybrid.")] = "keyword",
    limit: Limit = 10,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Search memories, best first (a search does not count as opening them)."""
    where = SearchFilter(
        persona_id=persona_id,
        tiers=tuple(cast("list[Tier]", tiers or [])),  # checked by tier_list
        types=tuple(types or ()),
        tags=tuple(tags or ()),
        importance_min=min_importance,
        importance_max=max_importance,
        occurred_from=parse_time(since, "--since"),
        occurred_to=parse_time(until, "--until"),
        created_from=parse_time(created_since, "--created-since"),
        created_to=parse_time(created_until, "--created-until"),
    )
    with open_manager(data_dir) as manager:
        embeddings = None
        if method != "keyword":
            embeddings = Embeddings.open(data_dir)
            with progress_bar("Computing embeddings") as progress:
                embeddings.index(manager, persona_id, progress)
        try:
            hits = search(manager, text, where, limit=limit, method=method, embeddings=embeddings)
        finally:
            if embeddings is not None:
                embeddings.close()
    if as_json:
        print_json(hits)
        return
    table = Table("id", "score", "tier", "happened", "name", "content")
    for h in hits:
        text = h.content if len(h.content) <= 60 else h.content[:59] + "…"
        table.add_row(
            h.memory_id, f"{h.score:.3g}", h.tier, f"{h.occurred_at:%Y-%m-%d}", h.name, text
        )
    console.print(table)


@app.command()
def show(
    memory_id: MemoryArg,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Open a memory (counted as an access) with its links."""
    with open_manager(data_dir) as manager:
        system = MemorySystem(manager)
        memory = system.open(memory_id)
        links = system.links_of(memory_id)
    if as_json:
        print_json({"memory": memory, "links": [link._asdict() for link in links]})
        return
    console.print(
        Text.assemble((memory.name or memory.id, "bold"), f" ({memory.id}) · {memory.tier}")
    )
    console.print(memory.content, highlight=False)
    if memory.summary:
        console.print(Text.assemble(("summary:", "dim"), " ", memory.summary))
    console.print(
        f"importance {memory.importance:.2f} · type {memory.type} · tags {memory.tags} · "
        f"happened {memory.occurred_at:%Y-%m-%d %H:%M} · opened {memory.access_count} time(s)"
    )
    for link in links:
        other = link.target_id if link.source_id == memory_id else link.source_id
        console.print(f"  {link.kind} → {other} (strength {link.strength:.2f})")


@app.command()
def update(
    memory_id: MemoryArg,
    content: Annotated[str | None, typer.Option(help="New content.")] = None,
    name: Annotated[str | None, typer.Option(help="New title.")] = None,
    summary: Annotated[str | None, typer.Option(help="New summary.")] = None,
    kind: Annotated[str | None, typer.Option("--type", help="New type.")] = None,
    tags: Annotated[list[str] | None, typer.Option("--tag", help="New tags (repeat).")] = None,
    importance: Annotated[float | None, typer.Option(help="New importance.")] = None,
    tier: Annotated[Tier | None, typer.Option(help="Move to this tier (reason manual).")] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Change a memory's fields, or move it to another tier by hand."""
    given = {"content": content, "name": name, "summary": summary, "type": kind}
    fields: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if tags is not None:
        fields["tags"] = tags
    if importance is not None:
        fields["importance"] = importance
    if not fields and tier is None:
        raise typer.BadParameter("nothing to change: give at least one field to set")
    with open_manager(data_dir) as manager:
        system = MemorySystem(manager)
        persona_id = _memory(system, memory_id).persona_id
        if tier is not None:
            changed = system.move(memory_id, tier, **fields)  # one commit, reason manual
        else:
            system.update(persona_id, memory_id, **fields)  # may re-rank on importance
            changed = True
        memory = _memory(system, memory_id)
    if as_json:
        print_json(memory)
    elif changed:
        console.print(f"Updated memory {memory_id} ({memory.tier}).")
    else:
        console.print(f"Memory {memory_id} is already {memory.tier}; nothing changed.")


@app.command()
def delete(
    memory_id: MemoryArg, data_dir: DataDir = DEFAULT_DATA_DIR, as_json: JsonFlag = False
) -> None:
    """Delete a memory (soft: ``pjai memory restore`` brings it back)."""
    _delete_or_restore(memory_id, data_dir, as_json, restoring=False)


@app.command()
def restore(
    memory_id: MemoryArg, data_dir: DataDir = DEFAULT_DATA_DIR, as_json: JsonFlag = False
) -> None:
    """Bring back a deleted memory."""
    _delete_or_restore(memory_id, data_dir, as_json, restoring=True)


def _delete_or_restore(memory_id: str, data_dir: Path, as_json: bool, *, restoring: bool) -> None:
    with open_manager(data_dir) as manager:
        system = MemorySystem(manager)
        persona_id = _memory(system, memory_id).persona_id
        (system.restore if restoring else system.delete)(persona_id, memory_id)
        memory = _memory(system, memory_id)
    if as_json:
        print_json(memory)
    else:
        console.print(f"{'Restored' if restoring else 'Deleted'} memory {memory_id}.")


def _print_report(report: OptimizationReport) -> None:
    console.print(
        f"{report.persona_id}: {report.events} event(s); promoted {report.promoted}, "
        f"demoted {report.demoted}, archived {report.archived}, deleted "
        f"{report.deleted_for_retention} for retention and {report.deleted_for_space} for "
        f"space; tiers {report.tiers_before} → {report.tiers_after}"
    )
    for note in report.notes:
        console.print(f"  {note}")


@app.command()
def optimize(
    persona_id: Annotated[
        str | None, typer.Option("--persona", help="Only this persona (default: all).")
    ] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Re-tier memories by score, apply retention and the size limit."""
    with open_manager(data_dir) as manager:
        system = MemorySystem(manager)
        ids = [persona_id] if persona_id else [p.id for p in manager.personas.list()]
        reports = [system.optimize(i) for i in ids]
    if as_json:
        print_json(reports)
        return
    for report in reports:
        _print_report(report)


@app.command()
def stats(
    persona_id: Annotated[
        str | None, typer.Option("--persona", help="Only this persona (default: all).")
    ] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Memory statistics and health (tiers, capacity use, fragmentation, alerts)."""
    with open_manager(data_dir) as manager:
        persona = None
        if persona_id is not None:
            persona = manager.personas.get(persona_id)
            if persona is None:
                raise QueryError(f"no persona {persona_id!r}")
        figures = manager.memories.statistics(MemoryFilter(persona_id=persona_id))
        report = health(manager, persona)
    if as_json:
        print_json({"statistics": figures, "health": report})
        return
    console.print(
        f"{figures.total} live memories, {figures.deleted} deleted; by tier {figures.by_tier}; "
        f"by type {figures.by_type}"
    )
    average = figures.average_importance
    console.print(
        f"average importance {average if average is None else round(average, 3)}, "
        f"{figures.high_importance} important, {figures.frequently_accessed} often opened, "
        f"{figures.accessed_last_24h} opened in the last 24 h"
    )
    use = ", ".join(f"{t} {u:.0%}" for t, u in report.capacity_use.items())
    console.print(
        f"health {report.score:.0f}/100 · capacity use {use} · fragmentation "
        f"{report.fragmentation:.0f} · stale {report.stale_share:.0%}"
    )
    for alert in report.alerts:
        console.print(Text.assemble("  ", (alert.level, "yellow"), " ", alert.message))


@app.command("timeline")
def show_timeline(
    persona_id: PersonaArg,
    unit: Annotated[Unit, typer.Option(help="hour, day, week or month.")] = "day",
    since: Since = None,
    until: Annotated[str | None, typer.Option(help="Happened before (ISO time).")] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Memories per hour, day, week or month, with importance statistics."""
    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    with open_manager(data_dir) as manager:
        buckets = timeline(manager, persona_id, unit, start=start, end=end)
    if as_json:
        print_json(buckets)
        return
    table = Table(unit, "memories", "importance avg", "min", "max")
    for b in buckets:
        table.add_row(
            b.key,
            str(b.memories),
            f"{b.importance_avg:.2f}",
            f"{b.importance_min:.2f}",
            f"{b.importance_max:.2f}",
        )
    console.print(table)


@app.command()
def link(
    source_id: Annotated[str, typer.Argument(help="The memory the link starts at.")],
    target_id: Annotated[str, typer.Argument(help="The memory it points to.")],
    kind: Annotated[LinkKind, typer.Option(help="references, similar, related...")] = "related",
    strength: Annotated[float, typer.Option(help="0 to 1.")] = 0.5,
    confidence: Annotated[float, typer.Option(help="0 to 1.")] = 1.0,
    decay_rate: Annotated[float, typer.Option(help="Strength lost per day (rate).")] = 0.0,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Link two memories of one persona."""
    with open_manager(data_dir) as manager:
        system = MemorySystem(manager)
        persona_id = _memory(system, source_id).persona_id
        system.link(
            persona_id,
            source_id,
            target_id,
            kind=kind,
            strength=strength,
            confidence=confidence,
            decay_rate=decay_rate,
        )
        links = system.links_of(source_id)
    if as_json:
        made = [r._asdict() for r in links if (r.target_id, r.kind) == (target_id, kind)]
        print_json(made[0])
    else:
        console.print(f"Linked {source_id} → {target_id} ({kind}).")


@app.command()
def unlink(
    source_id: Annotated[str, typer.Argument(help="The memory the link starts at.")],
    target_id: Annotated[str, typer.Argument(help="The memory it points to.")],
    kind: Annotated[LinkKind, typer.Option(help="Which link.")] = "related",
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Remove a link."""
    with open_manager(data_dir) as manager:
        system = MemorySystem(manager)
        system.unlink(_memory(system, source_id).persona_id, source_id, target_id, kind)
    if as_json:
        print_json({"source_id": source_id, "target_id": target_id, "kind": kind})
    else:
        console.print(f"Unlinked {source_id} → {target_id} ({kind}).")


@app.command("neighbours")
def show_neighbours(
    memory_id: MemoryArg,
    depth: Annotated[int, typer.Option(min=1, max=10, help="Links away, at most.")] = 1,
    min_strength: Annotated[float, typer.Option(help="Follow only links this strong.")] = 0.0,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Memories within ``--depth`` links of a memory."""
    with open_manager(data_dir) as manager:
        found = neighbours(manager, memory_id, depth=depth, min_strength=min_strength)
    if as_json:
        print_json(found)
        return
    for n in found:
        console.print(f"{n.depth}  {n.memory_id}")


@app.command("auto-link")
def auto_link(
    persona_id: PersonaArg,
    by: Annotated[
        Literal["auto", "vectors", "words"],
        typer.Option(help="vectors (embeddings extra), words, or auto: vectors when installed."),
    ] = "auto",
    threshold: Annotated[
        float | None,
        typer.Option(help="Least similarity: cosine for vectors (0.6), Jaccard for words (0.25)."),
    ] = None,
    per_memory: Annotated[int, typer.Option(min=1, help="Partners per memory, at most.")] = 3,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Link a persona's memories that are alike (``similar`` links)."""
    with open_manager(data_dir) as manager:
        embeddings = None
        if by != "words":
            try:
                embeddings = Embeddings.open(data_dir)
            except EmbeddingsUnavailable:
                if by == "vectors":
                    raise
        try:
            made = MemorySystem(manager).auto_link(
                persona_id, threshold=threshold, per_memory=per_memory, embeddings=embeddings
            )
        finally:
            if embeddings is not None:
                embeddings.close()
    if as_json:
        print_json({"links": made, "by": "vectors" if embeddings is not None else "words"})
    else:
        how = "vectors" if embeddings is not None else "shared words"
        console.print(f"Made {made} link(s) by {how}.")


@app.command("decay-links")
def decay_links(
    persona_id: PersonaArg,
    days: Annotated[
        float, typer.Option(min=0.0, help="Days of decay to apply (more than 0).")
    ] = 1.0,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Weaken a persona's links by their decay rates; drop those that fall too weak."""
    with open_manager(data_dir) as manager:
        removed = MemorySystem(manager).decay_links(persona_id, days)
    if as_json:
        print_json({"days": days, "removed": removed})
    else:
        console.print(f"Decayed links by {days:g} day(s); removed {removed}.")


@app.command("ingest-conversation")
def ingest(
    conversation_id: Annotated[str, typer.Argument(help="The conversation's id.")],
    importance: Annotated[float, typer.Option(help="Importance of each memory.")] = 0.5,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Turn a conversation's messages into memories (each once)."""
    with open_manager(data_dir) as manager:
        # Through the memory system, so that new memories can trigger auto-optimization.
        done = ingest_conversation(MemorySystem(manager), conversation_id, importance=importance)
    if as_json:
        print_json(done)
    else:
        console.print(f"Added {done.added} memory(ies); {done.skipped} already there.")
