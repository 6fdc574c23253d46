"""Media made in the test: PIL images, ffmpeg-generated audio and video (the server's own ffmpeg: the
system's, else imageio-ffmpeg's), espeak-ng speech, and a loopback HTTP server to fetch them from."""

from __future__ import annotations

import base64
import io
import os
import shutil
import subprocess
import threading
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from app.media.ffmpeg_run import ffmpeg_exe

HAVE_FFMPEG = ffmpeg_exe() is not None
HAVE_ESPEAK = shutil.which("espeak-ng") is not None
requires_ffmpeg = pytest.mark.skipif(
    not HAVE_FFMPEG, reason="no ffmpeg: none on PATH, and imageio-ffmpeg has no binary for this platform"
)
requires_espeak = pytest.mark.skipif(
    not HAVE_ESPEAK, reason="espeak-ng is not installed: run scripts/test-deps.sh (as root) or install espeak-ng"
)


def png(color: tuple[int, int, int] = (255, 0, 0), size: tuple[int, int] = (40, 30)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def data_url(data: bytes, media_type: str) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def ffmpeg(*args: str) -> None:
    command = [str(ffmpeg_exe()), "-hide_banner", "-loglevel", "error", "-y", *args]
    subprocess.run(command, check=True, timeout=60)


def pcm_wav(seconds: float, rate: int = 16000, frequency: float = 440.0) -> bytes:
    """A 16-bit PCM WAV sine tone written by Python itself (no ffmpeg involved)."""
    import numpy as np

    t = np.arange(int(seconds * rate)) / rate
    pcm = (np.sin(2 * np.pi * frequency * t) * 0.5 * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


def path_without_system_ffmpeg() -> str:
    """``PATH`` less every directory that holds an ffmpeg or ffprobe, as on a pip-only install."""
    kept = [
        folder
        for folder in os.environ.get("PATH", "").split(os.pathsep)
        if folder and not any(os.path.exists(os.path.join(folder, name)) for name in ("ffmpeg", "ffprobe"))
    ]
    return os.pathsep.join(kept)


def sine(path: Path, seconds: float = 1.0, frequency: int = 440) -> bytes:
    """A sine tone in the container ``path``'s suffix names (wav, mp3, flac, ogg, webm)."""
    codec = {".ogg": ["-c:a", "libvorbis"], ".webm": ["-c:a", "libopus"]}.get(path.suffix, [])
    ffmpeg("-f", "lavfi", "-i", f"sine=frequency={frequency}:duration={seconds}", *codec, str(path))
    return path.read_bytes()


def speech(path: Path, text: str = "hello world, this is a test") -> bytes:
    """Spoken ``text`` (espeak-ng), as wav or, by suffix, converted by ffmpeg."""
    wav = path.with_suffix(".speech.wav")
    subprocess.run(["espeak-ng", "-w", str(wav), text], check=True, timeout=60)
    if path.suffix == ".wav":
        wav.rename(path)
    else:
        codec = {".webm": ["-c:a", "libopus"], ".ogg": ["-c:a", "libvorbis"]}.get(path.suffix, [])
        ffmpeg("-i", str(wav), *codec, str(path))
    return path.read_bytes()


def video(path: Path, seconds: float = 2.0, *, audio: bool = True, size: str = "64x48", rate: int = 10) -> bytes:
    """A test-pattern mp4 (H.264) with, optionally, a sine audio track (AAC)."""
    inputs = ["-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}:duration={seconds}"]
    if audio:
        inputs += ["-f", "lavfi", "-i", f"sine=frequency=300:duration={seconds}"]
    codecs = ["-c:v", "libx264", "-pix_fmt", "yuv420p"] + (["-c:a", "aac", "-shortest"] if audio else [])
    ffmpeg(*inputs, *codecs, str(path))
    return path.read_bytes()


Route = Callable[[BaseHTTPRequestHandler], None]


class MediaServer:
    """A loopback HTTP server whose routes are set by the test; counts the requests it answered."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits.append(self.path)
                route = server.routes.get(self.path.split("?")[0])
                if route is None:
                    self.send_error(404)
                else:
                    route(self)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def file(self, path: str, body: bytes, content_type: str = "application/octet-stream") -> str:
        def send(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(200)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)

        self.routes[path] = send
        return self.url + path

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        def send(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(status)
            handler.send_header("Location", location)
            handler.send_header("Content-Length", "0")
            handler.end_headers()

        self.routes[path] = send
        return self.url + path

    def serve(self) -> None:
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@contextmanager
def media_server() -> Iterator[MediaServer]:
    server = MediaServer()
    server.serve()
    try:
        yield server
    finally:
        server.close()
