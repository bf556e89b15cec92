"""Devtools: export this store's history to an archive, and restore an archive into a
new data directory, as `pjai export` and `pjai import` do.

Each runs on threads of its own (:mod:`pjai.web.heavy`), one export and one import at
a time across all tabs: an export holds the store's lock while it writes, so a second
would only wait behind it, and two imports into the same directory must never meet.
Another is refused at once and says why. An archive larger than the app's upload limit
(``pjai serve --max-upload-mb``) is held back by the browser, and refused by the server
(:mod:`pjai.web.uploads`) if sent all the same; the form says so either way, as it shows
the server's answer when it is receiving as many uploads as it takes, has no room for
this one or for its import, or stopped waiting for a stalled one. An archive taken is
imported from the one file it arrived in (:mod:`pjai.web.upload_field`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from nicegui import events, ui

from pjai.app import DataDir, export_archive, import_archive
from pjai.errors import NoRoomError, PjaiError
from pjai.web.app import WebApp
from pjai.web.upload_field import ReceivedFile, UploadField

__all__ = ["archives"]


@contextmanager
def _card(title: str, caption: str) -> Iterator[None]:
    with ui.card().classes("w-full max-w-[900px] gap-2"):
        ui.label(title).classes("text-subtitle1 text-weight-medium")
        ui.label(caption).classes("text-caption text-grey-7")
        yield


def archives(web: WebApp) -> None:
    """The export button and the import form."""
    tab = ui.context.client.id
    with _card(
        "Export",
        "The event log and a snapshot of every table, in a zip that `pjai import` (or "
        "the form below) restores. Commits wait while it is written.",
    ):
        export = ui.button(
            "Download an archive", icon="download", on_click=lambda: _export(web, tab)
        )
        export.props('data-testid="export"').mark("export")
    with _card(
        "Import into a new data directory",
        "An archive restores only into an empty directory (every checksum checked "
        "first); serve that directory to use it.",
    ):
        target = ui.input("New data directory (a path on the server)").classes("w-full")
        target.props('data-testid="import-target"').mark("import-target")
        outcome = ui.label("").props('data-testid="import-outcome"').mark("import-outcome")

        async def restore(file: ReceivedFile) -> None:
            outcome.set_text(await _restore(web, tab, target.value, file))

        too_large = (
            f"Not imported: the archive is larger than the {web.max_upload_mb} MB this "
            "app takes (pjai serve --max-upload-mb); import it with `pjai import` on the "
            "server."
        )

        def rejected(event: events.GenericEventArguments) -> None:
            # The browser's own checks, before anything is sent.
            too_big = isinstance(event.args, list) and "max-file-size" in event.args
            outcome.set_text(too_large if too_big else "Not imported: choose a .zip archive.")

        def failed(event: events.GenericEventArguments) -> None:
            # The server's refusal: 413 for an archive within the browser's limit whose
            # form around it is not (or a page that skipped the browser's check); 408
            # when the upload stalled, 503 when it takes as many uploads as it can, 507
            # when its temporary disk, or the new directory's, has no room, saying so in
            # its answer.
            status, answer = _failure(event.args)
            if status == 413:
                outcome.set_text(too_large)
            elif status in _SAID and answer:
                outcome.set_text(f"Not imported. {answer}")
            else:
                why = f"HTTP {status}" if status else "no answer from the server"
                outcome.set_text(f"Not imported: the upload failed ({why}).")
            uploader.reset()

        uploader = UploadField(restore, label="Archive (.zip)", max_file_size=web.max_upload_bytes)
        # Emptied after each try, so that the same file can be chosen again; only once
        # the answer has come, as emptying it aborts an upload under way.
        uploader.on("uploaded", uploader.reset)
        uploader.on(
            "rejected",
            rejected,
            js_handler="(entries) => emit(entries.map((e) => e.failedPropValidation))",
        )
        uploader.on("failed", failed, js_handler="(e) => emit(e.xhr.status, e.xhr.responseText)")
        uploader.props('accept=".zip" data-testid="import-upload"').classes("w-full")


_SAID = frozenset({408, 503, 507})
"""The refusals whose answer the form shows as the server wrote it."""
_ANSWER_CHARS = 500
"""The most of a server's answer the form shows."""


def _failure(args: object) -> tuple[int, str]:
    """The status and answer of a failed upload, as the browser reported them (a page
    may report anything: taken only as an int and a string, the answer cut short)."""
    match args:
        case [int() as status, str() as answer]:
            return status, answer.strip()[:_ANSWER_CHARS]
        case [int() as status, *_]:
            return status, ""
    return 0, ""


async def _restore(web: WebApp, tab: str, target: str, file: ReceivedFile) -> str:
    """Import the uploaded archive ``file`` into ``target`` for ``tab``, reading it
    where it arrived; what happened, in a sentence."""
    if not target:
        return "Name the new data directory first."
    try:
        result = await web.imports.run(partial(import_archive, DataDir(target), file.path), tab=tab)
    except NoRoomError as exc:
        # Answered 507 by the upload field, as a temporary disk without room is, once the
        # archive is removed; the form shows that answer.
        why = _shown(exc, file)
        raise NoRoomError(why[:1].upper() + why[1:]) from exc
    except (PjaiError, OSError) as exc:
        return f"Not imported: {_shown(exc, file)}"
    return f"Imported {result.events} events and {sum(result.rows.values())} rows into {target}."


def _shown(exc: Exception, file: ReceivedFile) -> str:
    """What ``exc`` says, naming the archive as it was chosen, not the server's copy."""
    return str(exc).replace(str(file.path), file.name)


async def _export(web: WebApp, tab: str) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        path = Path(workdir) / "archive.zip"
        try:
            await web.exports.run(partial(export_archive, web.manager, path), tab=tab)
        except PjaiError as exc:
            ui.notify(f"Not exported: {exc}", type="negative", multi_line=True)
            return
        content = path.read_bytes()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    ui.download(content, f"pjai-{stamp}.zip", "application/zip")
