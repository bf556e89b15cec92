"""Every command refuses a value that is not UTF-8 text, naming it, as a usage error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pjai.store import Store
from tests.cli.invoke import Cli

BYTE_FF = "\udcff"  # how Python decodes a 0xFF byte in argv: a surrogate escape
LONE = "\ud800"  # a lone surrogate that no byte decodes to


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    cli = Cli(tmp_path / "data")
    cli("persona", "create", "Ada", "--id", "ada")
    return cli


def memories(cli: Cli) -> int:
    with Store.open(cli.data / "store.db") as store:
        rows = store.summary()["rows"]
        assert isinstance(rows, dict)
        return int(rows["memories"])


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["memory", "add", "ada", f"caf{BYTE_FF}"], "'content': not valid UTF-8 (byte 0xFF"),
        (["memory", "add", "ada", f"a{LONE}"], "'content': not text (a lone surrogate U+D800"),
        (["memory", "add", "ada", "x", "--id", BYTE_FF], "'--id'"),
        (["memory", "add", "ada", "x", "--tag", "ok", "--tag", BYTE_FF], "'--tag'"),
        (["memory", "add", f"ad{BYTE_FF}", "x"], "'[PERSONA] CONTENT'"),
        (["memory", "add", f"caf{BYTE_FF}", "-p", "ada"], "'[PERSONA] CONTENT'"),
        (["persona", "create", BYTE_FF], "'name'"),
        (["persona", "list", "--name", LONE], "'--name'"),
        (["persona", "update", "ada", "--set", f"privacy.analytics={BYTE_FF}"], "'--set'"),
        (["bookmark", "create", "ada", "B", "--label", BYTE_FF], "'--label'"),
        (["conversation", "start", "ada", "--title", BYTE_FF], "'--title'"),
        (["flags", "set", BYTE_FF, "true"], "'name'"),
    ],
)
def test_a_value_that_is_not_text_is_refused_by_name(cli: Cli, args: list[str], named: str) -> None:
    message = cli.fails(*args, code=2)
    assert f"Invalid value for {named}" in message
    assert "Traceback" not in message
    assert memories(cli) == 0


def test_a_data_dir_that_is_not_text_is_refused(tmp_path: Path) -> None:
    bad = Cli(tmp_path / f"d{BYTE_FF}")
    assert "Invalid value for '--data-dir'" in bad.fails("persona", "list", code=2)
    assert list(tmp_path.iterdir()) == []


def test_invalid_utf8_bytes_on_a_real_command_line(tmp_path: Path) -> None:
    data = os.fsencode(tmp_path / "data")
    base = [sys.executable, "-m", "pjai"]
    made = subprocess.run(
        [*base, "persona", "create", "Ada", "--id", "ada", "--data-dir", data],
        capture_output=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    done = subprocess.run(
        [*base, "memory", "add", "ada", b"caf\xe9", "--data-dir", data],
        capture_output=True,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    error = " ".join(done.stderr.decode().split())
    assert "Invalid value for 'content': not valid UTF-8 (byte 0xE9 at character 4)" in error
    assert b"Traceback" not in done.stderr
    env = {**os.environ, "PJAI_DATA_DIR": str(tmp_path / f"e{BYTE_FF}")}
    from_env = subprocess.run([*base, "persona", "list"], capture_output=True, env=env, check=False)
    assert from_env.returncode == 2, from_env.stderr
    assert "'--data-dir'" in from_env.stderr.decode()
    assert "PJAI_DATA_DIR" in from_env.stderr.decode()
