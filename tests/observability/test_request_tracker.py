"""Engine requests tracked on the HTTP side: their spans from the engine's timing, and the engine's step
spans linked to the requests in them as (trace id, span id) pairs."""

from __future__ import annotations

import time

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.engine.types import RequestTiming, StepRecord
from app.observability.request_tracker import EngineRequestTracker, record_steps
from app.observability.telemetry import RequestScope, Telemetry

UNSAMPLED = {b"traceparent": b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-00"}


def _scope(telemetry: Telemetry, headers: dict[bytes, bytes] | None = None) -> RequestScope:
    return telemetry.open_request("POST", "/v1/completions", "/v1/completions", headers or {}, "http-1")


def test_steps_link_to_the_traced_requests_in_them() -> None:
    exporter = InMemorySpanExporter()
    telemetry = Telemetry(span_exporter=exporter)
    traced, unsampled = _scope(telemetry), _scope(telemetry, UNSAMPLED)
    assert traced.traced and not unsampled.traced
    EngineRequestTracker(telemetry, traced, "m", "a", 2, 3, admitted=time.time_ns())
    EngineRequestTracker(telemetry, unsampled, "m", "b", 1, 4, admitted=time.time_ns())
    assert telemetry.links == {"a": (traced.trace_id, traced.span_id)}

    record_steps(
        telemetry,
        "m",
        [
            StepRecord(10, 20, ("a", "b"), 7, ()),  # both prefilled
            StepRecord(20, 30, (), 0, ("a", "a", "b")),  # two rows of a, one of b
            StepRecord(30, 40, (), 0, ("b",)),  # only the unsampled request: no span
        ],
    )
    prefill, decode = exporter.get_finished_spans()
    assert [(link.context.trace_id, link.context.span_id) for link in decode.links] == [
        (traced.trace_id, traced.span_id)
    ]
    assert (decode.start_time, decode.end_time, decode.name) == (20, 30, "engine.step")
    assert decode.context.trace_id != traced.trace_id  # a step is a trace of its own
    assert dict(decode.attributes or {}) == {
        "hfserve.model": "m",
        "hfserve.step.batch_size": 3,
        "hfserve.step.decode_tokens": 3,
        "hfserve.step.prefill_requests": 0,
        "hfserve.step.prefill_tokens": 0,
        "hfserve.step.requests": 2,
    }
    assert prefill.attributes is not None and prefill.attributes["hfserve.step.prefill_tokens"] == 7
    assert len(prefill.links) == 1


def test_a_finished_request_writes_its_stage_spans_and_drops_its_link() -> None:
    exporter = InMemorySpanExporter()
    telemetry = Telemetry(span_exporter=exporter)
    scope = _scope(telemetry)
    now = time.time_ns()
    tracker = EngineRequestTracker(telemetry, scope, "m", "a", 1, 3, admitted=now - 500)
    timing = RequestTiming(arrived=now, scheduled=now + 1_000, first_token=now + 2_000, finished=now + 3_000)
    tracker.first_token(0.5)
    assert tracker.finished("length", 3, 4, timing, now=1.0)
    assert telemetry.links == {}
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"queue", "prefill", "decode"}
    assert all(s.parent is not None and s.parent.span_id == scope.span_id for s in spans.values())
    assert (spans["queue"].start_time, spans["queue"].end_time) == (now - 500, timing.scheduled)
    assert (spans["prefill"].start_time, spans["prefill"].end_time) == (timing.scheduled, timing.first_token)
    assert (spans["decode"].start_time, spans["decode"].end_time) == (timing.first_token, timing.finished)
    assert spans["decode"].attributes is not None and spans["decode"].attributes["gen_ai.usage.output_tokens"] == 4
    assert (scope.output_tokens, scope.finish_reasons) == (4, {"length"})
