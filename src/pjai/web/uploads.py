"""How large an upload the web app takes, enforced on the server.

A ``ui.upload``'s ``max_file_size`` is checked only by the browser: a modified page, or
any HTTP client holding the session cookie, can post more, and the upload field
(:mod:`pjai.web.upload_field`) would write all of it to the temporary disk before a view
sees it. :class:`UploadLimit` stands in front of NiceGUI's upload route and answers 413
once a request is larger than the limit: at once when its ``Content-Length`` says so,
and as its body streams otherwise (a chunked request names no length), never passing on
more than the limit. Each upload taken holds up to the limit on the temporary disk until
its view is done with it, so it also answers 503, before reading any of the body, to an
upload beyond :data:`UPLOADS_AT_ONCE` under way: a few clients each sending the largest
upload at once would otherwise fill the disk.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any

from pjai.errors import PjaiError
from pjai.web.guard import ASGIApp, Receive, Scope, Send, answer_text

__all__ = ["UPLOADS_AT_ONCE", "UPLOAD_ROUTE", "UploadLimit", "upload_bytes"]

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


def upload_bytes(megabytes: int) -> int:
    """``megabytes`` (MB of 1,048,576 bytes, as ``pjai serve --max-upload-mb`` takes
    them) in bytes."""
    return megabytes * 1024 * 1024


class _TooLarge(PjaiError):
    """The body streaming in went past the limit (raised from ``receive``, caught by
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
    ``at_once`` under way gets 503; its connection is closed, the rest of the body
    never read."""

    def __init__(self, app: ASGIApp, limit: int, at_once: int = UPLOADS_AT_ONCE) -> None:
        self.app = app
        self.limit = limit
        self.at_once = at_once
        self.under_way = 0
        """Uploads being received or handled now (their requests not yet answered)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or UPLOAD_ROUTE.fullmatch(scope.get("path", "")) is None:
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > self.limit:
            await self._refuse(send)
            return
        if self.under_way >= self.at_once:
            await self._refuse_busy(send)
            return
        self.under_way += 1
        try:
            await self._pass(scope, receive, send)
        finally:
            self.under_way -= 1

    async def _pass(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, refusing it once its body goes past the limit."""
        received = 0
        answered = False

        async def counted() -> MutableMapping[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
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

    async def _refuse(self, send: Send) -> None:
        megabytes = self.limit / (1024 * 1024)
        why = (
            f"This upload is larger than the {megabytes:g} MB this app takes "
            "(pjai serve --max-upload-mb).\n"
        ).encode()
        # The rest of the body is never read: the connection cannot carry another
        # request after it.
        await answer_text(send, 413, why, close=True)

    async def _refuse_busy(self, send: Send) -> None:
        why = (
            f"The server is receiving {self.under_way} uploads already, as many as it "
            "takes at once; try again when one has ended.\n"
        ).encode()
        await answer_text(send, 503, why, close=True)
