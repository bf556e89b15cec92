"""``pjai memory search|timeline``: find memories by text, and see them over time."""

from __future__ import annotations

from typing import Annotated, cast

import typer
from rich.table import Table

from pjai.app import Memories
from pjai.cli.common import (
    DEFAULT_DATA_DIR,
    DataDirOption,
    JsonFlag,
    MaxImportance,
    MinImportance,
    PersonaArg,
    TagOpt,
    TierOpt,
    TypeOpt,
    open_manager,
    parse_time,
    print_result,
    progress_bar,
)
from pjai.cli.memory.options import Limit, Since, Until, shortened
from pjai.memory import Bucket, SearchFilter, SearchHit
from pjai.memory.search import Method
from pjai.memory.timeline import Unit
from pjai.schema.fields import Tier

__all__ = ["search_memories", "show_timeline"]


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
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
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
    with open_manager(data_dir) as manager, progress_bar("Computing embeddings") as progress:
        hits = Memories(manager).search(text, where, limit=limit, method=method, progress=progress)
    print_result(hits, as_json, _hits_table(hits))


def _hits_table(hits: list[SearchHit]) -> Table:
    table = Table("id", "score", "tier", "happened", "name", "content")
    for h in hits:
        table.add_row(
            h.memory_id,
            f"{h.score:.3g}",
            h.tier,
            f"{h.occurred_at:%Y-%m-%d}",
            h.name,
            shortened(h.content),
        )
    return table


def show_timeline(
    persona_id: PersonaArg,
    unit: Annotated[Unit, typer.Option(help="hour, day, week or month.")] = "day",
    since: Since = None,
    until: Annotated[str | None, typer.Option(help="Happened before (ISO time).")] = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Memories per hour, day, week or month, with importance statistics."""
    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    with open_manager(data_dir) as manager:
        buckets = Memories(manager).timeline(persona_id, unit, start=start, end=end)
    print_result(buckets, as_json, _buckets_table(unit, buckets))


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
