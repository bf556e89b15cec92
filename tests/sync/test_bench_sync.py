"""``pjai bench sync --quick``: one JSON object with every figure, per backend.

Figures are checked for presence and plausibility only; speed is the benchmark's job.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

FIGURES = {
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "fanin_per_s",
    "fanin_syncclient_per_s",
    "catchup_s",
    "idle_conn_kb",
}
SHARED = {
    "shared_fanin_per_s",
    "shared_fanin_pushes",
    "shared_fanin_refused",
    "p50_ms_under_load",
    "p99_ms_under_load",
    "samples_under_load",
}
FIGURES |= SHARED
POSTGRES_ONLY = {"fanin_2servers_per_s", *(f"{key}_2servers" for key in SHARED)}


def check_backend(figures: Any, extra: frozenset[str] = frozenset()) -> None:
    assert isinstance(figures, dict)
    assert figures.keys() == FIGURES | extra
    assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"] < 5_000
    for key in ("fanin_per_s", "fanin_syncclient_per_s", *extra):
        if "refused" not in key:  # a run may see no push lose the race
            assert 0 < figures[key] < 10_000_000, key
    # Every client of the shared store pushed twice; losing races made pushes refused.
    clients, pushes = 20, figures["shared_fanin_pushes"]
    assert pushes == 2 * clients, pushes
    assert figures["shared_fanin_refused"] >= 0
    assert 0 < figures["shared_fanin_per_s"] < 10_000_000
    assert 0 < figures["p50_ms_under_load"] <= figures["p99_ms_under_load"] < 5_000
    assert figures["samples_under_load"] > 0
    # The backlog was confirmed at all (the benchmark fails otherwise), after some time.
    assert 0 < figures["catchup_s"] < 120
    # An idle connection costs the server something, and far less than a megabyte.
    assert 0 < figures["idle_conn_kb"] < 1_024


def test_quick_run_prints_every_figure(tmp_path: Path) -> None:
    """SQLite always; PostgreSQL too when PJAI_TEST_POSTGRES_URL is set."""
    postgres = os.environ.get("PJAI_TEST_POSTGRES_URL")
    command = [sys.executable, "-m", "pjai", "bench", "sync", "--quick"]
    command += ["--data-dir", str(tmp_path)]
    env = {k: v for k, v in os.environ.items() if k != "PJAI_TEST_POSTGRES_URL"}
    if postgres:
        command += ["--postgres", postgres]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr

    figures = json.loads(done.stdout)
    assert (figures["benchmark"], figures["quick"]) == ("sync", True)
    assert (figures["samples"], figures["clients"], figures["events"]) == (100, 20, 4_000)
    assert figures["idle_connections"] == 100
    assert {"fanin_client", "fanin_counted", "catchup", "idle_client", "idle_measured"} <= (
        figures.keys()
    )
    check_backend(figures["sqlite"])
    if postgres:
        check_backend(figures["postgresql"], frozenset(POSTGRES_ONLY))
    else:
        assert figures["postgresql"] is None
        assert "PJAI_TEST_POSTGRES_URL" in figures["postgresql_reason"]
    assert list(tmp_path.iterdir()) == []  # its files are gone
