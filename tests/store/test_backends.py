"""Opening the backend a URL names."""

from __future__ import annotations

from pathlib import Path

from app.store.backends import open_store
from app.store.base import StoreLimits
from app.store.memory import MemoryStore
from app.store.redis import RedisStore
from app.store.sqlite import SqliteStore

LIMITS = StoreLimits(max_size=1, ttl=1)


def test_each_scheme_opens_its_backend(tmp_path: Path) -> None:
    assert isinstance(open_store("memory://", LIMITS), MemoryStore)
    sqlite = open_store(f"sqlite:///{tmp_path}/r.sqlite3", LIMITS)
    assert isinstance(sqlite, SqliteStore) and sqlite.url == f"sqlite:///{tmp_path}/r.sqlite3"
    assert isinstance(open_store("sqlite:///relative.sqlite3", LIMITS), SqliteStore)
    assert isinstance(open_store("redis://127.0.0.1:6379/0", LIMITS), RedisStore)
    assert isinstance(open_store("rediss://cache.internal:6380/2", LIMITS), RedisStore)
