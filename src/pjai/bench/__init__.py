"""Benchmarks behind ``pjai bench``: ``pjai.bench.store`` and ``pjai.bench.hybrid``.

Each returns a JSON-ready dict of measured figures. Nothing is imported here, so that a
benchmark's child processes load only what they measure.
"""

from __future__ import annotations

__all__: list[str] = []
