"""Media content parts of chat and responses requests: recognised, checked against what the model takes,
then fetched and decoded off the event loop, in parallel, within the request's limits.

Content parts accepted (OpenAI's, plus the ``audio_url``/``video_url`` extensions):
``{"type": "image_url", "image_url": {"url"}}``, ``{"type": "input_image", "image_url": "..."}``,
``{"type": "input_audio", "input_audio": {"data": base64, "format"}}``, ``{"type": "audio_url",
"audio_url": {"url"}}`` and ``{"type": "video_url", "video_url": {"url", "num_frames", "fps"}}``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import structlog

from app.engine.types import MediaInputs, MediaRenderer, ModelInfo, ServingModel
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
_KINDS: dict[str, Kind] = {
    "image_url": "image",
    "input_image": "image",
    "image": "image",
    "input_audio": "audio",
    "audio_url": "audio",
    "video_url": "video",
}


@dataclass(frozen=True, slots=True)
class MediaConfig:
    """Server-wide media settings (from the command line)."""

    policy: FetchPolicy = field(default_factory=FetchPolicy)
    limits: MediaLimits = field(default_factory=MediaLimits)


@dataclass(frozen=True, slots=True)
class MediaRef:
    """One media content part, as found in the request; ``param`` names it in errors."""

    kind: Kind
    part_type: str
    param: str
    url: str | None = None
    data: str | None = None  # base64 (input_audio)
    format: str | None = None
    num_frames: int | None = None
    fps: float | None = None


def _url_of(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("url"), str):
        return value["url"]
    return None


def _positive(value: Any, name: str, param: str) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise InvalidRequest(f"{name} must be a positive number.", param=f"{param}.{name}")
    return value


def media_ref(part: Mapping[str, Any], param: str) -> MediaRef | None:
    """The media a content part refers to, or None when the part is not a media part."""
    part_type = str(part.get("type"))
    kind = _KINDS.get(part_type)
    if kind is None:
        return None
    if part_type == "input_audio":
        audio = part.get("input_audio")
        if not isinstance(audio, Mapping) or not isinstance(audio.get("data"), str):
            raise InvalidRequest("input_audio needs `data` (base64 audio).", param=f"{param}.input_audio.data")
        fmt = audio.get("format")
        return MediaRef(kind, part_type, param, data=audio["data"], format=fmt if isinstance(fmt, str) else None)
    if part_type == "input_image" and part.get("file_id") and not part.get("image_url"):
        raise InvalidRequest("input_image by file_id is not supported; send image_url.", param=f"{param}.file_id")
    value = part.get(part_type if part_type != "input_image" else "image_url")
    url = _url_of(value)
    if not url:
        raise InvalidRequest(f"Content of type `{part_type}` needs a URL.", param=param)
    options = value if isinstance(value, Mapping) else {}
    num_frames = _positive(options.get("num_frames"), "num_frames", f"{param}.{part_type}")
    fps = _positive(options.get("fps"), "fps", f"{param}.{part_type}")
    return MediaRef(kind, part_type, param, url=url, num_frames=num_frames, fps=fps)


def check_supported(refs: Sequence[MediaRef], info: ModelInfo, limits: MediaLimits) -> None:
    """A model that cannot take a modality answers 400 naming the part: never a silent drop."""
    for ref in refs:
        if ref.kind not in info.modalities:
            takes = ", ".join(sorted(info.modalities))
            raise InvalidRequest(
                f"The model `{info.name}` does not take {ref.kind} input (it takes {takes}); content of type "
                f"`{ref.part_type}` is not supported.",
                param=ref.param,
            )
    if len(refs) > limits.max_parts:
        raise InvalidRequest(
            f"At most {limits.max_parts} media parts per request (--max-media-per-request).", param=refs[-1].param
        )


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


def media_part(part: Any, param: str) -> MediaRef | None:
    """The media of a content part (a wire model or a dict); a part may carry a ``MediaRef`` already."""
    ref = getattr(part, "media", None) if not isinstance(part, Mapping) else part.get("media")
    if isinstance(ref, MediaRef):
        return ref
    data = part if isinstance(part, Mapping) else part.model_dump(exclude_none=True)
    return media_ref(data, param)


def take_media(messages: list[dict[str, Any]]) -> list[MediaRef]:
    """The media parts of template messages, in prompt order; each part keeps only its ``type``."""
    refs = []
    for message in messages:
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for part in content:
            ref = part.pop("media", None) if isinstance(part, dict) else None
            if isinstance(ref, MediaRef):
                refs.append(ref)
    return refs


async def encode_prompt(
    model: ServingModel,
    messages: list[dict[str, Any]],
    config: MediaConfig,
    *,
    tools: list[dict[str, Any]] | None,
    template_kwargs: dict[str, Any],
) -> tuple[list[int], Mapping[str, Any] | None]:
    """Prompt ids (and media inputs) for a chat: media are checked, fetched and decoded first."""
    refs = take_media(messages)
    if not refs:
        ids = await asyncio.to_thread(
            model.renderer.encode_chat, messages, tools=tools, template_kwargs=template_kwargs
        )
        return ids, None
    check_supported(refs, model.info, config.limits)
    media = await load_media(refs, model.info, config)
    renderer = cast(MediaRenderer, model.renderer)
    encoded = await asyncio.to_thread(
        renderer.encode_chat_media, messages, media, tools=tools, template_kwargs=template_kwargs
    )
    return encoded.ids, encoded.inputs
