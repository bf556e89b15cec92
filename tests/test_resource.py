"""Resources close at the end of a ``with`` block, also when the block raises."""

from __future__ import annotations

from pathlib import Path

import pytest

from pjai.errors import ConfigError
from pjai.hybrid import HybridDatabaseManager
from pjai.resource import Resource
from pjai.store import Store


class _File(Resource):
    def __init__(self) -> None:
        self.closes = 0

    def close(self) -> None:
        self.closes += 1


def test_a_with_block_gives_the_resource_and_closes_it() -> None:
    with _File() as opened:
        assert isinstance(opened, _File)
        assert opened.closes == 0
    assert opened.closes == 1


def test_a_with_block_that_raises_closes_it_and_lets_the_error_through() -> None:
    resource = _File()
    with pytest.raises(KeyError), resource:
        raise KeyError("boom")
    assert resource.closes == 1


def test_a_resource_must_say_how_it_closes() -> None:
    class Unclosable(Resource):
        pass

    with pytest.raises(TypeError, match="close"):
        Unclosable()  # type: ignore[abstract]


def test_the_store_and_the_manager_close_at_the_end_of_a_with_block(tmp_path: Path) -> None:
    with Store.open(tmp_path / "store.db") as store:
        pass
    assert store.closed
    with HybridDatabaseManager.open(tmp_path / "data") as manager:
        pass
    with pytest.raises(ConfigError, match="closed"):
        manager.commit()
