"""Where media may come from and how much of it one request may bring."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from app.media.failures import MediaError


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """Remote fetches: http(s) only, public addresses only unless allowed here."""

    timeout: float = 10.0  # seconds for a whole fetch (connect, redirects, body)
    connect_timeout: float = 5.0
    max_redirects: int = 5
    allowed_hosts: tuple[str, ...] = ()  # host names, IP addresses or CIDR networks exempt from the address check
    allow_private: bool = False  # fetch from loopback, private and link-local addresses too
    local_path: str | None = None  # file:// URLs below this directory (off when None)


@dataclass(frozen=True, slots=True)
class MediaLimits:
    """Per request: one request cannot make the server hold more than this."""

    max_parts: int = 16  # media content parts
    max_bytes: int = 32 * 1024 * 1024  # encoded bytes of all its media together
    max_image_pixels: int = 25_000_000  # per image (and the decoder's bomb check)
    max_audio_seconds: float = 1200.0  # all its audio together
    max_video_frames: int = 64  # per video
    video_frames: int = 8  # frames sampled from a video when the request names neither count nor fps
    video_fps: float | None = None  # or sample at this rate (capped at max_video_frames)
    max_frame_pixels: int = 1280 * 720  # video frames are scaled down to at most this
    decode_timeout: float = 60.0  # seconds one ffmpeg run may take


class Budget:
    """What is left of one request's byte and audio allowances; shared by its parallel fetches."""

    def __init__(self, limits: MediaLimits) -> None:
        self._lock = threading.Lock()
        self._bytes = limits.max_bytes
        self._seconds = limits.max_audio_seconds
        self.limits = limits

    @property
    def bytes_left(self) -> int:
        with self._lock:
            return self._bytes

    @property
    def seconds_left(self) -> float:
        with self._lock:
            return self._seconds

    def take_bytes(self, count: int) -> None:
        with self._lock:
            if count > self._bytes:
                raise MediaError(
                    f"The request's media exceed {self.limits.max_bytes} bytes in all (--max-media-bytes).",
                    "too_large",
                )
            self._bytes -= count

    def take_seconds(self, seconds: float) -> None:
        with self._lock:
            if seconds > self._seconds + 1e-6:
                raise MediaError(
                    f"The request's audio is longer than {self.limits.max_audio_seconds:g} s in all "
                    "(--max-audio-seconds).",
                    "too_large",
                )
            self._seconds -= seconds
