"""The identity file: one client id per installation, and a clear error for a bad file."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest

from pjai import files
from pjai.errors import ConfigError
from pjai.hybrid import identity
from pjai.hybrid.identity import Identity
from tests.helpers import at_once


def test_an_identity_is_made_once_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "identity.json"
    made = Identity.load(path)
    assert Identity.load(path).client_id == made.client_id


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{}", "it needs a client_id (text)"),
        ('{"client_id": 7}', "it needs a client_id (text)"),
        ('["c1"]', "it needs a client_id (text)"),
        ("not json", "Expecting value"),
    ],
)
def test_a_bad_identity_file_is_named_with_what_it_lacks(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "identity.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(f"is not a PJai identity file: {problem}")):
        Identity.load(path)
    assert path.read_text() == text  # left as it was


def meet_before_making_identities(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    """Make ``count`` threads that find no identity file wait for each other before
    making one: all have found it missing before any of them makes it."""
    meet = threading.Barrier(count, timeout=60)
    made = identity.new_id

    def new_id() -> str:
        meet.wait()
        return made()

    monkeypatch.setattr(identity, "new_id", new_id)


def test_threads_finding_no_identity_at_once_share_the_one_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    meet_before_making_identities(monkeypatch, 4)
    path = tmp_path / "identity.json"
    found: list[Identity] = []
    assert at_once(4, lambda _: found.append(Identity.load(path))) == []
    assert {i.client_id for i in found} == {json.loads(path.read_text())["client_id"]}
    assert all(i.new for i in found)
    assert [p.name for p in tmp_path.iterdir()] == ["identity.json"]


def test_saving_leaves_only_the_identity_file(tmp_path: Path) -> None:
    identity = Identity.load(tmp_path / "identity.json")
    identity.adopt("c2")
    assert Identity.load(tmp_path / "identity.json").client_id == "c2"
    assert [p.name for p in tmp_path.iterdir()] == ["identity.json"]


def test_a_file_system_without_hard_links_still_gets_an_identity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(source: object, target: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(files.os, "link", no_links)
    path = tmp_path / "identity.json"
    made = Identity.load(path)
    assert made.new
    assert Identity.load(path).client_id == made.client_id
    assert [p.name for p in tmp_path.iterdir()] == ["identity.json"]
