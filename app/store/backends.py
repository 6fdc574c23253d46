"""Opening the backend a store URL names."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from app.store.base import DocumentStore, StoreLimits
from app.store.memory import MemoryStore
from app.store.redis import RedisStore
from app.store.sqlite import SqliteStore
from app.store.urls import check_store_url


def open_store(url: str, limits: StoreLimits) -> DocumentStore:
    """The backend ``url`` names (nothing is connected until first use)."""
    scheme = urlsplit(check_store_url(url)).scheme
    if scheme == "memory":
        return MemoryStore(limits)
    if scheme == "sqlite":
        return SqliteStore(Path(url.removeprefix("sqlite:///")), limits)
    return RedisStore(url, limits)
