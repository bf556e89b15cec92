"""Commands over both sides: db, flags, doctor, verify, repair, shards."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pjai.app import DataDir, config_changes
from pjai.cli import app
from pjai.sql import migrate

runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None) -> str:
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_db_upgrade_and_current(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["db", "current", "--data-dir", str(tmp_path)])
    assert missing.exit_code == 1
    assert f"no PJai data directory at {tmp_path}" in " ".join(missing.stderr.split())
    (tmp_path / "flags.json").write_text("{}")  # a data directory without SQL tables yet
    assert "empty" in run("db", "current", "--data-dir", str(tmp_path))
    assert f"at {migrate.head()}" in run("db", "upgrade", "--data-dir", str(tmp_path))
    assert migrate.head() in run("db", "current", "--data-dir", str(tmp_path))


def test_doctor_verify_repair(tmp_path: Path) -> None:
    data = str(tmp_path)
    run("demo", "--data-dir", data, "--delay", "0")
    health = json.loads(run("doctor", "--data-dir", data, "--json"))
    assert health["status"] == "ok"
    assert health["store"]["head"] == health["shards"][0]["checkpoint"] == 17
    assert health["bridge"]["lag_events"] == 0
    assert {"size", "checkedout"} <= health["shards"][0]["pool"].keys()
    assert "store" in run("doctor", "--data-dir", data)
    assert json.loads(run("verify", "--data-dir", data, "--json"))["equal"] is True
    with sqlite3.connect(tmp_path / "primary.db") as db:
        db.execute("UPDATE memories SET content = 'tampered' WHERE name = 'Morning person'")
    db.close()
    broken = runner.invoke(app, ["verify", "--data-dir", data, "--json"])
    assert broken.exit_code == 2
    report = json.loads(broken.stdout)
    rows = [r for t in report["tables"] for p in t["personas"] for r in p["rows"]]
    assert [(r["problem"], r["columns"]) for r in rows] == [("differs", ["content"])]
    assert "Rebuilt sql from 17 event(s)" in run("repair", "--side", "sql", "--data-dir", data)
    assert json.loads(run("verify", "--data-dir", data, "--json"))["equal"] is True


def test_flags_switch_the_store_off_and_on(tmp_path: Path) -> None:
    data = str(tmp_path)
    run("demo", "--data-dir", data, "--delay", "0")
    assert "use_livestore = false" in run(
        "flags", "set", "use_livestore", "false", "--data-dir", data
    )
    flags = json.loads(run("flags", "--data-dir", data, "--json"))
    assert flags["use_livestore"] == {"value": False, "source": "file"}
    output = run("demo", "--data-dir", data, "--delay", "0")
    assert "SQL only" in output
    health = json.loads(run("doctor", "--data-dir", data, "--json"))
    assert health["store"]["status"] == "off"
    run("flags", "set", "use_livestore", "true", "--data-dir", data)
    assert json.loads(run("verify", "--data-dir", data, "--json"))["equal"] is True
    env_wins = run(
        "flags",
        "set",
        "use_livestore",
        "false",
        "--data-dir",
        data,
        env={"PJAI_USE_LIVESTORE": "true"},
    )
    assert "environment overrides" in env_wins
    bad = runner.invoke(app, ["flags", "set", "nonsense", "true", "--data-dir", data])
    assert bad.exit_code == 1
    assert "unknown flag 'nonsense'" in bad.output


def test_shards_rebalance_after_adding_a_shard(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    two = " ".join(f"sqlite:///{tmp_path / f's{i}.db'}" for i in range(2))
    three = two + f" sqlite:///{tmp_path / 's2.db'}"
    run("demo", "--data-dir", data, "--delay", "0", env={"PJAI_SQL_SHARDS": two})
    output = run("shards", "rebalance", "--data-dir", data, env={"PJAI_SQL_SHARDS": three})
    assert output.startswith("Moved ")
    report = json.loads(run("verify", "--data-dir", data, "--json", env={"PJAI_SQL_SHARDS": three}))
    assert report["equal"] is True
    assert "Moved 0 persona(s)" in run(
        "shards", "rebalance", "--data-dir", data, env={"PJAI_SQL_SHARDS": three}
    )


def test_flag_and_privacy_changes_leave_records_with_the_store_on_and_off(
    tmp_path: Path,
) -> None:
    data = str(tmp_path)
    run("persona", "create", "Ada", "--id", "ada", "--data-dir", data)
    run("persona", "update", "ada", "--set", "privacy.analytics=true", "--data-dir", data)
    run("flags", "set", "use_livestore", "false", "--data-dir", data)
    run("persona", "update", "ada", "--set", "privacy.analytics=false", "--data-dir", data)
    run("persona", "update", "ada", "--name", "Ada II", "--data-dir", data)  # no privacy
    run("flags", "set", "use_livestore", "true", "--data-dir", data)
    expected = [
        ("privacy.analytics", False, True, "pjai persona update", "ada"),
        ("flags.use_livestore", True, False, "pjai flags set", None),
        ("privacy.analytics", True, False, "pjai persona update", "ada"),
        ("flags.use_livestore", False, True, "pjai flags set", None),
    ]
    with DataDir(tmp_path).open() as manager:
        assert manager.store is not None
        found = [(c.key, c.old, c.new, c.source, c.persona_id) for c in config_changes(manager)]
    assert found == expected
    assert json.loads(run("verify", "--data-dir", data, "--json"))["equal"] is True


def test_a_flag_change_that_cannot_be_recorded_is_refused(tmp_path: Path) -> None:
    data = str(tmp_path)
    run("persona", "create", "Ada", "--data-dir", data)
    refused = runner.invoke(app, ["flags", "set", "sync", "true", "--data-dir", data])
    assert refused.exit_code == 1
    assert "was made standalone" in refused.stderr
    assert "flag sync was left false" in refused.stderr
    assert json.loads(run("flags", "--data-dir", data, "--json"))["sync"]["source"] == "default"


def test_an_environment_flag_against_the_store_s_mode_names_the_variable(tmp_path: Path) -> None:
    data = str(tmp_path)
    run("persona", "create", "Ada", "--data-dir", data)
    for command in (["persona", "list"], ["doctor"]):
        refused = runner.invoke(app, [*command, "--data-dir", data], env={"PJAI_FLAG_SYNC": "true"})
        assert refused.exit_code == 1
        assert refused.stderr.count("\n") == 1, refused.stderr  # one line, no traceback
        assert "(PJAI_FLAG_SYNC in the environment)" in refused.stderr
        assert "unset PJAI_FLAG_SYNC" in refused.stderr
    assert json.loads(run("persona", "list", "--data-dir", data, "--json"))[0]["name"] == "Ada"


def test_flags_of_another_version_are_noted_and_ignored(tmp_path: Path) -> None:
    (tmp_path / "flags.json").write_text(json.dumps({"reactive_dashboard": False}))
    shown = runner.invoke(app, ["flags", "--data-dir", str(tmp_path), "--json"])
    assert shown.exit_code == 0
    assert set(json.loads(shown.stdout)) == {"use_livestore", "sync"}
    assert "'reactive_dashboard' in the flags file is not a flag of this PJai" in shown.stderr


@pytest.mark.parametrize("value", ["false", 0, None])
def test_a_flag_that_is_not_true_or_false_is_an_error_not_ignored(
    tmp_path: Path, value: object
) -> None:
    # Ignored, "false" would leave the store on: the rollback switch would not act.
    (tmp_path / "flags.json").write_text(json.dumps({"use_livestore": value}))
    shown = runner.invoke(app, ["flags", "--data-dir", str(tmp_path)])
    assert shown.exit_code == 1
    assert (
        f"flags.json: flag 'use_livestore' must be true or false, got {json.dumps(value)}; "
        "correct it or remove it"
    ) in shown.stderr.replace("\n", " ")
