"""`pjai plugin`: install, list, enable, disable, remove and run sandboxed plugins."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from pjai.app.plugins import plugin_registry, run_plugin
from pjai.cli.common import (
    DEFAULT_DATA_DIR,
    DataDirOption,
    JsonFlag,
    console,
    data_directory,
    open_persona,
    print_json,
    reported,
)
from pjai.cli.memory.options import moves_text
from pjai.plugins import Limits, Registry

__all__ = ["app"]

SHOWN_ADDED = 5
"""How many of the memories a run added ``plugin run`` names (``--json`` lists all)."""

app = typer.Typer(
    help="Plugins: code run in a sandbox (no network, no files of the machine, OS limits) "
    "with only the capabilities its manifest grants (docs/security.md).",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(help="The plugin's name.")]


def _registry(data_dir: Path) -> Registry:
    """The plugins of the PJai data directory at ``data_dir``."""
    return plugin_registry(data_directory(data_dir).path)


@app.command("install")
def install(
    source: Annotated[Path, typer.Argument(help="The plugin's directory.", file_okay=False)],
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Copy a plugin (a directory with plugin.json) into the data directory, disabled;
    prints what it would be granted and its limits."""
    with reported():
        made = plugin_registry(data_directory(data_dir, create=True).path).install(source)
    if as_json:
        print_json({"enabled": made.enabled, "manifest": made.manifest})
        return
    m = made.manifest
    console.print(
        f"Installed {m.name} {m.version} (grants: {_granted(m.capabilities)}; "
        f"{_limits_text(m.limits)}), "
        f"disabled: `pjai plugin enable {m.name}` lets it run.",
        highlight=False,
    )


@app.command("list")
def list_plugins(data_dir: DataDirOption = DEFAULT_DATA_DIR, as_json: JsonFlag = False) -> None:
    """The installed plugins, their capabilities, every limit, and whether they may run
    (an enabled copy changed since is marked)."""
    with reported():
        found = _registry(data_dir).list()
    if as_json:
        print_json(
            [{"enabled": p.enabled, "changed": p.changed, "manifest": p.manifest} for p in found]
        )
        return
    if not found:
        console.print("no plugin installed")
    for p in found:
        m = p.manifest
        state = "enabled" if p.enabled else "disabled"
        if p.changed:
            state += ", changed since: enable it again"
        console.print(
            f"{m.name} {m.version} ({state}): grants "
            f"{_granted(m.capabilities)}; {_limits_text(m.limits)}",
            highlight=False,
        )


def _granted(capabilities: Sequence[str]) -> str:
    """A plugin's capabilities, as a human reads them."""
    return ", ".join(capabilities) or "nothing"


def _limits_text(limits: Limits) -> str:
    """Every limit of a plugin's manifest, as a human reads it."""
    return (
        f"limits {limits.cpu_s} s CPU, {limits.memory_mb} MB memory, {limits.file_mb} MB "
        f"files, {limits.wall_s} s wall time, {limits.processes} processes, "
        f"{limits.memories:,} memories and {limits.writes_mb} MB of memory text added"
    )


@app.command("enable")
def enable(name: NameArg, data_dir: DataDirOption = DEFAULT_DATA_DIR) -> None:
    """Let the plugin run, as its copy is now; prints what that grants and its limits."""
    with reported():
        m = _registry(data_dir).enable(name).manifest
    # What is granted now: a copy changed since an earlier grant may ask for more.
    console.print(
        f"{name} is enabled: it is granted {_granted(m.capabilities)}; {_limits_text(m.limits)}.",
        highlight=False,
    )


@app.command("disable")
def disable(name: NameArg, data_dir: DataDirOption = DEFAULT_DATA_DIR) -> None:
    """Stop the plugin from running (it stays installed)."""
    with reported():
        _registry(data_dir).enable(name, False)
    console.print(f"{name} is disabled.")


@app.command("remove")
def remove(name: NameArg, data_dir: DataDirOption = DEFAULT_DATA_DIR) -> None:
    """Delete the plugin's copy."""
    with reported():
        _registry(data_dir).remove(name)
    console.print(f"{name} is removed.")


@app.command("run")
def run(
    name: NameArg,
    persona: Annotated[
        str | None, typer.Argument(help="The persona it runs for (default: the active one).")
    ] = None,
    arg: Annotated[
        list[str] | None, typer.Option("--arg", help="KEY=VALUE passed to the plugin.")
    ] = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Run an enabled plugin for a persona in its sandbox; prints its result, what it
    used (as the OS measured it), the memories it added, the calls refused to it and
    what its adds made the optimizer move or delete."""
    arguments = {}
    for pair in arg or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r}: give KEY=VALUE", param_hint="--arg")
        arguments[key] = value
    directory = data_directory(data_dir)
    with open_persona(data_dir, persona) as (manager, persona_id):
        done = run_plugin(plugin_registry(directory.path), manager, name, persona_id, arguments)
    if as_json:
        print_json(done)
        return
    for line in done.log:
        console.print(f"log: {line}", highlight=False)
    console.print(
        f"{done.name}: {json.dumps(done.result, default=str)} ({done.cpu_s} s CPU, "
        f"{done.max_rss_mb} MB, {done.wall_s:.2f} s)",
        highlight=False,
    )
    if done.added:
        shown = ", ".join(done.added[:SHOWN_ADDED])
        left = len(done.added) - SHOWN_ADDED
        more = f", … and {left} more (--json lists every one)" if left > 0 else ""
        console.print(f"added {len(done.added)} memory(ies): {shown}{more}", highlight=False)
    if done.refused:
        counts = ", ".join(f"{call} {n}" for call, n in sorted(done.refused.items()))
        console.print(f"refused calls: {counts}", highlight=False)
    if done.moved:
        console.print(moves_text(done.moved), highlight=False, markup=False)
