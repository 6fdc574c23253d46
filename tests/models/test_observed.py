"""The observed model's spans for requests that carry media: an image chat (media fetch and decode, then the
processor) and a transcription (audio decode, then the speech model's feature extraction), each captured in
memory from an app over real engine processes running the tiny LLaVA and Whisper."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from litestar.testing import TestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from app.main import create_app
from app.observability.telemetry import Telemetry
from app.settings import Settings
from tests.fixtures.media_models import AUDIO_MODEL_ID, SPEECH_MODEL_ID, VISION_MODEL_ID
from tests.support.media import b64, data_url, png, requires_ffmpeg, sine
from tests.support.models import snapshot_path


@contextmanager
def _traced_app(model: Path) -> Iterator[tuple[TestClient, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    app = create_app(Settings(model=str(model), model_timeout=-1), telemetry=Telemetry(span_exporter=exporter))
    with TestClient(app, timeout=120) as client:
        deadline = time.monotonic() + 120
        while client.get("/ready").status_code != 200:
            assert time.monotonic() < deadline, "the model did not load"
            time.sleep(0.1)
        yield client, exporter


@pytest.fixture(scope="module")
def vision(media_hf_home: Path) -> Iterator[tuple[TestClient, InMemorySpanExporter, str]]:
    model = snapshot_path(media_hf_home, VISION_MODEL_ID)
    with _traced_app(model) as (client, exporter):
        yield client, exporter, str(model)


def _request_spans(exporter: InMemorySpanExporter, route: str) -> tuple[ReadableSpan, dict[str, ReadableSpan]]:
    """The last server span of ``route`` and its children by name (written just after the last byte)."""
    deadline = time.monotonic() + 10
    while True:
        spans = exporter.get_finished_spans()
        servers = [s for s in spans if s.kind == SpanKind.SERVER and s.name == f"POST {route}"]
        if servers or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    server = servers[-1]
    children = {s.name: s for s in spans if s.parent is not None and s.parent.span_id == server.context.span_id}
    return server, children


def test_an_image_chat_has_media_fetch_decode_and_tokenize_spans(
    vision: tuple[TestClient, InMemorySpanExporter, str],
) -> None:
    client, exporter, model = vision
    image = data_url(png(), "image/png")
    content = [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": image}}]
    body = {"model": model, "messages": [{"role": "user", "content": content}]}
    response = client.post("/v1/chat/completions", json={**body, "max_tokens": 2})
    assert response.status_code == 200, response.text
    usage = response.json()["usage"]

    server, children = _request_spans(exporter, "/v1/chat/completions")
    assert {"validate", "media.fetch", "media.decode", "tokenize", "queue", "prefill", "decode"} <= set(children)
    fetch, decode = children["media.fetch"], children["media.decode"]
    assert fetch.attributes["hfserve.media.kind"] == decode.attributes["hfserve.media.kind"] == "image"
    assert fetch.attributes["hfserve.media.source"] == "data"  # the scheme only, never the URL
    assert fetch.attributes["hfserve.media.bytes"] == len(png())
    assert fetch.end_time <= decode.start_time <= decode.end_time <= children["tokenize"].start_time
    tokenize = children["tokenize"]
    assert list(tokenize.attributes["hfserve.media.kinds"]) == ["image"]
    assert tokenize.attributes["hfserve.prompt.tokens"] == usage["prompt_tokens"]
    assert server.attributes["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]


def test_refused_media_is_a_client_error_on_its_span(vision: tuple[TestClient, InMemorySpanExporter, str]) -> None:
    client, exporter, model = vision
    broken = data_url(b"this is not an image", "image/png")
    content = [{"type": "image_url", "image_url": {"url": broken}}]
    body = {"model": model, "messages": [{"role": "user", "content": content}]}
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400, response.text

    server, children = _request_spans(exporter, "/v1/chat/completions")
    decode = children["media.decode"]
    assert decode.attributes["error.type"] == "media_invalid"
    assert decode.status.status_code != StatusCode.ERROR  # the client's mistake, not the server's
    assert server.attributes["http.response.status_code"] == 400


@requires_ffmpeg
def test_a_transcription_has_decode_and_feature_spans(media_hf_home: Path, tmp_path: Path) -> None:
    audio = sine(tmp_path / "tone.wav", seconds=1.0)
    model = snapshot_path(media_hf_home, SPEECH_MODEL_ID)
    with _traced_app(model) as (client, exporter):
        files = {"file": ("tone.wav", audio, "audio/wav")}
        response = client.post("/v1/audio/transcriptions", data={"model": str(model)}, files=files)
        assert response.status_code == 200, response.text
        server, children = _request_spans(exporter, "/v1/audio/transcriptions")
    decode = children["media.decode"]
    assert decode.attributes["hfserve.media.kind"] == "audio"
    assert decode.attributes["hfserve.media.bytes"] == len(audio)
    assert decode.attributes["hfserve.media.seconds"] == pytest.approx(1.0, abs=0.05)
    tokenize = children["tokenize"]
    assert tokenize.attributes["hfserve.prompt.kind"] == "audio_features"
    assert tokenize.attributes["hfserve.prompt.tokens"] >= 1
    assert decode.end_time <= tokenize.start_time
    queue, prefill, generated = children["queue"], children["prefill"], children["decode"]  # engine timing
    assert queue.end_time <= prefill.start_time <= prefill.end_time <= generated.start_time
    assert generated.end_time <= server.end_time
    assert generated.attributes["gen_ai.usage.output_tokens"] == server.attributes["gen_ai.usage.output_tokens"]
    assert all(s.status.status_code != StatusCode.ERROR for s in children.values())
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["gen_ai.usage.output_tokens"] >= 1


@requires_ffmpeg
def test_an_audio_chat_has_inline_fetch_and_timed_decode_spans(media_hf_home: Path, tmp_path: Path) -> None:
    audio = sine(tmp_path / "tone.wav", seconds=1.0)
    model = snapshot_path(media_hf_home, AUDIO_MODEL_ID)
    content = [{"type": "input_audio", "input_audio": {"data": b64(audio), "format": "wav"}}]
    body = {"model": str(model), "messages": [{"role": "user", "content": content}], "max_tokens": 2}
    with _traced_app(model) as (client, exporter):
        response = client.post("/v1/chat/completions", json=body)
        assert response.status_code == 200, response.text
        _server, children = _request_spans(exporter, "/v1/chat/completions")
    fetch, decode = children["media.fetch"], children["media.decode"]
    assert fetch.attributes["hfserve.media.source"] == "inline"
    assert fetch.attributes["hfserve.media.bytes"] == len(audio)
    assert decode.attributes["hfserve.media.kind"] == "audio"
    assert decode.attributes["hfserve.media.seconds"] == pytest.approx(1.0, abs=0.05)
    assert list(children["tokenize"].attributes["hfserve.media.kinds"]) == ["audio"]
