"""Schemathesis against the served /openapi.json of real servers: every documented operation but the pooling
ones on one pinned to the tiny chat model, the audio routes again on one pinned to the tiny Whisper with a
real WAV as the file, and the embedding, rerank and score routes on one serving the tiny embedding model and
cross-encoder; a bounded number of generated requests each with a fixed seed, and no answer may be a 5xx,
an error body outside the route's shape (Anthropic's on the Messages API, else OpenAI's), or a body or
status the document does not describe."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.api.error_handler import is_anthropic
from app.protocol.anthropic_objects import AnthropicError
from app.protocol.common import ErrorResponse
from tests.fixtures.media_models import SPEECH_MODEL_ID
from tests.fixtures.pooling_models import CROSS_ENCODER_MODEL_ID, EMBEDDING_MODEL_ID
from tests.fixtures.tiny_models import CHAT_MODEL_ID
from tests.support.media import pcm_wav
from tests.support.server import ServerProcess, run_server

EXAMPLES = 40  # per operation and mode: both runs (server starts included) stay within about two minutes
AUDIO_EXAMPLES = 25  # each one a real transcription or translation
POOLING_EXAMPLES = 25  # each one a real embedding or cross-encoder pass
SEED = 20261206
AUDIO = pcm_wav(0.5)
AUDIO_ROUTES = re.compile(r"^/v1/audio/")
POOLING_ROUTES = re.compile(r"^(/v1|/v2)?/(embeddings|rerank|score)$")


@pytest.fixture(scope="module")
def fuzzed(hf_home: Path, logs_dir: Path) -> Iterator[ServerProcess]:
    args = (CHAT_MODEL_ID, "--max-model-len", "128", "--media-fetch-timeout", "2")
    with run_server(hf_home, logs_dir, *args, wait="ready") as proc:
        yield proc


@pytest.fixture(scope="module")
def fuzzed_speech(media_hf_home: Path, logs_dir: Path) -> Iterator[ServerProcess]:
    with run_server(media_hf_home, logs_dir, SPEECH_MODEL_ID, wait="ready") as proc:
        yield proc


@pytest.fixture(scope="module")
def fuzzed_pooling(pooling_hf_home: Path, logs_dir: Path) -> Iterator[ServerProcess]:
    with run_server(pooling_hf_home, logs_dir, "--model-timeout", "-1") as proc:
        yield proc


@schemathesis.check
def error_in_the_routes_shape(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx and 5xx body is exactly ``{"error": {"message", "type", "param", "code"}}`` (OpenAI's shape),
    or on the Messages API's routes ``{"type": "error", "error": {"type", "message"}}`` (Anthropic's)."""
    if response.status_code < 400:
        return None
    shape = AnthropicError if is_anthropic(case.operation.path) else ErrorResponse
    shape.model_validate_json(response.content)
    return True


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    error_in_the_routes_shape,
]


def _served(case: Any, model: str, *, always_named: bool) -> None:
    """Requests that name a model name the served one, so that they reach past the model check into the
    endpoint (on a server that is not pinned to a model, ``always_named``, every request names it), and an
    uploaded file is real audio, so that it reaches the model."""
    if not isinstance(case.body, dict):
        return
    if "model" in case.body or always_named:
        case.body["model"] = model
    if "file" in case.body:
        case.body["file"] = AUDIO


def _fuzz(
    operation: Any, mode: GenerationMode, server: ServerProcess, model: str, examples: int, *, always_named: bool
) -> None:
    @seed(SEED)
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        _served(case, model, always_named=always_named)
        case.call_and_validate(base_url=server.url, timeout=60, checks=CHECKS)

    run()


def _fuzz_all(
    server: ServerProcess,
    model: Callable[[str], str],
    examples: int,
    routes: Callable[[str], bool],
    *,
    always_named: bool = False,
) -> int:
    """Every operation whose path ``routes`` takes, requests naming ``model(path)``: generated valid requests,
    and invalid ones where there is a body. (Schemathesis's pytest loader cannot take a fixture's schema
    under this pytest, so the operations are walked here, each under its own seeded Hypothesis run; failures
    are gathered, then reported together.)"""
    api = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [op for result in api.get_all_operations() if routes((op := result.ok()).path)]
    failures: list[str] = []
    for operation in operations:
        takes_body = "requestBody" in operation.definition.raw  # nothing else has a value that can be wrong
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if takes_body else (GenerationMode.POSITIVE,):
            try:
                _fuzz(operation, mode, server, model(operation.path), examples, always_named=always_named)
            except (Exception, BaseExceptionGroup) as exc:  # each operation's failures, reported together
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
    return len(operations)


def test_no_request_breaks_the_server(fuzzed: ServerProcess) -> None:
    fuzzed_routes = _fuzz_all(fuzzed, lambda _: CHAT_MODEL_ID, EXAMPLES, lambda path: not POOLING_ROUTES.match(path))
    assert fuzzed_routes >= 17


def test_no_audio_request_breaks_the_speech_server(fuzzed_speech: ServerProcess) -> None:
    assert _fuzz_all(fuzzed_speech, lambda _: SPEECH_MODEL_ID, AUDIO_EXAMPLES, AUDIO_ROUTES.match) == 2


def test_no_pooling_request_breaks_the_pooling_server(fuzzed_pooling: ServerProcess) -> None:
    """Embeddings name the embedding model, rerank and score the cross-encoder (both served at once)."""

    def model(path: str) -> str:
        return EMBEDDING_MODEL_ID if path.endswith("/embeddings") else CROSS_ENCODER_MODEL_ID

    assert _fuzz_all(fuzzed_pooling, model, POOLING_EXAMPLES, POOLING_ROUTES.match, always_named=True) == 6
