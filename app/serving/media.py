"""A request's media, fetched and decoded off the event loop, in parallel, within the request's limits:
each ``MediaRef`` becomes a PIL image, float32 audio samples or video frames (``MediaInputs``)."""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog

from app.engine.types import MediaInputs, ModelInfo
from app.errors import HfServeError, InvalidRequest, PayloadTooLarge
from app.media.audio import check_format, decode_audio
from app.media.failures import MediaError
from app.media.fetch import load_url
from app.media.image import decode_image
from app.media.limits import Budget, FetchPolicy, MediaLimits
from app.media.video import VideoRequest, decode_video
from app.observability.telemetry import media_span

log = structlog.get_logger(__name__)
Kind = Literal["image", "audio", "video"]


@dataclass(frozen=True, slots=True)
class MediaConfig:
    """Server-wide media settings (from the command line)."""

    policy: FetchPolicy = field(default_factory=FetchPolicy)
    limits: MediaLimits = field(default_factory=MediaLimits)


@dataclass(frozen=True, slots=True)
class MediaRef:
    """One media content part of a request, as recognised (``chat_messages.media_ref``); ``param`` names it
    in errors."""

    kind: Kind
    part_type: str
    param: str
    url: str | None = None
    data: str | None = None  # base64 (input_audio)
    format: str | None = None
    num_frames: int | None = None
    fps: float | None = None


def _http_error(exc: MediaError, param: str) -> HfServeError:
    if exc.kind == "too_large":
        return PayloadTooLarge(exc.message, param=param)
    if exc.kind == "unavailable":
        return HfServeError(exc.message, param=param, code="media_decoder_unavailable")
    return InvalidRequest(exc.message, param=param, code="invalid_media" if exc.kind == "invalid" else "media_refused")


def _raw_bytes(ref: MediaRef, config: MediaConfig, budget: Budget) -> bytes:
    """fetch: the encoded bytes of one part, counted against the request's byte budget."""
    source = "inline" if ref.data is not None else _scheme(ref.url)
    with media_span("fetch", **{"hfserve.media.kind": ref.kind, "hfserve.media.source": source}) as span:
        if ref.data is not None:
            if len(ref.data) * 3 // 4 > budget.bytes_left + 3:
                raise MediaError("The audio is larger than the bytes left for this request.", "too_large")
            try:
                data = base64.b64decode(ref.data, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise MediaError("input_audio.data is not valid base64.") from exc
        else:
            assert ref.url is not None
            data = load_url(ref.url, config.policy, budget.bytes_left).data
        budget.take_bytes(len(data))
        if span is not None:
            span.set_attribute("hfserve.media.bytes", len(data))
    return data


def _scheme(url: str | None) -> str:
    """Only the scheme of a media URL goes into a span, never its host, path or query."""
    scheme = (url or "").partition(":")[0].lower()
    return scheme if scheme in ("http", "https", "data", "file") else "other"


def load_one(ref: MediaRef, info: ModelInfo, config: MediaConfig, budget: Budget) -> Any:
    """fetch + decode one part (blocking): a PIL image, float32 audio samples, or a ``DecodedVideo``."""
    data = _raw_bytes(ref, config, budget)
    with media_span("decode", **{"hfserve.media.kind": ref.kind}) as span:
        decoded = _decode(ref, data, info, config, budget)
        if span is not None and ref.kind == "audio":
            span.set_attribute("hfserve.media.seconds", round(decoded.size / _rate(info), 3))
        return decoded


def _rate(info: ModelInfo) -> int:
    """The sampling rate audio is decoded at: the model's feature extractor's."""
    return info.audio_sampling_rate or 16000


def _decode(ref: MediaRef, data: bytes, info: ModelInfo, config: MediaConfig, budget: Budget) -> Any:
    limits = config.limits
    if ref.kind == "image":
        return decode_image(data, max_pixels=limits.max_image_pixels)
    rate = _rate(info)
    if ref.kind == "audio":
        check_format(ref.format, data)
        samples = decode_audio(data, sample_rate=rate, max_seconds=budget.seconds_left, timeout=limits.decode_timeout)
        budget.take_seconds(samples.size / rate)
        return samples
    request = VideoRequest(
        num_frames=ref.num_frames,
        fps=ref.fps or (None if ref.num_frames else limits.video_fps),
        max_frames=limits.max_video_frames,
        max_frame_pixels=limits.max_frame_pixels,
        audio_rate=rate if "audio" in info.modalities else None,
        max_audio_seconds=budget.seconds_left,
        timeout=limits.decode_timeout,
    )
    video = decode_video(data, request, default_frames=limits.video_frames)
    if video.audio is not None:
        budget.take_seconds(video.audio.size / rate)
    return video


async def load_media(refs: Sequence[MediaRef], info: ModelInfo, config: MediaConfig) -> MediaInputs:
    """Fetch and decode every part off the event loop, in parallel; the first failure names its part."""
    budget = Budget(config.limits)

    async def one(ref: MediaRef) -> Any:
        try:
            return await asyncio.to_thread(load_one, ref, info, config, budget)
        except MediaError as exc:
            log.info("media_rejected", param=ref.param, kind=exc.kind, reason=exc.message)
            raise _http_error(exc, ref.param) from exc

    tasks = [asyncio.ensure_future(one(ref)) for ref in refs]
    try:
        loaded = await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
    media = MediaInputs()
    for ref, value in zip(refs, loaded, strict=True):
        if ref.kind == "image":
            media.images.append(value)
        elif ref.kind == "audio":
            media.audios.append(value)
        else:
            media.videos.append(value.frames)
            if value.audio is not None:
                media.video_audios.append(value.audio)
    return media
