"""Plugins: code from elsewhere, run in a sandbox with only the capabilities granted.

A plugin is a directory with a manifest (``plugin.json``: name, version, entry,
capabilities, limits) and Python code. It runs in a separate process with OS limits on
CPU time, memory, file size and wall time, in namespaces with no network and an empty
file system, and reaches PJai only through an API over a pipe that answers as far as
its capabilities allow, for one persona (docs/security.md).
"""

from __future__ import annotations

from pjai.plugins.manifest import CAPABILITIES, MANIFEST_FILE, Capability, Limits, Manifest
from pjai.plugins.registry import PLUGINS_DIR, InstalledPlugin, Registry
from pjai.plugins.sandbox import Handler, PluginError, PluginRun, run_sandboxed

__all__ = [
    "CAPABILITIES",
    "MANIFEST_FILE",
    "PLUGINS_DIR",
    "Capability",
    "Handler",
    "InstalledPlugin",
    "Limits",
    "Manifest",
    "PluginError",
    "PluginRun",
    "Registry",
    "run_sandboxed",
]
