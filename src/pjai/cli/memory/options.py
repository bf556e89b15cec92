"""Arguments and output the memory commands share."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Annotated

import typer
from rich.table import Table

from pjai.memory.optimizer import MemoryMove
from pjai.schema.models import Memory

__all__ = ["Limit", "MemoryArg", "Since", "Until", "memory_table", "moves_text", "shortened"]

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


SHOWN_MOVES = 20


def moves_text(moves: Sequence[MemoryMove]) -> str:
    """What the optimizer did after a command, a line per memory (the first 20), or ``""``."""
    if not moves:
        return ""
    lines = [f"The optimizer then changed {len(moves)} memory(ies):"]
    for m in moves[:SHOWN_MOVES]:
        if m.to is None:
            lines.append(f"  deleted {m.memory_id} ({m.reason})")
        else:
            lines.append(f"  {m.action} {m.memory_id}: {m.tier} → {m.to} ({m.reason})")
    if len(moves) > SHOWN_MOVES:
        lines.append(f"  … and {len(moves) - SHOWN_MOVES} more (--json lists every one)")
    return "\n".join(lines)
