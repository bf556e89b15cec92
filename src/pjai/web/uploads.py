"""How large an upload the web app takes, enforced on the server.

A ``ui.upload``'s ``max_file_size`` is checked only by the browser: a modified page, or
any HTTP client holding the session cookie, can post more, and the upload field
(:mod:`pjai.web.upload_field`) would write all of it to the temporary disk before a view
sees it. :class:`UploadLimit` stands in front of NiceGUI's upload route and answers 413
once a request is larger than the limit: at once when its ``Content-Length`` says so,
and as its body streams otherwise (a chunked request names no length), never passing on
more than the limit. Each upload taken holds up to the limit on the temporary disk until
its view is done with it, so it also answers, before reading any of the body, 503 with
a ``Retry-After`` to an upload beyond :data:`UPLOADS_AT_ONCE` under way (a few clients
each sending the largest upload at once would otherwise fill the disk), and 507 to one
that the temporary disk has no room for: its ``Content-Length`` (the limit, when it
names none) more than what is free there, less what the uploads under way may still
write and the spare room kept free (:data:`~pjai.hybrid.room.SPARE_BYTES`). An upload
whose body stops moving on (less than :data:`UPLOAD_PROGRESS_BYTES` of it in
``timeout`` seconds of waiting, :data:`UPLOAD_TIMEOUT_S` by default) is answered 408
and ended, so that a client trickling its body a byte at a time cannot hold an upload's
place, and its room on the temporary disk, for ever. Before it measures the room free,
it removes now and then what uploads of a killed server left there
(:func:`~pjai.web.upload_folders.sweep`).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable, MutableMapping
from typing import Any

import anyio
import anyio.to_thread

from pjai.app import UPLOAD_PROGRESS_BYTES, UPLOAD_TIMEOUT_S
from pjai.errors import PjaiError
from pjai.hybrid.room import SPARE_BYTES, megabytes
from pjai.web.guard import ASGIApp, Receive, Scope, Send, answer_text
from pjai.web.upload_folders import SWEEP_EVERY_S, sweep

__all__ = [
    "BUSY_RETRY_S",
    "UPLOADS_AT_ONCE",
    "UPLOAD_ROUTE",
    "UploadLimit",
    "megabytes",
    "temp_space",
    "upload_bytes",
]

UPLOAD_ROUTE = re.compile(r"/_nicegui/client/[^/]+/upload/[^/]+")
"""The route NiceGUI gives each ``ui.upload`` (``/_nicegui/client/{client}/upload/{id}``,
nicegui/elements/upload.py)."""


UPLOADS_AT_ONCE = 2
"""How many uploads the server takes at once, across all its clients: at most twice the
upload limit on the temporary disk (2 GB by default, what one upload took before it was
written once). Imports run one at a time, so a third would only wait; two let the next
archive arrive while one imports, and an upload a browser left hanging does not lock the
form out. Not per login or tab: on loopback there is no login, off it one passphrase
makes every login the same user, and a tab is free to open; the disk is the server's."""


BUSY_RETRY_S = 30
"""The ``Retry-After`` of a 503 sent while :data:`UPLOADS_AT_ONCE` uploads are under way,
in seconds. How long they go on is not known: each lasts its transfer and its import,
seconds for the archives the default limit takes over a local network. Half a minute
keeps a script that retries (``curl --retry`` honours the header) from asking again and
again meanwhile; by then an upload that stalled has been ended as well
(:data:`~pjai.app.UPLOAD_TIMEOUT_S`)."""


def upload_bytes(megabytes: int) -> int:
    """``megabytes`` (MB of 1,048,576 bytes, as ``pjai serve --max-upload-mb`` takes
    them) in bytes."""
    return megabytes * 1024 * 1024


def temp_space() -> tuple[str, int]:
    """The temporary directory uploads are written under (``TMPDIR``), and the bytes
    free on its disk."""
    where = tempfile.gettempdir()
    return where, shutil.disk_usage(where).free


class _TooLarge(PjaiError):
    """The body streaming in went past the limit (raised from ``receive``, caught by
    :class:`UploadLimit`, never seen elsewhere)."""


class _Stalled(PjaiError):
    """The body streaming in did not move on in time (raised from ``receive``, caught by
    :class:`UploadLimit`, never seen elsewhere)."""


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # a malformed length: the server refuses it before the app
    return None


class UploadLimit:
    """ASGI middleware: a request to NiceGUI's upload route larger than ``limit`` bytes
    (the whole body, the form around the file included) gets 413, and one beyond
    ``at_once`` under way gets 503, one the temporary disk (``space``) has no room for
    507 (``spare`` bytes are kept free there besides), one whose body does not move on by
    :data:`UPLOAD_PROGRESS_BYTES` within ``timeout`` seconds 408; its connection is
    closed, the rest of the body never read."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        at_once: int = UPLOADS_AT_ONCE,
        space: Callable[[], tuple[str, int]] = temp_space,
        timeout: float = UPLOAD_TIMEOUT_S,
        spare: int = SPARE_BYTES,
    ) -> None:
        self.app = app
        self.limit = limit
        self.at_once = at_once
        self.space = space
        self.timeout = timeout
        self.spare = spare
        self.kept: list[int] = []
        """The room kept on the temporary disk for each upload being received or
        handled now (their requests not yet answered): the most each may write."""
        self.swept_at = -SWEEP_EVERY_S
        """When the upload folders were last swept (:func:`anyio.current_time`)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or UPLOAD_ROUTE.fullmatch(scope.get("path", "")) is None:
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > self.limit:
            await self._refuse(send)
            return
        # Before the checks: nothing may come between them and taking a place.
        if anyio.current_time() - self.swept_at >= SWEEP_EVERY_S:
            self.swept_at = anyio.current_time()
            await anyio.to_thread.run_sync(sweep)
        if len(self.kept) >= self.at_once:
            await self._refuse_busy(send)
            return
        needed = self.limit if length is None else length
        where, free = self.space()
        if needed + self.spare > free - sum(self.kept):
            await self._refuse_no_room(send, needed, where, free, named=length is not None)
            return
        self.kept.append(needed)
        try:
            await self._pass(scope, receive, send)
        finally:
            self.kept.remove(needed)

    async def _pass(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, refusing it once its body goes past the limit, or stops
        moving on."""
        received = 0
        answered = False
        ended = False
        # The seconds spent waiting for the body since it last moved on by
        # UPLOAD_PROGRESS_BYTES, and how much had arrived then: only the time the client
        # takes counts, not the app's own between two reads (a slow disk).
        waited, moved = 0.0, 0

        async def counted() -> MutableMapping[str, Any]:
            nonlocal received, ended, waited, moved
            if ended:
                return await receive()  # the app waiting for a disconnect: no deadline
            began = anyio.current_time()
            try:
                with anyio.fail_after(max(self.timeout - waited, 0.0)):
                    message = await receive()
            except TimeoutError:
                raise _Stalled from None
            waited += anyio.current_time() - began
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
                if received - moved >= UPLOAD_PROGRESS_BYTES:
                    moved, waited = received, 0.0
                ended = not message.get("more_body", False)
            return message

        async def watched(message: MutableMapping[str, Any]) -> None:
            nonlocal answered
            answered = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            # Raised before the chunk past the limit reached the form parser: what the
            # upload field wrote so far goes with its folder, none of it beyond the limit.
            if not answered:
                await self._refuse(send)
        except _Stalled:
            # Raised from the upload field's read: its folder is gone with what arrived.
            if not answered:
                await self._refuse_stalled(send)

    async def _refuse(self, send: Send) -> None:
        megabytes = self.limit / (1024 * 1024)
        why = (
            f"This upload is larger than the {megabytes:g} MB this app takes "
            "(pjai serve --max-upload-mb).\n"
        ).encode()
        # The rest of the body is never read: the connection cannot carry another
        # request after it.
        await answer_text(send, 413, why, close=True)

    async def _refuse_stalled(self, send: Send) -> None:
        why = (
            f"The server stopped waiting for this upload: less than "
            f"{UPLOAD_PROGRESS_BYTES // 1024} KiB of it arrived in {self.timeout:g} s "
            "(pjai serve --upload-timeout-s). Send it again over a steadier connection.\n"
        ).encode()
        await answer_text(send, 408, why, close=True)

    async def _refuse_busy(self, send: Send) -> None:
        why = (
            f"The server is receiving {len(self.kept)} uploads already, as many as it "
            "takes at once; try again when one has ended.\n"
        ).encode()
        retry = [(b"retry-after", str(BUSY_RETRY_S).encode())]
        await answer_text(send, 503, why, close=True, headers=retry)

    async def _refuse_no_room(
        self, send: Send, needed: int, where: str, free: int, *, named: bool
    ) -> None:
        kept = sum(self.kept)
        what = (
            f"This upload needs {megabytes(needed)} of temporary space"
            if named
            else "This upload names no length, so it needs as much temporary space as the "
            f"largest this app takes, {megabytes(needed)}"
        )
        has = f"{megabytes(free)} free" + (
            f", {megabytes(kept)} of it kept for the uploads under way" if kept else ""
        )
        why = (
            f"{what}, and the server keeps {megabytes(self.spare)} spare on its temporary "
            f"disk ({where}), which has {has}. Free some space there, or serve with TMPDIR "
            "set to a larger disk.\n"
        ).encode()
        await answer_text(send, 507, why, close=True)
