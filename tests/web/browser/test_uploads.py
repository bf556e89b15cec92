"""Uploads past `pjai serve --max-upload-mb`, sent as a client that skips the browser's
check would send them: refused on the server (413) before more is read, leaving no
temporary file past the limit, while the app goes on serving and imports archives
within it. And the page says so when the browser itself holds one back. An upload the
server takes is written once to the temporary disk, and nothing of it is left there
after, whether it was taken, refused or abandoned mid-way."""

from __future__ import annotations

import math
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import Page, expect

from pjai.app import DataDir, Personas, export_archive
from pjai.bench.webapp import WebProcess
from pjai.hybrid.archive.footprint import WORK_FACTOR
from pjai.hybrid.room import megabytes
from tests.helpers import compressible_archive
from tests.tmpfs import tmpfs
from tests.web.browser.conftest import screenshot
from tests.web.uploading import (
    BOUNDARY,
    WAIT_S,
    arriving,
    begun,
    fill,
    form,
    post,
    read_answer,
    serve,
    until,
)

LIMIT_MB = 1
LIMIT = LIMIT_MB * 1024 * 1024
TOO_LARGE = f"larger than the {LIMIT_MB} MB this app takes (pjai serve --max-upload-mb)"


def _archive(tmp_path: Path) -> Path:
    """An archive of a store with one persona."""
    data = DataDir(tmp_path / "source")
    with data.open() as manager:
        Personas(manager).create("Ada")
        export_archive(manager, tmp_path / "ada.zip")
    return tmp_path / "ada.zip"


def _serve(tmp_path: Path, limit_mb: int = LIMIT_MB) -> WebProcess:
    """`pjai serve --max-upload-mb 1` (or ``limit_mb``) with its temporary files under
    ``tmp_path/tmp``."""
    return serve(tmp_path, limit_mb)


def _upload_url(page: Page, url: str) -> str:
    """The address of the import form's upload route, opened in ``page``."""
    page.goto(url + "/devtools")
    page.get_by_role("tab", name="Export and import").click()
    uploader = page.get_by_test_id("import-upload")
    expect(uploader).to_be_visible()
    element = str(uploader.get_attribute("id")).removeprefix("c")
    client = page.evaluate("window.clientId")
    return f"{url}/_nicegui/client/{client}/upload/{element}"


def _temp_in_use(web: WebProcess, temp: Path) -> int:
    """The bytes of the files under ``temp``, left there or held open by the server's
    process (deleted or not), each file counted once."""
    sizes = {}
    # os.walk passes over a folder removed as it walks, where Path.rglob would raise.
    paths = [Path(top, name) for top, _, names in os.walk(temp) for name in names]
    for fd in Path(f"/proc/{web.pid}/fd").iterdir():
        try:
            if os.readlink(fd).startswith(str(temp)):
                paths.append(fd)
        except FileNotFoundError:  # closed as it was looked at
            continue
    for path in paths:
        try:
            stat = path.stat()
        except FileNotFoundError:  # removed or closed as it was looked at
            continue
        sizes[stat.st_ino] = stat.st_size
    return sum(sizes.values())


def _written(web: WebProcess) -> int:
    """The bytes the server's process has written so far, to files and sockets alike
    (``wchar`` of /proc/PID/io, every thread counted)."""
    fields = dict(line.split(": ") for line in Path(f"/proc/{web.pid}/io").read_text().splitlines())
    return int(fields["wchar"])


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
        head, tail = form(0)
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

        head, tail = form(LIMIT)
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
        head, tail = form(0)

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


def test_an_upload_is_written_once_to_the_temporary_disk_and_removed_after(
    page: Page, tmp_path: Path
) -> None:
    size = 12 * 1024 * 1024
    temp = tmp_path / "tmp"
    with _serve(tmp_path, limit_mb=16) as web:
        upload = _upload_url(page, web.url)
        page.get_by_test_id("import-target").fill(str(tmp_path / "restored"))
        head, tail = form(size)
        before = _written(web)
        taken = post(upload, head + b"\1" * size + tail)
        assert taken.status_code == 200
        # The view has had the file (not an archive) by the time the answer comes,
        # and the file is gone.
        assert _temp_in_use(web, temp) == 0
        outcome = page.get_by_test_id("import-outcome")
        expect(outcome).to_have_text(
            "Not imported: big.zip is not a PJai archive: File is not a zip file"
        )
        # Once: Starlette's spool, NiceGUI's copy and the view's made it three times.
        assert size <= _written(web) - before < 1.5 * size

        # Two files in one form: refused, nothing kept.
        first, _ = form(10, "a.zip")
        second, tail = form(10, "b.zip")
        refused = post(upload, first + b"x" * 10 + b"\r\n" + second + b"x" * 10 + tail)
        assert refused.status_code == 400
        assert "one file" in refused.text
        assert _temp_in_use(web, temp) == 0

        _imports(page, _archive(tmp_path), tmp_path / "restored")
        assert _temp_in_use(web, temp) == 0


def test_an_upload_abandoned_mid_way_leaves_nothing_on_the_temporary_disk(
    page: Page, tmp_path: Path
) -> None:
    temp = tmp_path / "tmp"
    with _serve(tmp_path, limit_mb=16) as web:
        upload = _upload_url(page, web.url)
        with begun(upload):
            until(lambda: arriving(temp) == 1, "the upload to arrive")
        until(lambda: _temp_in_use(web, temp) == 0, "the abandoned upload to be removed")
        _imports(page, _archive(tmp_path), tmp_path / "restored")


def test_an_upload_past_the_two_under_way_is_refused_and_the_page_says_so(
    page: Page, tmp_path: Path
) -> None:
    temp = tmp_path / "tmp"
    archive = _archive(tmp_path)
    busy = "The server is receiving 2 uploads already, as many as it takes at once"
    with _serve(tmp_path, limit_mb=16) as web:
        upload = _upload_url(page, web.url)
        with begun(upload) as first, begun(upload):
            until(lambda: arriving(temp) == 2, "two uploads to arrive")
            head, tail = form(10)
            refused = post(upload, head + b"x" * 10 + tail)
            assert refused.status_code == 503
            assert busy in refused.text

            page.get_by_test_id("import-target").fill(str(tmp_path / "restored"))
            chooser = page.locator('[data-testid="import-upload"] input[type=file]')
            chooser.set_input_files(str(archive))
            outcome = page.get_by_test_id("import-outcome")
            expect(outcome).to_contain_text(f"Not imported. {busy}; try again when one has ended.")
            screenshot(page, "devtools-import-busy-1280")
            page.set_viewport_size({"width": 375, "height": 800})
            # The menu folds away at a phone's width: shot once it has slid out.
            expect(page.locator(".q-drawer")).not_to_be_in_viewport()
            screenshot(page, "devtools-import-busy-375")

            first.close()  # one ends: its place is free again
            until(lambda: arriving(temp) == 1, "the first upload to be removed")
            _imports(page, archive, tmp_path / "restored")


def test_an_upload_the_temporary_disk_has_no_room_for_is_refused_saying_how_much_there_is(
    page: Page, tmp_path: Path
) -> None:
    archive = _archive(tmp_path)
    # 72 MiB, 1 MiB of it taken: 7.0 MB free for uploads of up to 16 MB, past the 64 MB
    # the server keeps spare.
    with tmpfs(tmp_path / "tmp", "72m") as temp, _serve(tmp_path, limit_mb=16) as web:
        upload = _upload_url(page, web.url)
        no_room = (
            "of temporary space, and the server keeps 64.0 MB spare on its temporary disk "
            f"({temp}), which has 71.0 MB free. Free some space there, or serve with TMPDIR "
            "set to a larger disk."
        )
        # Ten megabytes announced, the form's head sent: refused at once, unread.
        with begun(upload, size=10 * 1024 * 1024, sent=0) as sock:
            answer = read_answer(sock)
        assert answer.startswith(b"HTTP/1.1 507 "), answer
        assert f"This upload needs 10.0 MB {no_room}".encode() in answer

        # The page says so, with how much room there is.
        big = tmp_path / "big.zip"
        big.write_bytes(b"\0" * (10 * 1024 * 1024))
        page.get_by_test_id("import-target").fill(str(tmp_path / "restored"))
        page.locator('[data-testid="import-upload"] input[type=file]').set_input_files(str(big))
        outcome = page.get_by_test_id("import-outcome")
        expect(outcome).to_have_text(f"Not imported. This upload needs 10.0 MB {no_room}")
        screenshot(page, "devtools-import-no-room-1280")
        page.set_viewport_size({"width": 375, "height": 800})
        expect(page.locator(".q-drawer")).not_to_be_in_viewport()
        screenshot(page, "devtools-import-no-room-375")
        page.set_viewport_size({"width": 1280, "height": 860})

        # Room when it began, none by its end (another process took it): refused too,
        # and what had arrived removed.
        with begun(upload, size=256 * 1024, sent=0) as sock:
            until(lambda: arriving(temp) == 1, "the upload to begin")
            everything = fill(temp)
            _, tail = form(0)
            sock.sendall(b"\1" * 256 * 1024 + tail)
            answer = read_answer(sock)
        assert answer.startswith(b"HTTP/1.1 507 "), answer
        assert (
            f"The server's temporary disk ({temp}) filled up during this upload (0.0 MB free now)."
        ).encode() in answer
        assert list(temp.glob("pjai-upload-*")) == []

        everything.unlink()
        _imports(page, archive, tmp_path / "restored")


def test_an_archive_whose_import_the_disk_has_no_room_for_is_refused_leaving_nothing(
    page: Page, tmp_path: Path
) -> None:
    # 0.1 MB zipped, 68 MB once unzipped: an import writes some 5 times that.
    large, unzipped = compressible_archive(tmp_path / "large", 360, 96 * 1024)
    (tmp_path / "large.zip").write_bytes(large.read_bytes())
    needed = 2 * math.ceil(WORK_FACTOR * unzipped)  # the store and the SQL primary
    # 128 MiB for the upload and the new data directory alike.
    with tmpfs(tmp_path / "tmp", "128m") as disk, _serve(tmp_path, limit_mb=16) as web:
        _upload_url(page, web.url)
        target = disk / "restored"
        page.get_by_test_id("import-target").fill(str(target))
        chooser = page.locator('[data-testid="import-upload"] input[type=file]')
        chooser.set_input_files(str(tmp_path / "large.zip"))
        said = (
            f"Not imported. The import of large.zip ({megabytes(unzipped)} once unzipped) "
            f"needs {megabytes(needed)} on the disk of {target}, and keeps 64.0 MB spare "
            "there; it has <free> free. Free some space there, or import into a data "
            "directory on a larger disk."
        )
        # Free: 127 MB less the upload, 0.1 MB.
        pattern = re.escape(said).replace("<free>", r"12[67]\.\d MB")
        expect(page.get_by_test_id("import-outcome")).to_have_text(re.compile(pattern))
        assert not target.exists()  # nothing half-written
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]  # nor the upload

        _imports(page, _archive(tmp_path), target)  # room for a small one there
