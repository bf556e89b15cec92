"""The PJai web app (NiceGUI): a second thin shell over :mod:`pjai.app`, beside the CLI.

:class:`WebApp` holds one data directory's services; :func:`serve` runs the app;
views (:mod:`pjai.web.views`) build their panels from live queries
(:class:`~pjai.web.live.LivePanel`), so that every change, wherever it was made,
appears without a reload.
"""

from __future__ import annotations

from pjai.web.app import WebApp
from pjai.web.live import LivePanel
from pjai.web.server import serve

__all__ = ["LivePanel", "WebApp", "serve"]
