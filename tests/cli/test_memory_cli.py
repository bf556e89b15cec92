"""pjai persona / memory / bookmark / conversation: thin wrappers over the library."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pjai.hybrid import HybridDatabaseManager
from pjai.schema import ConversationMessageAdded
from pjai.schema.fields import CONTENT_MAX_LENGTH
from pjai.store import Store
from tests.cli.invoke import Cli


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "data")


def test_persona_lifecycle(cli: Cli, tmp_path: Path) -> None:
    ada = cli.json(
        "persona", "create", "Ada", "--description", "engineer", "--activate",
        "--set", "memory.capacities.hot=5", "--set", "personality.big_five.openness=80",
    )  # fmt: skip
    assert ada["is_active"] is True
    assert ada["memory"]["capacities"]["hot"] == 5
    assert ada["personality"]["big_five"]["openness"] == 80
    config = tmp_path / "basil.json"
    config.write_text(json.dumps({"privacy": {"analytics": True}}))
    basil = cli.json("persona", "create", "Basil", "--config", str(config), "--id", "basil")
    assert basil["privacy"]["analytics"] is True
    assert [p["name"] for p in cli.json("persona", "list")] == ["Ada", "Basil"]

    cli("persona", "activate", "basil")
    listed = {p["name"]: p["is_active"] for p in cli.json("persona", "list")}
    assert listed == {"Ada": False, "Basil": True}

    changed = cli.json(
        "persona", "update", "basil", "--name", "Basil II", "--set", "memory.max_memories=500"
    )
    assert (changed["name"], changed["memory"]["max_memories"]) == ("Basil II", 500)
    assert changed["privacy"]["analytics"] is True  # other settings kept

    shown = cli.json("persona", "show", "basil")
    assert shown["persona"]["id"] == "basil"
    assert shown["health"]["memories"] == 0

    cli("persona", "delete", "basil", "--yes")  # the active persona: --yes, as nobody is asked
    assert [p["name"] for p in cli.json("persona", "list")] == ["Ada"]
    assert len(cli.json("persona", "list", "--deleted")) == 2
    assert "no persona 'basil'" in cli.fails("persona", "show", "basil")


def test_persona_name_filter_matches_its_text(cli: Cli) -> None:
    for name in ("Ada", "100% sure", "a_b"):
        cli("persona", "create", name)
    assert [p["name"] for p in cli.json("persona", "list", "--name", "%")] == ["100% sure"]
    assert [p["name"] for p in cli.json("persona", "list", "--name", "_")] == ["a_b"]
    assert [p["name"] for p in cli.json("persona", "list", "--name", "A")] == ["Ada", "a_b"]


def test_an_empty_id_is_refused_not_replaced(cli: Cli) -> None:
    assert "Invalid value for '--id': an id cannot be empty" in cli.fails(
        "persona", "create", "Ada", "--id", "", code=2
    )
    cli("persona", "create", "Ada", "--id", "ada")
    assert "Invalid value for '--id'" in cli.fails("memory", "add", "ada", "x", "--id", "", code=2)
    assert [p["id"] for p in cli.json("persona", "list")] == ["ada"]
    assert cli.json("memory", "list", "ada") == []


def test_persona_bad_settings_are_named(cli: Cli) -> None:
    cli("persona", "create", "Ada", "--id", "ada")
    assert "memory.capacities.hot" in cli.fails(
        "persona", "update", "ada", "--set", "memory.capacities.hot=lots"
    )
    assert "bogus" in cli.fails("persona", "update", "ada", "--set", "memory.bogus=1")
    assert "PATH=VALUE" in cli.fails("persona", "update", "ada", "--set", "colour=blue")
    assert "nothing to change" in cli.fails("persona", "update", "ada")
    assert cli.json("persona", "show", "ada")["persona"]["memory"]["capacities"]["hot"] == 100


def test_memory_commands(cli: Cli) -> None:
    cli("persona", "create", "Ada", "--id", "ada", "--set", "memory.auto_optimize=false")
    coffee = cli.json(
        "memory", "add", "ada", "Coffee with Grace about the compiler",
        "--importance", "0.9", "--tier", "hot", "--tag", "work", "--id", "coffee",
        "--occurred-at", "2026-05-04T09:30",
    )  # fmt: skip
    assert (coffee["id"], coffee["tier"], coffee["tags"]) == ("coffee", "hot", ["work"])
    assert coffee["occurred_at"] == "2026-05-04T09:30:00Z"
    cli("memory", "add", "ada", "Grace likes compiler design", "--id", "design",
        "--occurred-at", "2026-05-05T10:00")  # fmt: skip
    cli("memory", "add", "ada", "Bought running shoes", "--id", "shoes", "--importance", "0.1",
        "--occurred-at", "2026-06-01T18:00")  # fmt: skip

    listed = cli.json("memory", "list", "ada")
    assert [m["id"] for m in listed] == ["coffee", "design", "shoes"]
    assert [m["id"] for m in cli.json("memory", "list", "ada", "--tag", "work")] == ["coffee"]
    since = cli.json("memory", "list", "ada", "--since", "2026-05-05", "--order", "occurred_at")
    assert [m["id"] for m in since] == ["shoes", "design"]

    hits = cli.json("memory", "search", "grace compiler", "--persona", "ada")
    assert {h["memory_id"] for h in hits} == {"coffee", "design"}
    hot = cli.json("memory", "search", "grace", "--persona", "ada", "--tier", "hot")
    assert [h["memory_id"] for h in hot] == ["coffee"]
    assert cli.json("memory", "list", "ada")[0]["access_count"] == 0  # search is no access

    assert cli.json("memory", "show", "coffee")["memory"]["access_count"] == 0  # a look
    shown = cli.json("memory", "open", "coffee")
    assert shown["memory"]["access_count"] == 1
    cli("memory", "link", "coffee", "design", "--kind", "causal", "--strength", "0.8")
    shown = cli.json("memory", "open", "coffee")
    assert shown["memory"]["access_count"] == 2
    assert [(k["target_id"], k["kind"]) for k in shown["links"]] == [("design", "causal")]
    assert cli.json("memory", "neighbours", "design") == [{"memory_id": "coffee", "depth": 1}]
    cli("memory", "unlink", "coffee", "design", "--kind", "causal")
    assert cli.json("memory", "neighbours", "design") == []

    cli("memory", "update", "shoes", "--importance", "0.3", "--tier", "cold", "--tag", "sport")
    shoes = cli.json("memory", "show", "shoes")["memory"]
    assert (shoes["importance"], shoes["tier"], shoes["tags"]) == (0.3, "cold", ["sport"])
    assert shoes["content"] == "Bought running shoes"  # cold text reads back

    cli("memory", "delete", "design")
    assert [m["id"] for m in cli.json("memory", "list", "ada")] == ["coffee", "shoes"]
    assert "no live memory 'design'" in cli.fails("memory", "show", "design")
    cli("memory", "restore", "design")
    assert len(cli.json("memory", "list", "ada")) == 3

    days = cli.json("memory", "timeline", "ada", "--unit", "month")
    assert [(b["key"], b["memories"]) for b in days] == [("2026-05", 2), ("2026-06", 1)]

    stats = cli.json("memory", "stats", "--persona", "ada")
    assert stats["statistics"]["total"] == 3
    assert stats["statistics"]["by_tier"] == {"hot": 1, "warm": 1, "cold": 1}
    assert stats["health"]["tiers"] == {"hot": 1, "warm": 1, "cold": 1}
    assert "health" in cli("memory", "stats", "--all")

    reports = cli.json("memory", "optimize", "--persona", "ada")
    assert [r["persona_id"] for r in reports] == ["ada"]
    assert sum(reports[0]["tiers_after"].values()) == 3
    again = cli.json("memory", "optimize", "--all")
    assert again[0]["events"] == 0  # nothing left to do


def test_memory_errors_are_clear(cli: Cli) -> None:
    cli("persona", "create", "Ada", "--id", "ada")
    assert "no persona 'nobody'" in cli.fails("memory", "add", "nobody", "text")
    assert "no memory 'ghost'" in cli.fails("memory", "delete", "ghost")
    assert "'lukewarm' is not a tier" in cli.fails(
        "memory", "list", "ada", "--tier", "lukewarm", code=2
    )
    assert "not an ISO-8601 time" in cli.fails(
        "memory", "add", "ada", "text", "--occurred-at", "yesterday", code=2
    )
    assert "importance" in cli.fails("memory", "add", "ada", "text", "--importance", "2")
    for command in (["list", "ada"], ["search", "ada", "text"]):
        failed = cli.fails("memory", *command, "--min-importance", "nan", code=2)
        assert "must be a number, got nan" in failed
    # A range that holds nothing is refused, not answered with nothing.
    for command in (["list", "ada"], ["search", "text", "--persona", "ada"]):
        inverted = ("--min-importance", "0.8", "--max-importance", "0.2")
        failed = cli.fails("memory", *command, *inverted, code=2)
        assert "0.8 is above --max-importance 0.2" in failed
        since = ("--since", "2026-05-05", "--until", "2026-05-04")
        failed = cli.fails("memory", *command, *since, code=2)
        assert "'2026-05-05' is after --until '2026-05-04'" in failed
    created = ("--created-since", "2026-05-05", "--created-until", "2026-05-04")
    failed = cli.fails("memory", "search", "text", *created, code=2)
    assert "'2026-05-05' is after --created-until" in failed
    # The timeline's end is left out: a range starting there holds nothing either.
    day = ("--since", "2026-05-04", "--until", "2026-05-04")
    failed = cli.fails("memory", "timeline", "ada", *day, code=2)
    assert "'2026-05-04' is at --until '2026-05-04'" in failed
    assert cli.json("memory", "list", "ada", "--since", "2026-05-04", "--until", "2026-05-04") == []
    with Store.open(cli.data / "store.db") as store:
        assert store.summary()["rows"]["memories"] == 0  # nothing half-written


def test_semantic_search_works_in_the_default_install(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli("persona", "create", "Ada", "--id", "ada")
    cli("memory", "add", "ada", "My car needs new tyres before winter", "--id", "car")
    cli("memory", "add", "ada", "I adopted a kitten called Miso", "--id", "cat")
    found = json.loads(
        cli(
            "memory",
            "search",
            "vehicle maintenance",
            "--persona",
            "ada",
            "--method",
            "semantic",
            "--json",
        )
    )
    assert [h["memory_id"] for h in found] == ["car", "cat"]  # by meaning: no shared word
    assert "by vectors" in cli("memory", "auto-link", "ada")
    monkeypatch.setenv("PJAI_EMBEDDING_MODEL", "gpt-9")
    message = cli.fails("memory", "search", "car", "--all", "--method", "hybrid")
    assert "PJAI_EMBEDDING_MODEL='gpt-9' is not a model PJai knows: minilm-int8, minilm" in message


def test_links_auto_and_decay(cli: Cli) -> None:
    cli("persona", "create", "Ada", "--id", "ada")
    for i, text in enumerate(
        [
            "Grace reviewed the parser generator grammar",
            "The parser generator grammar needs review from Grace",
            "Lunch was a sandwich",
            "Went swimming at the lake",
            "Read a novel about sailing",
        ]
    ):
        cli("memory", "add", "ada", text, "--id", f"m{i}")
    for threshold in ("-1", "5", "nan"):
        refused = cli.fails("memory", "auto-link", "ada", "--by", "words", "--threshold", threshold)
        assert "the threshold is a similarity from 0 to 1" in refused
    assert "Made 1 link(s) by shared words" in cli("memory", "auto-link", "ada", "--by", "words")
    assert cli.json("memory", "neighbours", "m0") == [{"memory_id": "m1", "depth": 1}]
    assert "removed 0" in cli("memory", "decay-links", "ada", "--days", "1")
    no_days = cli.fails("memory", "decay-links", "ada", "--days", "0", code=2)
    assert "must be more than 0, got 0" in no_days
    not_days = cli.fails("memory", "decay-links", "ada", "--days", "nan", code=2)
    assert "must be a number, got nan" in not_days
    too_many = cli.fails("memory", "decay-links", "ada", "--days", "1e9", code=2)
    assert "must be at most 365000" in too_many
    assert "removed 1" in cli("memory", "decay-links", "ada", "--days", "1000")
    assert cli.json("memory", "neighbours", "m0") == []


def test_show_tells_a_link_s_direction(cli: Cli) -> None:
    cli("persona", "create", "Ada", "--id", "ada")
    for memory_id in ("a", "b"):
        cli("memory", "add", "ada", f"note {memory_id}", "--id", memory_id)
    cli("memory", "link", "a", "b", "--kind", "causal")
    assert "causal → b" in cli("memory", "show", "a")
    shown = cli("memory", "show", "b")
    assert "causal ← a" in shown
    assert "→" not in shown


def test_bookmarks(cli: Cli) -> None:
    cli("persona", "create", "Ada", "--id", "ada", "--set", "memory.auto_optimize=false")
    cli("memory", "add", "ada", "Standup", "--id", "standup", "--tag", "work",
        "--occurred-at", "2026-05-04T09:30")  # fmt: skip
    cli("memory", "add", "ada", "Dinner", "--id", "dinner", "--tier", "hot",
        "--occurred-at", "2026-05-04T20:00")  # fmt: skip
    work = cli.json("bookmark", "create", "ada", "Work days", "--hours", "9-17",
                    "--from", "2026-05-01", "--to", "2026-06-01", "--label", "mine")  # fmt: skip
    assert work["filters"]["hours"] == [9, 17]
    assert work["tags"] == ["mine"]
    shown = cli.json("bookmark", "show", work["id"])
    assert [m["id"] for m in shown["memories"]] == ["standup"]
    assert "Hot memories" in cli("bookmark", "preset", "ada", "hot_memories")
    marks = {m["name"]: m["id"] for m in cli.json("bookmark", "list", "ada")}
    assert set(marks) == {"Hot memories", "Work days"}
    hot = cli.json("bookmark", "show", marks["Hot memories"])
    assert [m["id"] for m in hot["memories"]] == ["dinner"]
    cli("bookmark", "update", work["id"], "--name", "Office", "--colour", "#112233")
    names = {m["name"]: m["colour"] for m in cli.json("bookmark", "list", "ada")}
    assert names["Office"] == "#112233"
    cli("bookmark", "delete", work["id"])
    assert [m["name"] for m in cli.json("bookmark", "list", "ada")] == ["Hot memories"]
    assert "no bookmark" in cli.fails("bookmark", "show", work["id"])
    assert "no bookmark preset 'lunch'" in cli.fails("bookmark", "preset", "ada", "lunch")
    assert "9-17" in cli.fails("bookmark", "create", "ada", "X", "--hours", "nine", code=2)


def test_a_date_alone_as_an_included_end_takes_in_the_day(cli: Cli) -> None:
    # As in the web app's filters: "until May 4" holds the evening of May 4.
    cli("persona", "create", "Ada", "--id", "ada", "--set", "memory.auto_optimize=false")
    cli("memory", "add", "ada", "Dinner", "--id", "dinner", "--occurred-at", "2026-05-04T20:00")
    cli("memory", "add", "ada", "Lunch", "--id", "lunch", "--occurred-at", "2026-05-05T12:00")
    day = ("--since", "2026-05-04", "--until", "2026-05-04")
    assert [m["id"] for m in cli.json("memory", "list", "ada", *day)] == ["dinner"]
    hits = cli.json("memory", "search", "dinner lunch", "--persona", "ada", *day)
    assert [h["memory_id"] for h in hits] == ["dinner"]
    mark = cli.json("bookmark", "create", "ada", "May 4", "--to", "2026-05-04")
    assert mark["time_to"] == "2026-05-04T23:59:59.999999Z"
    assert [m["id"] for m in cli.json("bookmark", "show", mark["id"])["memories"]] == ["dinner"]
    at = cli.json("bookmark", "update", mark["id"], "--to", "2026-05-04T20:00")
    assert at["time_to"] == "2026-05-04T20:00:59.999999Z"  # to the minute: all of it
    # The timeline's end is left out: a date alone is its first instant.
    buckets = cli.json("memory", "timeline", "ada", "--until", "2026-05-05")
    assert [b["key"] for b in buckets] == ["2026-05-04"]


def test_an_included_end_takes_in_the_whole_minute_or_second_typed(cli: Cli) -> None:
    # As the web app's "To" reads it: "until 20:00" holds what happened at 20:00:30.
    cli("persona", "create", "Ada", "--id", "ada", "--set", "memory.auto_optimize=false")
    cli("memory", "add", "ada", "Dinner", "--id", "dinner", "--occurred-at", "2026-05-04T20:00:30")
    for until, found in (
        ("2026-05-04 20:00", ["dinner"]),
        ("2026-05-04T19:59", []),
        ("2026-05-04T20:00:30", ["dinner"]),
        ("2026-05-04T20:00:29", []),
        ("2026-05-04T20:00:29.5", []),  # a fraction of a second is the instant it names
        ("2026-05-04T22:00+02:00", ["dinner"]),
    ):
        span = ("--since", "2026-05-04", "--until", until)
        assert [m["id"] for m in cli.json("memory", "list", "ada", *span)] == found, until
        hits = cli.json("memory", "search", "dinner", "--persona", "ada", *span)
        assert [h["memory_id"] for h in hits] == found, until
        mark = cli.json("bookmark", "create", "ada", until, "--to", until)
        shown = cli.json("bookmark", "show", mark["id"])["memories"]
        assert [m["id"] for m in shown] == found, until
    # From and to the same minute: that minute, not a range refused as empty.
    minute = ("--since", "2026-05-04 20:00", "--until", "2026-05-04 20:00")
    assert [m["id"] for m in cli.json("memory", "list", "ada", *minute)] == ["dinner"]
    # The timeline's --until is left out ("happened before"): the instant it names.
    buckets = cli.json("memory", "timeline", "ada", "--until", "2026-05-04T20:00")
    assert buckets == []


def test_the_calendars_edges_are_read_as_the_web_app_reads_them(cli: Cli) -> None:
    cli("persona", "create", "Ada", "--id", "ada", "--set", "memory.auto_optimize=false")
    cli("memory", "add", "ada", "Dinner", "--id", "dinner", "--occurred-at", "2026-05-04T20:00")
    whole = ("--since", "0001-01-02", "--until", "9999-12-30")  # the first and last days
    assert [m["id"] for m in cli.json("memory", "list", "ada", *whole)] == ["dinner"]
    outside = "a time must lie between 0001-01-02 and 9999-12-30 in UTC"
    for option, text, read in (
        ("--until", "9999-12-31", "9999-12-31 23:59:59.999999"),  # to the day's end
        ("--since", "0001-01-02T00:30+01:00", "0001-01-01 23:30:00"),
    ):
        failed = cli.fails("memory", "list", "ada", option, text, code=2)
        assert f"'{text}' (read as {read} UTC): {outside}" in _unboxed(failed)
    failed = cli.fails("memory", "list", "ada", "--since", "0001-01-01T00:00+01:00", code=2)
    assert f"'0001-01-01T00:00+01:00': {outside}" in _unboxed(failed)


def _unboxed(text: str) -> str:
    """An error panel's text on one line, without its frame."""
    return " ".join(text.replace("│", " ").split())


def test_conversation_ingest(cli: Cli) -> None:
    cli("persona", "create", "Ada", "--id", "ada")
    conversation = cli("conversation", "start", "ada", "--title", "Dinner plans").strip()
    cli("conversation", "say", conversation, "user", "Where shall we eat?",
        "--at", "2026-05-04T18:00")  # fmt: skip
    cli("conversation", "say", conversation, "assistant", "The ramen place on Main Street",
        "--at", "2026-05-04T18:01")  # fmt: skip
    done = cli.json("memory", "ingest-conversation", conversation)
    assert (done["added"], done["skipped"]) == (2, 0)
    again = cli.json("memory", "ingest-conversation", conversation)
    assert (again["added"], again["skipped"]) == (0, 2)
    memories = cli.json("memory", "list", "ada", "--order", "occurred_at")
    assert [(m["content"], m["occurred_at"]) for m in memories] == [
        ("assistant: The ramen place on Main Street", "2026-05-04T18:01:00Z"),
        ("user: Where shall we eat?", "2026-05-04T18:00:00Z"),
    ]
    assert memories[0]["summary"] == "user: Where shall we eat?"
    assert "no conversation 'nope'" in cli.fails("conversation", "say", "nope", "user", "hi")


def test_on_the_embedded_sql_primary_alone(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PJAI_USE_LIVESTORE", "false")
    cli("persona", "create", "Ada", "--id", "ada")
    for day in ("2024-12-30", "2025-01-05", "2025-01-06"):
        cli("memory", "add", "ada", f"note of {day}", "--occurred-at", day)
    weeks = cli.json("memory", "timeline", "ada", "--unit", "week")
    assert [(w["key"], w["memories"]) for w in weeks] == [("2025-W01", 2), ("2025-W02", 1)]
    assert cli.json("persona", "show", "ada")["health"]["memories"] == 3
    refused = cli.fails("memory", "search", "note", "-p", "ada")
    assert "switch the store on" in refused
    # The flag alone would not: the environment overrides it.
    assert "take PJAI_USE_LIVESTORE out of the environment" in refused
    assert not (cli.data / "store.db").exists()


def test_every_writing_command_speaks_json(cli: Cli) -> None:
    assert cli.json("persona", "create", "Ada", "--id", "ada")["id"] == "ada"
    assert cli.json("persona", "activate", "ada")["is_active"] is True
    cli("memory", "add", "ada", "one", "--id", "a")
    cli("memory", "add", "ada", "two", "--id", "b")
    assert cli.json("memory", "update", "a", "--name", "First")["name"] == "First"
    assert cli.json("memory", "delete", "b")["deleted_at"] is not None
    assert cli.json("memory", "restore", "b")["deleted_at"] is None
    made = cli.json("memory", "link", "a", "b", "--kind", "temporal", "--strength", "0.7")
    assert (made["target_id"], made["kind"], made["strength"]) == ("b", "temporal", 0.7)
    gone = {"source_id": "a", "target_id": "b", "kind": "temporal"}
    assert cli.json("memory", "unlink", "a", "b", "--kind", "temporal") == gone
    assert cli.json("memory", "auto-link", "ada", "--by", "words") == {"links": 0, "by": "words"}
    assert cli.json("memory", "decay-links", "ada", "--days", "2") == {"days": 2.0, "removed": 0}
    mark = cli.json("bookmark", "preset", "ada", "today")
    assert cli.json("bookmark", "update", mark["id"], "--name", "Now")["name"] == "Now"
    assert cli.json("bookmark", "delete", mark["id"]) == {"deleted": mark["id"]}
    chat = cli.json("conversation", "start", "ada")["conversation_id"]
    said = cli.json("conversation", "say", chat, "user", "hello")
    assert said["conversation_id"] == chat
    assert cli.json("persona", "delete", "ada", "--yes")["deleted_at"] is not None


def test_changes_that_cross_limits_optimize(cli: Cli) -> None:
    cli("persona", "create", "Ada", "--id", "ada")
    for i in range(4):
        cli("memory", "add", "ada", f"note {i}", "--tier", "hot", "--importance", f"0.{i + 1}",
            "--id", f"n{i}")  # fmt: skip
        cli("memory", "update", f"n{i}", "--unpin")  # hot, and the optimizer's to place
    cli("persona", "update", "ada", "--set", "memory.capacities.hot=1")
    assert cli.json("memory", "stats", "--persona", "ada")["statistics"]["by_tier"]["hot"] == 1
    cli("persona", "update", "ada", "--set", "memory.capacities.warm=1")
    chat = cli("conversation", "start", "ada").strip()
    for word in ("hello", "there", "friend"):
        cli("conversation", "say", chat, "user", word)
    cli("memory", "ingest-conversation", chat)
    by_tier = cli.json("memory", "stats", "--persona", "ada")["statistics"]["by_tier"]
    assert (by_tier["hot"], by_tier["warm"], sum(by_tier.values())) == (1, 1, 7)


def test_a_move_to_the_tier_it_is_in_changes_nothing(cli: Cli) -> None:
    cli("persona", "create", "Ada", "--id", "ada")
    cli("memory", "add", "ada", "one", "--id", "a")
    assert "(warm, pinned)" in cli("memory", "update", "a", "--tier", "warm")  # pins it
    assert "already warm, pinned; nothing changed" in cli("memory", "update", "a", "--tier", "warm")


def test_bookmark_ranges_are_checked(cli: Cli) -> None:
    cli("persona", "create", "Ada", "--id", "ada")
    inverted = ("--min-importance", "0.9", "--max-importance", "0.1")
    assert "0.9 is above --max-importance 0.1" in cli.fails(
        "bookmark", "create", "ada", "X", *inverted, code=2
    )
    # Hours across midnight are two ranges: the message says how to bookmark them.
    night = cli.fails("bookmark", "create", "ada", "X", "--hours", "22-6", code=2)
    assert "'22-6': FROM must be before TO" in night
    assert "two bookmarks, 22-24 and 0-6" in night
    for wrong in ("30-40", "25-3"):  # FROM past the day is no span across midnight
        assert f"'{wrong}': FROM runs from 0 to 23, TO from 1 to 24" in cli.fails(
            "bookmark", "create", "ada", "X", "--hours", wrong, code=2
        )
    assert "--min-importance: expected a number <= 1.0" in cli.fails(
        "bookmark", "create", "ada", "X", "--min-importance", "7"
    )
    assert "--colour: expected a colour written #rrggbb" in cli.fails(
        "bookmark", "create", "ada", "X", "--colour", "red"
    )
    # A field the command takes as an option is named as the option.
    assert "--importance: expected a number <= 1.0, got 1.5" in cli.fails(
        "memory", "add", "ada", "x", "--importance", "1.5"
    )
    assert "--tag: expected text of at least 1 character" in cli.fails(
        "memory", "add", "ada", "x", "--tag", ""
    )
    assert "--label: expected text of at least 1 character" in cli.fails(
        "bookmark", "create", "ada", "X", "--label", ""
    )
    assert "--from: must not be after the end of the range" in cli.fails(
        "bookmark", "create", "ada", "X", "--from", "2026-02-01", "--to", "2026-01-01"
    )
    may = ("--from", "2026-05-01", "--to", "2026-05-08")
    mark = cli.json("bookmark", "create", "ada", "May", *may)
    # An update that leaves the start after the end is refused as a new bookmark is.
    refused = cli.fails("bookmark", "update", mark["id"], "--from", "2026-06-01")
    assert "--from: must not be after the end of the range" in refused
    assert cli.json("bookmark", "list", "ada")[0]["time_from"] == "2026-05-01T00:00:00Z"


def test_refusals_name_the_argument_or_option_given(cli: Cli) -> None:
    """An event's refusal names what the person typed, not the event's field."""
    cli("persona", "create", "Ada", "--id", "ada", "--activate")
    cli("memory", "add", "ada", "Tea at four", "--id", "tea")
    for command in (["memory", "add", "ada", " "], ["memory", "add", " ", "--persona", "ada"]):
        assert cli.fails(*command).startswith("error: CONTENT: expected text that is not blank")
    assert cli.fails("memory", "add", "ada", "x", "--type", "").startswith("error: --type: ")
    assert cli.fails("memory", "update", "tea", "--type", "").startswith("error: --type: ")
    assert cli.fails("memory", "update", "tea", "--content", "").startswith("error: --content: ")
    for command in (["bookmark", "create", "ada", ""], ["bookmark", "create", ""]):
        assert cli.fails(*command).startswith("error: NAME: expected text of at least 1")
    talk = cli("conversation", "start", "ada").strip()
    said = cli.fails("conversation", "say", talk, "user", "")
    assert said.startswith("error: TEXT: expected text of at least 1 character")
    for command in ("create", "update"):
        who = ["Bea"] if command == "create" else ["ada"]
        sets = ["--set", "memory.importance_threshold=NaN", "--set", "memory.capacities.hot=3"]
        failed = cli.fails("persona", command, *who, *sets)
        assert failed == (
            "error: --set 'memory.importance_threshold=NaN': expected a number, got text"
        )
    failed = cli.fails("persona", "update", "ada", "--set", "memory.scoring.target=x")
    assert failed.startswith("error: --set 'memory.scoring.target=x': ")
    for failed in (
        cli.fails("memory", "add", "ada", ""),
        cli.fails("bookmark", "create", "ada", " "),
        cli.fails("conversation", "say", talk, "user", ""),
        cli.fails("persona", "update", "ada", "--set", "memory.capacities.hot=Infinity"),
    ):
        assert "field '" not in failed


def test_nan_and_infinity_given_to_set_are_text(cli: Cli) -> None:
    """Not JSON: a text setting takes them as typed, a number setting refuses them."""
    made = cli.json("persona", "create", "Ada", "--set", "personality.type=NaN")
    assert made["personality"]["type"] == "NaN"
    assert "got text" in cli.fails(
        "persona", "update", "Ada", "--set", "memory.capacities.hot=-Infinity"
    )


def test_conversation_ingest_names_the_messages_it_could_not_make_memories_of(cli: Cli) -> None:
    cli("persona", "create", "Ada", "--id", "ada")
    conversation = cli("conversation", "start", "ada").strip()
    cli("conversation", "say", conversation, "user", "Hello")
    with HybridDatabaseManager.open(cli.data, environ={}) as manager:
        # As another instance's message arrives: through the log, not the command.
        manager.commit(
            ConversationMessageAdded(
                message_id="long",
                conversation_id=conversation,
                persona_id="ada",
                role="assistant",
                content="x" * CONTENT_MAX_LENGTH,
            )
        )
    out = cli("memory", "ingest-conversation", conversation)
    assert "Added 1 memory(ies); 0 already there." in out
    assert "1 message(s) could not become memories:\n  long: content: its memory would be" in out
    done = cli.json("memory", "ingest-conversation", conversation)
    assert (done["added"], done["skipped"]) == (0, 1)
    assert [r["message_id"] for r in done["refused"]] == ["long"]
