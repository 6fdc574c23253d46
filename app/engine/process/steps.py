"""The batching loop's clock: when each request's prefill started and its first token came (always: the queue
time metric needs it), and what each step did (only when tracing is on).

A step's record goes to ``Outbox.steps`` and crosses the pipe with that step's events, so tracing adds no
message of its own; with tracing off nothing is recorded and nothing more is sent.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from app.engine.process.rows import EngineRequest, Row
from app.engine.types import StepRecord


class StepLog:
    def __init__(self, sink: list[StepRecord], *, enabled: bool) -> None:
        self.enabled = enabled
        self._sink = sink
        self._started = 0
        self._prefill_ids: list[str] = []
        self._prefill_tokens = 0
        self._decode_ids: tuple[str, ...] = ()

    def begin(self) -> None:
        if self.enabled:
            self._started = time.time_ns()

    def prefilling(self, requests: Iterable[EngineRequest], tokens: int) -> None:
        now = time.time_ns()
        for req in requests:
            req.scheduled = req.scheduled or now
            if self.enabled:
                self._prefill_ids.append(req.id)
        self._prefill_tokens += tokens

    @staticmethod
    def joined(requests: Iterable[EngineRequest]) -> None:
        now = time.time_ns()
        for req in requests:
            req.first_token = now

    def decoding(self, rows: list[Row]) -> None:
        if self.enabled:
            self._decode_ids = tuple(row.owner.id for row in rows)

    def end(self) -> None:
        if self.enabled and (self._prefill_ids or self._decode_ids):
            ids, tokens, decoded = tuple(self._prefill_ids), self._prefill_tokens, self._decode_ids
            self._sink.append(StepRecord(self._started, time.time_ns(), ids, tokens, decoded))
            self._prefill_ids, self._decode_ids = [], ()
        self._prefill_tokens = 0
