"""Running ffmpeg on untrusted bytes: only allow-listed containers and protocols are read."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.media.audio import decode_audio
from app.media.failures import MediaError
from tests.support.media import requires_ffmpeg, sine


@requires_ffmpeg
def test_playlists_cannot_make_ffmpeg_read_other_files_or_urls(tmp_path: Path) -> None:
    playlist = b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:///etc/hostname\n#EXT-X-ENDLIST\n"
    with pytest.raises(MediaError):
        decode_audio(playlist, sample_rate=16000, max_seconds=10)
    concat = f"ffconcat version 1.0\nfile '{tmp_path}/x.wav'\n".encode()
    sine(tmp_path / "x.wav")
    with pytest.raises(MediaError):
        decode_audio(concat, sample_rate=16000, max_seconds=10)
