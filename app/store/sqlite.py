"""``sqlite:///path``: a SQLite file, the embedded default of the container (on the model-cache volume, so
documents survive restarts). Several processes on one host may share the file (WAL journal); replicas on
several hosts need Redis.

SQLite calls block, so they run in a worker thread, one at a time per store.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from app.store.base import StoreLimits, StoreUnavailable

T = TypeVar("T")

_SCHEMA = "CREATE TABLE IF NOT EXISTS documents (key TEXT PRIMARY KEY, stored_at REAL NOT NULL, body BLOB NOT NULL)"
_INDEX = "CREATE INDEX IF NOT EXISTS documents_by_age ON documents (stored_at)"


class SqliteStore:
    def __init__(self, path: Path, limits: StoreLimits, clock: Callable[[], float] = time.time) -> None:
        self.url = f"sqlite:///{path}"
        self._path, self._limits, self._clock = path, limits, clock
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, timeout=5.0, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)
            db.execute(_INDEX)
            self._db = db
        return self._db

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def locked() -> T:
            with self._lock:
                return work(self._connect())

        try:
            return await asyncio.to_thread(locked)
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"The response store (SQLite) cannot be used: {type(exc).__name__}.") from exc

    async def put(self, key: str, document: bytes) -> None:
        if self._limits.max_size == 0:
            return
        now = self._clock()

        def work(db: sqlite3.Connection) -> None:
            with db:  # one transaction: the write and the trimming
                db.execute("BEGIN IMMEDIATE")
                db.execute("INSERT OR REPLACE INTO documents VALUES (?, ?, ?)", (key, now, document))
                db.execute("DELETE FROM documents WHERE stored_at <= ?", (now - self._limits.ttl,))
                db.execute(
                    "DELETE FROM documents WHERE key IN (SELECT key FROM documents ORDER BY stored_at DESC, rowid DESC"
                    " LIMIT -1 OFFSET ?)",
                    (self._limits.max_size,),
                )

        await self._run(work)

    async def get(self, key: str) -> bytes | None:
        deadline = self._clock() - self._limits.ttl

        def work(db: sqlite3.Connection) -> Any:
            return db.execute("SELECT body FROM documents WHERE key = ? AND stored_at > ?", (key, deadline)).fetchone()

        row = await self._run(work)
        return None if row is None else bytes(row[0])

    async def delete(self, key: str) -> bool:
        deadline = self._clock() - self._limits.ttl

        def work(db: sqlite3.Connection) -> int:
            return db.execute("DELETE FROM documents WHERE key = ? AND stored_at > ?", (key, deadline)).rowcount

        return await self._run(work) > 0

    async def check(self) -> None:
        await self._run(lambda db: db.execute("SELECT 1").fetchone())

    async def close(self) -> None:
        def work() -> None:
            with self._lock:
                if self._db is not None:
                    self._db.close()
                    self._db = None

        await asyncio.to_thread(work)
