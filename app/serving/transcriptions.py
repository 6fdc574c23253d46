"""Speech to text: uploaded audio → decoded, split into the model's windows → one engine request per
window (all admitted up front, transcribed in order) → text, segments, or a stream of text deltas.
Transcriptions and translations (Whisper's translate task: English text out) share this one path."""

from __future__ import annotations

import asyncio
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import cast

import structlog

from app.engine.types import (
    EventStream,
    FinishEvent,
    GenerationRequest,
    SamplingParams,
    ServingModel,
    SpeechFrontend,
    SpeechTask,
    TokenEvent,
)
from app.errors import HfServeError, InvalidRequest, PayloadTooLarge, UnsupportedParameter
from app.media.audio import decode_audio, split_audio
from app.media.failures import MediaError
from app.models.registry import ModelRegistry
from app.observability.telemetry import media_span
from app.protocol.audio import (
    DurationUsage,
    Transcription,
    TranscriptionRequest,
    TranscriptionSegment,
    TranscriptionVerbose,
    TranscriptTextDelta,
    TranscriptTextDone,
    TranslationRequest,
)
from app.serving.media import MediaConfig
from app.serving.outcome import raise_for_finish

log = structlog.get_logger(__name__)
SPEECH_TASK = "speech-to-text"


@dataclass(slots=True)
class _Window:
    start: float
    duration: float
    events: EventStream
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    finish: FinishEvent | None = None


@dataclass(slots=True)
class PreparedTranscription:
    id: str
    request: TranslationRequest
    task: SpeechTask
    frontend: SpeechFrontend
    windows: list[_Window]
    duration: float
    started: float


def _task(req: TranslationRequest) -> SpeechTask:
    return "transcribe" if isinstance(req, TranscriptionRequest) else "translate"


def _language(req: TranslationRequest) -> str | None:
    """The spoken language a transcription names; a translation's is detected."""
    return req.language if isinstance(req, TranscriptionRequest) else None


def _check_request(req: TranslationRequest) -> None:
    if not isinstance(req, TranscriptionRequest):
        return
    if "word" in req.timestamp_granularities:
        raise UnsupportedParameter("Word timestamps are not supported; use segment.", param="timestamp_granularities")
    if req.timestamp_granularities and req.response_format != "verbose_json":
        raise InvalidRequest("timestamp_granularities needs response_format verbose_json.", param="response_format")
    if req.stream and req.response_format not in ("json", "text"):
        raise InvalidRequest("Streaming supports response_format json and text.", param="response_format")


def _media_error(exc: MediaError) -> HfServeError:
    if exc.kind == "too_large":
        return PayloadTooLarge(exc.message, param="file")
    if exc.kind == "unavailable":
        return HfServeError(exc.message, param="file", code="media_decoder_unavailable")
    return InvalidRequest(exc.message, param="file", code="invalid_media")


class TranscriptionService:
    def __init__(self, registry: ModelRegistry, media: MediaConfig | None = None) -> None:
        self._registry = registry
        self._media = media or MediaConfig()

    async def prepare(self, req: TranslationRequest, audio: bytes) -> PreparedTranscription:
        """Validate, decode and admit every window; raises before any response is sent. A
        ``TranscriptionRequest`` transcribes, a plain ``TranslationRequest`` translates."""
        _check_request(req)
        task = _task(req)
        if not audio:
            raise InvalidRequest("The uploaded file is empty.", param="file")
        if len(audio) > self._media.limits.max_bytes:
            raise PayloadTooLarge(f"The file is larger than {self._media.limits.max_bytes} bytes.", param="file")
        ref = self._registry.resolve(req.model)
        async with self._registry.lease(ref) as model:
            if model.info.task != SPEECH_TASK:
                raise InvalidRequest(f"`{model.info.name}` is not a speech-to-text model.", param="model")
            frontend = cast(SpeechFrontend, model.renderer)
            if task == "translate" and not frontend.translates:
                raise InvalidRequest(
                    f"`{model.info.name}` cannot translate: it has no translate task (an English-only or a "
                    "non-Whisper model); use /v1/audio/transcriptions.",
                    param="model",
                )
            rate = model.info.audio_sampling_rate or 16000
            samples = await self._decode(audio, rate)
            pieces = split_audio(samples, rate, model.info.audio_window_s or 30.0)
            request_id = f"trsc-{uuid.uuid4().hex}"
            windows = await self._admit(model, frontend, req, request_id, pieces, rate)
        duration = samples.size / rate
        return PreparedTranscription(request_id, req, task, frontend, windows, duration, time.monotonic())

    async def _decode(self, audio: bytes, rate: int) -> Sequence[float]:
        limits = self._media.limits
        try:
            with media_span("decode", **{"hfserve.media.kind": "audio", "hfserve.media.bytes": len(audio)}) as span:
                samples = await asyncio.to_thread(
                    decode_audio,
                    audio,
                    sample_rate=rate,
                    max_seconds=limits.max_audio_seconds,
                    timeout=limits.decode_timeout,
                )
                if span is not None:
                    span.set_attribute("hfserve.media.seconds", round(samples.size / rate, 3))
                return samples
        except MediaError as exc:
            raise _media_error(exc) from exc

    async def _admit(
        self,
        model: ServingModel,
        frontend: SpeechFrontend,
        req: TranslationRequest,
        request_id: str,
        pieces: list[tuple[float, Sequence[float]]],
        rate: int,
    ) -> list[_Window]:
        timestamps = req.response_format in ("verbose_json", "srt", "vtt")
        windows: list[_Window] = []
        try:
            for i, (start, samples) in enumerate(pieces):
                speech = await asyncio.to_thread(
                    frontend.prepare,
                    samples,
                    language=_language(req),
                    prompt=req.prompt,
                    timestamps=timestamps,
                    task=_task(req),
                )
                params = SamplingParams(max_tokens=speech.max_tokens, temperature=req.temperature, seed=req.seed)
                request = GenerationRequest(
                    f"{request_id}-{i}", speech.prompt_ids, params, speech.inputs, speech.options
                )
                windows.append(_Window(start, len(samples) / rate, model.engine.generate(request)))
        except BaseException:
            for window in windows:
                window.events.close()
            raise
        return windows

    # -- results --------------------------------------------------------------------------------

    async def _run(self, p: PreparedTranscription) -> AsyncIterator[str]:
        """Every window's text deltas, in order; the windows keep their tokens for segments."""
        try:
            for window in p.windows:
                async for event in window.events:
                    if event.text:
                        window.text.append(event.text)
                        yield event.text
                    if isinstance(event, TokenEvent):
                        window.tokens.extend(event.token_ids)
                        window.logprobs.extend(lp.logprob for lp in event.logprobs)
                    else:
                        window.finish = event
                        raise_for_finish(event)
        finally:
            for window in p.windows:
                window.events.close()
            log.info(
                "transcription_finished",
                request_id=p.id,
                windows=len(p.windows),
                audio_seconds=round(p.duration, 2),
                duration_ms=round((time.monotonic() - p.started) * 1000, 1),
            )

    async def stream(self, p: PreparedTranscription) -> AsyncIterator[TranscriptTextDelta | TranscriptTextDone]:
        parts: list[str] = []
        async for delta in self._run(p):
            parts.append(delta)
            yield TranscriptTextDelta(delta=delta)
        yield TranscriptTextDone(text="".join(parts).strip())

    async def complete(self, p: PreparedTranscription) -> Transcription | TranscriptionVerbose:
        parts = [delta async for delta in self._run(p)]
        text = "".join(parts).strip()
        usage = DurationUsage(seconds=round(p.duration, 3))
        if p.request.response_format in ("json", "text"):
            return Transcription(text=text, usage=usage)
        language = "en" if p.task == "translate" else _language(p.request)
        language = language or next(
            (w.finish.detail.get("language") for w in p.windows if w.finish and w.finish.detail), None
        )
        return TranscriptionVerbose(
            task=p.task,
            language=p.frontend.language_name(language) or "unknown",
            duration=round(p.duration, 3),
            text=text,
            segments=self._segments(p),
            usage=usage,
        )

    def _segments(self, p: PreparedTranscription) -> list[TranscriptionSegment]:
        segments: list[TranscriptionSegment] = []
        rate = 100  # Whisper's ``seek`` counts 10 ms mel frames
        for window in p.windows:
            avg = sum(window.logprobs) / len(window.logprobs) if window.logprobs else 0.0
            for start, end, text in p.frontend.segments(window.tokens, window.start, window.duration):
                encoded = text.encode()
                ratio = len(encoded) / len(zlib.compress(encoded)) if encoded else 0.0
                segments.append(
                    TranscriptionSegment(
                        id=len(segments),
                        seek=round(window.start * rate),
                        start=start,
                        end=end,
                        text=text,
                        tokens=window.tokens,
                        temperature=p.request.temperature,
                        avg_logprob=round(avg, 6),
                        compression_ratio=round(ratio, 6),
                        no_speech_prob=0.0,
                    )
                )
        return segments
