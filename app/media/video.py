"""Video decoding to sampled RGB frames (plus, on request, the audio track).

torchcodec decodes where it imports (it needs a matching torch build); ffmpeg does otherwise. Frames
are sampled evenly (``num_frames``) or at ``fps``, at most ``max_frames`` of them, and scaled down to at
most ``max_frame_pixels`` each, so a video costs bounded memory whatever its resolution or length.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import ffmpeg
import numpy as np

from app.media.audio import decode_audio_file
from app.media.failures import MediaError
from app.media.ffmpeg_run import SAFE_INPUT, probe, run, staged


@dataclass(frozen=True, slots=True)
class VideoRequest:
    num_frames: int | None = None
    fps: float | None = None
    max_frames: int = 64
    max_frame_pixels: int = 1280 * 720
    audio_rate: int | None = None  # also decode the audio track at this rate (models that take audio)
    max_audio_seconds: float = 0.0
    timeout: float = 60.0


@dataclass(frozen=True, slots=True)
class DecodedVideo:
    frames: np.ndarray  # [frames, height, width, 3] uint8 RGB
    timestamps: tuple[float, ...]  # seconds of each frame
    duration: float  # seconds
    source_fps: float
    audio: np.ndarray | None  # mono float32 at ``audio_rate``, when asked for and present


def _fraction(text: str | None) -> float:
    try:
        num, _, den = (text or "0/1").partition("/")
        return float(num) / float(den or 1)
    except (ValueError, ZeroDivisionError):
        return 0.0


def _frame_count(duration: float, req: VideoRequest, default_frames: int) -> tuple[int, float]:
    """How many frames to take, and the sampling rate that spreads them over the video."""
    if req.fps:
        count = max(1, min(req.max_frames, math.floor(duration * req.fps) or 1))
        return count, req.fps
    count = max(1, min(req.max_frames, req.num_frames or default_frames))
    return count, count / duration


def scaled_size(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    """Even dimensions (what most codecs and processors like), aspect kept, at most ``max_pixels``."""
    scale = min(1.0, math.sqrt(max_pixels / max(1, width * height)))
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def decode_video(data: bytes, req: VideoRequest, *, default_frames: int = 8) -> DecodedVideo:
    with staged(data) as path:
        info = probe(path, req.timeout)
        streams = info.get("streams", [])
        video = next((s for s in streams if s.get("codec_type") == "video"), None)
        if video is None:
            raise MediaError("The media holds no video stream.")
        duration = float(video.get("duration") or info.get("format", {}).get("duration") or 0.0)
        if duration <= 0:
            raise MediaError("The video's duration is unknown; it cannot be sampled.")
        count, rate = _frame_count(duration, req, default_frames)
        frames = _decoder()(path, video, count, rate, req)
        audio = None
        if req.audio_rate and any(s.get("codec_type") == "audio" for s in streams):
            audio = decode_audio_file(
                path, sample_rate=req.audio_rate, max_seconds=req.max_audio_seconds, timeout=req.timeout
            )
    timestamps = tuple(round(i / rate, 3) for i in range(frames.shape[0]))
    return DecodedVideo(frames, timestamps, duration, _fraction(video.get("avg_frame_rate")), audio)


def _ffmpeg_frames(path: str, video: dict[str, Any], count: int, rate: float, req: VideoRequest) -> np.ndarray:
    width, height = scaled_size(int(video["width"]), int(video["height"]), req.max_frame_pixels)
    graph = (
        ffmpeg.input(path, **SAFE_INPUT)
        .video.filter("fps", fps=f"{rate:.6f}")
        .filter("scale", width, height)
        .output("pipe:", format="rawvideo", pix_fmt="rgb24", vframes=count)
    )
    raw = run(graph, path, req.timeout)
    frame_bytes = width * height * 3
    if len(raw) < frame_bytes:
        raise MediaError("The video has no decodable frames.")
    return np.frombuffer(raw[: len(raw) // frame_bytes * frame_bytes], np.uint8).reshape(-1, height, width, 3)


def _torchcodec_frames(path: str, video: dict[str, Any], count: int, rate: float, req: VideoRequest) -> np.ndarray:
    from torchcodec.decoders import VideoDecoder  # only where it imports, see _decoder

    if int(video["width"]) * int(video["height"]) > req.max_frame_pixels:
        return _ffmpeg_frames(path, video, count, rate, req)  # ffmpeg scales while decoding
    decoder = VideoDecoder(path)
    duration = float(decoder.metadata.duration_seconds or count / rate)
    seconds = [min(i / rate, max(0.0, duration - 1e-3)) for i in range(count)]
    batch = decoder.get_frames_played_at(seconds=seconds)
    return batch.data.permute(0, 2, 3, 1).contiguous().numpy()


@functools.cache
def _decoder() -> Any:
    try:
        import torchcodec.decoders  # noqa: F401
    except Exception:  # not installed, or a wheel built for another torch/CUDA: fall back to ffmpeg
        return _ffmpeg_frames
    return _torchcodec_frames
