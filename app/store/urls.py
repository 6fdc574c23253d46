"""Store URLs: ``memory://``, ``sqlite:///path`` or ``redis://host:port/db``; the standard library only, so the
settings can check a URL when they are read."""

from __future__ import annotations

from urllib.parse import urlsplit

SCHEMES = ("memory", "sqlite", "redis", "rediss")


def check_store_url(url: str) -> str:
    """The URL when it names a backend this server has; ValueError (for settings validation) otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ValueError(f"a store URL starts with one of {', '.join(s + '://' for s in SCHEMES)}")
    if parts.scheme == "sqlite" and not (parts.netloc == "" and len(parts.path) > 1):
        raise ValueError("a SQLite store URL is sqlite:///relative/path or sqlite:////absolute/path")
    if parts.scheme.startswith("redis") and not parts.hostname:
        raise ValueError("a Redis store URL names its host: redis://host:port/db")
    return url
