"""The engine as the HTTP side sees it: per-request tracking and per-step spans.

An ``EngineRequestTracker`` follows one engine request's events as serving code reads them (time to first
token, gaps between tokens, token counts). When its last choice finishes it turns the engine's own timing
(``RequestTiming``, carried by each finish event) into the ``queue``, ``prefill`` and ``decode`` spans of
the request, with the times the engine process measured. ``record_steps`` turns the engine's step records
into ``engine.step`` spans, each linked to the requests that took part in it.

This module imports nothing of ours: engine objects are read by attribute.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import structlog
from opentelemetry.context import Context

from app.observability.telemetry import RequestScope, Telemetry

log = structlog.get_logger(__name__)
_ROOT = Context()  # step spans start their own traces: a step serves many requests


class EngineRequestTracker:
    __slots__ = (
        "_admitted",
        "_completion",
        "_ended",
        "_id",
        "_itl",
        "_last",
        "_model",
        "_open",
        "_prompt",
        "_reasons",
        "_scope",
        "_seen",
        "_started",
        "_telemetry",
        "_timings",
    )

    def __init__(
        self, telemetry: Telemetry, scope: RequestScope | None, model: str, request_id: str, choices: int, prompt: int
    ) -> None:
        self._telemetry, self._scope, self._model, self._id = telemetry, scope, model, request_id
        self._admitted = time.time_ns()
        self._started = scope.started if scope is not None else time.perf_counter()
        self._open, self._prompt = choices, prompt
        self._last: float | None = None
        self._seen = self._completion = 0
        self._reasons: set[str] = set()
        self._timings: list[Any] = []
        self._ended = False
        metrics = telemetry.metrics
        self._itl = metrics.itl.labels(model, scope.endpoint if scope else "") if metrics is not None else None
        if scope is not None:
            scope.model = model
            scope.input_tokens += prompt
            if scope.link is not None:
                telemetry.links[request_id] = scope.link

    def tokens(self, count: int) -> None:
        """``count`` tokens of one choice reached the HTTP side together."""
        now = time.perf_counter()
        last, self._last = self._last, now
        self._seen += count
        if last is None:
            self._first_token(now)
            if count > 1 and self._itl is not None:
                self._itl.observe(0.0, count - 1)
        elif self._itl is not None:
            self._itl.observe((now - last) / count, count)

    def finished(self, reason: str, prompt_tokens: int, completion_tokens: int, timing: Any) -> None:
        if self._last is None and completion_tokens:  # stopped at its first token: no token event came
            self._last = time.perf_counter()
            self._first_token(self._last)
        self._reasons.add(reason)
        self._completion += completion_tokens
        self._prompt = prompt_tokens or self._prompt
        if timing is not None:
            self._timings.append(timing)
        self._open -= 1
        if self._open <= 0:
            self._end(complete=True)

    def close(self) -> None:
        """The reader is done with the request (always called): one that did not finish was abandoned."""
        if not self._ended:
            self._end(complete=False)

    def _first_token(self, now: float) -> None:
        scope, metrics = self._scope, self._telemetry.metrics
        if scope is not None and scope.first_token is not None:
            return  # one time to first token per HTTP request (a completions request may hold several prompts)
        if scope is not None:
            scope.first_token = now
        if metrics is not None:
            metrics.ttft.labels(self._model, scope.endpoint if scope else "").observe(now - self._started)

    def _end(self, *, complete: bool) -> None:
        self._ended = True
        self._telemetry.links.pop(self._id, None)
        timing = _merged(self._timings)
        completion = self._completion if complete else max(self._completion, self._seen)
        reasons = self._reasons if complete else {*self._reasons, "abort"}
        prefilled = bool(timing and timing.first_token) or completion > 0
        if (metrics := self._telemetry.metrics) is not None:
            if prefilled:
                metrics.prompt_tokens.labels(self._model).inc(self._prompt)
            if completion:
                metrics.generation_tokens.labels(self._model).inc(completion)
            if timing is not None and timing.scheduled:
                metrics.queue.labels(self._model).observe(max(0, timing.scheduled - self._admitted) / 1e9)
        scope = self._scope
        if scope is None:
            return
        scope.output_tokens += completion
        scope.finish_reasons.update(reasons)
        if scope.context is not None:
            try:
                self._spans(scope, timing, completion, reasons)
            except Exception:  # never let tracing break a response
                log.exception("request_spans_failed")

    def _spans(self, scope: RequestScope, timing: Any, completion: int, reasons: set[str]) -> None:
        tracer, parent = self._telemetry.tracer, scope.context
        assert tracer is not None
        base = {"hfserve.engine_request_id": self._id}
        now = time.time_ns()

        def span(name: str, start: int, end: int, attributes: Mapping[str, Any]) -> None:
            tracer.start_span(name, context=parent, start_time=start, attributes={**base, **attributes}).end(
                end_time=max(start, end)
            )

        if timing is None:  # no word from the engine (the client left first, or the engine process died)
            if self._last is None:
                span("queue", self._admitted, now, {"hfserve.completed": False})
            else:
                first = now - int((time.perf_counter() - self._last) * 1e9)
                span("decode", first, now, {"gen_ai.usage.output_tokens": completion, "hfserve.completed": False})
            return
        end = timing.finished or now
        span("queue", self._admitted, timing.scheduled or end, {})
        if timing.scheduled and timing.first_token:
            span("prefill", timing.scheduled, timing.first_token, {"gen_ai.usage.input_tokens": self._prompt})
            finish = {"gen_ai.usage.output_tokens": completion, "gen_ai.response.finish_reasons": sorted(reasons)}
            span("decode", timing.first_token, end, finish)


def _merged(timings: list[Any]) -> Any:
    """The choices of a request share its arrival, prefill and first token; it ends with its last choice."""
    return max(timings, key=lambda t: t.finished) if timings else None


def record_steps(telemetry: Telemetry, model: str, records: Iterable[Any]) -> None:
    """One ``engine.step`` span per step that served a traced request, linked to those requests' spans."""
    tracer, links = telemetry.tracer, telemetry.links
    if tracer is None or not links:
        return
    try:
        for record in records:
            members = dict.fromkeys((*record.prefill_ids, *record.decode_ids))
            linked = [links[rid] for rid in members if rid in links]
            if not linked:
                continue
            attributes = {
                "hfserve.model": model,
                "hfserve.step.batch_size": len(record.decode_ids),
                "hfserve.step.decode_tokens": len(record.decode_ids),
                "hfserve.step.prefill_requests": len(record.prefill_ids),
                "hfserve.step.prefill_tokens": record.prefill_tokens,
                "hfserve.step.requests": len(members),
            }
            span = tracer.start_span(
                "engine.step", context=_ROOT, links=linked, start_time=record.started, attributes=attributes
            )
            span.end(end_time=record.ended)
    except Exception:  # never let tracing stop the engine's events from being read
        log.exception("step_spans_failed")
