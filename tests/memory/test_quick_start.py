"""The quick start of docs/memory.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

DOC = Path(__file__).parent.parent.parent / "docs" / "memory.md"


def test_the_quick_start_adds_and_searches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocks = re.findall(r"^```python\n(.*?)^```", DOC.read_text(), re.DOTALL | re.MULTILINE)
    quick_start = blocks[0]
    assert len([line for line in quick_start.splitlines() if line]) <= 10
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(compile(quick_start, "docs/memory.md", "exec"), namespace)
    assert capsys.readouterr().out.splitlines() == ["Likes green tea in the morning"]
    assert len(namespace["hits"]) == 1  # chess is not about tea
