"""The HTTP side's tracking of engine requests, and the engine's step spans.

An ``EngineRequestTracker`` follows one engine request as its events arrive from the engine process (time
to first token, gaps between tokens, token counts). When its last choice finishes it turns the engine's
own timing (``RequestTiming``, carried by each finish event) into the ``queue``, ``prefill`` and
``decode`` spans of the request, with the times the engine process measured. ``record_steps`` turns the
engine's step records into ``engine.step`` spans, each linked to the requests that took part in it.

Trackers are fed once per pipe message (app/models/observed.py), not per token read by serving code.
This module imports nothing of ours: engine objects are read by attribute.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import structlog

from app.observability.spans import INTERNAL, SpanRecord, new_span_id, new_trace_id
from app.observability.telemetry import RequestScope, Telemetry

log = structlog.get_logger(__name__)


class EngineRequestTracker:
    __slots__ = (
        "_admitted",
        "_completion",
        "_first",
        "_id",
        "_model",
        "_open",
        "_prompt",
        "_reasons",
        "_scope",
        "_started",
        "_telemetry",
        "_timing",
    )

    def __init__(
        self,
        telemetry: Telemetry,
        scope: RequestScope | None,
        model: str,
        request_id: str,
        choices: int,
        prompt: int,
        *,
        admitted: int,
    ) -> None:
        """``admitted``: ``time.time_ns()`` just before the request was handed to the engine (taken after, it
        could fall after the engine process started its prefill)."""
        self._telemetry, self._scope, self._model, self._id = telemetry, scope, model, request_id
        self._admitted = admitted
        self._started = scope.started if scope is not None else time.perf_counter()
        self._open, self._prompt = choices, prompt
        self._first: float | None = None
        self._completion = 0
        self._reasons: set[str] = set()
        self._timing: Any = None
        if scope is not None:
            scope.model = model
            scope.input_tokens += prompt
            if scope.traced:
                telemetry.links[request_id] = (scope.trace_id, scope.span_id)

    @property
    def started(self) -> bool:
        """Its first token has arrived."""
        return self._first is not None

    def finished(self, reason: str, prompt_tokens: int, completion_tokens: int, timing: Any, now: float) -> bool:
        """One choice finished; True once the request has no choice left."""
        if self._first is None and completion_tokens:  # stopped at its first token: no token event came
            self.first_token(now)
        self._reasons.add(reason)
        self._completion += completion_tokens
        self._prompt = prompt_tokens or self._prompt
        if timing is not None and (self._timing is None or timing.finished > self._timing.finished):
            self._timing = timing  # choices share arrival, prefill and first token; the last to end counts
        self._open -= 1
        if self._open > 0:
            return False
        self._end()
        return True

    def first_token(self, now: float) -> None:
        """Its first token reached the HTTP side at ``now`` (``perf_counter``)."""
        if self._first is not None:
            return
        self._first = now
        scope, metrics = self._scope, self._telemetry.metrics
        if scope is not None and scope.first_token is not None:
            return  # one time to first token per HTTP request (a completions request may hold several prompts)
        if scope is not None:
            scope.first_token = now
        if metrics is not None:
            metrics.ttft.labels(self._model, scope.endpoint if scope else "").observe(now - self._started)

    def _end(self) -> None:
        self._telemetry.links.pop(self._id, None)
        timing, completion = self._timing, self._completion
        if (metrics := self._telemetry.metrics) is not None:
            if (timing is not None and timing.first_token) or completion:  # it was prefilled
                metrics.prompt_tokens.labels(self._model).inc(self._prompt)
            if completion:
                metrics.generation_tokens.labels(self._model).inc(completion)
            if timing is not None and timing.scheduled:
                metrics.queue.labels(self._model).observe(max(0, timing.scheduled - self._admitted) / 1e9)
        scope = self._scope
        if scope is None:
            return
        scope.output_tokens += completion
        scope.finish_reasons.update(self._reasons)
        if scope.traced:
            self._spans(scope, timing, completion)

    def _spans(self, scope: RequestScope, timing: Any, completion: int) -> None:
        request_id, now = self._id, time.time_ns()
        if timing is None:  # no word from the engine itself (its process died)
            unfinished = {"hfserve.engine_request_id": request_id, "hfserve.completed": False}
            scope.child("queue", self._admitted, now, unfinished)
            return
        end = timing.finished or now
        scope.child("queue", self._admitted, timing.scheduled or end, {"hfserve.engine_request_id": request_id})
        if timing.scheduled and timing.first_token:
            prefill = {"hfserve.engine_request_id": request_id, "gen_ai.usage.input_tokens": self._prompt}
            scope.child("prefill", timing.scheduled, timing.first_token, prefill)
            decode = {
                "hfserve.engine_request_id": request_id,
                "gen_ai.usage.output_tokens": completion,
                "gen_ai.response.finish_reasons": tuple(sorted(self._reasons)),  # a tuple: its message is kept
            }
            scope.child("decode", timing.first_token, end, decode)


def record_steps(telemetry: Telemetry, model: str, records: Iterable[Any]) -> None:
    """One ``engine.step`` span per step that served a traced request, linked to those requests' spans."""
    links = telemetry.links
    if not links:
        return
    for record in records:
        decode_ids, prefill_ids = record.decode_ids, record.prefill_ids
        members = set(decode_ids)  # a request with n choices decodes n rows
        if prefill_ids:
            members.update(prefill_ids)
        linked = tuple(filter(None, map(links.get, members)))  # requests sampled out have no link
        if not linked:
            continue
        attributes = {
            "hfserve.model": model,
            "hfserve.step.batch_size": len(decode_ids),
            "hfserve.step.decode_tokens": len(decode_ids),
            "hfserve.step.prefill_requests": len(prefill_ids),
            "hfserve.step.prefill_tokens": record.prefill_tokens,
            "hfserve.step.requests": len(members),
        }
        step = SpanRecord(new_trace_id(), new_span_id(), 0, "engine.step", INTERNAL, record.started, record.ended,
                          attributes, linked)  # fmt: skip
        telemetry.write(step)
