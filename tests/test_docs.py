"""The docs say what the code does: every event, every message, every command they name."""

from __future__ import annotations

import ast
import importlib
import re
import shlex
from pathlib import Path
from typing import Any, get_args

import msgspec
import pytest
import typer.main
from typer.testing import CliRunner

from pjai.cli import app
from pjai.schema import SCHEMA, ConflictPolicy, Event
from pjai.sync import protocol

ROOT = Path(__file__).parent.parent
EVENTS = ROOT / "docs" / "events.md"
SYNC = ROOT / "docs" / "sync-protocol.md"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

CODE = re.compile(r"`([^`]+)`")
SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")
"""A Markdown code span: text between two runs of as many backticks."""


def _rows(page: Path) -> list[list[str]]:
    """The cells of every table row of ``page`` (header and rule rows included)."""
    return [
        [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        for line in page.read_text().splitlines()
        if line.startswith("| ")
    ]


def _blocks(page: Path, language: str) -> list[str]:
    """The fenced code blocks of ``page`` in ``language``."""
    return re.findall(rf"^```{language}\n(.*?)^```", page.read_text(), re.DOTALL | re.MULTILINE)


def _event_rows() -> dict[str, str]:
    """Each event row of docs/events.md: the event's name, the rest of the row."""
    return {
        cells[0].strip("`"): " | ".join(cells[1:])
        for cells in _rows(EVENTS)
        if re.fullmatch(r"`v[0-9]+\.[A-Za-z0-9]+`", cells[0])
    }


def _parent_event(event_type: type[Event]) -> type[Event] | None:
    """The event type ``event_type`` extends, when it extends one (``PersonaImported``)."""
    for base in event_type.__mro__[1:]:
        if base in SCHEMA.event_types:
            return base
    return None


def test_every_event_of_the_schema_has_a_row_in_the_vocabulary() -> None:
    assert sorted(set(SCHEMA.event_names) - set(_event_rows())) == []


def test_every_event_row_names_an_event_of_the_schema() -> None:
    assert sorted(set(_event_rows()) - set(SCHEMA.event_names)) == []


@pytest.mark.parametrize("event_type", SCHEMA.event_types, ids=lambda t: t.NAME)
def test_an_event_row_names_every_payload_field(event_type: type[Event]) -> None:
    row = _event_rows().get(event_type.NAME)
    if row is None:
        pytest.fail(f"docs/events.md has no row for {event_type.NAME}")
    named = set(CODE.findall(row))
    fields = set(event_type.__struct_fields__)
    parent = _parent_event(event_type)
    if parent is not None:  # its own fields, and the event whose row holds the others
        fields -= set(parent.__struct_fields__)
        assert parent.NAME in named
    assert sorted(fields - named) == []


def test_every_event_is_listed_under_its_conflict_policy() -> None:
    policies = {
        cells[0].strip("`"): set(CODE.findall(cells[-1]))
        for cells in _rows(EVENTS)
        if len(cells) == 3 and cells[0].strip("`") in get_args(ConflictPolicy)
    }
    listed = {
        name: sorted(policy for policy, events in policies.items() if name in events)
        for name in (t.__name__ for t in SCHEMA.event_types)
    }
    declared = {t.__name__: [t.CONFLICT] for t in SCHEMA.event_types}
    assert listed == declared


def _frames() -> list[str]:
    return [line for block in _blocks(SYNC, "json") for line in block.splitlines() if line]


@pytest.mark.parametrize("frame", _frames())
def test_an_example_frame_is_what_the_protocol_encodes(frame: str) -> None:
    message = protocol.decode(frame)
    assert protocol.encode(message).decode() == frame
    for record in getattr(message, "events", []):
        SCHEMA.decode(record.name, record.args)  # a payload the schema accepts


def _message_types() -> dict[str, type[msgspec.Struct]]:
    return {message.__struct_config__.tag: message for message in get_args(protocol.Message)}


def test_every_message_has_an_example_frame() -> None:
    shown = {type(protocol.decode(frame)).__struct_config__.tag for frame in _frames()}
    assert sorted(set(_message_types()) - shown) == []


def test_the_message_table_names_every_message_and_its_fields() -> None:
    table = {
        cells[0].strip("`"): set(CODE.findall(cells[2]))
        for cells in _rows(SYNC)
        if len(cells) == 4 and cells[1] in {"client", "server", "either side"}
    }
    assert sorted(table) == sorted(_message_types())
    missing = {
        tag: sorted(set(message.__struct_fields__) - table[tag])
        for tag, message in _message_types().items()
    }
    assert missing == {tag: [] for tag in _message_types()}


def _imports(page: Path) -> list[tuple[str, str]]:
    """``(module, name)`` for every ``from pjai... import name`` in ``page``'s Python."""
    found = []
    for block in _blocks(page, "python"):
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pjai"):
                found += [(str(node.module), alias.name) for alias in node.names]
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_the_python_examples_import_what_exists(page: Path) -> None:
    missing = [
        f"{module}.{name}"
        for module, name in _imports(page)
        if not hasattr(importlib.import_module(module), name)
    ]
    assert missing == []


def _commands(page: Path) -> list[str]:
    """Every ``pjai ...`` command line of ``page``: in code spans and in shell blocks.

    ``a|b`` alternatives are spread out; a line break inside a code span is a space.
    """
    prose = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.DOTALL | re.MULTILINE)
    spans = [m[2].strip() for m in SPAN.finditer(prose.replace("\n", " "))]
    lines = [span for span in spans if span.startswith("pjai ")]
    for block in _blocks(page, "sh"):
        lines += [line for line in block.splitlines() if line.startswith("pjai ")]
    commands = []
    for line in lines:
        words = shlex.split(line.split("#")[0])[1:]
        if words and "|" in words[-1] and not words[-1].startswith("-"):
            commands += [shlex.join([*words[:-1], one]) for one in words[-1].split("|")]
        else:
            commands.append(shlex.join(words))
    return commands


def _resolve(words: list[str]) -> tuple[Any, list[str]]:
    """The command ``words`` name and the words left for it (options, arguments)."""
    command: Any = typer.main.get_command(app)
    while words and hasattr(command, "commands"):
        given = next((p for p in command.params if words[0] in p.opts), None)
        if given is not None:  # an option of the group itself (`pjai --data-dir X ...`)
            words = words[1:] if given.is_flag or given.count else words[2:]
            if not words:
                return command, []
            continue
        if words[0] not in command.commands:
            raise LookupError(f"no command {words[0]!r} in {command.name!r}")
        command, words = command.commands[words[0]], words[1:]
    return command, words


def _options(command: Any) -> set[str]:
    return {name for param in command.params for name in [*param.opts, *param.secondary_opts]}


def _problems(command: Any, words: list[str]) -> list[str]:
    """What is wrong with calling ``command`` with ``words``: an option it does not
    have, or more arguments than it takes (``[--opt VALUE]`` counts as the option)."""
    options = {
        name: param
        for param in command.params
        if param.param_type_name == "option"
        for name in [*param.opts, *param.secondary_opts]
    }
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    takes = float("inf") if any(p.nargs == -1 for p in arguments) else len(arguments)
    problems, given, words = [], 0, [w.strip("[]") for w in words]
    while words:
        word, words = words[0], words[1:]
        if word.startswith("-"):
            option = options.get(word.split("=")[0])
            if option is None:
                problems.append(f"no option {word.split('=')[0]}")
            elif not option.is_flag and "=" not in word:
                words = words[1:]  # its value
        else:
            given += 1
    if given > takes:
        problems.append(f"takes {len(arguments)} argument(s), the docs give {given}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_command_in_the_docs_exists_with_its_options(page: Path) -> None:
    wrong = []
    for line in _commands(page):
        try:
            command, rest = _resolve(shlex.split(line))
        except LookupError as exc:
            wrong.append(f"pjai {line}: {exc}")
            continue
        wrong += [f"pjai {line}: {problem}" for problem in _problems(command, rest)]
    assert wrong == []


def _leaves(command: Any, path: str = "pjai") -> list[tuple[str, Any]]:
    if not hasattr(command, "commands"):
        return [(path, command)]
    return [
        leaf
        for name, sub in sorted(command.commands.items())
        for leaf in _leaves(sub, f"{path} {name}")
    ]


def test_every_command_takes_the_data_dir_as_the_readme_says() -> None:
    root = typer.main.get_command(app)
    assert [path for path, leaf in _leaves(root) if "--data-dir" not in _options(leaf)] == []


def test_the_readme_quick_start_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    quick_start, _tour = _blocks(ROOT / "README.md", "python")
    monkeypatch.chdir(tmp_path)
    exec(compile(quick_start, "README.md", "exec"), {})
    assert capsys.readouterr().out == "Likes green tea in the morning\n"


def _run_the_tour(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's tour, run in ``tmp_path`` as a reader runs it."""
    _quick_start, tour = _blocks(ROOT / "README.md", "python")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    try:
        exec(compile(tour, "README.md", "exec"), namespace)
    finally:
        if "store" in namespace:
            namespace["store"].close()


def test_the_readme_tour_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _run_the_tour(tmp_path, monkeypatch)
    # The live query printed at once and again after the update.
    assert capsys.readouterr().out.splitlines() == ["['Short answers']"] * 2


def test_the_readme_exports_what_its_tour_leaves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A reader runs the README in order in one directory: the tour, then `pjai export`.
    _run_the_tour(tmp_path, monkeypatch)
    exported = CliRunner().invoke(app, ["export", "pjai-data.zip"])
    assert exported.exit_code == 0, exported.output
