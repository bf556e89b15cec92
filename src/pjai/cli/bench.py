"""``pjai bench ...``: benchmarks that print one JSON object."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from pjai.bench import run_store_bench
from pjai.cli.common import errors

app = typer.Typer(help="Benchmarks; each prints one JSON object.", no_args_is_help=True)


@app.command()
def store(
    quick: Annotated[bool, typer.Option(help="A seconds-long smoke run.")] = False,
    workdir: Annotated[
        Path | None, typer.Option(help="Empty directory for the benchmark files (default: temp).")
    ] = None,
) -> None:
    """Commit throughput, live and point query latency, boot, rebuild and RSS of the store."""
    with tempfile.TemporaryDirectory(prefix="pjai-bench-") as temp:
        directory = workdir or Path(temp)
        directory.mkdir(parents=True, exist_ok=True)
        result = run_store_bench(
            directory, quick=quick, report=lambda text: errors.print(f"· {text}")
        )
    print(json.dumps(result))
