"""Arguments and output the memory commands share."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, NamedTuple

import typer
from rich.table import Table
from rich.text import Text

from pjai.cli.common import (
    INCLUDED_END,
    MaxImportance,
    MinImportance,
    TagOpt,
    TierOpt,
    TypeOpt,
)
from pjai.cli.grouped import option_group
from pjai.cli.output import (
    clipped,
    content_column,
    id_column,
    number,
    short_column,
    when,
    wide_terminal,
)
from pjai.memory.conversations import RefusedMessage
from pjai.memory.optimizer import MemoryMove
from pjai.schema.models import Memory

__all__ = [
    "UNFILTERED",
    "AllFlag",
    "Filters",
    "Limit",
    "MemoryArg",
    "MemoryRow",
    "Since",
    "Until",
    "filtered",
    "memories_table",
    "memory_table",
    "moves_text",
    "refused_text",
    "shortened",
    "tier_text",
]

MemoryArg = Annotated[str, typer.Argument(help="The memory's id, or the start of it.")]
AllFlag = Annotated[
    bool, typer.Option("--all", help="Every persona, not only the active or given one.")
]
Since = Annotated[str | None, typer.Option(help="Happened at or after (ISO time, UTC).")]
Until = Annotated[
    str | None,
    typer.Option(help=f"Happened at or before ({INCLUDED_END})."),
]
MAX_LIMIT = 1_000_000
"""The largest ``--limit`` taken: more than a persona's rows at any size PJai is
measured at, and far within SQL's integers."""
Limit = Annotated[int, typer.Option(min=1, max=MAX_LIMIT, help="At most this many.")]


@dataclass(frozen=True)
class Filters:
    """Which memories ``--tier``, ``--type``, ``--tag``, ``--min-importance`` and
    ``--max-importance`` ask for (:func:`filtered`); ``None``: any."""

    tiers: list[str] | None = None
    types: list[str] | None = None
    tags: list[str] | None = None
    min_importance: float | None = None
    max_importance: float | None = None

    def __post_init__(self) -> None:
        low, high = self.min_importance, self.max_importance
        if low is not None and high is not None and low > high:
            raise typer.BadParameter(
                f"{number(low)} is above --max-importance {number(high)}: no memory would match",
                param_hint="--min-importance",
            )


UNFILTERED = Filters()

_FILTER_OPTIONS = {
    "tiers": TierOpt,
    "types": TypeOpt,
    "tags": TagOpt,
    "min_importance": MinImportance,
    "max_importance": MaxImportance,
}

filtered = option_group("filters", _FILTER_OPTIONS, None, Filters)
"""Mark a command that filters memories: its ``filters: Filters`` parameter becomes the
options ``--tier``, ``--type``, ``--tag``, ``--min-importance`` and ``--max-importance``
(in its place in the help), and it is called with the :class:`Filters` they ask for."""


def shortened(text: str) -> str:
    """``text`` cut to fit a table column of 60 characters."""
    return text if len(text) <= 60 else text[:59] + "…"


def tier_text(tier: str, *, pinned: bool = False, pending: bool = False) -> str:
    """A memory's tier for people, with what holds it there: ``cold (pinned, pending)``."""
    marks = [mark for mark, on in (("pinned", pinned), ("pending", pending)) if on]
    return f"{tier} ({', '.join(marks)})" if marks else tier


class MemoryRow(NamedTuple):
    """A memory's line in a table (:func:`memories_table`): its id, two short facts
    about it (a tier, a score...), and when it happened, its name and its content."""

    memory_id: str
    first: str
    second: str
    occurred_at: datetime
    name: str
    content: str


def memories_table(headers: tuple[str, str], rows: Iterable[MemoryRow]) -> Table:
    """Memories as a table: id, the two short columns ``headers`` names, when, name and
    content; at a narrow terminal id, the two short columns and content."""
    wide = wide_terminal()
    columns = [id_column(), *map(short_column, headers)]
    if wide:
        columns += [short_column("happened"), content_column("name", 30)]
    table = Table(*columns, content_column())
    for row in rows:
        cells: list[str | Text] = [row.memory_id, row.first, row.second]
        if wide:
            cells += [when(row.occurred_at), clipped(row.name)]
        table.add_row(*cells, clipped(row.content))
    return table


def memory_table(memories: list[Memory], pending: Collection[str] = ()) -> Table:
    """Memories as a table (:func:`memories_table`): id, tier (``pinned``, ``pending``
    said there), importance, when, name and content."""
    return memories_table(
        ("tier", "importance"),
        (
            MemoryRow(
                m.id,
                tier_text(m.tier, pinned=m.pinned, pending=m.id in pending),
                number(m.importance),
                m.occurred_at,
                m.name,
                m.content,
            )
            for m in memories
        ),
    )


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


def refused_text(refused: Sequence[RefusedMessage]) -> str:
    """The messages an ingest could make no memory of, a line each (the first 20)."""
    lines = [f"{len(refused)} message(s) could not become memories:"]
    lines += [f"  {r.message_id}: {r.reason}" for r in refused[:SHOWN_MOVES]]
    if len(refused) > SHOWN_MOVES:
        lines.append(f"  … and {len(refused) - SHOWN_MOVES} more (--json lists every one)")
    return "\n".join(lines)
