"""``redis://``: a real redis-server on 127.0.0.1, started and stopped by these tests."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.store.base import StoreLimits, StoreUnavailable
from app.store.redis import RedisStore, masked
from tests.store.contract import MakeStore, StoreContract
from tests.support.redis_server import RedisServer, run_redis

_prefixes = itertools.count()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with run_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


class TestRedisStore(StoreContract):
    @pytest.fixture
    def make(self, redis_server: RedisServer) -> MakeStore:
        def make(limits: StoreLimits) -> RedisStore:  # a fresh key space per store
            return RedisStore(redis_server.url, limits, prefix=f"test{next(_prefixes)}")

        return make


async def test_two_clients_share_documents(redis_server: RedisServer) -> None:
    limits = StoreLimits(max_size=10, ttl=60)
    first, second = (RedisStore(redis_server.url, limits, prefix="shared") for _ in range(2))
    await first.put("a", b"1")
    assert await second.get("a") == b"1"
    assert await second.delete("a") is True
    assert await first.get("a") is None
    await first.close()
    await second.close()


async def test_a_server_that_is_down_is_unavailable_not_missing(tmp_path: Path) -> None:
    with run_redis(tmp_path) as server:
        url = server.url
    store = RedisStore(url, StoreLimits(max_size=10, ttl=60))
    for call in (store.get("a"), store.put("a", b"1"), store.delete("a"), store.check()):
        with pytest.raises(StoreUnavailable, match="cannot be reached"):
            await call
    await store.close()


async def test_a_hung_server_times_out_as_unavailable(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url, StoreLimits(max_size=10, ttl=60), prefix="hung")
    await store.check()
    redis_server.pause()
    try:
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(store.get("a"), timeout=20)
    finally:
        redis_server.resume()
    await store.close()


def test_passwords_never_show() -> None:
    assert masked("redis://:s3cret@cache:6379/0") == "redis://:***@cache:6379/0"
    assert masked("rediss://user:s3cret@cache/1") == "rediss://user:***@cache/1"
    assert masked("redis://cache:6379/0") == "redis://cache:6379/0"
    store = RedisStore("redis://:s3cret@127.0.0.1:1/0", StoreLimits(max_size=1, ttl=1))
    assert "s3cret" not in store.url
