"""``pjai memory optimize|stats|ingest-conversation``: a persona's memory as a whole."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from pjai.app import Memories, resolve
from pjai.cli.common import (
    DEFAULT_DATA_DIR,
    ConversationArg,
    DataDirOption,
    JsonFlag,
    console,
    for_persona,
    open_manager,
    print_json,
    print_result,
)
from pjai.cli.memory.options import AllFlag, moves_text, refused_text
from pjai.cli.output import plain
from pjai.memory import OptimizationReport

__all__ = ["ingest", "optimize", "stats"]


def _print_report(report: OptimizationReport) -> None:
    console.print(
        f"{report.persona_id}: {report.events} event(s); promoted {report.promoted}, "
        f"demoted {report.demoted}, archived {report.archived}, deleted "
        f"{report.deleted_for_retention} for retention, {report.deleted_for_privacy} for "
        f"privacy and {report.deleted_for_space} for space; tiers "
        f"{plain(report.tiers_before)} → {plain(report.tiers_after)}"
    )
    for note in report.notes:
        console.print(f"  {note}")


@for_persona
def optimize(
    persona: str | None = None,
    every: AllFlag = False,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Re-tier a persona's memories (by default the active one's; --all: everyone's) by
    score, apply retention and the size limit."""
    with open_manager(data_dir) as manager:
        scope = resolve.persona_scope(manager, persona, every=every)
        reports = Memories(manager).optimize(scope)
    if as_json:
        print_json(reports)
        return
    for report in reports:
        _print_report(report)


@for_persona
def stats(
    persona: str | None = None,
    every: AllFlag = False,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Memory statistics and health (tiers, capacity use, fragmentation, alerts) of a
    persona (by default the active one; --all: every persona)."""
    with open_manager(data_dir) as manager:
        scope = resolve.persona_scope(manager, persona, every=every)
        found = Memories(manager).stats(scope)
    if as_json:
        print_json(found)
        return
    figures, report = found.statistics, found.health
    console.print(
        f"{figures.total} live memories, {figures.deleted} deleted; "
        f"by tier {plain(figures.by_tier)}; by type {plain(figures.by_type)}"
    )
    console.print(
        f"average importance {plain(figures.average_importance)}, "
        f"{figures.high_importance} important, {figures.frequently_accessed} often opened, "
        f"{figures.accessed_last_24h} opened in the last 24 h"
    )
    use = ", ".join(f"{t} {u:.0%}" for t, u in report.capacity_use.items()) or "-"
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
        conversation_id = resolve.conversation_id(manager, conversation_id)
        done = Memories(manager).ingest(conversation_id, importance=importance)
    print_result(done, as_json, f"Added {done.added} memory(ies); {done.skipped} already there.")
    if done.refused and not as_json:
        console.print(refused_text(done.refused), highlight=False)
    if done.moves and not as_json:
        console.print(moves_text(done.moves), highlight=False)
