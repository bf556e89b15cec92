"""User text comes out of every command verbatim: never read as Rich markup or emoji codes."""

from __future__ import annotations

import io
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from rich.table import Table
from rich.text import Text

from pjai.app import DataDir
from pjai.cli import common
from pjai.cli.output import TerminalConsole
from pjai.schema import MemoryAdded, MemoryDeleted, PersonaCreated
from pjai.store import Store
from tests.cli.invoke import Cli

# Each would be swallowed, styled, replaced or crash the command if read as markup.
PERSONA_ID = "[bold]p"
PERSONA = "[/]Ada [bold]x"
DESCRIPTION = "[red]desc[/] :red_heart:"
STYLE = "[u]dry[/u]"
MEMORY_ID = "[/]m1"
OTHER_ID = "[link=x]m2"
CONTENT = "a stray [/] tag [bold]x :thumbs_up:"
OTHER = "[link=https://x.test]second[/link]"
NAME = "[i]title"
RENAMED = "[i]renamed[/i]"
SUMMARY = "[dim]sum[/]"
TYPE = "[u]note"
TAGS = ["[/]", "[bold]t"]
MARK = "[/]mark [bold]b"
MARK_RENAMED = "[link=x]office"
LABEL = "[/]l"
TITLE = "[bold]talk[/]"
ROLE = "[/]user"
MESSAGE = "[link=x]hi[/link]"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """A data directory whose path holds markup too; wide output, so that nothing wraps."""
    return Cli(tmp_path / "[bold]data[link=x]", env={"COLUMNS": "250"})


def test_personas(cli: Cli) -> None:
    created = cli("persona", "create", PERSONA, "--id", PERSONA_ID, "--description", DESCRIPTION)
    assert f"Created persona {PERSONA} ({PERSONA_ID})." in created
    assert cli.json("persona", "show", PERSONA_ID)["persona"]["name"] == PERSONA

    listed = cli("persona", "list")
    assert PERSONA in listed
    assert PERSONA_ID in listed
    assert [(p["id"], p["name"]) for p in cli.json("persona", "list")] == [(PERSONA_ID, PERSONA)]

    shown = cli("persona", "show", PERSONA_ID)
    assert f"{PERSONA} ({PERSONA_ID})" in shown
    assert DESCRIPTION in shown

    updated = cli("persona", "update", PERSONA_ID, "--style", STYLE)
    assert f"{PERSONA} ({PERSONA_ID})" in updated
    changed = cli.json("persona", "update", PERSONA_ID, "--description", DESCRIPTION + "!")
    assert (changed["description"], changed["communication_style"]) == (DESCRIPTION + "!", STYLE)
    activated = cli("persona", "activate", PERSONA_ID)
    assert f"Persona {PERSONA} ({PERSONA_ID}) is now active." in activated

    assert f"no persona '{MEMORY_ID}'" in cli.fails("persona", "show", MEMORY_ID)
    deleted = cli("persona", "delete", PERSONA_ID, "--yes")  # the active one: asked, else
    assert f"Deleted persona {PERSONA} ({PERSONA_ID}). No persona is active now." in deleted
    assert PERSONA in cli("persona", "list", "--deleted")


def add_memories(cli: Cli) -> None:
    cli("persona", "create", PERSONA, "--id", PERSONA_ID, "--set", "memory.auto_optimize=false")
    fields = ["--name", NAME, "--summary", SUMMARY, "--type", TYPE]
    tags = [arg for tag in TAGS for arg in ("--tag", tag)]
    added = cli("memory", "add", PERSONA_ID, CONTENT, "--id", MEMORY_ID, *fields, *tags)
    assert f"Added memory {MEMORY_ID} (warm)." in added
    cli("memory", "add", PERSONA_ID, OTHER, "--id", OTHER_ID, "--importance", "0.2")


def test_memories(cli: Cli) -> None:
    add_memories(cli)
    listed = cli("memory", "list", PERSONA_ID)
    for text in (MEMORY_ID, OTHER_ID, NAME, CONTENT, OTHER):
        assert text in listed
    memories = cli.json("memory", "list", PERSONA_ID)
    assert [(m["id"], m["content"]) for m in memories] == [(MEMORY_ID, CONTENT), (OTHER_ID, OTHER)]
    assert (memories[0]["name"], memories[0]["summary"]) == (NAME, SUMMARY)
    assert (memories[0]["type"], memories[0]["tags"]) == (TYPE, TAGS)

    found = cli("memory", "search", "stray", "--persona", PERSONA_ID)
    for text in (MEMORY_ID, NAME, CONTENT):
        assert text in found
    hits = cli.json("memory", "search", "stray", "--persona", PERSONA_ID)
    assert [(h["memory_id"], h["name"], h["content"]) for h in hits] == [(MEMORY_ID, NAME, CONTENT)]

    assert f"Linked {MEMORY_ID} → {OTHER_ID} (related)." in cli(
        "memory", "link", MEMORY_ID, OTHER_ID
    )
    shown = cli("memory", "show", MEMORY_ID)
    for text in (f"{NAME} ({MEMORY_ID})", CONTENT, SUMMARY, TYPE, ", ".join(TAGS), OTHER_ID):
        assert text in shown
    assert cli.json("memory", "show", MEMORY_ID)["memory"]["content"] == CONTENT
    assert OTHER_ID in cli("memory", "neighbours", MEMORY_ID)
    assert cli.json("memory", "neighbours", MEMORY_ID) == [{"memory_id": OTHER_ID, "depth": 1}]
    assert f"Unlinked {MEMORY_ID} → {OTHER_ID}" in cli("memory", "unlink", MEMORY_ID, OTHER_ID)

    updated = cli("memory", "update", MEMORY_ID, "--name", RENAMED)
    assert f"Updated memory {MEMORY_ID} (warm)." in updated
    assert cli.json("memory", "show", MEMORY_ID)["memory"]["name"] == RENAMED
    assert RENAMED in cli("memory", "show", MEMORY_ID)
    assert f"Deleted memory {MEMORY_ID}." in cli("memory", "delete", MEMORY_ID)
    assert f"Restored memory {MEMORY_ID}." in cli("memory", "restore", MEMORY_ID)
    assert f"no memory '{PERSONA_ID}'" in cli.fails("memory", "show", PERSONA_ID)

    assert f"by type {TYPE} 1, note 1" in cli("memory", "stats", "--persona", PERSONA_ID)
    assert TYPE in cli.json("memory", "stats", "--persona", PERSONA_ID)["statistics"]["by_type"]
    assert f"{PERSONA_ID}: " in cli("memory", "optimize", "--persona", PERSONA_ID)
    assert cli.json("memory", "optimize", "--all")[0]["persona_id"] == PERSONA_ID


def test_bookmarks(cli: Cli) -> None:
    add_memories(cli)
    made = cli.json("bookmark", "create", PERSONA_ID, MARK, "--label", LABEL, "--tag", TAGS[1])
    assert (made["name"], made["tags"]) == (MARK, [LABEL])
    assert f"Created bookmark {MARK}2 (" in cli("bookmark", "create", PERSONA_ID, MARK + "2")

    listed = cli("bookmark", "list", PERSONA_ID)
    assert MARK in listed
    assert TAGS[1] in listed  # in the filters
    assert [m["name"] for m in cli.json("bookmark", "list", PERSONA_ID)] == [MARK, MARK + "2"]

    shown = cli("bookmark", "show", made["id"])
    for text in (MARK, MEMORY_ID, CONTENT):
        assert text in shown
    assert OTHER_ID not in shown  # not tagged
    body = cli.json("bookmark", "show", made["id"])
    assert (body["bookmark"]["name"], body["memories"][0]["content"]) == (MARK, CONTENT)

    cli("bookmark", "update", made["id"], "--name", MARK_RENAMED)
    assert MARK_RENAMED in cli("bookmark", "list", PERSONA_ID)
    assert f"no bookmark '{MARK}'" in cli.fails("bookmark", "show", MARK)


def test_conversations(cli: Cli) -> None:
    cli("persona", "create", PERSONA, "--id", PERSONA_ID)
    chat = cli("conversation", "start", PERSONA_ID, "--title", TITLE).strip()
    cli("conversation", "say", chat, "user", MESSAGE)
    assert f"got '{ROLE}'" in cli.fails("conversation", "say", chat, ROLE, MESSAGE)
    assert "Added 1 memory(ies)" in cli("memory", "ingest-conversation", chat)
    assert f"user: {MESSAGE}" in cli("memory", "list", PERSONA_ID)
    assert TITLE in cli("conversation", "list", PERSONA_ID)
    assert MESSAGE in cli("conversation", "show", chat)
    assert f"no conversation '{TITLE}'" in cli.fails("conversation", "say", TITLE, ROLE, MESSAGE)


def test_store_and_both_sides(cli: Cli) -> None:
    add_memories(cli)
    assert str(cli.data / "store.db") in cli("store", "info")
    assert json.loads(cli("store", "info", "--json"))["path"] == str(cli.data / "store.db")
    assert "primary.db" in cli("doctor")  # in a URL, %-encoded
    assert cli.json("doctor")["status"] == "ok"

    with closing(sqlite3.connect(cli.data / "primary.db")) as db, db:
        db.execute("UPDATE memories SET content = 'tampered' WHERE id = ?", [MEMORY_ID])
    report = cli("verify", code=2)
    assert f"memories · persona {PERSONA_ID}: store 2 rows, SQL 2" in report
    assert f"{MEMORY_ID}: differs content" in report
    (table,) = [t for t in cli.json("verify", code=2)["tables"] if t["table"] == "memories"]
    assert table["personas"][0]["persona_id"] == PERSONA_ID


def test_sync_status_and_conflicts(cli: Cli) -> None:
    """A rejected local event whose reason quotes a memory id; a status file with markup."""
    with (
        Store.open(cli.data / "store.db", sync=True) as mine,
        Store.memory(sync=True) as theirs,
    ):
        mine.commit(
            PersonaCreated(persona_id=PERSONA_ID, name=PERSONA),
            MemoryAdded(memory_id=MEMORY_ID, persona_id=PERSONA_ID, content=CONTENT),
        )
        upstream = mine.pending()
        mine.rebase(upstream)
        theirs.rebase(upstream)
        mine.commit(MemoryDeleted(memory_id=MEMORY_ID, persona_id=PERSONA_ID))
        theirs.commit(MemoryDeleted(memory_id=MEMORY_ID, persona_id=PERSONA_ID))
        mine.rebase(theirs.pending())
    (conflict,) = cli.json("sync", "conflicts")
    assert f"no live memory '{MEMORY_ID}'" in conflict["reason"]
    assert conflict["reason"] in " ".join(cli("sync", "conflicts").split())

    status = {"state": "failed", "url": "ws://h/[bold]sync", "last_error": CONTENT, "pid": 0}
    DataDir(cli.data).sync_status_path.write_text(json.dumps(status))
    shown = cli("sync", "status")
    assert "ws://h/[bold]sync" in shown
    assert CONTENT in shown
    assert cli.json("sync", "status")["last_error"] == CONTENT


def test_sync_server_tokens(cli: Cli) -> None:
    made = cli.json("sync-server", "token", "create", "--store", TAGS[0], "--role", "read",
                    "--name", NAME)  # fmt: skip
    assert (made["store_id"], made["label"]) == (TAGS[0], NAME)
    listed = cli("sync-server", "token", "list")
    assert NAME in listed
    assert TAGS[0] in listed
    revoked = cli("sync-server", "token", "revoke", made["id"])
    assert f"on store {TAGS[0]!r}" in revoked


# Clears the screen, sets the window title, rings the bell; a C1 CSI starts a sequence too.
HOSTILE = "Eve\x1b[2J\x1b]0;pwned\x07\x9b31m"
HOSTILE_SHOWN = "Eve␛[2J␛]0;pwned\\x9b31m"  # Rich drops the bell itself


def test_control_characters_are_shown_not_sent_to_the_terminal(cli: Cli) -> None:
    created = cli("persona", "create", HOSTILE, "--id", "eve")
    assert f"Created persona {HOSTILE_SHOWN} (eve)." in created
    shown = cli("persona", "show", "eve")
    assert HOSTILE_SHOWN in shown
    for said in (created, shown):
        assert not any(c in said for c in "\x1b\x07\x9b")
    # Formats for programs keep the text as it is.
    assert cli.json("persona", "show", "eve")["persona"]["name"] == HOSTILE


def test_a_direction_override_is_shown_not_obeyed(cli: Cli) -> None:
    # "\u202eevil" would show as "live" to whoever reads it.
    created = cli("persona", "create", "Mallory \u202eevil", "--id", "mal")
    assert "Mallory ⟦RLO⟧evil" in created
    assert "\u202e" not in cli("persona", "show", "mal")
    assert cli.json("persona", "show", "mal")["persona"]["name"] == "Mallory \u202eevil"


def test_a_terminal_gets_styles_but_not_the_texts_control_codes() -> None:
    out = io.StringIO()
    terminal = TerminalConsole(file=out, force_terminal=True, color_system="standard", width=80)
    table = Table("name")
    table.add_row(HOSTILE)
    terminal.print(table)
    terminal.print(Text.assemble(("bold", "bold"), " ", HOSTILE))
    printed = out.getvalue()
    assert printed.count(HOSTILE_SHOWN) == 2
    assert "\x1b[2J" not in printed
    assert "\x1b]0;" not in printed
    assert "\x1b[1m" in printed  # Rich's own style codes pass


def test_a_question_shows_the_control_characters_of_what_it_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []
    monkeypatch.setattr(common, "interactive", lambda: True)
    monkeypatch.setattr(common.typer, "confirm", lambda text, **_: asked.append(text) or True)
    common.confirmed(f"Delete persona {HOSTILE}?", False, "not asked")
    # Typer writes the question itself (not through Rich): the bell is shown too.
    assert asked == ["Delete persona Eve␛[2J␛]0;pwned␇\\x9b31m?"]
