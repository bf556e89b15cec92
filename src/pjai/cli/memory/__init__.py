"""``pjai memory ...``: add, list, search, open, change and organise memories."""

from __future__ import annotations

import typer

from pjai.cli.common import named_fields
from pjai.cli.memory import finding, links, records, upkeep

__all__ = ["app"]

# Errors name what the person typed: memory add's CONTENT, --type.
app = typer.Typer(
    help="Memories: add, list, search, open, organise.",
    no_args_is_help=True,
    cls=named_fields({"content": "first", "type": "kind"}),
)
app.command()(records.add)
app.command("list")(records.list_memories)
app.command("search")(finding.search_memories)
app.command()(records.show)
app.command("open")(records.open_memory)
app.command()(records.update)
app.command()(records.delete)
app.command()(records.restore)
app.command()(upkeep.optimize)
app.command()(upkeep.stats)
app.command("timeline")(finding.show_timeline)
app.command()(links.link)
app.command()(links.unlink)
app.command("neighbours")(links.show_neighbours)
app.command("auto-link")(links.auto_link)
app.command("decay-links")(links.decay_links)
app.command("ingest-conversation")(upkeep.ingest)
