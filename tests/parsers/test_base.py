"""The parser contract's pieces: an empty delta is falsy, and plain text is all content."""

from __future__ import annotations

from app.parsers.base import ParsedDelta, PlainTextParser, ToolCallDelta


def test_a_delta_is_true_when_it_carries_anything() -> None:
    assert not ParsedDelta()
    assert ParsedDelta(content="a") and ParsedDelta(reasoning="b")
    assert ParsedDelta(tool_calls=[ToolCallDelta(0, id="call_1", name="f")])


def test_plain_text_passes_every_piece_through_as_content() -> None:
    parser = PlainTextParser()
    assert parser.feed("Hello <tool_call>") == [ParsedDelta(content="Hello <tool_call>")]
    assert parser.feed("") == []
    assert parser.finish() == []
