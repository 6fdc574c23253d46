"""Spans of real requests, captured in memory: an app from ``create_app`` over a real engine process, driven
through Litestar's test client (the OTLP export itself is tested end to end in tests/integration)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from litestar.testing import TestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from app.main import create_app
from app.observability.logging import configure_logging
from app.observability.telemetry import Telemetry
from app.settings import Settings
from tests.support.models import CHAT_MODEL_ID, snapshot_path

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_SPAN_ID = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"
CHAT = {"messages": [{"role": "user", "content": "What is the capital of France?"}], "temperature": 0}


@pytest.fixture(scope="module")
def traced(hf_home: Path) -> Iterator[tuple[TestClient, InMemorySpanExporter, str]]:
    exporter = InMemorySpanExporter()
    model = str(snapshot_path(hf_home, CHAT_MODEL_ID))
    app = create_app(Settings(model=model, model_timeout=-1), telemetry=Telemetry(span_exporter=exporter))
    with TestClient(app, timeout=60) as client:
        deadline = time.monotonic() + 90
        while client.get("/ready").status_code != 200:
            assert time.monotonic() < deadline, "the model did not load"
            time.sleep(0.1)
        yield client, exporter, model


def trace(exporter: InMemorySpanExporter, trace_id: int) -> list[ReadableSpan]:
    """The spans of one trace, once its server span is written (just after the response's last byte)."""
    deadline = time.monotonic() + 10
    while True:
        spans = [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]
        if any(s.kind == SpanKind.SERVER for s in spans) or time.monotonic() > deadline:
            return spans
        time.sleep(0.01)


def sse_chunks(text: str) -> list[dict[str, Any]]:
    frames = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
    assert frames[-1] == "[DONE]"
    return [json.loads(frame) for frame in frames[:-1]]


def test_a_streaming_chat_request_is_one_trace(
    traced: tuple[TestClient, InMemorySpanExporter, str], capsys: pytest.CaptureFixture[str]
) -> None:
    client, exporter, model = traced
    configure_logging("info", json_output=True)
    body = {**CHAT, "max_tokens": 5, "stream": True, "stream_options": {"include_usage": True}}
    headers = {"traceparent": TRACEPARENT, "X-Request-ID": "trace-test-1"}
    response = client.post("/v1/chat/completions", json=body, headers=headers)
    assert response.status_code == 200
    chunks = sse_chunks(response.text)
    usage = chunks[-1]["usage"]

    spans = trace(exporter, int(TRACE_ID, 16))
    [server] = [s for s in spans if s.kind == SpanKind.SERVER]
    assert server.name == "POST /v1/chat/completions"
    assert server.parent is not None and server.parent.span_id == int(PARENT_SPAN_ID, 16)  # traceparent honoured
    attributes = server.attributes
    assert attributes["http.response.status_code"] == 200
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == attributes["gen_ai.response.model"] == model
    assert (attributes["gen_ai.request.max_tokens"], attributes["gen_ai.request.temperature"]) == (5, 0.0)
    assert attributes["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
    assert attributes["gen_ai.usage.output_tokens"] == usage["completion_tokens"] == 5
    assert list(attributes["gen_ai.response.finish_reasons"]) == ["length"]
    assert attributes["gen_ai.response.id"] == chunks[0]["id"]
    assert attributes["gen_ai.response.time_to_first_chunk"] > 0
    assert attributes["http.request.header.x-request-id"] == ("trace-test-1",)

    children = {s.name: s for s in spans if s.parent is not None and s.parent.span_id == server.context.span_id}
    assert set(children) == {"validate", "tokenize", "queue", "prefill", "decode", "stream"}
    assert children["validate"].attributes["gen_ai.request.stream"] is True
    assert children["tokenize"].attributes["hfserve.prompt.tokens"] == usage["prompt_tokens"]
    assert children["prefill"].attributes["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
    assert children["decode"].attributes["gen_ai.usage.output_tokens"] == 5
    # one clock across processes: queue, then prefill, then decode, inside the request
    queue, prefill, decode = children["queue"], children["prefill"], children["decode"]
    assert server.start_time <= queue.start_time <= queue.end_time <= prefill.start_time
    assert prefill.end_time <= decode.start_time <= decode.end_time <= server.end_time
    assert all(s.status.status_code != StatusCode.ERROR for s in spans)

    # The engine steps that served this request, each its own span linked to the request's span.
    steps = [
        s
        for s in exporter.get_finished_spans()
        if s.name == "engine.step" and any(link.context.span_id == server.context.span_id for link in s.links)
    ]
    prefills = [s for s in steps if s.attributes["hfserve.step.prefill_requests"]]
    assert len(prefills) == 1 and prefills[0].attributes["hfserve.step.prefill_tokens"] == usage["prompt_tokens"]
    # the prefill samples the first token, and each decode step one more
    assert sum(s.attributes["hfserve.step.decode_tokens"] for s in steps) == 5 - 1
    assert all(s.attributes["hfserve.step.batch_size"] >= 1 for s in steps if s not in prefills)
    assert all(s.context.trace_id != server.context.trace_id for s in steps)

    finished = [json.loads(line) for line in capsys.readouterr().err.splitlines() if "request_finished" in line]
    [line] = [f for f in finished if f.get("http_request_id") == "trace-test-1"]
    assert line["trace_id"] == TRACE_ID and line["request_id"] == chunks[0]["id"]
    assert line["completion_tokens"] == 5 and line["ttft_ms"] > 0 and line["model"] == model
    assert "What is the capital" not in json.dumps(finished)  # no prompt text at info
    structlog.reset_defaults()


def test_a_rejected_request_has_its_error_on_the_span(traced: tuple[TestClient, InMemorySpanExporter, str]) -> None:
    client, exporter, _ = traced
    traceparent = "00-11111111111111111111111111111111-2222222222222222-01"
    response = client.post(
        "/v1/chat/completions", json={**CHAT, "model": "other/model"}, headers={"traceparent": traceparent}
    )
    assert response.status_code == 400
    spans = trace(exporter, int("1" * 32, 16))
    [server] = [s for s in spans if s.kind == SpanKind.SERVER]
    assert server.attributes["http.response.status_code"] == 400
    assert server.attributes["error.type"] == "model_not_allowed"
    assert server.status.status_code == StatusCode.UNSET  # a client's error is not the server's
    assert {s.name for s in spans} == {"POST /v1/chat/completions", "validate"}


def test_probes_and_scrapes_are_not_traced(traced: tuple[TestClient, InMemorySpanExporter, str]) -> None:
    client, exporter, _ = traced
    traceparent = "00-33333333333333333333333333333333-4444444444444444-01"
    for path in ("/health", "/ready", "/metrics"):
        assert client.get(path, headers={"traceparent": traceparent}).status_code == 200
    marker = "00-55555555555555555555555555555555-6666666666666666-01"
    client.post("/v1/chat/completions", json={**CHAT, "max_tokens": 1}, headers={"traceparent": marker})
    assert trace(exporter, int("5" * 32, 16))  # written after the probes' would have been
    assert [s for s in exporter.get_finished_spans() if s.context.trace_id == int("3" * 32, 16)] == []
