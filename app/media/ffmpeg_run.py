"""Running ffmpeg on untrusted bytes: from a private temporary file, with container and protocol
allow-lists (no playlists, no nested URLs), a time limit, and errors that name no server paths."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

import ffmpeg

from app.media.failures import MediaError

# Demuxers untrusted media may use: no hls/concat/image2/lavfi, which read other files or URLs.
DEMUXERS = "wav,mp3,flac,ogg,matroska,webm,mov,mp4,m4a,3gp,3g2,mj2,aac,avi,mpegts,aiff,caf,w64"
SAFE_INPUT = {"format_whitelist": DEMUXERS, "protocol_whitelist": "file"}


def have_ffmpeg() -> bool:
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def _require() -> None:
    if not have_ffmpeg():
        raise MediaError("ffmpeg is not installed on this server; it cannot decode audio or video.", "unavailable")


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
        stream.global_args("-nostdin", "-hide_banner", "-loglevel", "error"), pipe_stdout=True, pipe_stderr=True
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


def probe(path: str, timeout: float) -> dict[str, Any]:
    """ffprobe's streams and format, as JSON (ffmpeg-python's ``probe`` has no time limit)."""
    command = ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json"]
    command += ["-format_whitelist", DEMUXERS, "-protocol_whitelist", "file", path]
    try:
        result = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise MediaError(f"Reading the media took longer than {timeout:g} s.", "too_large") from exc
    if result.returncode != 0:
        raise MediaError(f"Could not read the media: {_message(result.stderr, path)}")
    try:
        return json.loads(result.stdout)
    except ValueError as exc:
        raise MediaError("Could not read the media.") from exc
