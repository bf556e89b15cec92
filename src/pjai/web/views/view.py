"""What a view is to the shell: a path, a title, an icon and a builder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pjai.web.app import WebApp

__all__ = ["View"]


@dataclass(frozen=True, slots=True)
class View:
    """One entry of the navigation: ``build(web)`` fills the content area."""

    path: str
    title: str
    icon: str
    build: Callable[[WebApp], None]
