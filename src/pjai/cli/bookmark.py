"""``pjai bookmark ...`` and ``pjai conversation ...``: bookmarks and conversations."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Column, Table
from rich.text import Text

from pjai.app import Bookmarks, Conversations, resolve
from pjai.cli.common import (
    DEFAULT_DATA_DIR,
    INCLUDED_END,
    ConversationArg,
    DataDirOption,
    JsonFlag,
    PersonaOpt,
    ValueAfterPersona,
    console,
    for_persona,
    leading_persona,
    named_fields,
    open_manager,
    open_persona,
    parse_time,
    persona_and,
    print_json,
    print_result,
)
from pjai.cli.memory.options import (
    MAX_LIMIT,
    UNFILTERED,
    Filters,
    filtered,
    memory_table,
)
from pjai.cli.output import (
    Format,
    id_column,
    listing,
    number,
    plain,
    print_rows,
    short_column,
    when,
    wide_terminal,
)
from pjai.memory.timeline import PRESETS

# Errors name what the person typed: bookmark create's NAME, conversation say's TEXT.
app = typer.Typer(
    help="Bookmarks: named time ranges and filters.",
    no_args_is_help=True,
    cls=named_fields({"name": "first"}),
)
conversations = typer.Typer(
    help="Conversations with a persona.",
    no_args_is_help=True,
    cls=named_fields({"content": "text"}),
)

BookmarkArg = Annotated[str, typer.Argument(help="The bookmark's id, or the start of it.")]
Hours = Annotated[
    str | None, typer.Option(help="Hours of the day (UTC), e.g. 9-17.", metavar="FROM-TO")
]
From = Annotated[str | None, typer.Option("--from", help="Start (ISO time, UTC).")]
To = Annotated[
    str | None,
    typer.Option("--to", help=f"End, included ({INCLUDED_END})."),
]
Colour = Annotated[str | None, typer.Option(help="Colour, #rrggbb.")]
Labels = Annotated[list[str] | None, typer.Option("--label", help="The bookmark's own tags.")]


def _hours(text: str | None) -> list[int] | None:
    if text is None:
        return None
    start, sep, end = text.partition("-")
    if not (sep and start.strip().isdigit() and end.strip().isdigit()):
        raise typer.BadParameter(f"{text!r}: use FROM-TO hours, e.g. 9-17", param_hint="--hours")
    low, high = int(start), int(end)
    if low > 23 or high > 24:
        raise typer.BadParameter(
            f"{text!r}: FROM runs from 0 to 23, TO from 1 to 24", param_hint="--hours"
        )
    if low >= high:
        # A span across midnight would need two ranges; a bookmark filters by one.
        across = f"; for hours across midnight make two bookmarks, {low}-24 and 0-{high}"
        raise typer.BadParameter(
            f"{text!r}: FROM must be before TO within one day (UTC){across if low > high else ''}",
            param_hint="--hours",
        )
    return [low, high]


def _filters(filters: dict[str, Any]) -> str:
    """A bookmark's filters for people: ``tiers hot, warm · hours 9-17 · importance 0.5-1``."""
    parts = [
        f"{key} {plain(filters[key])}" for key in ("tiers", "types", "tags") if filters.get(key)
    ]
    low, high = filters.get("importance_min"), filters.get("importance_max")
    if low is not None or high is not None:
        parts.append(f"importance {number(low or 0)}-{number(1 if high is None else high)}")
    if hours := filters.get("hours"):
        parts.append(f"hours {hours[0]}-{hours[1]}")
    return " · ".join(parts) or "-"


def _table(rows: list[Any]) -> Table:
    """Bookmarks as a table: id, name, from, to, filters and colour; at a narrow terminal
    id, name, from and to (each time on two lines, day above hour)."""
    wide = wide_terminal()
    columns = [id_column(), Column("name"), *(Column(h, min_width=10) for h in ("from", "to"))]
    if wide:
        columns += [Column("filters"), short_column("colour")]
    table = Table(*columns)
    for r in rows:
        cells = [r.id, r.name, when(r.time_from), when(r.time_to)]
        if wide:
            cells += [_filters(r.filters), r.colour]
        table.add_row(*cells)
    return table


@app.command()
@filtered
def create(
    first: Annotated[str, leading_persona("NAME", "The bookmark's name")],
    bookmark_name: ValueAfterPersona = None,
    persona: PersonaOpt = None,
    description: Annotated[str, typer.Option(help="What it marks.")] = "",
    time_from: From = None,
    time_to: To = None,
    filters: Filters = UNFILTERED,
    hours: Hours = None,
    colour: Colour = None,
    labels: Labels = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Bookmark a time range and filters of a persona's timeline."""
    persona_ref, name = persona_and(first, bookmark_name, persona)
    start, end = parse_time(time_from, "--from"), parse_time(time_to, "--to", end=True)
    span = _hours(hours)
    with open_persona(data_dir, persona_ref) as (manager, persona_id):
        row = Bookmarks(manager).create(
            persona_id,
            name,
            description=description,
            time_from=start,
            time_to=end,
            tiers=filters.tiers,
            types=filters.types,
            tags=filters.tags,
            importance_min=filters.min_importance,
            importance_max=filters.max_importance,
            hours=span,
            colour=colour,
            labels=labels or (),
        )
    print_result(row._asdict(), as_json, f"Created bookmark {name} ({row.id}).")


@app.command("preset")
def add_preset(
    first: Annotated[str, leading_persona("PRESET", f"One of {', '.join(PRESETS)}")],
    preset: ValueAfterPersona = None,
    persona: PersonaOpt = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Bookmark a preset: today, this_week, working_hours or hot_memories."""
    persona_ref, name = persona_and(first, preset, persona)
    with open_persona(data_dir, persona_ref) as (manager, persona_id):
        row = Bookmarks(manager).preset(persona_id, name)
    print_result(row._asdict(), as_json, f"Created bookmark {row.name} ({row.id}).")


@app.command("list")
@listing
@for_persona
def list_bookmarks(
    persona: str | None = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    fmt: Format = "table",
) -> None:
    """A persona's bookmarks (by default the active one's) by name."""
    with open_persona(data_dir, persona) as (manager, persona_id):
        rows = Bookmarks(manager).list(persona_id)
    print_rows([r._asdict() for r in rows], _table(rows), fmt)


@app.command()
@listing
def show(
    bookmark_id: BookmarkArg,
    limit: Annotated[
        int, typer.Option(min=1, max=MAX_LIMIT, help="At most this many memories.")
    ] = 200,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    fmt: Format = "table",
) -> None:
    """The memories a bookmark shows, most recent first (--nl, --csv, --tsv: the memories)."""
    with open_manager(data_dir) as manager:
        view = Bookmarks(manager).show(resolve.bookmark_id(manager, bookmark_id), limit=limit)
    mark, found = view.bookmark, view.memories
    if fmt == "json":
        print_json({"bookmark": mark._asdict(), "memories": found})
        return
    if fmt == "table":
        console.print(
            Text.assemble(
                (mark.name, "bold"),
                f" ({mark.id}) · {_filters(mark.filters)} · {len(found)} memory(ies)",
            )
        )
    print_rows(found, memory_table(found), fmt)


@app.command()
def update(
    bookmark_id: BookmarkArg,
    name: Annotated[str | None, typer.Option(help="New name.")] = None,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    time_from: From = None,
    time_to: To = None,
    colour: Colour = None,
    tags: Labels = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Rename a bookmark or change its time range, colour or labels."""
    changes: dict[str, Any] = {}
    for key, value in (("name", name), ("description", description), ("colour", colour)):
        if value is not None:
            changes[key] = value
    if time_from is not None:
        changes["time_from"] = parse_time(time_from, "--from")
    if time_to is not None:
        changes["time_to"] = parse_time(time_to, "--to", end=True)
    if tags is not None:
        changes["tags"] = tags
    if not changes:
        raise typer.BadParameter("nothing to change: give at least one option")
    with open_manager(data_dir) as manager:
        mark = Bookmarks(manager).update(resolve.bookmark_id(manager, bookmark_id), **changes)
    print_result(mark._asdict(), as_json, f"Updated bookmark {mark.name} ({mark.id}).")


@app.command()
def delete(
    bookmark_id: BookmarkArg, data_dir: DataDirOption = DEFAULT_DATA_DIR, as_json: JsonFlag = False
) -> None:
    """Delete a bookmark."""
    with open_manager(data_dir) as manager:
        bookmark_id = resolve.bookmark_id(manager, bookmark_id)
        Bookmarks(manager).delete(bookmark_id)
    print_result({"deleted": bookmark_id}, as_json, f"Deleted bookmark {bookmark_id}.")


@conversations.command()
@for_persona
def start(
    persona: str | None = None,
    title: Annotated[str, typer.Option(help="A title.")] = "",
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Start a conversation with a persona (by default the active one); prints its id."""
    with open_persona(data_dir, persona) as (manager, persona_id):
        conversation_id = Conversations(manager).start(persona_id, title=title)
    if as_json:
        print_json({"conversation_id": conversation_id, "persona_id": persona_id})
    else:
        print(conversation_id)


@conversations.command()
def say(
    conversation_id: ConversationArg,
    role: Annotated[str, typer.Argument(help="Who speaks: user, assistant, system or tool.")],
    text: Annotated[str, typer.Argument(help="The message.")],
    at: Annotated[str | None, typer.Option(help="When it was sent (ISO time).")] = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Add a message to a conversation; prints its id."""
    sent_at = parse_time(at, "--at")
    with open_manager(data_dir) as manager:
        conversation_id = resolve.conversation_id(manager, conversation_id)
        message_id = Conversations(manager).say(conversation_id, role, text, sent_at=sent_at)
    if as_json:
        print_json({"message_id": message_id, "conversation_id": conversation_id})
    else:
        print(message_id)


@conversations.command("list")
@listing
@for_persona
def list_conversations(
    persona: str | None = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    fmt: Format = "table",
) -> None:
    """A persona's conversations (by default the active one's), the latest started first."""
    with open_persona(data_dir, persona) as (manager, persona_id):
        rows = Conversations(manager).list(persona_id)
    table = Table(id_column(), "title", "started", "messages")
    for r in rows:
        table.add_row(r.id, r.title, f"{r.started_at:%Y-%m-%d %H:%M}", str(r.message_count))
    print_rows([r._asdict() for r in rows], table, fmt)


@conversations.command("show")
def show_conversation(
    conversation_id: ConversationArg,
    limit: Annotated[
        int | None, typer.Option(min=1, max=MAX_LIMIT, help="At most this many messages.")
    ] = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """A conversation and its messages in the order they were sent."""
    with open_manager(data_dir) as manager:
        conversation_id = resolve.conversation_id(manager, conversation_id)
        view = Conversations(manager).show(conversation_id, limit=limit)
    talk, said = view.conversation, view.messages
    if as_json:
        print_json({"conversation": talk._asdict(), "messages": [m._asdict() for m in said]})
        return
    title = talk.title or talk.id
    console.print(Text.assemble((title, "bold"), f" ({talk.id}) · {talk.message_count} message(s)"))
    for m in said:
        when = f"  {m.sent_at:%Y-%m-%d %H:%M}  "
        console.print(Text.assemble(when, (m.role, "bold"), f"  {m.content}"))
