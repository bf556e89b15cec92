"""Living in the command line: whole ids that can be typed back (or their start, or a
name), the active persona as the default, output for people and for programs, global
options, and guardrails around the data directory."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

import pjai
from pjai.cli import app, common, hybrid, output
from pjai.cli.output import TerminalConsole
from tests.cli.invoke import Cli

runner = CliRunner()


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "data")


@pytest.fixture
def ada(cli: Cli) -> Cli:
    """A data directory with Ada active, whose generated ids share their first characters."""
    cli("persona", "create", "Ada", "--activate")
    cli("memory", "add", "Coffee with Grace about the compiler", "--tag", "work", "--tag", "style")
    cli("memory", "add", "Bought running shoes", "--importance", "0.1")
    return cli


def _tsv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text), dialect=csv.excel_tab))


# -- ids, names and output ------------------------------------------------------------


def test_piped_listings_are_tsv_with_whole_ids(ada: Cli) -> None:
    piped = ada("memory", "list")
    assert "┃" not in piped
    assert "│" not in piped
    rows = _tsv(piped)
    assert list(rows[0]) == ["id", "tier", "importance", "happened", "name", "content"]
    ids = [m["id"] for m in ada.json("memory", "list")]
    assert [r["id"] for r in rows] == ids
    assert ids[0][:8] == ids[1][:8]  # why a cut id is of no use
    assert rows[0]["content"] == "Coffee with Grace about the compiler"
    assert [r["name"] for r in _tsv(ada("persona", "list"))] == ["Ada"]


def _terminal(monkeypatch: pytest.MonkeyPatch, width: int) -> io.StringIO:
    """What the CLI prints for people, as a terminal ``width`` columns wide shows it."""
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, color_system=None, width=width)
    monkeypatch.setattr(output, "console", terminal)
    return screen


def test_a_table_at_a_terminal_never_cuts_an_id(ada: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    ada("memory", "add", "A long memory " * 20)
    screen = _terminal(monkeypatch, 100)
    ada("memory", "list")
    shown = screen.getvalue()
    for memory in ada.json("memory", "list"):
        assert memory["id"] in shown
    assert "…" in shown  # the long content gave way instead
    assert all(len(line) <= 100 for line in shown.splitlines())


def test_a_memory_table_at_80_columns_keeps_ids_whole_and_shows_content(
    ada: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada("memory", "add", "Coffee with Grace about the compiler", "--tier", "cold")
    screen = _terminal(monkeypatch, 80)
    ada("memory", "list")
    shown = screen.getvalue()
    for memory in ada.json("memory", "list"):
        assert memory["id"] in shown
    assert "Coffee" in shown
    assert "cold (pinned)" in shown
    assert all(len(line) <= 80 for line in shown.splitlines())


def test_search_results_at_80_columns_keep_ids_whole_and_show_content(
    ada: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    screen = _terminal(monkeypatch, 80)
    ada("memory", "search", "compiler")
    shown = screen.getvalue()
    for hit in ada.json("memory", "search", "compiler"):
        assert hit["memory_id"] in shown
    assert "Coffee" in shown
    assert all(len(line) <= 80 for line in shown.splitlines())


def test_a_bookmark_table_at_80_columns_shows_whole_names_and_days(
    ada: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada("bookmark", "create", "Mornings", "--from", "2026-03-01", "--to", "2026-03-31",
        "--hours", "6-12", "--colour", "#ff0000")  # fmt: skip
    screen = _terminal(monkeypatch, 80)
    ada("bookmark", "list")
    shown = screen.getvalue()
    assert ada.json("bookmark", "list")[0]["id"] in shown
    assert "Mornings" in shown
    assert "2026-03-01" in shown
    assert "2026-03-31" in shown
    assert all(len(line) <= 80 for line in shown.splitlines())


@pytest.mark.parametrize("width", [80, 120])
def test_doctor_at_a_terminal_never_cuts_a_shards_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    cli = Cli(tmp_path / "a-data-directory-with-a-rather-long-name" / "and-another-part")
    cli("persona", "create", "Ada")
    url = cli.json("doctor")["shards"][0]["url"]
    screen = io.StringIO()
    # As PJai's own console: lines printed outside a table are left to the terminal.
    terminal = TerminalConsole(
        file=screen, force_terminal=True, color_system=None, width=width, soft_wrap=True
    )
    monkeypatch.setattr(output, "console", terminal)
    monkeypatch.setattr(hybrid, "console", terminal)
    cli("doctor")
    shown = screen.getvalue()
    assert "…" not in shown
    if width < output.NARROW:  # the table names the shard; its URL is printed whole below
        assert f"shard 1: {url}" in shown.splitlines()
    else:  # in the table, over several lines
        lines = shown.splitlines()
        end = next(line for line in lines if "system" in line).index("status")
        assert url in "".join(line[:end].strip() for line in lines)
    table = shown.split("\nshard 1:")[0].split("\nfiles in")[0]
    assert all(len(line) <= width for line in table.splitlines())


@pytest.mark.parametrize(
    ("create", "listed", "words"),
    [
        (["sync-server", "token", "create", "--store", "team", "--role", "write", "--name",
          "laptop"], ["sync-server", "token", "list"], ["laptop", "team", "write", "live"]),
        (["web", "token", "create", "--name", "laptop"], ["web", "token", "list"],
         ["laptop", "live"]),
    ],
)  # fmt: skip
def test_a_token_table_at_80_columns_shows_names_and_states_whole(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, create: list[str], listed: list[str],
    words: list[str],
) -> None:  # fmt: skip
    cli(*create)
    screen = _terminal(monkeypatch, 80)
    cli(*listed)
    shown = screen.getvalue()
    assert cli.json(*listed)[-1]["id"] in shown
    assert [word for word in words if word not in shown] == []
    assert all(len(line) <= 80 for line in shown.splitlines())


@pytest.mark.parametrize(
    "create",
    [
        ["web", "token", "create"],
        ["sync-server", "token", "create", "--store", "team", "--role", "write"],
    ],
)
def test_both_token_commands_take_a_name_as_name_and_the_old_label_still(
    cli: Cli, create: list[str]
) -> None:
    assert cli.json(*create, "--name", "laptop")["label"] == "laptop"
    assert cli.json(*create, "--label", "phone")["label"] == "phone"  # scripts of before
    shown = runner.invoke(app, [*create[:3], "--help"], terminal_width=200).stdout
    assert "--name" in shown
    assert "--label" not in shown
    both = cli.fails(*create, "--name", "a", "--label", "b", code=2)
    assert "Invalid value for '--name'" in both
    assert "give one" in both


def test_a_web_access_token_needs_a_name(cli: Cli) -> None:
    assert "'--name': missing" in cli.fails("web", "token", "create", code=2)


def test_a_persona_table_at_80_columns_shows_whole_capacities(
    ada: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada("persona", "create", "Basil", "--template", "writer")
    screen = _terminal(monkeypatch, 80)
    ada("persona", "list")
    shown = screen.getvalue()
    for persona in ada.json("persona", "list"):
        assert persona["id"] in shown
        assert persona["name"] in shown
    assert "100/1000/10000" in shown
    assert "100/2000/10000" in shown  # the writer's
    assert all(len(line) <= 80 for line in shown.splitlines())
    ada("persona", "delete", "Basil")
    screen = _terminal(monkeypatch, 80)
    ada("persona", "list", "--deleted")
    shown = screen.getvalue()
    assert "Basil" in shown
    assert ada.json("persona", "list", "--deleted")[-1]["deleted_at"][:10] in shown
    assert all(len(line) <= 80 for line in shown.splitlines())


def test_a_conversation_table_at_80_columns_keeps_its_ids_whole(
    ada: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada(
        "conversation", "start", "--title", "A rather long title for a conversation about compilers"
    )
    screen = _terminal(monkeypatch, 80)
    ada("conversation", "list")
    shown = screen.getvalue()
    for conversation in ada.json("conversation", "list"):
        assert conversation["id"] in shown


def test_csv_tsv_and_newline_delimited_json(ada: Cli) -> None:
    listed = ada.json("memory", "list")
    lines = ada("memory", "list", "--nl").splitlines()
    assert [json.loads(line) for line in lines] == listed
    rows = list(csv.DictReader(io.StringIO(ada("memory", "list", "--csv"))))
    assert [r["id"] for r in rows] == [m["id"] for m in listed]
    assert _tsv(ada("memory", "list", "--tsv")) == _tsv(ada("memory", "list"))
    for command in (
        ["persona", "list"],
        ["persona", "templates"],
        ["memory", "search", "coffee"],
        ["memory", "timeline"],
        ["bookmark", "list"],
    ):
        assert len(ada(*command, "--nl").splitlines()) == len(ada.json(*command)), command
        assert ada(*command, "--csv").startswith(ada(*command, "--tsv").split("\t")[0]), command
    assert "give one output format" in ada.fails("memory", "list", "--csv", "--json", code=2)


def test_values_print_for_people(ada: Cli) -> None:
    coffee = ada.json("memory", "list", "--tag", "work")[0]["id"]
    shown = ada("memory", "show", coffee[:-4])
    assert "tags work, style" in shown
    stats = ada("memory", "stats")
    assert "by tier hot 0, warm 2, cold 0" in stats
    assert "{" not in stats
    assert "None" not in stats
    empty = Cli(ada.data.parent / "empty")
    empty("persona", "create", "Nobody", "--activate")
    assert "average importance -" in empty("memory", "stats")
    ada("bookmark", "create", "Work", "--tier", "hot", "--hours", "9-17", "--min-importance", "0.5")
    (mark,) = _tsv(ada("bookmark", "list"))
    assert mark["filters"] == "tiers hot · importance 0.5-1 · hours 9-17"
    assert (mark["from"], mark["to"]) == ("-", "-")
    doctor = ada("doctor")
    assert "None" not in doctor
    assert "overflow" not in doctor
    assert "pool 0 of 5 in use" in doctor
    scores = [r["score"] for r in _tsv(ada("memory", "search", "coffee shoes"))]
    assert scores
    assert not any("e-" in s for s in scores)
    assert output.number(1e-06) == "0.000001"
    assert output.number(1e-9) == "<0.000001"
    assert output.number(0.28214) == "0.282"
    assert output.number(5.0) == "5"
    shown_persona = ada("persona", "show")
    assert "capacities hot 100 · warm 1000 · cold 10000" in shown_persona
    assert "{" not in shown_persona


def test_the_start_of_an_id_or_a_name_will_do(ada: Cli) -> None:
    memories = ada.json("memory", "list")
    first, second = memories[0]["id"], memories[1]["id"]
    assert ada.json("memory", "show", first[:-3])["memory"]["id"] == first
    linked = ada.json("memory", "link", first[:-3], second[:-3])
    assert (linked["source_id"], linked["target_id"]) == (first, second)
    shared = next(i for i in range(len(first)) if first[i] != second[i])
    message = ada.fails("memory", "show", first[:shared])
    assert f"'{first[:shared]}' could be any of these memories" in message
    assert f"{first} (Coffee with Grace about the compiler)" in message
    assert f"{second} (Bought running shoes)" in message
    assert "no memory 'zzz'" in ada.fails("memory", "delete", "zzz")

    ada("persona", "create", "Basil", "--id", "basil")
    assert ada.json("persona", "show", "Ada")["persona"]["name"] == "Ada"
    assert ada.json("persona", "show", "ada")["persona"]["name"] == "Ada"  # any case
    assert ada.json("memory", "list", "-p", "Basil") == []
    assert ada.json("memory", "list", "bas") == []
    mark = ada.json("bookmark", "preset", "today")
    assert ada.json("bookmark", "show", mark["id"][:-2])["bookmark"]["id"] == mark["id"]
    by_name = ada.fails("bookmark", "show", "Today")  # a bookmark is named by its id
    assert "no bookmark 'Today': give its id or the start of it" in by_name
    chat = ada.json("conversation", "start", "--title", "Lunch")["conversation_id"]
    assert ada.json("conversation", "say", chat[:-2], "user", "hi")["conversation_id"] == chat
    assert ada.json("memory", "ingest-conversation", chat[:-2])["added"] == 1


def test_version_short_help_and_shell_completion() -> None:
    version = runner.invoke(app, ["--version"])
    assert (version.exit_code, version.stdout.strip()) == (0, f"pjai {pjai.__version__}")
    for args in (["-h"], ["memory", "-h"], ["memory", "add", "-h"], ["persona", "show", "-h"]):
        shown = runner.invoke(app, args)
        assert shown.exit_code == 0, args
        assert "Usage: pjai" in shown.stdout
    helped = " ".join(runner.invoke(app, ["--help"]).stdout.split())
    assert "--install-completion" in helped
    assert "--show-completion" in helped
    assert "Shell completion: pjai --install-completion" in helped
    usage = runner.invoke(app, ["memory", "add", "-h"]).stdout
    assert "pjai memory add [OPTIONS] [PERSONA] CONTENT" in usage


@pytest.mark.parametrize("args", [["-h"], ["memory", "show", "-h"], ["sync", "connect", "-h"]])
def test_help_names_arguments_in_capitals_and_gives_flags_no_type(args: list[str]) -> None:
    shown = runner.invoke(app, args, terminal_width=120).stdout
    assert "<bool>" not in shown  # a flag takes no value
    usage = next(line for line in shown.splitlines() if "Usage:" in line)
    assert "{" not in usage  # MEMORY_ID, not {memory_id}
    assert "<str>" in shown or args == ["-h"]  # options that take a value still say what


def test_data_dir_before_the_command_after_it_or_from_the_environment(tmp_path: Path) -> None:
    first, second, third = (str(tmp_path / name) for name in ("first", "second", "third"))
    made = runner.invoke(app, ["--data-dir", first, "persona", "create", "Ada"])
    assert made.exit_code == 0, made.output
    listed = runner.invoke(app, ["--data-dir", first, "persona", "list", "--json"])
    assert [p["name"] for p in json.loads(listed.stdout)] == ["Ada"]
    runner.invoke(app, ["persona", "create", "Basil", "--data-dir", second])
    own_wins = runner.invoke(
        app, ["--data-dir", first, "persona", "list", "--json", "--data-dir", second]
    )
    assert [p["name"] for p in json.loads(own_wins.stdout)] == ["Basil"]
    before_env = runner.invoke(
        app, ["--data-dir", first, "persona", "list", "--json"], env={"PJAI_DATA_DIR": third}
    )
    assert [p["name"] for p in json.loads(before_env.stdout)] == ["Ada"]
    env = runner.invoke(app, ["persona", "list", "--json"], env={"PJAI_DATA_DIR": second})
    assert [p["name"] for p in json.loads(env.stdout)] == ["Basil"]
    assert not Path(third).exists()


# -- the active persona ---------------------------------------------------------------


def test_the_active_persona_is_the_default(cli: Cli) -> None:
    cli("persona", "create", "Ada", "--id", "ada")
    cli("persona", "create", "Basil", "--id", "basil")
    nobody = cli.fails("memory", "add", "a note")
    assert "no persona is active: activate one with `pjai persona activate NAME`" in nobody
    assert "`pjai persona activate NAME`" in cli.fails("memory", "list")
    assert "--all" in cli.fails("memory", "search", "note")
    cli("persona", "activate", "Basil")
    assert cli.json("memory", "add", "a note")["persona_id"] == "basil"
    assert cli.json("memory", "add", "-p", "ada", "her note")["persona_id"] == "ada"
    assert cli.json("memory", "add", "ada", "a note, the old way")["persona_id"] == "ada"
    assert [m["content"] for m in cli.json("memory", "list")] == ["a note"]
    assert len(cli.json("memory", "list", "ada")) == 2
    assert len(cli.json("memory", "list", "--persona", "ada")) == 2
    assert "give the persona" in cli.fails("memory", "list", "ada", "-p", "basil", code=2)
    assert {h["persona_id"] for h in cli.json("memory", "search", "note")} == {"basil"}
    assert len(cli.json("memory", "search", "note", "--all")) == 3
    assert cli.json("memory", "stats")["statistics"]["total"] == 1
    assert cli.json("memory", "stats", "--all")["statistics"]["total"] == 3
    assert [r["persona_id"] for r in cli.json("memory", "optimize")] == ["basil"]
    assert cli.json("memory", "stats", "ada")["statistics"]["total"] == 2
    assert [r["persona_id"] for r in cli.json("memory", "optimize", "ada")] == ["ada"]
    assert cli.json("memory", "timeline")[0]["memories"] == 1
    assert cli.json("bookmark", "create", "Mine")["persona_id"] == "basil"
    assert cli.json("bookmark", "create", "ada", "Hers")["persona_id"] == "ada"
    assert cli.json("bookmark", "preset", "-p", "ada", "today")["persona_id"] == "ada"
    assert [b["name"] for b in cli.json("bookmark", "list")] == ["Mine"]
    assert cli.json("conversation", "start")["persona_id"] == "basil"
    assert cli.json("memory", "auto-link") == {"links": 0, "by": "vectors"}
    assert cli.json("persona", "show")["persona"]["id"] == "basil"
    assert cli.json("persona", "update", "--name", "Basil II")["name"] == "Basil II"


def test_deactivate_restore_and_templates(cli: Cli) -> None:
    templates = {t["name"] for t in cli.json("persona", "templates")}
    assert {"assistant", "coach", "writer", "tutor", "companion", "researcher"} <= templates
    coach = cli.json("persona", "create", "Kim", "--template", "coach", "--activate")
    assert (coach["personality"]["type"], coach["memory"]["capacities"]["hot"]) == (
        "motivator",
        150,
    )
    assert "no persona template 'chef'" in cli.fails("persona", "create", "X", "--template", "chef")
    assert "is no longer active; no persona is" in cli("persona", "deactivate")
    assert "no persona is active" in cli.fails("persona", "show")
    cli("memory", "add", "Kim", "run 5 km")
    cli("persona", "delete", "Kim")  # not active: nobody is asked
    assert "no persona 'Kim' (persona" in cli.fails("memory", "list", "Kim")
    assert f"Restored persona Kim ({coach['id']})." in cli("persona", "restore", "kim")
    assert [m["content"] for m in cli.json("memory", "list", "Kim")] == ["run 5 km"]
    assert "no deleted persona 'Kim'" in cli.fails("persona", "restore", "Kim")


def test_deleting_the_active_persona_asks_first(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    cli("persona", "create", "Ada", "--id", "ada", "--activate")
    refused = cli.fails("persona", "delete", "ada")  # no terminal to ask at
    assert "Ada (ada) is the active persona: not deleted; give --yes" in refused
    assert cli.json("persona", "show", "ada")["persona"]["deleted_at"] is None

    monkeypatch.setattr(common, "interactive", lambda: True)
    args = ["persona", "delete", "ada", "--data-dir", str(cli.data)]
    kept = runner.invoke(app, args, input="n\n")
    assert kept.exit_code == 1
    assert "is the active persona. Delete it and its memories?" in kept.output
    assert cli.json("persona", "show", "ada")["persona"]["deleted_at"] is None
    gone = runner.invoke(app, args, input="y\n")
    assert gone.exit_code == 0, gone.output
    assert "Deleted persona Ada (ada). No persona is active now." in gone.stdout
    cli("persona", "restore", "ada")
    cli("persona", "activate", "ada")
    assert "No persona is active now." in cli("persona", "delete", "Ada", "--yes")


# -- guardrails -----------------------------------------------------------------------


NEEDS_DATA = [  # commands that read, or change what must already exist
    ["doctor"],
    ["verify"],
    ["persona", "list"],
    ["persona", "show", "x"],
    ["memory", "list", "x"],
    ["memory", "show", "x"],
    ["memory", "search", "x", "--all"],
    ["memory", "timeline", "x"],
    ["memory", "stats", "--all"],
    ["memory", "neighbours", "x"],
    ["bookmark", "list", "x"],
    ["bookmark", "show", "x"],
    ["store", "info"],
    ["sync", "status"],
    ["sync", "conflicts"],
    ["flags"],
    ["db", "current"],
    ["export", "out.zip"],
    ["memory", "add", "x", "text"],
    ["persona", "activate", "x"],
    ["web", "token", "list"],
    ["db", "upgrade"],
    ["web", "token", "revoke", "x"],
    ["conversation", "list", "x"],
]


@pytest.mark.parametrize("args", NEEDS_DATA, ids=lambda a: " ".join(a))
def test_reading_or_changing_data_never_makes_a_data_directory(
    tmp_path: Path, args: list[str]
) -> None:
    typo = Cli(tmp_path / "typo")
    message = typo.fails(*args)
    assert f"{tmp_path / 'typo'}" in message
    assert "PJai data directory" in message or "has no store yet" in message
    assert not (tmp_path / "typo").exists()


def test_an_unusable_data_directory_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    # A directory cannot be made below a file, whoever runs the command (root too).
    below = Cli(tmp_path / "file" / "sub")
    for args in (["persona", "create", "Ada"], ["flags", "set", "sync", "false"]):
        result = below.run(*args)
        assert result.exit_code == 1, args
        assert result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.output
        assert "Not a directory" in result.stderr
    assert "Invalid value for '--data-dir'" in Cli(tmp_path / "file").fails(
        "persona", "list", code=2
    )


def test_a_taken_id_is_named_in_the_users_terms(cli: Cli) -> None:
    cli("persona", "create", "Coach", "--id", "coach")
    assert "error: a persona with id 'coach' exists" in cli.fails(
        "persona", "create", "Other", "--id", "coach"
    )
    cli("memory", "add", "coach", "x", "--id", "m1")
    message = cli.fails("memory", "add", "coach", "y", "--id", "m1")
    assert "a memory with id 'm1' exists" in message
    assert "already has a row" not in message


def test_every_command_that_prints_data_speaks_json(tmp_path: Path, ada: Cli) -> None:
    assert ada.json("store", "rebuild")["events"] > 0
    assert ada.json("db", "upgrade")[0]["revision"]
    current = ada.json("db", "current")
    assert current["shards"][0]["revision"] == current["newest"]
    assert ada.json("flags", "set", "use_livestore", "true")["value"] is True
    assert ada.json("repair", "--side", "sql")["done"]["side"] == "sql"
    assert ada.json("repair", "--ack-quarantine")["store"] == 0
    archive = tmp_path / "out.zip"
    exported = ada.json("export", str(archive))
    assert exported["events"] > 0
    restored = Cli(tmp_path / "restored")
    assert restored.json("import", str(archive))["events"] == exported["events"]
    assert ada.json("shards", "rebalance")["personas"] == 0


def test_store_commands_open_a_synced_directory_as_it_was_made(cli: Cli) -> None:
    cli("flags", "set", "sync", "true")
    assert cli.json("store", "info")["mode"] == "sync"
    assert cli.json("store", "rebuild")["events"] == 1  # the flag change's record
    standalone = Cli(cli.data.parent / "standalone")
    standalone("persona", "create", "Ada")
    assert "is a standalone data directory: it does not sync" in standalone.fails("sync", "status")
