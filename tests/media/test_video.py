"""Decoding video made in the test (ffmpeg): frame sampling, scaling and the audio track."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.media.failures import MediaError
from app.media.video import VideoRequest, decode_video, scaled_size
from tests.support.media import requires_ffmpeg, sine, video


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
