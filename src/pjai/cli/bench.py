"""``pjai bench ...``: benchmarks that print one JSON object."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer

from pjai.app import DataDir
from pjai.bench.graph import run_graph_bench
from pjai.bench.hybrid import run_hybrid_bench
from pjai.bench.recall import run_recall_bench
from pjai.bench.store import run_store_bench
from pjai.bench.sync import run_sync_bench
from pjai.cli.common import (
    DEFAULT_DATA_DIR,
    DataDirOption,
    JsonFlag,
    console,
    progress_bar,
    reported,
)
from pjai.cli.output import plain

app = typer.Typer(help="Benchmarks; each prints one JSON object.", no_args_is_help=True)

Keep = Annotated[bool, typer.Option(help="Keep the benchmark's files.")]
Quick = Annotated[bool, typer.Option(help="A seconds-long smoke run.")]
PostgresUrl = Annotated[
    str | None,
    typer.Option(
        envvar="PJAI_TEST_POSTGRES_URL",
        help="PostgreSQL URL to measure too (a fresh schema is made and dropped).",
    ),
]


def _run(
    bench: Callable[..., dict[str, Any]], data_dir: Path, *, prefix: str, keep: bool, doing: str
) -> None:
    """Run ``bench(workdir, progress=...)`` in a new ``<prefix>*`` directory inside the data
    directory, with a progress bar, and print its figures as JSON."""
    with (
        reported(),
        DataDir(data_dir).scratch(prefix, keep=keep) as workdir,
        progress_bar(doing) as progress,
    ):
        result = bench(workdir, progress=progress)
    print(json.dumps(result))


@app.command()
def store(
    quick: Quick = False,
    peer: Annotated[
        str | None,
        typer.Option(
            help="Run the same loads and single commits through this peer right after "
            "and report the ratios (eventsourcing; the pjai[bench] extra)."
        ),
    ] = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    keep: Keep = False,
) -> None:
    """Commit throughput, live and point query latency, boot, rebuild and RSS of the store.

    The benchmark works in a new bench-* directory inside the data directory and
    removes it afterwards unless --keep.
    """
    bench = partial(run_store_bench, quick=quick, peer=peer)
    _run(bench, data_dir, prefix="bench-store-", keep=keep, doing="Benchmarking the store")


@app.command()
def crypto(
    quick: Quick = False,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    keep: Keep = False,
) -> None:
    """What field encryption costs: sealing and opening an event, batched commits with
    and without it, and sync latency with it (docs/security.md)."""
    from pjai.bench.crypto import run_crypto_bench

    bench = partial(run_crypto_bench, quick=quick)
    _run(bench, data_dir, prefix="bench-crypto-", keep=keep, doing="Benchmarking encryption")


@app.command()
def ui(
    quick: Quick = False,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    keep: Keep = False,
) -> None:
    """The web app in headless Chromium: commit-to-DOM and sync-to-DOM latency, explorer
    first paint at 100,000 memories, persona switch, server memory per tab."""
    from pjai.bench.ui import run_ui_bench  # Playwright loads only for this command

    bench = partial(run_ui_bench, quick=quick)
    _run(bench, data_dir, prefix="bench-ui-", keep=keep, doing="Benchmarking the web app")


@app.command()
def hybrid(
    quick: Quick = False,
    memories: Annotated[
        int | None,
        typer.Option(min=1, help="Memories to load instead of 1,000,000 (5,000 with --quick)."),
    ] = None,
    personas: Annotated[
        int | None,
        typer.Option(min=1, help="Personas to share them instead of 1,000 (20 with --quick)."),
    ] = None,
    postgres: PostgresUrl = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    keep: Keep = False,
) -> None:
    """End-to-end commits, bridge lag, repository queries, keyword search and verify, per
    SQL backend."""
    bench = partial(
        run_hybrid_bench, postgres_url=postgres, quick=quick, memories=memories, personas=personas
    )
    _run(bench, data_dir, prefix="bench-hybrid-", keep=keep, doing="Benchmarking store + SQL")


@app.command()
def sync(
    quick: Quick = False,
    postgres: PostgresUrl = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    keep: Keep = False,
) -> None:
    """Sync over WebSockets: commit-to-live-query latency, fan-in, catch-up, memory.

    The sync servers run in child processes on loopback ports, per SQL backend.
    """
    bench = partial(run_sync_bench, postgres_url=postgres, quick=quick)
    _run(bench, data_dir, prefix="bench-sync-", keep=keep, doing="Benchmarking sync")


@app.command()
def recall(
    data: Annotated[
        Path,
        typer.Option(
            help="Directory of LoCoMo-format conversation files (*.json).",
            exists=True,
            file_okay=False,
        ),
    ],
    latency_memories: Annotated[
        int, typer.Option(min=1, help="Store size for the keyword latency figure.")
    ] = 10_000,
    semantic: Annotated[
        bool, typer.Option(help="Measure semantic and hybrid search when installed.")
    ] = True,
    folds: Annotated[
        bool,
        typer.Option(
            "--folds",
            help="Also choose the ranking parameters leave-one-conversation-out and report "
            "each held-out conversation.",
        ),
    ] = False,
    quick: Annotated[
        bool,
        typer.Option(
            help="A smoke run: each conversation's first 3 sessions, latency at 2,000 "
            "memories at most."
        ),
    ] = False,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    keep: Keep = False,
    as_json: JsonFlag = False,
) -> None:
    """Retrieval quality (recall@k, hit@k, session level too) and search latency on
    LoCoMo-format data."""
    with reported(), DataDir(data_dir).scratch("bench-recall-", keep=keep) as workdir:
        result = run_recall_bench(
            data,
            workdir=workdir,
            semantic=semantic,
            latency_memories=latency_memories,
            folds=folds,
            quick=quick,
        )
    if as_json:
        print(json.dumps(result))
        return
    for method in ("keyword", "semantic", "hybrid"):
        if method in result:
            f = result[method]
            line = (
                f"{method:>8}: recall@5 {f['recall@5']:.3f}  recall@10 {f['recall@10']:.3f}  "
                f"hit@5 {f['hit@5']:.3f}  hit@10 {f['hit@10']:.3f}  "
                f"p50 {plain(f['p50_ms'])} ms  p95 {plain(f['p95_ms'])} ms"
            )
            console.print(line)
    if "semantic_unavailable" in result:
        console.print(f"semantic: {result['semantic_unavailable']}")
    for method, cross in result.get("folds", {}).items():
        for fold in cross["per_fold"]:
            chosen = ", ".join(f"{k} {v}" for k, v in fold["chosen"].items())
            console.print(
                f"{method:>8} fold {fold['held_out']}: recall@10 {fold['recall@10']:.3f} "
                f"(trained {fold['train_recall@10']:.3f}; {chosen})",
                highlight=False,
            )
        mean, low, high = cross["mean"], cross["min"], cross["max"]
        console.print(
            f"{method:>8} held-out mean: recall@10 {mean['recall@10']:.3f} "
            f"({low['recall@10']:.3f}-{high['recall@10']:.3f}), session hit@1 "
            f"{mean['session_hit@1']:.3f}",
            highlight=False,
        )
    at = result["memories_at_latency"]
    for method in ("keyword", "semantic", "hybrid"):
        if f"{method}_p95_ms_at_scale" in result:
            p95 = result[f"{method}_p95_ms_at_scale"]
            console.print(f"{method} search p95 at {at:,} memories: {plain(p95)} ms")


@app.command()
def autolink(
    memories: Annotated[
        int, typer.Option(min=2, help="Memories of the synthetic persona.")
    ] = 8_000,
    data: Annotated[
        Path | None,
        typer.Option(
            help="Directory of LoCoMo-format conversation files (*.json): real text too.",
            exists=True,
            file_okay=False,
        ),
    ] = None,
    exhaustive: Annotated[
        bool, typer.Option(help="Also compare every candidate, for the ratio and recall.")
    ] = True,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    keep: Keep = False,
) -> None:
    """Linking memories by their words: the bounded candidates against every candidate,
    seconds, links and the share of the links found both ways."""
    from pjai.bench.autolink import run_autolink_bench

    bench = partial(run_autolink_bench, memories=memories, data=data, exhaustive=exhaustive)
    _run(bench, data_dir, prefix="bench-autolink-", keep=keep, doing="Linking memories")


@app.command()
def graph(
    memories: Annotated[int, typer.Option(min=2, help="Memories in the graph.")] = 100_000,
    links: Annotated[int, typer.Option(min=1, help="Links drawn per memory.")] = 3,
    depth: Annotated[int, typer.Option(min=1, max=10, help="Links to walk.")] = 3,
    queries: Annotated[int, typer.Option(min=1, help="Traversals to time.")] = 500,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    keep: Keep = False,
) -> None:
    """Neighbours within --depth links and connected components on a random graph."""
    bench = partial(
        run_graph_bench, memories=memories, links_per_memory=links, depth=depth, queries=queries
    )
    _run(bench, data_dir, prefix="bench-graph-", keep=keep, doing="Building the graph")


@app.command()
def ingest(
    messages: Annotated[int, typer.Option(min=1, help="Messages of the conversation.")] = 10_000,
    batch: Annotated[
        int | None,
        typer.Option(min=1, help="Messages per commit instead of the ingest's own (1,000)."),
    ] = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    keep: Keep = False,
) -> None:
    """A conversation of --messages messages made into memories: seconds, messages per
    second, peak RSS, the batch size, and the longest a concurrent writer waited."""
    from pjai.bench.ingest import run_ingest_bench

    bench = partial(run_ingest_bench, messages=messages, batch=batch)
    _run(bench, data_dir, prefix="bench-ingest-", keep=keep, doing="Building the conversation")
