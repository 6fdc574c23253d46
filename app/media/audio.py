"""Audio decoding through ffmpeg to mono float32 at the sample rate a processor wants, and splitting
long audio into windows a speech model can take."""

from __future__ import annotations

import math

import ffmpeg
import numpy as np

from app.media.failures import MediaError
from app.media.ffmpeg_run import SAFE_INPUT, run, staged

# Formats ``input_audio.format`` may name (OpenAI's wav/mp3 plus what ffmpeg reads safely).
AUDIO_FORMATS = frozenset({"wav", "mp3", "flac", "ogg", "opus", "webm", "m4a", "mp4", "aac", "mpga", "mpeg", "oga"})


def sniff_audio_format(data: bytes) -> str | None:
    """The container the bytes start with, when recognisable."""
    head = data[:16]
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    if head[4:8] == b"ftyp":
        return "mp4"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    return None


def check_format(declared: str | None, data: bytes) -> str | None:
    """The declared format (validated) or the sniffed one; ffmpeg probes the content either way."""
    if declared is None:
        return sniff_audio_format(data)
    fmt = declared.lower().lstrip(".")
    if fmt not in AUDIO_FORMATS:
        raise MediaError(f"Unsupported audio format `{declared}`; use one of {', '.join(sorted(AUDIO_FORMATS))}.")
    return fmt


def decode_audio(data: bytes, *, sample_rate: int, max_seconds: float, timeout: float = 60.0) -> np.ndarray:
    """The first audio stream of ``data`` as mono float32 samples at ``sample_rate``.

    Refuses audio longer than ``max_seconds`` (decoding stops just past it, so memory stays bounded).
    """
    if max_seconds <= 0:
        raise MediaError("The request has no audio time left (--max-audio-seconds).", "too_large")
    with staged(data) as path:
        return decode_audio_file(path, sample_rate=sample_rate, max_seconds=max_seconds, timeout=timeout)


def decode_audio_file(path: str, *, sample_rate: int, max_seconds: float, timeout: float) -> np.ndarray:
    graph = ffmpeg.input(path, **SAFE_INPUT).output(
        "pipe:", format="f32le", acodec="pcm_f32le", ac=1, ar=sample_rate, t=f"{max_seconds + 0.5:.3f}", map="0:a:0"
    )
    raw = run(graph, path, timeout)
    samples = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    if samples.size == 0:
        raise MediaError("The media holds no audio.")
    if samples.size > math.ceil(max_seconds * sample_rate) + sample_rate // 100:
        raise MediaError(
            f"The audio is longer than the {max_seconds:g} s left for this request (--max-audio-seconds).", "too_large"
        )
    return samples


def split_audio(samples: np.ndarray, sample_rate: int, window_s: float) -> list[tuple[float, np.ndarray]]:
    """Windows of at most ``window_s`` seconds, each cut at the quietest 50 ms in its last fifth, so words
    are rarely split. Returns ``(start seconds, samples)`` pairs covering the whole input in order."""
    window = int(window_s * sample_rate)
    if samples.size <= window:
        return [(0.0, samples)]
    frame = max(1, sample_rate // 20)
    pieces, start = [], 0
    while samples.size - start > window:
        search_from = start + int(window * 0.8)
        tail = samples[search_from : start + window]
        frames = tail[: (tail.size // frame) * frame].reshape(-1, frame)
        cut = start + window
        if frames.size:
            quietest = int(np.argmin(np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))))
            cut = search_from + quietest * frame + frame // 2
        pieces.append((start / sample_rate, samples[start:cut]))
        start = cut
    pieces.append((start / sample_rate, samples[start:]))
    return pieces
