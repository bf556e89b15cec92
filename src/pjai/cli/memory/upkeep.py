"""``pjai memory optimize|stats|ingest-conversation``: a persona's memory as a whole."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from pjai.app import Memories
from pjai.cli.common import (
    DEFAULT_DATA_DIR,
    ConversationArg,
    DataDirOption,
    JsonFlag,
    console,
    open_manager,
    print_json,
    print_result,
)
from pjai.cli.memory.options import moves_text
from pjai.memory import OptimizationReport

__all__ = ["ingest", "optimize", "stats"]

PersonaOpt = Annotated[
    str | None, typer.Option("--persona", help="Only this persona (default: all).")
]


def _print_report(report: OptimizationReport) -> None:
    console.print(
        f"{report.persona_id}: {report.events} event(s); promoted {report.promoted}, "
        f"demoted {report.demoted}, archived {report.archived}, deleted "
        f"{report.deleted_for_retention} for retention and {report.deleted_for_space} for "
        f"space; tiers {report.tiers_before} → {report.tiers_after}"
    )
    for note in report.notes:
        console.print(f"  {note}")


def optimize(
    persona_id: PersonaOpt = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Re-tier memories by score, apply retention and the size limit."""
    with open_manager(data_dir) as manager:
        reports = Memories(manager).optimize(persona_id)
    if as_json:
        print_json(reports)
        return
    for report in reports:
        _print_report(report)


def stats(
    persona_id: PersonaOpt = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Memory statistics and health (tiers, capacity use, fragmentation, alerts)."""
    with open_manager(data_dir) as manager:
        found = Memories(manager).stats(persona_id)
    if as_json:
        print_json(found)
        return
    figures, report = found.statistics, found.health
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


def ingest(
    conversation_id: ConversationArg,
    importance: Annotated[float, typer.Option(help="Importance of each memory.")] = 0.5,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Turn a conversation's messages into memories (each once)."""
    with open_manager(data_dir) as manager:
        done = Memories(manager).ingest(conversation_id, importance=importance)
    print_result(done, as_json, f"Added {done.added} memory(ies); {done.skipped} already there.")
    if done.moves and not as_json:
        console.print(moves_text(done.moves), highlight=False)
