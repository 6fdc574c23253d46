"""A real server exporting its traces over OTLP/HTTP to a receiver on 127.0.0.1, decoded as a collector would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import OpenAI

from tests.fixtures.tiny_models import CHAT_MODEL_ID
from tests.support.otlp import OtlpReceiver, otlp_receiver
from tests.support.server import ServerProcess, run_server

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def exported(hf_home: Path, logs_dir: Path) -> Iterator[tuple[ServerProcess, OtlpReceiver]]:
    with otlp_receiver() as receiver:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_SERVICE_NAME": "hfserve-under-test",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        with run_server(hf_home, logs_dir, CHAT_MODEL_ID, env=env, wait="ready") as server:
            yield server, receiver


def test_a_streaming_chat_request_arrives_as_one_trace(exported: tuple[ServerProcess, OtlpReceiver]) -> None:
    server, receiver = exported
    client = OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
    stream = client.chat.completions.create(
        model=CHAT_MODEL_ID,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=6,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"},
    )
    chunks = list(stream)
    usage = chunks[-1].usage

    def ours(spans: list) -> list:
        return [(resource, span) for resource, span in spans if span.trace_id.hex() == TRACE_ID]

    spans = ours(receiver.wait_for(lambda all_spans: any(s.kind == 2 for _, s in ours(all_spans))))
    [(resource, root)] = [(r, s) for r, s in spans if s.kind == 2]  # SPAN_KIND_SERVER
    service = {a.key: a.value.string_value for a in resource.attributes}["service.name"]
    assert service == "hfserve-under-test"
    assert root.name == "POST /v1/chat/completions" and root.parent_span_id.hex() == PARENT_SPAN_ID
    attributes = {a.key: a.value for a in root.attributes}
    assert attributes["http.response.status_code"].int_value == 200
    assert attributes["gen_ai.request.model"].string_value == f"{CHAT_MODEL_ID}@main"
    assert attributes["gen_ai.request.max_tokens"].int_value == 6
    assert attributes["gen_ai.usage.input_tokens"].int_value == usage.prompt_tokens
    assert attributes["gen_ai.usage.output_tokens"].int_value == usage.completion_tokens
    assert attributes["gen_ai.response.id"].string_value == chunks[0].id
    assert attributes["gen_ai.response.time_to_first_chunk"].double_value > 0
    children = {s.name: s for _, s in spans if s.parent_span_id == root.span_id}
    assert set(children) == {"validate", "tokenize", "queue", "prefill", "decode", "stream"}
    assert children["queue"].end_time_unix_nano <= children["prefill"].start_time_unix_nano
    assert children["prefill"].end_time_unix_nano <= children["decode"].start_time_unix_nano

    # engine steps: spans of their own traces, linked to the request
    steps = receiver.wait_for(
        lambda all_spans: [s for _, s in all_spans if s.name == "engine.step" and any(
            link.span_id == root.span_id for link in s.links)]
    )  # fmt: skip
    linked = [s for _, s in steps if s.name == "engine.step" and any(link.span_id == root.span_id for link in s.links)]
    prefill_tokens = [a.value.int_value for s in linked for a in s.attributes if a.key == "hfserve.step.prefill_tokens"]
    assert usage.prompt_tokens in prefill_tokens
    assert all(s.trace_id.hex() != TRACE_ID for s in linked)
    assert all(path == "/v1/traces" for path in receiver.paths)

    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    [finished] = [line for line in lines if line["event"] == "request_finished" and line.get("trace_id") == TRACE_ID]
    assert finished["request_id"] == chunks[0].id and finished["completion_tokens"] == usage.completion_tokens
    assert finished["ttft_ms"] > 0 and finished["http_request_id"]
