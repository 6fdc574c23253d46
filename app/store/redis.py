"""``redis://host:port/db`` (or ``rediss://``): a Redis or Valkey server that every replica shares.

Each document is a string key with the store's TTL. A sorted set per store indexes the keys by the time they
were stored, so the count limit drops the oldest first; both change in one MULTI/EXEC transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from app.store.base import StoreLimits, StoreUnavailable


def masked(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{user}:***@{host}{port}", parts.path, parts.query, parts.fragment))


class RedisStore:
    def __init__(
        self,
        url: str,
        limits: StoreLimits,
        *,
        prefix: str = "hfserve:responses",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = masked(url)
        self._limits, self._clock = limits, clock
        self._prefix, self._index = f"{prefix}:doc:", f"{prefix}:index"
        self._client = aioredis.Redis.from_url(url, socket_timeout=5.0, socket_connect_timeout=5.0)

    def _unavailable(self, exc: Exception) -> StoreUnavailable:
        return StoreUnavailable(f"The response store (Redis at {self.url}) cannot be reached: {type(exc).__name__}.")

    async def put(self, key: str, document: bytes) -> None:
        if self._limits.max_size == 0:
            return
        now = self._clock()
        ttl_ms = max(1, int(self._limits.ttl * 1000))
        try:
            async with self._client.pipeline(transaction=True) as tx:
                tx.set(self._prefix + key, document, px=ttl_ms)
                tx.zadd(self._index, {key: now})
                tx.zremrangebyscore(self._index, "-inf", now - self._limits.ttl)
                tx.zrange(self._index, 0, -self._limits.max_size - 1)  # the oldest beyond the limit
                tx.zremrangebyrank(self._index, 0, -self._limits.max_size - 1)
                results = await tx.execute()
            evicted = results[3]
            if evicted:
                await self._client.delete(*(self._prefix + k.decode() for k in evicted))
        except RedisError as exc:
            raise self._unavailable(exc) from exc

    async def get(self, key: str) -> bytes | None:
        try:
            return await self._client.get(self._prefix + key)
        except RedisError as exc:
            raise self._unavailable(exc) from exc

    async def delete(self, key: str) -> bool:
        try:
            async with self._client.pipeline(transaction=True) as tx:
                tx.delete(self._prefix + key)
                tx.zrem(self._index, key)
                deleted, _ = await tx.execute()
        except RedisError as exc:
            raise self._unavailable(exc) from exc
        return bool(deleted)

    async def check(self) -> None:
        try:
            await self._client.ping()
        except RedisError as exc:
            raise self._unavailable(exc) from exc

    async def close(self) -> None:
        await self._client.aclose()
