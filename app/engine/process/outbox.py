"""How the engine process hands its events over: collected per step, sent as one ``Events`` message.

The engine keeps appending to each row's list of events until the next hand-over, so a row that is held
back (``--stream-interval-ms``) costs nothing per token. The step records (tracing) travel in the same
message, as plain tuples.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from app.engine.messages import Events
from app.engine.types import EngineEvent, StepRecord


class Outbox:
    def __init__(self, send: Callable[[Events], None], interval: float) -> None:
        self._send = send
        self._interval = interval
        self._pending: list[tuple[str, list[EngineEvent]]] = []
        self.steps: list[StepRecord] = []  # the step log appends here; cleared at each hand-over
        self._last = 0.0

    def add(self, request_id: str, events: list[EngineEvent]) -> None:
        """Register a list the engine keeps appending to until the next hand-over."""
        self._pending.append((request_id, events))

    def flush(
        self, *, busy: bool, running: int, kv_tokens: int = 0, kv_counters: tuple[int, int, int, int] = (0, 0, 0, 0)
    ) -> bool:
        """Send what was collected; False when holding it back (the lists stay registered)."""
        if not self._pending:
            return True
        now = time.perf_counter()
        if busy and now - self._last < self._interval:
            return False
        self._last = now
        batch = [(request_id, list(events)) for request_id, events in self._pending]
        self._pending.clear()
        steps = [tuple(step) for step in self.steps]  # plain: a named tuple pickles through Python calls
        self.steps.clear()  # the step log keeps appending to this very list
        self._send(Events(batch, running, kv_tokens, steps, kv_counters))  # type: ignore[arg-type]
        return True
