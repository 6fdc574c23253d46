"""What every store backend must do alike; each backend's test module runs it against a real backend."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from app.store.base import DocumentStore, StoreLimits

MakeStore = Callable[[StoreLimits], DocumentStore]


class StoreContract:
    """Subclasses provide the ``make`` fixture: a factory of fresh, empty stores of their backend."""

    async def test_put_get_delete(self, make: MakeStore) -> None:
        store = make(StoreLimits(max_size=10, ttl=60))
        assert await store.get("a") is None
        await store.put("a", b"\x00first")
        await store.put("b", "second ünïcode".encode())
        assert await store.get("a") == b"\x00first"
        assert await store.get("b") == "second ünïcode".encode()
        await store.put("a", b"replaced")
        assert await store.get("a") == b"replaced"
        assert await store.delete("a") is True
        assert await store.delete("a") is False
        assert await store.get("a") is None
        await store.check()
        await store.close()

    async def test_the_oldest_go_first_beyond_the_size_limit(self, make: MakeStore) -> None:
        store = make(StoreLimits(max_size=3, ttl=60))
        for key in "abcde":
            await store.put(key, key.encode())
        assert [await store.get(k) for k in "abcde"] == [None, None, b"c", b"d", b"e"]
        await store.put("c", b"c2")  # a replaced document counts as new
        await store.put("f", b"f")
        assert [await store.get(k) for k in "cdef"] == [b"c2", None, b"e", b"f"]
        await store.close()

    async def test_documents_expire(self, make: MakeStore) -> None:
        store = make(StoreLimits(max_size=10, ttl=0.4))
        await store.put("old", b"1")
        await asyncio.sleep(0.6)
        await store.put("new", b"2")
        assert await store.get("old") is None
        assert await store.delete("old") is False
        assert await store.get("new") == b"2"
        await store.close()

    async def test_size_zero_keeps_nothing(self, make: MakeStore) -> None:
        store = make(StoreLimits(max_size=0, ttl=60))
        await store.put("a", b"1")
        assert await store.get("a") is None
        await store.close()

    @pytest.mark.parametrize("key", ["resp_0123456789abcdef", "with:colon", "ü/slash"])
    async def test_any_key(self, make: MakeStore, key: str) -> None:
        store = make(StoreLimits(max_size=10, ttl=60))
        await store.put(key, b"x")
        assert await store.get(key) == b"x"
        await store.close()
