"""Speech-to-text wire schemas (OpenAI ``/v1/audio/transcriptions`` and ``/v1/audio/translations``)."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from app.protocol.common import WireModel, WireRequest

ResponseFormat = Literal["json", "text", "srt", "verbose_json", "vtt"]


class TranslationRequest(WireRequest):
    """The form fields besides ``file`` (multipart/form-data, as OpenAI takes them) of a translation: speech
    in any language the model knows, English text out. Every form value is text, so these fields are read
    from strings (lax), unlike JSON bodies."""

    model_config = ConfigDict(extra="allow", strict=False)

    model: str | None = None
    prompt: str | None = Field(None, max_length=4096)
    response_format: ResponseFormat = "json"
    temperature: float = Field(0.0, ge=0.0, le=1.0)
    seed: int | None = Field(None, ge=-(2**63), lt=2**63)


class TranscriptionRequest(TranslationRequest):
    """A transcription's form fields: a translation's, and the spoken language, timestamps and streaming."""

    language: str | None = Field(None, max_length=32)
    timestamp_granularities: list[Literal["segment", "word"]] = Field(default_factory=list)
    stream: bool = False


class DurationUsage(WireModel):
    type: Literal["duration"] = "duration"
    seconds: float


class Transcription(WireModel):
    text: str
    usage: DurationUsage | None = None


class TranscriptionSegment(WireModel):
    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float


class TranscriptionVerbose(WireModel):
    task: Literal["transcribe", "translate"] = "transcribe"
    language: str
    duration: float
    text: str
    segments: list[TranscriptionSegment]
    usage: DurationUsage | None = None


class TranscriptTextDelta(WireModel):
    type: Literal["transcript.text.delta"] = "transcript.text.delta"
    delta: str


class TranscriptTextDone(WireModel):
    type: Literal["transcript.text.done"] = "transcript.text.done"
    text: str
