"""Decoding images, audio and video made in the test (ffmpeg, PIL), with their limits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.media.audio import check_format, decode_audio, sniff_audio_format, split_audio
from app.media.failures import MediaError
from app.media.image import decode_image
from app.media.video import VideoRequest, decode_video, scaled_size
from tests.support.media import png, requires_ffmpeg, sine, video


def test_images_decode_to_rgb_within_the_pixel_limit() -> None:
    image = decode_image(png((0, 0, 255), (40, 30)), max_pixels=1200)
    assert image.mode == "RGB" and image.size == (40, 30) and image.getpixel((0, 0)) == (0, 0, 255)
    with pytest.raises(MediaError) as caught:
        decode_image(png(size=(40, 31)), max_pixels=1200)
    assert caught.value.kind == "too_large"
    with pytest.raises(MediaError) as caught:
        decode_image(b"not an image", max_pixels=1200)
    assert caught.value.kind == "invalid"


@requires_ffmpeg
@pytest.mark.parametrize("suffix", [".wav", ".mp3", ".flac", ".ogg", ".webm"])
def test_audio_formats_decode_to_mono_at_the_requested_rate(tmp_path: Path, suffix: str) -> None:
    data = sine(tmp_path / f"tone{suffix}", seconds=1.0)
    expected = {".webm": "webm", ".ogg": "ogg", ".flac": "flac", ".mp3": "mp3", ".wav": "wav"}[suffix]
    assert sniff_audio_format(data) == expected
    assert check_format(None, data) == expected
    samples = decode_audio(data, sample_rate=16000, max_seconds=10)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert 15000 <= samples.size <= 17500  # codecs pad a little
    spectrum = np.abs(np.fft.rfft(samples[:16000]))
    assert abs(int(np.argmax(spectrum)) * 16000 / 16000 - 440) <= 2  # still a 440 Hz tone


@requires_ffmpeg
def test_audio_limits_and_bad_data(tmp_path: Path) -> None:
    data = sine(tmp_path / "tone.wav", seconds=2.0)
    with pytest.raises(MediaError) as caught:
        decode_audio(data, sample_rate=16000, max_seconds=1.0)
    assert caught.value.kind == "too_large"
    with pytest.raises(MediaError, match="decode"):
        decode_audio(b"RIFF....WAVEnot really", sample_rate=16000, max_seconds=10)
    with pytest.raises(MediaError, match="Unsupported audio format"):
        check_format("exe", data)


@requires_ffmpeg
def test_playlists_cannot_make_ffmpeg_read_other_files_or_urls(tmp_path: Path) -> None:
    playlist = b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:///etc/hostname\n#EXT-X-ENDLIST\n"
    with pytest.raises(MediaError):
        decode_audio(playlist, sample_rate=16000, max_seconds=10)
    concat = f"ffconcat version 1.0\nfile '{tmp_path}/x.wav'\n".encode()
    sine(tmp_path / "x.wav")
    with pytest.raises(MediaError):
        decode_audio(concat, sample_rate=16000, max_seconds=10)


def test_split_audio_covers_everything_in_order_within_the_window() -> None:
    rate = 1000
    samples = np.random.default_rng(0).standard_normal(12 * rate).astype(np.float32)
    samples[4700:4760] = 0.0  # a quiet spot in the last fifth of the first window
    pieces = split_audio(samples, rate, 5.0)
    assert np.array_equal(np.concatenate([p for _, p in pieces]), samples)
    assert all(p.size <= 5 * rate for _, p in pieces)
    assert pieces[0][1].size in range(4700, 4760)  # cut in the silence
    starts = [start for start, _ in pieces]
    assert starts == sorted(starts) and starts[0] == 0.0
    assert split_audio(samples[:100], rate, 5.0)[0][1].size == 100


@requires_ffmpeg
def test_video_frames_evenly_sampled_with_the_audio_track(tmp_path: Path) -> None:
    data = video(tmp_path / "clip.mp4", seconds=2.0)
    decoded = decode_video(data, VideoRequest(num_frames=4, audio_rate=16000, max_audio_seconds=10))
    assert decoded.frames.shape == (4, 48, 64, 3) and decoded.frames.dtype == np.uint8
    assert decoded.timestamps == (0.0, 0.5, 1.0, 1.5)
    assert decoded.duration == pytest.approx(2.0, abs=0.1) and decoded.source_fps == pytest.approx(10.0)
    assert not np.array_equal(decoded.frames[0], decoded.frames[-1])  # the test pattern moves
    assert decoded.audio is not None and 31000 <= decoded.audio.size <= 34000


@requires_ffmpeg
def test_video_fps_frame_cap_scaling_and_no_audio(tmp_path: Path) -> None:
    data = video(tmp_path / "clip.mp4", seconds=2.0, audio=False, size="320x240")
    decoded = decode_video(data, VideoRequest(fps=3, max_frames=5, max_frame_pixels=80 * 60, audio_rate=16000))
    assert decoded.frames.shape == (5, 60, 80, 3)
    assert decoded.audio is None
    assert scaled_size(1920, 1080, 1280 * 720) == (1280, 720)
    with pytest.raises(MediaError, match="no video"):
        decode_video(sine(tmp_path / "tone.wav"), VideoRequest())
