"""The store interface: documents (bytes) by key, bounded by count and age, in every backend alike.

Serving code stores through this interface and never knows which backend it has. A backend that cannot be
reached raises ``StoreUnavailable`` (a 503 with ``Retry-After``); it never answers "not found" for a
document it could not read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from app.errors import ServiceUnavailable


class StoreUnavailable(ServiceUnavailable):
    code = "store_unavailable"


@dataclass(frozen=True, slots=True)
class StoreLimits:
    max_size: int  # documents kept; the oldest go first (0: keep none)
    ttl: float  # seconds a document is kept


class DocumentStore(Protocol):
    """Async key -> bytes storage. ``put`` replaces a document of the same key."""

    url: str  # where it stores, with any password masked: safe to log and to show in /ready

    async def put(self, key: str, document: bytes) -> None: ...

    async def get(self, key: str) -> bytes | None: ...

    async def delete(self, key: str) -> bool:
        """True when the key was there."""
        ...

    async def check(self) -> None:
        """Raises ``StoreUnavailable`` when the backend cannot be reached."""
        ...

    async def close(self) -> None: ...
