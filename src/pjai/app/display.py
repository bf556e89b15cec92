"""Text from personas, peers and imports, as the interfaces show it.

Stored text is kept as it was given. Shown, a direction override (U+202D left-to-right
override, U+202E right-to-left override) would turn the rest of a line around, so that
what a peer wrote reads as something else ("evil" shown as "live"): the interfaces show
each override as a visible mark instead. Embeddings, isolates and marks, which mixed
left-to-right and right-to-left text needs, stay as they are. Text with no visible
character at all (a name that is only a zero-width space) shows its characters as
marks, so that it is not a blank.

A person asked to type a name back (to confirm an erasure) types what they see:
:func:`typed_form` is what two texts are compared by, so that a name with line breaks,
invisible characters or overrides can be typed.
"""

from __future__ import annotations

import unicodedata

__all__ = ["OVERRIDES", "shown_json", "shown_text", "typed_form"]

OVERRIDES = {0x202D: "⟦LRO⟧", 0x202E: "⟦RLO⟧"}
"""The direction overrides, and what is shown in their place."""

_NAMED = {
    0x200B: "ZWSP",
    0x200C: "ZWNJ",
    0x200D: "ZWJ",
    0x200E: "LRM",
    0x200F: "RLM",
    0x2060: "WJ",
    0xFEFF: "BOM",
}
"""Short names of the invisible characters met most, for their marks."""

_UNSEEN = {"Cc", "Cf", "Cn", "Co", "Cs", "Mn", "Me", "Zl", "Zp", "Zs"}
"""Unicode categories that draw nothing by themselves."""


def shown_text(text: str) -> str:
    """``text`` with its direction overrides as visible marks; text that would draw
    nothing (only invisible characters) as the marks of its characters."""
    if "\u202d" in text or "\u202e" in text:
        text = text.translate(OVERRIDES)
    if text and not any(unicodedata.category(c) not in _UNSEEN for c in text):
        return "".join(_mark(c) for c in text)
    return text


def _mark(char: str) -> str:
    code = ord(char)
    return f"⟦{_NAMED.get(code, f'U+{code:04X}')}⟧"


def shown_json(text: str) -> str:
    """JSON text with its direction overrides written as escapes (``\\u202e``): still
    the same JSON, and read as written."""
    return text.replace("\u202d", "\\u202d").replace("\u202e", "\\u202e")


def typed_form(text: str) -> str:
    """What ``text`` reads as when typed: composed (NFC), without invisible format
    characters (zero-width spaces, direction marks and overrides), its runs of white
    space (line breaks too) as one space, no space at either end."""
    composed = unicodedata.normalize("NFC", text)
    seen = "".join(c for c in composed if unicodedata.category(c) != "Cf")
    return " ".join(seen.split())
