"""``memory://``."""

from __future__ import annotations

import pytest

from app.store.base import StoreLimits
from app.store.memory import MemoryStore
from tests.store.contract import MakeStore, StoreContract


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def make(self) -> MakeStore:
        return MemoryStore


async def test_expiry_follows_the_clock() -> None:
    now = [0.0]
    store = MemoryStore(StoreLimits(max_size=10, ttl=10), clock=lambda: now[0])
    await store.put("a", b"1")
    now[0] = 9.9
    assert await store.get("a") == b"1"
    now[0] = 10.0
    assert await store.get("a") is None and len(store) == 0
