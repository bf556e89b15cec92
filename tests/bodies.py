"""Request bodies a peer streams, to see how much of them a server reads."""

from __future__ import annotations

from collections.abc import AsyncIterator

MIB = 1 << 20


class OfferedBody:
    """``mib`` MiB streamed a MiB at a time; :attr:`read` counts the bytes taken."""

    def __init__(self, mib: int = 64) -> None:
        self.mib = mib
        self.read = 0

    async def stream(self) -> AsyncIterator[bytes]:
        """The body, for ``httpx`` ``content=``."""
        for _ in range(self.mib):
            self.read += MIB
            yield b"x" * MIB
