"""Commands over both sides: ``db``, ``flags``, ``doctor``, ``verify``, ``repair``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pjai.app import (
    Checkup,
    DataDir,
    checkup,
    flag_states,
    migrations,
    rebalance_shards,
    set_flag,
    upgrade_sql,
)
from pjai.app import repair as repair_side
from pjai.cli.common import (
    DEFAULT_DATA_DIR,
    DataDirOption,
    JsonFlag,
    console,
    data_directory,
    errors,
    open_manager,
    print_json,
    print_result,
    progress_bar,
    reported,
)
from pjai.cli.output import (
    id_column,
    number,
    plain,
    print_table,
    whole_column,
    wide_terminal,
)
from pjai.hybrid import Side

db = typer.Typer(help="The SQL primary's schema (Alembic migrations).", no_args_is_help=True)
flags = typer.Typer(help="Feature flags, the reactive store switch among them.")


@db.command()
def upgrade(data_dir: DataDirOption = DEFAULT_DATA_DIR, as_json: JsonFlag = False) -> None:
    """Create or upgrade the SQL primary's tables (every shard)."""
    with reported():
        done = upgrade_sql(DataDir(data_dir))
    if as_json:
        print_json([{"url": url, "revision": revision} for url, revision in done])
        return
    for url, revision in done:
        console.print(f"{url}: at {revision}", highlight=False)


@db.command()
def current(data_dir: DataDirOption = DEFAULT_DATA_DIR, as_json: JsonFlag = False) -> None:
    """Show each shard's migration and the newest this PJai knows."""
    with reported():
        directory = DataDir(data_dir)
        directory.require(sql_only=True)
        found = migrations(directory)
    if as_json:
        shards = [{"url": url, "revision": revision} for url, revision in found.shards]
        print_json({"shards": shards, "newest": found.newest})
        return
    for url, revision in found.shards:
        console.print(f"{url}: {revision or 'empty'}", highlight=False)
    console.print(f"newest: {found.newest}")


@flags.callback(invoke_without_command=True)
def show_flags(
    ctx: typer.Context, data_dir: DataDirOption = DEFAULT_DATA_DIR, as_json: JsonFlag = False
) -> None:
    """Show every flag, its value and where the value comes from."""
    if ctx.invoked_subcommand is not None:
        return
    with reported():
        report = flag_states(data_directory(data_dir))
    for name in report.unknown:
        errors.print(f"note: {name!r} in the flags file is not a flag of this PJai; ignored")
    if as_json:
        states = report.states
        print(json.dumps({s.name: {"value": s.value, "source": s.source} for s in states}))
        return
    table = Table("flag", "value", "from", "what it does")
    for s in report.states:
        table.add_row(s.name, str(s.value).lower(), s.source, s.description)
    print_table(table)


@flags.command("set")
def set_flag_command(
    name: Annotated[str, typer.Argument(help="Flag name, e.g. use_livestore.")],
    value: Annotated[str, typer.Argument(help="true or false.")],
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Set a flag; running PJai processes follow it at their next command.

    The change is recorded in the audit trail (the event log) with its old value.
    """
    with reported(), progress_bar("Catching up") as progress:
        change = set_flag(
            DataDir(data_dir), name, value, source="pjai flags set", progress=progress
        )
    state = change.state
    note = " (the environment overrides the file)" if state.source == "environment" else ""
    changed = {
        "name": name,
        "value": state.value,
        "source": state.source,
        "old": change.old,
        "recorded": change.recorded,
    }
    print_result(changed, as_json, f"{name} = {str(state.value).lower()}{note}")


def doctor(data_dir: DataDirOption = DEFAULT_DATA_DIR, as_json: JsonFlag = False) -> None:
    """Health of the store, the SQL shards and the bridge, the memory vectors, and the
    data files. Exits with code 2 when the status is down (for scripts and probes)."""
    with reported(), progress_bar("Catching up") as progress:
        found = checkup(DataDir(data_dir), progress=progress, create=False)
    health = found.health
    if as_json:
        print(json.dumps(found.to_dict(), default=str))
    else:
        _print_health(found, data_dir)
    if health.status == "down":
        raise typer.Exit(code=2)


def _print_health(found: Checkup, data_dir: Path) -> None:
    health = found.health
    # At a narrow terminal a shard's URL would be cut or broken over lines in the table:
    # the table names the shard and its URL is printed whole below it.
    wide = wide_terminal()
    table = Table(
        whole_column("system"),
        "status",
        "probe ms",
        "position",
        whole_column("detail"),
        title=f"PJai · {health.status}",
    )
    s = health.store
    table.add_row(
        "store",
        s.status,
        plain(s.probe_ms),
        str(s.head),
        f"{s.events} events, {s.pending} pending, {s.quarantined} quarantined, "
        f"{s.disk_bytes:,} bytes" + (f" · {s.error}" if s.error else ""),
    )
    for place, shard in enumerate(health.shards, 1):
        detail = (
            f"{shard.journal_events} journaled, {shard.quarantined} quarantined, "
            f"{shard.disk_bytes:,} bytes, {_pool(shard.pool)}"
        )
        table.add_row(
            shard.url if wide else f"shard {place}",
            shard.status,
            plain(shard.probe_ms),
            str(shard.checkpoint),
            detail + (f" · {shard.error}" if shard.error else ""),
        )
    b = health.bridge
    table.add_row(
        "bridge",
        "lagging" if b.lag_events else "ok",
        "-",
        f"lag {b.lag_events}",
        "no lag measured" if b.lag_p95_ms is None else f"lag p95 {number(b.lag_p95_ms)} ms",
    )
    vectors = found.vectors
    if isinstance(vectors, str):
        table.add_row("vectors", "off", "-", "-", vectors)
    else:
        table.add_row(
            "vectors",
            "behind" if vectors.waiting else "ok",
            "-",
            f"{vectors.current} of {vectors.memories}",
            f"{vectors.model}, {vectors.waiting} waiting"
            + (f", {vectors.stale} stale to drop" if vectors.stale else ""),
        )
    print_table(table)
    if not wide:
        for place, shard in enumerate(health.shards, 1):
            console.print(f"shard {place}: {shard.url}", highlight=False)
    for problem in s.damage:
        console.print(f"store file damage: {problem}", highlight=False)
    q = health.quarantine
    if q.alarm:
        console.print(
            f"Quarantined events not yet acknowledged: {q.store} on the store, {q.sql} on SQL "
            "(confirmed events this instance could not apply; they stay in the log):"
        )
        for event in q.events:
            console.print(
                f"  e{event.position} {event.name} {event.event_id} "
                f"({', '.join(event.sides)}): {event.reason}",
                highlight=False,
            )
        console.print("Once reviewed, `pjai repair --ack-quarantine` acknowledges them.")
    if q.reviewed_through:
        console.print(f"Quarantined events through e{q.reviewed_through} were acknowledged.")
    if health.last_error:
        console.print(f"last error: {health.last_error}", highlight=False)
    files = " · ".join(f"{f.name} {f.bytes:,} bytes" for f in found.files)
    console.print(f"files in {data_dir}: {files}", highlight=False)


def _pool(pool: dict[str, int]) -> str:
    """A connection pool's figures for people: ``pool 1 of 5 in use``."""
    if {"size", "checkedout"} <= pool.keys():
        over = pool.get("overflow", 0)
        extra = f" (+{over} overflow)" if over > 0 else ""
        return f"pool {pool['checkedout']} of {pool['size']} in use{extra}"
    return f"pool {plain(pool)}"


def verify(data_dir: DataDirOption = DEFAULT_DATA_DIR, as_json: JsonFlag = False) -> None:
    """Compare the store and the SQL primary per table and persona."""
    with (
        open_manager(data_dir) as manager,
        progress_bar("Verifying") as progress,
    ):
        report = manager.verify(progress)
    if as_json:
        print(json.dumps(report.to_dict()))
    else:
        table = Table(
            "table", "store rows", "SQL rows", "equal", title=f"verify · {report.seconds:.2f} s"
        )
        for t in report.tables:
            equal = "yes" if t.equal else "DAMAGED" if t.damaged or t.sql_damaged else "NO"
            table.add_row(t.table, str(t.store_rows), str(t.sql_rows), equal)
        print_table(table)
        for problem in report.store_damage:
            console.print(f"store file damage: {problem}", highlight=False)
        for t in report.tables:
            if t.damaged:
                console.print(f"{t.table}: {t.damaged}", highlight=False)
            for r in t.unreadable:
                console.print(f"    {r.key}: {r.problem} {' '.join(r.columns)}", highlight=False)
        if report.store_damage or any(t.damaged for t in report.tables):
            console.print("`pjai repair --side store` rebuilds the store in a new file.")
        for problem in report.sql_damage:
            console.print(f"SQL file damage: {problem}", highlight=False)
        for t in report.tables:
            if t.sql_damaged:
                console.print(f"{t.table} on SQL: {t.sql_damaged}", highlight=False)
        if report.sql_damage:
            console.print("`pjai repair --side sql` rebuilds it in a new file.")
        for t in report.tables:
            for p in t.personas:
                counts = f"store {p.store_rows} rows, SQL {p.sql_rows}"
                console.print(f"{t.table} · persona {p.persona_id}: {counts}")
                for r in p.rows:
                    console.print(f"    {r.key}: {r.problem} {' '.join(r.columns)}")
    if not report.equal:
        raise typer.Exit(code=2)


def repair(
    side: Annotated[
        str | None, typer.Option("--side", help="What to rebuild: sql or store.")
    ] = None,
    ack_quarantine: Annotated[
        bool,
        typer.Option(
            "--ack-quarantine",
            help="Acknowledge the quarantined events `pjai doctor` lists; the records stay.",
        ),
    ] = False,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Rebuild one side from the event log, or acknowledge quarantined events."""
    if ack_quarantine:
        if side is not None:
            raise typer.BadParameter("give --side or --ack-quarantine, not both")
        with open_manager(data_dir) as manager:
            acknowledged = manager.acknowledge_quarantine()
        if as_json:
            print_json(acknowledged)
            return
        for event in acknowledged.events:
            console.print(
                f"  e{event.position} {event.name} {event.event_id}: {event.reason}",
                highlight=False,
            )
        console.print(
            f"Acknowledged quarantined events through e{acknowledged.reviewed_through}: "
            f"{acknowledged.store} on the store, {acknowledged.sql} on SQL. Their records stay."
        )
        return
    if side not in ("sql", "store"):
        raise typer.BadParameter("--side is sql or store (or give --ack-quarantine)")
    chosen: Side = "sql" if side == "sql" else "store"
    directory = data_directory(data_dir)
    with (
        reported(),
        progress_bar("Catching up") as opening,
        progress_bar(f"Rebuilding {side}") as progress,
    ):
        done = repair_side(directory, chosen, progress, opening=opening)
    if as_json:
        print_json(done)
        return
    if done.rebuilt is not None:
        rebuilt = done.rebuilt
        for problem in rebuilt.problems:
            console.print(f"damage: {problem}", highlight=False)
        source = "its event log" if rebuilt.source == "log" else "SQL's journal"
        tail = (
            f" and {rebuilt.from_log} more from its log"
            if rebuilt.source == "journal" and rebuilt.from_log
            else ""
        )
        console.print(
            f"Rebuilt the store in a new file from {source}{tail}: {rebuilt.events} event(s). "
            f"The damaged file is kept as {rebuilt.damaged_copy}.",
            highlight=False,
        )
    elif done.done is not None:
        for aside in done.set_aside:
            console.print(f"damage: {aside.path}: {aside.problems[0]}", highlight=False)
            console.print(
                f"The damaged file is kept as {aside.damaged_copy}; a new one took its place.",
                highlight=False,
            )
        source = "the store's event log" if done.done.source == "log" else "SQL's journal"
        console.print(f"Rebuilt {side} from {done.done.events} event(s) of {source}.")


shards = typer.Typer(help="SQL shards (PJAI_SQL_SHARDS).", no_args_is_help=True)


@shards.command()
def rebalance(data_dir: DataDirOption = DEFAULT_DATA_DIR, as_json: JsonFlag = False) -> None:
    """Move personas to the shard the hash ring now gives them (after adding a shard)."""
    directory = data_directory(data_dir)
    with reported(), progress_bar("Moving personas") as progress:
        moved = rebalance_shards(directory, progress)
    if as_json:
        print_json(moved)
        return
    console.print(f"Moved {moved.personas} persona(s), {moved.rows} row(s).")
    table = Table(id_column("persona"), "from shard", "to shard")
    for persona_id, source, target in moved.moves:
        table.add_row(persona_id, str(source), str(target))
    if moved.moves:
        print_table(table)
