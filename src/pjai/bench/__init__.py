"""Benchmarks behind ``pjai bench``: each returns a JSON-ready dict of measured figures."""

from __future__ import annotations

from pjai.bench.hybrid import run_hybrid_bench
from pjai.bench.store import run_store_bench

__all__ = ["run_hybrid_bench", "run_store_bench"]
