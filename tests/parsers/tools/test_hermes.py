"""Hermes / Qwen ``<tool_call>`` JSON calls."""

from __future__ import annotations

import json

import pytest

from app.demo.canned_chats import WEATHER_TOOL, render_completion
from app.parsers.base import ParsedDelta, ToolCallDelta
from app.parsers.tools.hermes import HermesToolParser
from tests.parsers.helpers import Outcome, parse_all_ways

MARKERS = HermesToolParser.markers


def parse(text: str) -> Outcome:
    return parse_all_ways(lambda: HermesToolParser([WEATHER_TOOL]), text, MARKERS)


def test_single_call_as_qwen_writes_it() -> None:
    text = render_completion("", None, [{"name": "get_weather", "arguments": {"location": "Paris"}}])
    assert parse(text) == Outcome(calls=[("get_weather", '{"location": "Paris"}')])


def test_content_then_several_calls() -> None:
    calls = [
        {"name": "get_weather", "arguments": {"location": "Paris"}},
        {"name": "search", "arguments": {"q": 'a "quoted" } brace', "n": [1, {"deep": None}]}},
    ]
    got = parse(render_completion("Let me look that up.", None, calls))
    assert got.content == "Let me look that up."
    assert [name for name, _ in got.calls] == ["get_weather", "search"]
    assert got.arguments() == [call["arguments"] for call in calls]
    assert got.calls[1][1] == json.dumps(calls[1]["arguments"])


def test_arguments_keep_the_model_text_trimmed() -> None:
    text = '<tool_call>\n{"name": "f", "arguments":   {\n  "a" : 1 ,"b":[ ]\n}  }\n</tool_call>'
    assert parse(text).calls == [("f", '{\n  "a" : 1 ,"b":[ ]\n}')]


@pytest.mark.parametrize(
    ("body", "arguments"),
    [
        ('{"name": "f", "parameters": {"x": 1}}', '{"x": 1}'),
        ('{"arguments": {"x": 1}, "name": "f"}', '{"x": 1}'),
        ('{"name": "f"}', "{}"),
        ('{"name": "f", "arguments": "{\\"x\\": 1}"}', '{"x": 1}'),
        ('{"id": 3, "name": "f", "extra": {"k": [1]}, "arguments": {}}', "{}"),
        ('{"name": "f", "arguments": {"x": 1}}}', '{"x": 1}'),
    ],
)
def test_call_object_variants(body: str, arguments: str) -> None:
    assert parse(f"<tool_call>\n{body}\n</tool_call>") == Outcome(calls=[("f", arguments)])


def test_two_call_objects_in_one_block() -> None:
    text = '<tool_call>\n{"name": "f", "arguments": {}}\n{"name": "g", "arguments": {"x": 1}}\n</tool_call>'
    assert parse(text) == Outcome(calls=[("f", "{}"), ("g", '{"x": 1}')])


def test_missing_closing_tag_at_the_end() -> None:
    assert parse('<tool_call>\n{"name": "f", "arguments": {"x": 1}}') == Outcome(calls=[("f", '{"x": 1}')])


def test_content_after_a_call_loses_its_leading_whitespace() -> None:
    text = 'Before\n<tool_call>{"name": "f", "arguments": {}}</tool_call>\n\nAfter'
    assert parse(text) == Outcome(content="BeforeAfter", calls=[("f", "{}")])


@pytest.mark.parametrize(
    "text",
    [
        "<tool_call>\nnot json at all\n</tool_call>",
        '<tool_call>{"arguments": {"x": 1}}</tool_call>',
        '<tool_call>{"name": 5, "arguments": {}}</tool_call>',
        '<tool_call>{"name": "f", "arguments": [1]}</tool_call>',
        '<tool_call>{"name": "f", "arguments": "not an object"}</tool_call>',
        '<tool_call>{"name": "f", "argu',
        "<tool_call>",
    ],
)
def test_malformed_calls_come_back_as_content(text: str) -> None:
    got = parse_all_ways(lambda: HermesToolParser([]), "Intro " + text)
    assert got == Outcome(content="Intro " + text)


def test_a_malformed_block_does_not_swallow_the_next_call() -> None:
    text = '<tool_call>oops <tool_call>{"name": "f", "arguments": {}}</tool_call>'
    got = parse_all_ways(lambda: HermesToolParser([]), text)
    assert got == Outcome(content="<tool_call>oops", calls=[("f", "{}")])


def test_plain_text_and_lookalikes_stay_content() -> None:
    text = "a <tool> b <tool_cal c {json} </tool_call"
    assert parse_all_ways(lambda: HermesToolParser([]), text) == Outcome(content=text)


def test_arguments_stream_before_the_closing_tag() -> None:
    parser = HermesToolParser([WEATHER_TOOL])
    assert parser.feed("Sure.\n<tool_") == [ParsedDelta(content="Sure.")]
    assert parser.feed('call>\n{"name": "get_weather", "argu') == []
    first = parser.feed('ments": {"location": "Pa')
    assert len(first) == 1 and len(first[0].tool_calls) == 1
    call = first[0].tool_calls[0]
    assert (call.index, call.name, call.arguments) == (0, "get_weather", '{"location": "Pa')
    assert call.id is not None and call.id.startswith("call_") and len(call.id) == 29
    assert parser.feed('ris"}') == [ParsedDelta(tool_calls=[ToolCallDelta(index=0, arguments='ris"}')])]
    assert parser.feed("}\n</tool_call>") == []
    assert parser.finish() == []


def test_truncated_arguments_keep_what_was_streamed() -> None:
    got = parse_all_ways(lambda: HermesToolParser([]), '<tool_call>{"name": "f", "arguments": {"x": "ab')
    assert got == Outcome(calls=[("f", '{"x": "ab')])


def test_class_attributes() -> None:
    assert HermesToolParser.name == "hermes"
    assert HermesToolParser.markers == ("<tool_call>", "</tool_call>")
