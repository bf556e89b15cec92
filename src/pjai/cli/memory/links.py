"""``pjai memory link|unlink|neighbours|auto-link|decay-links``: the memory graph."""

from __future__ import annotations

import math
from typing import Annotated, Literal

import typer
from rich.table import Table

from pjai.app import Memories, resolve
from pjai.cli.common import (
    DEFAULT_DATA_DIR,
    DataDirOption,
    JsonFlag,
    a_number,
    for_persona,
    open_manager,
    open_persona,
    print_result,
)
from pjai.cli.memory.options import MemoryArg
from pjai.cli.output import Format, id_column, listing, number, print_rows
from pjai.hybrid import HybridDatabaseManager
from pjai.schema.links import LinkKind

__all__ = ["auto_link", "decay_links", "link", "show_neighbours", "unlink"]

SourceArg = Annotated[str, typer.Argument(help="The memory the link starts at (id or start).")]
TargetArg = Annotated[str, typer.Argument(help="The memory it points to (id or start).")]


def _ends(manager: HybridDatabaseManager, source: str, target: str) -> tuple[str, str]:
    """The ids of the memories a link starts and ends at, each typed as an id or the
    start of one."""
    return resolve.memory_id(manager, source), resolve.memory_id(manager, target)


def link(
    source_id: SourceArg,
    target_id: TargetArg,
    kind: Annotated[LinkKind, typer.Option(help="references, similar, related...")] = "related",
    strength: Annotated[float, typer.Option(help="0 to 1.")] = 0.5,
    confidence: Annotated[float, typer.Option(help="0 to 1.")] = 1.0,
    decay_rate: Annotated[float, typer.Option(help="Strength lost per day (rate).")] = 0.0,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Link two memories of one persona."""
    with open_manager(data_dir) as manager:
        source_id, target_id = _ends(manager, source_id, target_id)
        made = Memories(manager).link(
            source_id,
            target_id,
            kind,
            strength=strength,
            confidence=confidence,
            decay_rate=decay_rate,
        )
    print_result(made._asdict(), as_json, f"Linked {source_id} → {target_id} ({kind}).")


def unlink(
    source_id: SourceArg,
    target_id: TargetArg,
    kind: Annotated[LinkKind, typer.Option(help="Which link.")] = "related",
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Remove a link."""
    with open_manager(data_dir) as manager:
        source_id, target_id = _ends(manager, source_id, target_id)
        Memories(manager).unlink(source_id, target_id, kind)
    removed = {"source_id": source_id, "target_id": target_id, "kind": kind}
    print_result(removed, as_json, f"Unlinked {source_id} → {target_id} ({kind}).")


@listing
def show_neighbours(
    memory_id: MemoryArg,
    depth: Annotated[int, typer.Option(min=1, max=10, help="Links away, at most.")] = 1,
    min_strength: Annotated[
        float, typer.Option(help="Follow only links this strong.", callback=a_number)
    ] = 0.0,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    fmt: Format = "table",
) -> None:
    """Memories within --depth links of a memory."""
    with open_manager(data_dir) as manager:
        memory_id = resolve.memory_id(manager, memory_id)
        found = Memories(manager).neighbours(memory_id, depth=depth, min_strength=min_strength)
    table = Table("depth", id_column("memory"))
    for n in found:
        table.add_row(number(n.depth), n.memory_id)
    print_rows(found, table, fmt)


@for_persona
def auto_link(
    persona: str | None = None,
    by: Annotated[
        Literal["auto", "vectors", "words"],
        typer.Option(help="vectors, words, or auto: vectors when the model can be used."),
    ] = "auto",
    threshold: Annotated[
        float | None,
        typer.Option(help="Least similarity: cosine for vectors (0.6), Jaccard for words (0.25)."),
    ] = None,
    per_memory: Annotated[int, typer.Option(min=1, help="Partners per memory, at most.")] = 3,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Link a persona's memories that are alike ("similar" links)."""
    with open_persona(data_dir, persona) as (manager, persona_id):
        made = Memories(manager).auto_link(
            persona_id, by=by, threshold=threshold, per_memory=per_memory
        )
    how = "vectors" if made.by == "vectors" else "shared words"
    print_result(
        {"links": made.links, "by": made.by}, as_json, f"Made {made.links} link(s) by {how}."
    )


MAX_DAYS = 365_000.0
"""The most days a decay run takes (``v1.MemoryLinksDecayed``)."""


def _more_than_none(days: float) -> float:
    """Refuse no days, or fewer (a Typer callback): they would weaken no link. The range
    is checked here, not by the option's type, which would refuse NaN as too large."""
    if math.isnan(days):
        raise typer.BadParameter("must be a number, got nan")
    if not days > 0:
        raise typer.BadParameter(f"must be more than 0, got {number(days)}")
    if days > MAX_DAYS:
        raise typer.BadParameter(f"must be at most {number(MAX_DAYS)}, got {number(days)}")
    return days


@for_persona
def decay_links(
    persona: str | None = None,
    days: Annotated[
        float,
        typer.Option(
            callback=_more_than_none,
            help="Days of decay to apply (more than 0, at most 365,000).",
        ),
    ] = 1.0,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Weaken a persona's links by their decay rates; drop those that fall too weak."""
    with open_persona(data_dir, persona) as (manager, persona_id):
        removed = Memories(manager).decay_links(persona_id, days)
    summary = {"days": days, "removed": removed}
    print_result(summary, as_json, f"Decayed links by {number(days)} day(s); removed {removed}.")
