"""Per-request event streams, and the delivery of the engine thread's events to them."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress

from app.engine.types import EngineEvent, FinishEvent, StepRecord, TokenEvent


class RequestStream:
    """Async iterator over one request's events.

    The engine thread delivers a list of events per step. When the reader falls behind, the pending
    tokens of a choice are merged into one event, so a slow client costs one chunk per read rather
    than one per token. Closing the stream early, or dropping it unread, aborts the request.
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


class Delivery:
    """Collects each step's events on the engine thread and hands them to the event loop.

    Waking the loop (``call_soon_threadsafe``) costs the engine thread the GIL, so at most one hand-over
    is pending: while the loop is still busy with earlier events, later steps only add to it. With an
    interval (``--stream-interval-ms``) rows keep collecting events between hand-overs.
    """

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._outbox: list[tuple[RequestStream, list[EngineEvent]]] = []
        self.steps: list[StepRecord] = []  # step records (tracing) travel with the events; in-process: dropped
        self._pending: list[tuple[RequestStream, list[EngineEvent]]] = []
        self._lock = threading.Lock()
        self._scheduled = False
        self._last = 0.0
        self.loop: asyncio.AbstractEventLoop | None = None

    def add(self, stream: RequestStream, events: list[EngineEvent]) -> None:
        """Register a list the engine keeps appending to until the next hand-over."""
        self._outbox.append((stream, events))

    def flush(self, *, busy: bool) -> bool:
        """Hand over what this step collected; False when holding it back (the lists stay registered)."""
        self.steps.clear()
        if not self._outbox or self.loop is None:
            self._outbox.clear()
            return True
        if not self._due(busy):
            return False
        batch = [(stream, list(events)) for stream, events in self._outbox]
        self._outbox.clear()
        with self._lock:
            self._pending.extend(batch)
            if self._scheduled:
                return True
            self._scheduled = True
        with suppress(RuntimeError):  # a closed event loop: nobody is listening any more
            self.loop.call_soon_threadsafe(self._hand_over)
        return True

    def _due(self, busy: bool) -> bool:
        now = time.perf_counter()
        if busy and now - self._last < self._interval:
            return False
        self._last = now
        return True

    def _hand_over(self) -> None:
        """On the event loop: pass every delivered event to its stream."""
        with self._lock:
            batch, self._pending = self._pending, []
            self._scheduled = False
        for stream, events in batch:
            stream.queue.put_nowait(events)
