"""SubRip and WebVTT renderings of transcription segments: numbering, clocks and one-line cue text."""

from __future__ import annotations

from app.protocol.audio import TranscriptionSegment
from app.serving.subtitles import to_srt, to_vtt


def segment(index: int, start: float, end: float, text: str) -> TranscriptionSegment:
    return TranscriptionSegment(
        id=index,
        seek=0,
        start=start,
        end=end,
        text=text,
        tokens=[],
        temperature=0.0,
        avg_logprob=0.0,
        compression_ratio=1.0,
        no_speech_prob=0.0,
    )


SEGMENTS = [segment(0, 0.0, 1.5, " Hello there."), segment(1, 3725.0424, 3727.9996, "Second\n\nline  here")]


def test_srt_numbers_cues_from_one_with_comma_millis() -> None:
    assert to_srt(SEGMENTS) == (
        "1\n00:00:00,000 --> 00:00:01,500\nHello there.\n\n2\n01:02:05,042 --> 01:02:08,000\nSecond line here\n"
    )


def test_vtt_has_its_header_and_dot_millis() -> None:
    assert to_vtt(SEGMENTS) == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello there.\n\n01:02:05.042 --> 01:02:08.000\nSecond line here\n"
    )


def test_negative_times_clamp_to_zero_and_no_segments_give_empty_files() -> None:
    assert to_srt([segment(0, -0.2, 0.0009, "a")]) == "1\n00:00:00,000 --> 00:00:00,001\na\n"
    assert to_srt([]) == ""
    assert to_vtt([]) == "WEBVTT\n\n"
