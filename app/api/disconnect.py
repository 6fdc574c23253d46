"""Cancel a non-streaming request's work when its client goes away.

Streams are cancelled by Litestar itself; a plain handler is not, so it would decode to the end for
nobody. Here the work races ``http.disconnect``: on a disconnect it is cancelled, and its ``finally``
aborts the request in the engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from contextlib import suppress
from typing import Any, TypeVar

from litestar import Request

from app.errors import HfServeError

T = TypeVar("T")


class ClientDisconnected(HfServeError):
    status = 499  # nginx's "client closed request": nobody reads it, but logs and metrics can
    type = "invalid_request_error"
    code = "client_disconnected"


async def _disconnected(request: Request[Any, Any, Any]) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(request: Request[Any, Any, Any], work: Coroutine[Any, Any, T]) -> T:
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        raise ClientDisconnected("The client closed the connection before the response was ready.")
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
