"""Arguments and output the memory commands share."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Annotated

import typer
from rich.table import Table

from pjai.cli.output import clipped, content_column, id_column, number, short_column, when
from pjai.memory.optimizer import MemoryMove
from pjai.schema.models import Memory

__all__ = [
    "AllFlag",
    "Limit",
    "MemoryArg",
    "Since",
    "Until",
    "memory_table",
    "moves_text",
    "shortened",
]

MemoryArg = Annotated[str, typer.Argument(help="The memory's id, or the start of it.")]
AllFlag = Annotated[
    bool, typer.Option("--all", help="Every persona, not only the active or given one.")
]
Since = Annotated[str | None, typer.Option(help="Happened at or after (ISO time, UTC).")]
Until = Annotated[str | None, typer.Option(help="Happened at or before (ISO time, UTC).")]
Limit = Annotated[int, typer.Option(min=1, help="At most this many.")]


def shortened(text: str) -> str:
    """``text`` cut to fit a table column of 60 characters."""
    return text if len(text) <= 60 else text[:59] + "…"


def memory_table(memories: list[Memory], pending: Collection[str] = ()) -> Table:
    """Memories as a table: id, tier, importance, when, name and content; the tier of
    those in ``pending`` says ``(pending)``."""
    table = Table(
        id_column(),
        short_column("tier"),
        short_column("importance"),
        short_column("happened"),
        content_column("name", 30),
        content_column(),
    )
    for m in memories:
        table.add_row(
            m.id,
            f"{m.tier} (pending)" if m.id in pending else m.tier,
            number(m.importance),
            when(m.occurred_at),
            clipped(m.name),
            clipped(m.content),
        )
    return table


SHOWN_MOVES = 20


REASONS = {
    "optimization": "ranked for its tier by the optimizer",
    "access_pattern": "its accesses",
    "importance_change": "its importance changed",
    "age_decay": "its age",
    "retention": "older than the retention period",
    "restricted": "restricted, older than its retention period",
    "session": "memory retention is off and a new session began",
    "space": "the persona is over its size limit",
}
"""Why the optimizer moved a memory, in words (``MemoryMove.reason``)."""


def moves_text(moves: Sequence[MemoryMove]) -> str:
    """What the optimizer did after a command, a line per memory (the first 20), or ``""``."""
    if not moves:
        return ""
    lines = [f"The optimizer then changed {len(moves)} memory(ies):"]
    for m in moves[:SHOWN_MOVES]:
        if m.to is None:
            lines.append(f"  deleted {m.memory_id} ({REASONS.get(m.reason, m.reason)})")
        else:
            why = REASONS.get(m.reason, m.reason)
            lines.append(f"  {m.action} {m.memory_id}: {m.tier} → {m.to} ({why})")
    if len(moves) > SHOWN_MOVES:
        lines.append(f"  … and {len(moves) - SHOWN_MOVES} more (--json lists every one)")
    return "\n".join(lines)
