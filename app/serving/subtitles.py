"""SubRip (srt) and WebVTT renderings of transcription segments."""

from __future__ import annotations

from collections.abc import Sequence

from app.protocol.audio import TranscriptionSegment


def _clock(seconds: float, separator: str) -> str:
    millis = round(max(0.0, seconds) * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _cue_text(text: str) -> str:
    return " ".join(text.split())  # a blank line would end the cue


def to_srt(segments: Sequence[TranscriptionSegment]) -> str:
    cues = [
        f"{i}\n{_clock(s.start, ',')} --> {_clock(s.end, ',')}\n{_cue_text(s.text)}\n"
        for i, s in enumerate(segments, start=1)
    ]
    return "\n".join(cues)


def to_vtt(segments: Sequence[TranscriptionSegment]) -> str:
    cues = [f"{_clock(s.start, '.')} --> {_clock(s.end, '.')}\n{_cue_text(s.text)}\n" for s in segments]
    return "WEBVTT\n\n" + "\n".join(cues)
