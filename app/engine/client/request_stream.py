"""A request's events as the HTTP process reads them."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from app.engine.types import EngineEvent, FinishEvent, TokenEvent


class RequestStream:
    """Async iterator over one request's events.

    ``RemoteEngine`` puts one list of events per delivery from the engine process. When the reader falls
    behind, the pending tokens of a choice are merged into one event, so a slow client costs one chunk per
    read rather than one per token. Closing the stream early, or dropping it unread, aborts the request.
    """

    def __init__(self, request_id: str, choices: int, abort: Callable[[str], None]) -> None:
        self.request_id = request_id
        self.queue: asyncio.Queue[list[EngineEvent]] = asyncio.Queue()
        self._pending: deque[EngineEvent] = deque()
        self._open = choices
        self._abort = abort

    def __aiter__(self) -> RequestStream:
        return self

    async def __anext__(self) -> EngineEvent:
        if not self._pending:
            if self._open == 0:
                raise StopAsyncIteration
            self._pending.extend(await self.queue.get())
        while True:  # take whatever else has already arrived
            try:
                self._pending.extend(self.queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        event = self._pending.popleft()
        if isinstance(event, TokenEvent):
            while self._pending and isinstance(nxt := self._pending[0], TokenEvent) and nxt.index == event.index:
                event = event.merged(self._pending.popleft())
        elif isinstance(event, FinishEvent):
            self._open -= 1
        return event

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        if self._open:
            self._open = 0
            self._pending.clear()
            self._abort(self.request_id)

    def __del__(self) -> None:  # dropped without being read to the end
        if self._open:
            self._abort(self.request_id)
