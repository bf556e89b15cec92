"""Uploads past `pjai serve --max-upload-mb`, sent as a client that skips the browser's
check would send them: refused on the server (413) before more is read, leaving no
temporary file past the limit, while the app goes on serving and imports archives
within it. And the page says so when the browser itself holds one back."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import Page, expect

from pjai.app import DataDir, Personas, export_archive
from pjai.bench.webapp import WebProcess

LIMIT_MB = 1
LIMIT = LIMIT_MB * 1024 * 1024
TOO_LARGE = f"larger than the {LIMIT_MB} MB this app takes (pjai serve --max-upload-mb)"
BOUNDARY = "pjai-test-boundary"
WAIT_S = 30.0
"""How long a test waits for an answer the server owes it."""


def _archive(tmp_path: Path) -> Path:
    """An archive of a store with one persona."""
    data = DataDir(tmp_path / "source")
    with data.open() as manager:
        Personas(manager).create("Ada")
        export_archive(manager, tmp_path / "ada.zip")
    return tmp_path / "ada.zip"


def _serve(tmp_path: Path) -> WebProcess:
    """`pjai serve --max-upload-mb 1` with its temporary files under ``tmp_path/tmp``."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    args = ("--max-upload-mb", str(LIMIT_MB))
    return WebProcess(tmp_path / "data", *args, env={"TMPDIR": str(temp)})


def _upload_url(page: Page, url: str) -> str:
    """The address of the import form's upload route, opened in ``page``."""
    page.goto(url + "/devtools")
    page.get_by_role("tab", name="Export and import").click()
    uploader = page.get_by_test_id("import-upload")
    expect(uploader).to_be_visible()
    element = str(uploader.get_attribute("id")).removeprefix("c")
    client = page.evaluate("window.clientId")
    return f"{url}/_nicegui/client/{client}/upload/{element}"


def _form(size: int) -> tuple[bytes, bytes]:
    """The multipart form around a file of ``size`` bytes: what comes before it and
    after it."""
    head = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="big.zip"\r\n'
        "Content-Type: application/zip\r\n\r\n"
    ).encode()
    return head, f"\r\n--{BOUNDARY}--\r\n".encode()


def _largest_temp_file(web: WebProcess, temp: Path) -> int:
    """The size of the largest file under ``temp`` that the server's process holds open
    (deleted or not) or that is left there."""
    sizes = [path.stat().st_size for path in temp.rglob("*") if path.is_file()]
    fds = Path(f"/proc/{web.pid}/fd")
    for fd in fds.iterdir():
        try:
            if os.readlink(fd).startswith(str(temp)):
                sizes.append(fd.stat().st_size)
        except FileNotFoundError:  # closed as it was looked at
            continue
    return max(sizes, default=0)


def _imports(page: Page, archive: Path, target: Path) -> None:
    """Import ``archive`` into ``target`` with the open import form, as a person does."""
    page.get_by_test_id("import-target").fill(str(target))
    page.locator('[data-testid="import-upload"] input[type=file]').set_input_files(str(archive))
    outcome = page.get_by_test_id("import-outcome")
    expect(outcome).to_have_text(f"Imported 1 events and 1 rows into {target}.")


def test_an_upload_whose_length_passes_the_limit_is_refused_before_its_body_is_read(
    page: Page, tmp_path: Path
) -> None:
    archive = _archive(tmp_path)
    with _serve(tmp_path) as web:
        upload = _upload_url(page, web.url)
        address = urlsplit(upload)
        assert address.port is not None
        head, tail = _form(0)
        # Ten gigabytes announced, none sent: the answer comes all the same.
        request = (
            f"POST {address.path} HTTP/1.1\r\n"
            f"Host: {address.netloc}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"Content-Length: {10 * 1024**3}\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", address.port), timeout=WAIT_S) as sock:
            sock.sendall(request + head)
            answer = b"".join(iter(lambda: sock.recv(65536), b""))  # until it closes
        assert answer.startswith(b"HTTP/1.1 413 "), answer
        assert TOO_LARGE.encode() in answer

        head, tail = _form(LIMIT)
        body = head + b"\0" * LIMIT + tail  # just past the limit with its form
        refused = httpx.post(
            upload,
            content=body,
            headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
            timeout=WAIT_S,
        )
        assert refused.status_code == 413
        assert _largest_temp_file(web, tmp_path / "tmp") <= LIMIT

        _imports(page, archive, tmp_path / "restored")


def test_a_chunked_upload_is_refused_once_it_passes_the_limit(page: Page, tmp_path: Path) -> None:
    archive = _archive(tmp_path)
    chunk = b"\0" * 65536
    with _serve(tmp_path) as web:
        upload = _upload_url(page, web.url)
        head, tail = _form(0)

        def body() -> Iterator[bytes]:
            # No Content-Length: a stream of four times the limit, sent chunked.
            yield head
            for _ in range(4 * LIMIT // len(chunk)):
                yield chunk
            yield tail

        refused = httpx.post(
            upload,
            content=body(),
            headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
            timeout=WAIT_S,
        )
        assert refused.status_code == 413
        assert "content-length" not in refused.request.headers
        assert refused.request.headers["transfer-encoding"] == "chunked"
        assert TOO_LARGE in refused.text
        assert _largest_temp_file(web, tmp_path / "tmp") <= LIMIT

        _imports(page, archive, tmp_path / "restored")


def test_the_page_says_when_an_archive_is_too_large(page: Page, tmp_path: Path) -> None:
    big = tmp_path / "big.zip"
    with _serve(tmp_path) as web:
        _upload_url(page, web.url)
        page.get_by_test_id("import-target").fill(str(tmp_path / "restored"))
        chooser = page.locator('[data-testid="import-upload"] input[type=file]')
        outcome = page.get_by_test_id("import-outcome")

        # Not a zip: held back too, for that reason.
        text = tmp_path / "notes.txt"
        text.write_text("notes")
        chooser.set_input_files(str(text))
        expect(outcome).to_have_text("Not imported: choose a .zip archive.")

        # Past the limit: the browser holds it back, and the page says why.
        big.write_bytes(b"\0" * (LIMIT + 1))
        chooser.set_input_files(str(big))
        expect(outcome).to_contain_text(TOO_LARGE)

        # Within the browser's limit, past the server's with the form around it.
        page.get_by_test_id("import-target").fill("")
        chooser.set_input_files(str(_archive(tmp_path)))
        expect(outcome).to_have_text("Name the new data directory first.")
        big.write_bytes(b"\0" * LIMIT)
        chooser.set_input_files(str(big))
        expect(outcome).to_contain_text(TOO_LARGE)
