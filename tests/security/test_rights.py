"""Consent records, classification of restricted text, and the privacy report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pjai.app import DataDir, Memories, Personas, init_security
from pjai.app.rights import consents_of, privacy_report, record_consent
from pjai.cli import app as cli
from pjai.errors import EventError
from pjai.memory.classify import classify
from tests.security.test_keys import FAST, PASSPHRASE


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("write to ada@example.org", {"email"}),
        ("call +44 20 7946 0958 after six", {"phone"}),
        ("the card is 4111 1111 1111 1111", {"card"}),
        ("the card is 4111 1111 1111 1112", set()),  # fails the Luhn check
        ("IBAN GB82 WEST 1234 5698 7654 32", {"iban", "phone"}),
        ("SSN 078-05-1120", {"ssn"}),
        ("we met on 2026-12-05 at 10:00, 300 people, pi is 3.14159265358", set()),
        # Addresses within the bounds of the rules, found inside long runs as well.
        (f"{'x' * 500}{'l' * 64}@mail.example.co.uk is mine", {"email"}),
        (f"first.last+tag@{'sub.' * 8}example.museum", {"email"}),
        ("a link, not an address: https://example.com/a1b2c3d4/" + "x" * 5_000, set()),
        # Scripts written without spaces: the number touches the words around it.
        ("卡号4111111111111111。", {"card"}),
        ("电话13812345678", {"phone"}),
        ("رقم4111111111111111", {"card"}),
        ("账号GB82WEST12345698765432号", {"iban"}),
        ("order A12345678901 and ref_4111111111111111", set()),  # parts of longer codes
    ],
)
def test_restricted_text_is_recognised(text: str, kinds: set[str]) -> None:
    assert classify(text) == kinds


def test_consents_are_events_and_the_newest_is_in_force(tmp_path: Path) -> None:
    with DataDir(tmp_path / "data").open() as manager:
        ada = Personas(manager).create("Ada")
        record_consent(manager, ada.id, "memory", granted=True, version="2026-01")
        record_consent(manager, ada.id, "research", granted=True, version="2026-01")
        now = record_consent(manager, ada.id, "research", granted=False, version="2026-02")
        assert (now.purpose, now.granted, now.version) == ("research", False, "2026-02")
        assert [(c.purpose, c.granted) for c in consents_of(manager, ada.id)] == [
            ("memory", True),
            ("research", False),
        ]
        assert manager.store is not None
        recorded = [e.record.name for e in manager.store.events()].count("v1.ConsentRecorded")
        assert recorded == 3  # every record stays in the audit trail
        with pytest.raises(EventError, match="purpose"):
            record_consent(manager, ada.id, "Not A Key!", granted=True, version="1")
        assert manager.verify().equal


def test_memories_with_restricted_text_are_tagged_when_written(tmp_path: Path) -> None:
    with DataDir(tmp_path / "data").open() as manager:
        ada = Personas(manager).create("Ada")
        memories = Memories(manager)
        plain = memories.add(ada.id, "likes tea").memory
        mailed = memories.add(ada.id, "her mail is ada@example.org", tags=["contact"]).memory
        assert plain.tags == []
        assert mailed.tags == ["contact", "restricted"]
        memories.update(plain.id, content="her phone is +44 20 7946 0958")
        assert memories.get(plain.id).tags == ["restricted"]


def test_the_report_tells_what_is_held_per_persona(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data", environ={"PJAI_PASSPHRASE": PASSPHRASE})
    with data.open() as manager:
        ada = Personas(manager).create("Ada", description="before encryption")
    init_security(data, passphrase=PASSPHRASE, params=FAST)
    with data.open() as manager:
        Memories(manager).add(ada.id, "mail ada@example.org")
        Memories(manager).add(ada.id, "likes tea")
        record_consent(manager, ada.id, "memory", granted=True, version="1")
        report = privacy_report(manager)
    assert report.encrypted
    (entry,) = report.personas
    assert (entry.name, entry.memories, entry.restricted_memories) == ("Ada", 2, 1)
    assert (entry.sealed_events, entry.plaintext_events) == (2, 1)
    assert entry.data_keys == 1
    assert entry.retention == "no limit"
    assert entry.switches["export_allowed"] is True
    assert [c.purpose for c in entry.consents] == ["memory"]
    assert report.erasures == []


def test_the_cli_records_consents_and_reports(tmp_path: Path) -> None:
    runner = CliRunner()
    where = ["--data-dir", str(tmp_path / "data")]
    with DataDir(tmp_path / "data").open() as manager:
        Personas(manager).create("Ada")
    given = runner.invoke(cli, ["privacy", "consent", "Ada", "memory", "--version", "1", *where])
    assert given.exit_code == 0, given.output
    assert "Consent for memory given (notice 1)" in given.output
    withdrawn = runner.invoke(
        cli, ["privacy", "consent", "Ada", "memory", "--version", "2", "--withdraw", *where]
    )
    assert "withdrawn" in withdrawn.output
    shown = runner.invoke(cli, ["privacy", "report", "--json", *where])
    (entry,) = json.loads(shown.output)["personas"]
    assert [(c["purpose"], c["granted"], c["version"]) for c in entry["consents"]] == [
        ("memory", False, "2")
    ]
    text = runner.invoke(cli, ["privacy", "report", "Ada", *where]).output
    assert "consents: memory withdrawn (2)" in text
    # The persona may be left out: the active one is meant, as everywhere.
    runner.invoke(cli, ["persona", "activate", "Ada", *where])
    again = runner.invoke(cli, ["privacy", "consent", "research", "--version", "3", *where])
    assert "Consent for research given (notice 3)" in again.output, again.output
    exported = runner.invoke(cli, ["privacy", "export", str(tmp_path / "ada.zip"), *where])
    assert exported.exit_code == 0, exported.output
    assert (tmp_path / "ada.zip").is_file()
