"""The app's views, in the order the navigation lists them.

Each view module defines ``VIEW``: its path, title, icon and the function that builds
it inside the page's content area.
"""

from __future__ import annotations

from pjai.web.views import conversations, dashboard, devtools, memories, personas
from pjai.web.views.view import View

__all__ = ["COMING", "VIEWS", "View"]

VIEWS: list[View] = [
    dashboard.VIEW,
    personas.VIEW,
    memories.VIEW,
    conversations.VIEW,
    devtools.VIEW,
]

COMING: list[tuple[str, str]] = [
    ("Audit trail", "history"),
    ("Collaboration", "groups"),
]
"""Views not built yet, listed greyed out so that the navigation keeps their place."""
