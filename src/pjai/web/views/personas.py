"""The personas view."""

from __future__ import annotations

from nicegui import ui

from pjai.web.app import WebApp
from pjai.web.views.view import View

__all__ = ["VIEW", "build"]


def build(web: WebApp) -> None:
    """Fill the content area with the personas view."""
    ui.label("Personas").classes("text-h5")


VIEW = View("/personas", "Personas", "face", build)
