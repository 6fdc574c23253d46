"""``memory://``: this process's memory. A restart or another replica does not see it."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from app.store.base import StoreLimits


class MemoryStore:
    url = "memory://"

    def __init__(self, limits: StoreLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self._limits, self._clock = limits, clock
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def put(self, key: str, document: bytes) -> None:
        if self._limits.max_size == 0:
            return
        self._expire()
        self._items[key] = (self._clock(), document)
        self._items.move_to_end(key)
        while len(self._items) > self._limits.max_size:
            self._items.popitem(last=False)

    async def get(self, key: str) -> bytes | None:
        self._expire()
        item = self._items.get(key)
        return None if item is None else item[1]

    async def delete(self, key: str) -> bool:
        self._expire()
        return self._items.pop(key, None) is not None

    async def check(self) -> None:
        return None

    async def close(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def _expire(self) -> None:
        deadline = self._clock() - self._limits.ttl
        while self._items:
            stored_at, _ = next(iter(self._items.values()))
            if stored_at > deadline:
                return
            self._items.popitem(last=False)
