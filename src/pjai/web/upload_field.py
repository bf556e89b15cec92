"""An upload field whose file is written once, to the one file the view reads.

NiceGUI's ``ui.upload`` has Starlette spool the request's file to a temporary file,
then copies it into a second one of its own, which the view would copy again to a path
it can hand on: a 1 GB upload took 2 GB of temporary disk at its peak, and NiceGUI's
copy was removed only when the garbage collector found it (a server stopped before
then left it behind). :class:`UploadField` takes over the field's route and parses the
multipart form as it streams in, writing the file's bytes straight to a private folder
under the temporary directory (``TMPDIR``); the view gets that path, and the folder is
removed once the view is done with it, whatever happened: the file taken, refused, the
client gone mid-upload, an error on the server; what a killed server left there is
removed by the next sweep (:mod:`pjai.web.upload_folders`). A disk that fills up as the
file arrives is answered 507, saying so, as is a view that finds no room for what it
would do with the file (:class:`~pjai.errors.NoRoomError`).
"""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import anyio.to_thread
from nicegui import app, background_tasks, ui
from nicegui.elements.upload_files import FileUpload
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from pjai.errors import NoRoomError, PjaiError
from pjai.web.upload_folders import private_folder
from pjai.web.uploads import megabytes, temp_space

__all__ = ["FileHandler", "ReceivedFile", "UploadField", "received_file"]

_FLUSH = 1024 * 1024
"""How many bytes of the file are held in memory before they are written out."""
_FAILED = "The server failed to take this upload; its log says why.\n"
_NAME_CHARS = 255
"""The longest file name kept for display (the name is never used on disk)."""


@dataclass(frozen=True, slots=True)
class ReceivedFile:
    """A file the browser sent, whole on disk: ``name`` as it was chosen (for display;
    the server's copy is ``path``), ``size`` in bytes."""

    name: str
    path: Path
    size: int


FileHandler = Callable[[ReceivedFile], Awaitable[None]]
"""What a view does with a received file; the file is removed when it returns."""


class _Refused(PjaiError):
    """The upload cannot be taken: answered with ``status`` and ``text``, never raised
    beyond :class:`UploadField`'s route."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def _display_name(raw: bytes) -> str:
    """The last component of a file name as the form gave it (a browser sends only
    that; another client may send a path), cut to a length a page can show."""
    name = raw.decode("utf-8", errors="replace")
    return name.rsplit("/")[-1].rsplit("\\")[-1][:_NAME_CHARS]


class _FormReader:
    """A multipart form read as it arrives: the bytes of its one file part, waiting in
    :attr:`pending` to be written; every other field is dropped unread, so that no part
    of the form is held in memory beyond a chunk."""

    def __init__(self, content_type: str) -> None:
        kind, options = parse_options_header(content_type)
        boundary = options.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise _Refused(400, "An upload must be a multipart/form-data form with a boundary.")
        self.name: str | None = None
        """The chosen name of the form's file, once its headers have arrived."""
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.ended = False
        """Whether the form's closing boundary has arrived: until then the file may be cut."""
        self._in_file = False
        self._header = b""
        self._value = b""
        self._disposition = b""
        try:
            self._parser = MultipartParser(
                boundary,
                callbacks={
                    "on_part_begin": self._part_begin,
                    "on_part_data": self._part_data,
                    "on_header_field": self._header_field,
                    "on_header_value": self._header_value,
                    "on_header_end": self._header_end,
                    "on_headers_finished": self._headers_finished,
                    "on_end": self._end,
                },
            )
        except FormParserError as exc:
            raise _Refused(400, f"The upload's form is not valid multipart: {exc}.") from exc

    def feed(self, chunk: bytes) -> None:
        """Parse the next ``chunk`` of the request's body."""
        try:
            self._parser.write(chunk)
        except FormParserError as exc:
            raise _Refused(400, f"The upload's form is not valid multipart: {exc}.") from exc

    def take(self) -> list[bytes]:
        """The file's bytes parsed since the last call, to be written out."""
        pieces, self.pending, self.pending_bytes = self.pending, [], 0
        return pieces

    def _part_begin(self) -> None:
        self._in_file = False
        self._disposition = b""

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.pending.append(data[start:end])
            self.pending_bytes += end - start

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        # The parser holds each header line to its own limit (4 KiB, 8 per part).
        if self._header.lower() == b"content-disposition":
            self._disposition = self._value
        self._header = self._value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"filename" not in options:
            return  # a plain field: dropped
        if self.name is not None:
            raise _Refused(400, "An upload holds one file; this form holds more.")
        self.name = _display_name(options[b"filename"])
        self._in_file = True

    def _end(self) -> None:
        self.ended = True


async def _write(out: BinaryIO, pieces: list[bytes]) -> None:
    # A worker thread keeps the event loop free; anyio's waits for it even when the
    # request is cancelled, so that the file is never closed under a write.
    await anyio.to_thread.run_sync(out.writelines, pieces)


async def _store(request: Request, folder: Path) -> ReceivedFile:
    """Parse ``request``'s form as it streams in, writing its file into ``folder``;
    the file is named ``upload`` only once all of it has arrived."""
    reader = _FormReader(request.headers.get("content-type", ""))
    part, whole = folder / "upload.part", folder / "upload"
    try:
        with part.open("wb") as out:
            async for chunk in request.stream():
                reader.feed(chunk)
                if reader.pending_bytes >= _FLUSH:
                    await _write(out, reader.take())
            await _write(out, reader.take())
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        # Checked for room before it began (UploadLimit); something else filled it since.
        where, free = temp_space()
        raise _Refused(
            507,
            f"The server's temporary disk ({where}) filled up during this upload "
            f"({megabytes(free)} free now). Free some space there, or serve with TMPDIR "
            "set to a larger disk.\n",
        ) from exc
    if reader.name is None:
        raise _Refused(400, "The upload's form holds no file.")
    if not reader.ended:
        raise _Refused(400, "The upload's form ended before its file did.")
    part.replace(whole)
    return ReceivedFile(reader.name, whole, whole.stat().st_size)


@asynccontextmanager
async def received_file(request: Request) -> AsyncIterator[ReceivedFile]:
    """The file of ``request``'s multipart form, whole on disk for the block, removed
    after it; :class:`_Refused` if the form is not one file."""
    with private_folder() as folder:
        yield await _store(request, folder)


class UploadField(ui.upload):
    """A ``ui.upload`` (one file at a time, sent as soon as it is chosen) whose file is
    written once, to the file ``on_file`` gets; the file is removed when ``on_file``
    returns, and only then does the browser get its answer: 507 with its message if
    ``on_file`` raised :class:`~pjai.errors.NoRoomError` (a disk has no room for what
    it was to do with the file). NiceGUI's own upload handlers (``on_upload`` and the
    like) are not called."""

    def __init__(
        self, on_file: FileHandler, *, label: str = "", max_file_size: int | None = None
    ) -> None:
        super().__init__(label=label, auto_upload=True, max_file_size=max_file_size)
        self.on_file = on_file
        url = str(self.props["url"])
        app.remove_route(url)  # NiceGUI's, which spools the file twice
        app.add_api_route(url, self._receive, methods=["POST"], include_in_schema=False)

    async def take(self, file: ReceivedFile) -> None:
        """Give ``file`` to ``on_file``, in this field's place on its page."""
        with self.parent_slot or self.client.layout.default_slot:
            await self.on_file(file)

    async def _receive(self, request: Request) -> Response:
        if self.is_ignoring_events:
            return PlainTextResponse("This upload field is disabled or hidden.\n", 403)
        # Errors while the file arrives go on (the upload limit's among them); the
        # view's are logged as NiceGUI logs a handler's, and answered 500.
        try:
            async with received_file(request) as file:
                try:
                    await self.take(file)
                except NoRoomError as exc:
                    # Answered as a disk found full as the file arrived, once it is gone.
                    raise _Refused(507, f"{exc}\n") from exc
                except Exception as exc:
                    app.handle_exception(exc)
                    return PlainTextResponse(_FAILED, 500)
        except _Refused as refusal:
            return PlainTextResponse(refusal.text, refusal.status)
        except ClientDisconnect:
            return Response(status_code=400)  # no one is left to read it
        return JSONResponse({"upload": "success"})

    async def handle_uploads(self, files: list[FileUpload]) -> None:
        """Files given as NiceGUI's tests give them: each is written to a file of its
        own and handed to ``on_file`` in the background, as NiceGUI hands uploads to
        its handlers."""
        for upload in files:
            background_tasks.create(self._take_given(upload), name=f"upload {upload.name}")

    async def _take_given(self, upload: FileUpload) -> None:
        with private_folder() as folder:
            path = folder / "upload"
            await upload.save(path)
            await self.take(ReceivedFile(upload.name, path, path.stat().st_size))
