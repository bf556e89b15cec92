"""Text from others as the interfaces show it, and as a person types it back."""

from __future__ import annotations

import json

import pytest

from pjai.app.display import shown_json, shown_text, typed_form


def test_overrides_show_as_marks_and_other_text_as_it_is() -> None:
    assert shown_text("Admin \u202eevil\u202c ok") == "Admin ⟦RLO⟧evil\u202c ok"
    assert shown_text("\u202dx") == "⟦LRO⟧x"
    assert shown_text("Zero\u200bwidth") == "Zero\u200bwidth"  # something shows
    assert shown_text("") == ""


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\u200b", "⟦ZWSP⟧"),
        ("\u200b\u200d", "⟦ZWSP⟧⟦ZWJ⟧"),
        ("\u2063", "⟦U+2063⟧"),
        ("\u0301", "⟦U+0301⟧"),
    ],
)
def test_text_that_would_draw_nothing_shows_its_characters(text: str, shown: str) -> None:
    assert shown_text(text) == shown


def test_json_keeps_its_meaning_with_the_overrides_escaped() -> None:
    payload = json.dumps({"name": "a\u202eb\u202dc"}, ensure_ascii=False)
    shown = shown_json(payload)
    assert "\u202e" not in shown
    assert "\u202d" not in shown
    assert json.loads(shown) == {"name": "a\u202eb\u202dc"}


@pytest.mark.parametrize(
    ("name", "typed"),
    [
        ("Line1\nLine2\nLine3", "Line1 Line2 Line3"),
        ("Admin \u202eevil\u202c ok", "Admin evil ok"),
        ("Zero\u200b\u200bwidth", "Zerowidth"),
        ("Cafe\u0301", "Café"),
        ("  two   spaces ", "two spaces"),
    ],
)
def test_a_name_reads_the_same_as_what_a_person_types_for_it(name: str, typed: str) -> None:
    assert typed_form(name) == typed_form(typed)


def test_only_invisible_characters_read_as_nothing() -> None:
    assert typed_form("\u200b") == ""
