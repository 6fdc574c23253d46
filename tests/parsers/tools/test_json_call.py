"""Finding where JSON values end, piece by piece."""

from __future__ import annotations

import pytest

from app.parsers.tools.json_call import JsonCallReader, JsonSpan, Status


@pytest.mark.parametrize(
    ("text", "end"),
    [
        ('{"a": "}"} tail', 10),
        ('[1, [2], {"x": "\\"]"}] tail', 22),
        ('"str \\" still" tail', 14),
        ("12.5, tail", 4),
        ("true}", 4),
    ],
)
def test_span_end_whole_and_char_by_char(text: str, end: int) -> None:
    span = JsonSpan()
    assert span.advance(text, 0) == end and span.done
    span, pos = JsonSpan(), 0
    for i in range(1, len(text) + 1):
        pos = span.advance(text[:i], pos)
        if span.done:
            break
    assert pos == end


def test_span_is_not_done_on_a_prefix() -> None:
    span = JsonSpan()
    assert span.advance('{"a": [1', 0) == 8 and not span.done


def test_reader_reports_bad_objects_without_emitting() -> None:
    started: list[str] = []
    reader = JsonCallReader(lambda name, args: started.append(name) or 0, lambda i, t: None)
    assert reader.read('{"arguments": {}, "other": 1}', final=True) == 29
    assert reader.status is Status.BAD and not reader.committed and started == []
