"""``pjai bookmark ...`` and ``pjai conversation ...``: bookmarks and conversations."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from pjai.app import Bookmarks, Conversations
from pjai.cli.common import (
    DEFAULT_DATA_DIR,
    ConversationArg,
    DataDirOption,
    JsonFlag,
    MaxImportance,
    MinImportance,
    PersonaArg,
    TagOpt,
    TierOpt,
    TypeOpt,
    console,
    open_manager,
    parse_time,
    print_json,
    print_result,
)
from pjai.memory.timeline import PRESETS

app = typer.Typer(help="Bookmarks: named time ranges and filters.", no_args_is_help=True)
conversations = typer.Typer(help="Conversations with a persona.", no_args_is_help=True)

BookmarkArg = Annotated[str, typer.Argument(help="The bookmark's id.")]
Hours = Annotated[
    str | None, typer.Option(help="Hours of the day (UTC), e.g. 9-17.", metavar="FROM-TO")
]
From = Annotated[str | None, typer.Option("--from", help="Start (ISO time, UTC).")]
To = Annotated[str | None, typer.Option("--to", help="End, exclusive (ISO time, UTC).")]
Colour = Annotated[str | None, typer.Option(help="Colour, #rrggbb.")]
Labels = Annotated[list[str] | None, typer.Option("--label", help="The bookmark's own tags.")]


def _hours(text: str | None) -> list[int] | None:
    if text is None:
        return None
    start, sep, end = text.partition("-")
    if not (sep and start.strip().isdigit() and end.strip().isdigit()):
        raise typer.BadParameter(f"{text!r}: use FROM-TO hours, e.g. 9-17", param_hint="--hours")
    return [int(start), int(end)]


def _table(rows: list[Any]) -> Table:
    table = Table("id", "name", "from", "to", "filters", "colour")
    for r in rows:
        table.add_row(
            r.id, r.name, str(r.time_from or ""), str(r.time_to or ""), str(r.filters), r.colour
        )
    return table


@app.command()
def create(
    persona_id: PersonaArg,
    name: Annotated[str, typer.Argument(help="The bookmark's name.")],
    description: Annotated[str, typer.Option(help="What it marks.")] = "",
    time_from: From = None,
    time_to: To = None,
    tiers: TierOpt = None,
    types: TypeOpt = None,
    tags: TagOpt = None,
    min_importance: MinImportance = None,
    max_importance: MaxImportance = None,
    hours: Hours = None,
    colour: Colour = None,
    labels: Labels = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Bookmark a time range and filters of a persona's timeline."""
    start, end, span = parse_time(time_from, "--from"), parse_time(time_to, "--to"), _hours(hours)
    with open_manager(data_dir) as manager:
        row = Bookmarks(manager).create(
            persona_id,
            name,
            description=description,
            time_from=start,
            time_to=end,
            tiers=tiers,
            types=types,
            tags=tags,
            importance_min=min_importance,
            importance_max=max_importance,
            hours=span,
            colour=colour,
            labels=labels or (),
        )
    print_result(row._asdict(), as_json, f"Created bookmark {name} ({row.id}).")


@app.command("preset")
def add_preset(
    persona_id: PersonaArg,
    name: Annotated[str, typer.Argument(help=f"One of {', '.join(PRESETS)}.")],
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Bookmark a preset: today, this_week, working_hours or hot_memories."""
    with open_manager(data_dir) as manager:
        row = Bookmarks(manager).preset(persona_id, name)
    print_result(row._asdict(), as_json, f"Created bookmark {row.name} ({row.id}).")


@app.command("list")
def list_bookmarks(
    persona_id: PersonaArg,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """A persona's bookmarks by name."""
    with open_manager(data_dir) as manager:
        rows = Bookmarks(manager).list(persona_id)
    print_result([r._asdict() for r in rows], as_json, _table(rows))


@app.command()
def show(
    bookmark_id: BookmarkArg,
    limit: Annotated[int, typer.Option(min=1, help="At most this many memories.")] = 200,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """The memories a bookmark shows, most recent first."""
    with open_manager(data_dir) as manager:
        view = Bookmarks(manager).show(bookmark_id, limit=limit)
    mark, found = view.bookmark, view.memories
    if as_json:
        print_json({"bookmark": mark._asdict(), "memories": found})
        return
    console.print(Text.assemble((mark.name, "bold"), f" ({mark.id}) · {len(found)} memory(ies)"))
    for m in found:
        console.print(f"  {m.occurred_at:%Y-%m-%d %H:%M}  {m.tier:<4}  {m.id}  {m.content[:60]}")


@app.command()
def update(
    bookmark_id: BookmarkArg,
    name: Annotated[str | None, typer.Option(help="New name.")] = None,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    time_from: From = None,
    time_to: To = None,
    colour: Colour = None,
    labels: Labels = None,
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
        changes["time_to"] = parse_time(time_to, "--to")
    if labels is not None:
        changes["tags"] = labels
    if not changes:
        raise typer.BadParameter("nothing to change: give at least one option")
    with open_manager(data_dir) as manager:
        mark = Bookmarks(manager).update(bookmark_id, **changes)
    print_result(mark._asdict(), as_json, f"Updated bookmark {bookmark_id}.")


@app.command()
def delete(
    bookmark_id: BookmarkArg, data_dir: DataDirOption = DEFAULT_DATA_DIR, as_json: JsonFlag = False
) -> None:
    """Delete a bookmark."""
    with open_manager(data_dir) as manager:
        Bookmarks(manager).delete(bookmark_id)
    print_result({"deleted": bookmark_id}, as_json, f"Deleted bookmark {bookmark_id}.")


@conversations.command()
def start(
    persona_id: PersonaArg,
    title: Annotated[str, typer.Option(help="A title.")] = "",
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Start a conversation with a persona; prints its id."""
    with open_manager(data_dir) as manager:
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
        message_id = Conversations(manager).say(conversation_id, role, text, sent_at=sent_at)
    if as_json:
        print_json({"message_id": message_id, "conversation_id": conversation_id})
    else:
        print(message_id)


@conversations.command("list")
def list_conversations(
    persona_id: PersonaArg,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """A persona's conversations, the latest started first."""
    with open_manager(data_dir) as manager:
        rows = Conversations(manager).list(persona_id)
    table = Table("id", "title", "started", "messages")
    for r in rows:
        table.add_row(r.id, r.title, f"{r.started_at:%Y-%m-%d %H:%M}", str(r.message_count))
    print_result([r._asdict() for r in rows], as_json, table)


@conversations.command("show")
def show_conversation(
    conversation_id: ConversationArg,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many messages.")] = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """A conversation and its messages in the order they were sent."""
    with open_manager(data_dir) as manager:
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
