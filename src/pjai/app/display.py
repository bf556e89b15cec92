"""Text from personas, peers and imports, as the interfaces show it.

Stored text is kept as it was given. Shown, a direction override (U+202D left-to-right
override, U+202E right-to-left override) would turn the rest of a line around, so that
what a peer wrote reads as something else ("evil" shown as "live"): the interfaces show
each override as a visible mark instead. Embeddings, isolates and marks, which mixed
left-to-right and right-to-left text needs, stay as they are.
"""

from __future__ import annotations

__all__ = ["OVERRIDES", "shown_text"]

OVERRIDES = {0x202D: "⟦LRO⟧", 0x202E: "⟦RLO⟧"}
"""The direction overrides, and what is shown in their place."""


def shown_text(text: str) -> str:
    """``text`` with its direction overrides as visible marks."""
    return text.translate(OVERRIDES) if "\u202d" in text or "\u202e" in text else text
