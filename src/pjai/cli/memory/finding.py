"""``pjai memory search|timeline``: find memories by text, and see them over time."""

from __future__ import annotations

from typing import Annotated, cast

import msgspec
import typer
from rich.table import Table

from pjai.app import Memories, resolve
from pjai.cli.common import (
    DEFAULT_DATA_DIR,
    INCLUDED_END,
    DataDirOption,
    PersonaOpt,
    for_persona,
    open_manager,
    open_persona,
    parse_span,
    progress_bar,
)
from pjai.cli.memory.options import (
    UNFILTERED,
    AllFlag,
    Filters,
    Limit,
    MemoryRow,
    Since,
    Until,
    filtered,
    memories_table,
    tier_text,
)
from pjai.cli.output import Format, listing, number, print_rows
from pjai.memory import Bucket, SearchFilter, SearchHit
from pjai.memory.search import Method
from pjai.memory.timeline import Unit
from pjai.schema.fields import Tier

__all__ = ["search_memories", "show_timeline"]


@listing
@filtered
def search_memories(
    text: Annotated[str, typer.Argument(help="What to look for.")],
    persona: PersonaOpt = None,
    every: AllFlag = False,
    filters: Filters = UNFILTERED,
    since: Since = None,
    until: Until = None,
    created_since: Annotated[str | None, typer.Option(help="Recorded at or after.")] = None,
    created_until: Annotated[
        str | None, typer.Option(help=f"Recorded at or before ({INCLUDED_END}).")
    ] = None,
    method: Annotated[Method, typer.Option(help="keyword, semantic or hybrid.")] = "keyword",
    limit: Limit = 10,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    fmt: Format = "table",
) -> None:
    """Search a persona's memories (by default the active one's; --all: everyone's), best
    first (a search does not count as opening them)."""
    occurred = parse_span(since, until, ("--since", "--until"))
    created = parse_span(created_since, created_until, ("--created-since", "--created-until"))
    where = SearchFilter(
        tiers=tuple(cast("list[Tier]", filters.tiers or [])),  # checked by tier_list
        types=tuple(filters.types or ()),
        tags=tuple(filters.tags or ()),
        importance_min=filters.min_importance,
        importance_max=filters.max_importance,
        occurred_from=occurred[0],
        occurred_to=occurred[1],
        created_from=created[0],
        created_to=created[1],
    )
    with (
        open_manager(data_dir) as manager,
        progress_bar("Computing embeddings") as progress,
    ):
        scope = resolve.persona_scope(manager, persona, every=every)
        where = msgspec.structs.replace(where, persona_id=scope)
        service = Memories(manager)
        hits = service.search(text, where, limit=limit, method=method, progress=progress)
        pending = service.pending()
    listed = [{**msgspec.to_builtins(h), "pending": h.memory_id in pending} for h in hits]
    print_rows(listed, _hits_table(hits, pending), fmt)


def _hits_table(hits: list[SearchHit], pending: frozenset[str]) -> Table:
    """Search hits as a table (:func:`memories_table`): id, score, tier, when, name and
    content."""
    return memories_table(
        ("score", "tier"),
        (
            MemoryRow(
                h.memory_id,
                number(h.score),
                tier_text(h.tier, pending=h.memory_id in pending),
                h.occurred_at,
                h.name,
                h.content,
            )
            for h in hits
        ),
    )


@listing
@for_persona
def show_timeline(
    persona: str | None = None,
    unit: Annotated[Unit, typer.Option(help="hour, day, week or month.")] = "day",
    since: Since = None,
    until: Annotated[str | None, typer.Option(help="Happened before (ISO time).")] = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    fmt: Format = "table",
) -> None:
    """A persona's memories (by default the active one's) per hour, day, week or month,
    with importance statistics."""
    start, end = parse_span(since, until, ("--since", "--until"), end_included=False)
    with open_persona(data_dir, persona) as (manager, persona_id):
        buckets = Memories(manager).timeline(persona_id, unit, start=start, end=end)
    print_rows(buckets, _buckets_table(unit, buckets), fmt)


def _buckets_table(unit: Unit, buckets: list[Bucket]) -> Table:
    table = Table(unit, "memories", "importance avg", "min", "max")
    for b in buckets:
        table.add_row(
            b.key,
            str(b.memories),
            f"{b.importance_avg:.2f}",
            f"{b.importance_min:.2f}",
            f"{b.importance_max:.2f}",
        )
    return table
