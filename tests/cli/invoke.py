"""Running ``pjai`` commands on one data directory in the tests."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from pjai.cli import app

runner = CliRunner()


class Cli:
    """``pjai`` commands on the data directory ``data`` (with ``env`` set while they run)."""

    def __init__(self, data: Path, env: Mapping[str, str] | None = None) -> None:
        self.data = data
        self.env = dict(env or {})

    def run(self, *args: str) -> Result:
        """Run a command on the data directory."""
        return runner.invoke(app, [*args, "--data-dir", str(self.data)], env=self.env)

    def __call__(self, *args: str, code: int = 0) -> str:
        """Stdout of a command that must exit with ``code``."""
        result = self.run(*args)
        assert result.exit_code == code, result.output or repr(result.exception)
        return result.stdout

    def json(self, *args: str, code: int = 0) -> Any:
        """The JSON a command prints with ``--json``."""
        return json.loads(self(*args, "--json", code=code))

    def fails(self, *args: str, code: int = 1) -> str:
        """Stderr, on one line, of a command that must fail with ``code``."""
        result = self.run(*args)
        assert result.exit_code == code, result.output or repr(result.exception)
        return " ".join(result.stderr.split())
