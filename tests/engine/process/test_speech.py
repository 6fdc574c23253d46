"""The speech-to-text engine over the tiny Whisper: windows streamed as token events and finished with the
reason, the language heard and the timing; aborts and failures end a window, never the engine."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from transformers import AutoConfig, AutoModelForSpeechSeq2Seq, GenerationConfig

from app.engine.client.processors import load_processor
from app.engine.client.speech_frontend import SpeechFrontend
from app.engine.messages import Events
from app.engine.process.outbox import Outbox
from app.engine.process.speech import SpeechEngine
from app.engine.types import EngineEvent, FinishEvent, GenerationRequest, SamplingParams, TokenEvent
from app.errors import InvalidRequest
from tests.fixtures.media_models import SPEECH_MODEL_ID, english_only_copy
from tests.support.models import snapshot_path

WINDOW = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1


@pytest.fixture(scope="module")
def speech(media_hf_home: Path) -> Iterator[tuple[SpeechEngine, SpeechFrontend, queue.Queue[Events]]]:
    where = str(snapshot_path(media_hf_home, SPEECH_MODEL_ID))
    processor = load_processor(where)
    frontend = SpeechFrontend(processor, AutoConfig.from_pretrained(where), GenerationConfig.from_pretrained(where))
    delivered: queue.Queue[Events] = queue.Queue()
    model = AutoModelForSpeechSeq2Seq.from_pretrained(where).eval()
    engine = SpeechEngine(model, processor.tokenizer, name="tiny-whisper", outbox=Outbox(delivered.put, 0.0))
    yield engine, frontend, delivered
    engine.shutdown()


def request(
    frontend: SpeechFrontend, request_id: str, max_tokens: int, temperature: float = 0.0, **prepare: Any
) -> GenerationRequest:
    prepared = frontend.prepare(WINDOW, **{"language": None, "prompt": None, "timestamps": False, **prepare})
    params = SamplingParams(max_tokens=min(max_tokens, prepared.max_tokens), temperature=temperature)
    return GenerationRequest(request_id, prepared.prompt_ids, params, prepared.inputs, prepared.options)


def events_of(delivered: queue.Queue[Events], request_id: str) -> list[EngineEvent]:
    """Every event of one request, up to its finish; the message with the finish says nothing runs."""
    out: list[EngineEvent] = []
    while not (out and isinstance(out[-1], FinishEvent)):
        message = delivered.get(timeout=60)
        for rid, events in message.batch:
            out += events if rid == request_id else []
    assert message.running == 0, "a finished window must leave the engine's running count at 0"
    return out


def test_a_window_streams_its_tokens_then_finishes(speech: Any) -> None:
    engine, frontend, delivered = speech
    engine.submit(request(frontend, "w1", 6, language="en"))
    *tokens, finish = events_of(delivered, "w1")
    assert all(isinstance(event, TokenEvent) and len(event.token_ids) == 1 for event in tokens)
    assert isinstance(finish, FinishEvent) and finish.reason in ("stop", "length")
    assert finish.completion_tokens == len(tokens) <= 6
    assert finish.reason == "stop" or len(tokens) == 6
    assert "".join(event.text for event in tokens) + finish.text == engine.decode([e.token_id for e in tokens])
    assert all(event.logprobs[0].logprob <= 0.0 for event in tokens)
    assert finish.detail == {"language": "en"}
    timing = finish.timing
    assert timing is not None and 0 < timing.arrived <= timing.scheduled <= timing.finished


def test_greedy_windows_are_repeatable(speech: Any) -> None:
    engine, frontend, delivered = speech
    engine.submit(request(frontend, "a", 5, language="en"))
    first = events_of(delivered, "a")
    engine.submit(request(frontend, "b", 5, language="en"))
    second = events_of(delivered, "b")
    assert [e.token_ids for e in first[:-1]] == [e.token_ids for e in second[:-1]]


def test_a_window_aborted_while_waiting_never_starts(speech: Any) -> None:
    engine, frontend, delivered = speech
    engine.abort("gone")
    engine.submit(request(frontend, "gone", 5))
    (finish,) = events_of(delivered, "gone")
    assert isinstance(finish, FinishEvent) and finish.reason == "abort" and finish.completion_tokens == 0
    assert finish.timing is not None and finish.timing.scheduled == 0


def test_a_failing_window_is_an_error_and_the_engine_goes_on(speech: Any) -> None:
    engine, frontend, delivered = speech
    broken = request(frontend, "bad", 5)
    engine.submit(GenerationRequest("bad", broken.prompt_ids, broken.params, {"input_features": np.zeros((1, 2, 3))}))
    finish = events_of(delivered, "bad")[-1]
    assert isinstance(finish, FinishEvent) and finish.reason == "error" and finish.error
    engine.submit(request(frontend, "after", 3))
    assert events_of(delivered, "after")[-1].reason in ("stop", "length")


@pytest.fixture(scope="module")
def english_only(media_hf_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return english_only_copy(snapshot_path(media_hf_home, SPEECH_MODEL_ID), tmp_path_factory.mktemp("en") / "model")


def test_an_english_only_checkpoint_transcribes_and_takes_only_english(english_only: Path) -> None:
    where = str(english_only)
    processor = load_processor(where)
    frontend = SpeechFrontend(processor, AutoConfig.from_pretrained(where), GenerationConfig.from_pretrained(where))
    assert frontend.english_only and not frontend.translates and frontend.language_name(None) == "english"
    with pytest.raises(InvalidRequest, match="English only") as refused:
        frontend.prepare(WINDOW, language="fr", prompt=None, timestamps=False)
    assert refused.value.param == "language"
    delivered: queue.Queue[Events] = queue.Queue()
    model = AutoModelForSpeechSeq2Seq.from_pretrained(where).eval()
    engine = SpeechEngine(model, processor.tokenizer, name="tiny-whisper-en", outbox=Outbox(delivered.put, 0.0))
    try:
        for request_id, language in (("en-1", None), ("en-2", "en"), ("en-3", "English")):
            engine.submit(request(frontend, request_id, 5, language=language))
            *tokens, finish = events_of(delivered, request_id)
            assert isinstance(finish, FinishEvent) and finish.reason in ("stop", "length"), finish.error
            assert finish.completion_tokens == len(tokens)
    finally:
        engine.shutdown()


def test_a_temperature_too_small_to_divide_by_decodes_greedily(speech: Any) -> None:
    engine, frontend, delivered = speech
    engine.submit(request(frontend, "greedy", 5, language="en"))
    engine.submit(request(frontend, "tiny", 5, temperature=2.4e-46, language="en"))
    greedy, tiny = events_of(delivered, "greedy"), events_of(delivered, "tiny")
    assert isinstance(tiny[-1], FinishEvent) and tiny[-1].reason in ("stop", "length"), tiny[-1].error
    assert [e.token_ids for e in tiny[:-1]] == [e.token_ids for e in greedy[:-1]]
