"""The identity file: one client id per installation, and a clear error for a bad file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pjai.errors import ConfigError
from pjai.hybrid.identity import Identity


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
