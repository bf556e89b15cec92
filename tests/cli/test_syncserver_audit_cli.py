"""`pjai sync-server audit`: the token changes made through the CLI, and who made them."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from pjai.cli import app
from pjai.sync.server import ServerDatabase, local_actor

runner = CliRunner()


def cli(*args: str) -> str:
    result = runner.invoke(app, ["sync-server", *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_token_changes_are_listed_with_who_made_them(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    made = json.loads(
        cli(
            "token",
            "create",
            "--store",
            "s1",
            "--role",
            "write",
            "--name",
            "laptop",
            "--json",
            *data,
        )
    )
    other = json.loads(cli("token", "create", "--store", "*", "--role", "admin", "--json", *data))
    cli("token", "revoke", made["id"], *data)

    entries = json.loads(cli("audit", "--json", *data))
    assert [(e["action"], e["token_id"]) for e in entries] == [
        ("token.create", made["id"]),
        ("token.create", other["id"]),
        ("token.revoke", made["id"]),
    ]
    assert {e["actor"] for e in entries} == {local_actor()}
    assert entries[0]["at"] == made["created_at"]
    assert (entries[2]["token_label"], entries[2]["store_id"], entries[2]["role"]) == (
        "laptop",
        "s1",
        "write",
    )
    assert made["secret"] not in json.dumps(entries)

    newest = json.loads(cli("audit", "--limit", "1", "--json", *data))
    assert [e["action"] for e in newest] == ["token.revoke"]
    mine = json.loads(cli("audit", "--token", made["id"], "--json", *data))
    assert [e["action"] for e in mine] == ["token.create", "token.revoke"]
    start = made["id"][: next(n for n in range(1, 40) if made["id"][:n] != other["id"][:n])]
    assert json.loads(cli("audit", "--token", start, "--json", *data)) == mine
    unknown = runner.invoke(app, ["sync-server", "audit", "--token", "nope", *data])
    assert unknown.exit_code == 1
    assert "no token 'nope'" in unknown.output

    table = cli("audit", *data)
    assert made["id"] in table
    assert "token.revoke" in table
    assert "laptop" in table


def test_an_empty_trail_and_a_bad_limit(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["sync-server", "audit", "--data-dir", str(tmp_path)])
    assert missing.exit_code == 1
    assert "no sync server database at" in missing.stderr  # reading makes none
    assert list(tmp_path.iterdir()) == []
    ServerDatabase.open(tmp_path / "sync-server.db").close()
    assert json.loads(cli("audit", "--json", "--data-dir", str(tmp_path))) == []
    result = runner.invoke(app, ["sync-server", "audit", "--limit", "0"])
    assert result.exit_code == 2
    assert "--limit" in result.output
