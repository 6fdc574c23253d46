"""Running ffmpeg on untrusted bytes: from a private temporary file, with container and protocol
allow-lists (no playlists, no nested URLs), a time limit, and errors that name no server paths.

The system's ffmpeg runs where it is on ``PATH``; otherwise the static build the ``imageio-ffmpeg`` wheel
bundles, so a pip-only install decodes audio and video too. That build has no ffprobe: without a system
ffprobe, ``probe`` reads the same facts from ffmpeg's own description of the input.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

import ffmpeg
import imageio_ffmpeg

from app.media.failures import MediaError

# Demuxers untrusted media may use: no hls/concat/image2/lavfi, which read other files or URLs.
DEMUXERS = "wav,mp3,flac,ogg,matroska,webm,mov,mp4,m4a,3gp,3g2,mj2,aac,avi,mpegts,aiff,caf,w64"
SAFE_INPUT = {"format_whitelist": DEMUXERS, "protocol_whitelist": "file"}


_DURATION = re.compile(r"^\s*Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)", re.MULTILINE)
_STREAM = re.compile(r"^\s*Stream #\d+:\d+\S*: (Video|Audio): (.*)$", re.MULTILINE)
_SIZE = re.compile(r"\b(\d{1,5})x(\d{1,5})\b")
_RATE = re.compile(r"\b(\d+(?:\.\d+)?)(k?) (?:fps|tbr)\b")


def ffmpeg_exe() -> str | None:
    """The system's ffmpeg where it is on ``PATH``, else the one bundled with imageio-ffmpeg."""
    system = shutil.which("ffmpeg")
    if system is not None:
        return system
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:  # a platform the wheel has no binary for
        return None


def have_ffmpeg() -> bool:
    return ffmpeg_exe() is not None


def _require() -> str:
    exe = ffmpeg_exe()
    if exe is None:
        raise MediaError("ffmpeg is not installed on this server; it cannot decode audio or video.", "unavailable")
    return exe


@contextlib.contextmanager
def staged(data: bytes, suffix: str = "") -> Iterator[str]:
    """The bytes in a private temporary file (containers like mp4 need a seekable input)."""
    _require()
    fd, path = tempfile.mkstemp(prefix="hfserve-media-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _message(stderr: bytes, path: str) -> str:
    lines = [line for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    detail = lines[-1] if lines else "unknown error"
    return detail.replace(path, "input").strip()[:300]


def run(stream: Any, path: str, timeout: float) -> bytes:
    """Run an ffmpeg-python graph that writes raw output to stdout; returns the output."""
    process = ffmpeg.run_async(
        stream.global_args("-nostdin", "-hide_banner", "-loglevel", "error"),
        cmd=_require(),
        pipe_stdout=True,
        pipe_stderr=True,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        process.kill()
        process.communicate()
        raise MediaError(f"Decoding the media took longer than {timeout:g} s.", "too_large") from exc
    if process.returncode != 0:
        raise MediaError(f"Could not decode the media: {_message(err, path)}")
    return out


def _read(command: list[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise MediaError(f"Reading the media took longer than {timeout:g} s.", "too_large") from exc


def probe(path: str, timeout: float) -> dict[str, Any]:
    """The streams and format of the media, in ffprobe's JSON shape (ffmpeg-python's ``probe`` has no time
    limit); without ffprobe, from the input description ffmpeg prints."""
    safe = ["-format_whitelist", DEMUXERS, "-protocol_whitelist", "file"]
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        result = _read([_require(), "-hide_banner", "-nostdin", *safe, "-i", path], timeout)
        return _described(result.stderr.decode(errors="replace"), path)
    result = _read([ffprobe, "-v", "error", "-show_format", "-show_streams", "-of", "json", *safe, path], timeout)
    if result.returncode != 0:
        raise MediaError(f"Could not read the media: {_message(result.stderr, path)}")
    try:
        return json.loads(result.stdout)
    except ValueError as exc:
        raise MediaError("Could not read the media.") from exc


def _described(text: str, path: str) -> dict[str, Any]:
    """ffmpeg's ``Input #0`` description (its duration and one line per stream) as ffprobe's fields."""
    if "Input #0" not in text:
        raise MediaError(f"Could not read the media: {_message(text.encode(), path)}")
    streams: list[dict[str, Any]] = []
    for kind, detail in _STREAM.findall(text):
        stream: dict[str, Any] = {"codec_type": kind.lower()}
        if kind == "Video" and (size := _SIZE.search(detail)):
            stream.update(width=int(size.group(1)), height=int(size.group(2)))
            if rate := _RATE.search(detail):
                fps = float(rate.group(1)) * (1000 if rate.group(2) else 1)
                stream["avg_frame_rate"] = f"{fps:g}/1"
        streams.append(stream)
    fields: dict[str, Any] = {}
    if duration := _DURATION.search(text):
        hours, minutes, seconds = duration.groups()
        fields["duration"] = str(int(hours) * 3600 + int(minutes) * 60 + float(seconds))
    return {"streams": streams, "format": fields}
