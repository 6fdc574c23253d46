"""Decoding audio made in the test (ffmpeg), with its limits, and splitting long audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.media.audio import check_format, decode_audio, sniff_audio_format, split_audio
from app.media.failures import MediaError
from tests.support.media import requires_ffmpeg, sine


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
