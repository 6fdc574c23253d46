"""The HTTP-process side of speech-to-text over the tiny Whisper (and a non-Whisper audio model): features,
the decoder prompt, and generated ids back to text and segments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from transformers import AutoConfig, GenerationConfig

from app.engine.client.processors import load_processor
from app.engine.client.speech_frontend import SpeechFrontend
from app.errors import InvalidRequest, UnsupportedParameter
from tests.fixtures.media_models import AUDIO_MODEL_ID, SPEECH_MODEL_ID
from tests.support.models import snapshot_path

SECOND = np.zeros(16000, dtype=np.float32)


@pytest.fixture(scope="module")
def whisper(media_hf_home: Path) -> SpeechFrontend:
    where = str(snapshot_path(media_hf_home, SPEECH_MODEL_ID))
    generation = GenerationConfig.from_pretrained(where)
    return SpeechFrontend(load_processor(where), AutoConfig.from_pretrained(where), generation)


@pytest.fixture(scope="module")
def other(media_hf_home: Path) -> SpeechFrontend:
    where = str(snapshot_path(media_hf_home, AUDIO_MODEL_ID))
    return SpeechFrontend(load_processor(where), AutoConfig.from_pretrained(where), None)


def test_plain_transcription_prompt(whisper: SpeechFrontend) -> None:
    assert whisper.is_whisper and whisper.sampling_rate == 16000 and whisper.window_s > 0
    prepared = whisper.prepare(SECOND, language=None, prompt=None, timestamps=False)
    assert prepared.inputs["input_features"].shape[0] == 1
    assert prepared.prompt_ids == [whisper._generation.decoder_start_token_id]
    assert prepared.options == {"task": "transcribe", "return_timestamps": False}
    assert prepared.max_tokens == whisper._max_target - 1 - 4


def test_language_by_name_or_code_and_prompt_text_before_the_start(whisper: SpeechFrontend) -> None:
    start = whisper._generation.decoder_start_token_id
    prepared = whisper.prepare(SECOND, language="English", prompt="hello there", timestamps=True)
    assert prepared.options["language"] == "en" and prepared.options["return_timestamps"] is True
    assert prepared.prompt_ids == [*prepared.options["prompt_ids"], start]
    assert whisper.prepare(SECOND, language=" EN ", prompt=None, timestamps=False).options["language"] == "en"
    assert whisper.language_name("en") == "english" and whisper.language_name(None) is None


def test_a_long_prompt_keeps_its_end_and_leaves_room(whisper: SpeechFrontend) -> None:
    prepared = whisper.prepare(SECOND, language=None, prompt="word " * 500 + "last", timestamps=False)
    kept = prepared.options["prompt_ids"]
    assert len(kept) == whisper._max_target // 2 - 1
    assert whisper.decode(kept).strip().endswith("last")
    assert prepared.max_tokens == whisper._max_target - len(prepared.prompt_ids) - 4 >= 1


def test_an_unknown_language_is_a_400(whisper: SpeechFrontend) -> None:
    with pytest.raises(InvalidRequest) as caught:
        whisper.prepare(SECOND, language="klingon", prompt=None, timestamps=False)
    assert caught.value.param == "language"


def test_segments_follow_predicted_timestamps_within_the_window(whisper: SpeechFrontend) -> None:
    tokenizer = whisper._tokenizer
    stamps = tokenizer.convert_tokens_to_ids(["<|0.00|>", "<|1.00|>", "<|2.00|>"])
    hello, world = (tokenizer.encode(word, add_special_tokens=False) for word in (" hello", " world"))
    ids = [stamps[0], *hello, stamps[1], stamps[1], *world, stamps[2]]
    segments = whisper.segments(ids, 10.0, 5.0)
    assert [text for _, _, text in segments] == [" hello", " world"]
    assert all(10.0 <= start <= end <= 15.0 for start, end, _ in segments)
    assert segments[0][1] <= segments[1][0]


def test_without_timestamps_the_window_is_one_segment(whisper: SpeechFrontend) -> None:
    ids = whisper._tokenizer.encode("hello world", add_special_tokens=False)
    assert whisper.decode(ids) == "hello world"
    assert whisper.segments(ids, 10.0, 5.0) == [(10.0, 15.0, "hello world")]


def test_other_models_take_neither_language_nor_prompt(other: SpeechFrontend) -> None:
    assert not other.is_whisper
    prepared = other.prepare(SECOND, language=None, prompt=None, timestamps=True)
    assert (prepared.prompt_ids, prepared.options) == ([0], {})
    with pytest.raises(UnsupportedParameter) as caught:
        other.prepare(SECOND, language="en", prompt=None, timestamps=False)
    assert caught.value.param == "language"
    with pytest.raises(UnsupportedParameter) as caught:
        other.prepare(SECOND, language=None, prompt="context", timestamps=False)
    assert caught.value.param == "prompt"


def test_the_translate_task_is_whispers_where_it_has_one(whisper: SpeechFrontend, other: SpeechFrontend) -> None:
    assert whisper.translates and not other.translates
    prepared = whisper.prepare(SECOND, language=None, prompt="Paris", timestamps=False, task="translate")
    assert prepared.options["task"] == "translate" and prepared.options["prompt_ids"]
