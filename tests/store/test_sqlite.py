"""``sqlite:///path``: a real SQLite file, shared by two stores as two processes would share it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from app.store.base import StoreLimits, StoreUnavailable
from app.store.sqlite import SqliteStore
from tests.store.contract import MakeStore, StoreContract


class TestSqliteStore(StoreContract):
    @pytest.fixture
    def make(self, tmp_path: Path) -> MakeStore:
        def make(limits: StoreLimits) -> SqliteStore:
            return SqliteStore(tmp_path / "store" / "responses.sqlite3", limits)

        return make


async def test_two_stores_on_one_file_see_each_other_and_a_reopened_file_keeps_its_documents(tmp_path: Path) -> None:
    path, limits = tmp_path / "responses.sqlite3", StoreLimits(max_size=10, ttl=60)
    first, second = SqliteStore(path, limits), SqliteStore(path, limits)
    await first.put("a", b"1")
    assert await second.get("a") == b"1"
    assert await second.delete("a") is True
    assert await first.get("a") is None
    await first.put("b", b"2")
    await first.close()
    await second.close()
    reopened = SqliteStore(path, limits)
    assert await reopened.get("b") == b"2"
    await reopened.close()


async def test_expiry_follows_the_clock(tmp_path: Path) -> None:
    now = [1000.0]
    clock: Callable[[], float] = lambda: now[0]  # noqa: E731
    store = SqliteStore(tmp_path / "db.sqlite3", StoreLimits(max_size=10, ttl=10), clock=clock)
    await store.put("a", b"1")
    now[0] = 1009.9
    assert await store.get("a") == b"1"
    now[0] = 1010.0
    assert await store.get("a") is None
    await store.close()


async def test_a_path_that_cannot_hold_a_database_is_unavailable_not_missing(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    for path in (tmp_path, tmp_path / "a-file" / "below-a-file.sqlite3"):  # a folder; a folder under a file
        store = SqliteStore(path, StoreLimits(max_size=10, ttl=60))
        with pytest.raises(StoreUnavailable, match="SQLite"):
            await store.put("a", b"1")
        with pytest.raises(StoreUnavailable):
            await store.get("a")


async def test_a_file_that_is_not_a_database_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "not-a-db.sqlite3"
    path.write_bytes(b"this is not a database file, just some bytes " * 100)
    store = SqliteStore(path, StoreLimits(max_size=10, ttl=60))
    with pytest.raises(StoreUnavailable, match="SQLite"):
        await store.get("a")
    with pytest.raises(StoreUnavailable):
        await store.check()
