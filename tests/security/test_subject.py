"""A data subject's copy: every record of one persona, in plaintext, and nobody else's."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest

from pjai.app import DataDir, Personas, init_security
from pjai.app.subject import export_subject
from pjai.errors import ConfigError, NotFoundError
from tests.security.test_erasure import MARKER, fill
from tests.security.test_keys import FAST, PASSPHRASE


def test_a_subject_gets_every_record_in_plaintext_even_from_an_encrypted_store(
    tmp_path: Path,
) -> None:
    data = DataDir(tmp_path / "data", environ={"PJAI_PASSPHRASE": PASSPHRASE})
    init_security(data, passphrase=PASSPHRASE, params=FAST)
    with data.open() as manager:
        ada = fill(manager, "Ada", MARKER)
        fill(manager, "Grace", "other-words")
        Personas(manager).update(ada, sets=["privacy.export_allowed=false"])  # not for this
        done = export_subject(manager, ada, tmp_path / "ada.zip")
        assert done.rows == {
            "personas": 1,
            "memory_links": 0,
            "conversation_messages": 1,
            "memories": 1,
            "conversations": 1,
            "bookmarks": 1,
            "consents": 1,
        }
        assert (done.events, done.unreadable_events) == (8, 0)
        with pytest.raises(ConfigError, match="exists; pass --overwrite"):
            export_subject(manager, ada, tmp_path / "ada.zip")
        with pytest.raises(NotFoundError):
            export_subject(manager, "nobody", tmp_path / "nobody.zip")
        with pytest.raises(ConfigError, match="is a folder"):
            export_subject(manager, ada, tmp_path, overwrite=True)
        with pytest.raises(ConfigError, match="is not a folder"):
            export_subject(manager, ada, tmp_path / "no" / "such" / "ada.zip")
        assert not (tmp_path / "no").exists()
    with zipfile.ZipFile(tmp_path / "ada.zip") as zf:
        everything = b"".join(zf.read(name) for name in zf.namelist())
        memories = json.loads(zf.read("memories.json"))
        trail = json.loads(zf.read("audit-trail.json"))
        rows = list(csv.DictReader(io.StringIO(zf.read("conversation_messages.csv").decode())))
    assert memories[0]["content"] == f"{MARKER} memory"
    assert rows[0]["content"] == f"{MARKER} said"
    assert trail[0]["payload"]["description"] == f"{MARKER} description"
    assert b"other-words" not in everything  # nobody else's data
    assert not list(tmp_path.glob(".ada.zip.*"))  # no partial file left
