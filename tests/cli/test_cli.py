"""The command line: demo, store commands, benchmark smoke run."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import urlopen

import apsw
import pytest
import typer.main
from typer.testing import CliRunner

from pjai.bench.peer import run_peer
from pjai.bench.webapp import free_port
from pjai.cli import app
from pjai.demo import run_demo
from pjai.errors import ConfigError
from pjai.hybrid import HybridDatabaseManager
from pjai.store import Store
from tests.helpers import persona, take_from_a_newer_pjai

runner = CliRunner()

STORE_BENCH_KEYS = {
    "commit_batched_per_s",
    "commit_batched_full_per_s",
    "commit_single_per_s",
    "commit_single_full_per_s",
    "single_commit_pages",
    "live_p50_ms",
    "live_p95_ms",
    "live_p99_ms",
    "point_p50_ms",
    "point_p95_ms",
    "boot_s",
    "rebuild_per_s",
    "rss_mb",
}


@pytest.mark.parametrize("delay", ["-1", "nan", "1e308"])
def test_demo_refuses_a_delay_it_cannot_wait_before_writing(tmp_path: Path, delay: str) -> None:
    result = runner.invoke(app, ["demo", "--data-dir", str(tmp_path / "data"), "--delay", delay])
    assert result.exit_code == 2
    assert "--delay" in result.output
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("delay", [-1.0, math.nan, 61.0])
def test_the_demo_checks_its_delay_before_seeding(tmp_path: Path, delay: float) -> None:
    with HybridDatabaseManager.open(tmp_path / "data", environ={}) as manager:
        with pytest.raises(ConfigError, match="the delay must be 0 to 60 seconds"):
            run_demo(manager, print, print, delay=delay)
        assert manager.head() == 0


def test_demo_shows_the_live_query_reacting(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = runner.invoke(app, ["demo", "--data-dir", str(data), "--delay", "0"])
    assert result.exit_code == 0, result.output
    assert "live query · Initial state" in result.output
    assert "Deadline on Friday" in result.output
    assert "result unchanged" in result.output  # the commit to the inactive persona
    assert "Basil becomes the active persona" in result.output
    with Store.open(data / "store.db") as store:
        rows = store.summary()["rows"]
        assert (rows["memories"], rows["personas"]) == (7, 2)
    again = runner.invoke(app, ["demo", "--data-dir", str(data), "--delay", "0"])
    assert again.exit_code == 0, again.output
    assert "there from an earlier run" in " ".join(again.output.split())
    assert "Deadline on Friday" in again.output
    with Store.open(data / "store.db") as store:
        rows = store.summary()["rows"]
        assert (rows["memories"], rows["personas"]) == (7, 2)  # nothing added twice
    quiet = runner.invoke(app, ["demo", "--data-dir", str(data), "--delay", "0", "--json"])
    assert quiet.exit_code == 0, quiet.output
    summary = json.loads(quiet.stdout)  # one line of JSON, no tables
    assert (summary["memories"], summary["live_results"] > 0) == (7, True)


def test_demo_leaves_a_directory_with_personas_of_its_own_alone(tmp_path: Path) -> None:
    where = ["--data-dir", str(tmp_path / "data")]
    for name in ("Ada", "Bob"):  # a name of the demo's, and one of the person's own
        made = runner.invoke(app, ["persona", "create", name, "--activate", *where])
        assert made.exit_code == 0, made.output
    refused = runner.invoke(app, ["demo", "--delay", "0", *where])
    assert refused.exit_code == 1
    assert "this one holds Ada, Bob: give the demo another --data-dir" in " ".join(
        refused.output.split()
    )
    with Store.open(tmp_path / "data" / "store.db") as store:
        rows = store.summary()["rows"]
        assert (rows["memories"], rows["personas"]) == (0, 2)
    for name in ("Ada", "Bob"):
        runner.invoke(app, ["persona", "delete", name, "--yes", *where])
    runner.invoke(app, ["persona", "create", "Bob", *where])  # no description at all
    assert runner.invoke(app, ["demo", "--delay", "0", *where]).exit_code == 1


def test_data_dir_comes_from_the_environment(tmp_path: Path) -> None:
    data = tmp_path / "env-data"
    runner.invoke(app, ["demo", "--delay", "0"], env={"PJAI_DATA_DIR": str(data)})
    result = runner.invoke(app, ["store", "info", "--json"], env={"PJAI_DATA_DIR": str(data)})
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["events"] > 10
    assert info["mode"] == "standalone"
    assert info["rows"]["personas"] == 2


def test_store_rebuild(tmp_path: Path) -> None:
    runner.invoke(app, ["demo", "--data-dir", str(tmp_path), "--delay", "0"])
    result = runner.invoke(app, ["store", "rebuild", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "Rebuilt the state from" in result.output


def test_damaged_store_is_reported_not_reset(tmp_path: Path) -> None:
    (tmp_path / "store.db").write_bytes(b"not a database at all" * 100)
    result = runner.invoke(app, ["store", "info", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "not an SQLite database" in result.output
    assert (tmp_path / "store.db").read_bytes() == b"not a database at all" * 100


@pytest.mark.parametrize("command", [["persona", "list"], ["persona", "create", "Ada"]])
@pytest.mark.parametrize("foreign", ["store.db", "primary.db"])
def test_a_directory_of_another_program_is_left_as_it_was(
    tmp_path: Path, command: list[str], foreign: str
) -> None:
    """Another program's SQLite file under a name PJai keeps: the command is refused, and
    no file of PJai's is left beside it."""
    other = tmp_path / "other"
    other.mkdir()
    sqlite = apsw.Connection(str(other / foreign))
    sqlite.execute("CREATE TABLE memories (x)")
    sqlite.close()
    (other / "notes.txt").write_text("theirs")
    result = runner.invoke(app, [*command, "--data-dir", str(other)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in other.iterdir()) == sorted([foreign, "notes.txt"])


def test_python_dash_m_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pjai", "--help"], capture_output=True, text=True, check=True
    )
    assert "demo" in done.stdout
    assert "bench" in done.stdout


def test_store_benchmark_quick_run_prints_every_figure(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pjai", "bench", "store", "--quick", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures.keys() >= STORE_BENCH_KEYS
    for key in STORE_BENCH_KEYS:
        assert figures[key] > 0, key
    assert figures["quick"] is True
    assert figures["rebuild_events"] == figures["events"]
    pages = figures["single_commit_pages_by_btree"]
    assert pages["memories"] >= 1
    assert pages["pjai_eventlog"] >= 1
    assert list(tmp_path.iterdir()) == []  # its files are gone


@pytest.mark.slow
def test_store_benchmark_full_run(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pjai", "bench", "store", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["memories"] == 100_000
    assert figures.keys() >= STORE_BENCH_KEYS


HYBRID_BENCH_KEYS = {
    "commit_batched_per_s",
    "commit_single_per_s",
    "commit_store_off_single_per_s",
    "bridge_lag_p95_ms",
    "query_hot_p95_ms",
    "query_range_p95_ms",
    "keyword_search_p95_ms",
    "verify_s",
}


def test_hybrid_benchmark_quick_run(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pjai", "bench", "hybrid", "--quick", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    backends = ["sqlite", "postgresql"] if os.environ.get("PJAI_TEST_POSTGRES_URL") else ["sqlite"]
    for backend in backends:
        assert figures[backend].keys() >= HYBRID_BENCH_KEYS, backend
        assert all(figures[backend][key] > 0 for key in HYBRID_BENCH_KEYS), backend
    # SQLite's SQL primary has no keyword search: with the store off it is PostgreSQL's.
    assert figures["sqlite"]["keyword_search_store_off_p95_ms"] is None
    if "postgresql" in backends:
        assert figures["postgresql"]["keyword_search_store_off_p95_ms"] > 0
    assert list(tmp_path.iterdir()) == []


def test_hybrid_benchmark_loads_the_memories_asked_for(tmp_path: Path) -> None:
    args = [sys.executable, "-m", "pjai", "bench", "hybrid", "--quick", "--data-dir"]
    wrong = subprocess.run([*args, str(tmp_path), "--memories", "1234"], capture_output=True)
    assert wrong.returncode == 1
    assert b"--memories must be a multiple of 500 (the batch), got 1,234" in wrong.stderr
    environ = {k: v for k, v in os.environ.items() if k != "PJAI_TEST_POSTGRES_URL"}
    done = subprocess.run(
        [*args, str(tmp_path), "--memories", "1000", "--personas", "1"],
        capture_output=True,
        env=environ,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert (figures["sqlite"]["memories"], figures["personas"]) == (1000, 1)
    crowded = subprocess.run([*args, str(tmp_path), "--personas", "501"], capture_output=True)
    assert crowded.returncode == 1
    assert b"--personas must be 1 to 500 (a tenth of the memories), got 501" in crowded.stderr


def test_store_benchmark_measures_the_peer_in_the_same_run(tmp_path: Path) -> None:
    args = [sys.executable, "-m", "pjai", "bench", "store", "--quick", "--data-dir", str(tmp_path)]
    done = subprocess.run([*args, "--peer", "eventsourcing"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["peer"] == "eventsourcing 9.5.6"
    assert figures["peer_batched_per_s"] > 0
    assert figures["peer_single_per_s"] > 0
    assert figures["batched_vs_peer"] == round(
        figures["commit_batched_per_s"] / figures["peer_batched_per_s"], 3
    )
    assert figures["single_vs_peer"] == round(
        figures["commit_single_per_s"] / figures["peer_single_per_s"], 3
    )
    wrong = subprocess.run([*args, "--peer", "kafka"], capture_output=True, text=True)
    assert wrong.returncode == 1
    assert "unknown peer 'kafka': eventsourcing" in wrong.stderr


def test_the_peer_commits_the_same_workload(tmp_path: Path) -> None:
    figures = run_peer(
        "eventsourcing", tmp_path / "peer.db", personas=3, memories=40, batch=10, singles=5
    )
    assert figures["peer_batched_per_s"] > 0
    db = apsw.Connection(str(tmp_path / "peer.db"))
    try:
        topics = dict(db.execute("SELECT topic, count(*) FROM stored_events GROUP BY topic"))
    finally:
        db.close()
    assert sorted(topics.values()) == [3, 45]  # the personas; the memories, batched and single


def _without_pytest() -> dict[str, str]:
    """This environment, less what makes NiceGUI run differently under pytest."""
    return {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}


@contextmanager
def _serving(data_dir: Path, *command: str) -> Iterator[dict[str, Any]]:
    """``pjai *command --json`` serving ``data_dir`` in a process of its own, until the
    block ends: what it printed first (where it listens)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pjai", *command, "--json", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_without_pytest(),
    )
    assert process.stdout is not None
    try:
        yield json.loads(process.stdout.readline())
    finally:
        process.terminate()
        process.wait(timeout=20)
        process.stdout.close()


def test_the_web_app_says_where_it_listens_as_json(tmp_path: Path) -> None:
    port = str(free_port())
    with _serving(tmp_path, "serve", "--port", port) as said:
        assert said == {"url": f"http://127.0.0.1:{port}/"}


_CONNECT_WHEN_ANNOUNCED = """
import os, socket, sys
from urllib.parse import urlsplit
from pjai.app import DataDir
from pjai.web.server import serve

def announce(url):
    try:
        socket.create_connection(("127.0.0.1", urlsplit(url).port), timeout=10).close()
        print("listening", flush=True)
    except OSError as exc:
        print(f"not listening: {exc}", flush=True)
    os._exit(0)

serve(DataDir(sys.argv[1]), port=int(sys.argv[2]), announce=announce)
"""


def test_the_web_app_says_where_it_listens_once_it_does(tmp_path: Path) -> None:
    # A script that reads the address and connects at once is served, not refused.
    done = subprocess.run(
        [sys.executable, "-c", _CONNECT_WHEN_ANNOUNCED, str(tmp_path), str(free_port())],
        capture_output=True,
        text=True,
        env=_without_pytest(),
        timeout=60,
        check=False,
    )
    assert done.stdout.strip() == "listening", done.stdout + done.stderr


@pytest.mark.parametrize(
    ("command", "page"),
    [(["serve"], ""), (["sync-server", "serve", "--no-auth"], "health")],
    ids=["web", "sync-server"],
)
def test_both_servers_on_port_0_listen_on_a_free_port_and_say_which(
    tmp_path: Path, command: list[str], page: str
) -> None:
    with _serving(tmp_path, *command, "--port", "0") as said:
        url = said["url"]
        assert urlsplit(url).port not in (None, 0)
        with urlopen(f"{url.rstrip('/')}/{page}", timeout=20) as answer:
            assert answer.status == 200


def test_a_warning_reads_as_a_note_without_a_source_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with HybridDatabaseManager.open(data_dir, environ={}) as manager:
        manager.commit(persona("p1"))
        store = manager.store
        assert store is not None
        take_from_a_newer_pjai(store)
    done = subprocess.run(
        [sys.executable, "-m", "pjai", "repair", "--side", "store", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    assert "note: event v9.FromTheFuture is not known to this PJai" in done.stderr
    assert "UnknownEventWarning" not in done.stderr


def test_numbers_beyond_what_sql_and_time_hold_are_refused_with_the_option_named(
    tmp_path: Path,
) -> None:
    where = ["--data-dir", str(tmp_path / "data")]
    assert runner.invoke(app, ["persona", "create", "Ada", *where]).exit_code == 0
    huge = "99999999999999999999"
    for command in (
        ["memory", "list", "--limit", huge],
        ["memory", "search", "x", "--limit", huge],
    ):
        result = runner.invoke(app, [*command, *where])
        assert result.exit_code == 2, result.output
        assert "--limit" in result.output
    for days in (f"{huge}d", "3000000d"):  # beyond a timedelta, beyond a date
        token = runner.invoke(
            app, ["web", "token", "create", "--name", "x", "--expires-in", days, *where]
        )
        assert token.exit_code == 2, token.output
        assert "too long a time" in token.output


def test_a_refused_value_is_shown_cut_short(tmp_path: Path) -> None:
    where = ["--data-dir", str(tmp_path / "data")]
    assert runner.invoke(app, ["persona", "create", "Ada", *where]).exit_code == 0
    title = ["--title", "t" * 100_000, "--persona", "Ada"]
    result = runner.invoke(app, ["conversation", "start", *title, *where])
    assert result.exit_code == 1
    assert "--title: expected text of at most 500 characters" in result.output
    assert len(result.output) < 1_000


def test_a_group_lists_each_command_on_one_line_however_its_docstring_wraps() -> None:
    wide = {"COLUMNS": "400", "TERMINAL_WIDTH": "400"}
    top = runner.invoke(app, ["--help"], env=wide)
    memory = runner.invoke(app, ["memory", "--help"], env=wide)
    assert "commit changes it (with --json, only what it did at the end)." in top.output
    assert "the memory vectors, and the data files. Exits with code 2" in top.output
    listed = [line for line in memory.output.splitlines() if line.startswith("│ ")]
    assert listed, memory.output
    assert all(not line[2:].startswith(" ") for line in listed), memory.output


def test_no_command_help_shows_docstring_markup() -> None:
    command = typer.main.get_command(app)

    def helps(c: Any) -> Iterator[str]:
        yield c.help or ""
        yield from (getattr(p, "help", None) or "" for p in c.params)
        for sub in getattr(c, "commands", {}).values():
            yield from helps(sub)

    assert [h for h in helps(command) if "``" in h or ":func:" in h or ":data:" in h] == []
