"""Arguments and output the memory commands share."""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated

import typer
from rich.table import Table

from pjai.schema.models import Memory

__all__ = ["Limit", "MemoryArg", "Since", "Until", "memory_table", "shortened"]

MemoryArg = Annotated[str, typer.Argument(help="The memory's id.")]
Since = Annotated[str | None, typer.Option(help="Happened at or after (ISO time, UTC).")]
Until = Annotated[str | None, typer.Option(help="Happened at or before (ISO time, UTC).")]
Limit = Annotated[int, typer.Option(min=1, help="At most this many.")]


def shortened(text: str) -> str:
    """``text`` cut to fit a table column of 60 characters."""
    return text if len(text) <= 60 else text[:59] + "…"


def memory_table(memories: list[Memory], pending: Collection[str] = ()) -> Table:
    """Memories as a table: id, tier, importance, when, name and content; the tier of
    those in ``pending`` says ``(pending)``."""
    table = Table("id", "tier", "importance", "happened", "name", "content")
    for m in memories:
        table.add_row(
            m.id,
            f"{m.tier} (pending)" if m.id in pending else m.tier,
            f"{m.importance:.2f}",
            f"{m.occurred_at:%Y-%m-%d %H:%M}",
            m.name,
            shortened(m.content),
        )
    return table
