"""Speech to text through the service over the tiny Whisper: request checks, audio split into the model's
windows, and the text, segments and stream the windows add up to."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from app.engine.options import LoadOptions
from app.errors import InvalidRequest, PayloadTooLarge, UnsupportedParameter
from app.media.limits import MediaLimits
from app.models.registry import ModelRegistry
from app.protocol.audio import (
    Transcription,
    TranscriptionRequest,
    TranscriptionVerbose,
    TranscriptTextDone,
    TranslationRequest,
)
from app.serving.media import MediaConfig
from app.serving.transcriptions import TranscriptionService
from tests.fixtures.media_models import SPEECH_MODEL_ID, english_only_copy
from tests.support.media import requires_ffmpeg, sine
from tests.support.models import snapshot_path

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def whisper(media_hf_home: Path) -> str:
    return str(snapshot_path(media_hf_home, SPEECH_MODEL_ID))


@pytest.fixture(scope="module")
def local_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory requests may load local models from (``--allowed-local-model-path``), for the tests' copies."""
    return tmp_path_factory.mktemp("local-models")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def service(whisper: str, local_models: Path) -> AsyncIterator[TranscriptionService]:
    allowed = [str(Path(whisper).parent), str(local_models)]
    registry = ModelRegistry(LoadOptions(), idle_timeout=-1, allowed_local_paths=allowed)
    await registry.start()
    yield TranscriptionService(registry, MediaConfig(limits=MediaLimits(max_bytes=2_000_000)))
    await registry.close()


def ask(model: str, **fields: Any) -> TranscriptionRequest:
    return TranscriptionRequest(model=model, **fields)


@pytest.mark.parametrize(
    ("fields", "error", "param"),
    [
        ({"timestamp_granularities": ["word"], "response_format": "verbose_json"}, UnsupportedParameter, None),
        ({"timestamp_granularities": ["segment"]}, InvalidRequest, "response_format"),
        ({"stream": True, "response_format": "srt"}, InvalidRequest, "response_format"),
    ],
)
async def test_requests_the_service_cannot_honour(
    service: TranscriptionService, fields: dict, error: type, param: str | None
) -> None:
    with pytest.raises(error) as caught:
        await service.prepare(ask("any/model", **fields), b"RIFF")
    assert caught.value.param == (param or "timestamp_granularities")


async def test_empty_and_oversized_files_are_refused_before_loading(service: TranscriptionService) -> None:
    with pytest.raises(InvalidRequest, match="empty") as caught:
        await service.prepare(ask("any/model"), b"")
    assert caught.value.param == "file"
    with pytest.raises(PayloadTooLarge) as caught:
        await service.prepare(ask("any/model"), bytes(2_000_001))
    assert caught.value.param == "file"


@requires_ffmpeg
async def test_undecodable_audio_is_a_400_on_the_file(service: TranscriptionService, whisper: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await service.prepare(ask(whisper), b"RIFF....WAVEnot audio")
    assert (caught.value.param, caught.value.code) == ("file", "invalid_media")


@requires_ffmpeg
async def test_long_audio_is_split_into_the_model_windows(
    service: TranscriptionService, whisper: str, tmp_path: Path
) -> None:
    audio = sine(tmp_path / "tone.wav", seconds=12.0)
    prepared = await service.prepare(ask(whisper, response_format="verbose_json", language="en"), audio)
    starts = [window.start for window in prepared.windows]
    assert len(starts) >= 3 and starts[0] == 0.0 and starts == sorted(starts)  # the tiny Whisper hears 5 s
    assert all(0 < window.duration <= 5.0 for window in prepared.windows)
    assert sum(window.duration for window in prepared.windows) == pytest.approx(prepared.duration)
    result = await service.complete(prepared)
    assert isinstance(result, TranscriptionVerbose)
    assert result.language == "english" and result.duration == pytest.approx(12.0, abs=0.1)
    assert result.usage is not None and result.usage.seconds == result.duration
    assert result.segments and [s.id for s in result.segments] == list(range(len(result.segments)))
    assert {s.seek for s in result.segments} <= {round(start * 100) for start in starts}
    assert all(s.start <= s.end and s.avg_logprob <= 0.0 for s in result.segments)


@requires_ffmpeg
async def test_json_text_and_the_stream_agree(service: TranscriptionService, whisper: str, tmp_path: Path) -> None:
    audio = sine(tmp_path / "tone.wav", seconds=2.0)
    plain = await service.complete(await service.prepare(ask(whisper, language="en"), audio))
    assert isinstance(plain, Transcription) and plain.usage is not None
    events = [event async for event in service.stream(await service.prepare(ask(whisper, language="en"), audio))]
    done = events[-1]
    assert isinstance(done, TranscriptTextDone)
    assert done.text == "".join(event.delta for event in events[:-1]).strip() == plain.text


@requires_ffmpeg
async def test_a_translation_runs_the_translate_task_into_english(
    service: TranscriptionService, whisper: str, tmp_path: Path
) -> None:
    audio = sine(tmp_path / "tone.wav", seconds=2.0)
    request = TranslationRequest(model=whisper, response_format="verbose_json", prompt="Bonjour")
    prepared = await service.prepare(request, audio)
    assert prepared.task == "translate"
    assert all(window.events for window in prepared.windows)
    result = await service.complete(prepared)
    assert isinstance(result, TranscriptionVerbose)
    assert (result.task, result.language) == ("translate", "english") and result.segments
    plain = await service.complete(await service.prepare(TranslationRequest(model=whisper), audio))
    assert isinstance(plain, Transcription) and plain.usage is not None


@requires_ffmpeg
async def test_an_english_only_model_cannot_translate(
    service: TranscriptionService, whisper: str, local_models: Path, tmp_path: Path
) -> None:
    english_only = english_only_copy(Path(whisper), local_models / "whisper-en")
    audio = sine(tmp_path / "tone.wav", seconds=1.0)
    with pytest.raises(InvalidRequest, match="cannot translate") as caught:
        await service.prepare(TranslationRequest(model=str(english_only)), audio)
    assert caught.value.param == "model"
    transcribed = await service.complete(await service.prepare(ask(str(english_only), language="en"), audio))
    assert isinstance(transcribed, Transcription)
