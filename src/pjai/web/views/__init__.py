"""The app's views, in the order the navigation lists them.

Each view module defines ``VIEW``: its path, title, icon and the function that builds
it inside the page's content area.
"""

from __future__ import annotations

from pjai.web.views import (
    audit,
    collaboration,
    conversations,
    dashboard,
    devtools,
    memories,
    personas,
)
from pjai.web.views.view import View

__all__ = ["VIEWS", "View"]

VIEWS: list[View] = [
    dashboard.VIEW,
    personas.VIEW,
    memories.VIEW,
    conversations.VIEW,
    audit.VIEW,
    collaboration.VIEW,
    devtools.VIEW,
]
