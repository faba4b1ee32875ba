"""Fixtures shared by the storage tests: every KV-backed test runs over both backends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from storage.kv import KV, LevelKV, MemoryKV


@pytest.fixture(params=["memory", "leveldb"])
def kv_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], KV]]:
    """A factory of fresh stores of one backend; all are closed at teardown."""
    made: list[KV] = []
    counter = [0]

    def make() -> KV:
        counter[0] += 1
        kv: KV = MemoryKV() if request.param == "memory" else LevelKV(tmp_path / f"db{counter[0]}")
        made.append(kv)
        return kv

    yield make
    for kv in made:
        kv.close()


@pytest.fixture
def kv(kv_factory: Callable[[], KV]) -> KV:
    return kv_factory()
