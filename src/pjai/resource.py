"""What PJai opens and must close: stores, managers, key rings, servers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Self

__all__ = ["Resource"]


class Resource(ABC):
    """Something that holds files, connections or threads until :meth:`close`.

    A ``with`` block closes it on the way out, whether the block raised or not.
    """

    __slots__ = ()

    @abstractmethod
    def close(self) -> None:
        """Release what the resource holds; closing it again does nothing."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
