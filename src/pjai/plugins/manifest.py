"""A plugin's manifest (``plugin.json``): its name, version, capabilities and limits."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

from pjai.errors import ConfigError

__all__ = [
    "CAPABILITIES",
    "MANIFEST_FILE",
    "MAX_FILE_BYTES",
    "Capability",
    "Limits",
    "Manifest",
    "is_plugin_name",
    "read_manifest",
    "read_plugin",
    "read_plugin_file",
    "read_plugin_source",
]

MANIFEST_FILE = "plugin.json"
MAX_FILE_BYTES = 10 * 2**20
"""The largest entry file a plugin may have."""
MAX_MANIFEST_BYTES = 64 * 2**10
"""The largest manifest a plugin may have."""
_NAME = r"^[a-z][a-z0-9-]{0,39}\Z"  # \Z, not $: a pattern's $ also matches before a newline

Capability = Literal["memories:read", "memories:read-restricted", "memories:add"]
CAPABILITIES: tuple[Capability, ...] = ("memories:read", "memories:read-restricted", "memories:add")
"""What a plugin can be granted: read the persona's memories (those tagged
``restricted``, holding personal data such as card numbers, only with
``memories:read-restricted`` too), add memories to it."""


class Limits(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a plugin's run may use; exceeding one stops it."""

    cpu_s: Annotated[int, Meta(ge=1, le=600)] = 5
    """CPU seconds, of all the run's processes together."""
    memory_mb: Annotated[int, Meta(ge=64, le=8192)] = 256
    """Address space, of each process (so up to ``processes`` times this in all)."""
    file_mb: Annotated[int, Meta(ge=0, le=1024)] = 1
    wall_s: Annotated[int, Meta(ge=1, le=3600)] = 10
    writes_mb: Annotated[int, Meta(ge=0, le=1024)] = 10
    """The most text (content, name, summary, tags) a run may add as memories."""
    memories: Annotated[int, Meta(ge=0, le=100_000)] = 1_000
    """The most memories a run may add."""
    processes: Annotated[int, Meta(ge=3, le=1024)] = 32
    """The most processes and threads at once in the plugin's namespace, PJai's host and
    init included."""


class Manifest(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A plugin: ``entry`` is ``file.py:function`` inside its directory; the function
    is called with the API and the run's arguments."""

    name: Annotated[str, Meta(pattern=_NAME)]
    version: Annotated[str, Meta(pattern=r"^[0-9A-Za-z.+-]{1,32}\Z")]
    entry: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_]+\.py:[A-Za-z_][A-Za-z0-9_]*\Z")]
    description: Annotated[str, Meta(max_length=500)] = ""
    capabilities: list[Capability] = []
    limits: Limits = Limits()


def is_plugin_name(name: str) -> bool:
    """Whether ``name`` is one a plugin may have (so also a safe directory name)."""
    return re.match(_NAME, name) is not None


def read_manifest(directory: Path) -> Manifest:
    """The manifest of the plugin in ``directory``; :class:`ConfigError` naming what is
    wrong with it."""
    return read_plugin(directory)[0]


def read_plugin(directory: Path) -> tuple[Manifest, str]:
    """The manifest of the plugin in ``directory`` and the SHA-256 (hex) of what a run
    takes from there, the manifest and the entry file, as they were read: what enabling
    it grants. :class:`ConfigError` naming what is wrong with it."""
    manifest, digest, _ = read_plugin_source(directory)
    return manifest, digest


def read_plugin_source(directory: Path) -> tuple[Manifest, str, bytes]:
    """:func:`read_plugin`, and the entry file's bytes that were hashed: a run hands
    the sandbox these, so that what runs is what the digest says."""
    path = directory / MANIFEST_FILE
    try:
        data = read_plugin_file(path, MAX_MANIFEST_BYTES)
        manifest = msgspec.json.decode(data, type=Manifest)
    except FileNotFoundError as exc:
        raise ConfigError(f"{directory} is not a plugin: it has no {MANIFEST_FILE}") from exc
    except msgspec.ValidationError as exc:
        said = str(exc)
        if "$.capabilities[" in said:
            said += f" (a capability is one of {', '.join(CAPABILITIES)})"
        raise ConfigError(f"{path}: {said}") from exc
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{path} is not JSON: {exc}") from exc
    module = manifest.entry.partition(":")[0]
    try:
        source = read_plugin_file(directory / module, MAX_FILE_BYTES)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: the entry's file {module} is not in {directory}") from exc
    digest = hashlib.sha256()
    for part in (data, module.encode(), source):
        digest.update(len(part).to_bytes(8, "big") + part)
    return manifest, digest.hexdigest(), source


def read_plugin_file(path: Path, limit: int) -> bytes:
    """The bytes of the plugin's file ``path``, at most ``limit``, read through one open
    that follows no link and waits for nothing: :class:`ConfigError` if it is a link,
    not a regular file (a device, a pipe) or longer; :class:`FileNotFoundError` if it is
    not there."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError(f"{path} is not a file of the plugin (a link)") from exc
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "rb", buffering=0) as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigError(f"{path} is not a file of the plugin (not a regular file)")
        chunks, size = [], 0
        while size <= limit and (chunk := file.read(min(limit + 1 - size, 1 << 20))):
            chunks.append(chunk)
            size += len(chunk)
    if size > limit:
        raise ConfigError(f"{path} is over {limit:,} bytes")
    return b"".join(chunks)
