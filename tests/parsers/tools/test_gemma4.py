"""Gemma 4 ``<|tool_call>call:NAME{...}<tool_call|>`` calls."""

from __future__ import annotations

import pytest

from app.parsers.base import ParsedDelta, ToolCallDelta
from app.parsers.tools.gemma4 import Gemma4ToolParser
from app.parsers.tools.gemma4_syntax import Bare, conform, parse_value
from tests.parsers.helpers import Outcome, parse_all_ways

Q = '<|"|>'
PROPS = {
    "city": {"type": "string"},
    "days": {"type": "integer"},
    "code": {"type": "string"},
    "metric": {"type": "boolean"},
    "filters": {"type": "object", "properties": {"min": {"type": "number"}, "tags": {"type": "array"}}},
    "ids": {"type": "array", "items": {"type": "string"}},
}
TOOLS = [{"type": "function", "function": {"name": "forecast", "parameters": {"type": "object", "properties": PROPS}}}]


def parse(text: str) -> Outcome:
    return parse_all_ways(lambda: Gemma4ToolParser(TOOLS), text, Gemma4ToolParser.markers)


def test_call_with_typed_arguments() -> None:
    text = (
        f"Let me check.<|tool_call>call:forecast{{city:{Q}Paris, FR{Q},code:75,days:{Q}3{Q},"
        f"filters:{{min:{Q}1.5{Q},tags:[{Q}a,b{Q},true]}},ids:[1,{Q}x{Q}],metric:true,"
        f"note:{Q}{{not: [structure]}}{Q},other:-2.5,gone:null}}<tool_call|>"
    )
    got = parse(text)
    assert got.content == "Let me check."
    assert got.calls == [
        (
            "forecast",
            '{"city": "Paris, FR", "code": "75", "days": 3, "filters": {"min": 1.5, "tags": ["a,b", true]}, '
            '"ids": ["1", "x"], "metric": true, "note": "{not: [structure]}", "other": -2.5, "gone": null}',
        )
    ]


def test_calls_back_to_back_and_empty_arguments() -> None:
    text = f"<|tool_call>call:forecast{{}}<tool_call|><|tool_call>call:ping{{host:{Q}h{Q}}}<tool_call|>"
    assert parse(text) == Outcome(calls=[("forecast", "{}"), ("ping", '{"host": "h"}')])


def test_quoted_keys_and_spacing() -> None:
    text = f"<|tool_call>call:ping{{ {Q}host{Q} : {Q}h{Q} , n : 2 }}<tool_call|>"
    assert parse(text).calls == [("ping", '{"host": "h", "n": 2}')]


def test_unclosed_object_and_truncation() -> None:
    assert parse("<|tool_call>call:ping{n:5<tool_call|>after") == Outcome(content="after", calls=[("ping", '{"n": 5}')])
    assert parse(f"<|tool_call>call:ping{{n:5,s:{Q}ab").calls == [("ping", '{"n": 5, "s": "ab"}')]


@pytest.mark.parametrize(
    "text", ["<|tool_call>oops<tool_call|>", "<|tool_call>call:{x:1}<tool_call|>", "<|tool_call>ca"]
)
def test_malformed_calls_come_back_as_content(text: str) -> None:
    assert parse_all_ways(lambda: Gemma4ToolParser([]), "Hm " + text) == Outcome(content="Hm " + text)


def test_arguments_stream_per_top_level_key() -> None:
    parser = Gemma4ToolParser(TOOLS)
    (head,) = parser.feed("<|tool_call>call:forecast{city:<|")
    assert head.tool_calls[0].name == "forecast"
    assert parser.feed('"|>Par') == []
    assert parser.feed('is<|"|>,') == [ParsedDelta(tool_calls=[ToolCallDelta(index=0, arguments='{"city": "Paris"')])]
    assert parser.feed("days:4") == []
    assert parser.feed("}") == [ParsedDelta(tool_calls=[ToolCallDelta(index=0, arguments=', "days": 4}')])]
    assert parser.feed("<tool_call|>") == []
    assert parser.finish() == []


def test_syntax_reader_and_conform() -> None:
    value = parse_value(f"{{a:{Q}x{Q},b:[1,{{c:None}}],d:7}}")
    assert value == {"a": "x", "b": [Bare("1"), {"c": Bare("None")}], "d": Bare("7")}
    assert conform(value, None) == {"a": "x", "b": [1, {"c": None}], "d": 7}
    assert conform(Bare("7"), {"type": "string"}) == "7"
    assert conform(Bare("word"), None) == "word"
    assert conform("12", {"type": "integer"}) == 12
    assert conform("12", {"type": ["string", "integer"]}) == "12"
