"""Running ffmpeg on untrusted bytes: only allow-listed containers and protocols are read; the system's
ffmpeg where there is one, else the binary imageio-ffmpeg bundles (and no ffprobe), which decodes the same."""

from __future__ import annotations

import shutil
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from app.media.audio import decode_audio
from app.media.failures import MediaError
from app.media.ffmpeg_run import ffmpeg_exe, probe, staged
from app.media.video import VideoRequest, decode_video
from tests.support.media import path_without_system_ffmpeg, pcm_wav, requires_ffmpeg, sine, video


@requires_ffmpeg
def test_playlists_cannot_make_ffmpeg_read_other_files_or_urls(tmp_path: Path) -> None:
    playlist = b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:///etc/hostname\n#EXT-X-ENDLIST\n"
    with pytest.raises(MediaError):
        decode_audio(playlist, sample_rate=16000, max_seconds=10)
    concat = f"ffconcat version 1.0\nfile '{tmp_path}/x.wav'\n".encode()
    sine(tmp_path / "x.wav")
    with pytest.raises(MediaError):
        decode_audio(concat, sample_rate=16000, max_seconds=10)


@pytest.fixture
def no_system_ffmpeg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", path_without_system_ffmpeg())
    assert shutil.which("ffmpeg") is None and shutil.which("ffprobe") is None


def test_the_system_ffmpeg_runs_where_it_is_on_the_path() -> None:
    system = shutil.which("ffmpeg")
    assert ffmpeg_exe() == (system or imageio_ffmpeg.get_ffmpeg_exe())


def test_without_a_system_ffmpeg_the_bundled_one_decodes_audio(no_system_ffmpeg: None, tmp_path: Path) -> None:
    assert ffmpeg_exe() == imageio_ffmpeg.get_ffmpeg_exe()
    samples = decode_audio(pcm_wav(1.0, rate=22050), sample_rate=16000, max_seconds=10)
    assert samples.dtype == np.float32 and abs(samples.size - 16000) <= 160
    spectrum = np.abs(np.fft.rfft(samples[:16000]))
    assert abs(int(np.argmax(spectrum)) - 440) <= 2
    for suffix in (".mp3", ".ogg", ".webm"):
        assert decode_audio(sine(tmp_path / f"tone{suffix}"), sample_rate=16000, max_seconds=10).size > 15000
    with pytest.raises(MediaError, match="decode"):
        decode_audio(b"RIFF....WAVEnot really", sample_rate=16000, max_seconds=10)


@requires_ffmpeg
def test_without_ffprobe_ffmpeg_describes_the_video(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = video(tmp_path / "clip.mp4", seconds=2.0, size="64x48", rate=10)
    request = VideoRequest(num_frames=4, audio_rate=16000, max_audio_seconds=10)
    with staged(data) as path:
        monkeypatch.setenv("PATH", path_without_system_ffmpeg())
        described = probe(path, timeout=30)
    monkeypatch.undo()
    decoded = decode_video(data, request)
    monkeypatch.setenv("PATH", path_without_system_ffmpeg())
    bundled = decode_video(data, request)
    kinds = [stream["codec_type"] for stream in described["streams"]]
    assert kinds == ["video", "audio"] and float(described["format"]["duration"]) == pytest.approx(2.0, abs=0.05)
    assert (described["streams"][0]["width"], described["streams"][0]["height"]) == (64, 48)
    assert bundled.frames.shape == decoded.frames.shape == (4, 48, 64, 3)
    assert bundled.duration == pytest.approx(decoded.duration, abs=0.05) and bundled.source_fps == 10
    for audio in (bundled.audio, decoded.audio):  # two seconds (ffmpeg versions trim AAC's priming differently)
        assert audio is not None and abs(audio.size - 32000) <= 1600
