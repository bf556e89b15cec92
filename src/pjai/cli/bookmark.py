"""``pjai bookmark ...`` and ``pjai conversation ...``: bookmarks and conversations."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import typer
from rich.table import Table
from rich.text import Text

from pjai.cli.common import (
    DEFAULT_DATA_DIR,
    DataDir,
    JsonFlag,
    MaxImportance,
    MinImportance,
    TagOpt,
    TierOpt,
    TypeOpt,
    console,
    open_manager,
    parse_time,
    print_json,
)
from pjai.memory.conversations import add_message
from pjai.memory.timeline import PRESETS, bookmark_memories, bookmarks, get_bookmark, preset
from pjai.schema import (
    BookmarkCreated,
    BookmarkDeleted,
    BookmarkFilters,
    BookmarkUpdated,
    ConversationStarted,
    new_id,
)
from pjai.schema.event import validation_error
from pjai.schema.models import memory_from_row

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


def _filters(**given: Any) -> BookmarkFilters:
    values = {k: v for k, v in given.items() if v is not None}
    try:
        return msgspec.convert(values, BookmarkFilters)
    except msgspec.ValidationError as exc:
        raise validation_error(BookmarkCreated.NAME, exc) from exc


@app.command()
def create(
    persona_id: Annotated[str, typer.Argument(help="The persona's id.")],
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
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Bookmark a time range and filters of a persona's timeline."""
    filters = _filters(
        tiers=tiers,
        types=types,
        tags=tags,
        importance_min=min_importance,
        importance_max=max_importance,
        hours=_hours(hours),
    )
    args: dict[str, Any] = {
        "bookmark_id": new_id(),
        "persona_id": persona_id,
        "name": name,
        "description": description,
        "time_from": parse_time(time_from, "--from"),
        "time_to": parse_time(time_to, "--to"),
        "filters": filters,
        "tags": labels or [],
    }
    if colour is not None:
        args["colour"] = colour
    event = BookmarkCreated(**args)
    with open_manager(data_dir) as manager:
        manager.commit(event)
        row = get_bookmark(manager, event.bookmark_id)
    if as_json:
        print_json(row._asdict())
    else:
        console.print(f"Created bookmark {name} ({event.bookmark_id}).")


@app.command("preset")
def add_preset(
    persona_id: Annotated[str, typer.Argument(help="The persona's id.")],
    name: Annotated[str, typer.Argument(help=f"One of {', '.join(PRESETS)}.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Bookmark a preset: today, this_week, working_hours or hot_memories."""
    with open_manager(data_dir) as manager:
        event = preset(name, persona_id)
        manager.commit(event)
        row = get_bookmark(manager, event.bookmark_id)
    if as_json:
        print_json(row._asdict())
    else:
        console.print(f"Created bookmark {event.name} ({event.bookmark_id}).")


@app.command("list")
def list_bookmarks(
    persona_id: Annotated[str, typer.Argument(help="The persona's id.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """A persona's bookmarks by name."""
    with open_manager(data_dir) as manager:
        rows = bookmarks(manager, persona_id)
    if as_json:
        print_json([r._asdict() for r in rows])
        return
    table = Table("id", "name", "from", "to", "filters", "colour")
    for r in rows:
        table.add_row(
            r.id, r.name, str(r.time_from or ""), str(r.time_to or ""), str(r.filters), r.colour
        )
    console.print(table)


@app.command()
def show(
    bookmark_id: BookmarkArg,
    limit: Annotated[int, typer.Option(min=1, help="At most this many memories.")] = 200,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """The memories a bookmark shows, most recent first."""
    with open_manager(data_dir) as manager:
        mark = get_bookmark(manager, bookmark_id)
        found = [memory_from_row(r) for r in bookmark_memories(manager, bookmark_id, limit=limit)]
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
    data_dir: DataDir = DEFAULT_DATA_DIR,
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
        mark = get_bookmark(manager, bookmark_id)
        manager.commit(
            BookmarkUpdated(bookmark_id=bookmark_id, persona_id=mark.persona_id, **changes)
        )
        mark = get_bookmark(manager, bookmark_id)
    if as_json:
        print_json(mark._asdict())
    else:
        console.print(f"Updated bookmark {bookmark_id}.")


@app.command()
def delete(
    bookmark_id: BookmarkArg, data_dir: DataDir = DEFAULT_DATA_DIR, as_json: JsonFlag = False
) -> None:
    """Delete a bookmark."""
    with open_manager(data_dir) as manager:
        mark = get_bookmark(manager, bookmark_id)
        manager.commit(BookmarkDeleted(bookmark_id=bookmark_id, persona_id=mark.persona_id))
    if as_json:
        print_json({"deleted": bookmark_id})
    else:
        console.print(f"Deleted bookmark {bookmark_id}.")


@conversations.command()
def start(
    persona_id: Annotated[str, typer.Argument(help="The persona's id.")],
    title: Annotated[str, typer.Option(help="A title.")] = "",
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Start a conversation with a persona; prints its id."""
    event = ConversationStarted(conversation_id=new_id(), persona_id=persona_id, title=title)
    with open_manager(data_dir) as manager:
        manager.commit(event)
    if as_json:
        print_json({"conversation_id": event.conversation_id, "persona_id": persona_id})
    else:
        print(event.conversation_id)


@conversations.command()
def say(
    conversation_id: Annotated[str, typer.Argument(help="The conversation's id.")],
    role: Annotated[str, typer.Argument(help="Who speaks: user, assistant or a name.")],
    text: Annotated[str, typer.Argument(help="The message.")],
    at: Annotated[str | None, typer.Option(help="When it was sent (ISO time).")] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Add a message to a conversation; prints its id."""
    sent_at = parse_time(at, "--at")
    with open_manager(data_dir) as manager:
        event = add_message(manager, conversation_id, role, text, sent_at=sent_at)
    if as_json:
        print_json({"message_id": event.message_id, "conversation_id": conversation_id})
    else:
        print(event.message_id)
